"""Repository functions: every read and write the application makes, one function each.

Conventions: each takes a ``session`` first and keyword-only arguments after; none commits (the
caller's ``session_scope`` does, so one use-case is one transaction); times are timezone-aware UTC
and ``now`` defaults to the current time (tests pass it). Anything owner-facing takes
``owner_id`` and treats another owner's row exactly like a missing one.

Job state changes append a ``JobEvent`` in the same transaction (an outbox), so the bot learns of
every committed change and of nothing that was rolled back. ``Subject.status`` is derived from the
subject's artifact and jobs after every job change: ``ready`` once it has an artifact (even while
a retraining runs), else ``training`` / ``queued`` while a job is, else ``failed``.
"""

import json
import unicodedata
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from storage.errors import DuplicateName, JobLost, NotFound, StorageError
from storage.models import (
    FINISHED_JOB_STATUSES,
    EventKind,
    JobEvent,
    JobStatus,
    Photo,
    Subject,
    SubjectStatus,
    TrainingJob,
    User,
)
from storage.sqltypes import utc_now

MAX_NAME_LENGTH = 100
_ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class RequeueResult(NamedTuple):
    """Ids of the stale running jobs put back in the queue, and of those given up on."""

    requeued: list[int]
    failed: list[int]


# ---------------------------------------------------------------------------------------- users


def get_or_create_user(
    session: Session, *, user_id: int, locale: str | None = None, now: datetime | None = None
) -> User:
    """The user row for a Discord user id, inserted if absent (safe against a concurrent insert).

    A non-None ``locale`` (Discord's, e.g. ``"en-US"``) is recorded.
    """
    user = session.get(User, user_id)
    if user is None:
        new_user = User(id=user_id, locale=locale, created_at=now or utc_now())
        dialect = session.get_bind().dialect.name
        if dialect in ("sqlite", "postgresql"):
            insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(User)
            values = new_user.model_dump()
            session.exec(insert.values(**values).on_conflict_do_nothing(index_elements=["id"]))
            user = session.get(User, user_id, populate_existing=True)
            assert user is not None
        else:
            session.add(new_user)
            session.flush()
            user = new_user
    if locale is not None and user.locale != locale:
        user.locale = locale
        session.add(user)
        session.flush()
    return user


# ------------------------------------------------------------------------------------- subjects


def subject_name_key(name: str) -> str:
    """The key names are compared by: NFKC, whitespace collapsed, case-folded ("Bo" == " bO ")."""
    return unicodedata.normalize("NFKC", " ".join(name.split())).casefold()


def create_subject(
    session: Session,
    *,
    owner_id: int,
    display_name: str,
    kind: str,
    facts: str | None = None,
    now: datetime | None = None,
) -> Subject:
    """Create a subject (and the owner's user row if needed), status ``queued``.

    Raises:
        ValueError: the name is empty or longer than ``MAX_NAME_LENGTH``.
        DuplicateName: the owner already has a subject with this name (case-insensitively).
    """
    display_name = " ".join(display_name.split())
    name_key = subject_name_key(display_name)
    if not name_key or len(display_name) > MAX_NAME_LENGTH or len(name_key) > MAX_NAME_LENGTH:
        raise ValueError(f"a subject name must be 1-{MAX_NAME_LENGTH} characters")
    now = now or utc_now()
    get_or_create_user(session, user_id=owner_id, now=now)
    if find_subject_by_name(session, owner_id=owner_id, name=display_name) is not None:
        raise DuplicateName(f"you already have a subject named {display_name!r}")
    subject = Subject(
        owner_id=owner_id,
        display_name=display_name,
        name_key=name_key,
        kind=kind,
        facts=facts,
        created_at=now,
        updated_at=now,
    )
    session.add(subject)
    try:
        session.flush()
    except sa.exc.IntegrityError as error:  # lost a race with a concurrent create
        raise DuplicateName(f"you already have a subject named {display_name!r}") from error
    return subject


def get_subject_for_owner(session: Session, *, owner_id: int, subject_id: str) -> Subject | None:
    """The subject if it exists *and* belongs to ``owner_id``; otherwise None."""
    statement = select(Subject).where(Subject.id == subject_id, Subject.owner_id == owner_id)
    return session.exec(statement).first()


