"""/subjects: the invoker's subjects with status, photo counts and a thumbnail montage."""

import asyncio
import io

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import rendering
from bot.discord.ports import BotServices


class SubjectsCog(commands.Cog):
    def __init__(self, services: BotServices) -> None:
        self.services = services

    @app_commands.command(name="subjects", description="What I have learned for you")
    async def subjects(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        subjects = await self.services.list_subjects(user_id=interaction.user.id)
        rows = [(s.name, s.thumbnails) for s in subjects if s.thumbnails]
        attachments: list[discord.File] = []
        if rows:
            png = await asyncio.to_thread(rendering.montage, rows)
            attachments.append(discord.File(io.BytesIO(png), filename=rendering.MONTAGE_FILENAME))
        embed = rendering.subjects_embed(subjects, has_montage=bool(attachments))
        await interaction.edit_original_response(content=None, embed=embed, attachments=attachments)
