"""Events in ClickHouse (chdb in-process; a server when ABTEST_TEST_CLICKHOUSE_URL is set):
reports equal the SQL ones number for number, ids count once however they are retried, a failed
insert is a 503, and history moves across with ``abtest events export``."""

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
from abtest.clickhouse.client import EventsUnavailable, connect
from abtest.clickhouse.export import export
from abtest.clickhouse.schema import create_schema, table
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
    client.command(f"TRUNCATE TABLE {table(client)}")
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
    attach(sqlite_engine, url)
    try:
        same(pipeline.analyze(sqlite_engine, "checkout-button", by="device", now=now).to_dict(), expected)
    finally:
        detach(sqlite_engine)
        _clear(sqlite_engine)


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
    assert connect(url).query("EXISTS TABLE cli.events")[0][0] == 1
    exported = CliRunner().invoke(main, ["events", "export", "--to", url, "--since", "2026-01-01"])
    assert exported.exit_code == 0, exported.output
    assert "1 events copied, 0 already there" in exported.output
    again = CliRunner().invoke(main, ["events", "export", "--to", url])
    assert "0 events copied, 1 already there" in again.output
    assert CliRunner().invoke(main, ["events", "export", "--to", "mysql://x"]).exit_code == 2
    _clear(sqlite_engine)


def test_study_results_on_clickhouse_are_refused_by_name(chdb_engine):
    from abtest.aggregates.base import Attempts, ExposedUnits
    from abtest.clickhouse.source import ClickHouseSource

    store = clickhouse_of(chdb_engine)
    assert store is not None
    with pytest.raises(Unsupported, match="Attempts") as refused:
        ClickHouseSource(chdb_engine, store).fetch("any", ["a"], [ExposedUnits(), Attempts("t")], T0)
    assert refused.value.status == 501


def test_erasing_a_unit_deletes_its_events_in_clickhouse_and_the_report_follows(both):
    """Forgetting a unit on both stores leaves equal reports, and the unit's events are gone from
    ClickHouse (counted per test in the answer, as on SQLite)."""
    from abtest.clickhouse.schema import table
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
    assert clickhouse.query(f"SELECT count() FROM {table(clickhouse)} WHERE unit = {{u:String}}", {"u": unit}) == [(0,)]
    assert forget(both[1], unit).to_dict()["deleted"]["events"] == 0  # asking twice is safe


@pytest.mark.skipif(not os.environ.get("ABTEST_TEST_CLICKHOUSE_URL"),
                    reason="set ABTEST_TEST_CLICKHOUSE_URL=clickhouse://user:pass@host:8123/db to test a server")
def test_a_clickhouse_server_gives_the_same_report(sqlite_engine):
    url = os.environ["ABTEST_TEST_CLICKHOUSE_URL"]
    client = connect(url)
    create_schema(client)
    client.command(f"TRUNCATE TABLE {table(client)}")
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
