"""The training side of the worker: claim a queued job, teach the subject, record the result.

The database is the queue and the truth: a job is claimed atomically (``claim_next_job``), its
progress and a heartbeat are written into its row (throttled), a cancel is read from its row
between steps, and success is one transaction that points the subject at its new artifact and
ends the job. The artifact file is written (content-addressed, atomically) *before* that
transaction; if the transaction fails (the subject was forgotten meanwhile) the file is removed
again, so no unreferenced artifact is left behind.

A separate heartbeat thread keeps the row's ``heartbeat_at`` fresh even through long phases
without steps (text-QA generation on a big model); if the process dies (kill -9, OOM) the beats
stop and the bot's clock, or this worker's next start, puts the job back in the queue.
"""

import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from PIL import Image
from sqlalchemy.engine import Engine as DatabaseEngine
from sqlmodel import select

from bot.worker.gate import PriorityGate
from bot.worker.presets import TrainingPreset
from personalization.artifacts import save_subject
from personalization.engine import Engine
from personalization.errors import ImageError, NotEnoughPhotos, TrainingCancelled
from personalization.images import load_image
from personalization.negatives import BankIndex
from personalization.subject import Subject as LearnedSubject
from personalization.subject import new_subject
from personalization.trainer import Trainer, TrainingProgress, describe_heldout
from storage import (
    FileStore,
    JobLost,
    JobStatus,
    Namespace,
    NotFound,
    RequeueResult,
    Subject,
    TrainingJob,
    claim_next_job,
    finish_job,
    get_subject_for_owner,
    heartbeat,
    list_photos,
    record_subject_artifact,
    requeue_stale_jobs,
    session_scope,
    update_job_progress,
    utc_now,
)

log = logging.getLogger(__name__)

ARTIFACT_SUFFIX = "safetensors"


