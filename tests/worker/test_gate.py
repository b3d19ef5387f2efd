"""PriorityGate: an answer waits at most for the training step in progress."""

import threading
import time

from bot.worker.gate import PriorityGate

STEP_SECONDS = 0.02
STEPS = 40


def test_interactive_request_runs_between_two_training_steps() -> None:
    gate = PriorityGate()
    events: list[str] = []
    training_started = threading.Event()

    def train() -> None:
        with gate.training():
            training_started.set()
            for _ in range(STEPS):
                gate.yield_to_waiting()
                events.append("step")
                time.sleep(STEP_SECONDS)
        events.append("training done")

    trainer = threading.Thread(target=train)
    trainer.start()
    training_started.wait()
    time.sleep(5 * STEP_SECONDS)
    asked = time.monotonic()
    with gate.interactive():
        waited = time.monotonic() - asked
        events.append("answer")
    trainer.join()

    assert waited < 5 * STEP_SECONDS
    assert events.index("answer") < events.index("training done")
    assert events.count("step") == STEPS


def test_training_waits_for_answers_already_waiting() -> None:
    gate = PriorityGate()
    order: list[str] = []
    release = threading.Event()

    def answer(name: str) -> None:
        with gate.interactive():
            order.append(name)
            release.wait()

    first = threading.Thread(target=answer, args=("first answer",))
    first.start()
    while not order:
        time.sleep(0.001)
    second = threading.Thread(target=answer, args=("second answer",))
    second.start()
    while gate.waiting_interactive == 0:
        time.sleep(0.001)

    def train() -> None:
        with gate.training():
            order.append("training")

    trainer = threading.Thread(target=train)
    trainer.start()
    time.sleep(0.05)
    release.set()
    for thread in (first, second, trainer):
        thread.join()
    assert order == ["first answer", "second answer", "training"]
