"""/forget with its confirmation, /status for users and operators, and the registered commands."""

from tests.discord.conftest import BLUE, GREEN, RED, Harness
from tests.fakediscord import payloads as p


def buttons(message: dict) -> dict[str, str]:
    return {c["label"]: c["custom_id"] for row in message["components"] for c in row["components"]}


async def test_forget_asks_first_then_deletes(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    services.add_subject(int(fake.user.id), "Bo", RED)
    services.add_subject(int(fake.user.id), "Mam", GREEN)

    ix = await fake.send_slash_command("forget", {"name": "Bo"})
    prompt = await ix.wait_callback()
    assert prompt.json["type"] == p.CALLBACK_CHANNEL_MESSAGE
    assert prompt.json["data"]["flags"] & p.FLAG_EPHEMERAL
    assert prompt.json["data"]["content"].startswith("Forget **Bo**?")
    assert services.called("forget") == []
    choice = buttons(prompt.json["data"])
    assert set(choice) == {"Forget", "Keep"}

    # Someone else clicking is refused (and nothing is deleted).
    intruder = await fake.send_component(choice["Forget"], ix.original_message_id or "", user=fake.owner)
    refusal = await intruder.wait_callback()
    assert refusal.json["data"]["content"] == "Those buttons belong to someone else."
    assert services.called("forget") == []

    click = await fake.send_component(choice["Forget"], ix.original_message_id or "")
    assert (await click.wait_callback()).json["data"]["content"] == "Forgetting…"
    done = await click.wait_original_edit()
    assert done.json["content"] == "Forgotten: **Bo**. Deleted 1 photo; nothing of it is left."
    assert services.called("forget") == [{"user_id": int(fake.user.id), "name": "Bo"}]
    assert await services.subject_names(user_id=int(fake.user.id)) == ["Mam"]

    ix = await fake.send_slash_command("forget", {"name": "Mam"})
    prompt = await ix.wait_callback()
    click = await fake.send_component(buttons(prompt.json["data"])["Keep"], ix.original_message_id or "")
    assert (await click.wait_callback()).json["data"]["content"] == "Kept; nothing was deleted."
    assert len(services.called("forget")) == 1


async def test_forget_all_and_an_unknown_name(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    bob = fake.create_user("bob")
    services.add_subject(int(fake.user.id), "Bo", RED)
    services.add_subject(int(fake.user.id), "Mam", GREEN)
    services.add_subject(int(bob.id), "Rex", BLUE)

    ix = await fake.send_slash_command("forget", {"name": "ALL"})
    prompt = await ix.wait_callback()
    assert prompt.json["data"]["content"].startswith("Forget **all** your subjects?")
    click = await fake.send_component(buttons(prompt.json["data"])["Forget"], ix.original_message_id or "")
    done = await click.wait_original_edit()
    assert done.json["content"].startswith("Forgotten: **Bo**, **Mam**.")
    assert await services.subject_names(user_id=int(bob.id)) == ["Rex"]

    ix = await fake.send_slash_command("forget", {"name": "Rex"})  # bob's, not alice's
    prompt = await ix.wait_callback()
    click = await fake.send_component(buttons(prompt.json["data"])["Forget"], ix.original_message_id or "")
    answer = await click.wait_original_edit()
    assert answer.json["content"] == "I don't know anything called 'Rex' of yours."
    assert await services.subject_names(user_id=int(bob.id)) == ["Rex"]


async def test_status_for_a_user_and_for_an_operator(harness: Harness) -> None:
    fake, services = harness.fake, harness.services
    ix = await harness.teach("Bo")
    await ix.wait_original_edit()
    other = await harness.teach("Rex", user=fake.create_user("bob"))
    await other.wait_original_edit()

    status = await fake.send_slash_command("status")
    text = (await status.wait_original_edit()).json["content"]
    assert text.startswith("**Your trainings**\n#")
    assert "**Bo** · queued · queued #2" in text and "Rex" not in text
    assert "Workers" not in text and "negative bank" not in text
    assert services.called("status")[-1]["operator"] is False

    status = await fake.send_slash_command("status", user=fake.owner)
    text = (await status.wait_original_edit()).json["content"]
    assert "**Training queue**" in text and "Bo" in text and "Rex" in text
    assert "`local` up · toyworld · cpu" in text
    assert "⚠️ No negative bank is configured" in text
    assert services.called("status")[-1] == {"user_id": int(fake.owner.id), "operator": True}


async def test_commands_are_registered_as_specified(harness: Harness) -> None:
    commands = {(c["name"], c["type"]): c for c in harness.fake.commands[None]}
    assert set(commands) == {
        ("teach", 1),
        ("ask", 1),
        ("subjects", 1),
        ("forget", 1),
        ("status", 1),
        ("Who's in this?", 3),
    }
    teach = commands["teach", 1]["options"]
    names = [o["name"] for o in teach]
    assert names == ["name", "photo1", *(f"photo{n}" for n in range(2, 11)), "kind", "facts"]
    assert [o["required"] for o in teach[:3]] == [True, True, False]
    assert all(o["type"] == p.OPT_ATTACHMENT for o in teach[1:11])
    kinds = next(o for o in teach if o["name"] == "kind")
    assert [c["value"] for c in kinds["choices"]] == [
        "dog",
        "cat",
        "pet",
        "person",
        "object",
        "place",
        "other",
    ]
    ask = commands["ask", 1]["options"]
    assert [(o["name"], o["type"]) for o in ask] == [
        ("question", p.OPT_STRING),
        ("image", p.OPT_ATTACHMENT),
        ("subject", p.OPT_STRING),
    ]
    assert ask[2]["autocomplete"] is True
    forget = commands["forget", 1]["options"]
    assert forget[0]["name"] == "name" and forget[0]["autocomplete"] is True
