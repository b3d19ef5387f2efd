"""The real worker (training loop, priority gate, aiohttp server) run inside the test process.

Shared by the worker tests' ``worker`` fixture and the end-to-end bot tests, so that both drive
the same wiring the ``yollava worker`` process uses (:func:`bot.worker.main.assemble_worker`), on
an engine the caller already loaded.
"""

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.engine import Engine

from bot.worker.main import assemble_worker
from bot.worker.presets import TrainingPreset
from bot.worker.server import build_app
from bot.worker.training import TrainingLoop, WorkerTiming
from personalization.engine import Engine as ModelEngine
from personalization.negatives import BankIndex
from storage import FileStore


@dataclass
class InProcessWorker:
    loop: TrainingLoop
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
    parts = assemble_worker(
        db=db, files=files, engine=engine, bank=bank, preset=preset, timing=timing, worker_id=worker_id
    )
    app = build_app(parts.answerer, health=parts.health, token=token, wake=parts.loop.wake.set)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    handle = InProcessWorker(parts.loop, f"http://{host}:{port}", threading.Event())
    try:
        yield handle
    finally:
        handle.stop_training()
        await runner.cleanup()
