"""The tables, as SQLModel classes. This is the *head* schema; storage.migrations builds it.

A change here needs a migration step in storage.migrations (tests compare the two).
No ``from __future__ import annotations`` here: it breaks SQLModel's field introspection.
"""

import enum
import json
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.sqltypes import StrEnumType, UTCDateTime, utc_now


class SubjectStatus(enum.StrEnum):
    """Where a subject is in its life: usable at once, better once ``READY``."""

    QUEUED = "queued"
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"


class JobStatus(enum.StrEnum):
    """A training job's state: queued → running → succeeded | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


FINISHED_JOB_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class EventKind(enum.StrEnum):
    """What a ``JobEvent`` announces."""

    STARTED = "started"
    PROGRESS = "progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REQUEUED = "requeued"


def _new_subject_id() -> str:
    return uuid.uuid4().hex


def _timestamp(*, nullable: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True)
    return Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=False)


class User(SQLModel, table=True):
    """A Discord user who has taught the bot something. ``id`` is the Discord snowflake."""

    __tablename__ = "user"

    id: int = Field(sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    locale: str | None = Field(default=None, max_length=16, nullable=True)
    created_at: datetime = _timestamp()


class Subject(SQLModel, table=True):
    """A pet, person or object one user taught. ``name_key`` is the case-folded display name."""

    __tablename__ = "subject"
    __table_args__ = (sa.UniqueConstraint("owner_id", "name_key", name="uq_subject_owner_name"),)

    id: str = Field(default_factory=_new_subject_id, primary_key=True, max_length=32)
    owner_id: int = Field(sa_type=sa.BigInteger, foreign_key="user.id", ondelete="CASCADE", index=True)
    display_name: str = Field(max_length=100)
    name_key: str = Field(max_length=100)
    kind: str = Field(max_length=32)
    facts: str | None = Field(default=None, sa_type=sa.Text, nullable=True)
    status: SubjectStatus = Field(
        default=SubjectStatus.QUEUED, sa_type=StrEnumType(SubjectStatus), nullable=False
    )
    artifact_sha256: str | None = Field(default=None, max_length=64, nullable=True)
    artifact_path: str | None = Field(default=None, max_length=255, nullable=True)
    metrics_json: str | None = Field(default=None, sa_type=sa.Text, nullable=True)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()

    @property
    def metrics(self) -> dict[str, Any] | None:
        """The held-out recognition figures of the last training, decoded."""
        return None if self.metrics_json is None else json.loads(self.metrics_json)


class Photo(SQLModel, table=True):
    """One validated photo of a subject; the bytes live in the file store at ``path``."""

    __tablename__ = "photo"
    __table_args__ = (sa.UniqueConstraint("subject_id", "sha256", name="uq_photo_subject_sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    # No index of its own on subject_id: the unique constraint's index leads with it.
    subject_id: str = Field(max_length=32, foreign_key="subject.id", ondelete="CASCADE")
    sha256: str = Field(max_length=64, index=True)
    size_bytes: int
    width: int
    height: int
    mime: str = Field(max_length=32)
    path: str = Field(max_length=255, description="relative to the data directory")
    created_at: datetime = _timestamp()


class TrainingJob(SQLModel, table=True):
    """A row per training request: the queue itself (the scheduler is only a clock)."""

    __tablename__ = "training_job"
    __table_args__ = (
        sa.Index("ix_training_job_status_id", "status", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    subject_id: str = Field(max_length=32, foreign_key="subject.id", ondelete="CASCADE", index=True)
    owner_id: int = Field(sa_type=sa.BigInteger, index=True)
    status: JobStatus = Field(default=JobStatus.QUEUED, sa_type=StrEnumType(JobStatus), nullable=False)
    step: int = 0
    total_steps: int = 0
    loss: float | None = Field(default=None, nullable=True)
    eta_seconds: float | None = Field(default=None, nullable=True)
    progress: float = Field(default=0.0, description="0..1")
    attempts: int = 0
    max_attempts: int = 3
    cancel_requested: bool = False
    worker_id: str | None = Field(default=None, max_length=64, nullable=True)
    heartbeat_at: datetime | None = _timestamp(nullable=True)
    error: str | None = Field(default=None, sa_type=sa.Text, nullable=True)
    created_at: datetime = _timestamp()
    started_at: datetime | None = _timestamp(nullable=True)
    finished_at: datetime | None = _timestamp(nullable=True)


class JobEvent(SQLModel, table=True):
    """The outbox: the worker appends, the bot polls ``events_after(last_id)`` and fans out.

    ``sqlite_autoincrement`` keeps ids from being reused after purges, so a poller's cursor
    never skips a new event.
    """

    __tablename__ = "job_event"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int | None = Field(
        default=None, foreign_key="training_job.id", ondelete="CASCADE", nullable=True, index=True
    )
    subject_id: str | None = Field(default=None, max_length=32, nullable=True)
    owner_id: int = Field(sa_type=sa.BigInteger)
    kind: str = Field(max_length=32)
    payload_json: str = Field(default="{}", sa_type=sa.Text)
    created_at: datetime = _timestamp()

    @property
    def payload(self) -> dict[str, Any]:
        """The decoded ``payload_json``."""
        result: dict[str, Any] = json.loads(self.payload_json)
        return result
