"""Quantiles of a metric's values (page speed: the p75 of LCP), with intervals that hold when
one visitor contributes many page views, and the share of values at or below a threshold.

The sources hand over order statistics, never the values: per variant the number of
observations, the values at the ranks :func:`ranks_needed` asks for, and (when observations are
clustered in units) the per-unit counts at the point estimate.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from abtest.errors import InsufficientData
from abtest.stats.summary import (
    Effect,
    Estimate,
    Interval,
    check_alpha,
    clip_p,
    normal_two_sided_p,
    relative_lift,
    z_quantile,
)


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


# ---- ranks -------------------------------------------------------------------------------------------

_FUZZ = 4 * 2.220446049250313e-16  # R's quantile() fuzz: 4 · .Machine$double.eps
WINDOW_SD = 10.0  # the dense rank window: ± this many standard deviations of F̂ around the estimate
MAX_WINDOW = 4000  # ranks in the dense window at most (thinned evenly beyond)
TAIL_GROWTH = 1.25  # the sparse tails: each rank this much farther from the window than the last
PERCENTILES = tuple(p / 100 for p in range(1, 100))  # the distribution chart's points


def quantile_rank(n: int, q: float) -> int:
    """The rank of the sample ``q``-quantile of ``n`` values: R ``quantile(type = 1)``, the
    inverse of the empirical distribution function (the smallest k with k/n ≥ q), with R's fuzz
    so that 0.7 · 10 counts as 7; numpy's ``method="inverted_cdf"`` is the same definition."""
    if n < 1:
        raise InsufficientData("no values yet", field="n")
    nq = n * q
    j = math.floor(nq)
    k = j + 1 if nq - j > _FUZZ * max(1.0, nq) else j
    return min(max(k, 1), n)


def _ratio_variance(c: ClusterCounts) -> float:
    """Delta-method variance of Σs/Σn over K independent units (Deng, Knoblich & Lu 2018, §3):
    (σ_s² − 2r σ_sn + r² σ_n²) / (K μ_n²) with r = Σs/Σn and the per-unit (co)variances, taken
    over the K units (divided by K), so one value per unit gives exactly r(1 − r)/n: the binomial
    (Wald) variance, and √(q(1−q)/n) at a quantile."""
    k = c.units
    if k < 2 or c.n == 0:
        raise InsufficientData("a clustered interval needs at least 2 units", field="units")
    var_s = (c.s_sq - c.s * c.s / k) / k
    var_n = (c.n_sq - c.n * c.n / k) / k
    cov = (c.sn - c.s * c.n / k) / k
    r = c.s / c.n
    mean_n = c.n / k
    return max((var_s - 2 * r * cov + r * r * var_n) / (k * mean_n * mean_n), 0.0)


def cdf_sd(n: int, q: float, cluster: ClusterCounts | None) -> float:
    """Standard deviation of the empirical distribution function at the estimate: √(q(1−q)/n)
    for independent values; with ``cluster``, the delta-method variance of the ratio
    Σs_i/Σn_i (page views nested in visitors are not independent: Deng et al. §4)."""
    if n < 1:
        raise InsufficientData("no values yet", field="n")
    iid = math.sqrt(q * (1 - q) / n)
    if cluster is None or cluster.units < 2:
        return iid
    return math.sqrt(_ratio_variance(cluster)) or iid


def ranks_needed(n: int, q: float, sd: float) -> tuple[int, ...]:
    """The ranks a source fetches so every interval below is computed without another query: the
    point rank, every rank (thinned to at most :data:`MAX_WINDOW`) within ± :data:`WINDOW_SD`
    standard deviations of F̂ around it — wide enough for the outer interval at α = 10⁻⁶ and the
    always-valid one at α = 10⁻³ up to a hundred times its planned sample —, sparse geometric tails out to 1 and n (farther intervals
    round outward onto them: wider, never narrower), and the chart's percentiles."""
    k0 = quantile_rank(n, q)
    half = max(1, math.ceil(n * WINDOW_SD * max(sd, 1e-12)))
    low, high = max(1, k0 - half), min(n, k0 + half)
    step = max(1, math.ceil((high - low + 1) / MAX_WINDOW))
    ranks = set(range(low, high + 1, step)) | {low, high, k0, 1, n}
    gap = float(max(step, 1))
    while low - gap > 1 or high + gap < n:
        ranks.add(max(1, low - int(gap)))
        ranks.add(min(n, high + int(gap)))
        gap *= TAIL_GROWTH
    ranks.update(_percentile_ranks(n))
    return tuple(sorted(ranks))


