"""/teach: photos read during the interaction, an ephemeral receipt at once, a throttled
progress bar, a Cancel button, and the end of the job told to the user wherever it can be."""

import asyncio

from tests.discord.conftest import EDIT_INTERVAL_SECONDS, Harness
from tests.discord.fake_services import photo_bytes
from tests.fakediscord import payloads as p

CANCEL_PREFIX = "yollava:cancel:"


def components(message: dict) -> list[dict]:
    return [c for row in message.get("components", []) for c in row["components"]]


async def test_teach_acknowledges_tracks_progress_and_announces_completion(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    ix = await harness.teach("Bo", photos=5, kind="dog", facts="Bo is 3 and loves tennis balls")

    callback = await ix.wait_callback()
    assert callback.json["type"] == p.CALLBACK_DEFERRED_CHANNEL_MESSAGE
    assert callback.json["data"]["flags"] & p.FLAG_EPHEMERAL

    receipt = await ix.wait_original_edit()
    assert receipt.json["content"] == "Learning **Bo** from 5 photos · queued #2"
    (button,) = components(receipt.json)
    assert button["label"] == "Cancel" and button["custom_id"].startswith(CANCEL_PREFIX)
    job_id = int(button["custom_id"].removeprefix(CANCEL_PREFIX))

    (taught,) = services.called("teach")
    assert taught["name"] == "Bo" and taught["kind"] == "dog"
    assert taught["facts"] == "Bo is 3 and loves tennis balls"
    assert [photo.filename for photo in taught["photos"]] == [f"bo{n}.png" for n in range(1, 6)]
    assert all(photo.data == photo_bytes((220, 40, 40)) for photo in taught["photos"])

    # The first update is shown at once; a burst after it at most once per interval.
    mark = len(fake.calls)
    loop = asyncio.get_running_loop()
    services.progress(job_id, 10, total=100, loss=0.1, eta=540)
    first = await ix.wait_original_edit(start=mark)
    assert "step 10/100" in first.json["content"] and "about 9 min left" in first.json["content"]
    shown_at = loop.time()
    for step in range(20, 101, 10):
        services.progress(job_id, step, total=100, loss=1.0 / step, eta=600 - 6 * step)
        await asyncio.sleep(0.01)
    last = first
    burst_seconds = loop.time() - shown_at
    while "step 100/100" not in last.json["content"]:
        last = await ix.wait_original_edit(start=last.index + 1)
    assert loop.time() - shown_at >= EDIT_INTERVAL_SECONDS * 0.9
    edits = [r for r in ix.calls() if r.index >= mark and r.method == "PATCH"]
    # Nine updates, but no more edits than intervals: the first, one per interval, the last.
    assert len(edits) <= 2 + burst_seconds // EDIT_INTERVAL_SECONDS
    assert last.json["content"].startswith("Learning **Bo** from 5 photos\n`")
    assert "100%" in last.json["content"] and "loss 0.010" in last.json["content"]
    assert "any moment now" in last.json["content"]
    assert components(last.json)[0]["custom_id"] == f"{CANCEL_PREFIX}{job_id}"

    mark = len(fake.calls)
    services.succeed(job_id)
    done = await ix.wait_followup(start=mark)
    assert done.json["flags"] & p.FLAG_EPHEMERAL
    assert done.json["content"].startswith(f"**Bo** is ready (job #{job_id}).")
    assert "Recognised 4/4 of your held-out photos, rejected 47/50 look-alikes." in done.json["content"]
    final = fake.messages[ix.original_message_id]
    assert final["content"] == done.json["content"] and final["components"] == []
    assert fake.dms_to(fake.user) == []
    await asyncio.sleep(EDIT_INTERVAL_SECONDS)
    assert not harness.bot.training_messages.watching(job_id)


async def test_completion_after_the_token_expired_arrives_by_dm(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    ix = await harness.teach("Mochi", photos=3, kind="cat")
    receipt = await ix.wait_original_edit()
    job_id = int(components(receipt.json)[0]["custom_id"].removeprefix(CANCEL_PREFIX))

    ix.expire()  # 15 minutes later
    services.progress(job_id, 50)
    services.succeed(job_id)
    dm = await fake.wait_for_call("POST", r"/channels/\d+/messages")
    assert dm.json["content"].startswith(f"**Mochi** is ready (job #{job_id}).")
    assert "rejected 47/50 look-alikes" in dm.json["content"]
    assert [m["content"] for m in fake.dms_to(fake.user)] == [dm.json["content"]]
    assert all(r.status == 401 for r in ix.calls() if r.index > receipt.index)


async def test_closed_dms_fall_back_to_a_mention_in_the_channel(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    carol = fake.create_user("carol", dms_open=False)
    ix = await harness.teach("Rex", photos=3, user=carol)
    receipt = await ix.wait_original_edit()
    job_id = int(components(receipt.json)[0]["custom_id"].removeprefix(CANCEL_PREFIX))
    ix.expire()
    services.emit(job_id, "failed", message="the trainer ran out of memory")

    posted = await fake.wait_for_call("POST", rf"/channels/{fake.channel_id}/messages")
    assert posted.json["content"] == (
        f"<@{carol.id}> Training **Rex** failed (job #{job_id}): the trainer ran out of memory"
    )
    assert posted.json["allowed_mentions"]["users"] == [int(carol.id)]


async def test_cancel_button_cancels_the_job(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    ix = await harness.teach("Bo")
    receipt = await ix.wait_original_edit()
    custom_id = components(receipt.json)[0]["custom_id"]
    job_id = int(custom_id.removeprefix(CANCEL_PREFIX))

    click = await fake.send_component(custom_id, ix.original_message_id or "")
    assert (await click.wait_callback()).json["type"] == p.CALLBACK_DEFERRED_UPDATE_MESSAGE
    edit = await click.wait_original_edit()
    assert edit.json["content"] == "Cancelling…" and edit.json["components"] == []
    assert services.called("cancel") == [{"user_id": int(fake.user.id), "job_id": job_id}]

    # A stale copy of the button (e.g. on a message whose token died) is answered too.
    stale = dict(receipt.response, id=fake.snowflake())
    again = await fake.send_component(custom_id, stale)
    answer = await again.wait_followup()
    assert answer.json["content"] == "That training has already finished, so there is nothing to cancel."

    # Progress that was already on its way no longer brings the bar (or the button) back.
    mark = len(fake.calls)
    services.progress(job_id, 60)
    services.emit(job_id, "cancelled")
    told = await ix.wait_followup(start=mark)
    assert told.json["content"] == f"Training **Bo** was cancelled (job #{job_id})."
    edits = [r.json["content"] for r in ix.calls() if r.index >= mark and r.method == "PATCH"]
    assert edits == [told.json["content"]]


async def test_job_that_ends_after_a_restart_is_announced_by_dm(harness: Harness) -> None:
    """A job taught before the bot restarted has no watcher: its owner still hears of it."""
    fake, services = harness.fake, harness.services
    subject = services.add_subject(int(fake.user.id), "Bo", (220, 40, 40), ready=False)
    from tests.discord.fake_services import FakeJob

    services.jobs[99] = FakeJob(99, int(fake.user.id), subject, status="running")
    services.succeed(99)
    dm = await fake.wait_for_call("POST", r"/channels/\d+/messages")
    assert dm.json["content"].startswith("**Bo** is ready (job #99).")
    services.succeed(99)  # a replayed event is not announced twice
    await asyncio.sleep(0.1)
    assert len(fake.dms_to(fake.user)) == 1


async def test_non_image_and_oversized_attachments_get_one_sentence(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    text = fake.add_attachment("notes.txt", b"not a photo", "text/plain")
    ix = await fake.send_slash_command(
        "teach", {"name": "Bo", "photo1": harness.photo("a.png"), "photo2": text}
    )
    edit = await ix.wait_original_edit()
    assert edit.json["content"] == "I couldn't use 1 photo: notes.txt is not an image (text/plain)."
    assert services.called("teach") == []

    huge = fake.add_attachment("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(11 * 1024 * 1024), "image/png")
    ix = await fake.send_slash_command("teach", {"name": "Bo", "photo1": huge})
    edit = await ix.wait_original_edit()
    assert edit.json["content"] == "I couldn't use 1 photo: huge.png is 11.0 MB; the most I take is 10.0 MB."

    # A file that claims to be a PNG: the services read it by content and refuse it.
    liar = fake.add_attachment("liar.png", b"definitely not a png", "image/png")
    ix = await fake.send_slash_command("teach", {"name": "Bo", "photo1": liar})
    edit = await ix.wait_original_edit()
    assert edit.json["content"] == "I couldn't use 1 photo: liar.png is not a photo I can read."
    assert edit.json["components"] == []


async def test_interaction_upload_limit_is_respected(harness: Harness) -> None:
    fake = harness.fake
    fake.attachment_size_limit = 100  # a guild whose upload limit is smaller than the photo cap
    ix = await harness.teach("Bo", photos=3)
    edit = await ix.wait_original_edit()
    assert "the most I take is 1 KB" in edit.json["content"]
    assert edit.json["content"].startswith("I couldn't use 3 photos: bo1.png is ")
