"""Render training data in a background process while the model trains.

Pretraining spends about a third of each vision-tower step drawing scenes with Pillow (measured
with py-spy on the ninth session's recipe), time in which the two training threads wait. A
:class:`Prefetched` stream runs a deterministic generator in its own process and hands its items
over in order, so training sees exactly what it would see rendering in line, while the drawing of
the next items overlaps the current step. Measured on 2 cores it made a short run 13.5 % slower
(the renderers took their time from the training threads; ``benchmarks/background_rendering.py``),
and still 7.8 % slower with the renderers at idle priority, so pretraining uses it only when asked
(``PretrainConfig.background_rendering``) and otherwise paints on both cores while it waits
(:mod:`~personalization.toyworld.painting`).

The generator is named by a picklable factory (a module-level function) and its arguments, since
the worker is started with ``spawn``: a forked copy of a process that has started PyTorch's
threads can deadlock.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_END = "__prefetch_end__"
_POLL_SECONDS = 1.0


def _lowest_priority() -> None:
    """Let this process run only on a core nothing else wants: Linux's idle scheduling class,
    elsewhere the highest niceness. A short run on 2 cores took 13.4 % longer rendering in the
    background at niceness 19 than in line, 7.8 % at idle priority (twenty-second session)."""
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(19)


class PrefetchError(RuntimeError):
    """The background generator failed or its process died."""


def _produce(factory: Callable[..., Iterable[Any]], args: tuple[Any, ...], out: Any) -> None:
    try:
        _lowest_priority()
        if "torch" in sys.modules:  # imported with the factory's module
            sys.modules["torch"].set_num_threads(1)  # leave the cores to training
        for item in factory(*args):
            out.put(("item", item))
        out.put(("end", None))
    except BaseException:  # reported to the consumer, which raises it
        out.put(("error", traceback.format_exc()))


class Prefetched(Generic[T]):
    """``factory(*args)``'s items, produced ``depth`` ahead in a background process.

    The process starts at the first ``next()`` and stops at :meth:`close` (or when the stream
    ends). With ``background=False`` the generator runs in line, for comparison and debugging.

    Example:
        >>> from itertools import islice
        >>> with Prefetched(range, 3, background=False) as numbers:
        ...     list(numbers)
        [0, 1, 2]
    """

    def __init__(
        self,
        factory: Callable[..., Iterable[T]],
        *args: Any,
        depth: int = 8,
        background: bool = True,
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth={depth} must be at least 1")
        self._factory = factory
        self._args = args
        self._depth = depth
        self._background = background
        self._inline: Iterator[T] | None = None
        self._process: Any = None
        self._queue: Any = None
        self._done = False

    def __iter__(self) -> Prefetched[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        if not self._background:
            if self._inline is None:
                self._inline = iter(self._factory(*self._args))
            return next(self._inline)
        if self._process is None:
            context = multiprocessing.get_context("spawn")
            self._queue = context.Queue(maxsize=self._depth)
            self._process = context.Process(
                target=_produce, args=(self._factory, self._args, self._queue), daemon=True
            )
            self._process.start()
        while True:
            try:
                kind, payload = self._queue.get(timeout=_POLL_SECONDS)
                break
            except queue.Empty:
                if not self._process.is_alive():
                    self.close()
                    raise PrefetchError(
                        f"the process rendering {getattr(self._factory, '__name__', self._factory)} "
                        f"died (exit code {self._process.exitcode})"
                    ) from None
        if kind == "item":
            return payload  # type: ignore[no-any-return]
        self.close()
        if kind == "error":
            raise PrefetchError(f"rendering in the background failed:\n{payload}")
        raise StopIteration

    def close(self) -> None:
        """Stop the background process (idempotent)."""
        self._done = True
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join(timeout=5)
            self._queue.close()
            self._queue.cancel_join_thread()

    def __enter__(self) -> Prefetched[T]:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()
