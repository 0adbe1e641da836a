"""Planning against R power.prop.test / power.t.test and Evan Miller's calculator."""

import pytest

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.power import (
    mde_means,
    mde_proportions,
    progress,
    sample_size_means,
    sample_size_proportions,
)


def test_proportions_match_r_power_prop_test():
    # R: power.prop.test(p1 = 0.20, p2 = 0.25, power = 0.8, tol = 1e-12)$n = 1093.73904576617
    s = sample_size_proportions(0.20, 0.05)
    assert s.n_per_variant == 1094 and s.n_total == 2188
    # R: power.prop.test(p1 = 0.10, p2 = 0.12, power = 0.8, tol = 1e-12)$n = 3840.84748243628
    # (also the target of the DESIGN §4.5 example)
    assert sample_size_proportions(0.10, 0.02).n_per_variant == 3841
    from abtest.stats.power import _n_proportions

    assert _n_proportions(0.10, 0.02, 0.05, 0.8, "pooled") == pytest.approx(3840.84748243628, rel=1e-6)


def test_evan_miller_formula():
    # Evan Miller's calculator: baseline 20 %, MDE 5 points absolute, α 0.05, power 0.8 →
    # 1,030 per variant. Reproduced by baseline variance under H0, 1030.22 rounded to nearest.
    s = sample_size_proportions(0.20, 0.05, formula="evan_miller")
    assert s.n_per_variant == 1030
    assert "Evan Miller" in s.method


def test_evan_miller_formula_above_half_uses_the_complement():
    # Issue 14: Evan Miller's calculator (evanmiller.org/ab-testing/sample-size.html), baseline
    # 80 %, MDE 5 points absolute, α 0.05, power 0.8 → 1,030 per variant, the same as for 20 %: above
    # 50 % it works on 1 − baseline and keeps the MDE. Without that abtest gave 973 (80 % → 85 %).
    from abtest.stats.power import _n_proportions

    assert sample_size_proportions(0.80, 0.05, formula="evan_miller").n_per_variant == 1030
    assert _n_proportions(0.80, 0.05, 0.05, 0.8, "evan_miller") == pytest.approx(
        _n_proportions(0.20, 0.05, 0.05, 0.8, "evan_miller"))
    # Flipping the MDE's sign as well (0.2 − 0.05) would be no flip at all: the formula is
    # symmetric, and that is the 973.43 abtest gave before.
    assert _n_proportions(0.20, -0.05, 0.05, 0.8, "evan_miller") == pytest.approx(973.4302300795738, rel=1e-9)
    # At exactly 50 % the complement is the baseline: no jump either side.
    at_half = _n_proportions(0.5, 0.05, 0.05, 0.8, "evan_miller")
    assert _n_proportions(0.5 + 1e-9, 0.05, 0.05, 0.8, "evan_miller") == pytest.approx(at_half)
    assert _n_proportions(0.5 - 1e-9, 0.05, 0.05, 0.8, "evan_miller") == pytest.approx(at_half)
    # The pooled formula (R power.prop.test) is untouched: 0.8 → 0.85 needs what 0.2 → 0.15 needs.
    assert sample_size_proportions(0.80, 0.05).n_per_variant == sample_size_proportions(0.15, 0.05).n_per_variant


def test_variants_use_bonferroni_alpha():
    # R: power.prop.test(p1 = 0.10, p2 = 0.12, power = 0.8, sig.level = 0.025, tol = 1e-12)$n
    # = 4651.41787657652
    s = sample_size_proportions(0.10, 0.02, variants=3)
    assert s.n_per_variant == 4652 and s.n_total == 3 * 4652
    assert s.alpha_per_comparison == pytest.approx(0.025)
    assert "Bonferroni" in s.method


def test_mde_proportions_matches_r():
    # R: power.prop.test(n = 1000, p1 = 0.10, power = 0.8, tol = 1e-12)$p2 - 0.10
    # = 0.040745154311823
    assert mde_proportions(0.10, 1000) == pytest.approx(0.040745154311823, rel=1e-6)
    with pytest.raises(InsufficientData):
        mde_proportions(0.9, 2)


