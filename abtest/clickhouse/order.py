"""Quantile and threshold aggregates in ClickHouse SQL: the questions of
:mod:`abtest.aggregates.order`, answered from the events with the rules of
:mod:`abtest.clickhouse.queries` (one row per unit, its first exposure fixing variant and start).

Each analysable unit carries its values as an array (time, value), filtered against its first
exposure; page views are that array joined out, a unit's median its ⌈n/2⌉-th sorted value (R
type 1, as on SQLite and PostgreSQL). The values at given ranks are read from each variant's
sorted array, one variant per query (ClickHouse parameters take flat arrays).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from abtest.aggregates.order import FUZZ
from abtest.clickhouse.client import ClickHouseClient
from abtest.clickhouse.queries import _analysable
from abtest.stats.quantiles import ClusterCounts


def observations(table: str, over: str) -> str:
    """(variant, unit, v) rows of ``{kind}``/``{event}`` values at or after each unit's exposure."""
    values = (",\n       groupArrayIf((ts, assumeNotNull(value)), type = {kind:String} AND event = {event:String} "
              "AND value IS NOT NULL) AS vals")
    where = " AND (type = 'exposure' OR (type = {kind:String} AND event = {event:String}))"
    units = _analysable(table, values, where)
    if over == "events":
        return f"""SELECT bucket AS variant, unit, x.2 AS v
FROM {units} ARRAY JOIN arrayFilter(x -> x.1 >= first_ts, vals) AS x"""
    return f"""SELECT variant, unit, s[intDiv(length(s) + 1, 2)] AS v
FROM (SELECT bucket AS variant, unit, arraySort(arrayMap(x -> x.2, arrayFilter(x -> x.1 >= first_ts, vals))) AS s
      FROM {units}) WHERE length(s) > 0"""


class ClickHouseOrdered:
    """:class:`~abtest.aggregates.order.Ordered` over one metric's events in ClickHouse."""

    def __init__(self, client: ClickHouseClient, table: str, experiment_id: int, kind: str, event: str,
                 over: str = "events") -> None:
        self.client = client
        self.obs = observations(table, over)
        self.params: dict[str, Any] = {"e": experiment_id, "kind": kind, "event": event}

    def point(self, q: float) -> dict[str, tuple[int, int, float]]:
        rows = self.client.query(
            f"""SELECT variant, n, r, s[r] FROM (
    SELECT variant, count() AS n, toUInt64(greatest(1, ceil(n * {{q:Float64}} * (1 - {{fuzz:Float64}})))) AS r,
           arraySort(groupArray(v)) AS s
    FROM ({self.obs}) GROUP BY variant)""", {**self.params, "q": q, "fuzz": FUZZ})
        return {str(v): (int(n), int(r), float(x)) for v, n, r, x in rows}

    def values_at(self, ranks: Mapping[str, Sequence[int]]) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for variant, wanted in ranks.items():
            rows = self.client.query(
                f"""SELECT arrayMap(r -> s[r], {{ranks:Array(UInt64)}}) FROM (
    SELECT arraySort(groupArray(v)) AS s FROM ({self.obs}) WHERE variant = {{variant:String}})""",
                {**self.params, "variant": variant, "ranks": list(wanted)})
            out[variant] = dict(zip(wanted, (float(x) for x in rows[0][0]), strict=True))
        return out

    def cluster_counts(self, thresholds: Mapping[str, float] | float) -> dict[str, ClusterCounts]:
        if isinstance(thresholds, Mapping):
            if not thresholds:
                return {}
            names, limits = list(thresholds), [float(t) for t in thresholds.values()]
        else:
            names, limits = [], [float(thresholds)]
        limit = ("{limits:Array(Float64)}[indexOf({names:Array(String)}, variant)]" if names
                 else "{limits:Array(Float64)}[1]")
        rows = self.client.query(
            f"""SELECT variant, count(), sum(n), sum(n * n), sum(s), sum(s * s), sum(s * n)
FROM (SELECT variant, unit, count() AS n, countIf(v <= {limit}) AS s FROM ({self.obs})
      {"WHERE has({names:Array(String)}, variant) " if names else ""}GROUP BY variant, unit)
GROUP BY variant""", {**self.params, "names": names, "limits": limits})
        return {str(v): ClusterCounts(int(k), int(n), float(nn), int(s), float(ss), float(sn))
                for v, k, n, nn, s, ss, sn in rows}
