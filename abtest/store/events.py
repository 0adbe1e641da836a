"""The one write path for events: every writer builds its rows with :func:`event_row` and stores
them with :func:`write_events` (the API batch, ``/assign``, the study runner, the demo, bulk loads).

Why one path: the idempotency promise (an id stored once however often it is sent) and the
lock order that keeps concurrent batches from deadlocking live here and nowhere else, and the
rollup trigger sees every row the same way. With ``ABTEST_EVENTS_URL`` naming ClickHouse the
rows go to its sink instead (:mod:`abtest.clickhouse.sink`), with the same promise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from abtest.clickhouse import sink
from abtest.db import dialect_insert
from abtest.models import Event, RollupDirty
from abtest.store.target import clickhouse_of

EVENTS = Event.__table__  # type: ignore[attr-defined]
COLUMNS = ("event_id", "type", "experiment_id", "variant", "unit", "event", "value", "task", "success",
           "duration_ms", "questionnaire", "answers", "attributes", "forced", "ts", "received_at")
_OPTIONAL = ("event", "value", "task", "success", "duration_ms", "questionnaire", "answers", "attributes")
MAX_DURATION_MS = 24 * 3600 * 1000  # a task timed for over a day is a stuck timer, not a measurement
DIRTY = RollupDirty.__table__  # type: ignore[attr-defined]


def event_row(experiment_id: int, event_id: str, type_: str, unit: str, ts: datetime, *,
              variant: str | None = None, forced: bool = False, received_at: datetime | None = None,
              attributes: Mapping[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """One stored event. ``fields`` are the type's own (event/value, task/success/duration_ms,
    questionnaire/answers); anything else is a programming error, refused here."""
    unknown = set(fields) - set(_OPTIONAL)
    if unknown:
        raise TypeError(f"not an event column: {', '.join(sorted(unknown))}")
    row = {name: None for name in _OPTIONAL}
    row.update(fields)
    row.update(event_id=event_id, type=type_, experiment_id=experiment_id, variant=variant, unit=unit,
               forced=forced, ts=ts, received_at=received_at or ts,
               attributes=dict(attributes) if attributes else None)
    return row


def write_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """Insert event rows in the caller's transaction, skipping ids already stored; returns how
    many were new.

    ``INSERT … ON CONFLICT (event_id) DO NOTHING RETURNING``: the unique constraint, not a
    read-then-write check, decides what is a duplicate, so two racing requests carrying the same
    ids store each once. One cached statement executed with many parameter sets (SQLAlchemy's
    "insertmanyvalues" keeps RETURNING): a multi-row VALUES statement compiled per request was
    measured 2-3x slower.
    """
    if not rows:
        return 0
    clickhouse = clickhouse_of(conn.engine)
    if clickhouse is not None:  # ABTEST_EVENTS_URL: the events live in ClickHouse
        return sink.write(clickhouse, rows)
    statement = dialect_insert(conn, EVENTS).on_conflict_do_nothing(index_elements=["event_id"]).returning(
        EVENTS.c.event_id)
    if conn.dialect.name == "postgresql" and len(rows) > conn.dialect.insertmanyvalues_page_size:
        mark_dirty_first(conn, {(row["experiment_id"], row["unit"]) for row in rows})  # several statements follow
    # Every writer takes the unique-index locks in the same (id) order, so two requests carrying
    # overlapping ids wait for each other instead of deadlocking.
    return len(conn.execute(statement, sorted(rows, key=lambda row: row["event_id"])).all())


def first_exposures(conn: sa.Connection, experiment_id: int, units: set[str]) -> dict[str, datetime]:
    """Each unit's earliest stored exposure in one experiment (units never exposed are absent)."""
    clickhouse = clickhouse_of(conn.engine)
    if clickhouse is not None:
        return sink.first_exposures(clickhouse, experiment_id, units)
    e = EVENTS.c
    out: dict[str, datetime] = {}
    ordered = sorted(units)
    for start in range(0, len(ordered), 500):  # bounded IN lists
        query = (sa.select(e.unit, sa.func.min(e.ts)).where(e.experiment_id == experiment_id, e.type == "exposure",
                                                             e.unit.in_(ordered[start:start + 500])).group_by(e.unit))
        out.update({unit: ts for unit, ts in conn.execute(query)})  # UTCDateTime: aware UTC on both backends
    return out


def exposure_id(experiment: str, variant: str, unit: str, forced: bool) -> str:
    """A deterministic id for server-recorded exposures: a unit's repeated exposures store once."""
    digest = hashlib.sha256(f"{experiment}\x00{variant}\x00{int(forced)}\x00{unit}".encode()).hexdigest()
    return "srv_" + digest[:40]


def mark_dirty_first(conn: sa.Connection, units: set[tuple[int, str]]) -> None:
    """Take the rollup dirty marks of a multi-statement batch up front, in one ascending pass.

    The PostgreSQL trigger (migration 0004) marks units statement by statement, each in key
    order; a batch that SQLAlchemy splits into several statements would take them in several
    ascending runs, and a rollup refresh (or another big batch) taking them in one run can then
    wait on it in a cycle. Marking them all first means the trigger only re-takes locks this
    transaction already holds.
    """
    ordered = sorted(units)
    for start in range(0, len(ordered), 5000):  # bounded statement size; still ascending overall
        chunk = ordered[start:start + 5000]
        conn.execute(postgresql.insert(DIRTY).values([{"experiment_id": e, "unit": u, "version": 1} for e, u in chunk])
                     .on_conflict_do_update(index_elements=[DIRTY.c.experiment_id, DIRTY.c.unit],
                                            set_={"version": DIRTY.c.version + 1}))
