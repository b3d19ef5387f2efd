"""The whole product end to end: the unmodified bot on the fake Discord, the real services on a
SQLite file, and the real worker (training loop, priority gate, HTTP server) holding a model —
the tests' tiny LLaVA, and the shipped toy-world model. /teach five photos → progress →
completion with held-out figures → /ask with a new photo of the subject (Yes) and with a photo
of something else (No)."""

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch

from bot.discord.client import YollavaBot
from bot.services.api import Services
from bot.services.clock import ClockPeriods
from bot.services.model_client import FixedEndpoint, HttpModelClient
from bot.worker.presets import training_preset
from bot.worker.training import WorkerTiming
from personalization.engine import Engine
from personalization.modeling import TOYWORLD_WEIGHTS_DIR, load_model
from personalization.negatives import index_bank
from personalization.toybank import toyworld_bank
from storage import FileStore, create_db_engine, upgrade
from tests.fakediscord import FakeDiscord, run_bot
from tests.services.support import png
from tests.worker.inprocess import serve_worker

TOKEN = "toy-token"
TRAINING_TIMEOUT_SECONDS = 600


async def start_product(
    fake_discord: FakeDiscord, tmp_path: Path, engine: Engine, bank_dir: Path, preset_name: str
) -> AsyncIterator[FakeDiscord]:
    """Worker thread + HTTP server on ``engine``, real services, the bot logged in to the fake."""
    bank = index_bank(bank_dir, engine)
    db = create_db_engine(f"sqlite:///{tmp_path / 'yollava.sqlite3'}")
    upgrade(db)
    files = FileStore(tmp_path / "data")
    timing = WorkerTiming(
        poll_seconds=0.05,
        progress_seconds=0.5,
        cancel_check_seconds=0.1,
        heartbeat_seconds=1.0,
        stale_seconds=30,
    )
    preset = training_preset(preset_name)
    async with serve_worker(
        db=db,
        files=files,
        engine=engine,
        bank=bank,
        preset=preset,
        timing=timing,
        token=TOKEN,
        worker_id="toy",
    ) as worker:
        worker.start_training()
        client = HttpModelClient(FixedEndpoint(worker.url, TOKEN), timeout_seconds=120)
        services = Services(db=db, files=files, model=client, clock=ClockPeriods(event_poll_seconds=0.1))
        await services.start()
        bot = YollavaBot(services, edit_interval_seconds=0.5)
        try:
            async with run_bot(bot, fake_discord):
                yield fake_discord
        finally:
            await services.close()
    db.dispose()


async def teach_and_ask(
    fake: FakeDiscord, photos: list[bytes], positives: list[bytes], negatives: list[bytes], *, need: int
) -> None:
    """/teach ``photos`` as Bo, then /ask about each of ``positives`` and ``negatives``: every
    reply a Yes or No with its score, at least ``need`` of each list answered right."""
    attachments = {
        f"photo{n}": fake.add_attachment(f"bo{n}.png", data, "image/png") for n, data in enumerate(photos, 1)
    }
    ix = await fake.send_slash_command("teach", {"name": "Bo", **attachments, "kind": "dog"})
    receipt = await ix.wait_original_edit()
    assert receipt.json["content"].startswith(f"Learning **Bo** from {len(photos)} photos")

    done = await ix.wait_followup(timeout=TRAINING_TIMEOUT_SECONDS)
    assert "held-out photos" in done.json["content"], done.json["content"]

    replies = []
    for number, data in enumerate([*positives, *negatives]):
        image = fake.add_attachment(f"ask{number}.png", data, "image/png")
        asked = await fake.send_slash_command("ask", {"question": "Is Bo in this photo?", "image": image})
        replies.append((await asked.wait_original_edit(timeout=120)).json["content"])
    assert all(reply.startswith(("Yes, Bo", "No, Bo")) and "%)" in reply for reply in replies), replies
    said_yes = [reply.startswith("Yes") for reply in replies]
    assert sum(said_yes[: len(positives)]) >= need, replies
    assert sum(not yes for yes in said_yes[len(positives) :]) >= need, replies


async def test_tiny_model_end_to_end(
    fake_discord: FakeDiscord, tmp_path: Path, tiny_engine: Engine, negative_bank: Path
) -> None:
    from tests.conftest import OTHER_COLOURS, SUBJECT_COLOUR, make_photo

    async for fake in start_product(fake_discord, tmp_path, tiny_engine, negative_bank, "tiny"):
        photos = [png(make_photo(SUBJECT_COLOUR, seed)) for seed in range(5)]
        # The tiny random model only memorises: the positive is one of its own photos. The toy
        # world test below asks about photos the model never saw.
        await teach_and_ask(fake, photos, [photos[0]], [png(make_photo(OTHER_COLOURS[1], 901))], need=1)


@pytest.mark.skipif(
    not (TOYWORLD_WEIGHTS_DIR / "config.json").is_file(), reason="toy-world weights are not shipped"
)
async def test_toy_world_end_to_end(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    from personalization.toyworld.world import KINDS, make_subject, random_entity, render_scene

    engine = Engine(load_model("toyworld", device="cpu", dtype=torch.float32))
    bank_dir = toyworld_bank(tmp_path / "cache", size=120)
    rng = random.Random(4242)
    subject = make_subject(rng, name="bo", kind="dog")
    photos = [png(render_scene([subject.spec], rng)) for _ in range(5)]
    positives = [png(render_scene([subject.spec], rng)) for _ in range(3)]
    others = rng.sample([kind for kind in KINDS if kind != "dog"], 3)
    negatives = [png(render_scene([random_entity(rng, kind=kind)], rng)) for kind in others]
    async for fake in start_product(fake_discord, tmp_path, engine, bank_dir, "toy"):
        # Mostly right answers both ways: new photos of Bo, and lone entities of other kinds. The
        # toy preset's learned tokens are right ~0.8-0.9 of the time at 0.5 (docs/RESULTS.md), so
        # one pair is a coin with a bias: on the ninth session's weights a yellow checkered fish on
        # a striped background scored 0.57-0.80 for Bo (a purple striped dog), while 12 other
        # kinds' photos scored at most 0.38. Two of three each way are required.
        await teach_and_ask(fake, photos, positives, negatives, need=2)
