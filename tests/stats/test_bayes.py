"""Gaussian decision support against R numerical integration (reference.R)."""

import math

import pytest

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.bayes import chance_to_beat, decide, decide_effect
from abtest.stats.proportions import z_test
from abtest.stats.summary import Counts, Effect, Interval


def test_matches_r_integration():
    # R: pnorm(m/s); integrate(pmax(-d, 0) * dnorm(d, m, s)); integrate(pmax(d, 0) * dnorm(d, m, s))
    d = decide(0.012, 0.008)
    assert d.chance_to_beat == pytest.approx(0.933192798731142, rel=1e-9)
    assert d.expected_loss_treatment == pytest.approx(0.000234454350100838, rel=1e-6)
    assert d.expected_loss_baseline == pytest.approx(0.0122344543501008, rel=1e-6)
    # E[max(δ,0)] − E[max(−δ,0)] = E[δ]
    assert d.expected_loss_baseline - d.expected_loss_treatment == pytest.approx(0.012)


def test_lower_is_better_flips():
    assert chance_to_beat(-0.5, 1.0, higher_is_better=False) == pytest.approx(chance_to_beat(0.5, 1.0))


def test_from_effects():
    eff = z_test(Counts(2000, 200), Counts(2000, 250))
    assert decide_effect(eff).chance_to_beat == pytest.approx(chance_to_beat(eff.effect, eff.se))
    ratio = Effect(0.8, "ratio", Interval(0.6, 1.05), 0.1, 0.12, "Welch t-test on log times")
    d = decide_effect(ratio, higher_is_better=False)
    assert d.chance_to_beat == pytest.approx(chance_to_beat(-math.log(0.8), 0.12))
    assert "log ratio" in d.method


def test_edges():
    with pytest.raises(InsufficientData):
        decide(0.1, 0.0)
    with pytest.raises(ValidationError):
        decide(float("nan"), 0.1)


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_the_mixture_prior_gives_the_conjugate_posterior():
    # effect 2, se 1, prior N(0, 1): posterior N(2·½, ½), so P(δ > 0) = Φ(1/√½) = Φ(√2).
    d = decide(2.0, 1.0, prior_var=1.0)
    assert d.chance_to_beat == pytest.approx(_phi(2 ** 0.5), rel=1e-12)
    assert "N(0, τ²)" in d.method


@pytest.mark.parametrize("n", [50, 200, 1000, 5000])
@pytest.mark.parametrize("lift", [-0.03, -0.01, 0.0, 0.005, 0.01, 0.02, 0.04])
def test_always_valid_p_and_chance_to_beat_tell_one_story(n, lift):
    """Issue 14: a page showed always-valid p = 0.635 beside "96.2 % chance to beat control".
    With the test's own prior, z_post² = 2·ln(1/p) + ln(1 + τ²/V) (algebra of the mSPRT
    likelihood ratio), so p < α forces the chance past Φ(√(2·ln(1/α))) = 99.28 % at α = 0.05,
    and the chance always leans the way the effect does."""
    from abtest.stats.sequential import sequential_proportions

    base = Counts(n, round(0.10 * n))
    treat = Counts(n, round((0.10 + lift) * n))
    effect = sequential_proportions(base, treat, planned_n=2000)
    chance = decide_effect(effect).chance_to_beat
    if effect.p_value < 0.05:
        assert min(chance, 1 - chance) < 1 - _phi((2 * math.log(20)) ** 0.5) + 1e-12
    if effect.effect > 0:
        assert chance > 0.5
    elif effect.effect < 0:
        assert chance < 0.5
    flat = decide(effect.effect, effect.se).chance_to_beat
    assert abs(chance - 0.5) <= abs(flat - 0.5) + 1e-12  # the prior only ever shrinks toward no effect
