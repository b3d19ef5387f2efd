"""Fixtures: migrated databases on real SQLite files, and on PostgreSQL when it is up.

PostgreSQL tests get a fresh schema each (dropped afterwards) in the ``test`` database on
127.0.0.1:5432, or in ``$YOLLAVA_TEST_POSTGRES_URL``; they skip, saying why, if it is unreachable.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage import create_db_engine, upgrade

POSTGRES_CANDIDATE_URLS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


def _reachable_postgres_url() -> str | None:
    candidates = [os.environ.get("YOLLAVA_TEST_POSTGRES_URL"), *POSTGRES_CANDIDATE_URLS]
    for url in filter(None, candidates):
        try:
            with psycopg.connect(url, connect_timeout=2):
                return url
        except psycopg.OperationalError:
            continue
    return None


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = _reachable_postgres_url()
    if url is None:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (database 'test')")
    return url


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A SQLAlchemy URL whose connections live in a fresh, private schema."""
    schema = f"yollava_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    base = sa.make_url(postgres_admin_url).set(drivername="postgresql+psycopg")
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'yollava.sqlite'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database, on each backend."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A database on each backend, migrated to head."""
    engine = create_db_engine(database_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_db_engine(sqlite_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
