"""A real worker subprocess killed with SIGKILL mid-training: the bot side carries on.

The supervisor restarts the worker; the new worker re-queues the job its predecessor left
running (same stable worker id) and trains it to the end. Nothing is lost or duplicated.
"""

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.services.api import JobUpdate, Services, WorkerUnavailable
from bot.services.clock import ClockPeriods
from bot.services.model_client import HttpModelClient
from bot.worker.supervisor import LocalWorker, LocalWorkerConfig, worker_arguments
from storage import FileStore, JobStatus, Namespace, TrainingJob, list_photos, session_scope
from tests.services.support import other_photo, uploads

START_SECONDS = 120
TRAIN_SECONDS = 240


async def _next(queue: "asyncio.Queue[JobUpdate]", kind: str, *, min_step: int = 0) -> JobUpdate:
    while True:
        update = await queue.get()
        if update.kind == kind and update.step >= min_step:
            return update


@pytest.mark.slow
async def test_kill_9_mid_training_recovers_the_job(
    tmp_path: Path, db: Engine, files: FileStore, tiny_model_dir: Path, negative_bank: Path
) -> None:
    database_url = db.url.render_as_string(hide_password=False)
    config = LocalWorkerConfig(
        database_url=database_url,
        data_dir=files.root,
        model=str(tiny_model_dir),
        device="cpu",
        dtype="fp32",
        negatives=negative_bank,
        preset="tiny",
        threads=2,
        worker_id="local-test",
        extra_args=worker_arguments(
            [
                ("--epochs", 6),
                ("--poll-seconds", 0.1),
                ("--progress-seconds", 0),
                ("--cancel-check-seconds", 0),
                ("--heartbeat-seconds", 0.5),
                ("--stale-seconds", 5),
                ("--log-level", "WARNING"),
            ]
        ),
        ready_timeout_seconds=START_SECONDS,
        restart_delays_seconds=(0.1,),
        stop_grace_seconds=20,
    )
    supervisor = LocalWorker(config)
    services = Services(
        db=db,
        files=files,
        model=HttpModelClient(supervisor, timeout_seconds=60),
        supervisor=supervisor,
        clock=ClockPeriods(event_poll_seconds=0.05),
    )
    await services.start()
    try:
        assert await services.wait_for_worker(START_SECONDS)
        first_pid = supervisor.pid
        updates = services.subscribe()
        receipt = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(5))

        await asyncio.wait_for(_next(updates, "progress", min_step=3), TRAIN_SECONDS)
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)

        # The bot side is unharmed: questions get a clear "try again", status still works.
        with pytest.raises(WorkerUnavailable):
            await services.ask(user_id=1, question="Is Bo in this photo?", image=other_photo())
        report = await services.status(user_id=1)
        assert report.jobs[0].job_id == receipt.job_id

        requeued = await asyncio.wait_for(_next(updates, "requeued"), START_SECONDS)
        assert requeued.job_id == receipt.job_id and "restarted" in requeued.message
        await asyncio.wait_for(_next(updates, "started"), START_SECONDS)
        done = await asyncio.wait_for(_next(updates, "succeeded"), TRAIN_SECONDS)
        assert done.job_id == receipt.job_id

        assert supervisor.restarts == 1 and supervisor.pid != first_pid
        assert supervisor.last_exit == "killed by SIGKILL"
        with session_scope(db) as session:
            job = session.get(TrainingJob, receipt.job_id)
            photos = list_photos(session, owner_id=1, subject_id=receipt.subject_id)
        assert job is not None and job.status == JobStatus.SUCCEEDED and job.attempts == 2
        assert len(photos) == 5 and all(files.exists(photo.path) for photo in photos)
        artifacts = [p for p in (files.root / Namespace.SUBJECTS.value).rglob("*") if p.is_file()]
        assert len(artifacts) == 1, artifacts
        [subject] = await services.list_subjects(user_id=1)
        assert subject.status == "ready"

        answer = await services.ask(user_id=1, question="Is Bo in this photo?", image=other_photo())
        assert answer.is_recognition and answer.text.split(",")[0] in ("Yes", "No")
    finally:
        stopped = time.monotonic()
        await services.close()
        assert time.monotonic() - stopped < 25, "the worker did not stop on SIGTERM"
    assert supervisor.pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(supervisor.pid, 0)
