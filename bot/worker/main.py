"""``python -m bot.worker`` / ``yollava worker``: the model worker process (the edge: argv, env).

It loads the one frozen model, re-queues what a dead predecessor left running, then trains queued
jobs in a thread while (with ``--listen``) an HTTP server on the loop answers the bot's questions
first. Without ``--listen`` it only trains: the scale-out path, many such workers on other
machines sharing one PostgreSQL database and data directory.

Standard output carries exactly one line, ``yollava-worker ready <url>``, once the model is loaded
and the server listens (the local supervisor waits for it); logs go to standard error. SIGTERM or
SIGINT stops it: a running training is put back in the queue for the next worker.
"""

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import torch
from aiohttp import web
from transformers.utils import logging as transformers_logging

from bot.worker.gate import PriorityGate
from bot.worker.inference import Answerer
from bot.worker.presets import PRESET_NAMES, TrainingPreset, default_preset_name, training_preset
from bot.worker.protocol import READY_LINE_PREFIX, TOKEN_ENV, Health
from bot.worker.server import build_app
from bot.worker.subjects import SubjectCache
from bot.worker.training import TrainingLoop, WorkerTiming
from personalization.cli import pick_device, pick_dtype
from personalization.engine import Engine
from personalization.errors import PersonalizationError
from personalization.modeling import TOYWORLD_MODEL_NAME, load_model
from personalization.negatives import BankIndex, index_bank
from personalization.toybank import toyworld_bank
from storage import FileStore, create_db_engine, upgrade

log = logging.getLogger("bot.worker")

EXIT_USAGE = 2
SHUTDOWN_GRACE_SECONDS = 30.0
PARENT_CHECK_SECONDS = 2.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yollava worker", description="Train queued subjects and answer the bot's questions."
    )
    add_worker_arguments(parser)
    return parser


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's options (also used by ``yollava worker``)."""
    parser.add_argument("--database-url", required=True, help="SQLAlchemy URL of the shared database")
    parser.add_argument("--data-dir", type=Path, required=True, help="the shared data directory")
    parser.add_argument("--model", required=True, help="hub id, local path or 'toyworld'")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    parser.add_argument("--negatives", type=Path, default=None, help="negative bank folder")
    parser.add_argument(
        "--listen", default=None, metavar="HOST:PORT", help="serve answers over HTTP here (port 0: any free)"
    )
    parser.add_argument(
        "--preset", default=None, choices=PRESET_NAMES, help="training recipe (default by model)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--worker-id", default=None, help="id in job rows (default host-pid)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    parser.add_argument("--progress-seconds", type=float, default=1.0)
    parser.add_argument("--cancel-check-seconds", type=float, default=0.25)
    parser.add_argument("--heartbeat-seconds", type=float, default=10.0)
    parser.add_argument("--stale-seconds", type=float, default=120.0)
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the process that started this one dies"
    )
    parser.add_argument("--log-level", default="INFO")


