"""One cog per feature; :class:`~bot.discord.client.YollavaBot` adds them in ``setup_hook``."""
