"""Per-unit rollups stay exactly what a full scan of the events would give, however events arrive.

The yardstick throughout is a rebuild from nothing (forget the experiment's rollups, mark every
unit dirty, refresh): after any sequence of batches and incremental refreshes, the rollup rows
must equal it. PostgreSQL builds a never-rolled-up experiment in one set-based pass; SQLite, to
keep its single write lock short, always goes unit by unit in chunks.
"""

from __future__ import annotations

import random
import threading
import typing
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from abtest import analysis, ingest, pipeline
from abtest.aggregates import rollup
from abtest.db import make_engine, upgrade
from abtest.pipeline import analyze
from abtest.store.events import write_events
from abtest.aggregates.rollup import DIRTY, EVENT_TYPES, EVENTS, MEASURES, STATE, UNITS, Measures, Refreshed, refresh
from tests.test_analysis import T0, create, event

RETENTION = {"name": "back", "type": "retention", "days": 3}


def snapshot(engine: sa.Engine, experiment_id: int) -> tuple[list[tuple], list[tuple]]:
    """The experiment's rollup rows, floats rounded (sums may be added in another order)."""
    def rows(table: sa.Table) -> list[tuple]:
        with engine.connect() as conn:
            found = conn.execute(sa.select(table).where(table.c.experiment_id == experiment_id)
                                 .order_by(*table.primary_key.columns)).all()
        return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in found]
    return rows(UNITS), rows(MEASURES)


def measured(engine: sa.Engine) -> list[tuple]:
    """(unit, measure name, count after exposure) of every measure row."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(MEASURES.c.unit, MEASURES.c.name, MEASURES.c.k)
                                              .order_by(MEASURES.c.unit, MEASURES.c.name))]


def rebuilt(engine: sa.Engine, experiment_id: int, measures: Measures) -> tuple[list[tuple], list[tuple]]:
    with engine.begin() as conn:
        for table in (STATE, MEASURES, UNITS, DIRTY):
            conn.execute(table.delete().where(table.c.experiment_id == experiment_id))
        conn.execute(DIRTY.insert().from_select(
            ["experiment_id", "unit", "version"],
            sa.select(EVENTS.c.experiment_id, EVENTS.c.unit, sa.literal(1)).distinct()
            .where(EVENTS.c.experiment_id == experiment_id)))
    assert refresh(engine, experiment_id, measures).full == postgres(engine)
    return snapshot(engine, experiment_id)


def postgres(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"


def random_batch(rng: random.Random, experiment_id: int, units: int, size: int) -> list[dict]:
    """Events for a few units in any order: repeat and late exposures (some earlier than the ones
    already stored, which moves the unit's start), conversions before and after, timings, forcing."""
    rows = []
    for _ in range(size):
        unit = f"u{rng.randrange(units)}"
        ts = T0 + timedelta(hours=rng.uniform(-24, 24 * 6))
        kind = rng.random()
        if kind < 0.35:
            rows.append(event(experiment_id, "exposure", unit, rng.choice(["control", "green", "control"]), ts,
                              forced=rng.random() < 0.05))
        elif kind < 0.75:
            rows.append(event(experiment_id, "conversion", unit, None, ts, event=rng.choice(["purchase", "view"]),
                              value=round(rng.uniform(0, 50), 2)))
        else:
            rows.append(event(experiment_id, "task", unit, None, ts, task="checkout", success=rng.random() < 0.8,
                              duration_ms=rng.uniform(1_000, 90_000)))
    return rows


def test_event_types_match_what_ingestion_accepts():
    assert typing.get_args(ingest.EventIn.model_fields["type"].annotation) == EVENT_TYPES


def test_insert_marks_units_dirty_and_a_refresh_clears_exactly_those(engine, session):
    experiment_id = create(session)
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "exposure", "alice", "control", T0),
                             event(experiment_id, "exposure", "alice", "control", T0 + timedelta(hours=1)),
                             event(experiment_id, "exposure", "bob", "green", T0)])
    def marks() -> dict[str, int]:
        with engine.connect() as conn:
            return dict(conn.execute(sa.select(DIRTY.c.unit, DIRTY.c.version)).all())

    before = marks()
    assert set(before) == {"alice", "bob"}
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "conversion", "alice", None, T0, event="purchase")])
    assert marks()["alice"] > before["alice"] and marks()["bob"] == before["bob"]  # a new insert bumps its mark
    result = refresh(engine, experiment_id, Measures.of(registry_definition(session, experiment_id)))
    assert result.full == postgres(engine) and result.units == 2
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(DIRTY)).scalar_one() == 0
    assert refresh(engine, experiment_id, Measures.of(registry_definition(session, experiment_id))).units == 0


