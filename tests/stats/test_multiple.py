"""Holm and Benjamini-Hochberg against R p.adjust."""

import pytest

from abtest.errors import ValidationError
from abtest.stats.multiple import adjust, benjamini_hochberg, holm

P = [0.01, 0.04, 0.03, 0.005, 0.5, 0.2]


def test_holm_matches_r():
    # R: p.adjust(pv, "holm")
    assert holm(P) == pytest.approx((0.05, 0.12, 0.12, 0.03, 0.5, 0.4), rel=1e-9)


def test_bh_matches_r():
    # R: p.adjust(pv, "BH")
    assert benjamini_hochberg(P) == pytest.approx((0.03, 0.06, 0.06, 0.03, 0.5, 0.24), rel=1e-9)


def test_capped_and_empty():
    # R: p.adjust(c(0.9, 0.8), "holm") = c(1, 1): 0.8 × 2 is capped at 1, then monotone
    assert holm([0.9, 0.8]) == (1.0, 1.0)
    assert max(holm([0.6, 0.7, 0.8])) <= 1.0
    assert adjust([]) == ()
    assert holm([0.03]) == (0.03,)


def test_validation():
    with pytest.raises(ValidationError):
        holm([0.1, 1.2])
    with pytest.raises(ValidationError):
        adjust([0.1], method="bonferroni")
