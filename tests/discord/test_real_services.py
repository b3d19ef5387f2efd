"""The bot on the real services (SQLite file, file store, event outbox) with a scripted model:
the Discord layer against the real contract, not only against its double. A "worker" here is
the storage calls a real worker makes, so job events travel the real outbox."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.discord.client import YollavaBot
from bot.services.api import Services
from storage import (
    FileStore,
    JobStatus,
    claim_next_job,
    create_db_engine,
    finish_job,
    session_scope,
    upgrade,
)
from storage import update_job_progress as record_progress
from tests.conftest import SUBJECT_COLOUR, make_photo
from tests.fakediscord import FakeDiscord, run_bot
from tests.services.support import FakeModel, png, stored_files

WORKER_ID = "test-worker"


@pytest.fixture
async def real(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[tuple[FakeDiscord, Services]]:
    db = create_db_engine(f"sqlite:///{tmp_path / 'yollava.sqlite3'}")
    upgrade(db)
    services = Services(db=db, files=FileStore(tmp_path / "data"), model=FakeModel())
    await services.events.start()
    bot = YollavaBot(services, edit_interval_seconds=0.05)
    try:
        async with run_bot(bot, fake_discord):
            yield fake_discord, services
    finally:
        await services.close()
        db.dispose()


async def test_teach_progress_subjects_ask_and_forget_on_real_services(
    real: tuple[FakeDiscord, Services], tmp_path: Path
) -> None:
    fake, services = real
    photos = {
        f"photo{n}": fake.add_attachment(f"bo{n}.png", png(make_photo(SUBJECT_COLOUR, n)), "image/png")
        for n in range(1, 4)
    }
    ix = await fake.send_slash_command("teach", {"name": "Bo", **photos, "kind": "dog"})
    receipt = await ix.wait_original_edit()
    assert receipt.json["content"] == "Learning **Bo** from 3 photos · queued #1"
    assert len(stored_files(tmp_path / "data" / "photos")) == 3

    with session_scope(services.db) as session:
        job = claim_next_job(session, worker_id=WORKER_ID)
        assert job is not None and job.id is not None
        job_id = job.id
    with session_scope(services.db) as session:
        record_progress(
            session, job_id=job_id, worker_id=WORKER_ID, step=5, total_steps=10, loss=0.25, eta_seconds=30
        )
    mark = len(fake.calls)
    await services.events.poll()
    progress = await ix.wait_original_edit(start=mark)
    assert progress.json["content"] == (
        "Learning **Bo** from 3 photos\n`████████░░░░░░░░` 50% · step 5/10 · loss 0.250 · about 30 s left"
    )

    with session_scope(services.db) as session:
        finish_job(
            session, job_id=job_id, worker_id=WORKER_ID, status=JobStatus.FAILED, error="out of memory"
        )
    mark = len(fake.calls)
    await services.events.poll()
    told = await ix.wait_followup(start=mark)
    assert told.json["content"] == f"Training **Bo** failed (job #{job_id}): out of memory"

    ac = await fake.send_autocomplete("forget", {"name": "b"}, focused="name")
    await ac.wait_callback()
    assert [c["value"] for c in ac.choices or []] == ["Bo"]

    listing = await fake.send_slash_command("subjects")
    edit = await listing.wait_original_edit()
    assert "**Bo** · dog" in edit.json["embeds"][0]["description"]
    assert [f.filename for f in edit.files] == ["subjects.png"]

    ask = await fake.send_slash_command("ask", {"question": "What colour is Bo?"})
    answer = await ask.wait_original_edit()
    # The services' refusal (its training failed) reaches the user as their sentence.
    assert (
        answer.json["content"] == "Bo couldn't be trained (out of memory). Please teach it again with /teach."
    )

    forget = await fake.send_slash_command("forget", {"name": "Bo"})
    prompt = await forget.wait_callback()
    confirm = prompt.json["data"]["components"][0]["components"][0]["custom_id"]
    click = await fake.send_component(confirm, forget.original_message_id or "")
    done = await click.wait_original_edit()
    assert done.json["content"].startswith("Forgotten: **Bo**. Deleted 3 photos")
    assert stored_files(tmp_path / "data" / "photos") == []
