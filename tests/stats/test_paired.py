"""McNemar exact and mid-p against R and Fagerland et al. (2013)."""

import pytest

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.paired import mcnemar

REL = 1e-6


def test_fagerland_worked_example():
    # Fagerland, Lydersen & Laake (2013), BMC Med Res Methodol 13:91, airway
    # hyper-responsiveness example: 21 pairs, discordant 1 and 7 → exact P = 0.070, mid-P = 0.039.
    # R: binom.test(7, 8)$p.value = 0.0703125; mid-p by definition = 0.0390625.
    exact = mcnemar(21, 1, 7, mid_p=False)
    mid = mcnemar(21, 1, 7)
    assert exact.p_value == pytest.approx(0.0703125, rel=REL)
    assert mid.p_value == pytest.approx(0.0390625, rel=REL)
    assert round(exact.p_value, 3) == 0.070 and round(mid.p_value, 3) == 0.039
    assert "mid-p" in mid.method and "exact" in exact.method
    assert mid.effect == pytest.approx(6 / 21)


@pytest.mark.parametrize(
    ("b", "c", "exact", "mid"),
    [(5, 12, 0.143463134765625, 0.0962524414062501), (4, 4, 1.0, 1.0)],
)
def test_matches_r(b, c, exact, mid):
    # R: binom.test(c, b + c)$p.value; 2 * (pbinom(k, m, .5) - .5 * dbinom(k, m, .5))
    assert mcnemar(30, b, c, mid_p=False).p_value == pytest.approx(exact, rel=REL)
    assert mcnemar(30, b, c).p_value == pytest.approx(mid, rel=REL)


def test_paired_wald_interval():
    eff = mcnemar(40, 3, 9)
    se = ((3 + 9) - (9 - 3) ** 2 / 40) ** 0.5 / 40
    assert eff.se == pytest.approx(se)
    assert eff.ci.as_tuple() == pytest.approx((6 / 40 - 1.959963984540054 * se, 6 / 40 + 1.959963984540054 * se))


def test_edges():
    with pytest.raises(InsufficientData):
        mcnemar(10, 0, 0)
    with pytest.raises(ValidationError) as err:
        mcnemar(5, 3, 4)
    assert err.value.field == "treatment_only"
