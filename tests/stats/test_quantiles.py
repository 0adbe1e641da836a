"""Quantile and threshold statistics (abtest.stats.quantiles) against R and by simulation.

R values: ``tests/stats/reference.R`` (``quantile(type = 1)``, the Wald interval), pasted with the
call named. Coverage: seeded simulations of 1,000 data sets each, iid and clustered (visitors with
1–10 page views sharing a visitor effect), with the binomial 99 % band around 95 % for 1,000
data sets, [93.2 %, 96.8 %].
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from abtest.errors import InsufficientData
from abtest.stats.quantiles import (
    ClusterCounts,
    OrderStats,
    cdf_sd,
    compare_quantiles,
    compare_shares,
    cs_radius,
    distribution,
    quantile_estimate,
    quantile_rank,
    ranks_needed,
    sequential_compare_quantiles,
    sequential_compare_shares,
    sequential_quantile_estimate,
    share_estimate,
    value_at,
)

LCP = [2310, 1830, 4120, 990, 2750, 1460, 3300, 2050, 1720, 5600]
BAND = (0.932, 0.968)  # 1,000 data sets, binomial 99 % band around 95 %
Z75 = 0.6744897501960817  # standard normal 75th percentile


def cluster_counts(values: np.ndarray, units: np.ndarray | None, threshold: float) -> ClusterCounts | None:
    if units is None:
        return None
    n = np.bincount(units).astype(float)
    s = np.bincount(units, weights=(values <= threshold).astype(float))
    keep = n > 0
    n, s = n[keep], s[keep]
    return ClusterCounts(int(keep.sum()), int(n.sum()), float(n @ n), int(s.sum()), float(s @ s), float(s @ n))


def order_stats(values: np.ndarray, q: float, units: np.ndarray | None = None) -> OrderStats:
    """What a source hands over: the values at the ranks ranks_needed names (built here from a
    sorted array, as the SQL sources do with row_number())."""
    values = np.asarray(values, dtype=float)
    ordered = np.sort(values, kind="stable")
    n = len(ordered)
    cluster = cluster_counts(values, units, ordered[quantile_rank(n, q) - 1])
    ranks = ranks_needed(n, q, cdf_sd(n, q, cluster))
    values_at = ordered[np.asarray(ranks) - 1].tolist()
    return OrderStats(q, n, cluster.units if cluster else n, ranks, tuple(values_at), cluster)


@pytest.mark.parametrize(("q", "expected"), [  # R: quantile(lcp, q, type = 1)
    (0.1, 990), (0.5, 2050), (0.7, 2750), (0.75, 3300), (0.9, 4120), (0.95, 5600)])
def test_the_point_estimate_is_r_type_1(q, expected):
    s = order_stats(np.array(LCP), q)
    assert s.values[s.ranks.index(quantile_rank(10, q))] == expected
    assert quantile_estimate(s).value == expected


def test_ranks_match_numpy_inverted_cdf_on_random_sizes():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n, q = int(rng.integers(1, 5000)), float(rng.choice([0.5, 0.75, 0.9, 0.95, 0.7, 0.3, rng.random()]))
        x = rng.permutation(n).astype(float)  # distinct values 0..n-1: the value is the rank − 1
        assert quantile_rank(n, q) - 1 == np.quantile(x, q, method="inverted_cdf")


def test_ranks_needed_are_bounded_and_rounding_is_outward():
    for n in (2, 10, 1_000, 1_000_000, 100_000_000):
        ranks = ranks_needed(n, 0.75, math.sqrt(0.75 * 0.25 / n) * 3)
        assert ranks == tuple(sorted(set(ranks))) and ranks[0] == 1 and ranks[-1] == n
        assert quantile_rank(n, 0.75) in ranks and len(ranks) <= 5_000
    s = OrderStats(0.5, 100, 100, (1, 40, 50, 60, 100), (1.0, 4.0, 5.0, 6.0, 10.0))
    assert value_at(s, 50, "low") == 5.0
    assert (value_at(s, 45, "low"), value_at(s, 45, "high")) == (4.0, 5.0)
    assert (value_at(s, 100, "high"), value_at(s, 1, "low")) == (10.0, 1.0)


def test_clustered_variance_is_the_delta_method_and_reduces_to_binomial():
    rng = np.random.default_rng(1)
    units = np.repeat(np.arange(300), rng.integers(1, 8, 300))
    good = rng.random(len(units)) < 0.6
    c = cluster_counts(good.astype(float) * -1, units, -0.5)  # s_i: the unit's good views
    n_i, s_i = np.bincount(units).astype(float), np.bincount(units, weights=good.astype(float))
    r = s_i.sum() / n_i.sum()
    linear = (s_i - r * n_i) / n_i.mean()  # the ratio's influence per unit (Deng et al. §3)
    assert cdf_sd(len(units), 0.6, c) == pytest.approx(math.sqrt(np.mean(linear ** 2) / 300), rel=1e-12)
    one_each = ClusterCounts(52, 52, 52.0, 37, 37.0, 37.0)
    assert cdf_sd(52, 37 / 52, one_each) == pytest.approx(math.sqrt(37 / 52 * 15 / 52 / 52), rel=1e-12)
    # R: p ± qnorm(0.975) · √(p(1 − p)/n) for 37 of 52 (wald_37_52) = statsmodels' normal interval
    ci = share_estimate(one_each).ci
    assert (ci.low, ci.high) == pytest.approx((0.588401178427695, 0.834675744649228), rel=1e-12)
    assert (ci.low, ci.high) == pytest.approx(proportion_confint(37, 52, method="normal"), rel=1e-12)


def test_the_radius_is_confseqs_two_sided_normal_mixture():
    """confseq (Howard's implementation, values from its R reference): best_rho(100, 0.05) =
    12.60056 and normal_mixture_bound(v = 100, α = 0.05, v_opt = 100, two-sided) = 30.35209. Our
    process has variance 1/4 per value, so v = t/4: t = 400 tuned at t_opt = 400 is that case."""
    assert cs_radius(400, 0.05, 400) * 400 == pytest.approx(30.35209, abs=1e-5)
    assert cs_radius(0.5, 0.05, 100) == math.inf
    # tuned elsewhere it is wider, never narrower: the tuning only moves where it is tightest
    assert cs_radius(400, 0.05, 40) > cs_radius(400, 0.05, 400) < cs_radius(400, 0.05, 4000)


# ---- simulations -------------------------------------------------------------------------------------

def iid(rng: np.random.Generator, n: int) -> tuple[np.ndarray, None]:
    return np.exp(7.6 + 0.5 * rng.standard_normal(n)), None


def clustered(rng: np.random.Generator, visitors: int) -> tuple[np.ndarray, np.ndarray]:
    units = np.repeat(np.arange(visitors), rng.integers(1, 11, visitors))
    return np.exp(7.6 + rng.normal(0, 0.35, visitors)[units] + rng.normal(0, 0.4, len(units))), units


TRUE_P75 = {"iid": math.exp(7.6 + 0.5 * Z75), "clustered": math.exp(7.6 + math.hypot(0.35, 0.4) * Z75)}


@pytest.mark.parametrize(("shape", "size"), [("iid", 2000), ("clustered", 400)])
def test_fixed_horizon_intervals_cover_95_percent(shape, size):
    rng = np.random.default_rng(16)
    draw = iid if shape == "iid" else clustered
    truth = TRUE_P75[shape]
    covered = aa = shifted = 0
    for _ in range(1000):
        x, u = draw(rng, size)
        y, w = draw(rng, size)
        sa_, sb = order_stats(x, 0.75, u), order_stats(y, 0.75, w)
        ci = quantile_estimate(sa_).ci
        covered += ci.low <= truth <= ci.high
        e = compare_quantiles(sa_, sb)
        aa += e.ci.low <= 0 <= e.ci.high
        z, v = draw(rng, size)
        e = compare_quantiles(sa_, order_stats(z * 0.9, 0.75, v))  # treatment 10 % faster everywhere
        shifted += e.ci.low <= -0.1 * truth <= e.ci.high
    assert BAND[0] <= covered / 1000 <= BAND[1], covered
    assert BAND[0] <= aa / 1000 <= BAND[1], aa
    assert BAND[0] <= shifted / 1000 <= BAND[1], shifted


def test_the_iid_interval_is_not_honest_for_clustered_page_views():
    """Why the clustered variance matters: treating page views as independent undercovers."""
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(1000):
        x, _units = clustered(rng, 400)
        ci = quantile_estimate(order_stats(x, 0.75)).ci  # no cluster counts: iid ranks
        covered += ci.low <= TRUE_P75["clustered"] <= ci.high
    assert covered / 1000 < 0.90, covered


PLANNED = 400  # units per variant the always-valid tests are tuned to (the looks run to 10× past it)


@pytest.mark.parametrize("shape", ["iid", "clustered"])
def test_sequential_intervals_hold_at_every_one_of_20_looks(shape):
    rng = np.random.default_rng(20)
    truth = TRUE_P75[shape]
    all_covered = false_alarms = 0
    for _ in range(1000):
        if shape == "iid":
            x, u = iid(rng, 4000)
            y, w = iid(rng, 4000)
        else:
            x, u = clustered(rng, 800)
            y, w = clustered(rng, 800)
        ok, alarm = True, False
        for look in np.linspace(200, len(x) if shape == "iid" else 800, 20).astype(int):
            if shape == "iid":
                a, b = order_stats(x[:look], 0.75), order_stats(y[:look], 0.75)
            else:
                a = order_stats(x[u < look], 0.75, u[u < look])
                b = order_stats(y[w < look], 0.75, w[w < look])
            try:
                ci = sequential_quantile_estimate(a, planned_n=PLANNED).ci
            except InsufficientData:
                continue
            ok &= ci.low <= truth <= ci.high
            alarm |= sequential_compare_quantiles(a, b, planned_n=PLANNED).p_value < 0.05
        all_covered += ok
        false_alarms += alarm
    assert all_covered / 1000 >= 0.95, all_covered
    assert false_alarms / 1000 <= 0.05, false_alarms


def test_sequential_comparison_finds_a_large_difference_and_its_p_is_the_excluding_level():
    rng = np.random.default_rng(3)
    a = order_stats(iid(rng, 6_000)[0], 0.75)
    b = order_stats(iid(rng, 6_000)[0] * 0.9, 0.75)
    e = sequential_compare_quantiles(a, b, planned_n=6_000)
    assert 1e-10 < e.p_value < 0.01 and e.ci.high < 0 and e.effect < 0
    # the p-value is where the always-valid interval starts to exclude no difference
    assert sequential_compare_quantiles(a, b, alpha=e.p_value * 1.05, planned_n=6_000).ci.high < 0
    assert sequential_compare_quantiles(a, b, alpha=e.p_value * 0.95, planned_n=6_000).ci.high >= 0
    small = order_stats(iid(rng, 20)[0], 0.75)
    with pytest.raises(InsufficientData):
        sequential_quantile_estimate(small, planned_n=20)  # too few values: the sequence is unbounded


def test_clustered_shares_keep_their_false_positive_rate():
    rng = np.random.default_rng(8)
    fixed = sequential = 0
    for _ in range(1000):
        counts = []
        for _arm in range(2):
            x, u = clustered(rng, 500)
            counts.append(cluster_counts(x, u, 2500.0))
        fixed += compare_shares(*counts).p_value < 0.05
        sequential += sequential_compare_shares(*counts, planned_n=500).p_value < 0.05
    assert 0.036 <= fixed / 1000 <= 0.066, fixed  # binomial 99 % band around 5 %
    assert sequential / 1000 <= 0.066, sequential


def test_distribution_points_are_the_percentiles():
    s = order_stats(np.arange(1, 1001, dtype=float), 0.75)
    points = distribution(s)
    assert points[0] == (1.0, 0.001) and points[-1] == (1000.0, 1.0)
    assert (750.0, 0.75) in points and len(points) == 101
