"""The fake Discord drives an unmodified discord.py 2.7 bot end to end."""

from __future__ import annotations

import asyncio
import io

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakediscord import FakeDiscord, run_bot
from tests.fakediscord import payloads as p

PNG = b"\x89PNG\r\n\x1a\n" + b"fake image bytes" * 64
FRUITS = ["apple", "apricot", "banana", "cherry"]


class ConfirmView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.clicked_by: list[int] = []

    @discord.ui.button(label="Confirm", custom_id="confirm", style=discord.ButtonStyle.green)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.clicked_by.append(interaction.user.id)
        await interaction.response.edit_message(content="confirmed", view=None)


class FakeBot(commands.Bot):
    def __init__(self) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default())
        self.resumed = asyncio.Event()
        self.views: list[ConfirmView] = []
        self.seen_filesize_limits: list[int] = []
        self.add_commands()

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every non-initial IDENTIFY; not needed against the fake.
        return None

    def add_commands(self) -> None:
        tree = self.tree

        @tree.command(name="photo", description="Read a photo")
        async def photo(interaction: discord.Interaction, image: discord.Attachment) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            self.seen_filesize_limits.append(interaction.filesize_limit)
            data = await image.read()
            await interaction.edit_original_response(content=f"read {len(data)} bytes from {image.filename}")
            view = ConfirmView()
            self.views.append(view)
            await interaction.followup.send(
                "confirm?",
                view=view,
                ephemeral=True,
                file=discord.File(io.BytesIO(data[::-1]), filename="reversed.bin"),
            )

        @tree.command(name="pick", description="Pick a fruit")
        async def pick(interaction: discord.Interaction, fruit: str) -> None:
            await interaction.response.send_message(f"you picked {fruit}")

        @pick.autocomplete("fruit")
        async def pick_autocomplete(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=f, value=f) for f in FRUITS if f.startswith(current)]

        @tree.command(name="dm", description="DM me")
        async def dm(interaction: discord.Interaction) -> None:
            await interaction.user.send("hello in private")
            await interaction.response.send_message("sent", ephemeral=True)

        @tree.context_menu(name="Describe")
        async def describe(interaction: discord.Interaction, message: discord.Message) -> None:
            await interaction.response.send_message(
                f"{message.author.name} said {message.content!r}", ephemeral=True
            )


