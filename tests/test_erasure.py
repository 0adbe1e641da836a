"""Erasure of one unit (GDPR Art. 17): every row naming it goes, in one transaction, and the
reports afterwards are exactly what a fresh database holding only the remaining events gives.

The yardstick is that fresh database (a new SQLite file, or a new PostgreSQL database on the same
server): the same definitions, the remaining events copied over, its rollups built from nothing.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session, SQLModel, select

from abtest import pipeline
from abtest.accounts import create_token
from abtest.aggregates import rollup
from abtest.db import make_engine, upgrade
from abtest.errors import NotFound, ValidationError
from abtest.kinds import parse_definition
from abtest.models import AuditEntry, StudyParticipant
from abtest.store.erasure import TABLES, forget
from abtest.store.events import write_events
from abtest.studies import runner
from tests.study_helpers import store_study
from tests.test_analysis import event

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=10)
ALICE = "alice.erase-me@example.com"  # a unit id that is personal data, as they often are
CHECKOUT = {"key": "checkout-button", "status": "running", "analysis": "fixed", "plan": {"units_per_variant": 100},
            "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}],
            "metrics": [{"name": "purchase", "type": "conversion", "primary": True},
                        {"name": "revenue", "type": "mean", "event": "purchase"},
                        {"name": "checkout-time", "type": "duration", "task": "checkout"},
                        {"name": "back", "type": "retention", "days": 3}]}
SEARCH = {**CHECKOUT, "key": "search-ranking", "metrics": [{"name": "click", "type": "conversion", "primary": True}]}


def store(session: Session, raw: dict[str, Any]) -> int:
    row = pipeline.create(session, parse_definition(raw))
    session.commit()
    assert row.id is not None
    return row.id


def traffic(experiment_id: int, seed: int, units: int = 60) -> list[dict[str, Any]]:
    """Exposures, purchases with values, timed checkouts and returns of random units."""
    rng, rows = random.Random(seed), []
    for i in range(units):
        unit, variant = f"u{seed}-{i}", rng.choice(["control", "green"])
        start = T0 + timedelta(minutes=rng.randrange(600))
        rows.append(event(experiment_id, "exposure", unit, variant, start))
        for _ in range(rng.randrange(3)):
            rows.append(event(experiment_id, "conversion", unit, variant, start + timedelta(hours=rng.randrange(-2, 90)),
                              event=rng.choice(["purchase", "click"]), value=round(rng.uniform(1, 50), 2)))
        if rng.random() < 0.6:
            rows.append(event(experiment_id, "task", unit, variant, start + timedelta(minutes=5), task="checkout",
                              success=rng.random() < 0.8, duration_ms=rng.uniform(5_000, 90_000)))
    return rows


def alice(experiment_id: int, variant: str = "green") -> list[dict[str, Any]]:
    """Alice's events in one experiment: an exposure, two purchases, a timed checkout, a return after 4 days."""
    return [event(experiment_id, "exposure", ALICE, variant, T0),
            event(experiment_id, "conversion", ALICE, variant, T0 + timedelta(hours=1), event="purchase", value=20.0),
            event(experiment_id, "conversion", ALICE, variant, T0 + timedelta(hours=2), event="purchase", value=5.0),
            event(experiment_id, "task", ALICE, variant, T0 + timedelta(minutes=3), task="checkout", success=True,
                  duration_ms=42_000.0),
            event(experiment_id, "exposure", ALICE, variant, T0 + timedelta(days=4))]


def write(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        write_events(conn, rows)


def report(engine: sa.Engine, key: str) -> dict[str, Any]:
    """The results document, floats rounded (sums may be added in another order)."""
    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.9g}")
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value
    return rounded(pipeline.analyze(engine, key, now=NOW).to_dict())


def rows_of(engine: sa.Engine, table: sa.Table, **where: Any) -> list[tuple[Any, ...]]:
    """A table's rows without the experiment's id (it differs between databases), floats rounded."""
    query = sa.select(*[c for c in table.c if c.name not in ("experiment_id", "id")])
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    with engine.connect() as conn:
        found = conn.execute(query).all()
    return sorted((tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in found), key=repr)


def unit_rows(engine: sa.Engine, unit: str) -> dict[str, int]:
    """Rows naming ``unit``, per table that holds unit ids."""
    out = {}
    with engine.connect() as conn:
        for name, column in TABLES.items():
            table = SQLModel.metadata.tables[name]
            out[name] = conn.execute(sa.select(sa.func.count()).select_from(table)
                                     .where(table.c[column] == unit)).scalar_one()
    return out


