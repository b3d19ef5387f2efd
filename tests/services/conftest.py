"""Fixtures: a migrated SQLite file, a file store and Services on a fake model."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.services.api import ServiceLimits, Services
from storage import FileStore, create_db_engine, upgrade
from tests.services.support import FakeModel


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db' / 'yollava.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def files(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "data")


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