async def test_slash_attachment_autocomplete_context_menu_and_dm(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    bot = FakeBot()
    async with run_bot(bot, fake):
        assert bot.user is not None and str(bot.user.id) == fake.bot_user.id
        guild = bot.get_guild(int(fake.guild.id))
        assert guild is not None and guild.get_channel(int(fake.channel_id)) is not None
        assert guild.me is not None

        # Command sync: global and guild bulk overwrite.
        synced = await bot.tree.sync()
        assert sorted(c.name for c in synced) == ["Describe", "dm", "photo", "pick"]
        assert all(c.id for c in synced)
        put = fake.find_calls("PUT", rf"/applications/{fake.application_id}/commands")
        assert len(put) == 1 and {c["name"] for c in put[0].json} >= {"photo", "pick"}
        gobj = discord.Object(int(fake.guild.id))
        bot.tree.copy_global_to(guild=gobj)
        gsynced = await bot.tree.sync(guild=gobj)
        assert len(gsynced) == 4 and fake.commands[fake.guild.id][0]["guild_id"] == fake.guild.id

        # Slash command with an attachment: defer, read from the CDN, edit, followup + button.
        att = fake.add_attachment("cat.png", PNG, "image/png", width=64, height=64)
        ix = await fake.send_slash_command("photo", {"image": att})
        assert ix.payload["data"]["guild_id"] == fake.guild.id  # guild command from the sync
        cb = await ix.wait_callback()
        assert cb.json["type"] == p.CALLBACK_DEFERRED_CHANNEL_MESSAGE
        assert cb.json["data"]["flags"] & p.FLAG_EPHEMERAL
        edit = await ix.wait_original_edit()
        assert edit.json["content"] == f"read {len(PNG)} bytes from cat.png"
        follow = await ix.wait_followup()
        assert follow.query["wait"] == "1"
        assert follow.json["content"] == "confirm?"
        assert follow.json["flags"] & p.FLAG_EPHEMERAL
        assert follow.json["components"][0]["components"][0]["custom_id"] == "confirm"
        assert [f.filename for f in follow.files] == ["reversed.bin"]
        assert follow.files[0].data == PNG[::-1]
        uploaded = follow.response["attachments"][0]
        assert fake.attachment_data(uploaded) == PNG[::-1]
        assert bot.seen_filesize_limits == [fake.attachment_size_limit]
        original = ix.original_message
        assert original is not None and original["content"].startswith("read ")
        assert not original["flags"] & p.FLAG_LOADING

        # Two distinct users click the button on the followup message.
        bob = fake.create_user("bob")
        click = await fake.send_component("confirm", follow.response, user=bob)
        click_cb = await click.wait_callback()
        assert click_cb.json["type"] == p.CALLBACK_UPDATE_MESSAGE
        assert click_cb.json["data"]["content"] == "confirmed"
        assert fake.messages[follow.response["id"]]["content"] == "confirmed"
        assert fake.messages[follow.response["id"]]["components"] == []
        assert bot.views[0].clicked_by == [int(bob.id)]

        # Autocomplete.
        ac = await fake.send_autocomplete("pick", {"fruit": "ap"}, focused="fruit")
        ac_cb = await ac.wait_callback()
        assert ac_cb.json["type"] == p.CALLBACK_AUTOCOMPLETE_RESULT
        assert [c["value"] for c in ac.choices or []] == ["apple", "apricot"]
        pick = await fake.send_slash_command("pick", {"fruit": "apple"})
        assert (await pick.wait_callback()).json["data"]["content"] == "you picked apple"

        # Message context menu on a message a user posted.
        posted = await fake.send_message("look at my cat", author=bob)
        menu = await fake.send_message_context_menu("Describe", posted)
        menu_cb = await menu.wait_callback()
        assert menu_cb.json["data"]["content"] == "bob said 'look at my cat'"

        # A DM: create the DM channel, then post into it (the slash command comes from a DM).
        dm_ix = await fake.send_slash_command("dm", guild=False, user=bob)
        await dm_ix.wait_callback()
        assert [m["content"] for m in fake.dms_to(bob)] == ["hello in private"]
        create = fake.find_calls("POST", r"/users/@me/channels")
        assert str(create[0].json["recipient_id"]) == bob.id

        # The bot can DM a user it only knows by id; closed DMs give Forbidden (50007).
        carol = fake.create_user("carol", member=False, dms_open=False)
        user = await bot.fetch_user(int(carol.id))
        with pytest.raises(discord.Forbidden) as exc_info:
            await user.send("hi")
        assert exc_info.value.code == 50007

        # Answering twice is refused as on Discord.
        with pytest.raises(discord.HTTPException) as twice:
            await bot.http.request(
                discord.http.Route(
                    "POST",
                    "/interactions/{iid}/{tok}/callback",
                    iid=pick.id,
                    tok=pick.token,
                ),
                json={"type": 4, "data": {"content": "again"}},
            )
        assert twice.value.code == 40060

        # After 15 minutes the token is dead: webhook calls get 401 / 50027.
        pick.expire()
        with pytest.raises(discord.HTTPException) as expired:
            await bot.http.request(
                discord.http.Route("POST", "/webhooks/{app}/{tok}", app=fake.application_id, tok=pick.token),
                json={"content": "late"},
            )
        assert (expired.value.status, expired.value.code) == (401, 50027)

    assert bot.is_closed()
    assert all(r.status < 500 for r in fake.calls)


async def test_rate_limited_followup_and_message_are_retried(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    bot = FakeBot()
    async with run_bot(bot, fake):
        fake.fail_next("POST", r"/webhooks/\d+/[^/]+", retry_after=0.05)
        fake.fail_next("POST", r"/channels/\d+/messages", retry_after=0.05)
        att = fake.add_attachment("cat.png", PNG)
        ix = await fake.send_slash_command("photo", {"image": att})
        follow = await ix.wait_followup()
        posts = [r for r in ix.calls() if r.method == "POST" and r.path.endswith(ix.token)]
        assert [(r.status, r.injected) for r in posts] == [(429, True), (200, False)]
        assert follow.files[0].data == PNG[::-1]  # the file is sent again on the retry

        dm_ix = await fake.send_slash_command("dm")
        await dm_ix.wait_callback()
        sends = fake.find_calls("POST", r"/channels/\d+/messages")
        assert [r.status for r in sends] == [429, 200]
        assert [m["content"] for m in fake.dms_to(fake.user)] == ["hello in private"]


async def test_gateway_disconnect_resume_and_reidentify(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    bot = FakeBot()
    async with run_bot(bot, fake):
        # Close 4000: the bot resumes; an event sent while it was away is replayed.
        mark = len(fake.gateway)
        await fake.disconnect_gateway(4000)
        queued = await fake.send_slash_command("pick", {"fruit": "cherry"})
        await fake.wait_resumed(start=mark)
        await asyncio.wait_for(bot.resumed.wait(), 5)
        assert (await queued.wait_callback()).json["data"]["content"] == "you picked cherry"
        replayed = [
            g for g in fake.gateway.items[mark:] if g.direction == "send" and g.t == "INTERACTION_CREATE"
        ]
        assert replayed and replayed[0].connection == 1
        assert len(fake.resumes) == 1 and len(fake.identifies) == 1
        assert fake.resumes[0]["session_id"] == fake.session_id
        after = await fake.send_slash_command("pick", {"fruit": "banana"})
        assert (await after.wait_callback()).json["data"]["content"] == "you picked banana"

        # Abrupt TCP drop: resumes too.
        bot.resumed.clear()
        mark = len(fake.gateway)
        await fake.disconnect_gateway(None)
        await fake.wait_resumed(start=mark)
        await asyncio.wait_for(bot.resumed.wait(), 5)
        assert len(fake.resumes) == 2

        # Not resumable: INVALID_SESSION, then a fresh IDENTIFY.
        mark = len(fake.gateway)
        await fake.disconnect_gateway(4000, resumable=False)
        await fake.wait_ready_sent(start=mark)
        assert len(fake.identifies) == 2
        for _ in range(200):
            if bot.is_ready() and fake.connected:
                break
            await asyncio.sleep(0.01)
        last = await fake.send_slash_command("pick", {"fruit": "apricot"})
        assert (await last.wait_callback()).json["data"]["content"] == "you picked apricot"
    assert bot.is_closed()


async def test_login_with_wrong_token_fails(fake_discord: FakeDiscord) -> None:
    bot = FakeBot()
    try:
        with pytest.raises(discord.LoginFailure):
            await bot.login("not-the-token")
    finally:
        await bot.close()
    assert fake_discord.calls[0].status == 401


def test_globals_are_restored() -> None:
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"


class NameModal(discord.ui.Modal, title="Name your subject"):
    name: discord.ui.TextInput[NameModal] = discord.ui.TextInput(label="Name", custom_id="name")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"named {self.name.value}", ephemeral=True)


class ChatBot(commands.Bot):
    """Privileged intents: member chunking at startup, on_message with content."""

    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.members = intents.message_content = True
        super().__init__(command_prefix="!", intents=intents)
        self.heard: list[str] = []

        @self.tree.command(name="name", description="Open a modal")
        async def name(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(NameModal(custom_id="name-modal"))

        @self.tree.context_menu(name="Whois")
        async def whois(interaction: discord.Interaction, member: discord.Member) -> None:
            await interaction.response.send_message(f"{member.name} is here", ephemeral=True)

    async def on_message(self, message: discord.Message) -> None:
        if self.user is not None and message.author.id == self.user.id:
            self.heard.append(f"self:{message.content}")
            return
        self.heard.append(message.content)
        if self.user is not None and self.user in message.mentions:
            sent = await message.channel.send(f"hi {message.author.name}")
            await sent.edit(content=f"hello {message.author.name}")


async def test_modal_user_menu_messages_and_member_chunking(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    bot = ChatBot()
    async with run_bot(bot, fake):
        guild = bot.get_guild(int(fake.guild.id))
        assert guild is not None and guild.chunked
        assert {m.name for m in guild.members} == {"yollava", "owner", "alice"}
        assert any(g.direction == "recv" and g.op == 8 for g in fake.gateway)

        ix = await fake.send_slash_command("name")
        cb = await ix.wait_callback()
        assert cb.json["type"] == p.CALLBACK_MODAL and ix.modal is not None
        assert ix.modal["custom_id"] == "name-modal"
        submit = await fake.send_modal_submit("name-modal", {"name": "Mochi"})
        assert (await submit.wait_callback()).json["data"]["content"] == "named Mochi"

        bob = fake.create_user("bob")
        menu = await fake.send_user_context_menu("Whois", bob)
        assert (await menu.wait_callback()).json["data"]["content"] == "bob is here"

        mark = len(fake.calls)
        await fake.send_message(f"{fake.bot_user.mention} hey", author=bob)
        edit = await fake.wait_for_call("PATCH", r"/channels/\d+/messages/\d+", start=mark)
        assert edit.response["content"] == "hello bob"
        for _ in range(100):  # the echo of the bot's own message arrives over the gateway
            if "self:hi bob" in bot.heard:
                break
            await asyncio.sleep(0.01)
        assert bot.heard == [f"{fake.bot_user.mention} hey", "self:hi bob"]
        assert [m["content"] for m in fake.messages_in(fake.channel_id)][-1] == "hello bob"
