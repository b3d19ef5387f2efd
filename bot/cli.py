"""The ``yollava`` command: the ML core's research commands plus the bot's ``run`` and ``worker``.

This is the composition root for command-line use: nothing heavy (torch, discord) is imported
until a command runs.
"""

import argparse
from collections.abc import Sequence

from personalization import cli as research_cli


def _run_bot(args: argparse.Namespace) -> int:
    from bot import app

    return app.run_from_args(args)


def _run_worker(args: argparse.Namespace) -> int:
    from bot.worker import main as worker_main

    return worker_main.run(args)


def build_parser() -> argparse.ArgumentParser:
    from bot import app
    from bot.worker import main as worker_main

    parser = research_cli.build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    run = subparsers.add_parser(
        "run", help="run the Discord bot (with a local worker unless one is configured)"
    )
    app.add_run_arguments(run)
    run.set_defaults(handler=_run_bot)
    worker = subparsers.add_parser("worker", help="run a standalone model worker against a database")
    worker_main.add_worker_arguments(worker)
    worker.set_defaults(handler=_run_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return research_cli.run(build_parser(), argv)