def main(argv: Sequence[str] | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT; returns the exit status."""
    args = build_parser().parse_args(argv)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run a worker from parsed :func:`add_worker_arguments` options."""
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s worker %(levelname)s %(message)s"
    )
    try:
        listen = _parse_listen(args.listen) if args.listen else None
        worker = build_worker(args)
    except (ValueError, OSError) as error:
        print(f"yollava worker: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    token = os.environ.get(TOKEN_ENV, "").strip() or None
    parent = os.getppid() if args.exit_with_parent else None
    return asyncio.run(_serve(worker, listen=listen, token=token, parent_pid=parent))


@dataclass
class WorkerParts:
    """What :func:`build_worker` assembled: the training loop and, for the server, the answerer."""

    loop: TrainingLoop
    answerer: Answerer
    health: Callable[[], Health]


def build_worker(args: argparse.Namespace) -> WorkerParts:
    """Load the model and connect the database and files; re-queue what a dead worker left.

    Raises:
        ValueError: a bad option, or the model or negative bank cannot be loaded.
    """
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    timing = WorkerTiming(
        poll_seconds=args.poll_seconds,
        progress_seconds=args.progress_seconds,
        cancel_check_seconds=args.cancel_check_seconds,
        heartbeat_seconds=args.heartbeat_seconds,
        stale_seconds=args.stale_seconds,
    )
    preset = training_preset(args.preset or default_preset_name(args.model))
    if args.epochs is not None:
        preset = dataclasses.replace(preset, config=dataclasses.replace(preset.config, epochs=args.epochs))
    worker_id = args.worker_id or f"{socket.gethostname()}-{os.getpid()}"
    try:
        device = pick_device(args.device)
        engine = Engine(load_model(args.model, device=device, dtype=pick_dtype(args.dtype, device)))
        bank = None
        negatives = args.negatives
        if negatives is None and engine.model_id == TOYWORLD_MODEL_NAME:
            # The toy world brings its own bank of rendered scenes (made once, cached).
            negatives = toyworld_bank(args.data_dir / "cache")
        if negatives is not None:
            bank = index_bank(negatives, engine, cache_dir=args.data_dir / "cache" / "negatives")
        else:
            log.warning(
                "no negative bank (--negatives): hard-negative mining is impossible and recognition "
                "will be much weaker"
            )
    except PersonalizationError as error:
        raise ValueError(str(error)) from error
    db = create_db_engine(args.database_url)
    upgrade(db)
    parts = assemble_worker(
        db=db,
        files=FileStore(args.data_dir),
        engine=engine,
        bank=bank,
        preset=preset,
        timing=timing,
        worker_id=worker_id,
    )
    parts.loop.recover()
    log.info("worker %s ready: model %s on %s", worker_id, engine.model_id, engine.device)
    return parts


def assemble_worker(
    *,
    db: sa.Engine,
    files: FileStore,
    engine: Engine,
    bank: BankIndex | None,
    preset: TrainingPreset,
    timing: WorkerTiming,
    worker_id: str,
) -> WorkerParts:
    """Wire a loaded model to the queue: the training loop and the answerer share one priority
    gate, so answers pre-empt training between steps."""
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
        return Health(
            worker_id=worker_id,
            model=engine.model_id,
            device=str(engine.device),
            pid=os.getpid(),
            current_job_id=loop.current_job_id,
        )

    return WorkerParts(loop, answerer, health)


async def _serve(
    worker: WorkerParts, *, listen: tuple[str, int] | None, token: str | None, parent_pid: int | None
) -> int:
    loop = worker.loop
    shutdown = threading.Event()
    stopping = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        event_loop.add_signal_handler(signum, stopping.set)

    runner: web.AppRunner | None = None
    if listen is not None and token is None and listen[0] not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "listening on %s without %s: anyone who can reach it can use the model", listen[0], TOKEN_ENV
        )
    if listen is not None:
        app = build_app(worker.answerer, health=worker.health, token=token, wake=loop.wake.set)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, listen[0], listen[1])
        await site.start()
        host, port = runner.addresses[0][:2]
        print(f"{READY_LINE_PREFIX}http://{host}:{port}", flush=True)
    else:
        print(f"{READY_LINE_PREFIX}-", flush=True)

    failed: list[BaseException] = []

    def train() -> None:
        try:
            loop.run(shutdown)
        except BaseException as error:  # surfaced below: the process exits and is restarted
            log.exception("the training loop stopped")
            failed.append(error)
        finally:
            event_loop.call_soon_threadsafe(stopping.set)

    trainer = threading.Thread(target=train, name="training", daemon=True)
    trainer.start()
    watch = asyncio.create_task(_stop_when_orphaned(parent_pid, stopping)) if parent_pid else None
    await stopping.wait()
    if watch is not None:
        watch.cancel()
    shutdown.set()
    loop.wake.set()
    await asyncio.to_thread(trainer.join, SHUTDOWN_GRACE_SECONDS)
    if runner is not None:
        await runner.cleanup()
    return 1 if failed else 0


async def _stop_when_orphaned(parent_pid: int, stopping: asyncio.Event) -> None:
    while os.getppid() == parent_pid:
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    log.warning("the bot process is gone; stopping")
    stopping.set()


def _parse_listen(value: str) -> tuple[str, int]:
    host, separator, port = value.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"--listen must be HOST:PORT, e.g. 127.0.0.1:8765, got {value!r}")
    return host, int(port)
