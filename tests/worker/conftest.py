"""Fixtures for the worker: the tests' tiny model behind a real HTTP server, in this process.

The in-process worker is the real code (training loop in a thread, aiohttp server, priority
gate), sharing the session's tiny engine so no test pays for a model load; the crash test
starts real subprocesses instead.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.services.api import Services
from bot.services.clock import ClockPeriods
from bot.services.model_client import FixedEndpoint, HttpModelClient
from bot.worker.presets import training_preset
from bot.worker.training import WorkerTiming
from personalization.engine import Engine as ModelEngine
from personalization.negatives import BankIndex, index_bank
from storage import FileStore
from tests.worker.inprocess import InProcessWorker, serve_worker

TOKEN = "test-token"
FAST_TIMING = WorkerTiming(
    poll_seconds=0.05,
    progress_seconds=0.0,
    cancel_check_seconds=0.0,
    heartbeat_seconds=0.5,
    stale_seconds=5.0,
)


@pytest.fixture
def bank(negative_bank: Path, tiny_engine: ModelEngine) -> BankIndex:
    return index_bank(negative_bank, tiny_engine)


@pytest.fixture
async def worker(
    db: Engine, files: FileStore, tiny_engine: ModelEngine, bank: BankIndex
) -> AsyncIterator[InProcessWorker]:
    async with serve_worker(
        db=db,
        files=files,
        engine=tiny_engine,
        bank=bank,
        preset=training_preset("tiny"),
        timing=FAST_TIMING,
        token=TOKEN,
    ) as handle:
        yield handle


@pytest.fixture
async def services(db: Engine, files: FileStore, worker: InProcessWorker) -> AsyncIterator[Services]:
    client = HttpModelClient(FixedEndpoint(worker.url, TOKEN), timeout_seconds=120)
    services = Services(db=db, files=files, model=client, clock=ClockPeriods(event_poll_seconds=0.05))
    await services.start()
    yield services
    await services.close()
