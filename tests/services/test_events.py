"""Job events reach subscribers from the database outbox; the clock recovers and cleans up."""

import os
import time
from datetime import timedelta

from sqlalchemy.engine import Engine

from bot.services.api import Services
from bot.services.clock import Clock, ClockPeriods
from bot.services.limits import ServiceLimits
from storage import (
    FileStore,
    JobStatus,
    Namespace,
    claim_next_job,
    finish_job,
    record_subject_artifact,
    session_scope,
    update_job_progress,
    utc_now,
)
from tests.services.support import stored_files, uploads


async def test_job_updates_are_fanned_out_in_order(services: Services, db: Engine) -> None:
    first, second = services.subscribe(), services.subscribe()
    bo = await services.teach(user_id=1, name="Bo", photos=uploads(3))
    with session_scope(db) as session:
        job = claim_next_job(session, worker_id="w")
        assert job is not None and job.id is not None
        update_job_progress(
            session, job_id=job.id, worker_id="w", step=3, total_steps=10, loss=0.5, eta_seconds=7
        )
        record_subject_artifact(
            session,
            owner_id=1,
            subject_id=bo.subject_id,
            artifact_sha256="a" * 64,
            artifact_path="subjects/aa/aa/a.safetensors",
            metrics={"summary": "recognised 1/1 of your held-out photos"},
        )
        finish_job(session, job_id=job.id, worker_id="w", status=JobStatus.SUCCEEDED)

    assert await services.events.poll() == 3
    updates = [first.get_nowait() for _ in range(3)]
    assert [u.kind for u in updates] == ["started", "progress", "succeeded"]
    progress, done = updates[1], updates[2]
    assert (progress.step, progress.total_steps, progress.loss, progress.eta_seconds) == (3, 10, 0.5, 7)
    assert done.subject == "Bo" and done.owner_id == 1 and done.job_id == bo.job_id
    assert done.message == "recognised 1/1 of your held-out photos"
    assert second.qsize() == 3

    services.unsubscribe(second)
    assert await services.events.poll() == 0


async def test_events_before_start_are_not_replayed(db: Engine, files: FileStore, services: Services) -> None:
    await services.teach(user_id=1, name="Bo", photos=uploads(3))
    with session_scope(db) as session:
        claim_next_job(session, worker_id="w")
    late = Services(db=db, files=files, model=services.model)
    await late.events.start()
    queue = late.subscribe()
    assert await late.events.poll() == 0 and queue.empty()


async def test_clock_requeues_stale_jobs_and_sweeps_orphans(
    services: Services, db: Engine, files: FileStore
) -> None:
    limits = ServiceLimits(stale_heartbeat_seconds=60)
    clock = Clock(db=db, files=files, dispatcher=services.events, limits=limits, periods=ClockPeriods())
    updates = services.subscribe()
    bo = await services.teach(user_id=1, name="Bo", photos=uploads(3))
    with session_scope(db) as session:
        claim_next_job(session, worker_id="dead", now=utc_now() - timedelta(seconds=120))

    result = await clock.recover_stale_jobs()
    assert result.requeued == [bo.job_id]
    await clock.dispatch_events()
    kinds = [updates.get_nowait().kind for _ in range(updates.qsize())]
    assert kinds == ["started", "requeued"]

    orphan = files.put(b"left by a crash", suffix="png", namespace=Namespace.PHOTOS)
    old = time.time() - 7200
    os.utime(files.path(orphan.relative_path), (old, old))
    for path in stored_files(files.root):  # the subject's own photos are old too, but referenced
        os.utime(path, (old, old))
    await clock.retain()
    assert not files.exists(orphan.relative_path)
    assert len(stored_files(files.root)) == 3


async def test_clock_starts_and_stops_with_the_services(services: Services) -> None:
    await services.start()
    await services.start()
    await services.close()
    await services.close()