@dataclass(frozen=True)
class WorkerTiming:
    """How often the worker polls and writes, in seconds. Errors name the bad field.

    Attributes:
        poll_seconds: idle wait between claim attempts (a wake-up request cuts it short).
        progress_seconds: least time between two progress writes (each is a row update and an
            event).
        cancel_check_seconds: least time between two reads of the job's cancel flag (0: every
            step).
        heartbeat_seconds: heartbeat period of a running job.
        stale_seconds: a running job whose heartbeat is older than this has lost its worker.
    """

    poll_seconds: float = 2.0
    progress_seconds: float = 1.0
    cancel_check_seconds: float = 0.25
    heartbeat_seconds: float = 10.0
    stale_seconds: float = 120.0

    def __post_init__(self) -> None:
        for name in ("poll_seconds", "heartbeat_seconds", "stale_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"WorkerTiming.{name} must be positive, got {getattr(self, name)}")
        for name in ("progress_seconds", "cancel_check_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"WorkerTiming.{name} must not be negative, got {getattr(self, name)}")
        if self.heartbeat_seconds * 2 > self.stale_seconds:
            raise ValueError(
                f"WorkerTiming.stale_seconds ({self.stale_seconds}) must be at least twice "
                f"heartbeat_seconds ({self.heartbeat_seconds})"
            )


class JobReporter:
    """Progress, heartbeat and cancel for one running job.

    ``progress`` and ``should_stop`` are the trainer's callbacks (training thread); ``beat`` runs
    on the heartbeat thread. ``lost`` means the row is no longer ours (requeued after a stall,
    deleted by a forget): stop at once and write nothing more.
    """

    def __init__(
        self,
        db: DatabaseEngine,
        *,
        job_id: int,
        worker_id: str,
        timing: WorkerTiming,
        gate: PriorityGate,
        shutdown: threading.Event,
    ) -> None:
        self.db = db
        self.job_id = job_id
        self.worker_id = worker_id
        self.timing = timing
        self.gate = gate
        self.shutdown = shutdown
        self.cancelled = False
        self.lost = False
        self._last_write = -float("inf")
        self._last_cancel_check = -float("inf")
        self._latest: TrainingProgress | None = None
        self._written_step = -1

    def progress(self, report: TrainingProgress) -> None:
        if report.phase == "preparing" or self.lost:
            return
        self._latest = report
        now = time.monotonic()
        if now - self._last_write >= self.timing.progress_seconds or report.phase == "done":
            self.flush()

    def flush(self) -> None:
        """Write the latest progress now if it is not written yet."""
        report = self._latest
        if report is None or self.lost or report.step == self._written_step:
            return
        try:
            with session_scope(self.db) as session:
                job = update_job_progress(
                    session,
                    job_id=self.job_id,
                    worker_id=self.worker_id,
                    step=report.step,
                    total_steps=report.total_steps,
                    loss=report.loss,
                    eta_seconds=report.eta_s,
                )
                self.cancelled = self.cancelled or job.cancel_requested
        except JobLost:
            self.lost = True
        self._written_step = report.step
        self._last_write = time.monotonic()

    def should_stop(self) -> bool:
        """Between steps: let waiting answers run first, then check for cancel and shutdown."""
        self.gate.yield_to_waiting()
        if self.shutdown.is_set() or self.lost or self.cancelled:
            return True
        now = time.monotonic()
        if now - self._last_cancel_check >= self.timing.cancel_check_seconds:
            self._last_cancel_check = now
            self._read_cancel_flag()
        return self.lost or self.cancelled

    def beat(self) -> None:
        """One heartbeat; notices a cancel or a lost job too."""
        try:
            with session_scope(self.db) as session:
                job = heartbeat(session, job_id=self.job_id, worker_id=self.worker_id)
                self.cancelled = self.cancelled or job.cancel_requested
        except JobLost:
            self.lost = True
        except sa.exc.OperationalError:  # database busy or unreachable: try again next beat
            log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)

    def _read_cancel_flag(self) -> None:
        with session_scope(self.db) as session:
            row = session.exec(
                select(TrainingJob.status, TrainingJob.worker_id, TrainingJob.cancel_requested).where(
                    TrainingJob.id == self.job_id
                )
            ).first()
        if row is None or row[0] != JobStatus.RUNNING or row[1] != self.worker_id:
            self.lost = True
        elif row[2]:
            self.cancelled = True


class TrainingLoop:
    """Claims and runs training jobs, one at a time, on the worker's model.

    Args:
        db: the shared database.
        files: the shared file store (photos in, artifacts out).
        engine: the frozen model (shared with the answerer, through ``gate``).
        gate: the model's priority gate.
        preset: the training recipe and k.
        bank: the negative bank index (None: no hard negatives, recognition suffers).
        worker_id: this worker's id in job rows (stable across restarts of a local worker).
        timing: polling and writing periods.
    """

    def __init__(
        self,
        *,
        db: DatabaseEngine,
        files: FileStore,
        engine: Engine,
        gate: PriorityGate,
        preset: TrainingPreset,
        bank: BankIndex | None,
        worker_id: str,
        timing: WorkerTiming,
    ) -> None:
        self.db = db
        self.files = files
        self.engine = engine
        self.gate = gate
        self.preset = preset
        self.bank = bank
        self.worker_id = worker_id
        self.timing = timing
        self.wake = threading.Event()
        self.current_job_id: int | None = None

    def recover(self) -> RequeueResult:
        """At start: re-queue what a previous life of this worker left running (at once), and
        any other worker's job whose heartbeat is stale."""
        now = utc_now()
        with session_scope(self.db) as session:
            own = requeue_stale_jobs(
                session, stale_before=now + timedelta(seconds=1), worker_id=self.worker_id, now=now
            )
            others = requeue_stale_jobs(
                session, stale_before=now - timedelta(seconds=self.timing.stale_seconds), now=now
            )
        result = RequeueResult(own.requeued + others.requeued, own.failed + others.failed)
        if result.requeued or result.failed:
            log.info("recovered jobs: requeued %s, failed %s", result.requeued, result.failed)
        return result

    def run(self, shutdown: threading.Event) -> None:
        """Train queued jobs until ``shutdown`` is set."""
        while not shutdown.is_set():
            try:
                claimed = self.run_once(shutdown)
            except sa.exc.OperationalError:  # database busy or briefly unreachable
                log.warning("cannot reach the queue; retrying", exc_info=True)
                claimed = False
            if not claimed:
                self.wake.wait(self.timing.poll_seconds)
                self.wake.clear()

    def run_once(self, shutdown: threading.Event) -> bool:
        """Claim one queued job and run it to its end; False if the queue was empty."""
        with session_scope(self.db) as session:
            job = claim_next_job(session, worker_id=self.worker_id)
        if job is None:
            return False
        assert job.id is not None
        log.info("training job %s (subject %s, attempt %s)", job.id, job.subject_id, job.attempts)
        self.current_job_id = job.id
        try:
            self._run(job, shutdown)
        finally:
            self.current_job_id = None
        return True

    def _run(self, job: TrainingJob, shutdown: threading.Event) -> None:
        assert job.id is not None
        reporter = JobReporter(
            self.db,
            job_id=job.id,
            worker_id=self.worker_id,
            timing=self.timing,
            gate=self.gate,
            shutdown=shutdown,
        )
        done = threading.Event()
        beats = threading.Thread(
            target=_beat_until, args=(reporter, done), name=f"heartbeat-{job.id}", daemon=True
        )
        beats.start()
        try:
            outcome = self._train(job, reporter)
        finally:
            done.set()
            beats.join()
        if outcome is None:
            if reporter.lost:
                log.info("job %s is no longer ours; dropped", job.id)
            elif shutdown.is_set():
                self._requeue_own(job.id)
            else:
                reporter.flush()
                self._finish(job.id, JobStatus.CANCELLED)
            return
        if isinstance(outcome, str):
            self._finish(job.id, JobStatus.FAILED, error=outcome)
            return
        self._record(job, outcome)

    def _train(self, job: TrainingJob, reporter: JobReporter) -> "_Trained | str | None":
        """The trained subject, an error sentence for the owner, or None if stopped."""
        try:
            row, images = self._inputs(job)
        except NotFound:
            reporter.lost = True
            return None
        except (ImageError, FileNotFoundError) as error:
            return f"One of the photos could not be read ({error}); please teach it again."
        subject = new_subject(
            self.engine.loaded,
            display_name=row.display_name,
            kind=row.kind,
            k=self.preset.latent_tokens,
            facts=row.facts or "",
            seed=self.preset.config.seed,
        )
        trainer = Trainer(self.engine, self.preset.config)
        try:
            with self.gate.training():
                result = trainer.teach(
                    subject,
                    images,
                    bank=self.bank,
                    progress=reporter.progress,
                    should_stop=reporter.should_stop,
                )
        except TrainingCancelled:
            return None
        except NotEnoughPhotos as error:
            return f"Not enough photos to train: {error}."
        except Exception as error:  # a bug or OOM in one job must not kill the worker
            log.exception("job %s failed", job.id)
            if _is_out_of_memory(error):
                return "Training ran out of GPU memory; it will work once the machine is less busy."
            return f"Training failed unexpectedly ({type(error).__name__}); please try again later."
        metrics: dict[str, Any] = dict(result.metrics)
        metrics["summary"] = describe_heldout(metrics)
        metrics["model"] = self.engine.model_id
        result.subject.metrics = metrics
        return _Trained(row.id, job.owner_id, result.subject, metrics)

    def _inputs(self, job: TrainingJob) -> tuple[Subject, list[Image.Image]]:
        with session_scope(self.db) as session:
            row = get_subject_for_owner(session, owner_id=job.owner_id, subject_id=job.subject_id)
            if row is None:
                raise NotFound("the subject was deleted")
            photos = list_photos(session, owner_id=job.owner_id, subject_id=job.subject_id)
        images = [
            load_image(self.files.read(photo.path), label=f"photo {n}") for n, photo in enumerate(photos, 1)
        ]
        return row, images

    def _record(self, job: TrainingJob, trained: "_Trained") -> None:
        assert job.id is not None
        with tempfile.TemporaryDirectory(prefix="yollava-artifact-") as folder:
            path = save_subject(
                trained.subject, Path(folder) / "subject.safetensors", model_id=self.engine.model_id
            )
            data = path.read_bytes()
        stored = self.files.put(data, suffix=ARTIFACT_SUFFIX, namespace=Namespace.SUBJECTS)
        try:
            with session_scope(self.db) as session:
                replaced = record_subject_artifact(
                    session,
                    owner_id=trained.owner_id,
                    subject_id=trained.subject_id,
                    artifact_sha256=stored.sha256,
                    artifact_path=stored.relative_path,
                    metrics=trained.metrics,
                )
                finish_job(session, job_id=job.id, worker_id=self.worker_id, status=JobStatus.SUCCEEDED)
        except (JobLost, NotFound):
            log.info("job %s ended elsewhere (cancelled, requeued or forgotten); artifact discarded", job.id)
            self._delete_if_unreferenced(stored.relative_path)
            return
        if replaced is not None:
            self.files.delete(replaced)
        log.info("job %s succeeded: %s", job.id, trained.metrics["summary"])

    def _finish(self, job_id: int, status: JobStatus, *, error: str | None = None) -> None:
        try:
            with session_scope(self.db) as session:
                finish_job(session, job_id=job_id, worker_id=self.worker_id, status=status, error=error)
        except JobLost:
            log.info("job %s ended elsewhere before it could be marked %s", job_id, status)

    def _requeue_own(self, job_id: int) -> None:
        now = utc_now()
        with session_scope(self.db) as session:
            requeue_stale_jobs(
                session, stale_before=now + timedelta(seconds=1), worker_id=self.worker_id, now=now
            )
        log.info("job %s put back in the queue for the next worker", job_id)

    def _delete_if_unreferenced(self, relative_path: str) -> None:
        with session_scope(self.db) as session:
            used = session.exec(
                select(Subject.id).where(Subject.artifact_path == relative_path).limit(1)
            ).first()
        if used is None:
            self.files.delete(relative_path)


@dataclass(frozen=True)
class _Trained:
    subject_id: str
    owner_id: int
    subject: LearnedSubject
    metrics: dict[str, Any]


def _beat_until(reporter: JobReporter, done: threading.Event) -> None:
    while not done.wait(reporter.timing.heartbeat_seconds):
        reporter.beat()


def _is_out_of_memory(error: Exception) -> bool:
    return "out of memory" in str(error).lower()
