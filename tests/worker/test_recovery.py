"""A restarted worker takes back its own running job at once; others' only once stale."""

from datetime import timedelta

from sqlalchemy.engine import Engine

from bot.worker.gate import PriorityGate
from bot.worker.presets import training_preset
from bot.worker.training import TrainingLoop
from personalization.engine import Engine as ModelEngine
from storage import (
    FileStore,
    JobStatus,
    TrainingJob,
    claim_next_job,
    create_subject,
    enqueue_job,
    session_scope,
    utc_now,
)
from tests.worker.conftest import FAST_TIMING


def test_recover_requeues_own_jobs_now_and_stale_ones(
    db: Engine, files: FileStore, tiny_engine: ModelEngine
) -> None:
    now = utc_now()
    claims = [("local-test", now), ("other", now), ("other", now - timedelta(seconds=60))]
    job_ids = []
    with session_scope(db) as session:
        for owner, (worker_id, when) in enumerate(claims, start=1):
            subject = create_subject(session, owner_id=owner, display_name="Bo", kind="dog")
            enqueue_job(session, owner_id=owner, subject_id=subject.id)
            job = claim_next_job(session, worker_id=worker_id, now=when)
            assert job is not None
            job_ids.append(job.id)
    loop = TrainingLoop(
        db=db,
        files=files,
        engine=tiny_engine,
        gate=PriorityGate(),
        preset=training_preset("tiny"),
        bank=None,
        worker_id="local-test",
        timing=FAST_TIMING,
    )

    result = loop.recover()

    assert sorted(result.requeued) == [job_ids[0], job_ids[2]] and result.failed == []
    with session_scope(db) as session:
        statuses = [session.get(TrainingJob, job_id).status for job_id in job_ids]  # type: ignore[union-attr]
    assert statuses == [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.QUEUED]
