"""Fixtures: a migrated SQLite file, a file store and Services on a fake model."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import Engine

from bot.services.api import ServiceLimits, Services
from storage import FileStore
from tests.services.support import FakeModel


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def limits() -> ServiceLimits:
    return ServiceLimits()


@pytest.fixture
async def services(
    db: Engine, files: FileStore, model: FakeModel, limits: ServiceLimits
) -> AsyncIterator[Services]:
    services = Services(db=db, files=files, model=model, limits=limits)
    await services.events.start()
    yield services
    await services.close()