@pytest.fixture
def fresh(engine: sa.Engine, tmp_path) -> Iterator[sa.Engine]:  # type: ignore[no-untyped-def]
    """Another empty, migrated database of the same backend."""
    if engine.dialect.name == "sqlite":
        other = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        upgrade(other)
        yield other
        other.dispose()
        return
    name = f"abtest_fresh_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    other = make_engine(engine.url.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(other)
        yield other
    finally:
        other.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def copy_events(source: sa.Engine, target: sa.Engine, ids: dict[int, int]) -> None:
    """Every event of ``source`` into ``target``, experiment ids mapped, in the original order."""
    events = rollup.EVENTS
    with source.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(sa.select(events).order_by(events.c.id))]
    for row in found:
        del row["id"]
        row["experiment_id"] = ids[row["experiment_id"]]
    write(target, found)


def test_every_table_holding_unit_ids_is_erased():
    """A new table with a unit or participant id column must join the erasure (TABLES)."""
    holding = {name: column.name for name, table in SQLModel.metadata.tables.items() for column in table.c
               if column.name in ("unit", "pid", "participant", "visitor")}
    assert holding == TABLES


def test_after_forgetting_the_report_is_what_a_fresh_database_of_the_remaining_events_gives(engine, session, fresh):
    checkout, search = store(session, CHECKOUT), store(session, SEARCH)
    write(engine, traffic(checkout, 1) + traffic(search, 2) + alice(checkout) + alice(search, "control"))
    before = report(engine, "checkout-button")  # rollups built with Alice in them
    report(engine, "search-ranking")
    assert before["units"]["green"] == len([r for r in traffic(checkout, 1)
                                            if r["type"] == "exposure" and r["variant"] == "green"]) + 1
    # A late purchase after the report: Alice is also marked dirty when she is forgotten.
    write(engine, [event(checkout, "conversion", ALICE, "green", T0 + timedelta(days=5), event="purchase", value=1.0)])

    erased = forget(engine, ALICE, actor="test")

    assert erased.to_dict() == {
        "deleted": {"events": 11, "study_participants": 0, "rollup_units": 2, "rollup_measures": 3, "rollup_dirty": 1},
        # checkout: purchases, checkout time and return measured; search: a unit row only (its one
        # metric counts clicks, and Alice's purchases are not clicks)
        "experiments": {
            "checkout-button": {"events": 6, "study_participants": 0, "rollup_units": 1, "rollup_measures": 3,
                                "rollup_dirty": 1},
            "search-ranking": {"events": 5, "study_participants": 0, "rollup_units": 1, "rollup_measures": 0,
                               "rollup_dirty": 0}}}
    assert unit_rows(engine, ALICE) == dict.fromkeys(TABLES, 0)

    with Session(fresh) as other:
        ids = {checkout: store(other, CHECKOUT), search: store(other, SEARCH)}
    copy_events(engine, fresh, ids)
    for key in ("checkout-button", "search-ranking"):
        after, expected = report(engine, key), report(fresh, key)
        assert after == expected
    assert after != before
    for table in (rollup.UNITS, rollup.MEASURES):
        assert rows_of(engine, table) == rows_of(fresh, table)
    with engine.connect() as conn, fresh.connect() as other_conn:
        state = sa.select(rollup.STATE.c.units).order_by(rollup.STATE.c.experiment_id)
        assert conn.execute(state).scalars().all() == other_conn.execute(state).scalars().all()


def test_forgetting_in_one_experiment_leaves_the_others(engine, session):
    checkout, search = store(session, CHECKOUT), store(session, SEARCH)
    write(engine, alice(checkout) + alice(search))
    report(engine, "search-ranking")
    erased = forget(engine, ALICE, "search-ranking")
    assert set(erased.deleted) == {"search-ranking"} and erased.totals()["events"] == 5
    with engine.connect() as conn:
        left = conn.execute(sa.select(rollup.EVENTS.c.experiment_id).where(rollup.EVENTS.c.unit == ALICE)).scalars()
        assert set(left) == {checkout}
    assert report(engine, "search-ranking")["units"] == {"control": 0, "green": 0}
    assert report(engine, "checkout-button")["units"]["green"] == 1


def test_a_study_participant_is_forgotten_with_their_progress(engine, session):
    store_study(session)
    runner.join(engine, "checkout-study", ALICE)
    runner.start_task(engine, "checkout-study", ALICE, 0)
    runner.end_task(engine, "checkout-study", ALICE, 0, gave_up=False)
    runner.join(engine, "checkout-study", "bob")
    assert pipeline.analyze(engine, "checkout-study").to_dict()["units"] in ({"current": 1, "new": 1},
                                                                              {"current": 2, "new": 0},
                                                                              {"current": 0, "new": 2})
    erased = forget(engine, ALICE).totals()
    assert erased["study_participants"] == 1 and erased["events"] == 2  # exposure and task
    assert unit_rows(engine, ALICE) == dict.fromkeys(TABLES, 0)
    assert sum(pipeline.analyze(engine, "checkout-study").to_dict()["units"].values()) == 1
    with Session(engine) as check:
        assert [p.pid for p in check.exec(select(StudyParticipant)).all()] == ["bob"]
    assert runner.join(engine, "checkout-study", "carol").number == 3  # arrival numbers stay unique


