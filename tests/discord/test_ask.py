"""/ask, the "Who's in this?" context menu, questions by mention and by DM, autocomplete."""

import io

from PIL import Image

from tests.discord.conftest import BLUE, GREEN, RED, Harness
from tests.discord.fake_services import photo_bytes
from tests.fakediscord import payloads as p

# Privileged intents: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT.
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)


async def test_ask_answers_yes_and_no_privately_and_can_share(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    services.add_subject(int(fake.user.id), "Bo", RED)

    ix = await fake.send_slash_command(
        "ask", {"question": "Is Bo in this picture?", "image": harness.photo("park.png", RED)}
    )
    callback = await ix.wait_callback()
    assert callback.json["type"] == p.CALLBACK_DEFERRED_CHANNEL_MESSAGE
    assert callback.json["data"]["flags"] & p.FLAG_EPHEMERAL
    answer = await ix.wait_original_edit()
    assert answer.json["content"] == "Yes, Bo is in this photo."
    (asked,) = services.called("ask")
    assert asked["image"] == photo_bytes(RED) and asked["subject"] is None

    ix = await fake.send_slash_command(
        "ask", {"question": "is Bo here?", "image": harness.photo("beach.png", BLUE)}
    )
    answer = await ix.wait_original_edit()
    assert answer.json["content"] == "No, Bo is not in this photo."

    # Share: the answer (and its picture) goes public; the private copy loses its button.
    share = answer.json["components"][0]["components"][0]
    assert share["label"] == "Share"
    click = await fake.send_component(share["custom_id"], ix.original_message_id or "")
    update = await click.wait_callback()
    assert update.json["type"] == p.CALLBACK_UPDATE_MESSAGE and update.json["data"]["components"] == []
    public = await click.wait_followup()
    assert not public.json.get("flags", 0) & p.FLAG_EPHEMERAL
    assert public.json["content"] == f"<@{fake.user.id}> asked: is Bo here?\nNo, Bo is not in this photo."
    assert [f.filename for f in public.files] == ["beach.png"]


async def test_ask_with_subject_option_and_unknown_subject(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    services.add_subject(int(fake.user.id), "Bo", RED)
    ix = await fake.send_slash_command("ask", {"question": "what is it?", "subject": "Bo"})
    assert (await ix.wait_original_edit()).json["content"] == "Bo is a dog."

    ix = await fake.send_slash_command("ask", {"question": "what is it?", "subject": "Zed"})
    edit = await ix.wait_original_edit()
    assert edit.json["content"] == "I don't know anything called 'Zed' of yours."


async def test_autocomplete_lists_only_the_invokers_subjects(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    bob = fake.create_user("bob")
    services.add_subject(int(fake.user.id), "Bo", RED)
    services.add_subject(int(fake.user.id), "Mam", GREEN, kind="cat")
    services.add_subject(int(bob.id), "Rex", BLUE)
    services.add_subject(int(bob.id), "Bobby", BLUE)

    ac = await fake.send_autocomplete("ask", {"question": "x", "subject": ""}, focused="subject")
    await ac.wait_callback()
    assert [c["value"] for c in ac.choices or []] == ["Bo", "Mam"]

    ac = await fake.send_autocomplete("ask", {"question": "x", "subject": "b"}, focused="subject", user=bob)
    await ac.wait_callback()
    assert [c["value"] for c in ac.choices or []] == ["Bobby"]

    ac = await fake.send_autocomplete("forget", {"name": ""}, focused="name", user=bob)
    await ac.wait_callback()
    assert [c["value"] for c in ac.choices or []] == ["all", "Bobby", "Rex"]

    # Autocomplete cannot show an error: a failing service gives no choices, not a failure.
    services.fail_with = RuntimeError("database is down")
    ac = await fake.send_autocomplete("forget", {"name": "a"}, focused="name")
    await ac.wait_callback()
    assert [c["value"] for c in ac.choices or []] == ["all"]


async def test_whos_in_this_context_menu(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    bob = fake.create_user("bob")
    services.add_subject(int(fake.user.id), "Bo", RED)
    services.add_subject(int(fake.user.id), "Mam", GREEN, kind="cat")
    services.add_subject(int(bob.id), "Rex", BLUE)  # bob's: never reported to alice
    posted = await fake.send_message(
        "look who I met",
        author=bob,
        attachments=[
            harness.photo("one.png", RED),
            fake.add_attachment("notes.txt", b"hello", "text/plain"),
            harness.photo("two.png", BLUE),
        ],
    )
    menu = await fake.send_message_context_menu("Who's in this?", posted)
    callback = await menu.wait_callback()
    assert callback.json["data"]["flags"] & p.FLAG_EPHEMERAL
    edit = await menu.wait_original_edit()
    assert edit.json["content"] == "**one.png**: Bo (100%)\n**two.png**: none of your subjects."
    assert len(services.called("recognize_all")) == 2

    plain = await fake.send_message("no pictures here", author=bob)
    menu = await fake.send_message_context_menu("Who's in this?", plain)
    edit = await menu.wait_original_edit()
    assert edit.json["content"] == "That message has no images I can look at."


async def test_mention_and_dm_work_like_ask_without_privileged_intents(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    assert not fake.intents & PRIVILEGED_INTENTS
    services.add_subject(int(fake.user.id), "Bo", RED)

    mark = len(fake.calls)
    await fake.send_message(
        f"{fake.bot_user.mention} is Bo in this picture?", attachments=[harness.photo("x.png", RED)]
    )
    reply = await fake.wait_for_call("POST", rf"/channels/{fake.channel_id}/messages", start=mark)
    assert reply.json["content"] == "Yes, Bo is in this photo."
    assert str(reply.json["message_reference"]["channel_id"]) == fake.channel_id
    assert services.called("ask")[-1]["question"] == "is Bo in this picture?"

    mark = len(fake.calls)
    await fake.send_message("what is Bo?", dm=True)
    reply = await fake.wait_for_call("POST", r"/channels/\d+/messages", start=mark)
    assert reply.json["content"] == "Bo is a dog."

    # A message that doesn't mention the bot is not for it; a bare mention gets help.
    asked = len(services.called("ask"))
    await fake.send_message("is Bo cute?")
    mark = len(fake.calls)
    await fake.send_message(fake.bot_user.mention)
    reply = await fake.wait_for_call("POST", rf"/channels/{fake.channel_id}/messages", start=mark)
    assert reply.json["content"].startswith("Ask me about someone you taught me")
    assert len(services.called("ask")) == asked

    # Errors become the same sentences as for /ask.
    mark = len(fake.calls)
    await fake.send_message(
        f"{fake.bot_user.mention} is Bo here?",
        attachments=[fake.add_attachment("doc.pdf", b"%PDF-1.4", "application/pdf")],
    )
    reply = await fake.wait_for_call("POST", rf"/channels/{fake.channel_id}/messages", start=mark)
    assert reply.json["content"] == "I couldn't use 1 photo: doc.pdf is not an image (application/pdf)."


async def test_subjects_lists_with_a_montage(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    services.add_subject(int(fake.user.id), "Bo", RED)
    services.add_subject(int(fake.user.id), "Mam", GREEN, kind="cat")
    services.add_subject(int(fake.create_user("bob").id), "Rex", BLUE)
    ix = await fake.send_slash_command("subjects")
    edit = await ix.wait_original_edit()
    (embed,) = edit.json["embeds"]
    assert embed["title"] == "Your subjects"
    assert "**Bo** · dog · ready · 1 photo" in embed["description"]
    assert "**Mam** · cat" in embed["description"] and "Rex" not in embed["description"]
    assert "recognised 4/4 of your held-out photos" in embed["description"]
    assert embed["image"]["url"] == "attachment://subjects.png"
    (montage,) = edit.files
    with Image.open(io.BytesIO(montage.data)) as image:
        assert image.format == "PNG" and image.size == (140 + 96 + 8, 2 * 100 + 4)

    empty = await fake.send_slash_command("subjects", user=fake.create_user("newcomer"))
    edit = await empty.wait_original_edit()
    assert edit.json["embeds"][0]["description"].startswith("You haven't taught me anyone yet.")
    assert edit.files == []
