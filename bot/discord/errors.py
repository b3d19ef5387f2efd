"""The one place where failures become sentences a user reads.

A :class:`ServiceError` (from the services) is shown as its ``user_message``; anything else is
logged with its traceback and the user gets :data:`~bot.discord.rendering.GENERIC_ERROR` — never
a traceback, never Discord's "The application did not respond". The slash-command tree, the
views and the mention listener all route their failures through :func:`user_sentence` and
:func:`report`.
"""

import logging

import discord
from discord import app_commands

from bot.discord.rendering import GENERIC_ERROR
from bot.services.api import ServiceError

log = logging.getLogger(__name__)


def unwrap(error: BaseException) -> BaseException:
    """The exception a command raised, without discord.py's wrapper."""
    if isinstance(error, app_commands.CommandInvokeError):
        return error.original
    return error


def user_sentence(error: BaseException, *, context: str = "") -> str:
    """What to tell the user about ``error``; unexpected errors are logged here (once)."""
    error = unwrap(error)
    if isinstance(error, ServiceError):
        return error.user_message
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little; try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use that here."
    log.error("unexpected error %s", context or "", exc_info=error)
    return GENERIC_ERROR


async def send_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Answer ``interaction`` privately, whatever state its response is in: the first
    response, the "thinking…" placeholder of a deferred command, or a new followup."""
    response = interaction.response
    if not response.is_done():
        await response.send_message(text, ephemeral=True)
    elif response.type is discord.InteractionResponseType.deferred_channel_message:
        await interaction.edit_original_response(content=text, embed=None, attachments=[], view=None)
    else:
        await interaction.followup.send(text, ephemeral=True)


async def report(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the user what went wrong with ``interaction`` in one sentence."""
    command = interaction.command.qualified_name if interaction.command is not None else "component"
    text = user_sentence(error, context=f"in {command} for user {interaction.user.id}")
    try:
        await send_ephemeral(interaction, text)
    except discord.HTTPException as failure:
        # The token expired or the message is gone; nothing more can be said through it.
        log.warning("could not report an error to user %s: %s", interaction.user.id, failure)


class ReportingTree(app_commands.CommandTree[discord.Client]):
    """A command tree whose errors all go through :func:`report`."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await report(interaction, error)


class ReportingView(discord.ui.View):
    """A view whose callback errors go through :func:`report`, and which only its owner may use.

    Set ``source`` to the interaction whose response carries the view: on timeout the buttons
    are then removed from that message (dead buttons would answer "interaction failed").
    """

    def __init__(self, owner_id: int, *, timeout: float | None) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.source: discord.Interaction | None = None

    async def on_timeout(self) -> None:
        await self.close_source()

    async def close_source(self, content: str | None = None) -> None:
        """Remove the buttons from the source message (and replace its text if given)."""
        if self.source is None:
            return
        try:
            if content is None:
                await self.source.edit_original_response(view=None)
            else:
                await self.source.edit_original_response(content=content, view=None)
        except discord.HTTPException as failure:
            log.debug("could not remove expired buttons: %s", failure)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message("Those buttons belong to someone else.", ephemeral=True)
        return False

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[discord.ui.View]
    ) -> None:
        await report(interaction, error)
