"""``Services``: the application's use-cases behind one object (teach, ask, forget, status …).

Each public method is a coroutine that never blocks the event loop: SQL, files and Pillow run in
``asyncio.to_thread``; the model runs in the worker process behind a :class:`ModelClient`. Each
one takes the asking user's id and re-checks ownership on every call. Use-cases that write for a
user (teach, forget) are serialised per user, so two clicks cannot both pass a quota check.
"""

import asyncio
import logging
import weakref
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from bot.services import asking, forgetting, queries, teaching
from bot.services.clock import Clock, ClockPeriods
from bot.services.errors import (
    AnswerFailed,
    InvalidPhoto,
    InvalidQuestion,
    SubjectNotReady,
    WorkerUnavailable,
)
from bot.services.events import EventDispatcher
from bot.services.limits import ServiceLimits
from bot.services.model_client import ModelClient, WorkerRefused
from bot.services.photos import PhotoLimits, PhotoRejected, validate_photo
from bot.services.results import (
    AskResult,
    ForgetResult,
    JobSummary,
    JobUpdate,
    PhotoUpload,
    RecognitionHit,
    StatusReport,
    SubjectSummary,
    TeachReceipt,
    WorkerHealth,
)
from bot.worker.protocol import AnswerRequest, ErrorCode, RecognizeRequest
from bot.worker.supervisor import LocalWorker
from storage import FileStore, request_cancel, session_scope

log = logging.getLogger(__name__)

MAX_AUTOCOMPLETE = 25
QUESTION_IMAGE_NAME = "your image"