@lru_cache(maxsize=256)
def _percentile_ranks(n: int) -> tuple[int, ...]:
    return tuple(quantile_rank(n, p) for p in PERCENTILES)


def value_at(s: OrderStats, rank: int, side: Literal["low", "high"]) -> float:
    """The ``rank``-th smallest value, or, when that rank was not fetched, the value at the
    nearest fetched rank outward (below for a lower bound, above for an upper one)."""
    i = bisect.bisect_left(s.ranks, rank)
    if i < len(s.ranks) and s.ranks[i] == rank:
        return s.values[i]
    if side == "low":
        return s.values[max(i - 1, 0)]
    return s.values[min(i, len(s.ranks) - 1)]


def _point(s: OrderStats) -> float:
    if s.n < 1:
        raise InsufficientData("no values yet", field="n")
    return value_at(s, quantile_rank(s.n, s.q), "low")


def _need(s: OrderStats) -> None:
    if s.n < 2 or s.units < 2:
        raise InsufficientData("an interval needs at least 2 values from 2 units", field="n")


# ---- fixed horizon: the outer interval ----------------------------------------------------------

def _outer(s: OrderStats, alpha: float) -> Interval:
    """Deng et al.'s outer interval: the values at ranks n(q ∓ z·σ_F), rounded outward. The
    upper rank is one past ⌈n(q + zσ)⌉: X₍ᵤ₎ ≥ ξ needs fewer than u values below ξ, so this keeps
    the two tails' probabilities equal (without it coverage falls short by one rank's worth)."""
    sd = cdf_sd(s.n, s.q, s.cluster)
    z = z_quantile(alpha)
    low = max(1, math.floor(s.n * (s.q - z * sd)))
    high = min(s.n, math.ceil(s.n * (s.q + z * sd)) + 1)
    return Interval(value_at(s, low, "low"), value_at(s, high, "high"))


def quantile_estimate(s: OrderStats, alpha: float = 0.05) -> Estimate:
    """The sample quantile (R type 1) with the outer confidence interval of Deng, Knoblich & Lu
    (2018, §4): distribution-free, and valid for page views clustered in visitors because the rank
    band uses the clustered (delta-method) variance of the empirical distribution."""
    check_alpha(alpha)
    _need(s)
    clustered = ", clustered by unit" if s.cluster is not None else ""
    return Estimate(_point(s), _outer(s, alpha), s.units, f"sample quantile (R type 1), outer interval "
                    f"(Deng, Knoblich & Lu 2018){clustered}")


def _se(s: OrderStats) -> float:
    """A quantile's standard error from its 95 % outer interval: width / (2 · 1.96)."""
    return _outer(s, 0.05).width / (2 * z_quantile(0.05))


def compare_quantiles(b: OrderStats, t: OrderStats, alpha: float = 0.05) -> Effect:
    """Treatment − baseline quantile, with standard errors from each variant's outer interval
    (as Deng et al. propose for the difference), normal interval and z-test; the lift
    treatment / baseline − 1 by the delta method."""
    check_alpha(alpha)
    _need(b)
    _need(t)
    qb, qt = _point(b), _point(t)
    se_b, se_t = _se(b), _se(t)
    se = math.hypot(se_b, se_t)
    if se == 0:
        raise InsufficientData("the values do not vary around the quantile in either variant")
    diff = qt - qb
    z = z_quantile(alpha)
    rel, rel_ci = relative_lift(qb, qt, se_b * se_b, se_t * se_t, z)
    return Effect(diff, "difference", Interval(diff - z * se, diff + z * se), normal_two_sided_p(diff / se), se,
                  "difference of quantiles, standard errors from outer intervals (Deng, Knoblich & Lu 2018), z-test",
                  rel, rel_ci, statistic=diff / se)


