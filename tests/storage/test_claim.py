"""claim_next_job hands each queued job to exactly one of many concurrent workers."""

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from sqlalchemy.engine import Engine

from storage import JobStatus, claim_next_job, list_jobs, session_scope
from tests.storage.helpers import make_jobs

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_claims_in_queue_order_and_marks_running(engine: Engine) -> None:
    job_ids = make_jobs(engine, 3)
    claimed = []
    for _ in range(4):
        with session_scope(engine) as session:
            job = claim_next_job(session, worker_id="w1")
            claimed.append(None if job is None else (job.id, job.status, job.attempts))
    assert claimed == [*((job_id, JobStatus.RUNNING, 1) for job_id in job_ids), None]


def test_many_threads_claim_each_job_exactly_once(engine: Engine) -> None:
    job_ids = make_jobs(engine, 60)
    claims: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(worker_id: str) -> None:
        mine = claims.setdefault(worker_id, [])
        try:
            start.wait()
            while True:
                with session_scope(engine) as session:
                    job = claim_next_job(session, worker_id=worker_id)
                    if job is None:
                        return
                    assert job.id is not None and job.worker_id == worker_id
                    mine.append(job.id)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"thread-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    _assert_claimed_exactly_once(engine, claims, job_ids)


def test_many_processes_claim_each_job_exactly_once(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    job_ids = make_jobs(engine, 60)
    go_file = tmp_path / "go"
    workers = {
        f"process-{n}": subprocess.Popen(
            [sys.executable, "-m", "tests.storage.claim_worker", database_url, f"process-{n}", str(go_file)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    }
    for process in workers.values():
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    go_file.touch()
    claims: dict[str, list[int]] = {}
    for worker_id, process in workers.items():
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        claims[worker_id] = json.loads(stdout)
    _assert_claimed_exactly_once(engine, claims, job_ids)


def _assert_claimed_exactly_once(engine: Engine, claims: dict[str, list[int]], job_ids: list[int]) -> None:
    every_claim = [job_id for mine in claims.values() for job_id in mine]
    duplicates = [job_id for job_id, times in Counter(every_claim).items() if times > 1]
    assert duplicates == []
    assert sorted(every_claim) == sorted(job_ids)
    assert sum(1 for mine in claims.values() if mine) >= 2, "the workers never competed"
    with session_scope(engine) as session:
        jobs = list_jobs(session, limit=len(job_ids) + 1)
    owner_by_job = {job_id: worker for worker, mine in claims.items() for job_id in mine}
    assert {job.id: job.worker_id for job in jobs} == owner_by_job
    assert {job.status for job in jobs} == {JobStatus.RUNNING}
    assert {job.attempts for job in jobs} == {1}
