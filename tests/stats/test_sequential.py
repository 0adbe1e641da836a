"""Always-valid mSPRT: formula checks against R (uniroot on the mixture likelihood ratio)."""

import math

import pytest

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.sequential import _msprt, mixture_tau2, sequential_means, sequential_proportions, sequential_series
from abtest.stats.summary import Counts, Moments


def test_p_value_and_interval_match_r_root_finding():
    # reference.R: θ̂ = 0.02, V = 1e-4, τ² = 3e-4, α = 0.05; 1/Λ(0) and the two roots of
    # Λ(θ₀) = 1/α found with uniroot.
    eff = _msprt(0.02, 1e-4, 3e-4, 0.05, None, None, "test")
    assert eff.p_value == pytest.approx(0.44626032029686, rel=1e-9)
    assert eff.ci.as_tuple() == pytest.approx((-0.0113640110279874, 0.0513640110279874), rel=1e-9)


def test_interval_equals_waudby_smith_gaussian_mixture_boundary():
    # Waudby-Smith et al. (2023), eq. for the Gaussian-mixture asymptotic CS of a mean of t
    # observations with variance σ²: σ·sqrt(2(tρ²+1)/(t²ρ²) · log(sqrt(tρ²+1)/α)).
    sigma2, t, alpha, t_star = 2.5, 400, 0.05, 1000
    rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / t_star
    expected = math.sqrt(sigma2 * 2 * (t * rho2 + 1) / (t * t * rho2) * math.log(math.sqrt(t * rho2 + 1) / alpha))
    tau2 = mixture_tau2(sigma2, 0.0, t_star, alpha)  # one-sample analogue: V = σ²/t
    eff = _msprt(0.0, sigma2 / t, tau2, alpha, None, None, "test")
    assert eff.ci.high == pytest.approx(expected, rel=1e-12)


def test_wider_than_fixed_horizon_and_named():
    b, t = Counts(2000, 200), Counts(2000, 250)
    eff = sequential_proportions(b, t, planned_n=4000)
    assert eff.ci.width > 2 * 1.96 * eff.se
    assert eff.method.startswith("always-valid mSPRT (Johari et al. 2017)")
    assert 0 <= eff.p_value <= 1 and eff.relative == pytest.approx(0.25)
    assert eff.relative_ci is None


def test_running_minimum_and_intersection():
    looks = [
        (Counts(500, 50), Counts(500, 70)),
        (Counts(1000, 100), Counts(1000, 125)),
        (Counts(1500, 150), Counts(1500, 170)),
    ]
    series = sequential_series(looks, planned_n=2000)
    ps = [e.p_value for e in series]
    assert all(a >= b for a, b in zip(ps, ps[1:]))
    for earlier, later in zip(series, series[1:]):
        assert later.ci.low >= earlier.ci.low and later.ci.high <= earlier.ci.high
    single = sequential_proportions(*looks[2], planned_n=2000)
    assert series[2].p_value <= single.p_value


def test_means_version():
    b = Moments.from_values([1.0, 2.0, 3.0, 4.0] * 50)
    t = Moments.from_values([1.5, 2.5, 3.5, 4.5] * 50)
    eff = sequential_means(b, t, planned_n=500)
    assert eff.effect == pytest.approx(0.5)
    assert eff.ci.contains(0.5)
    assert "difference of means" in eff.method


def test_edges():
    with pytest.raises(InsufficientData):
        sequential_proportions(Counts(100, 0), Counts(100, 0), planned_n=100)
    with pytest.raises(InsufficientData):
        sequential_proportions(Counts(1, 0), Counts(100, 3), planned_n=100)
    with pytest.raises(ValidationError) as err:
        sequential_proportions(Counts(10, 1), Counts(10, 3), planned_n=0)
    assert err.value.field == "planned_n"
    with pytest.raises(ValidationError):
        sequential_series([(Counts(10, 1), Moments(3, 1, 1))], planned_n=10)
