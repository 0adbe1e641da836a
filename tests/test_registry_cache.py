"""The public routes' registry reads are cached per process and never stale (abtest.store.freshness):
a second batch with the same key reads only the version row; a key revoked or an experiment
stopped by another process (here: another engine on the same database) takes effect on the very
next request. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from abtest import pipeline
from abtest.accounts import create_token, revoke_token
from abtest.db import make_engine
from abtest.store.freshness import VersionedCache, current_version, registry_version


def _batch(*units: str) -> dict:
    return {"events": [{"id": str(uuid.uuid4()), "type": "exposure", "experiment": "checkout-button",
                        "variant": "control", "unit": unit, "ts": datetime.now(UTC).isoformat()} for unit in units]}


@pytest.fixture
def other_process(database_url: str) -> Iterator[sa.Engine]:
    """Another engine on the same database: its writes reach the app's engine only through the database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def public_key(session: Session, seeded_experiment) -> str:  # type: ignore[no-untyped-def]
    raw = create_token(session, "public", "shop").secret
    session.commit()
    return raw


@contextmanager
def _statements(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL ``engine`` runs inside the block (the listener goes with it: the engine is the session's)."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_a_second_batch_reads_the_version_row_once_and_no_registry_table(client, engine, public_key):
    assert client.post(f"/api/v1/events?key={public_key}", json=_batch("a")).status_code == 202
    with _statements(engine) as seen:
        assert client.post(f"/api/v1/events?key={public_key}", json=_batch("b", "c")).status_code == 202
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    if engine.dialect.name == "postgresql":  # the version is read on the process's own connection (below)
        assert reads == [], reads
    else:
        assert len(reads) == 1 and "registry_version" in reads[0], reads
    assert not any("api_tokens" in s or "variants" in s for s in seen)


def test_a_key_revoked_by_another_process_is_refused_on_the_next_request(client, public_key, other_process):
    assert client.post(f"/api/v1/events?key={public_key}", json=_batch("a")).status_code == 202
    with Session(other_process) as elsewhere:
        revoke_token(elsewhere, public_key[:10])
        elsewhere.commit()
    answer = client.post(f"/api/v1/events?key={public_key}", json=_batch("b"))
    assert answer.status_code == 401
    assert answer.get_json()["error"]["field"] == "Authorization"


def test_an_experiment_stopped_by_another_process_takes_no_more_events(client, public_key, other_process):
    assert client.post(f"/api/v1/events?key={public_key}", json=_batch("a")).json["accepted"] == 1
    with Session(other_process) as elsewhere:
        pipeline.transition(elsewhere, "checkout-button", "stopped")
        elsewhere.commit()
    body = client.post(f"/api/v1/events?key={public_key}", json=_batch("b")).get_json()
    assert body["accepted"] == 0
    assert body["rejected"][0]["error"]["field"] == "experiment"


@pytest.mark.parametrize("change", [
    "INSERT INTO api_tokens (name, kind, prefix, token_hash, created_at) VALUES ('x', 'public', 'pk_x', 'h', CURRENT_TIMESTAMP)",
    "UPDATE experiments SET name = name || '!'",
    "UPDATE variants SET weight = weight",
    "DELETE FROM api_tokens",
])
def test_every_committed_registry_change_moves_the_version(engine, public_key, change):
    with engine.connect() as conn:
        before = registry_version(conn)
    with engine.begin() as conn:
        conn.exec_driver_sql(change)
    with engine.connect() as conn:
        assert registry_version(conn) > before


def test_an_uncommitted_change_leaves_the_version_as_it_was(engine, public_key, other_process):
    with engine.connect() as conn:
        before = registry_version(conn)
    with other_process.connect() as writer:
        writer.exec_driver_sql("UPDATE experiments SET name = name || '!'")
        if engine.dialect.name == "postgresql":  # SQLite's writer holds the file lock: nobody else reads it now
            with engine.connect() as conn:
                assert registry_version(conn) == before
        writer.rollback()
    with engine.connect() as conn:
        assert registry_version(conn) == before


# ---- the cache itself (no database) -----------------------------------------------------------

def test_the_cache_loads_a_key_once_per_version_and_caches_misses():
    cache: VersionedCache[str, int | None] = VersionedCache()
    loads: list[set[str]] = []

    def load(keys: set[str]) -> dict[str, int | None]:
        loads.append(keys)
        return {key: (len(key) if key != "nobody" else None) for key in keys}

    assert cache.get_many(1, ["ab", "nobody"], load) == {"ab": 2, "nobody": None}
    assert cache.get_many(1, ["ab", "nobody", "abc"], load) == {"ab": 2, "nobody": None, "abc": 3}
    assert loads == [{"ab", "nobody"}, {"abc"}]
    cache.get_many(2, ["ab"], load)
    assert loads[-1] == {"ab"}


def test_a_load_that_raced_a_newer_version_is_not_kept():
    cache: VersionedCache[str, str] = VersionedCache()

    def slow_old_load(keys: set[str]) -> dict[str, str]:
        cache.get_many(8, ["k"], lambda _keys: {"k": "new"})  # another thread saw version 8 meanwhile
        return {"k": "old"}

    assert cache.get_many(7, ["k"], slow_old_load) == {"k": "old"}
    assert cache.get_many(8, ["k"], lambda _keys: pytest.fail("version 8 is cached")) == {"k": "new"}


def test_the_cache_stays_bounded_by_the_keys_clients_invent():
    cache: VersionedCache[int, None] = VersionedCache(max_entries=100)
    for start in range(0, 1000, 10):
        cache.get_many(1, range(start, start + 10), lambda keys: dict.fromkeys(keys))
    assert len(cache._values) <= 100


def test_threads_share_the_cache_safely():
    cache: VersionedCache[int, int] = VersionedCache()
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for step in range(200):
                version = (step + offset) % 7  # threads disagree on the newest version all the time
                got = cache.get_many(version, range(20), lambda keys, v=version: {k: k * v for k in keys})
                assert got == {k: k * version for k in range(20)}
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# ---- the per-unit lookup of the ingest path ---------------------------------------------------

@pytest.mark.postgres
def test_first_exposures_look_each_unit_up_in_the_index_even_without_statistics(postgres_engine):
    """Written as ``unit IN (…)``, PostgreSQL filtered the units instead while the table had no
    statistics yet (26 ms a batch in the ingestion benchmark); the per-unit form cannot be planned so."""
    from abtest.store.events import _FIRST_EXPOSURES_PG

    with postgres_engine.connect() as conn:
        compiled = _FIRST_EXPOSURES_PG.compile(dialect=conn.dialect)
        sql = str(compiled) % {"experiment_id": 1, "units": "ARRAY['a','b']"}
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
    assert "Index Cond" in plan and "u.unit" in plan.split("Index Cond", 1)[1], plan


# ---- PostgreSQL: the version read on the process's own connection --------------------------------

def _backend(engine: sa.Engine) -> int | None:
    """The server process of the engine's version reader (None: it holds no connection)."""
    from abtest.store.freshness import _VersionReader
    from abtest.store.per_engine import per_engine

    connection = per_engine(engine, "freshness.reader", lambda: _VersionReader(engine))._connection
    return None if connection is None else connection.info.backend_pid


def _alive(engine: sa.Engine, pid: int) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar())


@pytest.mark.postgres
def test_the_version_reader_sees_every_commit_and_survives_a_cut_connection(postgres_engine, postgres_url):
    engine = make_engine(postgres_url)
    try:
        before = current_version(engine)
        reader = _backend(engine)
        assert reader is not None and current_version(engine) == before and _backend(engine) == reader  # kept
        with Session(postgres_engine) as elsewhere:  # a change committed by another process
            create_token(elsewhere, "public", "another shop")
            elsewhere.commit()
        assert current_version(engine) > before
        with postgres_engine.connect() as conn:  # the server ends the reader's session
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": reader})
        until = time.monotonic() + 5
        while _alive(postgres_engine, reader) and time.monotonic() < until:
            time.sleep(0.02)
        now = registry_version_of(postgres_engine)
        assert current_version(engine) == now  # answered through the pool
        assert current_version(engine) == now and _backend(engine) not in (None, reader)  # connected anew
        replaced = _backend(engine)
        engine.dispose()  # closes it: no session left behind (a DROP DATABASE would wait for it)
        assert _backend(engine) is None
        assert not _alive(postgres_engine, replaced)
    finally:
        engine.dispose()


def registry_version_of(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return registry_version(conn)