# ---- peek-safe: confidence sequences ---------------------------------------------------------------

def cs_radius(t: float, alpha: float, t_opt: float) -> float:
    """The half-width, in probability, of the confidence sequence for one quantile after t values.

    Howard & Ramdas (2022), Theorem 1: Q(p) lies within the empirical quantiles at p ∓ u(t)/t for
    every t at once whenever u is a uniform boundary for the process Σ(1{X_i ≤ Q(p)} − p). Its
    increments lie in an interval of length 1, so they are sub-Gaussian with variance 1/4
    (Hoeffding), and the two-sided normal mixture (Robbins; Howard et al. 2021) is one:
    u(t) = √((v + ρ)(log(1 + v/ρ) + 2 log(1/α))) with v = t/4, and ρ = v_opt / (2 log(1/α) +
    log(1 + 2 log(1/α))) tuned to the planned t_opt, where it is tightest. Valid at every t,
    not only near t_opt: a mistuned plan costs width, never coverage."""
    if t < 1:
        return math.inf
    v, log_inv = t / 4, math.log(1 / alpha)
    rho = max(t_opt, 1.0) / 4 / (2 * log_inv + math.log(1 + 2 * log_inv))
    return math.sqrt((v + rho) * (math.log(1 + v / rho) + 2 * log_inv)) / t


def _sequence(s: OrderStats, alpha: float, planned_n: int) -> Interval:
    """The confidence sequence for the quantile at this look: the values at ranks n(q ∓ radius).
    Page views clustered in visitors count as t_eff = q(1−q)/σ_F² independent values (the design
    effect; our extension, the theorem is for i.i.d. values), and the plan's units as the same
    share of t_eff."""
    _need(s)
    t_eff = s.n
    if s.cluster is not None:
        sd = cdf_sd(s.n, s.q, s.cluster)
        t_eff = min(s.n, s.q * (1 - s.q) / (sd * sd)) if sd > 0 else s.n
    radius = cs_radius(t_eff, alpha, planned_n * t_eff / s.units)
    if s.q - radius <= 0 or s.q + radius >= 1:
        raise InsufficientData("too few values for an always-valid interval of this quantile yet")
    low = max(1, math.ceil(s.n * (s.q - radius)))
    high = min(s.n, math.floor(s.n * (s.q + radius)) + 1)
    return Interval(value_at(s, low, "low"), value_at(s, high, "high"))


def sequential_quantile_estimate(s: OrderStats, alpha: float = 0.05, planned_n: int = 1000) -> Estimate:
    """The quantile with its always-valid interval (Howard & Ramdas 2022), for reading at any
    look; ``planned_n`` (units) tunes where the sequence is tightest."""
    check_alpha(alpha)
    return Estimate(_point(s), _sequence(s, alpha, planned_n), s.units,
                    "sample quantile (R type 1), confidence sequence (Howard & Ramdas 2022)")


def _sequence_difference(b: OrderStats, t: OrderStats, alpha: float, planned_n: int) -> Interval:
    """Each variant's confidence sequence at α/2 (so both hold together with probability 1 − α),
    and the differences their ends allow."""
    ib, it = _sequence(b, alpha / 2, planned_n), _sequence(t, alpha / 2, planned_n)
    return Interval(it.low - ib.high, it.high - ib.low)


