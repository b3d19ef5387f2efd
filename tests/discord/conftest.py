"""The unmodified bot, driven through real discord.py against the local fake Discord, with an
in-memory double of the services (the real services get their own end-to-end test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.discord.client import YollavaBot
from tests.discord.fake_services import FakeServices, photo_bytes
from tests.fakediscord import FakeDiscord, FakeInteraction, FakeUser, run_bot
from tests.fakediscord.fixtures import fake_discord

__all__ = ["Harness", "fake_discord"]

RED: tuple[int, int, int] = (220, 40, 40)
BLUE: tuple[int, int, int] = (40, 60, 220)
GREEN: tuple[int, int, int] = (40, 200, 60)
EDIT_INTERVAL_SECONDS = 0.2


@dataclass
class Harness:
    fake: FakeDiscord
    bot: YollavaBot
    services: FakeServices

    def photo(self, name: str, colour: tuple[int, int, int] = RED, **kwargs: Any) -> dict[str, Any]:
        return self.fake.add_attachment(name, photo_bytes(colour), "image/png", width=48, height=48, **kwargs)

    async def teach(
        self, name: str = "Bo", photos: int = 5, *, user: FakeUser | None = None, **options: Any
    ) -> FakeInteraction:
        values: dict[str, Any] = {"name": name}
        for number in range(1, photos + 1):
            values[f"photo{number}"] = self.photo(f"{name.lower()}{number}.png")
        values.update(options)
        return await self.fake.send_slash_command("teach", values, user=user)


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture
async def harness(fake_discord: FakeDiscord, services: FakeServices) -> AsyncIterator[Harness]:
    bot = YollavaBot(
        services,
        operator_ids={int(fake_discord.owner.id)},
        edit_interval_seconds=EDIT_INTERVAL_SECONDS,
    )
    async with run_bot(bot, fake_discord):
        yield Harness(fake_discord, bot, services)
