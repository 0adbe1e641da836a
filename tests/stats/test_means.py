"""Means and task times against R t.test (reference.R)."""

import math

import pytest

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.durations import compare_durations, geometric_mean, log_moments, paired_durations
from abtest.stats.means import mean_interval, welch_from_parts, welch_test
from abtest.stats.summary import Moments

REL = 1e-6
YB = [12.1, 0, 3.5, 7.25, 0, 19.9, 4.4, 8.8, 0, 2.2, 15.0, 6.1]
YT = [9.9, 14.2, 0, 22.5, 11.0, 3.3, 0, 17.7, 8.8, 12.4, 5.5, 0, 30.1, 7.7]
TB = [34, 56, 41, 120, 66, 39, 48, 95, 52, 71]
TT = [28, 40, 33, 61, 45, 30, 37, 88, 29, 50, 42]
PA = [30, 50, 38, 100, 60, 35, 47, 80, 45, 66]


def test_welch_matches_r_t_test():
    # R: t.test(yt, yb) → p, conf.int, df (parameter), t (statistic)
    eff = welch_test(Moments.from_values(YB), Moments.from_values(YT))
    assert eff.p_value == pytest.approx(0.23918981541766, rel=REL)
    assert eff.ci.as_tuple() == pytest.approx((-2.57238178441835, 9.80690559394216), rel=REL)
    assert eff.df == pytest.approx(23.3940015008937, rel=REL)
    assert eff.statistic == pytest.approx(1.20780926389553, rel=REL)
    assert eff.method == "Welch t-test"
    assert eff.relative == pytest.approx(
        (sum(YT) / len(YT)) / (sum(YB) / len(YB)) - 1, rel=1e-12
    )
    assert eff.relative_ci.contains(eff.relative)


@pytest.mark.parametrize(("b", "t"), [
    ((5.0, 4.0, 12), (6.5, 9.0, 14)), ((100.0, 2500.0, 2006), (101.3, 2400.0, 1994)),
    ((0.0, 1e-6, 3), (1e-3, 2e-6, 2)), ((3.0, 1.0, 1_000_000), (3.0001, 1.1, 900_000)),
    ((-2.0, 50.0, 40), (8.0, 0.5, 5)),
])
def test_welch_equals_scipy_ttest_ind_from_stats(b, t):
    from scipy.stats import ttest_ind_from_stats

    (mb, vb, nb), (mt, vt, nt) = b, t
    reference = ttest_ind_from_stats(mt, math.sqrt(vt), nt, mb, math.sqrt(vb), nb, equal_var=False)
    eff = welch_from_parts(mb, vb, nb, mt, vt, nt, 0.05, "Welch t-test")
    assert eff.statistic == pytest.approx(float(reference.statistic), rel=1e-10)
    assert eff.p_value == pytest.approx(float(reference.pvalue), rel=1e-9, abs=1e-300)


def test_mean_interval_matches_r():
    # R: t.test(yb)$conf.int
    est = mean_interval(Moments.from_values(YB))
    assert est.ci.as_tuple() == pytest.approx((2.55071678614509, 10.6576165471882), rel=REL)


def test_geometric_mean_matches_r():
    # R: exp(mean(log(tb))), exp(t.test(log(tb))$conf.int)
    est = geometric_mean(log_moments(TB))
    assert est.value == pytest.approx(57.6562925179018, rel=REL)
    assert est.ci.as_tuple() == pytest.approx((43.3029586404828, 76.7672272582802), rel=REL)
    assert "geometric mean" in est.method


def test_duration_ratio_matches_r():
    # R: t.test(log(ttm), log(tb)) → p, exp(conf.int), exp(difference of mean logs)
    eff = compare_durations(log_moments(TB), log_moments(TT))
    assert eff.effect_kind == "ratio"
    assert eff.effect == pytest.approx(0.717100971278324, rel=REL)
    assert eff.p_value == pytest.approx(0.0581907180285345, rel=REL)
    assert eff.ci.as_tuple() == pytest.approx((0.507683503207905, 1.01290232942182), rel=REL)
    assert eff.relative == pytest.approx(eff.effect - 1)
    assert "log" in eff.method


def test_paired_durations_match_r():
    # R: t.test(log(pa), log(tb), paired = TRUE)
    diffs = Moments.from_values([math.log(a) - math.log(b) for a, b in zip(PA, TB)])
    eff = paired_durations(diffs)
    assert eff.p_value == pytest.approx(4.82275793094959e-05, rel=REL)
    assert eff.ci.as_tuple() == pytest.approx((0.864374040999164, 0.926429868464849), rel=REL)
    assert eff.effect == pytest.approx(0.894864195901973, rel=REL)
    assert eff.effect_kind == "ratio"


def test_moments_from_sums_equal_from_values():
    m = Moments.from_values(YB)
    again = Moments(m.n, m.total, m.total_sq)
    assert again.variance == pytest.approx(m.variance)
    assert m.variance == pytest.approx(
        sum((y - m.mean) ** 2 for y in YB) / (len(YB) - 1), rel=1e-12
    )


def test_insufficient_data():
    with pytest.raises(InsufficientData):
        mean_interval(Moments.from_values([3.0]))
    with pytest.raises(InsufficientData):
        mean_interval(Moments.from_values([3.0, 3.0, 3.0]))
    with pytest.raises(InsufficientData):
        welch_test(Moments.from_values([1.0, 1.0]), Moments.from_values([2.0, 2.0, 2.0]))
    with pytest.raises(InsufficientData):
        welch_test(Moments(0, 0, 0), Moments.from_values(YT))
    with pytest.raises(InsufficientData):
        paired_durations(Moments.from_values([0.1, 0.1, 0.1]))
    with pytest.raises(InsufficientData):
        Moments(0, 0, 0).mean


def test_one_variant_with_zero_variance_is_still_a_welch_test():
    eff = welch_test(Moments.from_values([0.0] * 5), Moments.from_values([1.0, 2.0, 3.0]))
    assert eff.df == pytest.approx(2.0)
    assert eff.relative is None  # baseline mean 0


def test_validation():
    with pytest.raises(ValidationError) as err:
        log_moments([10, 0, 5])
    assert err.value.field == "times"
    with pytest.raises(ValidationError) as err:
        Moments(3, float("nan"), 1)
    assert err.value.field == "total"
    with pytest.raises(ValidationError):
        Moments(3, 1, -1)
