"""The one write path stores every column exactly as given, on SQLite and PostgreSQL (where the
rows travel as one JSON parameter): times to the microsecond in UTC, floats bit for bit, text
with any character, None as SQL NULL except ``answers`` (JSON null, SQLAlchemy's JSON default),
duplicates skipped, and a value too long for its column refused rather than cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from abtest import pipeline
from abtest.models import Event
from abtest.store.events import event_row, store_new

EVENTS = Event.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 11, 30, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=-5)))


def _experiment_id(session, seeded_experiment) -> int:  # type: ignore[no-untyped-def]
    return pipeline.registry.find_row(session, seeded_experiment.key).id


def test_every_column_round_trips(engine, session, seeded_experiment):  # type: ignore[no-untyped-def]
    eid = _experiment_id(session, seeded_experiment)
    rows = [
        event_row(eid, "b-exposure", "exposure", "unit ✓ \"quoted\" \\ back", T0, variant="green", forced=True,
                  received_at=T0 + timedelta(seconds=1), attributes={"device": "mobile", "city": "Zürich"}),
        event_row(eid, "a-conversion", "conversion", "u2", T0, variant="control", event="purchase",
                  value=0.1 + 0.2),
        event_row(eid, "c-task", "task", "u3", T0, variant="control", task="checkout", success=False,
                  duration_ms=1e-300),
        event_row(eid, "d-response", "response", "u4", T0, variant="green", questionnaire="SEQ", task="t1",
                  answers=[7, 2.5, "fine, thanks 🙂"]),
    ]
    with engine.begin() as conn:
        assert store_new(conn, rows) == {"a-conversion", "b-exposure", "c-task", "d-response"}
        assert store_new(conn, rows[:2]) == set()  # stored once, however often sent
    with engine.connect() as conn:
        stored = {r.event_id: r for r in conn.execute(sa.select(EVENTS))}
        null_attributes = set(conn.execute(sa.select(EVENTS.c.event_id).where(EVENTS.c.attributes.is_(None))).scalars())
        sql_null_answers = set(conn.execute(sa.select(EVENTS.c.event_id).where(
            sa.cast(EVENTS.c.answers, sa.String).is_(None))).scalars())
    assert set(stored) == {"a-conversion", "b-exposure", "c-task", "d-response"}
    for row in rows:
        got = stored[row["event_id"]]
        for name in ("type", "experiment_id", "variant", "unit", "event", "value", "task", "success",
                     "duration_ms", "questionnaire", "answers", "attributes", "forced"):
            assert getattr(got, name) == row[name], name
        assert got.ts == T0 and got.ts.tzinfo == UTC
    assert stored["b-exposure"].received_at == T0 + timedelta(seconds=1)
    assert stored["a-conversion"].value == 0.30000000000000004  # every bit
    assert null_attributes == {"a-conversion", "c-task", "d-response"}  # SQL NULL, not JSON null
    assert sql_null_answers == set()  # JSON null, as SQLAlchemy's JSON type binds None


def test_a_value_too_long_for_its_column_is_refused_not_cut(engine, session, seeded_experiment):  # type: ignore[no-untyped-def]
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths (the API's validation does)")
    eid = _experiment_id(session, seeded_experiment)
    row = event_row(eid, "too-long", "exposure", "u" * 201, T0, variant="green")
    with pytest.raises(sa.exc.DataError), engine.begin() as conn:
        store_new(conn, [row])
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar() == 0