def test_the_audit_log_records_each_erasure_without_the_unit(engine, session):
    checkout, search = store(session, CHECKOUT), store(session, SEARCH)
    write(engine, alice(checkout) + traffic(search, 3))
    forget(engine, ALICE, actor="API token sk_ab12…")
    with Session(engine) as check:
        history = pipeline.history(check, "checkout-button")
        assert history[0]["action"] == "erase" and history[0]["actor"] == "API token sk_ab12…"
        assert history[0]["changes"]["deleted"]["events"] == 5
        assert [e["action"] for e in pipeline.history(check, "search-ranking")] == ["create"]  # not touched
        stored = json.dumps([(e.actor, e.action, e.changes) for e in check.exec(select(AuditEntry)).all()])
    assert ALICE not in stored and "alice" not in stored


def test_forgetting_a_unit_nothing_is_stored_for_answers_zeros(engine, session):
    store(session, CHECKOUT)
    assert forget(engine, "nobody").to_dict() == {"deleted": dict.fromkeys(TABLES, 0), "experiments": {}}
    with pytest.raises(NotFound) as missing:
        forget(engine, "nobody", "no-such-test")
    assert missing.value.field == "experiment"
    with pytest.raises(ValidationError) as empty:
        forget(engine, "")
    assert empty.value.field == "unit"


def test_a_refresh_in_flight_cannot_write_the_forgotten_unit_back(engine, session, monkeypatch):
    """The erasure waits for a running refresh (their turns are the rollup state row): rows the
    refresh computed from Alice's events before they were deleted must not survive."""
    checkout = store(session, CHECKOUT)
    write(engine, traffic(checkout, 4) + alice(checkout))
    computed, release = threading.Event(), threading.Event()
    original = rollup._recompute

    def recompute_then_wait(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = original(*args, **kwargs)
        computed.set()
        release.wait(10)
        return out

    monkeypatch.setattr(rollup, "_recompute", recompute_then_wait)
    refreshing = threading.Thread(target=lambda: report(engine, "checkout-button"))
    refreshing.start()
    assert computed.wait(10)
    erasing = threading.Thread(target=lambda: forget(engine, ALICE))
    erasing.start()
    time.sleep(0.5)  # the erasure is now waiting for the refresh's turn
    release.set()
    refreshing.join(20)
    erasing.join(20)
    monkeypatch.setattr(rollup, "_recompute", original)
    assert unit_rows(engine, ALICE) == dict.fromkeys(TABLES, 0)
    assert report(engine, "checkout-button")["units"] == {
        v: len([r for r in traffic(checkout, 4) if r["type"] == "exposure" and r["variant"] == v])
        for v in ("control", "green")}


# --- the API and the command line --------------------------------------------------------------


def test_the_api_erases_with_a_secret_token_only(client, session, engine):
    checkout = store(session, CHECKOUT)
    write(engine, alice(checkout) + [event(checkout, "exposure", "a/b", "green", T0)])
    secret, public = create_token(session, "secret", "dpo").secret, create_token(session, "public", "site").secret
    session.commit()
    url = f"/api/v1/units/{ALICE}"
    assert client.delete(url, headers={"Authorization": f"Bearer {public}"}).status_code == 403
    assert client.delete(url).status_code == 401
    sk = {"Authorization": f"Bearer {secret}"}
    missing = client.delete(url + "?experiment=no-such-test", headers=sk)
    assert missing.status_code == 404 and missing.get_json()["error"]["field"] == "experiment"
    response = client.delete(url + "?experiment=checkout-button", headers=sk)
    assert response.status_code == 200
    assert response.get_json()["experiments"]["checkout-button"]["events"] == 5
    assert client.delete(url, headers=sk).get_json()["deleted"]["events"] == 0  # asking twice is safe
    assert client.delete("/api/v1/units/a%2Fb", headers=sk).get_json()["deleted"]["events"] == 1
    too_long = client.delete("/api/v1/units/" + "x" * 201, headers=sk)
    assert too_long.status_code == 422 and too_long.get_json()["error"]["field"] == "unit"
    with Session(engine) as check:
        assert pipeline.history(check, "checkout-button")[0]["actor"].startswith("API token sk_")


def test_the_command_erases_and_prints_what_it_deleted(cli_env, engine, session):
    from web.cli import main

    checkout = store(session, CHECKOUT)
    write(engine, alice(checkout))
    result = CliRunner().invoke(main, ["units", "forget", ALICE, "--experiment", "checkout-button"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deleted"]["events"] == 5
    unknown = CliRunner().invoke(main, ["units", "forget", ALICE, "--experiment", "no-such-test"])
    assert unknown.exit_code == 1 and "experiment" in unknown.output


def test_an_experiment_key_no_test_could_have_is_not_found(engine):
    """Found by the API fuzzer: ?experiment=%00 reached PostgreSQL, which refuses NUL in a query."""
    for key in ("\x00", "Not A Key", "x" * 300):
        with pytest.raises(NotFound) as missing:
            forget(engine, "alice", key)
        assert missing.value.field == "experiment"