def test_means_match_r_power_t_test():
    # R: power.t.test(delta = 0.5, sd = 1, power = 0.8, tol = 1e-12)$n = 63.7657637248468
    assert sample_size_means(1.0, 0.5).n_per_variant == 64
    from abtest.stats.power import _t_power

    assert _t_power(63.7657637248468, 0.5, 1.0, 0.05) == pytest.approx(0.8, rel=1e-9)
    # R: power.t.test(delta = 3, sd = 20, power = 0.9, sig.level = 0.01, tol = 1e-12)$n
    # = 1324.27197830712
    assert sample_size_means(20.0, 3.0, alpha=0.01, power=0.9).n_per_variant == 1325
    # R: power.t.test(n = 100, sd = 2, power = 0.8, tol = 1e-12)$delta = 0.796277249748583
    assert mde_means(2.0, 100) == pytest.approx(0.796277249748583, rel=1e-6)


@pytest.mark.parametrize("alpha", [0.05, 0.01, 1e-4, 0.2])
def test_t_power_is_statsmodels_ttestindpower(alpha):
    """The power is the function behind statsmodels' TTestIndPower (one-sided at α/2, R's equation),
    called through scipy.special instead of statsmodels (abtest power --sd then starts in a third of the time)."""
    from statsmodels.stats.power import TTestIndPower

    from abtest.stats.power import _t_power

    reference = TTestIndPower()
    for n in (2, 3, 7.5, 64, 1_000, 123_456, 1e9, 2.0**39):
        for effect in (1e-4, 0.01, 0.2, 0.5, 1.0, 4.0):
            expected = reference.power(effect, n, alpha / 2, ratio=1.0, alternative="larger")
            assert _t_power(n, effect * 3.0, 3.0, alpha) == pytest.approx(expected, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize(("sd", "mde", "alpha", "power"), [
    (1.0, 0.5, 0.05, 0.8), (20.0, 3.0, 0.01, 0.9), (10.0, 0.01, 0.05, 0.8), (1.0, 2.5, 0.05, 0.8),
    (1.0, 3.0, 0.05, 0.5), (5.0, 1.0, 0.001, 0.99), (1.0, 1e-4, 0.05, 0.8)])
def test_sample_size_means_is_the_smallest_n_with_enough_power(sd, mde, alpha, power):
    """Checked with statsmodels' own power function: n reaches the target and n - 1 does not."""
    from statsmodels.stats.power import TTestIndPower

    reference = TTestIndPower()
    n = sample_size_means(sd, mde, alpha=alpha, power=power).n_per_variant
    assert reference.power(mde / sd, n, alpha / 2, alternative="larger") >= power
    if n > 2:
        assert reference.power(mde / sd, n - 1, alpha / 2, alternative="larger") < power


def test_sample_size_means_for_huge_and_tiny_effects():
    # statsmodels, computed once: TTestIndPower().solve_power(effect_size=3, alpha=0.025, power=0.8,
    # alternative="larger") = 3.0700087293792184, so 4 per variant
    assert sample_size_means(1.0, 3.0).n_per_variant == 4
    # ... solve_power(effect_size=0.001, ...) = 15697760.429062938, so 15,697,761
    assert sample_size_means(10.0, 0.01).n_per_variant == 15_697_761
    with pytest.raises(ValidationError) as err:
        sample_size_means(1.0, 1e-9)
    assert err.value.field == "mde"


def test_progress():
    assert progress(2000, 3841) == pytest.approx(2000 / 3841)
    assert progress(5000, 3841) == 1.0
    with pytest.raises(ValidationError) as err:
        progress(10, 0)
    assert err.value.field == "n_target"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"baseline": 0.0, "mde": 0.01}, "baseline"),
        ({"baseline": 1.2, "mde": 0.01}, "baseline"),
        ({"baseline": 0.1, "mde": 0.0}, "mde"),
        ({"baseline": 0.1, "mde": -0.02}, "mde"),
        ({"baseline": 0.95, "mde": 0.05}, "mde"),
        ({"baseline": 0.1, "mde": 0.02, "alpha": 0}, "alpha"),
        ({"baseline": 0.1, "mde": 0.02, "power": 1.0}, "power"),
        ({"baseline": 0.1, "mde": 0.02, "variants": 1}, "variants"),
    ],
)
def test_invalid_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as err:
        sample_size_proportions(**kwargs)
    assert err.value.field == field


def test_invalid_mean_arguments():
    with pytest.raises(ValidationError) as err:
        sample_size_means(0.0, 1.0)
    assert err.value.field == "sd"
    with pytest.raises(ValidationError) as err:
        sample_size_means(1.0, -1.0)
    assert err.value.field == "mde"
