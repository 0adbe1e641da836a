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