def registry_definition(session, experiment_id: int):  # type: ignore[no-untyped-def]
    """What the stored experiment's report asks of the rollups."""
    from abtest.models import Experiment

    return analysis.requests(pipeline.definition_of(session, session.get(Experiment, experiment_id)))


@pytest.mark.parametrize("chunk", [10_000, 7])
def test_incremental_refreshes_equal_a_full_rebuild(engine, session, monkeypatch, chunk):
    monkeypatch.setattr(rollup, "SQLITE_CHUNK", chunk)  # 7: SQLite refreshes in many small transactions
    monkeypatch.setattr(rollup, "SQLITE_PAUSE_S", 0.0)
    experiment_id = create(session, metrics=[
        {"name": "purchase", "type": "conversion", "primary": True},
        {"name": "revenue", "type": "mean", "event": "purchase"},
        {"name": "checkout-time", "type": "duration", "task": "checkout"}, RETENTION])
    measures = Measures.of(registry_definition(session, experiment_id))
    assert measures == Measures(("purchase",), ("checkout",), (3,))
    rng = random.Random(7)
    with engine.begin() as conn:
        write_events(conn, random_batch(rng, experiment_id, 300, 900))
    assert refresh(engine, experiment_id, measures).full == postgres(engine)  # never rolled up: built from all
    incremental = []
    for _ in range(6):  # small batches touch few units: recomputed one by one
        with engine.begin() as conn:
            write_events(conn, random_batch(rng, experiment_id, 300, 25))
        result = refresh(engine, experiment_id, measures)
        incremental.append(result)
    assert not any(r.full for r in incremental) and all(0 < r.units <= 25 for r in incremental)
    assert refresh(engine, experiment_id, measures) == Refreshed(0, False)
    assert snapshot(engine, experiment_id) == rebuilt(engine, experiment_id, measures)


def test_late_earlier_exposure_moves_the_start_and_reclassifies_conversions(engine, session):
    experiment_id = create(session)
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "exposure", "carol", "green", T0 + timedelta(hours=2)),
                             event(experiment_id, "conversion", "carol", None, T0 + timedelta(hours=1),
                                   event="purchase", value=9.0)])
    purchase = lambda: next(m for m in analyze(engine, "checkout-button").metrics if m.name == "purchase")  # noqa: E731
    assert purchase().variants[1].value == 0.0  # bought before the (known) exposure
    with engine.begin() as conn:  # an earlier exposure arrives late (offline client, clock skew)
        write_events(conn, [event(experiment_id, "exposure", "carol", "green", T0)])
    assert purchase().variants[1].value == 1.0


def test_changing_the_metrics_builds_only_the_new_measures(engine, session):
    experiment_id = create(session)
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "exposure", "dave", "control", T0),
                             event(experiment_id, "conversion", "dave", None, T0 + timedelta(hours=1), event="view"),
                             event(experiment_id, "conversion", "dave", None, T0 + timedelta(hours=2),
                                   event="purchase")]
                       + [event(experiment_id, "exposure", f"other-{i}", "green", T0) for i in range(9)])
    refresh(engine, experiment_id, Measures(("purchase",)))
    assert measured(engine) == [("dave", "purchase", 1)]
    with engine.begin() as conn:  # a batch arrives while the metrics are being edited
        write_events(conn, [event(experiment_id, "conversion", "dave", None, T0 + timedelta(hours=3), event="view")])
    result = refresh(engine, experiment_id, Measures(("view",), ("checkout",)))
    assert not result.full and result.units == 1
    assert measured(engine) == [("dave", "view", 2)]  # purchase dropped, view built, the new batch counted
    assert snapshot(engine, experiment_id) == rebuilt(engine, experiment_id, Measures(("view",), ("checkout",)))


