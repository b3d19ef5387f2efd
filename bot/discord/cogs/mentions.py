"""Questions by mention ("@yollava is Bo in this picture?") in a channel, or in a DM: like /ask.

Discord gives a bot the content of messages that mention it and of DMs without the privileged
message-content intent, which this bot never asks for.
"""

import logging
import re

import discord
from discord.ext import commands

from bot.discord import rendering
from bot.discord.attachments import looks_like_image, read_photos
from bot.discord.errors import user_sentence
from bot.discord.ports import BotServices

log = logging.getLogger(__name__)

HOW_TO_ASK = (
    "Ask me about someone you taught me, e.g. “is Bo in this picture?” with a photo attached. "
    "Use `/teach` to introduce them first."
)


class MentionsCog(commands.Cog):
    def __init__(self, bot: commands.Bot, services: BotServices, *, photo_max_bytes: int) -> None:
        self.bot = bot
        self.services = services
        self.photo_max_bytes = photo_max_bytes

    def is_question_for_me(self, message: discord.Message) -> bool:
        me = self.bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return False
        return message.guild is None or me in message.mentions

    def question_text(self, message: discord.Message) -> str:
        me = self.bot.user
        assert me is not None
        return re.sub(rf"<@!?{me.id}>", "", message.content).strip()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not self.is_question_for_me(message):
            return
        question = self.question_text(message)
        try:
            if not question:
                text = HOW_TO_ASK
            else:
                async with message.channel.typing():
                    text = await self.answer(message, question)
        except Exception as error:
            text = user_sentence(error, context=f"in a mention from user {message.author.id}")
        try:
            await message.reply(text, mention_author=False)
        except discord.HTTPException as failure:
            log.warning("could not answer a mention in channel %s: %s", message.channel.id, failure)

    async def answer(self, message: discord.Message, question: str) -> str:
        # The first image; else the first attachment, so that a PDF gets its refusal.
        images = [a for a in message.attachments if looks_like_image(a)] or message.attachments
        photos = await read_photos(images[:1], max_bytes=self.photo_max_bytes)
        result = await self.services.ask(
            user_id=message.author.id, question=question, image=photos[0].data if photos else None
        )
        return rendering.answer(result)
