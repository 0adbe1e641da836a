"""Proportions against R (reference.R) and Sauro & Lewis's published adjusted-Wald examples."""

import pytest

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.proportions import (
    adjusted_wald_interval,
    clopper_pearson_interval,
    compare_proportions,
    fisher_exact,
    n_minus_1_test,
    proportion_interval,
    smallest_expected_cell,
    wilson_interval,
    z_test,
)
from abtest.stats.summary import Counts

REL = 1e-6

# R: prop.test(x, n, correct = FALSE)$conf.int
WILSON = {
    (0, 10): (0, 0.277532799862889),
    (7, 10): (0.396778147461145, 0.892208732593699),
    (10, 10): (0.722467200137111, 1),
    (45, 500): (0.0679425478891394, 0.118309411289333),
    (1, 3): (0.0614919447203963, 0.792340399197952),
}
# R: binom.test(x, n)$conf.int
CLOPPER = {
    (0, 10): (0, 0.308497107818761),
    (7, 10): (0.347547149940003, 0.933260488822266),
    (10, 10): (0.691502892181239, 1),
    (45, 500): (0.0664040087545691, 0.118572921677342),
    (1, 3): (0.00840375865961264, 0.905700675949754),
}


@pytest.mark.parametrize(("case", "expected"), WILSON.items())
def test_wilson_matches_r_prop_test(case, expected):
    est = wilson_interval(Counts(case[1], case[0]))
    assert est.ci.as_tuple() == pytest.approx(expected, rel=REL, abs=1e-12)
    assert est.value == case[0] / case[1]
    assert est.method == "Wilson score interval"


@pytest.mark.parametrize(("case", "expected"), CLOPPER.items())
def test_clopper_pearson_matches_r_binom_test(case, expected):
    est = clopper_pearson_interval(Counts(case[1], case[0]))
    assert est.ci.as_tuple() == pytest.approx(expected, rel=REL, abs=1e-12)


def test_adjusted_wald_published_examples():
    # Tullis (measuringux.com, "Calculating a confidence interval for task completion using
    # the adjusted Wald method", after Sauro & Lewis): 4 of 5 → 0.3596 to 0.9796 (z = 1.96).
    est = adjusted_wald_interval(Counts(5, 4))
    assert est.ci.low == pytest.approx(0.3596, abs=5e-4)
    assert est.ci.high == pytest.approx(0.9796, abs=5e-4)
    # Sauro & Lewis (MeasuringU, "A new formula for quantitative UX decision making"):
    # 7 of 10 → "about 39% to 90%"; 3 of 10 → "about 10% to 61%".
    est = adjusted_wald_interval(Counts(10, 7))
    assert (round(est.ci.low, 2), round(est.ci.high, 2)) == (0.39, 0.90)
    est = adjusted_wald_interval(Counts(10, 3))
    assert (round(est.ci.low, 2), round(est.ci.high, 2)) == (0.10, 0.61)


