"""The public surface of the services: what the Discord layer (or any front end) calls.

Import from here: ``from bot.services.api import Services, ServiceError, PhotoUpload, …``.
Every public method of :class:`Services` is ``async`` and never blocks the event loop: database
and file work runs in ``asyncio.to_thread``; model work runs in the worker process, reached
through a :class:`~bot.services.model_client.ModelClient`. Every call that names a subject or a
job re-checks that it belongs to ``user_id``; another user's subject is reported exactly like a
missing one. Refusals raise a :class:`ServiceError` subclass whose ``user_message`` is ready to
show.

Example::

    model = HttpModelClient(FixedEndpoint("http://127.0.0.1:8765", token))
    services = Services(db=engine, files=FileStore(data_dir), model=model)
    await services.start()
    receipt = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads)
    updates = services.subscribe()          # asyncio.Queue[JobUpdate]
    ...
    answer = await services.ask(user_id=1, question="Is Bo in this photo?", image=jpeg_bytes)
    await services.close()
"""

from bot.services.errors import (
    AmbiguousSubject,
    AnswerFailed,
    InvalidName,
    InvalidPhoto,
    InvalidQuestion,
    JobAlreadyQueued,
    NoNewPhotos,
    QueueFull,
    ServiceError,
    SubjectNotReady,
    TooFewPhotos,
    TooManyPhotos,
    TooManySubjects,
    UnknownJob,
    UnknownSubject,
    WorkerUnavailable,
)
from bot.services.facade import Services
from bot.services.limits import ServiceLimits
from bot.services.photos import PhotoLimits
from bot.services.results import (
    AskResult,
    ForgetResult,
    JobSummary,
    JobUpdate,
    JobUpdateKind,
    PhotoUpload,
    RecognitionHit,
    StatusReport,
    SubjectSummary,
    TeachReceipt,
    WorkerHealth,
)

# "Not yours" is deliberately the same error as "does not exist".
NotOwner = UnknownSubject

__all__ = [
    "AmbiguousSubject",
    "AnswerFailed",
    "AskResult",
    "ForgetResult",
    "InvalidName",
    "InvalidPhoto",
    "InvalidQuestion",
    "JobAlreadyQueued",
    "JobSummary",
    "JobUpdate",
    "JobUpdateKind",
    "NoNewPhotos",
    "NotOwner",
    "PhotoLimits",
    "PhotoUpload",
    "QueueFull",
    "RecognitionHit",
    "ServiceError",
    "ServiceLimits",
    "Services",
    "StatusReport",
    "SubjectNotReady",
    "SubjectSummary",
    "TeachReceipt",
    "TooFewPhotos",
    "TooManyPhotos",
    "TooManySubjects",
    "UnknownJob",
    "UnknownSubject",
    "WorkerHealth",
    "WorkerUnavailable",
]
