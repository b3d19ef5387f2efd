"""The message context menu "Who's in this?": which of the invoker's subjects each image shows.

discord.py cannot declare a context menu inside a cog with a decorator, so the cog builds an
:class:`app_commands.ContextMenu` and adds / removes it with itself.
"""

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import rendering
from bot.discord.attachments import looks_like_image, read_photos, upload_limit
from bot.discord.ports import BotServices
from bot.discord.views import ShareView
from bot.services.api import RecognitionHit

CONTEXT_MENU_NAME = "Who's in this?"
MAX_IMAGES_PER_MESSAGE = 10


class RecognizeCog(commands.Cog):
    def __init__(self, bot: commands.Bot, services: BotServices, *, photo_max_bytes: int) -> None:
        self.bot = bot
        self.services = services
        self.photo_max_bytes = photo_max_bytes
        self.menu = app_commands.ContextMenu(name=CONTEXT_MENU_NAME, callback=self.whos_in_this)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def whos_in_this(self, interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        images = [a for a in message.attachments if looks_like_image(a)][:MAX_IMAGES_PER_MESSAGE]
        photos = await read_photos(images, max_bytes=upload_limit(interaction, self.photo_max_bytes))
        results: list[tuple[str, list[RecognitionHit]]] = []
        for photo in photos:
            hits = await self.services.recognize_all(user_id=interaction.user.id, image=photo.data)
            results.append((photo.filename, hits))
        text = rendering.recognition(results)
        if interaction.guild_id is None or not results:
            await interaction.edit_original_response(content=text)
            return
        view = ShareView(owner_id=interaction.user.id, content=f"{message.jump_url}\n{text}")
        view.source = interaction
        await interaction.edit_original_response(content=text, view=view)
