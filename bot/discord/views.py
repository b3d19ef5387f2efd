"""Buttons: Cancel on a training message, Confirm on /forget, Share on a private answer.

The Cancel button is a :class:`~discord.ui.DynamicItem` whose custom id carries the job id
(``yollava:cancel:42``), so it keeps working on messages sent before a restart.
"""

import io
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import discord

from bot.discord import rendering
from bot.discord.errors import ReportingView, report, user_sentence
from bot.discord.ports import BotServices

if TYPE_CHECKING:
    from bot.discord.client import YollavaBot

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_SECONDS = 120.0
# An ephemeral answer can be shared while its interaction lives (15 minutes).
SHARE_TIMEOUT_SECONDS = 14 * 60.0


class CancelJobButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"yollava:cancel:(?P<job_id>[0-9]+)",
):
    """Cancels training job ``job_id`` of whoever clicks (the services check ownership)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"yollava:cancel:{job_id}"
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[discord.ui.View],
        match: "re.Match[str]",
        /,
    ) -> "CancelJobButton":
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = cast("YollavaBot", interaction.client)
        try:
            await interaction.response.defer()
            cancelled = await bot.services.cancel(user_id=interaction.user.id, job_id=self.job_id)
            if cancelled:
                bot.training_messages.cancelling(self.job_id)
                await interaction.edit_original_response(content="Cancelling…", view=None)
            else:
                await interaction.followup.send(
                    "That training has already finished, so there is nothing to cancel.", ephemeral=True
                )
        except Exception as error:
            await report(interaction, error)


def cancel_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelJobButton(job_id))
    return view


class ConfirmForgetView(ReportingView):
    """The /forget prompt: Forget calls ``services.forget``; Keep leaves everything as it was."""

    def __init__(self, services: BotServices, *, owner_id: int, target: str) -> None:
        super().__init__(owner_id, timeout=CONFIRM_TIMEOUT_SECONDS)
        self.services = services
        self.target = target

    async def on_timeout(self) -> None:
        await self.close_source("No answer, so nothing was deleted.")

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[discord.ui.View]
    ) -> None:
        # The prompt already reads "Forgetting…": replace it rather than leave it hanging.
        if not interaction.response.is_done():
            await report(interaction, error)
            return
        text = user_sentence(error, context=f"in /forget for user {interaction.user.id}")
        try:
            await interaction.edit_original_response(content=text, view=None)
        except discord.HTTPException as failure:
            log.warning("could not report a /forget failure: %s", failure)

    @discord.ui.button(label="Forget", style=discord.ButtonStyle.danger)
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button["ConfirmForgetView"]
    ) -> None:
        self.stop()
        await interaction.response.edit_message(content="Forgetting…", view=None)
        result = await self.services.forget(user_id=interaction.user.id, name=self.target)
        await interaction.edit_original_response(content=rendering.forget_done(result))

    @discord.ui.button(label="Keep", style=discord.ButtonStyle.secondary)
    async def keep(
        self, interaction: discord.Interaction, button: discord.ui.Button["ConfirmForgetView"]
    ) -> None:
        self.stop()
        await interaction.response.edit_message(content="Kept; nothing was deleted.", view=None)


class ShareView(ReportingView):
    """A private answer with a Share button that posts it (and its image) in the channel."""

    def __init__(self, *, owner_id: int, content: str, files: Sequence[tuple[str, bytes]] = ()) -> None:
        super().__init__(owner_id, timeout=SHARE_TIMEOUT_SECONDS)
        self.content = content
        self.files = list(files)

    @discord.ui.button(label="Share", style=discord.ButtonStyle.secondary)
    async def share(self, interaction: discord.Interaction, button: discord.ui.Button["ShareView"]) -> None:
        self.stop()
        await interaction.response.edit_message(view=None)
        files = [discord.File(io.BytesIO(data), filename=name) for name, data in self.files]
        await interaction.followup.send(rendering.clip(self.content), files=files, ephemeral=False)
