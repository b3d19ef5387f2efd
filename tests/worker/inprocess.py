"""The real worker (training loop, priority gate, aiohttp server) run inside the test process.

Shared by the worker tests' ``worker`` fixture and the end-to-end bot tests, so that both drive
the same code the ``yollava worker`` process runs, on an engine the caller already loaded.
"""

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.engine import Engine

from bot.worker.gate import PriorityGate
from bot.worker.inference import Answerer
from bot.worker.presets import TrainingPreset
from bot.worker.protocol import Health
from bot.worker.server import build_app
from bot.worker.subjects import SubjectCache
from bot.worker.training import TrainingLoop, WorkerTiming
from personalization.engine import Engine as ModelEngine
from personalization.negatives import BankIndex
from storage import FileStore


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


@asynccontextmanager
async def serve_worker(
    *,
    db: Engine,
    files: FileStore,
    engine: ModelEngine,
    bank: BankIndex,
    preset: TrainingPreset,
    timing: WorkerTiming,
    token: str,
    worker_id: str = "in-process",
) -> AsyncIterator[InProcessWorker]:
    """Serve ``engine`` over HTTP on 127.0.0.1 (an ephemeral port); training starts only when the
    caller calls :meth:`InProcessWorker.start_training`. Stops both on exit."""
    gate = PriorityGate()
    loop = TrainingLoop(
        db=db,
        files=files,
        engine=engine,
        gate=gate,
        preset=preset,
        bank=bank,
        worker_id=worker_id,
        timing=timing,
    )
    answerer = Answerer(engine, SubjectCache(engine, files, latent_tokens=preset.latent_tokens), gate)

    def health() -> Health:
        return Health(worker_id, engine.model_id, "cpu", os.getpid(), loop.current_job_id)

    runner = web.AppRunner(build_app(answerer, health=health, token=token, wake=loop.wake.set))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    handle = InProcessWorker(loop, gate, f"http://{host}:{port}", threading.Event())
    try:
        yield handle
    finally:
        handle.stop_training()
        await runner.cleanup()
