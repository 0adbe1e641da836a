"""Events in ClickHouse (chdb in-process; a server when ABTEST_TEST_CLICKHOUSE_URL is set):
reports equal the SQL ones number for number, ids count once however they are retried, a failed
insert is a 503, and history moves across with ``abtest events export``. On a cluster: the
statements ``abtest db upgrade`` runs (parsed by ClickHouse's own parser), erasure and TRUNCATE
addressing the shards' tables, and every read planned over a Distributed table in chdb."""

from __future__ import annotations

import json
import math
import os
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlmodel import Session

from abtest import pipeline
from abtest.clickhouse import sink
from abtest.clickhouse.client import FORMAT, EventsUnavailable, connect
from abtest.clickhouse.export import export
from abtest.clickhouse.schema import create_schema, table, truncate_statements
from abtest.errors import Unsupported
from abtest.ingest import ingest
from abtest.store.events import write_events
from abtest.store.target import attach, clickhouse_of, detach
from tests.conftest import _clear, clear_events_store
from tests.test_analysis import T0, create, event
from tests.test_rollup import RETENTION, random_batch

pytest.importorskip("chdb", reason="chdb (ClickHouse in-process) is not installed: pip install 'abtest[clickhouse]'")

METRICS = [{"name": "purchase", "type": "conversion", "primary": True},
           {"name": "revenue", "type": "mean", "event": "purchase"},
           {"name": "checkout-time", "type": "duration", "task": "checkout"}, RETENTION]


@pytest.fixture
def both(sqlite_engine, chdb_engine):  # type: ignore[no-untyped-def]
    """The same registry twice: events in SQLite, and events in chdb."""
    for engine in (sqlite_engine, chdb_engine):
        _clear(engine)
        clear_events_store(engine)
    yield sqlite_engine, chdb_engine
    for engine in (sqlite_engine, chdb_engine):
        _clear(engine)
        clear_events_store(engine)


def seeded(engine, batches, **changes):  # type: ignore[no-untyped-def]
    """Create the experiment and write every batch (each a function of the experiment id)."""
    with Session(engine, expire_on_commit=False) as session:
        experiment_id = create(session, metrics=METRICS, **changes)
    for batch in batches:
        with engine.begin() as conn:
            write_events(conn, batch(experiment_id))
    return experiment_id


def with_devices(rng: random.Random, rows: list[dict]) -> list[dict]:
    for row in rows:
        row["attributes"] = None
        if row["type"] == "exposure" and rng.random() < 0.9:
            row["attributes"] = {"device": rng.choice(["desktop", "mobile", "tablet"])}
    return rows


