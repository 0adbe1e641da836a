"""CUPED against R (theta by cov/var on pooled raw data, t.test on adjusted values)."""

import pytest

from abtest.errors import InsufficientData
from abtest.stats.cuped import CovariateMoments, cuped

XB = [10, 12, 8, 15, 9, 11, 14, 7, 13, 10]
YB = [11, 14, 8, 17, 10, 12, 15, 9, 13, 12]
XT = [9, 13, 11, 16, 8, 12, 10, 14, 7, 12, 11]
YT = [11, 15, 13, 19, 9, 14, 12, 17, 8, 14, 13]


def test_matches_r():
    res = cuped(CovariateMoments.from_values(YB, XB), CovariateMoments.from_values(YT, XT))
    # R: theta <- cov(c(xb, xt), c(yb, yt)) / var(c(xb, xt)); t.test(at, ab)
    assert res.theta == pytest.approx(1.13272727272727, rel=1e-9)
    assert res.effect.p_value == pytest.approx(0.0208248915621883, rel=1e-6)
    assert res.effect.ci.as_tuple() == pytest.approx((0.138059295342405, 1.38713078730222), rel=1e-6)
    assert res.adjusted_means == pytest.approx((12.2672121212121, 13.0298071625344), rel=1e-9)
    # R: t.test(yt, yb)$p.value — the unadjusted comparison
    assert res.unadjusted.p_value == pytest.approx(0.418063068066208, rel=1e-6)
    assert 0.8 < res.variance_reduction < 1
    assert res.effect.se < res.unadjusted.se
    assert "CUPED" in res.method


def test_constant_covariate_refused():
    with pytest.raises(InsufficientData):
        cuped(CovariateMoments.from_values(YB, [5] * 10), CovariateMoments.from_values(YT, [5] * 11))