# The closed forms against statsmodels' proportion_confint (what they replaced) over a grid of
# counts and levels, ends included; only the [0, 1] clipping of the adjusted Wald may differ.
GRID = [(x, n) for n in (1, 2, 5, 13, 100, 2_006, 1_000_000) for x in sorted({0, 1, n // 3, n // 2, n - 1, n})]


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01, 0.3])
@pytest.mark.parametrize(("ours", "theirs"), [("wilson", "wilson"), ("agresti_coull", "agresti_coull")])
def test_closed_form_intervals_equal_statsmodels(ours, theirs, alpha):
    from statsmodels.stats.proportion import proportion_confint

    for x, n in GRID:
        low, high = (float(v) for v in proportion_confint(x, n, alpha=alpha, method=theirs))
        low = 0.0 if x == 0 else min(max(0.0, low), x / n)
        high = 1.0 if x == n else max(min(1.0, high), x / n)
        est = proportion_interval(Counts(n, x), alpha, ours)
        assert est.ci.as_tuple() == pytest.approx((low, high), rel=1e-12, abs=1e-15), (x, n)


def test_adjusted_wald_is_clipped_to_unit_interval():
    est = adjusted_wald_interval(Counts(5, 5))
    assert est.ci.high == 1.0 and est.ci.low > 0.4
    assert "Agresti-Coull" in est.method


def test_interval_handles_zero_units_and_unknown_method():
    with pytest.raises(InsufficientData):
        wilson_interval(Counts(0, 0))
    with pytest.raises(ValidationError) as err:
        proportion_interval(Counts(10, 2), method="wald")
    assert err.value.field == "method"
    with pytest.raises(ValidationError) as err:
        wilson_interval(Counts(10, 2), alpha=1.5)
    assert err.value.field == "alpha"


# R: prop.test(c(xt, xb), c(nt, nb), correct = FALSE)$p.value; Wald CI by hand (reference.R)
ZTEST = {
    (200, 2000, 250, 2000): (0.0123509477111914, 0.00543100855465603, 0.044568991445344),
    (100, 1000, 125, 1000): (0.0768689055156897, -0.00267473310396852, 0.0526747331039685),
    (30, 400, 22, 380): (0.338434279902409, -0.0519998634456413, 0.0177893371298518),
}


@pytest.mark.parametrize(("case", "expected"), ZTEST.items())
def test_z_test_matches_r_prop_test(case, expected):
    xb, nb, xt, nt = case
    eff = z_test(Counts(nb, xb), Counts(nt, xt))
    assert eff.p_value == pytest.approx(expected[0], rel=REL)
    assert eff.ci.as_tuple() == pytest.approx(expected[1:], rel=REL)
    assert eff.effect == pytest.approx(xt / nt - xb / nb)
    assert eff.effect_kind == "difference"
    assert eff.relative == pytest.approx((xt / nt) / (xb / nb) - 1)


def test_design_doc_example_numbers():
    # DESIGN §4.5: 10.0 % vs 12.5 % on 2,000 units each → p 0.0124, CI 0.5 to 4.5 points.
    eff = compare_proportions(Counts(2000, 200), Counts(2000, 250))
    assert round(eff.p_value, 4) == 0.0124
    assert (round(eff.ci.low, 3), round(eff.ci.high, 3)) == (0.005, 0.045)
    assert eff.method.startswith("two-proportion z-test")


def test_relative_lift_delta_method():
    b, t = Counts(2000, 200), Counts(2000, 250)
    eff = z_test(b, t)
    # Var(pt/pb) ≈ Var(pt)/pb² + pt² Var(pb)/pb⁴
    var = (0.125 * 0.875 / 2000) / 0.01 + 0.125**2 * (0.1 * 0.9 / 2000) / 0.1**4
    half = 1.959963984540054 * var**0.5
    assert eff.relative_ci.as_tuple() == pytest.approx((0.25 - half, 0.25 + half), rel=1e-9)


def test_relative_lift_none_when_baseline_has_no_conversions():
    eff = z_test(Counts(500, 0), Counts(500, 9))
    assert eff.relative is None and eff.relative_ci is None
    assert 0 < eff.p_value < 0.01


# R: chisq.test(table, correct = FALSE)$statistic * (N - 1) / N, then pchisq (reference.R)
NM1 = {
    (3, 12, 9, 13): 0.0302458121412897,
    (11, 12, 5, 10): 0.0327788695088587,
    (2, 20, 7, 20): 0.0615684006601512,
}


@pytest.mark.parametrize(("case", "expected"), NM1.items())
def test_n_minus_1_matches_scaled_r_chisq(case, expected):
    xb, nb, xt, nt = case
    eff = n_minus_1_test(Counts(nb, xb), Counts(nt, xt))
    assert eff.p_value == pytest.approx(expected, rel=REL)
    assert eff.ci.contains(eff.effect)


# R: fisher.test(table)$p.value
FISHER = {
    (0, 8, 4, 9): 0.0823529411764705,
    (1, 5, 5, 6): 0.0800865800865801,
    (3, 12, 9, 13): 0.0471799703863239,
}


@pytest.mark.parametrize(("case", "expected"), FISHER.items())
def test_fisher_matches_r(case, expected):
    xb, nb, xt, nt = case
    eff = fisher_exact(Counts(nb, xb), Counts(nt, xt))
    assert eff.p_value == pytest.approx(expected, rel=REL)
    assert "Fisher" in eff.method


def test_compare_proportions_rule():
    # all expected cells ≥ 5 → z-test
    assert compare_proportions(Counts(100, 20), Counts(100, 30)).method.startswith("two-proportion")
    # smallest expected cell between 1 and 5 → N−1
    b, t = Counts(20, 2), Counts(20, 7)
    assert 1 <= smallest_expected_cell(b, t) < 5
    eff = compare_proportions(b, t)
    assert eff.method.startswith("N−1")
    assert eff.p_value == pytest.approx(NM1[(2, 20, 7, 20)], rel=REL)
    # smallest expected cell < 1 → Fisher
    b, t = Counts(5, 0), Counts(6, 1)
    assert smallest_expected_cell(b, t) < 1
    eff = compare_proportions(b, t)
    assert eff.method.startswith("Fisher")


def test_no_difference_to_test_is_insufficient_data():
    with pytest.raises(InsufficientData):
        z_test(Counts(100, 0), Counts(100, 0))
    with pytest.raises(InsufficientData):
        compare_proportions(Counts(100, 100), Counts(50, 50))
    with pytest.raises(InsufficientData):
        z_test(Counts(0, 0), Counts(100, 3))
    # 0/n against n/n: the pooled test is defined but the Wald interval is a point
    with pytest.raises(InsufficientData):
        z_test(Counts(20, 0), Counts(20, 20))


def test_counts_validation():
    with pytest.raises(ValidationError) as err:
        Counts(10, 11)
    assert err.value.field == "x"
    with pytest.raises(ValidationError) as err:
        Counts(-1, 0)
    assert err.value.field == "n"
    with pytest.raises(ValidationError):
        Counts(10, 2.5)
