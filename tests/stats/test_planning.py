"""The "how many participants" planner against published figures and closed forms."""

from __future__ import annotations

import math

import pytest

from abtest.errors import ValidationError
from abtest.stats.planning import (
    adjusted_wald_margin,
    discovery_chance,
    participants_for_discovery,
    participants_for_margin,
)


def test_nielsen_landauer_five_users():
    # Nielsen & Landauer (1993), mean problem frequency 0.31: five users see 84.4 % ("about 85 %")
    # of the problems, fifteen practically all (Nielsen 2000, "Why you only need to test with 5 users").
    assert discovery_chance(0.31, 5) == pytest.approx(1 - 0.69 ** 5) == pytest.approx(0.8436, abs=1e-4)
    assert discovery_chance(0.31, 15) == pytest.approx(0.9962, abs=1e-4)
    assert participants_for_discovery(0.31, 0.84) == 5
    # Strictly, 85 % needs a sixth participant: 0.8436 < 0.85 ≤ 1 − 0.69⁶ = 0.8922.
    assert participants_for_discovery(0.31, 0.85) == 6


@pytest.mark.parametrize(("p", "target", "n"), [
    # Sauro & Lewis (2016) ch. 7: n = ln(1 − goal) / ln(1 − p), rounded up.
    (0.01, 0.85, 189), (0.05, 0.85, 37), (0.10, 0.90, 22), (0.25, 0.90, 9), (0.50, 0.90, 4), (0.50, 0.99, 7),
])
def test_participants_for_discovery_is_the_smallest_n(p, target, n):
    assert participants_for_discovery(p, target) == n
    assert discovery_chance(p, n) >= target > discovery_chance(p, n - 1)


def test_discovery_edges():
    assert discovery_chance(0.3, 0) == 0
    assert discovery_chance(1.0, 1) == 1 and discovery_chance(0.0, 50) == 0
    for bad in (0, 1, -0.1, 1.5, math.nan, "0.3", True):
        with pytest.raises(ValidationError):
            participants_for_discovery(bad, 0.85)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        discovery_chance(0.3, -1)


def test_margin_at_one_half_matches_the_closed_form():
    # At p = 0.5 the adjusted rate stays 0.5, so n = z²·0.25/d² − z² exactly (Sauro & Lewis ch. 6).
    z2 = 1.959963984540054 ** 2
    for margin in (0.1, 0.15, 0.2, 0.3):
        assert participants_for_margin(0.5, margin) == math.ceil(z2 * 0.25 / margin ** 2 - z2)
    assert participants_for_margin(0.5, 0.2) == 21
    assert adjusted_wald_margin(0.5, 21) == pytest.approx(0.1966, abs=1e-4)
    assert adjusted_wald_margin(0.5, 20) > 0.2


@pytest.mark.parametrize(("rate", "margin"), [(0.8, 0.1), (0.9, 0.15), (0.7, 0.2), (1.0, 0.2), (0.05, 0.05)])
def test_participants_for_margin_is_the_smallest_n(rate, margin):
    n = participants_for_margin(rate, margin)
    assert adjusted_wald_margin(rate, n) <= margin
    assert n == 1 or adjusted_wald_margin(rate, n - 1) > margin
    # A higher confidence needs more people.
    assert participants_for_margin(rate, margin, alpha=0.01) > n


def test_margin_refuses_nonsense():
    for rate, margin in ((0.5, 0), (0.5, 0.7), (1.2, 0.1), (0.5, math.inf)):
        with pytest.raises(ValidationError):
            participants_for_margin(rate, margin)
