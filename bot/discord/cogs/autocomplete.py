"""Autocomplete of subject names: only the invoker's own subjects, ever."""

import logging

from discord import app_commands

from bot.discord.ports import BotServices

log = logging.getLogger(__name__)

MAX_CHOICES = 25  # Discord's limit


async def subject_choices(
    services: BotServices, user_id: int, current: str, *, extra: tuple[str, ...] = ()
) -> list[app_commands.Choice[str]]:
    """Choices for ``current``: the ``extra`` words that match, then the user's subjects.

    Autocomplete has no way to show an error, so a failure gives no choices (and is logged).
    """
    words = [word for word in extra if word.startswith(current.strip().lower())]
    try:
        names = await services.subject_names(
            user_id=user_id, prefix=current.strip(), limit=MAX_CHOICES - len(words)
        )
    except Exception:
        log.exception("autocomplete failed for user %s", user_id)
        names = []
    return [app_commands.Choice(name=value[:100], value=value[:100]) for value in [*words, *names]]
