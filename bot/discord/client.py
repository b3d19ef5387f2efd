"""The Discord client: a ``commands.Bot`` that receives its services in the constructor.

``setup_hook`` adds one cog per feature, starts relaying job updates to /teach replies, and
syncs the slash commands (to the development guild when one is configured: instant; else
globally: Discord may take a while to show changes). Only unprivileged intents are used.
"""

import logging
from collections.abc import Set

import discord
from discord.ext import commands

from bot.discord.cogs.ask import AskCog
from bot.discord.cogs.forget import ForgetCog
from bot.discord.cogs.mentions import MentionsCog
from bot.discord.cogs.recognize import RecognizeCog
from bot.discord.cogs.status import StatusCog
from bot.discord.cogs.subjects import SubjectsCog
from bot.discord.cogs.teach import TeachCog
from bot.discord.errors import ReportingTree
from bot.discord.ports import BotServices
from bot.discord.progress import DEFAULT_EDIT_INTERVAL_SECONDS, Courier, TrainingMessages
from bot.discord.views import CancelJobButton

log = logging.getLogger(__name__)

DEFAULT_PHOTO_MAX_BYTES = 10 * 1024 * 1024


def bot_intents() -> discord.Intents:
    """Guilds (channel cache), guild messages and DMs (mentions and DM questions). Not
    ``message_content``, ``members`` or ``presences``: no privileged intent at all."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    return intents


class YollavaBot(commands.Bot):
    """The yollava bot.

    Args:
        services: the application's use-cases (:class:`bot.services.api.Services`).
        dev_guild_id: sync commands to this guild only; None syncs them globally.
        operator_ids: users who see the whole queue and the workers in /status.
        photo_max_bytes: the largest photo to download (the services' photo limit).
        edit_interval_seconds: least time between two progress edits of one message.
        sync_commands: sync the command tree in ``setup_hook`` (off for tests that do it).
    """

    def __init__(
        self,
        services: BotServices,
        *,
        dev_guild_id: int | None = None,
        operator_ids: Set[int] = frozenset(),
        photo_max_bytes: int = DEFAULT_PHOTO_MAX_BYTES,
        edit_interval_seconds: float = DEFAULT_EDIT_INTERVAL_SECONDS,
        sync_commands: bool = True,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=bot_intents(),
            tree_cls=ReportingTree,
            help_command=None,
            # User text is echoed in answers: nothing the bot says may ping anyone.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.services = services
        self.dev_guild_id = dev_guild_id
        self.operator_ids = frozenset(operator_ids)
        self.photo_max_bytes = photo_max_bytes
        self.sync_commands = sync_commands
        self.courier = Courier(self)
        self.training_messages = TrainingMessages(
            services, self.courier, edit_interval_seconds=edit_interval_seconds
        )

    async def setup_hook(self) -> None:
        services, size = self.services, self.photo_max_bytes
        await self.add_cog(TeachCog(services, self.training_messages, photo_max_bytes=size))
        await self.add_cog(AskCog(services, photo_max_bytes=size))
        await self.add_cog(RecognizeCog(self, services, photo_max_bytes=size))
        await self.add_cog(SubjectsCog(services))
        await self.add_cog(ForgetCog(services))
        await self.add_cog(StatusCog(services, operator_ids=self.operator_ids))
        await self.add_cog(MentionsCog(self, services, photo_max_bytes=size))
        self.add_dynamic_items(CancelJobButton)
        self.training_messages.start()
        if self.sync_commands:
            await self.sync_app_commands()

    async def sync_app_commands(self) -> list[discord.app_commands.AppCommand]:
        """Register the commands with Discord: in the development guild, or globally."""
        if self.dev_guild_id is not None:
            guild = discord.Object(self.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to development guild %s", len(synced), self.dev_guild_id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d commands globally", len(synced))
        return synced

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: questions by mention are answered by :class:`MentionsCog`."""

    async def on_ready(self) -> None:
        log.info("connected as %s to %d guilds", self.user, len(self.guilds))

    async def close(self) -> None:
        await self.training_messages.close()
        await super().close()