class Services:
    """The use-cases the front end calls. Build once in the composition root.

    Args (keyword-only):
        db: the SQLAlchemy engine (schema already upgraded).
        files: the content-addressed file store under the data directory.
        model: the client that reaches the model worker (answers, recognition, health).
        limits: quotas (``ServiceLimits``).
        photo_limits: what a photo may be (``PhotoLimits``).
        supervisor: in single-box mode, the local worker process to start, watch and restart.
        negative_bank_warning: None when hard negatives are available, else the warning shown
            at start-up and in ``status``.
        clock: periods of the clock's jobs (event polling, stale-job recovery, retention).
    """

    def __init__(
        self,
        *,
        db: Engine,
        files: FileStore,
        model: ModelClient,
        limits: ServiceLimits | None = None,
        photo_limits: PhotoLimits | None = None,
        supervisor: LocalWorker | None = None,
        negative_bank_warning: str | None = None,
        clock: ClockPeriods | None = None,
    ) -> None:
        self.db = db
        self.files = files
        self.model = model
        self.limits = limits or ServiceLimits()
        self.photo_limits = photo_limits or PhotoLimits()
        self.supervisor = supervisor
        self.negative_bank_warning = negative_bank_warning
        self.events = EventDispatcher(db)
        self.clock = Clock(
            db=db, files=files, dispatcher=self.events, limits=self.limits, periods=clock or ClockPeriods()
        )
        self._user_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the clock (event dispatch, stale-job recovery, retention purge) and, in
        single-box mode, the local worker process (without waiting for its model to load)."""
        await self.events.start()
        if self.negative_bank_warning:
            log.warning("%s", self.negative_bank_warning)
        if self.supervisor is not None:
            await self.supervisor.start()
        self.clock.start()

    async def wait_for_worker(self, timeout: float | None = None) -> bool:
        """Wait until the local worker is ready (True at once without a local worker)."""
        if self.supervisor is None:
            return True
        return await self.supervisor.wait_ready(timeout)

    async def close(self) -> None:
        """Stop the clock and the local worker; idempotent."""
        self.clock.stop()
        if self.supervisor is not None:
            await self.supervisor.stop()
        await self.model.close()

    # -- events ----------------------------------------------------------------------------------

    def subscribe(self) -> "asyncio.Queue[JobUpdate]":
        """A new queue that receives every ``JobUpdate`` from now on (all users: filter by
        ``owner_id``). Unsubscribe with :meth:`unsubscribe`."""
        return self.events.subscribe()

    def unsubscribe(self, queue: "asyncio.Queue[JobUpdate]") -> None:
        """Stop delivering updates to ``queue``."""
        self.events.unsubscribe(queue)

    # -- teach -----------------------------------------------------------------------------------

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
        lists every reason). Duplicates (the same cleaned bytes twice in this upload, or already
        on the subject) are skipped and reported in ``photos_skipped``. ``facts`` replaces the
        subject's facts when given; ``kind`` is used for a new subject only. More photos for a
        subject whose training has not started yet join that queued job.

        Raises:
            InvalidName, InvalidPhoto, TooFewPhotos, TooManyPhotos, TooManySubjects, NoNewPhotos,
            JobAlreadyQueued, QueueFull.
        """
        clean_name, clean_kind, clean_facts = teaching.check_arguments(name, kind, facts, photos, self.limits)
        validated, skipped = await asyncio.to_thread(teaching.validate_uploads, photos, self.photo_limits)
        request = teaching.TeachRequest(
            user_id=user_id,
            name=clean_name,
            kind=clean_kind,
            facts=clean_facts,
            photos=validated,
            skipped=skipped,
        )
        async with self._lock_for(user_id):
            receipt = await asyncio.to_thread(teaching.store, self.db, self.files, self.limits, request)
        await self.model.wake()
        return receipt

    # -- ask -------------------------------------------------------------------------------------

    async def ask(
        self, *, user_id: int, question: str, image: bytes | None = None, subject: str | None = None
    ) -> AskResult:
        """Answer ``question`` (about ``image`` if given) for ``user_id``.

        The subjects meant are: ``subject`` if given (a name or id of the user's); else every
        subject of the user whose name appears in the question as a whole word
        (case-insensitively); else the one subject of kind K if the question says "my K". No
        match → an answer without personal tokens. A subject whose first training has not
        finished is answered from untrained tokens (its kind and facts) with a ``note``;
        recognition questions about it are refused with ``SubjectNotReady``. One being
        *re*-trained is answered from its previous training, also with a note.

        Raises:
            InvalidQuestion, InvalidPhoto (``image`` unreadable), UnknownSubject (``subject``
            not the user's), AmbiguousSubject ("my dog" with two dogs), SubjectNotReady,
            WorkerUnavailable, AnswerFailed.
        """
        text = " ".join(question.split())
        if not text:
            raise InvalidQuestion("Please ask me something.")
        if len(text) > self.limits.max_question_chars:
            raise InvalidQuestion(f"Please keep questions under {self.limits.max_question_chars} characters.")
        clean_image = await self._clean_image(image) if image is not None else None
        states = await asyncio.to_thread(self._subject_states, user_id)
        chosen, model_question = asking.choose(states, text, subject)
        asking.refuse_untrainable(chosen)
        request = AnswerRequest(question=model_question, subjects=[s.ref for s in chosen], image=clean_image)
        try:
            reply = await self.model.answer(request)
        except WorkerRefused as refused:
            raise _refusal(refused, chosen) from refused
        return AskResult(
            text=reply.text,
            subjects=[state.name for state in chosen],
            is_recognition=reply.is_recognition,
            note=asking.caveat(chosen),
        )

    async def recognize_all(self, *, user_id: int, image: bytes) -> list[RecognitionHit]:
        """Score every *trained* subject of the user against ``image``, most likely first.

        Empty when the user has no trained subject.

        Raises:
            InvalidPhoto, WorkerUnavailable, AnswerFailed.
        """
        clean_image = await self._clean_image(image)
        states = [state for state in await asyncio.to_thread(self._subject_states, user_id) if state.trained]
        if not states:
            return []
        try:
            reply = await self.model.recognize(
                RecognizeRequest(image=clean_image, subjects=[state.ref for state in states])
            )
        except WorkerRefused as refused:
            raise _refusal(refused, states) from refused
        names = {state.ref.subject_id: state.name for state in states}
        hits = [
            RecognitionHit(
                subject=names[score.subject_id], probability=score.probability, present=score.present
            )
            for score in reply.scores
            if score.subject_id in names
        ]
        return sorted(hits, key=lambda hit: hit.probability, reverse=True)

    # -- read ------------------------------------------------------------------------------------

    async def list_subjects(self, *, user_id: int) -> list[SubjectSummary]:
        """The user's subjects by name, with photo counts, metrics, thumbnails and active job."""

        def work() -> list[SubjectSummary]:
            with session_scope(self.db) as session:
                return queries.subject_summaries(session, self.files, owner_id=user_id)

        return await asyncio.to_thread(work)

    async def subject_names(self, *, user_id: int, prefix: str = "", limit: int = 25) -> list[str]:
        """Display names of the user's own subjects starting with ``prefix`` (autocomplete)."""
        bounded = max(1, min(limit, MAX_AUTOCOMPLETE))

        def work() -> list[str]:
            with session_scope(self.db) as session:
                return queries.subject_names(session, owner_id=user_id, prefix=prefix, limit=bounded)

        return await asyncio.to_thread(work)

    async def status(self, *, user_id: int, operator: bool = False) -> StatusReport:
        """The user's recent jobs (every user's if ``operator``), queue length and worker health.

        ``operator`` must come from the front end's own check (e.g. configured operator ids).
        """

        def work() -> tuple[list[JobSummary], int]:
            with session_scope(self.db) as session:
                return queries.jobs_report(session, owner_id=user_id, operator=operator)

        jobs, queue_length = await asyncio.to_thread(work)
        return StatusReport(
            jobs=jobs,
            queue_length=queue_length,
            workers=[await self._worker_health()],
            negative_bank=self.negative_bank_warning,
        )

    # -- forget / cancel -------------------------------------------------------------------------

    async def forget(self, *, user_id: int, name: str) -> ForgetResult:
        """Delete the user's subject ``name`` (or everything of the user if ``name`` is "all").

        Cancels its jobs, deletes photos, artifacts, jobs, events and rows; afterwards nothing
        of it remains on disk or in the database. A training in progress stops at its next step.

        Raises:
            UnknownSubject.
        """
        async with self._lock_for(user_id):
            return await asyncio.to_thread(
                forgetting.forget, self.db, self.files, owner_id=user_id, name=name
            )

    async def cancel(self, *, user_id: int, job_id: int) -> bool:
        """Cancel the user's job: a queued one at once, a running one within one training step.

        Returns False if the job is not the user's or already finished.
        """

        def work() -> bool:
            with session_scope(self.db) as session:
                return request_cancel(session, owner_id=user_id, job_id=job_id) is not None

        return await asyncio.to_thread(work)

    # -- helpers ---------------------------------------------------------------------------------

    def _lock_for(self, user_id: int) -> asyncio.Lock:
        lock = self._user_locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._user_locks[user_id] = lock
        return lock

    def _subject_states(self, user_id: int) -> list[asking.SubjectState]:
        with session_scope(self.db) as session:
            return asking.load_subjects(session, owner_id=user_id)

    async def _clean_image(self, image: bytes) -> bytes:
        try:
            photo = await asyncio.to_thread(
                validate_photo, image, filename=QUESTION_IMAGE_NAME, limits=self.photo_limits
            )
        except PhotoRejected as rejected:
            raise InvalidPhoto([rejected.reason]) from rejected
        return photo.data

    async def _worker_health(self) -> WorkerHealth:
        health = await self.model.health()
        supervisor = self.supervisor
        detail = None
        if supervisor is not None and not supervisor.alive:
            detail = "starting" if supervisor.restarts == 0 else f"restarting ({supervisor.last_exit})"
        elif health is None:
            detail = "not answering"
        return WorkerHealth(
            name="local" if supervisor is not None else (health.worker_id if health else "worker"),
            alive=health is not None,
            model=health.model if health else None,
            device=health.device if health else None,
            current_job_id=health.current_job_id if health else None,
            restarts=supervisor.restarts if supervisor is not None else 0,
            detail=detail,
        )


def _refusal(refused: WorkerRefused, states: Sequence[asking.SubjectState]) -> Exception:
    if refused.code == ErrorCode.NOT_TRAINED:
        return asking.not_ready(list(states), refused.subject_ids)
    if refused.code == ErrorCode.ARTIFACT:
        name = states[0].name if states else "That subject"
        return SubjectNotReady(
            name, "needs to be taught again: its trained file can't be used with this model."
        )
    if refused.code == ErrorCode.BAD_REQUEST:
        return InvalidPhoto([f"I couldn't read that image ({refused})."])
    if refused.code == ErrorCode.UNAUTHORIZED:
        return WorkerUnavailable("the worker refused the bot's token")
    return AnswerFailed("Sorry, something went wrong while I was thinking about that; please try again.")
