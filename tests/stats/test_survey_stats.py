"""Survey statistics against R (tests/stats/reference.R, "surveys"): the equal-response-rate check
is prop.test(answered, shown, correct = FALSE); CSAT's Wilson interval is prop.test's interval;
CES is t.test on the answers rebuilt from their counts, and Welch's t.test between variants."""

from __future__ import annotations

import random

import pytest

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.means import mean_interval, welch_test
from abtest.stats.questionnaires import csat_top_two_box
from abtest.stats.surveys import equal_rates, moments_of

CES_A = dict(zip(range(1, 8), (2, 3, 5, 9, 12, 8, 4), strict=True))
CES_B = dict(zip(range(1, 8), (1, 2, 4, 7, 11, 12, 9), strict=True))


def test_equal_rates_matches_r_prop_test_for_two_and_three_variants():
    two = equal_rates([120, 150], [300, 310])
    assert (two.statistic, two.df, two.p_value) == (pytest.approx(4.34703773982711, rel=1e-10), 1,
                                                     pytest.approx(0.0370733770246944, rel=1e-9))
    three = equal_rates([40, 52, 61], [100, 110, 105])
    assert (three.statistic, three.df, three.p_value) == (pytest.approx(6.82808476926124, rel=1e-10), 2,
                                                           pytest.approx(0.0329079047329533, rel=1e-9))


def test_equal_rates_refuses_what_it_cannot_judge():
    with pytest.raises(InsufficientData):
        equal_rates([0, 3], [0, 10])  # one variant never shown
    with pytest.raises(InsufficientData):
        equal_rates([10, 12], [10, 12])  # everyone answered: no rates to compare
    with pytest.raises(ValidationError):
        equal_rates([11, 3], [10, 10])
    with pytest.raises(ValidationError):
        equal_rates([1], [10])


def test_equal_rates_keeps_its_false_alarm_rate_under_an_equal_truth():
    """A/A: 2,000 simulated surveys with the same 40 % response rate in both variants."""
    rng = random.Random(17)
    alarms = 0
    for _ in range(2000):
        shown = [rng.randint(150, 250), rng.randint(150, 250)]
        answered = [sum(rng.random() < 0.4 for _ in range(n)) for n in shown]
        alarms += equal_rates(answered, shown).p_value < 0.05
    assert 0.035 <= alarms / 2000 <= 0.065


def test_csat_wilson_interval_matches_r():
    estimate = csat_top_two_box(37, 52)
    assert estimate.value == pytest.approx(37 / 52)
    assert (estimate.ci.low, estimate.ci.high) == (pytest.approx(0.577272119633157, rel=1e-9),
                                                   pytest.approx(0.816700395852901, rel=1e-9))


def test_ces_from_answer_counts_matches_r_t_test():
    estimate = mean_interval(moments_of(CES_A, 4.0))
    assert estimate.value == pytest.approx(4.53488372093023, rel=1e-12)
    assert (estimate.ci.low, estimate.ci.high) == (pytest.approx(4.05364542928211, rel=1e-10),
                                                   pytest.approx(5.01612201257836, rel=1e-10))
    effect = welch_test(moments_of(CES_A, 4.0), moments_of(CES_B, 4.0))
    assert effect.effect == pytest.approx(0.57381193124368, rel=1e-10)
    assert (effect.ci.low, effect.ci.high) == (pytest.approx(-0.0774253086921934, rel=1e-9),
                                               pytest.approx(1.22504917117955, rel=1e-9))
    assert effect.p_value == pytest.approx(0.0834115259541405, rel=1e-8)


def test_moments_do_not_depend_on_the_shift():
    assert moments_of(CES_A, 0.0).variance == pytest.approx(moments_of(CES_A, 4.0).variance, rel=1e-12)
