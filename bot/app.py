"""The composition root of the bot process: settings → database, files, worker → services → bot.

``yollava run`` and ``python -m bot`` call :func:`run`. Nothing happens at import time; every
collaborator is built here and passed into constructors. Without ``YOLLAVA_WORKER_URL`` the bot
starts its own worker process (single box); with it, it talks to a worker that is already
listening (e.g. the ``worker`` service of ``deploy/compose.yaml``).
"""

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import discord

from bot.discord.client import YollavaBot
from bot.services.api import PhotoLimits, Services
from bot.services.model_client import FixedEndpoint, HttpModelClient
from bot.settings import BotSettings, SettingsError, load_bot_settings
from bot.worker.supervisor import LocalWorker, LocalWorkerConfig
from storage import FileStore, create_db_engine, upgrade

# The toy world brings its own negative bank (named here to keep torch out of the bot process).
TOYWORLD_MODEL = "toyworld"

log = logging.getLogger("bot")

EXIT_CONFIG = 2
EXIT_LOGIN = 3
NO_NEGATIVE_BANK = (
    "No negative bank is configured (YOLLAVA_NEGATIVES): without hard negatives, recognition is "
    "much weaker (the paper measured 0.914 → 0.754). Point it at a folder of generic photos."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yollava run",
        description="Run the Discord bot (and, unless YOLLAVA_WORKER_URL is set, a local model worker). "
        "Configuration comes from the environment and the env file; see deploy/.env.example.",
    )
    add_run_arguments(parser)
    return parser


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``yollava run`` (for the CLI to reuse on its subcommand)."""
    parser.add_argument(
        "--env-file", type=Path, default=Path(".env"), help="read settings from this file too (default .env)"
    )


def negative_bank_warning(settings: BotSettings) -> str | None:
    """None when hard negatives can be mined: a configured bank, or the toy world's own."""
    if settings.negatives is not None or settings.model == TOYWORLD_MODEL:
        return None
    return NO_NEGATIVE_BANK


def check_paths(settings: BotSettings) -> None:
    """Refuse settings that name missing folders, before anything starts."""
    if settings.negatives is not None and not settings.negatives.is_dir():
        raise SettingsError(f"YOLLAVA_NEGATIVES names {settings.negatives}, which is not a folder")


def build_services(settings: BotSettings) -> Services:
    """The services over the database and data directory named by ``settings`` (blocking:
    creates the data directory and upgrades the schema; call before the event loop runs)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database_url = settings.resolved_database_url
    db = create_db_engine(database_url)
    upgrade(db)
    supervisor: LocalWorker | None = None
    if settings.worker_url:
        token = settings.worker_token.get_secret_value() if settings.worker_token else None
        model = HttpModelClient(FixedEndpoint(settings.worker_url, token))
    else:
        supervisor = LocalWorker(
            LocalWorkerConfig(
                database_url=database_url,
                data_dir=settings.data_dir.resolve(),
                model=settings.model,
                device=settings.device,
                dtype=settings.dtype,
                negatives=settings.negatives.resolve() if settings.negatives else None,
            )
        )
        model = HttpModelClient(supervisor)
    return Services(
        db=db,
        files=FileStore(settings.data_dir),
        model=model,
        photo_limits=PhotoLimits(),
        supervisor=supervisor,
        negative_bank_warning=negative_bank_warning(settings),
    )


def build_bot(settings: BotSettings, services: Services) -> YollavaBot:
    return YollavaBot(
        services,
        dev_guild_id=settings.dev_guild_id,
        operator_ids=settings.operator_ids,
        photo_max_bytes=services.photo_limits.max_bytes,
        edit_interval_seconds=settings.progress_edit_seconds,
    )


async def serve(settings: BotSettings, services: Services, bot: YollavaBot) -> int:
    """Run ``bot`` until it stops or SIGTERM/SIGINT arrives; always closes both cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)
    await services.start()
    running = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()), name="discord")
    stopping = asyncio.create_task(stop.wait(), name="stop-signal")
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()  # raises what stopped the bot
            return 0
        log.info("stopping")
        return 0
    except discord.LoginFailure:
        log.error("Discord refused the token in DISCORD_TOKEN; reset it in the developer portal")
        return EXIT_LOGIN
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signum)
        stopping.cancel()
        await bot.close()
        if not running.done():
            running.cancel()
        with contextlib.suppress(asyncio.CancelledError, discord.DiscordException):
            await running
        await services.close()


def run(argv: Sequence[str] | None = None) -> int:
    """``yollava run``: read the settings, build everything, run until stopped. Returns the
    exit status (2 for a configuration problem, printed as one message per variable; 3 when
    Discord refuses the token)."""
    return run_from_args(build_parser().parse_args(argv))


def run_from_args(args: argparse.Namespace) -> int:
    """:func:`run` for options parsed by a parser that :func:`add_run_arguments` set up (the
    ``yollava`` CLI's ``run`` subcommand)."""
    env_file = args.env_file if args.env_file.is_file() else None
    try:
        settings = load_bot_settings(env_file)
        check_paths(settings)
    except SettingsError as error:
        print(f"yollava run: {error}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=settings.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    services = build_services(settings)
    bot = build_bot(settings, services)
    return asyncio.run(serve(settings, services, bot))
