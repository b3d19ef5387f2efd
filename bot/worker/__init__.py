"""The model worker: the one process that holds the frozen LLaVA, trains subjects and answers.

Run it as ``python -m bot.worker`` (or ``yollava worker``); see :mod:`bot.worker.main`.
Importing this package imports nothing heavy: :mod:`bot.worker.protocol` (the wire format) and
:mod:`bot.worker.supervisor` (the bot-side process manager) are torch-free and used by the bot.
"""
