"""What the services hand back: small frozen dataclasses, no ORM rows, no tensors, no discord.

Everything here is plain data the front end can render without touching the database or files
(thumbnails come as bytes for the same reason).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

JobUpdateKind = Literal["started", "progress", "succeeded", "failed", "cancelled", "requeued"]


@dataclass(frozen=True)
class PhotoUpload:
    """One uploaded file as the front end received it: untrusted bytes and the user's file name."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class TeachReceipt:
    """What ``Services.teach`` did.

    Attributes:
        subject_id: the subject's id (stable across renames; use it in buttons).
        job_id: the training job queued (or the one already queued for this subject).
        display_name: the subject's name as stored.
        is_new_subject: True when this teach created the subject.
        photos_added: new photos stored.
        photos_skipped: one sentence per photo skipped as a duplicate.
        queue_position: 1 = next to train, 2 = behind one, …; 0 = training now.
        total_photos: photos the subject has now.
    """

    subject_id: str
    job_id: int
    display_name: str
    is_new_subject: bool
    photos_added: int
    photos_skipped: list[str]
    queue_position: int
    total_photos: int


@dataclass(frozen=True)
class AskResult:
    """An answer.

    Attributes:
        text: the answer to show.
        subjects: display names of the subjects the answer was about.
        is_recognition: True when the answer is a calibrated yes/no ("Is Bo in this photo?").
        note: a caveat to show with the answer, e.g. "Bo is still training (queued #2); I'm
            answering from what I knew before." None when there is nothing to add.
    """

    text: str
    subjects: list[str]
    is_recognition: bool
    note: str | None = None


@dataclass(frozen=True)
class RecognitionHit:
    """One subject scored against one image: ``present`` is ``probability >= its threshold``."""

    subject: str
    probability: float
    present: bool


@dataclass(frozen=True)
class JobSummary:
    """A training job as a user (or an operator) sees it.

    ``queue_position`` is 1 for the next job to run, 0 while running, None once finished.
    ``loss`` and ``eta_seconds`` are None until the worker has reported them.
    """

    job_id: int
    subject_id: str
    subject: str
    status: str
    step: int
    total_steps: int
    loss: float | None
    eta_seconds: float | None
    queue_position: int | None
    owner_id: int
    attempts: int = 0
    error: str | None = None

    @property
    def progress(self) -> float:
        """0..1."""
        return min(self.step / self.total_steps, 1.0) if self.total_steps > 0 else 0.0


@dataclass(frozen=True)
class SubjectSummary:
    """One of the user's subjects.

    Attributes:
        status: "queued", "training", "ready" or "failed" (ready stays ready while retraining).
        metrics: held-out recognition figures of the last training (empty before any), e.g.
            ``{"positive_accuracy": 1.0, "negative_accuracy": 0.9, "weighted_accuracy": 0.95}``.
        thumbnails: encoded bytes (JPEG/PNG) of up to ``ServiceLimits``' first few photos, for a
            montage.
        job: the subject's queued or running training, if any.
    """

    subject_id: str
    name: str
    kind: str
    status: str
    photo_count: int
    metrics: dict[str, Any]
    thumbnails: list[bytes]
    facts: str | None = None
    created_at: datetime | None = None
    job: JobSummary | None = None


@dataclass(frozen=True)
class WorkerHealth:
    """What the bot knows of one model worker.

    Attributes:
        name: the worker's id ("local" for the one this process supervises).
        alive: whether it answered its last health check.
        model: the base model id it serves, if known.
        device: e.g. "cuda:0" or "cpu", if known.
        current_job_id: the job it is training, if any.
        restarts: how often the supervisor restarted it (local worker only).
        detail: a short human note (e.g. "restarting after a crash").
    """

    name: str
    alive: bool
    model: str | None = None
    device: str | None = None
    current_job_id: int | None = None
    restarts: int = 0
    detail: str | None = None


@dataclass(frozen=True)
class StatusReport:
    """``/status``: the user's jobs (or everyone's for an operator), the queue and the workers.

    ``negative_bank`` is None when the hard-negative bank is in place, else a warning sentence
    (recognition is much worse without it).
    """

    jobs: list[JobSummary]
    queue_length: int
    workers: list[WorkerHealth]
    negative_bank: str | None = None


@dataclass(frozen=True)
class ForgetResult:
    """What ``Services.forget`` removed (nothing of it remains on disk or in the database)."""

    subjects: list[str]
    photos_deleted: int
    files_deleted: int
    jobs_cancelled: int


@dataclass(frozen=True)
class JobUpdate:
    """A job event, fanned out to subscribers in the bot process.

    Attributes:
        kind: "started", "progress", "succeeded", "failed", "cancelled" or "requeued".
        message: for "succeeded" a sentence on how well held-out photos were recognised; for
            "failed" the reason; otherwise usually empty.
        metrics: for "succeeded", the held-out figures; else empty.
    """

    event_id: int
    job_id: int
    owner_id: int
    subject_id: str
    subject: str
    kind: JobUpdateKind
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    eta_seconds: float | None = None
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
