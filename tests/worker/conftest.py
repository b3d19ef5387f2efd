"""Fixtures for the worker: the tests' tiny model behind a real HTTP server, in this process.

The in-process worker is the real code (training loop in a thread, aiohttp server, priority
gate), sharing the session's tiny engine so no test pays for a model load; the crash test
starts real subprocesses instead.
"""

import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy.engine import Engine

from bot.services.api import Services
from bot.services.clock import ClockPeriods
from bot.services.model_client import FixedEndpoint, HttpModelClient
from bot.worker.gate import PriorityGate
from bot.worker.inference import Answerer
from bot.worker.presets import training_preset
from bot.worker.protocol import Health
from bot.worker.server import build_app
from bot.worker.subjects import SubjectCache
from bot.worker.training import TrainingLoop, WorkerTiming
from personalization.engine import Engine as ModelEngine
from personalization.negatives import BankIndex, index_bank
from storage import FileStore

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


@dataclass
class InProcessWorker:
    loop: TrainingLoop
    gate: PriorityGate
    url: str
    shutdown: threading.Event
    thread: threading.Thread | None = None

    def start_training(self) -> None:
        self.thread = threading.Thread(target=self.loop.run, args=(self.shutdown,), daemon=True)
        self.thread.start()

    def stop_training(self) -> None:
        self.shutdown.set()
        self.loop.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=60)
            assert not self.thread.is_alive()


@pytest.fixture
async def worker(
    db: Engine, files: FileStore, tiny_engine: ModelEngine, bank: BankIndex
) -> AsyncIterator[InProcessWorker]:
    preset = training_preset("tiny")
    gate = PriorityGate()
    loop = TrainingLoop(
        db=db,
        files=files,
        engine=tiny_engine,
        gate=gate,
        preset=preset,
        bank=bank,
        worker_id="in-process",
        timing=FAST_TIMING,
    )
    answerer = Answerer(
        tiny_engine, SubjectCache(tiny_engine, files, latent_tokens=preset.latent_tokens), gate
    )

    def health() -> Health:
        return Health("in-process", tiny_engine.model_id, "cpu", os.getpid(), loop.current_job_id)

    runner = web.AppRunner(build_app(answerer, health=health, token=TOKEN, wake=loop.wake.set))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    handle = InProcessWorker(loop, gate, f"http://{host}:{port}", threading.Event())
    yield handle
    handle.stop_training()
    await runner.cleanup()


@pytest.fixture
async def services(db: Engine, files: FileStore, worker: InProcessWorker) -> AsyncIterator[Services]:
    client = HttpModelClient(FixedEndpoint(worker.url, TOKEN), timeout_seconds=120)
    services = Services(db=db, files=files, model=client, clock=ClockPeriods(event_poll_seconds=0.05))
    await services.start()
    yield services
    await services.close()
