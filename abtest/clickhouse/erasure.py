"""Erasure of one unit's events kept in ClickHouse (see :mod:`abtest.store.erasure`).

A lightweight ``DELETE`` (rows are masked at once and dropped at the next merge; reads, ``FINAL``
included, never see them again), after counting what it deletes per test. It runs before the
registry's own rows are deleted, so a failure leaves everything as it was. The unit's rows in
the units table (what the reports read, :mod:`abtest.clickhouse.schema`) go first: if deleting
the events then fails, they are still there to be counted and deleted by the retry, which deletes
the (already absent) unit rows again, harmlessly. They are deleted again after the events: an
event arriving between the two deletes would have left a row with no events behind.

On a cluster ``<db>.events`` is a Distributed table, which refuses a ``DELETE``: the statement
then names the shards' table, ``ON CLUSTER``. ClickHouse turns that into one replicated
``ALTER … UPDATE _row_exists = 0`` per shard (run by one replica, copied to the others) and
answers once every shard has done it (``lightweight_deletes_sync``, default: all replicas).
Where the rows are is read from the server (:func:`abtest.clickhouse.schema.shards_of`), so an
erasure follows the schema that exists."""

from __future__ import annotations

from collections.abc import Sequence

from abtest.clickhouse.client import ClickHouseClient
from abtest.clickhouse.schema import UNITS, Shards, shards_of, table


def held(client: ClickHouseClient, experiment_ids: Sequence[int], unit: str) -> dict[int, int]:
    """The unit's events per test (each event id once; through the Distributed table on a
    cluster, where each shard's FINAL is the whole answer: a unit's rows are on one shard)."""
    if not experiment_ids:
        return {}
    rows = client.query(f"SELECT experiment_id, count() FROM {table(client)} FINAL "
                        "WHERE unit = {u:String} AND experiment_id IN {ids:Array(UInt64)} GROUP BY experiment_id",
                        {"u": unit, "ids": list(experiment_ids)})
    return {int(e): int(n) for e, n in rows}


def delete_statement(events: str, shards: Shards | None = None) -> str:
    """The ``DELETE`` of one unit's rows in some tests: from ``events`` (or the units table) on one
    server, from the shards' table ``ON CLUSTER`` when ``shards`` says it is distributed."""
    target = events if shards is None else shards.target
    return f"DELETE FROM {target} WHERE unit = {{u:String}} AND experiment_id IN {{ids:Array(UInt64)}}"


def delete(client: ClickHouseClient, experiment_ids: Sequence[int], unit: str) -> None:
    if not experiment_ids:
        return
    params = {"u": unit, "ids": list(experiment_ids)}
    units = delete_statement(f"{client.database}.{UNITS}", shards_of(client, UNITS))
    client.command(units, params)
    client.command(delete_statement(table(client), shards_of(client)), params)
    client.command(units, params)  # a row the view made for an event that came in between
