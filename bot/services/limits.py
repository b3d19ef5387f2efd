"""Quotas of the services, in one frozen dataclass. Errors name the bad field."""

from dataclasses import dataclass

# personalization.trainer.MIN_PHOTOS, restated: the bot process must not import torch (a test
# keeps the two equal).
MIN_TRAINING_PHOTOS = 3


@dataclass(frozen=True)
class ServiceLimits:
    """What one user, and everyone together, may ask of the bot.

    Attributes:
        min_photos_per_teach: fewest *new* photos a first teach needs (training needs
            ``personalization.trainer.MIN_PHOTOS``).
        max_photos_per_teach: most photos one teach call may carry.
        max_photos_per_subject: most photos a subject may hold in total.
        max_subjects_per_user: most subjects one user may have.
        max_active_jobs_per_user: queued + running trainings per user.
        max_queue_length: queued trainings for everyone together.
        max_question_chars: longest question accepted.
        max_job_attempts: how often a job whose worker died is retried before it fails.
        stale_heartbeat_seconds: a running job silent this long has lost its worker.
        event_retention_seconds: job events older than this are purged.
    """

    min_photos_per_teach: int = MIN_TRAINING_PHOTOS
    max_photos_per_teach: int = 10
    max_photos_per_subject: int = 30
    max_subjects_per_user: int = 10
    max_active_jobs_per_user: int = 1
    max_queue_length: int = 50
    max_question_chars: int = 1000
    max_job_attempts: int = 3
    stale_heartbeat_seconds: float = 120.0
    event_retention_seconds: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        for name in (
            "min_photos_per_teach",
            "max_photos_per_teach",
            "max_photos_per_subject",
            "max_subjects_per_user",
            "max_active_jobs_per_user",
            "max_queue_length",
            "max_question_chars",
            "max_job_attempts",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"ServiceLimits.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("stale_heartbeat_seconds", "event_retention_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ServiceLimits.{name} must be positive, got {getattr(self, name)}")
        if self.min_photos_per_teach > self.max_photos_per_teach:
            raise ValueError(
                f"ServiceLimits.min_photos_per_teach ({self.min_photos_per_teach}) exceeds "
                f"max_photos_per_teach ({self.max_photos_per_teach})"
            )
        if self.max_photos_per_teach > self.max_photos_per_subject:
            raise ValueError(
                f"ServiceLimits.max_photos_per_teach ({self.max_photos_per_teach}) exceeds "
                f"max_photos_per_subject ({self.max_photos_per_subject})"
            )
