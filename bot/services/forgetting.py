"""Forget: a subject or everything of a user, rows first, then the files nothing else uses.

One transaction cancels the subjects' jobs and deletes their rows (photos, jobs and events
cascade); only after it commits are the files deleted, so a failure never leaves rows pointing
at missing files. A worker training a forgotten subject notices its job is gone at its next
step and discards what it made.
"""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.services.errors import UnknownSubject
from bot.services.files import delete_unreferenced
from bot.services.results import ForgetResult
from storage import (
    FileStore,
    JobEvent,
    JobStatus,
    Photo,
    Subject,
    TrainingJob,
    User,
    delete_subject,
    find_subject_by_name,
    list_subjects,
    session_scope,
)

EVERYTHING = "all"


@dataclass(frozen=True)
class _Removed:
    names: list[str]
    photos: int
    jobs_cancelled: int
    orphans: list[str]


def forget(db: Engine, files: FileStore, *, owner_id: int, name: str) -> ForgetResult:
    """Delete ``name`` (or, for "all", every subject and the user's own row).

    Raises:
        UnknownSubject: no subject of this user by that name.
    """
    with session_scope(db) as session:
        everything = name.strip().casefold() == EVERYTHING
        if everything:
            subjects = list_subjects(session, owner_id=owner_id)
        else:
            found = find_subject_by_name(session, owner_id=owner_id, name=name)
            if found is None:
                raise UnknownSubject(name)
            subjects = [found]
        removed = _delete(session, owner_id=owner_id, subjects=subjects)
        if everything:
            session.exec(sa.delete(JobEvent).where(col(JobEvent.owner_id) == owner_id))
            session.exec(sa.delete(User).where(col(User.id) == owner_id))
    files_deleted = delete_unreferenced(db, files, removed.orphans)
    return ForgetResult(
        subjects=removed.names,
        photos_deleted=removed.photos,
        files_deleted=files_deleted,
        jobs_cancelled=removed.jobs_cancelled,
    )


def _delete(session: Session, *, owner_id: int, subjects: list[Subject]) -> _Removed:
    names, orphans = [], []
    photos = cancelled = 0
    for subject in subjects:
        names.append(subject.display_name)
        photos += len(session.exec(select(Photo.id).where(Photo.subject_id == subject.id)).all())
        cancelled += len(
            session.exec(
                select(TrainingJob.id).where(
                    TrainingJob.subject_id == subject.id,
                    col(TrainingJob.status).in_([JobStatus.QUEUED, JobStatus.RUNNING]),
                )
            ).all()
        )
        orphans += delete_subject(session, owner_id=owner_id, subject_id=subject.id)
    return _Removed(names, photos, cancelled, orphans)
