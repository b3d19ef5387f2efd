"""/forget: delete one subject (or "all") after a confirmation button."""

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import rendering
from bot.discord.cogs.autocomplete import subject_choices
from bot.discord.ports import BotServices
from bot.discord.views import ConfirmForgetView

EVERYTHING = "all"


class ForgetCog(commands.Cog):
    def __init__(self, services: BotServices) -> None:
        self.services = services

    @app_commands.command(name="forget", description="Delete a subject's photos and everything I learned")
    @app_commands.describe(name='The subject to forget, or "all"')
    async def forget(self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 100]) -> None:
        target = EVERYTHING if name.strip().lower() == EVERYTHING else name.strip()
        view = ConfirmForgetView(self.services, owner_id=interaction.user.id, target=target)
        view.source = interaction
        await interaction.response.send_message(rendering.forget_prompt(target), view=view, ephemeral=True)

    @forget.autocomplete("name")
    async def forget_name(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await subject_choices(self.services, interaction.user.id, current, extra=(EVERYTHING,))
