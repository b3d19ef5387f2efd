"""Rate limits, gateway drops, unexpected errors, sync scope and shutdown."""

import asyncio
import logging

import pytest

from bot.discord.client import YollavaBot
from bot.discord.rendering import GENERIC_ERROR
from tests.discord.conftest import RED, Harness
from tests.discord.fake_services import FakeServices
from tests.fakediscord import FakeDiscord, run_bot

WEBHOOK_ORIGINAL = r"/webhooks/\d+/[^/]+/messages/@original"


def job_of(edit_json: dict) -> int:
    return int(edit_json["components"][0]["components"][0]["custom_id"].rsplit(":", 1)[1])


async def test_rate_limited_edits_are_retried(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    fake.fail_next("PATCH", WEBHOOK_ORIGINAL, retry_after=0.05)
    ix = await harness.teach("Bo")
    receipt = await ix.wait_original_edit()
    assert receipt.json["content"].startswith("Learning **Bo** from 5 photos")
    patches = [r for r in ix.calls() if r.method == "PATCH"]
    assert [(r.status, r.injected) for r in patches] == [(429, True), (200, False)]

    fake.fail_next("PATCH", WEBHOOK_ORIGINAL, retry_after=0.05)
    fake.fail_next("POST", r"/webhooks/\d+/[^/]+", retry_after=0.05)
    mark = len(fake.calls)
    services.progress(job_of(receipt.json), 40)
    services.succeed(job_of(receipt.json))
    done = await ix.wait_followup(start=mark)
    assert "is ready" in done.json["content"]
    statuses = [(r.method, r.status) for r in ix.calls() if r.index >= mark]
    assert statuses.count(("PATCH", 429)) == 1 and statuses.count(("POST", 429)) == 1
    assert fake.dms_to(fake.user) == []  # retried, so no fallback was needed


async def test_job_finishing_across_a_gateway_disconnect_reaches_the_user(harness: Harness) -> None:
    fake, services, bot = harness.fake, harness.services, harness.bot
    ix = await harness.teach("Bo")
    job_id = job_of((await ix.wait_original_edit()).json)

    mark = len(fake.gateway)
    await fake.disconnect_gateway(4000)
    services.progress(job_id, 50)
    # An interaction sent while the bot is away is replayed on RESUME.
    status = await fake.send_slash_command("status")
    await fake.wait_resumed(start=mark)
    assert len(fake.identifies) == 1 and len(fake.resumes) == 1
    assert "**Bo** · running" in (await status.wait_original_edit()).json["content"]

    calls = len(fake.calls)
    await fake.disconnect_gateway(None)  # and an abrupt TCP drop right as it finishes
    services.succeed(job_id)
    done = await ix.wait_followup(start=calls)
    assert done.json["content"].startswith(f"**Bo** is ready (job #{job_id}).")
    await fake.wait_resumed(start=mark + 1)
    assert bot.is_ready() and not bot.is_closed()


async def test_unexpected_errors_become_one_friendly_sentence(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    fake, services = harness.fake, harness.services
    services.add_subject(int(fake.user.id), "Bo", RED)
    services.fail_with = RuntimeError("disk on fire")
    with caplog.at_level(logging.ERROR, logger="bot.discord"):
        ix = await fake.send_slash_command("ask", {"question": "what is Bo?"})
        edit = await ix.wait_original_edit()
    assert edit.json["content"] == GENERIC_ERROR
    assert "disk on fire" not in edit.json["content"]
    (logged,) = [r for r in caplog.records if r.exc_info]
    assert "disk on fire" in str(logged.exc_info[1]) and f"user {fake.user.id}" in logged.getMessage()

    # In a button's callback, after the prompt already said "Forgetting…": it says this instead.
    ix = await fake.send_slash_command("forget", {"name": "Bo"})
    prompt = await ix.wait_callback()
    forget = prompt.json["data"]["components"][0]["components"][0]["custom_id"]
    services.fail_with = RuntimeError("database locked")
    click = await fake.send_component(forget, ix.original_message_id or "")
    assert (await click.wait_callback()).json["data"]["content"] == "Forgetting…"
    assert (await click.wait_original_edit()).json["content"] == GENERIC_ERROR

    mark = len(fake.calls)
    services.fail_with = RuntimeError("again")
    await fake.send_message(f"{fake.bot_user.mention} what is Bo?")
    reply = await fake.wait_for_call("POST", rf"/channels/{fake.channel_id}/messages", start=mark)
    assert reply.json["content"] == GENERIC_ERROR


async def test_service_refusals_are_shown_as_their_sentence(harness: Harness) -> None:
    ix = await harness.teach("Bo", photos=2)
    edit = await ix.wait_original_edit()
    assert edit.json["content"] == "I need at least 3 different photos to learn something; I got 2."
    ix = await harness.teach("all", photos=3)
    edit = await ix.wait_original_edit()
    assert edit.json["content"] == '"all" is reserved for /forget all; pick another name.'


async def test_dev_guild_sync_and_clean_shutdown(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    services = FakeServices()
    bot = YollavaBot(services, dev_guild_id=int(fake.guild.id))
    async with run_bot(bot, fake):
        assert services.subscribers == 1
        assert None not in fake.commands
        names = sorted(c["name"] for c in fake.commands[fake.guild.id])
        assert names == ["Who's in this?", "ask", "forget", "status", "subjects", "teach"]
        ix = await fake.send_slash_command("status")
        assert (await ix.wait_original_edit()).json["content"].startswith("Nothing is training")
    assert bot.is_closed() and services.subscribers == 0
    await asyncio.sleep(0)
