"""Issue 14: means far larger than their spread (1e9 ± 1) keep the digits of their variance.

Plain sums Σx and Σx² cancel catastrophically there: Σx² − (Σx)²/n is the difference of two
numbers near 1e21 whose true difference is about n, far below their rounding. Moments taken
around a shift near the data do not. Every number here is checked against numpy / scipy on the
raw values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from abtest.aggregates.combine import add
from abtest.stats.cuped import CovariateMoments, cuped
from abtest.stats.means import mean_interval, welch_test
from abtest.stats.summary import Moments

BIG = 1e9
N = 1500


def _draws(seed: int, lift: float = 0.0) -> np.ndarray:
    return BIG + lift + np.random.default_rng(seed).normal(0.0, 1.0, N)


def _running_sums(values: np.ndarray, shift: float) -> Moments:
    """Moments as a database sums them: one float at a time, around ``shift``."""
    total = total_sq = 0.0
    for v in values:
        d = float(v) - shift
        total += d
        total_sq += d * d
    return Moments(len(values), total, total_sq, shift)


def test_plain_sums_lose_the_variance_and_shifted_ones_keep_it():
    a = _draws(1)
    reference = float(np.var(a, ddof=1))
    plain = _running_sums(a, 0.0)
    assert plain.variance != pytest.approx(reference, rel=0.1)  # the bug: nothing left of it
    for m in (Moments.from_values(a), _running_sums(a, float(a[0])), _running_sums(a, float(a[-1]))):
        assert m.variance == pytest.approx(reference, rel=1e-9)
        assert m.mean == pytest.approx(float(np.mean(a)), rel=1e-15)
    m = Moments.from_values(a)
    ci = mean_interval(m).ci.as_tuple()
    low, high = stats.t.interval(0.95, N - 1, loc=np.mean(a), scale=stats.sem(a))
    assert ci == pytest.approx((low, high), abs=1e-6)  # endpoints near 1e9: an ulp is 1.2e-7
    assert (ci[1] - ci[0]) == pytest.approx(high - low, rel=1e-6)


def test_welch_matches_scipy_on_the_raw_values():
    b, t = _draws(2), _draws(3, lift=0.1)
    # The same values less 1e9 (exact: Sterbenz) give scipy its full precision; on the raw values
    # its two means each round at 1e9 (an ulp is 1.2e-7), which leaves ~1e-6 of the 0.1 difference.
    exact = stats.ttest_ind(t - BIG, b - BIG, equal_var=False)
    raw = stats.ttest_ind(t, b, equal_var=False)
    for shift in (None, float(b[0]), float(t[7])):
        mb = Moments.from_values(b) if shift is None else _running_sums(b, shift)
        mt = Moments.from_values(t) if shift is None else _running_sums(t, shift)
        effect = welch_test(mb, mt)
        assert effect.statistic == pytest.approx(float(exact.statistic), rel=1e-9)
        assert effect.p_value == pytest.approx(float(exact.pvalue), rel=1e-9)
        assert effect.df == pytest.approx(float(exact.df), rel=1e-9)
        assert effect.ci.as_tuple() == pytest.approx(tuple(exact.confidence_interval()), rel=1e-9)
        assert effect.se == pytest.approx(math.sqrt(np.var(b, ddof=1) / N + np.var(t, ddof=1) / N), rel=1e-9)
        assert effect.statistic == pytest.approx(float(raw.statistic), rel=1e-5)
        assert effect.p_value == pytest.approx(float(raw.pvalue), rel=1e-3)  # far tail: p = 8e-8
        assert effect.df == pytest.approx(float(raw.df), rel=1e-9)  # variances only: no mean in it
        assert effect.ci.as_tuple() == pytest.approx(tuple(raw.confidence_interval()), abs=1e-6)


def test_recentring_and_adding_slices_is_exact_enough():
    a = _draws(4)
    whole = Moments.from_values(a)
    parts = [_running_sums(a[:500], float(a[0])), _running_sums(a[500:1000], float(a[700])),
             Moments.from_values(a[1000:]), Moments(0, 0.0, 0.0)]
    total = parts[-1]
    for part in parts[:-1]:
        total = add(total, part)
    assert total.n == N and total.shift == float(a[0])  # the first slice with units sets the shift
    assert total.variance == pytest.approx(whole.variance, rel=1e-9)
    assert total.mean == pytest.approx(whole.mean, rel=1e-15)
    moved = whole.recentred(BIG + 3.0)
    assert moved.variance == pytest.approx(whole.variance, rel=1e-9) and moved.mean == pytest.approx(whole.mean)
    assert whole.recentred(whole.shift) is whole


def _cuped_reference(yb, xb, yt, xt):  # type: ignore[no-untyped-def]
    """CUPED straight from the raw values: θ on pooled centred data, Welch on adjusted values."""
    x, y = np.concatenate([xb, xt]), np.concatenate([yb, yt])
    xc, yc = x - x.mean(), y - y.mean()
    theta = float(np.dot(xc, yc) / np.dot(xc, xc))
    adjusted = [yv - theta * (xv - x.mean()) for yv, xv in ((yb, xb), (yt, xt))]
    return theta, adjusted, stats.ttest_ind(adjusted[1], adjusted[0], equal_var=False)


def test_cuped_matches_a_raw_computation():
    rng = np.random.default_rng(5)
    xb, xt = BIG + rng.normal(0, 1, N), BIG + rng.normal(0, 1, N)
    yb = BIG + 0.8 * (xb - BIG) + rng.normal(0, 0.5, N)
    yt = BIG + 0.05 + 0.8 * (xt - BIG) + rng.normal(0, 0.5, N)
    theta, adjusted, reference = _cuped_reference(yb - BIG, xb - BIG, yt - BIG, xt - BIG)  # exact: Sterbenz
    raw = _cuped_reference(yb, xb, yt, xt)[2]

    def sql_like(y, x, cy, cx):  # type: ignore[no-untyped-def]
        dy, dx = y - cy, x - cx
        return CovariateMoments(N, dy.sum(), (dy * dy).sum(), dx.sum(), (dx * dx).sum(), (dx * dy).sum(), cy, cx)

    candidates = [
        (CovariateMoments.from_values(yb, xb), CovariateMoments.from_values(yt, xt)),
        (sql_like(yb, xb, float(yb[0]), float(xb[0])), sql_like(yt, xt, float(yb[0]), float(xb[0]))),
        # different shifts per variant: treatment is re-centred on the baseline's
        (sql_like(yb, xb, float(yb[0]), float(xb[0])), sql_like(yt, xt, float(yt[9]), float(xt[9]))),
    ]
    for baseline, treatment in candidates:
        result = cuped(baseline, treatment)
        assert result.theta == pytest.approx(theta, rel=1e-9)
        assert result.effect.p_value == pytest.approx(float(reference.pvalue), rel=1e-9)
        assert result.effect.p_value == pytest.approx(float(raw.pvalue), rel=1e-4)
        assert result.effect.ci.as_tuple() == pytest.approx(tuple(reference.confidence_interval()), rel=1e-9)
        assert result.effect.se == pytest.approx(
            math.sqrt(sum(np.var(v, ddof=1) / N for v in adjusted)), rel=1e-9)
        assert result.adjusted_means == pytest.approx((BIG + adjusted[0].mean(), BIG + adjusted[1].mean()), rel=1e-15)
        assert result.unadjusted.p_value == pytest.approx(
            float(stats.ttest_ind(yt - BIG, yb - BIG, equal_var=False).pvalue), rel=1e-9)
        assert 0.5 < result.variance_reduction < 1
