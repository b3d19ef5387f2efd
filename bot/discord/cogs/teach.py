"""/teach: read the photos now (their URLs expire), hand them to the services, then keep the
reply current while the training runs."""

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import rendering
from bot.discord.attachments import read_photos, upload_limit
from bot.discord.ports import BotServices
from bot.discord.progress import TrainingMessages
from bot.discord.views import cancel_view

Kind = Literal["dog", "cat", "pet", "person", "object", "place", "other"]
Photo = discord.Attachment | None


class TeachCog(commands.Cog):
    def __init__(self, services: BotServices, messages: TrainingMessages, *, photo_max_bytes: int) -> None:
        self.services = services
        self.messages = messages
        self.photo_max_bytes = photo_max_bytes

    @app_commands.command(name="teach", description="Teach me your pet, friend or thing from a few photos")
    @app_commands.describe(
        name="What you call it, e.g. Bo",
        photo1="A clear photo of it (3 to 10 different photos work best)",
        kind="What it is (helps me ask the right questions about it)",
        facts="Anything you want me to know, e.g. 'Bo is 3 and loves tennis balls'",
    )
    async def teach(
        self,
        interaction: discord.Interaction,
        name: app_commands.Range[str, 1, 100],
        photo1: discord.Attachment,
        photo2: Photo = None,
        photo3: Photo = None,
        photo4: Photo = None,
        photo5: Photo = None,
        photo6: Photo = None,
        photo7: Photo = None,
        photo8: Photo = None,
        photo9: Photo = None,
        photo10: Photo = None,
        kind: Kind = "other",
        facts: app_commands.Range[str, 1, 1000] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        given = (photo1, photo2, photo3, photo4, photo5, photo6, photo7, photo8, photo9, photo10)
        attachments = [photo for photo in given if photo is not None]
        photos = await read_photos(attachments, max_bytes=upload_limit(interaction, self.photo_max_bytes))
        receipt = await self.services.teach(
            user_id=interaction.user.id, name=name, photos=photos, kind=kind, facts=facts
        )
        await interaction.edit_original_response(
            content=rendering.teach_receipt(receipt), view=cancel_view(receipt.job_id)
        )
        self.messages.watch(
            job_id=receipt.job_id,
            owner_id=interaction.user.id,
            header=rendering.teach_heading(receipt),
            interaction=interaction,
        )
