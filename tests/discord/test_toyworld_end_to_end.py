"""The whole product on the shipped toy-world model: the unmodified bot on the fake Discord, the
real services on a SQLite file, and the real worker (training loop, priority gate, HTTP server)
holding the toy model. /teach five photos → progress → completion with held-out figures →
/ask with a new photo of the subject (Yes) and with a random scene of other things (No)."""

import os
import random
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch
from aiohttp import web

from bot.discord.client import YollavaBot
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
from personalization.engine import Engine
from personalization.modeling import TOYWORLD_WEIGHTS_DIR, load_model
from personalization.negatives import index_bank
from personalization.toybank import toyworld_bank
from storage import FileStore, create_db_engine, upgrade
from tests.fakediscord import FakeDiscord, run_bot
from tests.services.support import png

TOKEN = "toy-token"
TRAINING_TIMEOUT_SECONDS = 600

pytestmark = pytest.mark.skipif(
    not (TOYWORLD_WEIGHTS_DIR / "config.json").is_file(), reason="toy-world weights are not shipped"
)


@pytest.fixture
async def product(
    fake_discord: FakeDiscord, tmp_path: Path
) -> AsyncIterator[tuple[FakeDiscord, threading.Event]]:
    engine = Engine(load_model("toyworld", device="cpu", dtype=torch.bfloat16))
    bank = index_bank(toyworld_bank(tmp_path / "cache", size=120), engine)
    db = create_db_engine(f"sqlite:///{tmp_path / 'yollava.sqlite3'}")
    upgrade(db)
    files = FileStore(tmp_path / "data")
    preset = training_preset("toy")
    gate = PriorityGate()
    timing = WorkerTiming(
        poll_seconds=0.05,
        progress_seconds=0.5,
        cancel_check_seconds=0.1,
        heartbeat_seconds=1.0,
        stale_seconds=30,
    )
    loop = TrainingLoop(
        db=db, files=files, engine=engine, gate=gate, preset=preset, bank=bank, worker_id="toy", timing=timing
    )
    answerer = Answerer(engine, SubjectCache(engine, files, latent_tokens=preset.latent_tokens), gate)
    runner = web.AppRunner(
        build_app(
            answerer,
            health=lambda: Health("toy", engine.model_id, "cpu", os.getpid(), loop.current_job_id),
            token=TOKEN,
            wake=loop.wake.set,
        )
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    shutdown = threading.Event()
    trainer = threading.Thread(target=loop.run, args=(shutdown,), daemon=True)
    trainer.start()
    client = HttpModelClient(FixedEndpoint(f"http://{host}:{port}", TOKEN), timeout_seconds=120)
    services = Services(db=db, files=files, model=client, clock=ClockPeriods(event_poll_seconds=0.1))
    await services.start()
    bot = YollavaBot(services, edit_interval_seconds=0.5)
    try:
        async with run_bot(bot, fake_discord):
            yield fake_discord, shutdown
    finally:
        shutdown.set()
        loop.wake.set()
        trainer.join(timeout=60)
        await services.close()
        await runner.cleanup()
        db.dispose()


async def test_teach_then_ask_yes_and_no_on_the_toy_world(
    product: tuple[FakeDiscord, threading.Event],
) -> None:
    from personalization.toyworld.corpus import random_scene_entities
    from personalization.toyworld.world import KINDS, make_subject, render_scene

    fake, _ = product
    rng = random.Random(4242)
    subject = make_subject(rng, name="bo", kind="dog")
    photos = {
        f"photo{n}": fake.add_attachment(f"bo{n}.png", png(render_scene([subject.spec], rng)), "image/png")
        for n in range(1, 6)
    }
    ix = await fake.send_slash_command("teach", {"name": "Bo", **photos, "kind": "dog"})
    receipt = await ix.wait_original_edit()
    assert receipt.json["content"].startswith("Learning **Bo** from 5 photos")

    done = await ix.wait_followup(timeout=TRAINING_TIMEOUT_SECONDS)
    assert "held-out photos" in done.json["content"], done.json["content"]

    new_photo = fake.add_attachment("new.png", png(render_scene([subject.spec], rng)), "image/png")
    others = [k for k in KINDS if k != "dog"]
    scene = [e for e in random_scene_entities(rng) if e.kind in others][:1] or random_scene_entities(rng)[:1]
    other_photo = fake.add_attachment("other.png", png(render_scene(scene, rng)), "image/png")

    yes = await fake.send_slash_command("ask", {"question": "Is Bo in this photo?", "image": new_photo})
    yes_reply = await yes.wait_original_edit(timeout=120)
    no = await fake.send_slash_command("ask", {"question": "Is Bo in this photo?", "image": other_photo})
    no_reply = await no.wait_original_edit(timeout=120)
    assert yes_reply.json["content"].startswith("Yes"), yes_reply.json["content"]
    assert no_reply.json["content"].startswith("No"), no_reply.json["content"]
