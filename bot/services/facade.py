"""``Services``: the application's use-cases behind one object (teach, ask, forget, status …).

Skeleton: signatures and contracts are final; bodies are being filled in.
"""

import asyncio
from collections.abc import Sequence

from bot.services.results import (
    AskResult,
    ForgetResult,
    JobUpdate,
    PhotoUpload,
    RecognitionHit,
    StatusReport,
    SubjectSummary,
    TeachReceipt,
)


class Services:
    """The use-cases the front end calls. Build once in the composition root.

    Args (keyword-only):
        db: the SQLAlchemy engine (schema already upgraded).
        files: the content-addressed file store under the data directory.
        model: the client that reaches the model worker (ask / recognise / health).
        limits: quotas (``ServiceLimits``).
        photo_limits: what a photo may be (``PhotoLimits``).
        supervisor: in single-box mode, the local worker process to start, watch and restart.
        negative_bank_warning: None when hard negatives are available, else the warning shown
            at start-up and in ``status``.
        event_poll_seconds: how often the clock polls the job-event outbox.
    """

    async def teach(
        self,
        *,
        user_id: int,
        name: str,
        photos: Sequence[PhotoUpload],
        kind: str = "other",
        facts: str | None = None,
    ) -> TeachReceipt:
        """Add photos to the user's subject ``name`` (created if new) and queue its training.

        All photos are validated first; if any is refused, nothing is stored (``InvalidPhoto``
        lists every reason). Duplicates (same cleaned bytes already on the subject, or twice in
        this upload) are skipped and reported in ``photos_skipped``. ``facts`` replaces the
        subject's facts when given.

        Raises:
            InvalidName, InvalidPhoto, TooFewPhotos, TooManyPhotos, TooManySubjects,
            JobAlreadyQueued, QueueFull.
        """
        ...
        raise NotImplementedError

    async def ask(
        self, *, user_id: int, question: str, image: bytes | None = None, subject: str | None = None
    ) -> AskResult:
        """Answer ``question`` (about ``image`` if given) for ``user_id``.

        The subjects meant are: ``subject`` if given (a name or id of the user's); else every
        subject of the user whose name appears in the question as a whole word
        (case-insensitively); else the one subject of kind K if the question says "my K". No
        match → an unpersonalised answer. A subject whose first training has not finished is
        answered from its untrained tokens with a ``note`` (recognition questions about it are
        refused with ``SubjectNotReady``); one being *re*-trained is answered from its previous
        tokens, also with a note.

        Raises:
            UnknownSubject (``subject`` not the user's), AmbiguousSubject ("my dog" with two
            dogs), SubjectNotReady, InvalidPhoto (``image`` unreadable), WorkerUnavailable.
        """
        ...
        raise NotImplementedError

    async def recognize_all(self, *, user_id: int, image: bytes) -> list[RecognitionHit]:
        """Score every *ready* subject of the user against ``image``, most likely first.

        Raises:
            InvalidPhoto, WorkerUnavailable.
        """
        ...
        raise NotImplementedError

    async def list_subjects(self, *, user_id: int) -> list[SubjectSummary]:
        """The user's subjects by name, with photo counts, metrics, thumbnails and active job."""
        ...
        raise NotImplementedError

    async def subject_names(self, *, user_id: int, prefix: str = "", limit: int = 25) -> list[str]:
        """Display names of the user's own subjects starting with ``prefix`` (autocomplete)."""
        ...
        raise NotImplementedError

    async def forget(self, *, user_id: int, name: str) -> ForgetResult:
        """Delete the user's subject ``name`` (or every subject if ``name`` is "all").

        Cancels its jobs, deletes photos, artifacts, jobs, events and rows; afterwards nothing
        of it remains on disk or in the database.

        Raises:
            UnknownSubject.
        """
        ...
        raise NotImplementedError

    async def cancel(self, *, user_id: int, job_id: int) -> bool:
        """Cancel the user's job: a queued one at once, a running one within one training step.

        Returns False if the job is not the user's or already finished.
        """
        ...
        raise NotImplementedError

    async def status(self, *, user_id: int, operator: bool = False) -> StatusReport:
        """The user's recent jobs (every user's if ``operator``), queue length and worker health."""
        ...
        raise NotImplementedError

    def subscribe(self) -> "asyncio.Queue[JobUpdate]":
        """A new queue that receives every ``JobUpdate`` from now on (all users: filter by
        ``owner_id``). Unsubscribe with :meth:`unsubscribe`."""
        ...
        raise NotImplementedError

    def unsubscribe(self, queue: "asyncio.Queue[JobUpdate]") -> None:
        """Stop delivering updates to ``queue``."""
        ...
        raise NotImplementedError

    async def start(self) -> None:
        """Start the clock (event dispatch, stale-job recovery, retention purge) and, in
        single-box mode, the local worker process."""
        ...
        raise NotImplementedError

    async def close(self) -> None:
        """Stop the clock and the local worker; idempotent."""
        ...
        raise NotImplementedError
