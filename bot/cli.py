"""The ``yollava`` command: research commands from the ML core plus the bot's ``run`` and ``worker``.

This is the composition root for command-line use: nothing heavy is imported until a command runs.
"""

from collections.abc import Sequence

from personalization import cli as research_cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = research_cli.build_parser()
    return research_cli.run(parser, argv)
