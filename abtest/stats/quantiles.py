"""Quantiles of a metric's values (page speed: the p75 of LCP), with intervals that hold when
one visitor contributes many page views, and the share of values at or below a threshold.

The sources hand over order statistics, never the values: per variant the number of
observations, the values at the ranks :func:`ranks_needed` asks for, and (when observations are
clustered in units) the per-unit counts at the point estimate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClusterCounts:
    """Per-unit sums behind the share of observations at or below a threshold, units being the
    clusters: with n_i the unit's observations and s_i how many are ≤ the threshold,
    ``units`` = K, ``n`` = Σ n_i, ``n_sq`` = Σ n_i², ``s`` = Σ s_i, ``s_sq`` = Σ s_i², ``sn`` = Σ s_i n_i."""

    units: int
    n: int
    n_sq: float
    s: int
    s_sq: float
    sn: float


@dataclass(frozen=True, slots=True)
class OrderStats:
    """One variant's sorted observations, as far as a quantile's interval needs them.

    ``n`` observations (page views, or one per unit: each unit's own median) from ``units`` units;
    ``values[i]`` is the ``ranks[i]``-th smallest (1-based, ranks ascending). ``cluster``: the
    per-unit counts at the point estimate, when observations are clustered in units; ``None``
    when there is one observation per unit (independent).
    """

    q: float
    n: int
    units: int
    ranks: tuple[int, ...]
    values: tuple[float, ...]
    cluster: ClusterCounts | None = None
