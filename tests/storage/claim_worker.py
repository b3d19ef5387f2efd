"""A worker process for the claim tests: ``python -m tests.storage.claim_worker URL ID GO_FILE``.

Prints ``ready``, waits for GO_FILE to exist (so every worker starts at once), then claims jobs
until the queue is empty and prints the claimed ids as one JSON list.
"""

import json
import sys
import time
from pathlib import Path

from storage import claim_next_job, create_db_engine, session_scope


def main(url: str, worker_id: str, go_file: Path) -> None:
    engine = create_db_engine(url)
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not go_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.005)
    claimed: list[int] = []
    while True:
        with session_scope(engine) as session:
            job = claim_next_job(session, worker_id=worker_id)
            if job is None:
                break
            assert job.id is not None
            claimed.append(job.id)
        time.sleep(0.002)  # let the others in, so the claims interleave
    engine.dispose()
    print(json.dumps(claimed), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
