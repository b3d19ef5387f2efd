"""The Discord front end: a thin layer that parses an interaction, calls one service, renders.

No SQL, torch or file access here: the services (:mod:`bot.services.api`) do the work and return
plain results; :mod:`bot.discord.rendering` turns them into text, embeds and images. The bot is
built in the composition root (:mod:`bot.app`) with its services passed in.
"""
