"""Erasure of one unit's data (GDPR Art. 17): every row naming the unit, in one transaction.

A unit is a visitor id or a study participant id. :data:`TABLES` names every table holding one
(a test checks the models against it, so a new table cannot be forgotten): its events (which are
also its assignments: exposures), a study participant's progress, and the unit's rows in the
per-unit rollups, which are deleted directly (see :func:`abtest.aggregates.rollup.forget_unit`)
so the reports afterwards equal a rebuild from the remaining events.

The audit log gets one ``erase`` entry per test touched, with who asked and how many rows went,
but not the unit id: keeping it (or a hash of it, which anyone holding the id can recompute)
would keep exactly what was to be erased. Nothing stops the unit's browser from sending new
events afterwards (its id lives in a cookie there); those are stored as new data. Events kept in
ClickHouse are deleted there first (:mod:`abtest.clickhouse.erasure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from abtest.aggregates import rollup
from abtest.clickhouse import erasure as clickhouse_erasure
from abtest.checks import KEY_PATTERN
from abtest.errors import NotFound, ValidationError
from abtest.models import Event, Experiment, StudyParticipant
from abtest.store import audit, registry
from abtest.store.target import clickhouse_of

EVENTS = Event.__table__  # type: ignore[attr-defined]
PARTICIPANTS = StudyParticipant.__table__  # type: ignore[attr-defined]
# table -> its column holding unit ids
TABLES: dict[str, str] = {"events": "unit", "study_participants": "pid", "rollup_units": "unit",
                          "rollup_measures": "unit", "rollup_dirty": "unit"}
MAX_UNIT = 200  # the unit columns' length


@dataclass(frozen=True, slots=True)
class Erasure:
    """Rows deleted, per test touched (by key) and table."""

    deleted: dict[str, dict[str, int]]

    def totals(self) -> dict[str, int]:
        return {table: sum(counts.get(table, 0) for counts in self.deleted.values()) for table in TABLES}

    def to_dict(self) -> dict[str, Any]:
        return {"deleted": self.totals(), "experiments": self.deleted}


def check_unit(unit: str) -> str:
    if not 1 <= len(unit) <= MAX_UNIT:
        raise ValidationError(f"a unit id is 1-{MAX_UNIT} characters", field="unit")
    return unit


def forget(engine: sa.Engine, unit: str, experiment: str | None = None, actor: str = "") -> Erasure:
    """Delete every row of ``unit`` (in one test, or in all), record the erasure per test touched,
    and answer what was deleted. A unit nothing is stored for answers zeros (asking twice is safe);
    an unknown ``experiment`` is a NotFound naming it."""
    check_unit(unit)
    if experiment is not None and not KEY_PATTERN.fullmatch(experiment):
        # No stored key looks like it, and PostgreSQL refuses to even compare one holding NUL.
        raise NotFound(f"no experiment with key {experiment!r}", field="experiment")
    clickhouse = clickhouse_of(engine)
    with Session(engine, expire_on_commit=False) as session:
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            # The write lock from the first statement: the lookups below then see what is deleted.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        rows = ([registry.get_row(session, experiment)] if experiment is not None
                else list(session.exec(select(Experiment).order_by(Experiment.id)).all()))
        ids = [r.id for r in rows]
        elsewhere = {} if clickhouse is None else clickhouse_erasure.held(clickhouse, ids, unit)
        touched = [row for row in rows if row.id in _holding(conn, ids, unit) | set(elsewhere)]
        if clickhouse is not None:  # first: if ClickHouse refuses, nothing is deleted anywhere
            clickhouse_erasure.delete(clickhouse, [row.id for row in touched], unit)
        held = rollup.hold(conn, [row.id for row in touched])
        deleted = {}
        for row in touched:
            counts = rollup.forget_unit(conn, row.id, unit, held[row.id])  # its dirty mark before its events
            counts["events"] = (conn.execute(EVENTS.delete().where(*_events_of(row.id, unit))).rowcount
                                + elsewhere.get(row.id, 0))
            counts["study_participants"] = conn.execute(PARTICIPANTS.delete().where(
                PARTICIPANTS.c.experiment_id == row.id, PARTICIPANTS.c.pid == unit)).rowcount
            deleted[row.key] = {table: counts[table] for table in TABLES}
            audit.record(session, row, "erase", actor, {"deleted": deleted[row.key]})
        session.commit()
    return Erasure(deleted)


def _events_of(experiment_ids: int | list[int], unit: str) -> tuple[sa.ColumnElement[bool], ...]:
    """The unit's events, spelled so the (experiment, type, unit) index finds them (every type named)."""
    ids = [experiment_ids] if isinstance(experiment_ids, int) else experiment_ids
    return (EVENTS.c.experiment_id.in_(ids), EVENTS.c.type.in_(rollup.EVENT_TYPES), EVENTS.c.unit == unit)


def _holding(conn: sa.Connection, experiment_ids: list[int], unit: str) -> set[int]:
    """The tests with any row of ``unit`` (rollup measures exist only beside a rollup unit row)."""
    if not experiment_ids:
        return set()
    lookups = [sa.select(EVENTS.c.experiment_id).where(*_events_of(experiment_ids, unit)),
               sa.select(PARTICIPANTS.c.experiment_id).where(PARTICIPANTS.c.experiment_id.in_(experiment_ids),
                                                            PARTICIPANTS.c.pid == unit)]
    for table in (rollup.UNITS, rollup.DIRTY):
        lookups.append(sa.select(table.c.experiment_id).where(table.c.experiment_id.in_(experiment_ids),
                                                             table.c.unit == unit))
    return {experiment_id for (experiment_id,) in conn.execute(sa.union(*lookups))}
