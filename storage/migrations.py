"""Versioned schema migrations, without Alembic.

Why not Alembic: the schema is five tables, the steps are few and hand-written, and the bot must
upgrade itself on start-up on SQLite and PostgreSQL alike with no extra tool, config file or
``env.py``. A migration here is an ordered Python function run in **one transaction** (SQLite DDL
is transactional once the transaction is begun explicitly; PostgreSQL's always is), recorded as a
row in ``schema_version``. Concurrent upgraders are serialised (``BEGIN IMMEDIATE`` on SQLite, an
advisory transaction lock on PostgreSQL), and each re-reads the version under the lock, so two
processes starting together apply every step exactly once.

Each step describes the schema *as it was* at that version with its own frozen table objects,
never ``storage.models``: the models move with the head, a step must not. A test compares the
head schema that these steps build with the models.
"""

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from storage.errors import SchemaVersionError
from storage.sqltypes import UTCDateTime, utc_now

# An arbitrary constant: the key of the PostgreSQL advisory lock taken while migrating.
_PG_ADVISORY_LOCK_KEY = 0x59_6F_4C_4C_61_56_41


@dataclass(frozen=True)
class Migration:
    """One schema step: ``apply`` runs inside the step's transaction on ``connection``."""

    version: int
    description: str
    apply: Callable[[Connection], None]


_schema_version_metadata = sa.MetaData()
_schema_version = sa.Table(
    "schema_version",
    _schema_version_metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)


def _v1_tables() -> sa.MetaData:
    """The schema of version 1, frozen. Never edit: add a step instead."""
    metadata = sa.MetaData()
    sa.Table(
        "user",
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    sa.Table(
        "subject",
        metadata,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "owner_id",
            sa.BigInteger,
            sa.ForeignKey("user.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("name_key", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("facts", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("artifact_sha256", sa.String(64)),
        sa.Column("artifact_path", sa.String(255)),
        sa.Column("metrics_json", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("owner_id", "name_key", name="uq_subject_owner_name"),
    )
    sa.Table(
        "photo",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "subject_id",
            sa.String(32),
            sa.ForeignKey("subject.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("mime", sa.String(32), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("subject_id", "sha256", name="uq_photo_subject_sha256"),
    )
    sa.Table(
        "training_job",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "subject_id",
            sa.String(32),
            sa.ForeignKey("subject.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("owner_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("total_steps", sa.Integer, nullable=False),
        sa.Column("loss", sa.Float),
        sa.Column("eta_seconds", sa.Float),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("worker_id", sa.String(64)),
        sa.Column("heartbeat_at", UTCDateTime),
        sa.Column("error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Index("ix_training_job_status_id", "status", "id"),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "job_event",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "job_id",
            sa.Integer,
            sa.ForeignKey("training_job.id", ondelete="CASCADE"),
            index=True,
        ),
        sa.Column("subject_id", sa.String(32)),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload_json", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    return metadata


def _v1_create_tables(connection: Connection) -> None:
    _v1_tables().create_all(connection)


def _v2_photo_hash_index_and_user_locale(connection: Connection) -> None:
    # The hash index makes "is this stored file still referenced?" cheap when forgetting a
    # subject; the locale lets replies follow the user's Discord language.
    connection.execute(sa.text("CREATE INDEX ix_photo_sha256 ON photo (sha256)"))
    connection.execute(sa.text('ALTER TABLE "user" ADD COLUMN locale VARCHAR(16)'))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial tables", _v1_create_tables),
    Migration(2, "index photo.sha256; add user.locale", _v2_photo_hash_index_and_user_locale),
)
HEAD_VERSION = MIGRATIONS[-1].version


def current_version(engine: Engine) -> int:
    """The version the database is at: 0 for an empty database (no ``schema_version`` table)."""
    with engine.connect() as connection:
        return _read_version(connection)


def upgrade(engine: Engine, *, target: int = HEAD_VERSION) -> int:
    """Bring the database from whatever version it is at up to ``target`` (default: head).

    Idempotent and safe to run from several processes at once. Each step runs in its own
    transaction together with its ``schema_version`` row, so a failed step leaves the database at
    the previous version. Returns the version reached.

    Raises:
        SchemaVersionError: the database is at a version newer than this code knows.
        ValueError: ``target`` is not a known version.
    """
    if target not in {0, *(m.version for m in MIGRATIONS)}:
        raise ValueError(f"unknown schema version {target}; this code knows 1..{HEAD_VERSION}")
    steps = {m.version: m for m in MIGRATIONS}
    while True:
        with engine.connect() as connection:
            _begin_locked(connection)
            _schema_version_metadata.create_all(connection)
            version = _read_version(connection)
            _refuse_newer(version)
            if version >= target:
                connection.rollback()
                return version
            step = steps[version + 1]
            step.apply(connection)
            connection.execute(
                _schema_version.insert().values(
                    version=step.version, description=step.description, applied_at=utc_now()
                )
            )
            connection.commit()


def _begin_locked(connection: Connection) -> None:
    """Open the step's transaction holding the database-wide migration lock."""
    if connection.dialect.name == "sqlite":
        # pysqlite would not BEGIN before DDL on its own, leaving it auto-committed; IMMEDIATE
        # takes the write lock now, so a concurrent upgrader waits instead of racing.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_ADVISORY_LOCK_KEY})


def _read_version(connection: Connection) -> int:
    if not sa.inspect(connection).has_table("schema_version"):
        return 0
    version = connection.execute(sa.select(sa.func.max(_schema_version.c.version))).scalar()
    return int(version or 0)


def _refuse_newer(version: int) -> None:
    if version > HEAD_VERSION:
        raise SchemaVersionError(
            f"the database schema is at version {version}, newer than this code's "
            f"{HEAD_VERSION}: it was upgraded by a newer yollava. Run that version, "
            "or restore a backup taken before the upgrade."
        )
