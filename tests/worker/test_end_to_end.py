"""End to end on the tiny model: teach → queued → running (progress) → ready → correct yes/no."""

import asyncio

from bot.services.api import JobUpdate, Services
from tests.conftest import OTHER_COLOURS, SUBJECT_COLOUR, make_photo
from tests.services.support import png, uploads
from tests.worker.conftest import InProcessWorker

TRAINING_TIMEOUT_SECONDS = 240


async def _until(queue: "asyncio.Queue[JobUpdate]", kind: str) -> list[JobUpdate]:
    seen: list[JobUpdate] = []
    while not seen or seen[-1].kind != kind:
        seen.append(await queue.get())
    return seen


async def test_teach_train_and_recognise(services: Services, worker: InProcessWorker) -> None:
    updates = services.subscribe()
    receipt = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(5))
    assert receipt.queue_position == 1
    [queued] = await services.list_subjects(user_id=1)
    assert queued.status == "queued"

    early = await services.ask(user_id=1, question="What does Bo look like?")
    assert early.note is not None and "still training" in early.note

    worker.start_training()
    seen = await asyncio.wait_for(_until(updates, "succeeded"), TRAINING_TIMEOUT_SECONDS)

    kinds = [update.kind for update in seen]
    assert kinds[0] == "started" and kinds[-1] == "succeeded" and "progress" in kinds
    steps = [update.step for update in seen if update.kind == "progress"]
    assert steps == sorted(steps) and steps[-1] == seen[-2].total_steps > 0
    done = seen[-1]
    assert done.job_id == receipt.job_id and "held-out photos" in done.message
    assert done.metrics["heldout_positives"] >= 1, done.metrics
    [ready] = await services.list_subjects(user_id=1)
    assert ready.status == "ready" and ready.metrics["summary"] == done.message

    positive = png(make_photo(SUBJECT_COLOUR, 500))  # a photo training never saw
    negative = png(make_photo(OTHER_COLOURS[1], 700))
    yes = await services.ask(user_id=1, question="Is Bo in this photo?", image=positive)
    no = await services.ask(user_id=1, question="is my dog in this photo?", image=negative)
    assert yes.is_recognition and yes.text.startswith("Yes"), yes.text
    assert no.is_recognition and no.text.startswith("No"), no.text
    assert yes.note is None and yes.subjects == ["Bo"]

    hits = await services.recognize_all(user_id=1, image=positive)
    assert [(hit.subject, hit.present) for hit in hits] == [("Bo", True)]
    free = await services.ask(user_id=1, question="What color is Bo?")
    assert isinstance(free.text, str) and not free.is_recognition
    report = await services.status(user_id=1)
    assert report.workers[0].alive and report.jobs[0].status == "succeeded"
