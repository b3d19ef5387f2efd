"""``python -m bot``: run the Discord bot, exactly like ``yollava run``."""

import sys

from bot.app import run

if __name__ == "__main__":
    sys.exit(run())