def sequential_compare_quantiles(b: OrderStats, t: OrderStats, alpha: float = 0.05,
                                 planned_n: int = 1000) -> Effect:
    """Peek-safe comparison of two quantiles: the interval for treatment − baseline from the two
    variants' confidence sequences, and the always-valid p-value, the smallest α at which that
    interval excludes no difference (found by bisection on log α; rounded outward ranks make
    it conservative)."""
    check_alpha(alpha)
    diff = _point(t) - _point(b)
    ci = _sequence_difference(b, t, alpha, planned_n)

    def excludes_zero(level: float) -> bool:
        try:
            band = _sequence_difference(b, t, level, planned_n)
        except InsufficientData:
            return False
        return band.low > 0 or band.high < 0

    if not excludes_zero(1 - 1e-9):
        p = 1.0
    else:
        lo, hi = math.log(1e-12), math.log(1 - 1e-9)  # excludes at hi, assume not at lo
        if excludes_zero(math.exp(lo)):
            hi = lo
        else:
            for _ in range(60):
                mid = (lo + hi) / 2
                lo, hi = (lo, mid) if excludes_zero(math.exp(mid)) else (mid, hi)
        p = math.exp(hi)
    qb = _point(b)
    se = math.hypot(_se(b), _se(t))
    return Effect(diff, "difference", ci, clip_p(p), se,
                  "difference of quantiles, confidence sequences (Howard & Ramdas 2022, normal-mixture boundary), "
                  "each at α/2",
                  relative=(_point(t) / qb - 1) if qb != 0 else None, statistic=None)


# ---- shares at or below a threshold ---------------------------------------------------------------

def _share(c: ClusterCounts) -> tuple[float, float]:
    """(share, its delta-method variance) of values at or below the threshold."""
    return c.s / c.n, _ratio_variance(c)


def share_estimate(c: ClusterCounts, alpha: float = 0.05) -> Estimate:
    """Share of values at or below the threshold, Σs/Σn, with a normal interval on its
    delta-method variance (clustered by unit; the Wald interval when each unit has one value)."""
    check_alpha(alpha)
    share, var = _share(c)
    half = z_quantile(alpha) * math.sqrt(var)
    return Estimate(share, Interval(share - half, share + half).clip(0.0, 1.0), c.units,
                    "share with a delta-method interval, clustered by unit")


def compare_shares(b: ClusterCounts, t: ClusterCounts, alpha: float = 0.05) -> Effect:
    """Difference of two shares with delta-method (clustered) standard errors and a z-test."""
    check_alpha(alpha)
    (pb, vb), (pt, vt) = _share(b), _share(t)
    se = math.sqrt(vb + vt)
    if se == 0:
        raise InsufficientData("every value is on the same side of the threshold in both variants")
    diff = pt - pb
    z = z_quantile(alpha)
    rel, rel_ci = relative_lift(pb, pt, vb, vt, z)
    return Effect(diff, "difference", Interval(diff - z * se, diff + z * se).clip(-1.0, 1.0),
                  normal_two_sided_p(diff / se), se,
                  "difference of shares, delta-method standard errors clustered by unit (Deng et al. 2018), z-test",
                  rel, rel_ci, statistic=diff / se)


def sequential_compare_shares(b: ClusterCounts, t: ClusterCounts, planned_n: int, alpha: float = 0.05) -> Effect:
    """Peek-safe: the always-valid mixture SPRT on the difference of shares, with the same
    delta-method variances (per unit: the share's variance times the units)."""
    from abtest.stats.sequential import sequential_difference

    check_alpha(alpha)
    (pb, vb), (pt, vt) = _share(b), _share(t)
    effect = sequential_difference(pt - pb, vb, vt, vb * b.units, vt * t.units, planned_n, alpha,
                                   "difference of shares (delta method, clustered by unit)",
                                   relative=pt / pb - 1 if pb > 0 else None)
    return replace(effect, ci=effect.ci.clip(-1.0, 1.0))


# ---- the distribution chart ---------------------------------------------------------------------------

def distribution(s: OrderStats) -> list[tuple[float, float]]:
    """(value, share of values at or below it) at the 1st … 99th percentiles, plus the minimum
    and the maximum: the empirical distribution the results page draws."""
    if s.n < 1:
        return []
    points = [(value_at(s, 1, "low"), 1 / s.n)]
    points += [(value_at(s, quantile_rank(s.n, p), "low"), p) for p in PERCENTILES]
    points.append((value_at(s, s.n, "high"), 1.0))
    return points
