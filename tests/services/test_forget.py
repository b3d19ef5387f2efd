"""Forget and cancel: afterwards nothing of the subject is left on disk or in the database."""

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.services.api import ServiceLimits, Services, UnknownSubject
from storage import FileStore, JobEvent, Namespace, Subject, claim_next_job, session_scope
from tests.services.support import FakeModel, row_counts, stored_files, uploads


async def test_forget_one_subject_removes_its_files_and_rows(
    services: Services, db: Engine, files: FileStore
) -> None:
    bo = await services.teach(user_id=1, name="Bo", photos=uploads(3))
    artifact = files.put(b"trained tensors", suffix="safetensors", namespace=Namespace.SUBJECTS)
    with session_scope(db) as session:
        subject = session.get(Subject, bo.subject_id)
        assert subject is not None
        subject.artifact_path, subject.artifact_sha256 = artifact.relative_path, artifact.sha256
        session.add(subject)

    result = await services.forget(user_id=1, name="bo")

    assert result.subjects == ["Bo"] and result.photos_deleted == 3 and result.jobs_cancelled == 1
    assert result.files_deleted == 4
    assert stored_files(files.root) == []
    assert row_counts(db) == {"user": 1, "subject": 0, "photo": 0, "job": 0}
    with session_scope(db) as session:
        assert session.exec(select(JobEvent.id)).all() == []
    with pytest.raises(UnknownSubject):
        await services.forget(user_id=1, name="Bo")


async def test_forget_all_leaves_nothing_of_the_user(db: Engine, files: FileStore, model: FakeModel) -> None:
    services = Services(db=db, files=files, model=model, limits=ServiceLimits(max_active_jobs_per_user=2))
    await services.teach(user_id=1, name="Bo", photos=uploads(3))
    with session_scope(db) as session:
        claim_next_job(session, worker_id="w")  # a training in progress
    await services.teach(user_id=1, name="Rex", photos=uploads(3, first_seed=10))
    await services.teach(user_id=2, name="Mam", photos=uploads(3, first_seed=20))

    result = await services.forget(user_id=1, name="ALL")

    assert sorted(result.subjects) == ["Bo", "Rex"] and result.files_deleted == 6
    assert row_counts(db) == {"user": 1, "subject": 1, "photo": 3, "job": 1}
    assert len(stored_files(files.root)) == 3
    with session_scope(db) as session:
        owners = session.exec(select(JobEvent.owner_id)).all()
    assert 1 not in owners


async def test_cancel_a_queued_job(services: Services) -> None:
    bo = await services.teach(user_id=1, name="Bo", photos=uploads(3))
    assert await services.cancel(user_id=1, job_id=bo.job_id) is True
    assert await services.cancel(user_id=1, job_id=bo.job_id) is False
    [summary] = await services.list_subjects(user_id=1)
    assert summary.job is None
    [job] = (await services.status(user_id=1)).jobs
    assert job.status == "cancelled"
