"""The bot's local worker: a child process started, watched and restarted from the bot's loop.

Single-box mode runs the worker as a separate OS process, so that a CUDA OOM, a segfault or a
kill -9 of the worker never takes the bot down. This supervisor (torch-free; it runs in the bot)
starts ``python -m bot.worker`` with ``--listen 127.0.0.1:0``, reads the one ready line from its
standard output to learn the URL, and restarts it with a growing back-off whenever it exits.
The worker has a *stable* id (``local-<host>``), so on restart it re-queues at once the job its
previous life left running. A random token in the environment keeps other local users out.
The child is in its own session (the terminal's Ctrl-C reaches only the bot, which stops it
cleanly) and exits by itself if the bot dies.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.worker.protocol import READY_LINE_PREFIX, TOKEN_ENV

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalWorkerConfig:
    """How to start the local worker. Errors name the bad field.

    Attributes:
        database_url, data_dir, model, device, dtype, negatives, preset, threads: passed to
            ``python -m bot.worker`` as the options of the same names.
        worker_id: the stable id of the local worker in job rows.
        extra_args: more worker options (timings in tests, e.g. ``--heartbeat-seconds 0.5``).
        ready_timeout_seconds: how long loading the model may take.
        restart_delays_seconds: back-off after consecutive failed starts (last value repeats).
        stop_grace_seconds: after SIGTERM, how long before SIGKILL.
        python: the interpreter to run.
    """

    database_url: str
    data_dir: Path
    model: str
    device: str = "auto"
    dtype: str = "auto"
    negatives: Path | None = None
    preset: str | None = None
    threads: int | None = None
    worker_id: str = field(default_factory=lambda: f"local-{socket.gethostname()}")
    extra_args: tuple[str, ...] = ()
    ready_timeout_seconds: float = 600.0
    restart_delays_seconds: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 60.0)
    stop_grace_seconds: float = 40.0
    python: str = sys.executable

    def __post_init__(self) -> None:
        if not self.restart_delays_seconds or min(self.restart_delays_seconds) < 0:
            raise ValueError("LocalWorkerConfig.restart_delays_seconds must be non-empty and non-negative")
        for name in ("ready_timeout_seconds", "stop_grace_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"LocalWorkerConfig.{name} must be positive, got {getattr(self, name)}")

    def command(self) -> list[str]:
        args = [
            self.python,
            "-m",
            "bot.worker",
            "--database-url",
            self.database_url,
            "--data-dir",
            str(self.data_dir),
            "--model",
            self.model,
            "--device",
            self.device,
            "--dtype",
            self.dtype,
            "--listen",
            "127.0.0.1:0",
            "--worker-id",
            self.worker_id,
            "--exit-with-parent",
        ]
        if self.negatives is not None:
            args += ["--negatives", str(self.negatives)]
        if self.preset is not None:
            args += ["--preset", self.preset]
        if self.threads is not None:
            args += ["--threads", str(self.threads)]
        return args + list(self.extra_args)


class LocalWorker:
    """Starts and supervises the local worker process; also its :class:`WorkerEndpoint`.

    ``url`` is None while the worker is starting or restarting (asks then get
    ``WorkerUnavailable``). ``restarts`` counts unexpected exits.
    """

    def __init__(self, config: LocalWorkerConfig) -> None:
        self.config = config
        self.token = secrets.token_urlsafe(24)
        self.url: str | None = None
        self.restarts = 0
        self.pid: int | None = None
        self.last_exit: str | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None and self.url is not None

    async def start(self) -> None:
        """Begin supervising (returns at once; see :meth:`wait_ready`)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._supervise(), name="local-worker")

    async def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the worker listens; False on timeout."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop the worker (SIGTERM, then SIGKILL after the grace period) and supervision."""
        self._stopping = True
        await self._terminate()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            became_ready = await self._run_once()
            if self._stopping:
                break
            self.restarts += 1
            failures = 0 if became_ready else failures + 1
            delays = self.config.restart_delays_seconds
            delay = delays[min(failures, len(delays) - 1)]
            log.error("the local worker exited (%s); restarting in %.0f s", self.last_exit, delay)
            await asyncio.sleep(delay)

    async def _run_once(self) -> bool:
        """Run one worker process to its end; True if it got ready."""
        environment = dict(os.environ)
        environment[TOKEN_ENV] = self.token
        process = await asyncio.create_subprocess_exec(
            *self.config.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )
        self._process = process
        self.pid = process.pid
        became_ready = False
        try:
            url = await asyncio.wait_for(_ready_url(process), self.config.ready_timeout_seconds)
            if url is not None:
                became_ready = True
                self.url = url
                self._ready.set()
                log.info("local worker %s ready at %s", process.pid, url)
            drain = asyncio.create_task(_drain(process))
            code = await process.wait()
            drain.cancel()
        except TimeoutError:
            log.error("the local worker did not get ready in %.0f s", self.config.ready_timeout_seconds)
            await self._terminate()
            code = process.returncode if process.returncode is not None else -1
        finally:
            self.url = None
            self._ready.clear()
        self.last_exit = _describe_exit(code)
        return became_ready

    async def _terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self.config.stop_grace_seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


async def _ready_url(process: asyncio.subprocess.Process) -> str | None:
    assert process.stdout is not None
    while True:
        line = await process.stdout.readline()
        if not line:
            return None
        text = line.decode(errors="replace").strip()
        if text.startswith(READY_LINE_PREFIX):
            return text[len(READY_LINE_PREFIX) :].strip()
        log.info("worker: %s", text)


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        log.info("worker: %s", line.decode(errors="replace").rstrip())


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def worker_arguments(values: Sequence[tuple[str, object]]) -> tuple[str, ...]:
    """``(("--heartbeat-seconds", 0.5), …)`` as command-line arguments."""
    return tuple(part for name, value in values for part in (name, str(value)))
