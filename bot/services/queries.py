"""The read side: subjects, jobs and the queue as the front end shows them. Blocking (SQL, files).

Every function takes the asking user's id and returns only that user's rows (operators get
everyone's jobs through ``operator=True`` in :func:`jobs_report`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.services.results import JobSummary, SubjectSummary
from storage import (
    FileStore,
    JobStatus,
    Subject,
    TrainingJob,
    active_job_for_subject,
    count_photos,
    list_jobs,
    list_photos,
    list_subjects,
    queue_position,
)

THUMBNAILS_PER_SUBJECT = 4
RECENT_JOBS = 20


def job_summary(session: Session, job: TrainingJob, subject_name: str | None = None) -> JobSummary:
    """A job row as the front end sees it (with its queue position while active)."""
    assert job.id is not None
    if subject_name is None:
        subject = session.get(Subject, job.subject_id)
        subject_name = subject.display_name if subject is not None else "?"
    return JobSummary(
        job_id=job.id,
        subject_id=job.subject_id,
        subject=subject_name,
        status=job.status.value,
        step=job.step,
        total_steps=job.total_steps,
        loss=job.loss,
        eta_seconds=job.eta_seconds,
        queue_position=queue_position(session, job_id=job.id) if job.status.is_active else None,
        owner_id=job.owner_id,
        attempts=job.attempts,
        error=job.error,
    )


def subject_summaries(session: Session, files: FileStore, *, owner_id: int) -> list[SubjectSummary]:
    """The owner's subjects by name, each with thumbnails of its first photos and active job."""
    summaries = []
    for subject in list_subjects(session, owner_id=owner_id):
        photos = list_photos(session, owner_id=owner_id, subject_id=subject.id)
        thumbnails = []
        for photo in photos[:THUMBNAILS_PER_SUBJECT]:
            try:
                thumbnails.append(files.read(photo.path))
            except FileNotFoundError:
                continue
        job = active_job_for_subject(session, owner_id=owner_id, subject_id=subject.id)
        summaries.append(
            SubjectSummary(
                subject_id=subject.id,
                name=subject.display_name,
                kind=subject.kind,
                status=subject.status.value,
                photo_count=len(photos),
                metrics=subject.metrics or {},
                thumbnails=thumbnails,
                facts=subject.facts,
                created_at=subject.created_at,
                job=None if job is None else job_summary(session, job, subject.display_name),
            )
        )
    return summaries


def subject_names(session: Session, *, owner_id: int, prefix: str, limit: int) -> list[str]:
    """The owner's subject names starting with ``prefix`` (case-insensitively)."""
    rows = list_subjects(session, owner_id=owner_id, name_prefix=prefix.strip() or None, limit=limit)
    return [subject.display_name for subject in rows]


def jobs_report(session: Session, *, owner_id: int, operator: bool) -> tuple[list[JobSummary], int]:
    """Recent jobs (the owner's, or everyone's for an operator) and the global queue length."""
    jobs = list_jobs(session, owner_id=None if operator else owner_id, limit=RECENT_JOBS)
    names = _names(session, [job.subject_id for job in jobs])
    summaries = [job_summary(session, job, names.get(job.subject_id, "?")) for job in jobs]
    queued = session.exec(
        select(sa.func.count()).select_from(TrainingJob).where(TrainingJob.status == JobStatus.QUEUED)
    ).one()
    return summaries, int(queued)


def photo_count(session: Session, *, owner_id: int, subject_id: str) -> int:
    return count_photos(session, owner_id=owner_id, subject_id=subject_id)


def _names(session: Session, subject_ids: Sequence[str]) -> dict[str, str]:
    if not subject_ids:
        return {}
    rows = session.exec(
        select(Subject.id, Subject.display_name).where(col(Subject.id).in_(list(set(subject_ids))))
    ).all()
    return dict(rows)
