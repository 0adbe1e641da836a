"""Engine, sessions and schema migrations: the only module that knows the database URL's shape."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from abtest.schema import MIGRATIONS
SQLITE_BUSY_TIMEOUT_MS = 5000
# The WAL is truncated back to this after a checkpoint, so one burst does not keep its size on disk.
SQLITE_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
# SQLSTATEs of lock contention on PostgreSQL: deadlock, serialization failure, lock timeout.
_PG_CONTENTION = {"40P01", "40001", "55P03"}


def _ln(value: float | None) -> float | None:
    return math.log(value) if value is not None and value > 0 else None


def make_engine(url: str) -> sa.Engine:
    """An engine tuned per backend: SQLite in WAL mode with a busy timeout, PostgreSQL pre-pinged."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if not memory:
            _create_private(sa.engine.make_url(url).database)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            poolclass=StaticPool if memory else None,
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # FULL: every commit reaches the disk before it returns, so an accepted batch (202)
                # survives an OS crash or power loss; NORMAL in WAL mode may lose the last ones.
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute(f"PRAGMA journal_size_limit={SQLITE_JOURNAL_SIZE_LIMIT}")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # PostgreSQL has ln(); SQLite has it only in some builds, so the aggregation queries
            # (log task times) get the same function everywhere.
            dbapi_conn.create_function("ln", 1, _ln, deterministic=True)

        return engine
    # UTC sessions, so day boundaries in aggregation queries are UTC days on every server.
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"})


def _create_private(path: str | None) -> None:
    """Create a new SQLite database file readable by its owner only (0600, whatever the umask);
    SQLite gives its -wal and -shm files the database file's mode. An existing file is left as is."""
    if not path or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # a umask only removes bits
    except (FileExistsError, FileNotFoundError):  # kept as it is; a missing folder SQLite reports itself
        return


def is_busy(exc: BaseException) -> bool:
    """Whether a database error is lock contention (retry soon) rather than the database being
    unreachable or broken: SQLite's "database is locked" after its busy timeout, or PostgreSQL's
    deadlock, serialization and lock-timeout errors."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) in _PG_CONTENTION:
        return True
    return type(orig).__module__.startswith("sqlite3") and "database is locked" in str(orig)


def dialect_insert(conn: sa.Connection, table: sa.Table) -> sa.dialects.postgresql.Insert:
    """``INSERT`` with the dialect's ``ON CONFLICT`` clauses (PostgreSQL's and SQLite's share them)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)  # type: ignore[return-value]


@contextmanager
def snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A read-only connection whose statements all see one snapshot of the database.

    A report reads several aggregates; read one by one, a refresh committing in between could
    make them disagree (more conversions than units). PostgreSQL: REPEATABLE READ; SQLite: one
    explicit read transaction (without it every SELECT sees the newest data).
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True) as conn:
            yield conn
            conn.rollback()
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


@contextmanager
def session_scope(engine: sa.Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _alembic_config(engine: sa.Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Apply pending migrations (the schema's only source on every database)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def pending_migrations(engine: sa.Engine) -> bool:
    """True when the database is behind the newest migration (read without alembic: see
    :mod:`abtest.schema`)."""
    from abtest import schema

    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return True
        stored = {row[0] for row in conn.exec_driver_sql(schema.STORED_SQL)}
    return not schema.is_current(stored)
