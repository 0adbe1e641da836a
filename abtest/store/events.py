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

from abtest.clickhouse import sink
from abtest.clickhouse.client import dumps
from abtest.db import dialect_insert
from abtest.models import Event
from abtest.store.target import clickhouse_of

EVENTS = Event.__table__  # type: ignore[attr-defined]
COLUMNS = ("event_id", "type", "experiment_id", "variant", "unit", "event", "value", "task", "success",
           "duration_ms", "questionnaire", "answers", "attributes", "forced", "ts", "received_at")
_OPTIONAL = ("event", "value", "task", "success", "duration_ms", "questionnaire", "answers", "attributes")
MAX_DURATION_MS = 24 * 3600 * 1000  # a task timed for over a day is a stuck timer, not a measurement


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
    many were new (see :func:`store_new`)."""
    return len(store_new(conn, rows))


def store_new(conn: sa.Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert event rows in the caller's transaction, skipping ids already stored; returns the
    ids that were new (a group of requests written together is told apart by them).

    ``INSERT … ON CONFLICT (event_id) DO NOTHING RETURNING``: the unique constraint, not a
    read-then-write check, decides what is a duplicate, so two racing requests carrying the same
    ids store each once. On SQLite one cached statement executed with many parameter sets
    (SQLAlchemy's "insertmanyvalues" keeps RETURNING): a multi-row VALUES statement compiled per
    request was measured 2-3x slower. On PostgreSQL one statement with the rows as one JSON parameter
    (:func:`_write_postgres`).
    """
    if not rows:
        return set()
    clickhouse = clickhouse_of(conn.engine)
    if clickhouse is not None:  # ABTEST_EVENTS_URL: the events live in ClickHouse
        return sink.write(clickhouse, rows)
    if conn.dialect.name == "postgresql":
        return _write_postgres(conn, rows)
    statement = dialect_insert(conn, EVENTS).on_conflict_do_nothing(index_elements=["event_id"]).returning(
        EVENTS.c.event_id)
    # Every writer takes the unique-index locks in the same (id) order, so two requests carrying
    # overlapping ids wait for each other instead of deadlocking.
    return set(conn.execute(statement, sorted(rows, key=lambda row: row["event_id"])).scalars())


def _write_postgres(conn: sa.Connection, rows: list[dict[str, Any]]) -> set[str]:
    """PostgreSQL: one statement whatever the batch size, the rows sent as one JSON parameter (an
    array of arrays in :data:`COLUMNS` order, made by the standard library's C encoder through
    :func:`abtest.clickhouse.client.dumps`) and taken
    apart by ``json_array_elements`` (``INSERT … SELECT … FROM json_array_elements(…) WITH
    ORDINALITY ORDER BY``).

    Why: SQLAlchemy's insertmanyvalues sends pages of 1,000-row VALUES lists that psycopg re-parses
    in Python (about 0.2 ms per row, measured with the demo's 26 k events: 7.9 s against 1.1 s on
    SQLite), and a batch split into pages takes its locks in several ascending runs. Sixteen array
    parameters (``unnest``) made one statement, but psycopg dumps arrays element by element in
    Python: 11 % of an ingest worker's CPU under load (py-spy), more than the JSON encoding that
    replaces it. The ordinality keeps the id order, so the unique-index locks and the rollup
    trigger's dirty marks are still taken in one ascending run.
    """
    ordered = sorted(rows, key=lambda row: row["event_id"])
    # Compact, NaN and infinity refused (the API refused them already; a bulk writer's would
    # otherwise become invalid JSON that PostgreSQL rejects with a less helpful message).
    payload = dumps([[_json_value(row.get(name, _DEFAULTS.get(name)), conn.dialect) for name in COLUMNS]
                     for row in ordered])
    return set(conn.execute(_postgres_statement(conn.dialect), {"rows": payload}).scalars())


def _json_value(value: Any, dialect: sa.Dialect) -> Any:
    """A row value as JSON: times as ISO 8601 in UTC, through the column type's own check and
    conversion (``timestamptz`` parses them back exactly), the rest as they are (numbers, strings,
    booleans, None, the JSON columns' lists and dicts)."""
    if isinstance(value, datetime):
        return _UTC.process_bind_param(value, dialect).isoformat()  # type: ignore[union-attr]
    return value


_UTC = EVENTS.c.ts.type  # abtest.models.UTCDateTime: refuses naive times, converts to UTC


_DEFAULTS = {c.name: c.default.arg for c in EVENTS.c if c.default is not None and c.default.is_scalar}
_STATEMENTS: dict[str, sa.TextClause] = {}


def _postgres_statement(dialect: sa.Dialect) -> sa.TextClause:
    if dialect.name not in _STATEMENTS:
        columns = ", ".join(COLUMNS)
        values = ", ".join(_from_json(dialect, name, i) for i, name in enumerate(COLUMNS))
        _STATEMENTS[dialect.name] = sa.text(
            f"INSERT INTO {EVENTS.name} ({columns}) SELECT {values} "
            "FROM json_array_elements(CAST(:rows AS json)) WITH ORDINALITY AS batch(e, n) ORDER BY n "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
    return _STATEMENTS[dialect.name]


def _from_json(dialect: sa.Dialect, name: str, index: int) -> str:
    """The SQL that reads column ``name`` out of a row's JSON array ``e``, as the column's type.

    ``e->>i`` is SQL NULL for a JSON null, which is what every column but ``answers`` stores for
    None; ``answers`` keeps the JSON ``null`` (``e->i``), as SQLAlchemy's JSON type binds it
    (``none_as_null`` is off for it, on for ``attributes``).
    """
    column_type = EVENTS.c[name].type
    if isinstance(column_type, sa.JSON) and not column_type.none_as_null:
        return f"e->{index}"
    impl = column_type.dialect_impl(dialect)
    if isinstance(impl, sa.TypeDecorator):
        impl = impl.impl_instance
    if isinstance(impl, sa.String):
        impl = sa.String()  # no length: a cast to VARCHAR(64) would cut a longer value silently,
        # where the insert's own assignment refuses it
    return f"CAST(e->>{index} AS {impl.compile(dialect=dialect)})"


# One index lookup per unit, whatever the planner believes: written as ``unit IN (…)`` the lookup
# used only (experiment_id, type) of the index and filtered the units, while the table had no
# statistics yet (a fresh database's first minute; every benchmark run): 26 ms a batch, the most
# expensive statement of the ingest path under load (pg_stat_statements), against 0.06 ms.
_FIRST_EXPOSURES_PG = sa.text(
    "SELECT u.unit, (SELECT min(e.ts) FROM events e WHERE e.experiment_id = :experiment_id "
    "AND e.type = 'exposure' AND e.unit = u.unit) FROM unnest(CAST(:units AS varchar[])) AS u(unit)"
).columns(sa.column("unit", sa.String), sa.column("ts", EVENTS.c.ts.type))


def first_exposures(conn: sa.Connection, experiment_id: int, units: set[str]) -> dict[str, datetime]:
    """Each unit's earliest stored exposure in one experiment (units never exposed are absent)."""
    clickhouse = clickhouse_of(conn.engine)
    if clickhouse is not None:
        return sink.first_exposures(clickhouse, experiment_id, units)
    if conn.dialect.name == "postgresql":
        rows = conn.execute(_FIRST_EXPOSURES_PG, {"experiment_id": experiment_id, "units": sorted(units)})
        return {unit: ts for unit, ts in rows if ts is not None}
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