def same(a, b, path="report"):  # type: ignore[no-untyped-def]
    """Equal documents, floats to 1e-9 relative (sums may be added in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12) or (math.isnan(a) and math.isnan(b)), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def reads_the_same(sqlite_engine, url, expected, now):  # type: ignore[no-untyped-def]
    """The registry's report by device with its events read at ``url`` equals ``expected``;
    the registry is emptied afterwards."""
    attach(sqlite_engine, url)
    try:
        same(pipeline.analyze(sqlite_engine, "checkout-button", by="device", now=now).to_dict(), expected)
    finally:
        detach(sqlite_engine)
        _clear(sqlite_engine)


@pytest.mark.parametrize("cuped", [False, True])
def test_reports_from_chdb_equal_reports_from_sqlite_number_for_number(both, cuped):
    now = T0 + timedelta(days=9)
    batches = []
    for seed in range(4):  # late and earlier exposures, repeats, forcing, values, timings, in any order
        rows = with_devices(random.Random(seed), random_batch(random.Random(seed), 0, 400, 1500))
        batches.append(lambda eid, rows=rows: [{**r, "experiment_id": eid, "event_id": r["event_id"]} for r in rows])
    for engine in both:
        seeded(engine, batches, cuped=cuped, analysis="sequential")
    for by in (None, "device", "nobody-sent-this"):
        on_sqlite, on_chdb = (pipeline.analyze(e, "checkout-button", by=by, now=now).to_dict() for e in both)
        assert on_sqlite["metrics"][0]["variants"][0]["n"] > 30  # not a comparison of two empty reports
        same(on_chdb, on_sqlite)
    assert sorted(pipeline.attribute_names(both[1], pipeline.load(Session(both[1]), "checkout-button")[1])) == ["device"]


def test_the_same_batch_twice_and_a_retry_after_a_lost_acknowledgement_count_once(both, monkeypatch):
    sqlite_engine, chdb_engine = both
    rows = with_devices(random.Random(1), random_batch(random.Random(1), 0, 200, 800))
    batch = lambda eid: [{**r, "experiment_id": eid} for r in rows]  # noqa: E731
    seeded(sqlite_engine, [batch])
    experiment_id = seeded(chdb_engine, [batch])
    client = clickhouse_of(chdb_engine)
    assert client is not None
    with chdb_engine.begin() as conn:
        assert write_events(conn, batch(experiment_id)) == 0  # the same batch again: nothing new
    # Stored, but the acknowledgement is lost on the way back: the caller sees a failure, retries.
    insert = client.insert_json

    def lost_ack(*args):  # type: ignore[no-untyped-def]
        insert(*args)
        raise EventsUnavailable("connection reset", field=None)

    retry = [event(experiment_id, "conversion", f"u{i}", None, T0 + timedelta(days=1), event="purchase", value=5.0)
             for i in range(50)]
    monkeypatch.setattr(client, "insert_json", lost_ack)
    with pytest.raises(EventsUnavailable), chdb_engine.begin() as conn:
        write_events(conn, retry)
    monkeypatch.undo()
    with chdb_engine.begin() as conn:
        assert write_events(conn, retry) == 0
    # Two writers racing with the same ids both get past the lookup: FINAL still counts each once.
    client.insert_json(table(client), sink.COLUMNS, [sink.line(r) for r in batch(experiment_id)])
    with sqlite_engine.begin() as conn:
        write_events(conn, [{**r, "experiment_id": 1} for r in retry])
    assert client.query(f"SELECT count() FROM {table(client)}")[0][0] > len(rows)  # the copies are there
    now = T0 + timedelta(days=9)
    same(pipeline.analyze(chdb_engine, "checkout-button", now=now).to_dict(),
         pipeline.analyze(sqlite_engine, "checkout-button", now=now).to_dict())


def test_api_batches_land_in_clickhouse_and_a_failed_insert_is_a_503(chdb_engine, tmp_path, monkeypatch):
    from abtest.accounts import create_token
    from abtest.config import Settings
    from web import create_app

    _clear(chdb_engine)
    clear_events_store(chdb_engine)
    with Session(chdb_engine) as session:
        create(session)
        public = create_token(session, "public", "site").secret
        session.commit()
    app = create_app(Settings(database_url=str(chdb_engine.url), secret_key="k", instance_path=tmp_path),
                     engine=chdb_engine)
    client = app.test_client()
    now = datetime.now(UTC)
    stamp = lambda d: (now + d).isoformat().replace("+00:00", "Z")  # noqa: E731
    body = {"events": [
        {"id": "e-exposure-1", "type": "exposure", "experiment": "checkout-button", "unit": "alice",
         "variant": "green", "ts": stamp(timedelta(minutes=-1))},
        {"id": "e-early-1", "type": "conversion", "experiment": "checkout-button", "unit": "alice",
         "event": "purchase", "ts": stamp(timedelta(minutes=-2))}]}
    headers = {"Authorization": f"Bearer {public}"}
    first = client.post("/api/v1/events", headers=headers, json=body)
    assert first.status_code == 202 and first.get_json() == {"accepted": 2, "duplicates": 0, "rejected": [],
                                                              "before_exposure": [1]}
    assert client.post("/api/v1/events", headers=headers, json=body).get_json()["duplicates"] == 2
    store = clickhouse_of(chdb_engine)
    assert store is not None
    assert store.query(f"SELECT count() FROM {table(store)} FINAL")[0][0] == 2
    monkeypatch.setattr(store, "insert_json", lambda *a: store.command("SELECT throwIf(1, 'disk full')"))
    body["events"][0]["id"] = "e-exposure-2"
    failed = client.post("/api/v1/events", headers=headers, json=body)
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "5"
    assert "retry" in failed.get_json()["error"]["message"]


def test_export_copies_history_once_and_resumes(sqlite_engine, chdb_url, monkeypatch):
    _clear(sqlite_engine)
    now = T0 + timedelta(days=9)
    rows = with_devices(random.Random(3), random_batch(random.Random(3), 0, 300, 2000))
    seeded(sqlite_engine, [lambda eid: [{**r, "experiment_id": eid} for r in rows]])
    expected = pipeline.analyze(sqlite_engine, "checkout-button", by="device", now=now).to_dict()
    url = f"{chdb_url}?db=exported"  # chdb: one folder per process, another database in it
    client = connect(url)
    create_schema(client)
    for statement in truncate_statements(client):
        client.command(statement)
    monkeypatch.setattr("abtest.clickhouse.export.CHUNK", 700)
    calls = 0
    write = sink.write

    def interrupted(*args):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise EventsUnavailable("connection reset", field=None)
        return write(*args)

    monkeypatch.setattr(sink, "write", interrupted)
    with pytest.raises(EventsUnavailable):
        export(sqlite_engine, client)
    monkeypatch.setattr(sink, "write", write)
    resumed = export(sqlite_engine, client)
    assert (resumed.read, resumed.copied) == (len(rows), len(rows) - 700)
    assert export(sqlite_engine, client).copied == 0
    reads_the_same(sqlite_engine, url, expected, now)


def test_cli_db_upgrade_creates_the_events_table_and_export_copies(sqlite_engine, chdb_url, tmp_path, monkeypatch):
    from web.cli import main

    _clear(sqlite_engine)
    seeded(sqlite_engine, [lambda eid: [event(eid, "exposure", "alice", "control", T0)]])
    url = f"{chdb_url}?db=cli"
    connect(url).command("DROP DATABASE IF EXISTS cli")
    monkeypatch.setenv("ABTEST_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("ABTEST_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("ABTEST_EVENTS_URL", url)
    upgraded = CliRunner().invoke(main, ["db", "upgrade"])
    assert upgraded.exit_code == 0 and "events table is up to date" in upgraded.output
    assert [connect(url).query(f"EXISTS TABLE cli.{name}")[0][0] for name in ("events", "units", "units_view")] == [1, 1, 1]
    exported = CliRunner().invoke(main, ["events", "export", "--to", url, "--since", "2026-01-01"])
    assert exported.exit_code == 0, exported.output
    assert "1 events copied, 0 already there" in exported.output
    again = CliRunner().invoke(main, ["events", "export", "--to", url])
    assert "0 events copied, 1 already there" in again.output
    assert CliRunner().invoke(main, ["events", "export", "--to", "mysql://x"]).exit_code == 2
    _clear(sqlite_engine)


def test_upgrading_a_store_without_the_units_table_builds_it_from_the_stored_events(sqlite_engine, chdb_url):
    """An events table from before the units table: abtest db upgrade creates the table and its
    view and fills it from the events already there (the view sees only new inserts); events
    arriving after are added by the view; a hand-made DELETE is followed by rebuild_units."""
    from abtest.clickhouse.schema import BUILT, UNITS, UNITS_SELECT, rebuild_units, statements, units_table

    _clear(sqlite_engine)
    rows = with_devices(random.Random(8), random_batch(random.Random(8), 0, 200, 900))
    early, late = rows[:600], rows[600:]
    url = f"{chdb_url}?db=upgraded"
    client = connect(url)
    client.command("DROP DATABASE IF EXISTS upgraded")
    for statement in statements("upgraded")[:2]:  # the database and the events table, as before
        client.command(statement)
    experiment_id = seeded(sqlite_engine, [lambda eid: [{**r, "experiment_id": eid} for r in early]])
    sink.write(client, [{**r, "experiment_id": experiment_id} for r in early])
    assert client.query(f"EXISTS TABLE upgraded.{UNITS}")[0][0] == 0
    create_schema(client)
    built = client.query(f"SELECT count() FROM {units_table(client)} FINAL")[0][0]
    assert built == len({r["unit"] for r in early})
    create_schema(client)  # run again: nothing rebuilt, nothing doubled
    assert client.query(f"SELECT count() FROM {units_table(client)}")[0][0] == built
    # An upgrade cut short (the table made, the backfill not finished, so not marked): the next finishes it.
    client.command(f"TRUNCATE TABLE {units_table(client)}")
    client.command(f"ALTER TABLE {units_table(client)} MODIFY COMMENT ''")
    create_schema(client)
    assert client.query(f"SELECT count() FROM {units_table(client)} FINAL")[0][0] == built
    assert client.query("SELECT comment FROM system.tables WHERE database = 'upgraded' AND name = {n:String}",
                        {"n": UNITS}) == [(BUILT,)]
    with sqlite_engine.begin() as conn:
        write_events(conn, [{**r, "experiment_id": experiment_id} for r in late])
    sink.write(client, [{**r, "experiment_id": experiment_id} for r in late])
    now = T0 + timedelta(days=9)
    expected = pipeline.analyze(sqlite_engine, "checkout-button", by="device", now=now).to_dict()
    reads_the_same(sqlite_engine, url, expected, now)
    # Purchases deleted by hand: the units table follows only once rebuilt, then it is exactly what
    # building it from the events gives.
    read = ("SELECT experiment_id, unit, forced, variant_min, variant_max, first_exposure, last_event, "
            "first_attributes, arraySort(conversions), arraySort(tasks) FROM ({}) ORDER BY unit")
    held = read.format(f"SELECT * FROM {units_table(client)} FINAL")
    fresh = read.format(UNITS_SELECT.format(source="upgraded.events", where=""))
    assert client.query(held) == client.query(fresh)
    buyers = sorted({r["unit"] for r in rows if r["type"] == "conversion"})[:20]
    client.command("DELETE FROM upgraded.events WHERE type = 'conversion' AND unit IN {u:Array(String)}", {"u": buyers})
    assert client.query(held) != client.query(fresh)
    rebuild_units(client, "experiment_id = {e:UInt64} AND unit IN {u:Array(String)}", {"e": experiment_id, "u": buyers})
    assert client.query(held) == client.query(fresh)


def test_a_request_no_family_answers_is_refused_by_name_not_answered_empty(chdb_engine):
    """Studies, surveys and A/B tests are all answered here (tests/test_study_analysis.py,
    tests/test_ia_analysis.py, tests/test_surveys.py); a request added to the seam and not built
    here yet is a 501 naming it, never an empty answer."""
    from dataclasses import dataclass

    from abtest.aggregates.base import ExposedUnits, Request
    from abtest.clickhouse.source import ClickHouseSource

    @dataclass(frozen=True)
    class NotBuiltYet(Request):
        pass

    store = clickhouse_of(chdb_engine)
    assert store is not None
    with pytest.raises(Unsupported, match="NotBuiltYet") as refused:
        ClickHouseSource(chdb_engine, store).fetch("any", ["a"], [ExposedUnits(), NotBuiltYet()], T0)
    assert refused.value.status == 501


def test_erasing_a_unit_deletes_its_events_in_clickhouse_and_the_report_follows(both):
    """Forgetting a unit on both stores leaves equal reports, and the unit's events are gone from
    ClickHouse (counted per test in the answer, as on SQLite)."""
    from abtest.clickhouse.schema import table, units_table
    from abtest.store.erasure import forget
    from abtest.store.target import clickhouse_of

    rows = with_devices(random.Random(11), random_batch(random.Random(11), 0, 300, 1200))
    for engine in both:
        seeded(engine, [lambda eid: [{**r, "experiment_id": eid} for r in rows]])
    unit = next(r["unit"] for r in rows if r["type"] == "exposure")
    mine = len({r["event_id"] for r in rows if r["unit"] == unit})
    answers = [forget(engine, unit).to_dict()["deleted"]["events"] for engine in both]
    assert answers == [mine, mine]
    now = T0 + timedelta(days=9)
    same(*(pipeline.analyze(e, "checkout-button", now=now).to_dict() for e in reversed(both)))
    clickhouse = clickhouse_of(both[1])
    for name in (table(clickhouse), units_table(clickhouse)):  # its events, and its row in the units table
        assert clickhouse.query(f"SELECT count() FROM {name} WHERE unit = {{u:String}}", {"u": unit}) == [(0,)]
    assert forget(both[1], unit).to_dict()["deleted"]["events"] == 0  # asking twice is safe


@pytest.mark.skipif(not os.environ.get("ABTEST_TEST_CLICKHOUSE_URL"),
                    reason="set ABTEST_TEST_CLICKHOUSE_URL=clickhouse://user:pass@host:8123/db to test a server")
def test_a_clickhouse_server_gives_the_same_report(sqlite_engine):
    url = os.environ["ABTEST_TEST_CLICKHOUSE_URL"]
    client = connect(url)
    create_schema(client, os.environ.get("ABTEST_TEST_CLICKHOUSE_CLUSTER") or None)
    for statement in truncate_statements(client):  # on a cluster: the shards' tables (a Distributed one holds none)
        client.command(statement)
    _clear(sqlite_engine)
    rows = with_devices(random.Random(5), random_batch(random.Random(5), 0, 200, 1000))
    seeded(sqlite_engine, [lambda eid: [{**r, "experiment_id": eid, "event_id": str(uuid.uuid4())} for r in rows]])
    now = T0 + timedelta(days=9)
    expected = pipeline.analyze(sqlite_engine, "checkout-button", by="device", now=now).to_dict()
    assert export(sqlite_engine, client).copied == len(rows)
    attach(sqlite_engine, url)
    try:
        same(pipeline.analyze(sqlite_engine, "checkout-button", by="device", now=now).to_dict(), expected)
        assert ingest(sqlite_engine, [], kinds=("experiment",)).accepted == 0
    finally:
        detach(sqlite_engine)
        _clear(sqlite_engine)
    json.dumps(expected)


# ---- the schema on one server and on a cluster (abtest db upgrade, abtest db clickhouse-sql) ----

# What create_schema ran on one server before clusters were built: it must not change for anyone.
SINGLE_SERVER = ["CREATE DATABASE IF NOT EXISTS abtest", """
CREATE TABLE IF NOT EXISTS abtest.events (
    event_id String,
    type LowCardinality(String),
    experiment_id UInt64,
    variant LowCardinality(Nullable(String)),
    unit String,
    event LowCardinality(Nullable(String)),
    value Nullable(Float64),
    task LowCardinality(Nullable(String)),
    success Nullable(Bool),
    duration_ms Nullable(Float64),
    questionnaire LowCardinality(Nullable(String)),
    answers Nullable(String),
    attributes Map(LowCardinality(String), String),
    forced Bool,
    ts DateTime64(6, 'UTC'),
    received_at DateTime64(6, 'UTC'),
    -- Larger for earlier receipts: ReplacingMergeTree keeps the largest, so the first write wins.
    version UInt64 MATERIALIZED toUInt64(4102444800000000) - toUInt64(toUnixTimestamp64Micro(received_at)),
    INDEX event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (experiment_id, unit, event_id)
"""]
REPLICATED = ("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/abtest/events_local', '{replica}', version)")
REPLICATED_UNITS = "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/abtest/units_local', '{replica}')"
DISTRIBUTED = "Distributed('events_cluster', 'abtest', 'events_local', cityHash64(experiment_id, unit))"


class Recording:
    """A ClickHouse client that records statements and answers queries from a list."""

    def __init__(self, database: str = "abtest", answers: list | None = None) -> None:
        self.database, self.answers, self.sent = database, list(answers or []), []

    def query(self, sql, params=None):  # type: ignore[no-untyped-def]
        self.sent.append((sql, params))
        return self.answers.pop(0) if self.answers else []

    def command(self, sql, params=None):  # type: ignore[no-untyped-def]
        self.sent.append((sql, params))


def _columns(statement: str) -> str:
    """The column and index list of a CREATE TABLE (between its parentheses)."""
    return statement.split(" (\n", 1)[1].split("\n) ENGINE", 1)[0]


def test_one_server_gets_exactly_the_statements_it_always_got():
    """The events table as it always was, then the units table and the view feeding it."""
    from abtest.clickhouse.schema import statements

    created = statements("abtest")
    assert created == statements("abtest", None) == statements("abtest", "")
    assert created[:2] == SINGLE_SERVER and len(created) == 4
    assert created[2].strip().startswith("CREATE TABLE IF NOT EXISTS abtest.units (\n")
    assert created[2].strip().endswith(") ENGINE = AggregatingMergeTree\nORDER BY (experiment_id, unit)")
    assert created[3].startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS abtest.units_view TO abtest.units AS\n")
    assert "FROM abtest.events\nGROUP BY experiment_id, unit" in created[3]
    marked = "ALTER TABLE abtest.units MODIFY COMMENT 'abtest: built from the events'"
    client = Recording()  # nothing there yet: the tables are looked up, created, marked built; no backfill
    create_schema(client)  # type: ignore[arg-type]
    sent = [sql for sql, _ in client.sent]
    assert [sql for sql in sent if "system.tables" not in sql] == [*created, marked] and len(sent) == len(created) + 3
    for units in ([], [("",)]):  # an upgrade: events and no units table, or one whose backfill was cut short
        upgraded = Recording(answers=[[("ReplacingMergeTree", "ReplacingMergeTree(version)")], units])
        create_schema(upgraded)  # type: ignore[arg-type]
        backfill, late = (sql for sql, _ in upgraded.sent if sql.startswith("INSERT"))
        assert backfill.startswith("INSERT INTO abtest.units\nSELECT experiment_id, unit,")
        assert backfill.endswith("FROM abtest.events\nGROUP BY experiment_id, unit")
        assert "FROM abtest.events\nWHERE received_at >= {since:DateTime64(6, 'UTC')}\nGROUP BY" in late
        assert upgraded.sent[-1][0] == marked
    done = Recording(answers=[[("ReplacingMergeTree", "")], [("abtest: built from the events",)]])
    create_schema(done)  # type: ignore[arg-type]
    assert [sql for sql, _ in done.sent if "system.tables" not in sql] == created  # built: nothing again


def test_cluster_statements_create_replicated_shards_and_a_distributed_table_over_them():
    from abtest.clickhouse.schema import statements
    from abtest.errors import ValidationError

    database, local, events, units_local, view, units = statements("abtest", "events_cluster")
    assert database == "CREATE DATABASE IF NOT EXISTS abtest ON CLUSTER events_cluster"
    assert local.strip().startswith("CREATE TABLE IF NOT EXISTS abtest.events_local ON CLUSTER events_cluster (\n")
    assert f") ENGINE = {REPLICATED}\nPARTITION BY toYYYYMM(ts)\nORDER BY (experiment_id, unit, event_id)\n" in local
    assert _columns(local) == _columns(SINGLE_SERVER[1])  # the same columns, index, partitions and key
    assert events == ("CREATE TABLE IF NOT EXISTS abtest.events ON CLUSTER events_cluster AS abtest.events_local\n"
                      f"ENGINE = {DISTRIBUTED}\n")
    one = statements("abtest")
    assert _columns(units_local) == _columns(one[2])
    assert units_local.strip().startswith("CREATE TABLE IF NOT EXISTS abtest.units_local ON CLUSTER events_cluster (\n")
    assert f") ENGINE = {REPLICATED_UNITS}\nORDER BY (experiment_id, unit)" in units_local
    # Each shard's view feeds its own units_local from its own events_local, with the same SELECT.
    assert view.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS abtest.units_view ON CLUSTER events_cluster "
                           "TO abtest.units_local AS\n")
    assert view.split(" AS\n", 1)[1] == one[3].split(" AS\n", 1)[1].replace("abtest.events\n", "abtest.events_local\n")
    assert units == ("CREATE TABLE IF NOT EXISTS abtest.units ON CLUSTER events_cluster AS abtest.units_local\n"
                     f"ENGINE = {DISTRIBUTED.replace('events_local', 'units_local')}\n")
    # A name remote_servers allows but an identifier does not is quoted; anything else is refused.
    assert "ON CLUSTER `events-eu.1` AS" in statements("abtest", "events-eu.1")[2]
    for bad in ("a'b", "x y", "c;DROP", "-x", "`x`"):
        with pytest.raises(ValidationError, match="cluster name"):
            statements("abtest", bad)
    with pytest.raises(ValidationError, match="database name"):
        statements("ab-test", "events_cluster")


def test_db_upgrade_on_a_cluster_refuses_to_leave_a_one_server_table_in_place():
    """IF NOT EXISTS keeps an events table made for one server; that is said, not half-built."""
    from abtest.clickhouse.schema import statements
    from abtest.errors import AbtestError

    client = Recording(answers=[[("ReplacingMergeTree", "ReplacingMergeTree(version) PARTITION BY toYYYYMM(ts)")]])
    with pytest.raises(AbtestError, match="exists as a ReplacingMergeTree table") as refused:
        create_schema(client, "events_cluster")  # type: ignore[arg-type]
    assert refused.value.field == "ABTEST_CLICKHOUSE_CLUSTER"
    assert len(client.sent) == 1 and "system.tables" in client.sent[0][0]  # refused before creating anything
    for found in ([], [("Distributed", DISTRIBUTED)]):  # nothing yet, or the cluster's tables already
        built = Recording(answers=[found, [("abtest: built from the events",)]])  # units_local built already
        create_schema(built, "events_cluster")  # type: ignore[arg-type]
        assert [sql for sql, _ in built.sent][2:] == statements("abtest", "events_cluster")
        assert "name = {n:String}" in built.sent[1][0] and built.sent[1][1] == {"d": "abtest", "n": "units_local"}


def test_every_generated_statement_parses_as_clickhouse_sql(chdb_url):
    """chdb parses each (formatQuery: the parser alone, nothing is created); a broken one fails."""
    from abtest.clickhouse.erasure import delete_statement
    from abtest.clickhouse.schema import Shards, rebuild_units, statements

    client = connect(chdb_url)
    shards = Shards("events_cluster", "abtest.events_local")
    generated = [*statements("abtest"), *statements("abtest", "events_cluster"), *statements("abtest", "events-eu.1"),
                 delete_statement("abtest.events"), delete_statement("abtest.events", shards),
                 delete_statement("abtest.events", Shards("events-eu.1", "abtest.events_local")),
                 "TRUNCATE TABLE abtest.events_local ON CLUSTER events_cluster SYNC"]
    for answers in ([[], []], [[("Distributed", DISTRIBUTED.replace("events_local", "units_local"))],
                               [("Distributed", DISTRIBUTED)]]):  # a rebuild on one server, on a cluster
        rebuilt = Recording(answers=answers)
        rebuild_units(rebuilt, "unit = {u:String}", {"u": "alice"})  # type: ignore[arg-type]
        generated += [sql for sql, _ in rebuilt.sent if "system.tables" not in sql]
    for statement in generated:
        formatted = client.query("SELECT formatQuery({q:String})", {"q": statement})[0][0]
        assert formatted.split()[0] in ("CREATE", "DELETE", "TRUNCATE", "INSERT"), statement
    cluster_table = client.query("SELECT formatQuery({q:String})", {"q": statements("abtest", "events_cluster")[1]})
    assert REPLICATED in cluster_table[0][0] and "ON CLUSTER events_cluster" in cluster_table[0][0]
    with pytest.raises(EventsUnavailable, match="Syntax error"):
        client.query("SELECT formatQuery({q:String})", {"q": SINGLE_SERVER[1].replace("bloom_filter(0.01)", "bloom_filter(0.01")})


def test_erasure_on_a_cluster_deletes_from_the_shards_tables_on_cluster():
    from abtest.clickhouse import erasure
    from abtest.clickhouse.schema import Shards, parse_distributed

    one = "DELETE FROM abtest.events WHERE unit = {u:String} AND experiment_id IN {ids:Array(UInt64)}"
    assert erasure.delete_statement("abtest.events") == one  # as before on one server
    shards = parse_distributed(f"{DISTRIBUTED}", "abtest")  # what system.tables shows
    assert shards == Shards("events_cluster", "abtest.events_local")
    assert parse_distributed("ReplacingMergeTree(version) ORDER BY x", "abtest") is None
    assert parse_distributed("Distributed('c', '', 'events_local', rand())", "abtest") == Shards("c", "abtest.events_local")
    cluster = ("DELETE FROM abtest.events_local ON CLUSTER events_cluster "
               "WHERE unit = {u:String} AND experiment_id IN {ids:Array(UInt64)}")
    assert erasure.delete_statement("abtest.events", shards) == cluster
    # delete() asks the server where the rows are, then deletes there: the units first, then the events.
    units_distributed = DISTRIBUTED.replace("events_local", "units_local")
    client = Recording(answers=[[("Distributed", units_distributed)], [("Distributed", DISTRIBUTED)]])
    erasure.delete(client, [3, 4], "alice")  # type: ignore[arg-type]
    (units_lookup, units_params), (units_sent, _), (lookup, lookup_params), (sent, params), again = client.sent
    assert again == (units_sent, params)  # the units again after the events: nothing the view added meanwhile
    assert "system.tables" in units_lookup and units_params == {"d": "abtest", "n": "units"}
    assert units_sent == cluster.replace("events_local", "units_local")
    assert "system.tables" in lookup and lookup_params == {"d": "abtest", "n": "events"}
    assert (sent, params) == (cluster, {"u": "alice", "ids": [3, 4]})
    client = Recording(answers=[[], []])
    erasure.delete(client, [3], "alice")  # type: ignore[arg-type]
    assert client.sent[1] == (one.replace("abtest.events", "abtest.units"), {"u": "alice", "ids": [3]})
    assert client.sent[3] == (one, {"u": "alice", "ids": [3]}) and client.sent[4] == client.sent[1]
    on_shards = Recording(answers=[[("Distributed", DISTRIBUTED)], [("Distributed", units_distributed)]])
    assert truncate_statements(on_shards) == [  # type: ignore[arg-type]
        "TRUNCATE TABLE abtest.events_local ON CLUSTER events_cluster SYNC",
        "TRUNCATE TABLE abtest.units_local ON CLUSTER events_cluster SYNC"]
    assert truncate_statements(Recording()) == ["TRUNCATE TABLE abtest.events", "TRUNCATE TABLE abtest.units"]  # type: ignore[arg-type]


def test_a_single_server_schema_is_seen_as_no_cluster(chdb_url):
    from abtest.clickhouse.schema import shards_of

    assert shards_of(connect(chdb_url)) is None
    assert truncate_statements(connect(chdb_url)) == ["TRUNCATE TABLE abtest.events", "TRUNCATE TABLE abtest.units"]


def test_cli_prints_the_statements_db_upgrade_runs(monkeypatch):
    from abtest.clickhouse.schema import script
    from web.cli import main

    monkeypatch.delenv("ABTEST_CLICKHOUSE_CLUSTER", raising=False)
    monkeypatch.delenv("ABTEST_EVENTS_URL", raising=False)
    runner = CliRunner()
    printed = runner.invoke(main, ["db", "clickhouse-sql", "--cluster", "events_cluster"])
    assert printed.exit_code == 0, printed.output
    assert printed.output == script("abtest", "events_cluster")
    assert printed.output.count(";\n") == 6 and DISTRIBUTED in printed.output
    one = runner.invoke(main, ["db", "clickhouse-sql"]).output
    assert one == script("abtest") and one.startswith("\n\n".join(s.strip() + ";" for s in SINGLE_SERVER) + "\n")
    monkeypatch.setenv("ABTEST_CLICKHOUSE_CLUSTER", "prod")
    monkeypatch.setenv("ABTEST_EVENTS_URL", "clickhouse://u:p@ch:8123/events")  # its database; nothing connects
    assert runner.invoke(main, ["db", "clickhouse-sql"]).output == script("events", "prod")
    assert runner.invoke(main, ["db", "clickhouse-sql", "--database", "x"]).output == script("x", "prod")
    refused = runner.invoke(main, ["db", "clickhouse-sql", "--cluster", "no'pe"])
    assert refused.exit_code == 1 and "ABTEST_CLICKHOUSE_CLUSTER" in refused.output
    assert runner.invoke(main, ["db", "clickhouse-sql", "--help"]).exit_code == 0


def test_readme_shows_the_sql_the_command_prints():
    from pathlib import Path

    from abtest.clickhouse.schema import script

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "### ClickHouse on a cluster" in text and "ABTEST_CLICKHOUSE_CLUSTER" in text
    assert f"```sql\n{script('abtest', 'events_cluster')}```" in text


_CLUSTER_CHECK = r'''
import json, re, sys
from abtest.clickhouse.client import ChdbClient, EventsUnavailable
from abtest.clickhouse import schema

job = json.load(sys.stdin)
client = ChdbClient(job["path"] + "?config-file=" + job["config"], "abtest")

def run(sql, params=None):
    try:
        client._session.query(sql, "CSV", params=params)
        return "ok"
    except Exception as exc:
        code = re.search(r"Code: (\d+)", str(exc))
        return (code.group(1) if code else "?") + ": " + str(exc).splitlines()[0][:300]

def rows(sql):
    return [list(r) for r in client.query(sql)]

out = {"create": [run(s) for s in job["statements"]]}
shards = schema.shards_of(client)
out["shards"] = None if shards is None else [shards.cluster, shards.local]
out["truncate"] = schema.truncate_statements(client)
described = "SELECT name, type, default_kind, default_expression FROM system.columns WHERE database = '{}' AND table = '{}' ORDER BY position"
out["columns"] = {t: rows(described.format(*t.split("."))) for t in ("one.events", "abtest.events_local", "abtest.events")}
out["tables"] = {t: rows("SELECT sorting_key, partition_key, engine FROM system.tables WHERE database = '{}' AND name = '{}'".format(*t.split(".")))
                 for t in ("one.events", "abtest.events_local", "abtest.events")}
out["indices"] = {t: rows("SELECT name, type_full, expr FROM system.data_skipping_indices WHERE database = '{}' AND table = '{}'".format(*t.split(".")))
                  for t in ("one.events", "abtest.events_local")}
out["queries"] = [run(sql, params) for sql, params in job["queries"]]
out["double_distributed"] = run("SELECT count() FROM abtest.events WHERE unit IN (SELECT unit FROM abtest.events)")
insert = "INSERT INTO abtest.events ({}) SETTINGS insert_distributed_sync={} FORMAT " + job["format"] + "\n"
out["insert_sync"] = run(insert.format(", ".join(job["columns"]), 1) + job["line"])
out["insert_queued"] = run(insert.format(", ".join(job["columns"]), 0) + job["line"])
local_count = "SELECT count() FROM abtest.events_local"
out["local_after_queued_insert"] = rows(local_count)[0][0]
run("INSERT INTO abtest.events_local ({}) FORMAT {}\n".format(", ".join(job["columns"]), job["format"]) + job["line"])
out["truncate_distributed"] = run("TRUNCATE TABLE abtest.events")
out["local_after_truncating_distributed"] = rows(local_count)[0][0]
out["delete_distributed"] = run(job["delete_distributed"], job["delete_params"])
out["delete_local"] = run(job["delete_local"], job["delete_params"])
out["local_after_delete"] = rows(local_count)[0][0]
print(json.dumps(out))
'''


def _recorded_reads(chdb_engine, monkeypatch):  # type: ignore[no-untyped-def]
    """Every read the app sends ClickHouse for an experiment (whole and by segment), a study
    (between and within subjects), a survey, the write path's lookups and an erasure's count."""
    from abtest.clickhouse import queries
    from abtest.clickhouse.client import text_param
    from abtest.clickhouse.erasure import held
    from tests.test_study_analysis import _simulate

    client = clickhouse_of(chdb_engine)
    assert client is not None
    seen: dict[str, tuple[str, dict[str, str]]] = {}
    answer = client.query

    def recording(sql, params=None):  # type: ignore[no-untyped-def]
        texts = {name: text_param(value) for name, value in (params or {}).items()}
        seen.setdefault(json.dumps([sql, texts], sort_keys=True), (sql, texts))
        return answer(sql, params)

    monkeypatch.setattr(client, "query", recording)
    now = T0 + timedelta(days=9)
    rows = with_devices(random.Random(2), random_batch(random.Random(2), 0, 120, 500))
    experiment_id = seeded(chdb_engine, [lambda eid: [{**r, "experiment_id": eid} for r in rows]])
    for by in (None, "device"):
        pipeline.analyze(chdb_engine, "checkout-button", by=by, now=now)
    with chdb_engine.begin() as conn:  # the id lookup and first exposures of the write path
        write_events(conn, [event(experiment_id, "conversion", "u1", None, T0 + timedelta(days=1), event="purchase")])
    held(client, [experiment_id], "u1")
    for within in (False, True):
        _clear(chdb_engine)
        clear_events_store(chdb_engine)
        study_now = T0 + timedelta(days=3)
        _simulate(chdb_engine, 3, within, study_now)
        for by in (None, "device"):
            pipeline.analyze(chdb_engine, "checkout-study", by=by, now=study_now)
    for sql in (queries.survey_reach(table(client)), queries.answer_counts(table(client)),
                queries.answer_texts(table(client))):
        recording(sql, {"e": 1, "tasks": ["csat"], "task": "comment"})
    monkeypatch.undo()
    return list(seen.values())


def test_reads_writes_and_erasure_plan_against_a_distributed_table(chdb_engine, tmp_path, monkeypatch):
    """What a cluster changes, checked on ClickHouse's own engine: chdb in another process with a
    two-shard cluster in its config (shards at an address nothing answers; a real cluster, with
    ZooKeeper for ON CLUSTER and the Replicated engine, cannot run here). The cluster's statements
    run with ON CLUSTER left out and a plain ReplacingMergeTree per shard. Then every read the app
    sends gets past ClickHouse's analysis and planning over the Distributed table (FINAL, the
    per-unit GROUP BYs, the JOINs of subqueries: no double-distributed subquery) and fails only
    where it would reach the shards; an insert waits for the shards (without
    insert_distributed_sync it would be acknowledged while no shard has it); a DELETE or TRUNCATE
    on the Distributed table would not touch the shards' rows, which is why erasure and tests
    address events_local."""
    import subprocess
    import sys

    from abtest.clickhouse.erasure import delete_statement
    from abtest.clickhouse.schema import Shards, on_cluster, statements

    _clear(chdb_engine)
    clear_events_store(chdb_engine)
    try:
        reads = _recorded_reads(chdb_engine, monkeypatch)
    finally:
        _clear(chdb_engine)
        clear_events_store(chdb_engine)
    assert len(reads) > 25 and any("JOIN" in sql for sql, _ in reads) and any("FINAL" in sql for sql, _ in reads)
    config = tmp_path / "cluster.xml"
    replica = "<replica><host>127.0.0.1</host><port>1</port></replica>"
    config.write_text(f"<clickhouse><remote_servers><events_cluster><shard>{replica}</shard><shard>{replica}</shard>"
                      "</events_cluster></remote_servers></clickhouse>")
    on_shards = []
    for statement in statements("abtest", "events_cluster"):
        assert statement.count(on_cluster("events_cluster")) == 1
        on_shards.append(statement.replace(on_cluster("events_cluster"), "").replace(
            REPLICATED, "ReplacingMergeTree(version)").replace(REPLICATED_UNITS, "AggregatingMergeTree"))
    row = sink.line(event(7, "exposure", "alice", "control", T0))
    job = {"path": str(tmp_path / "data"), "config": str(config), "line": row, "columns": list(sink.COLUMNS),
           "format": FORMAT,
           "statements": [*statements("one"), *on_shards], "queries": reads,
           "delete_distributed": delete_statement("abtest.events"),
           "delete_local": delete_statement("abtest.events_local"), "delete_params": {"u": "alice", "ids": "[7]"}}
    done = subprocess.run([sys.executable, "-c", _CLUSTER_CHECK], input=json.dumps(job), capture_output=True,
                          text=True, timeout=300, cwd=str(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["create"] == ["ok"] * 10
    assert out["shards"] == ["events_cluster", "abtest.events_local"]
    assert out["truncate"] == ["TRUNCATE TABLE abtest.events_local ON CLUSTER events_cluster SYNC",
                               "TRUNCATE TABLE abtest.units_local ON CLUSTER events_cluster SYNC"]
    columns = out["columns"]
    assert columns["abtest.events_local"] == columns["one.events"] == columns["abtest.events"]
    assert out["tables"]["abtest.events_local"][0][:2] == out["tables"]["one.events"][0][:2] == [
        "experiment_id, unit, event_id", "toYYYYMM(ts)"]
    assert out["tables"]["abtest.events"][0][2] == "Distributed"
    assert out["indices"]["abtest.events_local"] == out["indices"]["one.events"] != []
    unreachable = ("279: ", "210: ")  # all connection tries failed / connection refused: the shards
    planned = [(result, sql) for result, (sql, _) in zip(out["queries"], reads, strict=True)
               if result != "ok" and not result.startswith(unreachable)]
    assert planned == []
    assert out["double_distributed"].startswith("288: ")  # what the check above would have caught
    assert out["insert_sync"].startswith("210: ")  # waits for the shards, which are not there
    assert out["insert_queued"] == "ok" and out["local_after_queued_insert"] == 0  # acknowledged, held nowhere
    assert out["truncate_distributed"] == "ok" and out["local_after_truncating_distributed"] == 1
    assert "not supported" in out["delete_distributed"] and out["delete_local"] == "ok"
    assert out["local_after_delete"] == 0
    assert Shards(*out["shards"]).local.endswith(".events_local")


@pytest.mark.skipif(not (os.environ.get("ABTEST_TEST_CLICKHOUSE_URL") and os.environ.get("ABTEST_TEST_CLICKHOUSE_CLUSTER")),
                    reason="needs a real ClickHouse cluster (ZooKeeper/Keeper, shards, replicas): set "
                           "ABTEST_TEST_CLICKHOUSE_URL to one of its nodes and ABTEST_TEST_CLICKHOUSE_CLUSTER to its name")
def test_a_clickhouse_cluster_gives_the_same_report_and_erases_on_every_shard(sqlite_engine):
    from abtest.clickhouse.schema import shards_of
    from abtest.store.erasure import forget

    url, cluster = os.environ["ABTEST_TEST_CLICKHOUSE_URL"], os.environ["ABTEST_TEST_CLICKHOUSE_CLUSTER"]
    client = connect(url)
    create_schema(client, cluster)
    shards = shards_of(client)
    assert shards is not None and shards.cluster == cluster
    for statement in truncate_statements(client):
        client.command(statement)
    _clear(sqlite_engine)
    rows = with_devices(random.Random(6), random_batch(random.Random(6), 0, 300, 1500))
    seeded(sqlite_engine, [lambda eid: [{**r, "experiment_id": eid, "event_id": str(uuid.uuid4())} for r in rows]])
    now = T0 + timedelta(days=9)
    expected = pipeline.analyze(sqlite_engine, "checkout-button", by="device", now=now).to_dict()
    assert export(sqlite_engine, client).copied == len(rows)
    assert export(sqlite_engine, client).copied == 0  # the id lookup sees every shard
    events = table(client)
    holding = client.query(f"SELECT uniqExact(_shard_num) FROM {events}")[0][0]  # _shard_num: Distributed's own
    assert holding == client.query("SELECT uniqExact(shard_num) FROM system.clusters WHERE cluster = {c:String}",
                                   {"c": cluster})[0][0]  # spread over every shard
    assert client.query(f"SELECT max(n) FROM (SELECT uniqExact(_shard_num) AS n FROM {events} "
                        "GROUP BY experiment_id, unit)")[0][0] == 1  # each unit's events on one shard
    attach(sqlite_engine, url)
    try:
        same(pipeline.analyze(sqlite_engine, "checkout-button", by="device", now=now).to_dict(), expected)
        unit = next(r["unit"] for r in rows if r["type"] == "exposure")
        assert forget(sqlite_engine, unit).to_dict()["deleted"]["events"] > 0
        assert client.query(f"SELECT count() FROM {table(client)} WHERE unit = {{u:String}}", {"u": unit}) == [(0,)]
    finally:
        detach(sqlite_engine)
        _clear(sqlite_engine)
