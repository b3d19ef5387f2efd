"""/status: the invoker's trainings; operators see the whole queue and the workers' health."""

from collections.abc import Set

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import rendering
from bot.discord.ports import BotServices


class StatusCog(commands.Cog):
    def __init__(self, services: BotServices, *, operator_ids: Set[int]) -> None:
        self.services = services
        self.operator_ids = operator_ids

    @app_commands.command(name="status", description="Your trainings and their place in the queue")
    async def status(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        is_operator = interaction.user.id in self.operator_ids
        report = await self.services.status(user_id=interaction.user.id, operator=is_operator)
        await interaction.edit_original_response(content=rendering.status(report, is_operator=is_operator))
