"""The ClickHouse sink of the one write path (:func:`abtest.store.events.write_events`).

A batch is one synchronous bulk insert (JSONCompactEachRow over HTTP, or into the embedded engine):
the call returns only after ClickHouse wrote the rows, so a 202 built on it means they are
stored; any failure raises :class:`~abtest.clickhouse.client.EventsUnavailable`, a 503. Ids
already stored are looked up first and skipped (see :mod:`abtest.clickhouse.schema` for the
whole idempotency story).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from abtest.clickhouse.client import ClickHouseClient, dumps
from abtest.clickhouse.schema import COLUMNS, table

LOOKUP_CHUNK = 5_000  # ids per lookup query


def stored_ids(client: ClickHouseClient, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are already in the table (any experiment: ids are unique, as on SQL)."""
    found: set[str] = set()
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        found.update(r[0] for r in client.query(
            f"SELECT DISTINCT event_id FROM {table(client)} WHERE event_id IN {{ids:Array(String)}}",
            {"ids": ordered[start:start + LOOKUP_CHUNK]}))
    return found


def _time(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite rows read back without the stored type: UTC by convention
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]  # strftime takes twice as long


def line(row: dict[str, Any]) -> str:
    """One event row (as :func:`abtest.store.events.event_row` builds it) as an insert line: its
    values in :data:`~abtest.clickhouse.schema.COLUMNS` order (:data:`~abtest.clickhouse.client.FORMAT`)."""
    out = {name: row.get(name) for name in COLUMNS}
    out["ts"], out["received_at"] = _time(row["ts"]), _time(row.get("received_at") or row["ts"])
    out["attributes"] = dict(row.get("attributes") or {})
    out["forced"] = bool(row.get("forced"))
    answers = row.get("answers")
    out["answers"] = None if answers is None else answers if isinstance(answers, str) else json.dumps(answers)
    return dumps(list(out.values()))


def write(client: ClickHouseClient, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the rows whose ids are not stored yet (first of each id in the batch); returns the
    ids that were new."""
    if not rows:
        return set()
    known = stored_ids(client, [row["event_id"] for row in rows])
    fresh: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["event_id"] not in known and row["event_id"] not in fresh:
            fresh[row["event_id"]] = row
    client.insert_json(table(client), COLUMNS, [line(row) for row in fresh.values()])
    return set(fresh)


def first_exposures(client: ClickHouseClient, experiment_id: int, units: set[str]) -> dict[str, datetime]:
    """Each unit's earliest stored exposure (min over duplicates needs no FINAL)."""
    if not units:
        return {}
    rows = client.query(
        f"SELECT unit, min(ts) FROM {table(client)} WHERE experiment_id = {{e:UInt64}} AND type = 'exposure' "
        "AND unit IN {units:Array(String)} GROUP BY unit", {"e": experiment_id, "units": sorted(units)})
    return {unit: ts for unit, ts in rows}
