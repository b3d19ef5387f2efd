"""Small builders shared by the storage tests."""

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from storage import Subject, TrainingJob, create_subject, enqueue_job, session_scope

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A fixed instant ``seconds`` after ``T0``."""
    return T0 + timedelta(seconds=seconds)


def make_subject(engine: Engine, *, owner_id: int = 1, name: str = "Bo") -> Subject:
    with session_scope(engine) as session:
        return create_subject(session, owner_id=owner_id, display_name=name, kind="pet", now=T0)


def make_jobs(engine: Engine, count: int, *, owner_id: int = 1) -> list[int]:
    """``count`` queued jobs, one per fresh subject; returns their ids in queue order."""
    ids: list[int] = []
    with session_scope(engine) as session:
        for index in range(count):
            subject = create_subject(
                session, owner_id=owner_id, display_name=f"subject {index}", kind="object", now=T0
            )
            job: TrainingJob = enqueue_job(session, owner_id=owner_id, subject_id=subject.id, now=T0)
            assert job.id is not None
            ids.append(job.id)
    return ids
