"""Registry reads kept in memory by each process, and never stale (issue 12).

Every event batch needs its key's token row and its experiments' ids, states and variants; read
afresh they were two of the ~13 ms a request cost. A time to live would let a revoked key or a
stopped experiment keep working for that long in every worker, so the reads are kept under the
registry's version instead: migration 0014's triggers move ``registry_version.n`` on every
committed change to experiments, variants, surveys and api_tokens, whoever makes it. A request
reads that one row (a primary-key lookup) and takes what was cached under the same number; any
other number empties the cache first.

Why that is exact: the version is read before the rows it guards, in the same or a later
snapshot, so what is cached under a number is never older than the number says.

Every public request reads the version, so on PostgreSQL :func:`current_version` keeps one
autocommit connection per process for it: through the pool each read paid a pre-ping round trip,
a checkout and check-in and a switch to autocommit and back around the query (0.24-0.26 ms of CPU
a read, against 0.06-0.08 ms now; tests/benchmarks/README.md, 2026-12-08).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from abtest.store.per_engine import per_engine

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

VERSION_SQL = sa.text("SELECT n FROM registry_version WHERE id = 1")
MAX_ENTRIES = 4096  # keys nobody has (any client may send any) must not grow a worker without bound


def registry_version(conn: sa.Connection) -> int:
    """The registry's change counter (see the module docstring)."""
    return int(conn.execute(VERSION_SQL).scalar_one())


def current_version(engine: sa.Engine) -> int:
    """The registry's change counter as of now, read outside any transaction of the caller's.

    PostgreSQL: on this process's own autocommit connection (:class:`_VersionReader`); whatever
    goes wrong there (the server restarted, the connection was cut) is retried once through the
    pool, whose errors are SQLAlchemy's like everywhere else. Elsewhere through the pool.
    """
    if engine.dialect.name == "postgresql":
        version = per_engine(engine, "freshness.reader", lambda: _VersionReader(engine)).read()
        if version is not None:
            return version
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return registry_version(conn)


class _VersionReader:
    """One DBAPI connection, detached from the engine's pool, in autocommit, used only for the
    version read (a primary-key lookup: threads take turns on it, and a turn is ~50 µs)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = weakref.ref(engine)  # per_engine keys its objects weakly by the engine
        self._lock = threading.Lock()
        self._connection: Any = None
        self._pid = 0
        sa.event.listen(engine, "engine_disposed", lambda _engine: self.close())

    def read(self) -> int | None:
        """The version, or None when it could not be read here (the caller uses the pool)."""
        with self._lock:
            try:
                if self._pid != os.getpid():  # none yet, or inherited by a fork: never used here
                    self._drop()
                if self._connection is None:
                    self._connection, self._pid = self._connect(), os.getpid()
                return int(self._connection.execute(_VERSION_TEXT).fetchone()[0])
            except Exception:  # noqa: BLE001 - any failure: drop the connection, let the pool path answer
                self._drop()
                return None

    def _connect(self) -> Any:
        engine = self._engine()
        if engine is None:
            raise RuntimeError("the engine is gone")
        pooled = engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # ours from now on: the pool opens another in its place when it needs one
        connection.autocommit = True
        return connection

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        """Let the connection go (lock held): closed if this process opened it; a parent's, after a
        fork, is kept referenced and never closed (closing or collecting it would end the parent's
        session)."""
        if self._connection is not None:
            if self._pid == os.getpid():
                try:
                    self._connection.close()
                except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone either way
                    pass
            else:
                _INHERITED.append(self._connection)
        self._connection = None


_VERSION_TEXT = str(VERSION_SQL)
_INHERITED: list[Any] = []


class VersionedCache(Generic[K, V]):
    """Values read from the registry, kept while the registry's version stays the same.

    Thread-safe (gunicorn's threads share it). Misses are loaded together, by one call of
    ``load``, outside the lock: two threads may load the same key at once, which costs a query
    and is harmless.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._values: dict[K, V] = {}
        self._max = max_entries

    def get_many(self, version: int, keys: Iterable[K], load: Callable[[set[K]], Mapping[K, V]]) -> dict[K, V]:
        """The values of ``keys`` under ``version``; ``load`` is given the missing keys and must
        answer for every one of them (a key with nothing behind it maps to a "none" value, so that
        a miss is cached too)."""
        wanted = set(keys)
        with self._lock:
            if version != self._version:
                self._version, self._values = version, {}
            found = {key: self._values[key] for key in wanted if key in self._values}
        missing = wanted - found.keys()
        if missing:
            loaded = load(missing)
            found.update((key, loaded[key]) for key in missing)
            with self._lock:
                if version == self._version:  # a newer version emptied the cache meanwhile: drop these
                    if len(self._values) + len(missing) > self._max:
                        self._values = {}
                    self._values.update((key, loaded[key]) for key in missing)
        return found

    def get(self, version: int, key: K, load: Callable[[], V]) -> V:
        """One value (see :meth:`get_many`)."""
        return self.get_many(version, (key,), lambda _missing: {key: load()})[key]


def cache_for(engine: sa.Engine, name: str) -> VersionedCache[Any, Any]:
    """The process's cache ``name`` for the database ``engine`` talks to (each database has its
    own counter, so caches are never shared between engines)."""
    return per_engine(engine, f"cache:{name}", VersionedCache)
