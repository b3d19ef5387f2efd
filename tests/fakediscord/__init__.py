"""A local fake Discord (REST + gateway + CDN on 127.0.0.1) for testing discord.py bots."""

from tests.fakediscord.payloads import FakeGuild, FakeUser
from tests.fakediscord.server import (
    FakeDiscord,
    FakeInteraction,
    GatewayRecord,
    Record,
    RecordedFile,
    Timeline,
    run_bot,
)

__all__ = [
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeUser",
    "GatewayRecord",
    "Record",
    "RecordedFile",
    "Timeline",
    "run_bot",
]
