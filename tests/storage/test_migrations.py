"""Migrations: empty → head, older database with data → head, newer database refused."""

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import storage.migrations as migrations
from storage import (
    HEAD_VERSION,
    JobStatus,
    SchemaVersionError,
    SubjectStatus,
    claim_next_job,
    create_db_engine,
    current_version,
    get_or_create_user,
    list_photos,
    session_scope,
    upgrade,
)


@pytest.fixture
def empty_engine(database_url: str) -> Any:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def test_upgrade_builds_an_empty_database_and_is_idempotent(empty_engine: Engine) -> None:
    assert current_version(empty_engine) == 0
    assert upgrade(empty_engine) == HEAD_VERSION
    assert upgrade(empty_engine) == HEAD_VERSION
    with empty_engine.connect() as connection:
        versions = connection.exec_driver_sql("SELECT version FROM schema_version").scalars()
        assert sorted(versions) == list(range(1, HEAD_VERSION + 1))


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        columns = {column["name"]: column for column in inspector.get_columns(table.name)}
        assert set(columns) == set(table.columns.keys()), table.name
        for column in table.columns:
            where = (table.name, column.name)
            assert columns[column.name]["nullable"] == column.nullable, where
            reflected = columns[column.name]["type"]
            assert _ddl_type(column.type, engine) == _ddl_type(reflected, engine), where
        indexes = {index["name"]: index["column_names"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            assert indexes.get(index.name) == [c.name for c in index.columns], index.name
        uniques = {tuple(unique["column_names"]) for unique in inspector.get_unique_constraints(table.name)}
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint):
                assert tuple(c.name for c in constraint.columns) in uniques
        foreign_keys = {
            (tuple(fk["constrained_columns"]), fk["referred_table"], fk["options"].get("ondelete"))
            for fk in inspector.get_foreign_keys(table.name)
        }
        for fk in table.foreign_keys:
            assert ((fk.parent.name,), fk.column.table.name, fk.ondelete) in foreign_keys


def test_upgrading_an_older_database_keeps_its_rows(empty_engine: Engine) -> None:
    assert upgrade(empty_engine, target=1) == 1
    created = "2025-06-01 10:00:00"
    with empty_engine.begin() as connection:
        run = connection.exec_driver_sql
        run(f"INSERT INTO \"user\" (id, created_at) VALUES (42, '{created}')")
        run(
            "INSERT INTO subject (id, owner_id, display_name, name_key, kind, status, "
            f"created_at, updated_at) VALUES ('s1', 42, 'Bo', 'bo', 'pet', 'queued', "
            f"'{created}', '{created}')"
        )
        run(
            "INSERT INTO photo (subject_id, sha256, size_bytes, width, height, mime, path, "
            f"created_at) VALUES ('s1', '{'a' * 64}', 100, 64, 48, 'image/png', "
            f"'photos/aa/aa/x.png', '{created}')"
        )
        run(
            "INSERT INTO training_job (subject_id, owner_id, status, step, total_steps, "
            "progress, attempts, max_attempts, cancel_requested, created_at) VALUES "
            f"('s1', 42, 'queued', 0, 10, 0, 0, 3, false, '{created}')"
        )

    assert upgrade(empty_engine) == HEAD_VERSION

    with session_scope(empty_engine) as session:
        user = get_or_create_user(session, user_id=42, locale="fr")
        assert (user.locale, user.created_at.year) == ("fr", 2025)
        photos = list_photos(session, owner_id=42, subject_id="s1")
        assert [(p.sha256, p.width, p.height) for p in photos] == [("a" * 64, 64, 48)]
        job = claim_next_job(session, worker_id="w")
        assert job is not None and job.status == JobStatus.RUNNING
        assert job.subject_id == "s1"
    indexes = {index["name"] for index in sa.inspect(empty_engine).get_indexes("photo")}
    assert "ix_photo_sha256" in indexes


def test_a_database_newer_than_the_code_is_refused(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO schema_version (version, description, applied_at) "
            "VALUES (99, 'from the future', '2030-01-01 00:00:00')"
        )
    with pytest.raises(SchemaVersionError, match="version 99, newer than this code's"):
        upgrade(engine)


def test_a_failing_step_leaves_the_previous_version_intact(
    empty_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_step(connection: sa.Connection) -> None:
        connection.exec_driver_sql("CREATE TABLE half_done (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("UPDATE subject SET status = 'x' WHERE no_such_column = 1")

    broken = migrations.Migration(HEAD_VERSION + 1, "broken", broken_step)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken))
    with pytest.raises(sa.exc.DBAPIError):
        upgrade(empty_engine, target=HEAD_VERSION + 1)
    assert current_version(empty_engine) == HEAD_VERSION
    assert not sa.inspect(empty_engine).has_table("half_done")


def _upgrade_concurrently(engines: list[Engine]) -> list[BaseException]:
    """Run :func:`upgrade` on every engine at once, one thread each; the errors raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def run(engine: Engine) -> None:
        try:
            start.wait()
            upgrade(engine)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_concurrent_upgrades_apply_each_step_once(database_url: str) -> None:
    engines = [create_db_engine(database_url) for _ in range(4)]
    errors = _upgrade_concurrently(engines)
    try:
        assert not errors
        with engines[0].connect() as connection:
            rows = connection.exec_driver_sql("SELECT version FROM schema_version").scalars()
            assert sorted(rows) == list(range(1, HEAD_VERSION + 1))
    finally:
        for engine in engines:
            engine.dispose()


def test_first_connections_racing_on_a_new_sqlite_file_wait_instead_of_failing(tmp_path: Path) -> None:
    # Regression: while one connection switches a new file to WAL or migrates it, SQLite may
    # answer another's "PRAGMA journal_mode = WAL" with "database is locked" at once, without
    # calling the busy handler (about 1 in 8 runs of four concurrent upgrades failed so).
    for trial in range(30):
        engines = [create_db_engine(f"sqlite:///{tmp_path / f'new{trial}.sqlite'}") for _ in range(4)]
        try:
            assert _upgrade_concurrently(engines) == []
        finally:
            for engine in engines:
                engine.dispose()


def test_subject_status_values_are_stored_as_plain_strings(engine: Engine) -> None:
    # Enum changes must never need a schema change: the column is a plain VARCHAR.
    columns = {c["name"]: c for c in sa.inspect(engine).get_columns("subject")}
    assert isinstance(columns["status"]["type"], sa.String)
    assert SubjectStatus("ready") is SubjectStatus.READY


def _ddl_type(type_: Any, engine: Engine) -> str:
    compiled = str(type_.compile(dialect=engine.dialect))
    return "DOUBLE PRECISION" if compiled == "FLOAT" else compiled  # PostgreSQL's alias
