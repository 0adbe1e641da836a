"""How any source answers a quantile request from a few questions to its store (DESIGN §8).

A quantile's interval needs order statistics at ranks that depend on the data: first how many
observations there are, then the value at the point estimate, then (for page views clustered in
visitors) the per-unit counts at that value, which set how wide the rank window must be, and
last the values in that window. Every backend asks its store those questions its own way (SQL
``row_number()``, ClickHouse arrays); the order in which they are asked lives here, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from abtest.stats.quantiles import ClusterCounts, OrderStats


class Ordered(Protocol):
    """One metric's observations in one store, per variant."""

    def counts(self) -> dict[str, tuple[int, int]]:
        """variant → (observations, units)."""
        ...

    def values_at(self, ranks: Mapping[str, Sequence[int]]) -> dict[str, dict[int, float]]:
        """variant → {rank: the rank-th smallest value} (1-based) for the ranks asked of it."""
        ...

    def cluster_counts(self, thresholds: Mapping[str, float] | float) -> dict[str, ClusterCounts]:
        """variant → per-unit observations and how many lie at or below the threshold (one for
        every variant, or each variant's own), summed over its units."""
        ...


def order_stats(store: Ordered, q: float, clustered: bool) -> dict[str, OrderStats]:
    """Each variant's :class:`OrderStats` for the ``q``-quantile, in at most four queries."""
    from abtest.stats.quantiles import cdf_sd, quantile_rank, ranks_needed  # scipy: only when a report asks

    sizes = store.counts()
    if not sizes:
        return {}
    point = {v: quantile_rank(n, q) for v, (n, _k) in sizes.items()}
    at_point = store.values_at({v: [r] for v, r in point.items()})
    clusters = store.cluster_counts({v: at_point[v][r] for v, r in point.items()}) if clustered else {}
    ranks = {v: ranks_needed(n, q, cdf_sd(n, q, clusters.get(v))) for v, (n, _k) in sizes.items()}
    values = store.values_at(ranks)
    return {v: OrderStats(q, n, k, tuple(ranks[v]), tuple(values[v][r] for r in ranks[v]), clusters.get(v))
            for v, (n, k) in sizes.items()}
