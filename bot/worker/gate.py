"""One model, two kinds of users: interactive answers go first, training yields between steps.

The frozen model is used by one thing at a time (GPU memory and compute are the bottleneck, and
a half-finished training step must not interleave with an answer). Interactive requests wait
only for the step in progress: the training thread calls :meth:`PriorityGate.yield_to_waiting`
between steps (from the trainer's ``should_stop`` callback), hands the model over while any
request waits, and takes it back when none does. Training can therefore be starved by a
continuous stream of questions; that is the intended priority.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class PriorityGate:
    """A mutex over the model with priority for :meth:`interactive` holders."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._busy = False
        self._waiting_interactive = 0

    @property
    def waiting_interactive(self) -> int:
        """How many interactive requests are waiting for the model right now."""
        with self._condition:
            return self._waiting_interactive

    @contextmanager
    def interactive(self) -> Iterator[None]:
        """Hold the model for one answer; waits at most for the current training step."""
        with self._condition:
            self._waiting_interactive += 1
            try:
                while self._busy:
                    self._condition.wait()
            finally:
                self._waiting_interactive -= 1
            self._busy = True
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def training(self) -> Iterator[None]:
        """Hold the model for a training run; enter only when no answer is waiting."""
        with self._condition:
            while self._busy or self._waiting_interactive:
                self._condition.wait()
            self._busy = True
        try:
            yield
        finally:
            self._release()

    def yield_to_waiting(self) -> bool:
        """From inside :meth:`training`: let every waiting answer run, then take the model back.

        Returns True if it yielded.
        """
        with self._condition:
            if not self._waiting_interactive:
                return False
            self._busy = False
            self._condition.notify_all()
            while self._busy or self._waiting_interactive:
                self._condition.wait()
            self._busy = True
            return True

    def _release(self) -> None:
        with self._condition:
            self._busy = False
            self._condition.notify_all()
