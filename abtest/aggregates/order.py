"""How any source answers a quantile request from a few questions to its store (DESIGN §8).

A quantile's interval needs order statistics at ranks that depend on the data: first how many
observations there are and the value at the point estimate (one pass), then (for page views
clustered in visitors) the per-unit counts at that value, which set how wide the rank window must
be, and last the values in that window. Every backend asks its store those questions its own way (SQL
``row_number()``, ClickHouse arrays); the order in which they are asked lives here, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from abtest.stats.quantiles import ClusterCounts, OrderStats


# Relative fuzz of a rank computed by a store (n·q·(1 − FUZZ)): R's, so 0.7 · 10 is rank 7, not 8.
FUZZ = 4 * 2.220446049250313e-16


class Ordered(Protocol):
    """One metric's observations in one store, per variant."""

    def point(self, q: float) -> dict[str, tuple[int, int, float]]:
        """variant → (observations n, the rank the store took for the q-quantile, its value), in
        one pass: the rank is ⌈n·q·(1 − FUZZ)⌉, checked against :func:`quantile_rank`."""
        ...

    def values_at(self, ranks: Mapping[str, Sequence[int]]) -> dict[str, dict[int, float]]:
        """variant → {rank: the rank-th smallest value} (1-based) for the ranks asked of it."""
        ...

    def cluster_counts(self, thresholds: Mapping[str, float] | float) -> dict[str, ClusterCounts]:
        """variant → per-unit observations and how many lie at or below the threshold (one for
        every variant, or each variant's own), summed over its units."""
        ...


def order_stats(store: Ordered, q: float, clustered: bool) -> dict[str, OrderStats]:
    """Each variant's :class:`OrderStats` for the ``q``-quantile, in three passes over its
    observations (two when they are one per unit): point, per-unit counts there, the ranks."""
    from abtest.stats.quantiles import cdf_sd, quantile_rank, ranks_needed  # scipy: only when a report asks

    points = store.point(q)
    if not points:
        return {}
    odd = {v: [quantile_rank(n, q)] for v, (n, r, _x) in points.items() if r != quantile_rank(n, q)}
    value = {v: x for v, (_n, _r, x) in points.items()}
    if odd:  # the store's float arithmetic took a neighbouring rank: ask for the right one
        value.update({v: found[odd[v][0]] for v, found in store.values_at(odd).items()})
    clusters = store.cluster_counts(value) if clustered else {}
    out = {}
    for v, (n, _r, _x) in points.items():
        cluster = clusters.get(v)
        ranks = ranks_needed(n, q, cdf_sd(n, q, cluster))
        out[v] = (n, cluster.units if cluster else n, ranks, cluster)
    values = store.values_at({v: ranks for v, (_n, _k, ranks, _c) in out.items()})
    return {v: OrderStats(q, n, k, ranks, tuple(values[v][r] for r in ranks), c) for v, (n, k, ranks, c) in out.items()}
