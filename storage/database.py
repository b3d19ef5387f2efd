"""Engine and session factories. Nothing here runs at import; the composition root calls these.

SQLite is the embedded default: every connection gets WAL (readers never block the writer),
``foreign_keys=ON`` (so ``ON DELETE CASCADE`` works), ``busy_timeout`` (a writer waits for the
lock instead of failing at once) and ``synchronous=NORMAL`` (safe with WAL, far fewer fsyncs).
PostgreSQL (``postgresql+psycopg://…``) is for several workers on several machines.
"""

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """Build the engine for ``url``; for a SQLite file, create its parent directory.

    Example: ``create_db_engine("sqlite:///data/yollava.sqlite")`` or
    ``create_db_engine("postgresql+psycopg://bot@db/yollava")``. Schema creation is
    ``storage.migrations.upgrade``'s job, not this function's.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, echo=echo, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, echo=echo, pool_pre_ping=True)
    return sa.create_engine(parsed, echo=echo)


def _configure_sqlite_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the database file to WAL, waiting out other connections doing the same.

    SQLite answers "database is locked" at once, without calling the busy handler, when several
    connections open a new database together (seen in 2 of 15 runs of four concurrent upgrades of
    a new file); so retry with backoff for up to the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def session_factory(engine: Engine) -> Callable[[], Session]:
    """A factory of SQLModel sessions on ``engine``.

    ``expire_on_commit=False``: rows returned by a finished unit of work stay readable (the bot
    renders them after the session closed); reload them to see later changes.
    """
    return sessionmaker(engine, class_=Session, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits when the block ends normally, rolls back if it raises.

    Example::

        with session_scope(engine) as session:
            subject = create_subject(session, owner_id=1, display_name="Bo", kind="pet")
    """
    with session_factory(engine)() as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()
