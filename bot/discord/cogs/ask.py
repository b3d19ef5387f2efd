"""/ask: a question about the user's subjects, optionally about an image."""

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import rendering
from bot.discord.attachments import read_photos, upload_limit
from bot.discord.cogs.autocomplete import subject_choices
from bot.discord.ports import BotServices
from bot.discord.views import ShareView


class AskCog(commands.Cog):
    def __init__(self, services: BotServices, *, photo_max_bytes: int) -> None:
        self.services = services
        self.photo_max_bytes = photo_max_bytes

    @app_commands.command(name="ask", description="Ask about your subjects, e.g. “Is Bo in this picture?”")
    @app_commands.describe(
        question="Your question; name your subject in it, e.g. “What colour is Bo?”",
        image="A picture to ask about",
        subject="Which of your subjects you mean (if the question doesn't say)",
    )
    async def ask(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 1, 1000],
        image: discord.Attachment | None = None,
        subject: str | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        files: list[tuple[str, bytes]] = []
        if image is not None:
            (photo,) = await read_photos([image], max_bytes=upload_limit(interaction, self.photo_max_bytes))
            files.append((photo.filename, photo.data))
        result = await self.services.ask(
            user_id=interaction.user.id,
            question=question,
            image=files[0][1] if files else None,
            subject=subject or None,
        )
        text = rendering.answer(result)
        if interaction.guild_id is None:  # in a DM, private is all there is
            await interaction.edit_original_response(content=text)
            return
        view = ShareView(
            owner_id=interaction.user.id,
            content=f"{interaction.user.mention} asked: {question}\n{text}",
            files=files,
        )
        view.source = interaction
        await interaction.edit_original_response(content=text, view=view)

    @ask.autocomplete("subject")
    async def ask_subject(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await subject_choices(self.services, interaction.user.id, current)
