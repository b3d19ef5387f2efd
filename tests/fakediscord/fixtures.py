"""pytest fixtures; import them into a conftest.py:
``from tests.fakediscord.fixtures import fake_discord  # noqa: F401``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakediscord.server import FakeDiscord


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started FakeDiscord with discord.py patched to use it (restored afterwards)."""
    async with FakeDiscord() as fake:
        yield fake
