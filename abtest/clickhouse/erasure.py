"""Erasure of one unit's events kept in ClickHouse (see :mod:`abtest.store.erasure`).

A lightweight ``DELETE`` (rows are masked at once and dropped at the next merge; reads, ``FINAL``
included, never see them again), after counting what it deletes per test. It runs before the
registry's own rows are deleted, so a failure leaves everything as it was."""

from __future__ import annotations

from collections.abc import Sequence

from abtest.clickhouse.client import ClickHouseClient
from abtest.clickhouse.schema import table


def held(client: ClickHouseClient, experiment_ids: Sequence[int], unit: str) -> dict[int, int]:
    """The unit's events per test (each event id once)."""
    if not experiment_ids:
        return {}
    rows = client.query(f"SELECT experiment_id, count() FROM {table(client)} FINAL "
                        "WHERE unit = {u:String} AND experiment_id IN {ids:Array(UInt64)} GROUP BY experiment_id",
                        {"u": unit, "ids": list(experiment_ids)})
    return {int(e): int(n) for e, n in rows}


def delete(client: ClickHouseClient, experiment_ids: Sequence[int], unit: str) -> None:
    if experiment_ids:
        client.command(f"DELETE FROM {table(client)} WHERE unit = {{u:String}} AND experiment_id IN {{ids:Array(UInt64)}}",
                       {"u": unit, "ids": list(experiment_ids)})
