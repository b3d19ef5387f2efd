"""The worker's training loop: cancel within one step, forget mid-training, answers first."""

import asyncio
import dataclasses
import time

from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.services.api import Services
from storage import FileStore, JobStatus, Namespace, TrainingJob, request_cancel, session_scope
from tests.services.support import other_photo, row_counts, stored_files, uploads
from tests.worker.conftest import InProcessWorker

WAIT_SECONDS = 120


def _job(db: Engine, job_id: int) -> TrainingJob | None:
    with session_scope(db) as session:
        return session.get(TrainingJob, job_id)


async def _until_step(db: Engine, job_id: int, step: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while (job := _job(db, job_id)) is None or job.step < step:
        assert time.monotonic() < deadline, "training did not progress"
        await asyncio.sleep(0.005)


async def _until_idle(worker: InProcessWorker) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while worker.loop.current_job_id is not None:
        assert time.monotonic() < deadline, "the worker did not let go of the job"
        await asyncio.sleep(0.01)


def _artifacts(files: FileStore) -> list[str]:
    folder = files.root / Namespace.SUBJECTS.value
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def test_cancel_stops_within_one_step(
    services: Services, worker: InProcessWorker, db: Engine, files: FileStore
) -> None:
    receipt = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(4))
    worker.start_training()
    await _until_step(db, receipt.job_id, 3)
    with session_scope(db) as session:  # the cancel and the step it saw commit together
        assert request_cancel(session, owner_id=1, job_id=receipt.job_id) is not None
        step_at_cancel = session.exec(select(TrainingJob.step).where(TrainingJob.id == receipt.job_id)).one()
    await _until_idle(worker)

    job = _job(db, receipt.job_id)
    assert job is not None and job.status == JobStatus.CANCELLED
    assert step_at_cancel <= job.step <= step_at_cancel + 1, (step_at_cancel, job.step, job.total_steps)
    assert job.step < job.total_steps
    assert _artifacts(files) == []


async def test_forget_during_training_leaves_nothing(
    services: Services, worker: InProcessWorker, db: Engine, files: FileStore
) -> None:
    receipt = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(4))
    worker.start_training()
    await _until_step(db, receipt.job_id, 2)
    result = await services.forget(user_id=1, name="Bo")
    await _until_idle(worker)

    assert result.jobs_cancelled == 1 and result.photos_deleted == 4
    assert stored_files(files.root) == []
    assert row_counts(db) == {"user": 1, "subject": 0, "photo": 0, "job": 0}


async def test_answers_go_ahead_of_training(services: Services, worker: InProcessWorker, db: Engine) -> None:
    long = dataclasses.replace(worker.loop.preset.config, epochs=40)
    worker.loop.preset = dataclasses.replace(worker.loop.preset, config=long)
    receipt = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(4))
    worker.start_training()
    await _until_step(db, receipt.job_id, 5)

    started = time.monotonic()
    answer = await services.ask(user_id=2, question="What is in this picture?", image=other_photo())
    waited = time.monotonic() - started

    job = _job(db, receipt.job_id)
    assert job is not None and job.status == JobStatus.RUNNING and job.step < job.total_steps, (
        "the answer waited for the whole training"
    )
    assert answer.text is not None and waited < 10
    await services.cancel(user_id=1, job_id=receipt.job_id)
    await _until_idle(worker)