def find_subject_by_name(session: Session, *, owner_id: int, name: str) -> Subject | None:
    """The owner's subject whose name matches ``name`` case-insensitively, or None."""
    statement = select(Subject).where(
        Subject.owner_id == owner_id, Subject.name_key == subject_name_key(name)
    )
    return session.exec(statement).first()


def list_subjects(
    session: Session, *, owner_id: int, name_prefix: str | None = None, limit: int | None = None
) -> list[Subject]:
    """The owner's subjects by name; ``name_prefix`` filters case-insensitively (autocomplete)."""
    statement = select(Subject).where(Subject.owner_id == owner_id)
    if name_prefix:
        statement = statement.where(
            col(Subject.name_key).startswith(subject_name_key(name_prefix), autoescape=True)
        )
    statement = statement.order_by(col(Subject.name_key))
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.exec(statement).all())


def count_subjects(session: Session, *, owner_id: int) -> int:
    """How many subjects the owner has (for the quota)."""
    statement = select(sa.func.count()).select_from(Subject).where(Subject.owner_id == owner_id)
    return session.exec(statement).one()


def set_subject_facts(
    session: Session, *, owner_id: int, subject_id: str, facts: str | None, now: datetime | None = None
) -> Subject:
    """Replace the owner's free-text facts about the subject. Raises NotFound."""
    subject = _owned_subject(session, owner_id=owner_id, subject_id=subject_id)
    subject.facts = facts
    subject.updated_at = now or utc_now()
    session.add(subject)
    session.flush()
    return subject