def test_a_refresh_with_nothing_new_recomputes_nothing(engine, session):
    experiment_id = create(session)
    measures = Measures.of(registry_definition(session, experiment_id))
    assert refresh(engine, experiment_id, measures) == Refreshed(0, postgres(engine))  # the (empty) first build
    assert refresh(engine, experiment_id, measures) == Refreshed(0, False)
    with engine.connect() as conn:
        assert conn.execute(sa.select(STATE.c.fingerprint)).scalar_one() == measures.fingerprint()


@pytest.mark.parametrize("engine", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_refreshes_racing_concurrent_batches_lose_nothing(engine, session):
    """Writers and refreshers at once on PostgreSQL (where transactions really interleave): when
    the writers stop, one more refresh must leave exactly what a full rebuild gives."""
    experiment_id = create(session)
    measures = Measures.of(registry_definition(session, experiment_id))
    stop, errors = threading.Event(), []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(40):
                with engine.begin() as conn:
                    write_events(conn, random_batch(rng, experiment_id, 40, 10))  # few units: many collisions
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(repr(exc))

    def refresher() -> None:
        try:
            while not stop.is_set():
                refresh(engine, experiment_id, measures)
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    writers = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    refreshers = [threading.Thread(target=refresher) for _ in range(2)]
    for thread in writers + refreshers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in refreshers:
        thread.join()
    assert errors == []
    refresh(engine, experiment_id, measures)
    assert snapshot(engine, experiment_id) == rebuilt(engine, experiment_id, measures)



@pytest.mark.parametrize("engine", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_batch_committed_mid_refresh_keeps_its_mark(engine, session, monkeypatch):
    """The exact interleaving: a refresh has claimed a unit's mark and recomputed it, and only then
    does a batch for that unit commit. Its mark must survive, so the next refresh counts it."""
    experiment_id = create(session)
    measures = Measures.of(registry_definition(session, experiment_id))
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "exposure", "erin", "green", T0)])
    refresh(engine, experiment_id, measures)
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "exposure", "erin", "green", T0 + timedelta(hours=1))])

    original = rollup._recompute

    def recompute_then_a_batch_lands(*args, **kwargs):  # type: ignore[no-untyped-def]
        recomputed = original(*args, **kwargs)
        with engine.begin() as other:  # a second connection: commits while the refresh is still open
            write_events(other, [event(experiment_id, "conversion", "erin", None, T0 + timedelta(hours=2),
                                        event="purchase")])
        return recomputed

    monkeypatch.setattr(rollup, "_recompute", recompute_then_a_batch_lands)
    refresh(engine, experiment_id, measures)
    monkeypatch.setattr(rollup, "_recompute", original)
    with engine.connect() as conn:
        assert conn.execute(sa.select(DIRTY.c.unit)).scalars().all() == ["erin"]
    refresh(engine, experiment_id, measures)
    assert measured(engine) == [("erin", "purchase", 1)]


def test_a_report_reads_one_snapshot_while_another_refresh_commits(engine, session, monkeypatch):
    """The unit counts and the metric sums come from separate queries; a refresh committed by
    another request between them must not make them disagree (more buyers than units)."""
    import abtest.aggregates.rollup_sql as rollup_sql

    experiment_id = create(session, analysis="sequential")
    measures = Measures.of(registry_definition(session, experiment_id))
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "exposure", f"{v}-{i}", v, T0)
                             for v in ("control", "green") for i in range(3)])
    counted = rollup_sql.unit_counts

    def cohorts_then_more_traffic(conn, experiment_id_, *rest):  # type: ignore[no-untyped-def]
        cohorts = counted(conn, experiment_id_, *rest)
        with engine.begin() as other:
            write_events(other, [event(experiment_id, "exposure", f"new-{i}", "green", T0) for i in range(6)]
                          + [event(experiment_id, "conversion", f"new-{i}", None, T0 + timedelta(minutes=1),
                                   event="purchase") for i in range(6)])
        refresh(engine, experiment_id, measures)
        return cohorts

    monkeypatch.setattr(rollup_sql, "unit_counts", cohorts_then_more_traffic)
    report = pipeline.analyze(engine, "checkout-button")
    purchase = next(m for m in report.metrics if m.name == "purchase")
    assert [(v.n, v.value) for v in purchase.variants] == [(3, 0.0), (3, 0.0)]
    monkeypatch.setattr(rollup_sql, "unit_counts", counted)
    purchase = next(m for m in pipeline.analyze(engine, "checkout-button").metrics if m.name == "purchase")
    assert [(v.n, v.value) for v in purchase.variants] == [(3, 0.0), (9, 6 / 9)]


