"""Engine set-up: SQLite pragmas on every connection, cascades, UTC times, unit of work."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from storage import (
    JobEvent,
    Photo,
    Subject,
    TrainingJob,
    User,
    add_photo,
    append_event,
    create_db_engine,
    enqueue_job,
    get_or_create_user,
    session_scope,
)
from tests.storage.helpers import T0, make_subject


def test_sqlite_file_gets_its_folder_and_safe_pragmas_on_every_connection(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "folder" / "bot.sqlite"
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        connections = [engine.connect(), engine.connect()]  # two distinct pooled connections
        for connection in connections:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 30_000
            assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
        for connection in connections:
            connection.close()
        assert database.is_file()
    finally:
        engine.dispose()


def test_deleting_a_user_cascades_to_everything_they_own(engine: Engine) -> None:
    subject = make_subject(engine, owner_id=7)
    with session_scope(engine) as session:
        add_photo(
            session,
            owner_id=7,
            subject_id=subject.id,
            sha256="a" * 64,
            size_bytes=10,
            width=64,
            height=64,
            mime="image/png",
            path="photos/aa/aa/x.png",
        )
        job = enqueue_job(session, owner_id=7, subject_id=subject.id)
        append_event(session, owner_id=7, kind="progress", payload={}, job_id=job.id)
    with session_scope(engine) as session:
        session.exec(sa.delete(User).where(sa.column("id") == 7))
    with session_scope(engine) as session:
        for table in (Subject, Photo, TrainingJob, JobEvent):
            assert session.exec(select(table)).all() == [], table.__name__


def test_times_come_back_timezone_aware_utc(engine: Engine) -> None:
    with session_scope(engine) as session:
        get_or_create_user(session, user_id=5, now=T0)
    with session_scope(engine) as session:
        user = session.get(User, 5)
        assert user is not None
        assert user.created_at == T0
        assert user.created_at.tzinfo is not None
        assert user.created_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), session_scope(engine) as s:
        get_or_create_user(s, user_id=5, now=datetime(2026, 1, 1))


def test_session_scope_commits_on_success_and_rolls_back_on_error(engine: Engine) -> None:
    with session_scope(engine) as session:
        get_or_create_user(session, user_id=1)
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        get_or_create_user(session, user_id=2)
        raise RuntimeError("boom")
    with session_scope(engine) as session:
        assert [user.id for user in session.exec(select(User)).all()] == [1]