def record_subject_artifact(
    session: Session,
    *,
    owner_id: int,
    subject_id: str,
    artifact_sha256: str,
    artifact_path: str,
    metrics: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> str | None:
    """Point the subject at its trained tensors and mark it ``ready``. Raises NotFound.

    Returns the artifact path this replaced if no subject references it any more (the caller
    deletes that file after committing), else None.
    """
    subject = _owned_subject(session, owner_id=owner_id, subject_id=subject_id)
    previous = subject.artifact_path
    subject.artifact_sha256 = artifact_sha256
    subject.artifact_path = artifact_path
    subject.metrics_json = None if metrics is None else json.dumps(dict(metrics), sort_keys=True)
    subject.status = SubjectStatus.READY
    subject.updated_at = now or utc_now()
    session.add(subject)
    session.flush()
    if previous is None or previous == artifact_path:
        return None
    return None if _artifact_referenced(session, previous) else previous


def delete_subject(session: Session, *, owner_id: int, subject_id: str) -> list[str]:
    """Delete the subject with its photos, jobs and events (cascades). Raises NotFound.

    Returns the stored files' relative paths that no remaining row references; the caller
    deletes them from the file store *after* committing (a rollback then loses no file).
    """
    subject = _owned_subject(session, owner_id=owner_id, subject_id=subject_id)
    photos = session.exec(select(Photo).where(Photo.subject_id == subject_id)).all()
    candidates = {(photo.sha256, photo.path) for photo in photos}
    artifact_path = subject.artifact_path
    session.exec(sa.delete(JobEvent).where(col(JobEvent.subject_id) == subject_id))
    session.exec(sa.delete(Subject).where(col(Subject.id) == subject_id))
    orphans = [
        path
        for sha256, path in sorted(candidates)
        if session.exec(select(Photo.id).where(Photo.sha256 == sha256, Photo.path == path).limit(1)).first()
        is None
    ]
    if artifact_path is not None and not _artifact_referenced(session, artifact_path):
        orphans.append(artifact_path)
    return orphans


# --------------------------------------------------------------------------------------- photos


def add_photo(
    session: Session,
    *,
    owner_id: int,
    subject_id: str,
    sha256: str,
    size_bytes: int,
    width: int,
    height: int,
    mime: str,
    path: str,
    now: datetime | None = None,
) -> tuple[Photo, bool]:
    """Attach a stored photo to the owner's subject. Raises NotFound.

    Returns ``(photo, added)``; ``added`` is False when the subject already has a photo with
    this hash, and the existing row is returned.
    """
    _owned_subject(session, owner_id=owner_id, subject_id=subject_id)
    existing = session.exec(
        select(Photo).where(Photo.subject_id == subject_id, Photo.sha256 == sha256)
    ).first()
    if existing is not None:
        return existing, False
    photo = Photo(
        subject_id=subject_id,
        sha256=sha256,
        size_bytes=size_bytes,
        width=width,
        height=height,
        mime=mime,
        path=path,
        created_at=now or utc_now(),
    )
    session.add(photo)
    session.flush()
    return photo, True


def list_photos(session: Session, *, owner_id: int, subject_id: str) -> list[Photo]:
    """The photos of the owner's subject in upload order; empty for another owner's subject."""
    statement = (
        select(Photo)
        .join(Subject, col(Subject.id) == col(Photo.subject_id))
        .where(Photo.subject_id == subject_id, Subject.owner_id == owner_id)
        .order_by(col(Photo.id))
    )
    return list(session.exec(statement).all())


def count_photos(session: Session, *, owner_id: int, subject_id: str) -> int:
    """How many photos the owner's subject has (for the quota)."""
    statement = (
        select(sa.func.count())
        .select_from(Photo)
        .join(Subject, col(Subject.id) == col(Photo.subject_id))
        .where(Photo.subject_id == subject_id, Subject.owner_id == owner_id)
    )
    return session.exec(statement).one()


# ----------------------------------------------------------------------------------------- jobs


def enqueue_job(
    session: Session,
    *,
    owner_id: int,
    subject_id: str,
    total_steps: int = 0,
    max_attempts: int = 3,
    now: datetime | None = None,
) -> TrainingJob:
    """Queue a training of the owner's subject. Raises NotFound.

    If the subject already has a *queued* job, that job is returned unchanged (it will see every
    photo when it starts). A *running* job does not stop a new one being queued behind it.
    """
    _owned_subject(session, owner_id=owner_id, subject_id=subject_id)
    queued = session.exec(
        select(TrainingJob).where(
            TrainingJob.subject_id == subject_id, TrainingJob.status == JobStatus.QUEUED
        )
    ).first()
    if queued is not None:
        return queued
    now = now or utc_now()
    job = TrainingJob(
        subject_id=subject_id,
        owner_id=owner_id,
        total_steps=total_steps,
        max_attempts=max_attempts,
        created_at=now,
    )
    session.add(job)
    session.flush()
    _refresh_subject_status(session, subject_id=subject_id, now=now)
    return job


def claim_next_job(session: Session, *, worker_id: str, now: datetime | None = None) -> TrainingJob | None:
    """Atomically take the oldest queued job for ``worker_id``, or None if the queue is empty.

    Exclusive under any number of concurrent workers: one statement both picks and marks the
    row. On PostgreSQL the pick is ``FOR UPDATE SKIP LOCKED``, so workers on other machines skip a
    row being claimed instead of waiting for it (and never both get it). On SQLite the UPDATE
    takes the database's single write lock before it reads, so the pick cannot go stale. The job
    leaves as ``running`` with ``attempts`` incremented and a fresh heartbeat; commit promptly.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise StorageError(f"claiming jobs is not implemented for {dialect}")
    now = now or utc_now()
    oldest_queued = (
        select(TrainingJob.id)
        .where(TrainingJob.status == JobStatus.QUEUED)
        .order_by(col(TrainingJob.id))
        .limit(1)
    )
    if dialect == "postgresql":
        oldest_queued = oldest_queued.with_for_update(skip_locked=True)
    claim = (
        sa.update(TrainingJob)
        .where(
            col(TrainingJob.id) == oldest_queued.scalar_subquery(),
            col(TrainingJob.status) == JobStatus.QUEUED,
        )
        .values(
            status=JobStatus.RUNNING,
            worker_id=worker_id,
            attempts=col(TrainingJob.attempts) + 1,
            started_at=now,
            heartbeat_at=now,
            step=0,
            progress=0.0,
            loss=None,
            eta_seconds=None,
            error=None,
        )
        .returning(col(TrainingJob.id))
        .execution_options(synchronize_session=False)
    )
    job_id = session.exec(claim).scalar_one_or_none()
    if job_id is None:
        return None
    job = _reload_job(session, job_id)
    _refresh_subject_status(session, subject_id=job.subject_id, now=now)
    _append_job_event(session, job, EventKind.STARTED, now)
    return job


def update_job_progress(
    session: Session,
    *,
    job_id: int,
    worker_id: str,
    step: int,
    total_steps: int,
    loss: float | None = None,
    eta_seconds: float | None = None,
    now: datetime | None = None,
) -> TrainingJob:
    """Record training progress (and a heartbeat); appends a ``progress`` event.

    Returns the job, whose ``cancel_requested`` the worker should honour. Call every few seconds,
    not every step: each call is a write and an event.

    Raises:
        JobLost: the job is no longer running under ``worker_id`` (requeued, cancelled, deleted).
    """
    now = now or utc_now()
    progress = min(max(step / total_steps, 0.0), 1.0) if total_steps > 0 else 0.0
    job = _update_running_job(
        session,
        job_id=job_id,
        worker_id=worker_id,
        values={
            "step": step,
            "total_steps": total_steps,
            "loss": loss,
            "eta_seconds": eta_seconds,
            "progress": progress,
            "heartbeat_at": now,
        },
    )
    _append_job_event(session, job, EventKind.PROGRESS, now)
    return job


def heartbeat(session: Session, *, job_id: int, worker_id: str, now: datetime | None = None) -> TrainingJob:
    """Tell the queue the worker is alive; returns the job (see ``cancel_requested``).

    Raises:
        JobLost: the job is no longer running under ``worker_id``.
    """
    return _update_running_job(
        session, job_id=job_id, worker_id=worker_id, values={"heartbeat_at": now or utc_now()}
    )


def finish_job(
    session: Session,
    *,
    job_id: int,
    worker_id: str,
    status: JobStatus,
    error: str | None = None,
    now: datetime | None = None,
) -> TrainingJob:
    """End a running job as succeeded, failed or cancelled; appends the matching event.

    Record the artifact first (``record_subject_artifact``, same transaction) so the subject
    turns ``ready``. A failed job is final: retries are for workers that died
    (``requeue_stale_jobs``), not for errors the training itself raised.

    Raises:
        ValueError: ``status`` is not a finished status.
        JobLost: the job is no longer running under ``worker_id``.
    """
    status = JobStatus(status)
    if status not in FINISHED_JOB_STATUSES:
        raise ValueError(f"finish_job needs a finished status, got {status!r}")
    now = now or utc_now()
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        "finished_at": now,
        "heartbeat_at": now,
    }
    if status == JobStatus.SUCCEEDED:
        values.update(progress=1.0, eta_seconds=0.0, step=col(TrainingJob.total_steps))
    job = _update_running_job(session, job_id=job_id, worker_id=worker_id, values=values)
    _refresh_subject_status(session, subject_id=job.subject_id, now=now)
    _append_job_event(session, job, EventKind(status.value), now)
    return job


def request_cancel(
    session: Session, *, owner_id: int, job_id: int, now: datetime | None = None
) -> TrainingJob | None:
    """Cancel the owner's job: a queued one at once, a running one by flagging it for its worker.

    Returns the job, or None if it is not the owner's or already finished.
    """
    now = now or utc_now()
    mine = (col(TrainingJob.id) == job_id, col(TrainingJob.owner_id) == owner_id)
    cancelled = session.exec(
        sa.update(TrainingJob)
        .where(*mine, col(TrainingJob.status) == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELLED, cancel_requested=True, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    if cancelled.rowcount == 1:
        job = _reload_job(session, job_id)
        _refresh_subject_status(session, subject_id=job.subject_id, now=now)
        _append_job_event(session, job, EventKind.CANCELLED, now)
        return job
    flagged = session.exec(
        sa.update(TrainingJob)
        .where(*mine, col(TrainingJob.status) == JobStatus.RUNNING)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    return _reload_job(session, job_id) if flagged.rowcount == 1 else None


def requeue_stale_jobs(
    session: Session,
    *,
    stale_before: datetime,
    worker_id: str | None = None,
    now: datetime | None = None,
) -> RequeueResult:
    """Recover running jobs whose worker died (heartbeat older than ``stale_before``).

    A job with attempts left goes back to the queue (event ``requeued``); one that has used
    ``max_attempts`` fails with a reason (event ``failed``). Each row is re-checked in its
    UPDATE, so a worker heartbeating at the same moment keeps its job. ``worker_id`` limits
    recovery to that worker's jobs: a restarted worker with a stable id passes its own id and
    ``stale_before=now`` to take back, at once, what its previous life left running.
    """
    now = now or utc_now()
    conditions: list[Any] = [
        TrainingJob.status == JobStatus.RUNNING,
        col(TrainingJob.heartbeat_at) < stale_before,
    ]
    if worker_id is not None:
        conditions.append(col(TrainingJob.worker_id) == worker_id)
    stale = session.exec(
        select(TrainingJob.id, TrainingJob.attempts, TrainingJob.max_attempts).where(*conditions)
    ).all()
    result = RequeueResult(requeued=[], failed=[])
    for job_id, attempts, max_attempts in stale:
        assert job_id is not None
        gives_up = attempts >= max_attempts
        values: dict[str, Any] = {"worker_id": None, "cancel_requested": False}
        if gives_up:
            values.update(
                status=JobStatus.FAILED,
                finished_at=now,
                error=(
                    f"The training worker stopped responding {attempts} times; giving up. "
                    "Try teaching again later."
                ),
            )
        else:
            values.update(status=JobStatus.QUEUED, step=0, progress=0.0, loss=None, eta_seconds=None)
        updated = session.exec(
            sa.update(TrainingJob)
            .where(col(TrainingJob.id) == job_id, *conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if updated.rowcount != 1:
            continue
        job = _reload_job(session, job_id)
        _refresh_subject_status(session, subject_id=job.subject_id, now=now)
        _append_job_event(session, job, EventKind.FAILED if gives_up else EventKind.REQUEUED, now)
        (result.failed if gives_up else result.requeued).append(job_id)
    return result


def get_job_for_owner(session: Session, *, owner_id: int, job_id: int) -> TrainingJob | None:
    """The job if it exists and belongs to ``owner_id``; otherwise None."""
    statement = select(TrainingJob).where(TrainingJob.id == job_id, TrainingJob.owner_id == owner_id)
    return session.exec(statement).first()


def queue_position(session: Session, *, job_id: int) -> int | None:
    """1 for the next job to run, 2 behind it, …; 0 while running; None if finished or absent."""
    status = session.exec(select(TrainingJob.status).where(TrainingJob.id == job_id)).first()
    if status == JobStatus.RUNNING:
        return 0
    if status != JobStatus.QUEUED:
        return None
    statement = (
        select(sa.func.count())
        .select_from(TrainingJob)
        .where(TrainingJob.status == JobStatus.QUEUED, col(TrainingJob.id) <= job_id)
    )
    return session.exec(statement).one()


def active_job_for_owner(session: Session, *, owner_id: int) -> TrainingJob | None:
    """The owner's earliest queued or running job, or None."""
    return _first_active_job(session, TrainingJob.owner_id == owner_id)


def active_job_for_subject(session: Session, *, owner_id: int, subject_id: str) -> TrainingJob | None:
    """The earliest queued or running job of the owner's subject, or None."""
    return _first_active_job(session, TrainingJob.owner_id == owner_id, TrainingJob.subject_id == subject_id)


def count_active_jobs(session: Session, *, owner_id: int) -> int:
    """How many of the owner's jobs are queued or running (for the quota)."""
    statement = (
        select(sa.func.count())
        .select_from(TrainingJob)
        .where(TrainingJob.owner_id == owner_id, col(TrainingJob.status).in_(_ACTIVE_JOB_STATUSES))
    )
    return session.exec(statement).one()


def list_jobs(
    session: Session,
    *,
    owner_id: int | None = None,
    statuses: Collection[JobStatus] | None = None,
    limit: int = 50,
) -> list[TrainingJob]:
    """Jobs newest first: one owner's (``owner_id``) or everyone's (None, for operators)."""
    statement = select(TrainingJob)
    if owner_id is not None:
        statement = statement.where(TrainingJob.owner_id == owner_id)
    if statuses is not None:
        statement = statement.where(col(TrainingJob.status).in_(list(statuses)))
    statement = statement.order_by(col(TrainingJob.id).desc()).limit(limit)
    return list(session.exec(statement).all())


# --------------------------------------------------------------------------------------- events


def append_event(
    session: Session,
    *,
    owner_id: int,
    kind: str,
    payload: Mapping[str, Any],
    job_id: int | None = None,
    subject_id: str | None = None,
    now: datetime | None = None,
) -> JobEvent:
    """Append an event to the outbox; it becomes visible to pollers when the caller commits."""
    event = JobEvent(
        job_id=job_id,
        subject_id=subject_id,
        owner_id=owner_id,
        kind=str(kind),
        payload_json=json.dumps(dict(payload), sort_keys=True, default=str),
        created_at=now or utc_now(),
    )
    session.add(event)
    session.flush()
    return event


def events_after(session: Session, *, after_id: int, limit: int = 100) -> list[JobEvent]:
    """Committed events with ``id > after_id`` in id order, at most ``limit``.

    Poll with the last id seen. On SQLite writers are serialised, so ids commit in order. On
    PostgreSQL two transactions can commit ids out of order, so a poller may see id 8 before id
    7 commits; the bot should poll with a small overlap window if it runs there.
    """
    statement = select(JobEvent).where(col(JobEvent.id) > after_id).order_by(col(JobEvent.id)).limit(limit)
    return list(session.exec(statement).all())


def latest_event_id(session: Session) -> int:
    """The highest event id (0 if none): where a poller starting fresh should begin."""
    return session.exec(select(sa.func.max(JobEvent.id))).one() or 0


def purge_old_events(session: Session, *, before: datetime) -> int:
    """Delete events created before ``before``; returns how many."""
    result = session.exec(
        sa.delete(JobEvent)
        .where(col(JobEvent.created_at) < before)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


# -------------------------------------------------------------------------------------- helpers


def _owned_subject(session: Session, *, owner_id: int, subject_id: str) -> Subject:
    subject = get_subject_for_owner(session, owner_id=owner_id, subject_id=subject_id)
    if subject is None:
        raise NotFound("no such subject")
    return subject


def _artifact_referenced(session: Session, artifact_path: str) -> bool:
    statement = select(Subject.id).where(Subject.artifact_path == artifact_path).limit(1)
    return session.exec(statement).first() is not None


def _reload_job(session: Session, job_id: int) -> TrainingJob:
    job = session.get(TrainingJob, job_id, populate_existing=True)
    if job is None:
        raise JobLost(f"job {job_id} no longer exists")
    return job


def _update_running_job(
    session: Session, *, job_id: int, worker_id: str, values: Mapping[str, Any]
) -> TrainingJob:
    updated = session.exec(
        sa.update(TrainingJob)
        .where(
            col(TrainingJob.id) == job_id,
            col(TrainingJob.status) == JobStatus.RUNNING,
            col(TrainingJob.worker_id) == worker_id,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount != 1:
        raise JobLost(f"job {job_id} is not running under worker {worker_id!r}")
    return _reload_job(session, job_id)


def _first_active_job(session: Session, *conditions: Any) -> TrainingJob | None:
    statement = (
        select(TrainingJob)
        .where(*conditions, col(TrainingJob.status).in_(_ACTIVE_JOB_STATUSES))
        .order_by(col(TrainingJob.id))
        .limit(1)
    )
    return session.exec(statement).first()


def _refresh_subject_status(session: Session, *, subject_id: str, now: datetime) -> None:
    subject = session.get(Subject, subject_id, populate_existing=True)
    if subject is None:
        return
    statuses = set(
        session.exec(
            select(TrainingJob.status).where(
                TrainingJob.subject_id == subject_id,
                col(TrainingJob.status).in_(_ACTIVE_JOB_STATUSES),
            )
        ).all()
    )
    if subject.artifact_path is not None:
        status = SubjectStatus.READY
    elif JobStatus.RUNNING in statuses:
        status = SubjectStatus.TRAINING
    elif JobStatus.QUEUED in statuses:
        status = SubjectStatus.QUEUED
    else:
        status = SubjectStatus.FAILED
    if subject.status != status:
        subject.status = status
        subject.updated_at = now
        session.add(subject)
        session.flush()


def _append_job_event(session: Session, job: TrainingJob, kind: EventKind, now: datetime) -> None:
    append_event(
        session,
        owner_id=job.owner_id,
        kind=kind,
        job_id=job.id,
        subject_id=job.subject_id,
        payload={
            "status": job.status.value,
            "step": job.step,
            "total_steps": job.total_steps,
            "progress": job.progress,
            "loss": job.loss,
            "eta_seconds": job.eta_seconds,
            "attempts": job.attempts,
            "max_attempts": job.max_attempts,
            "error": job.error,
        },
        now=now,
    )