@pytest.mark.parametrize("engine", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_big_batch_is_one_statement_and_a_refresh_meanwhile_does_not_deadlock(engine, session):
    """1,500 rows, sorted by id carrying unit "z" before unit "a"; a refresh wants "a" then "z".
    Sent in several statements the dirty marks would be taken in several ascending runs, a lock
    cycle with the refresh; the batch must go out as one statement (unnest) whose trigger takes
    them in one run, and the refresh waits for it instead of deadlocking."""
    import time

    experiment_id = create(session)
    measures = Measures.of(registry_definition(session, experiment_id))
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "exposure", f"u{i:02d}", "control", T0) for i in range(20)]
                      + [event(experiment_id, "exposure", u, "control", T0) for u in ("a", "z")])
    refresh(engine, experiment_id, measures)
    with engine.begin() as conn:  # "a" and "z" dirty again
        write_events(conn, [event(experiment_id, "conversion", u, None, T0 + timedelta(hours=1), event="purchase")
                             for u in ("a", "z")])
    big = ([dict(event(experiment_id, "conversion", "z", None, T0, event="purchase"), event_id=f"0-{i:05d}")
            for i in range(1000)]
           + [dict(event(experiment_id, "conversion", "a", None, T0, event="purchase"), event_id=f"1-{i:05d}")
              for i in range(500)])
    between, errors, inserts = threading.Event(), [], []

    def report_meanwhile() -> None:
        between.wait(10)
        try:
            refresh(engine, experiment_id, measures)
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(repr(exc))

    thread = threading.Thread(target=report_meanwhile)
    thread.start()
    try:
        with engine.begin() as conn:
            @sa.event.listens_for(conn, "before_cursor_execute")
            def _meanwhile(conn_, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
                if statement.startswith("INSERT INTO events"):
                    inserts.append(statement)
                    between.set()  # the refresh starts while the batch is being written
                    time.sleep(0.5)
            write_events(conn, big)
    except Exception as exc:  # noqa: BLE001
        errors.append(repr(exc))
    between.set()
    thread.join()
    assert len(inserts) == 1 and errors == []
    refresh(engine, experiment_id, measures)
    assert snapshot(engine, experiment_id) == rebuilt(engine, experiment_id, measures)


@pytest.mark.postgres
def test_a_crash_empties_the_unlogged_rollups_and_the_next_report_rebuilds_them(own_postgres):
    """The rollup tables skip the write-ahead log (migration 0015): a crash empties them all, state
    rows included, and the first report after it rebuilds the same rows from the logged events."""
    url, crash_and_restart = own_postgres
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        experiment_id = create(session, metrics=[
            {"name": "purchase", "type": "conversion", "primary": True},
            {"name": "checkout-time", "type": "duration", "task": "checkout"}, RETENTION])
    with engine.begin() as conn:
        write_events(conn, random_batch(random.Random(3), experiment_id, 200, 800))
    now = T0 + timedelta(days=8)
    before = analyze(engine, "checkout-button", now=now)
    rows = snapshot(engine, experiment_id)
    assert rows[0] and rows[1]
    with engine.connect() as conn:  # committed rollups, and no dirty marks left: nothing to recompute
        assert conn.execute(sa.select(sa.func.count()).select_from(DIRTY)).scalar_one() == 0
    engine.dispose()
    crash_and_restart()
    with engine.connect() as conn:
        assert [conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (UNITS, MEASURES, DIRTY, STATE)] == [0, 0, 0, 0]
        assert conn.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar_one() == 800
    after = analyze(engine, "checkout-button", now=now)
    assert after == before
    assert snapshot(engine, experiment_id) == rows
    engine.dispose()
