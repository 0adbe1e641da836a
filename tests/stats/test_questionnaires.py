"""Questionnaire scoring and statistics: SUS (Brooke 1996; Sauro-Lewis grades), UMUX-Lite, NPS,
SEQ, CSAT, CES. Scoring comes from the one declaration of each (abtest.questionnaires)."""

import math

import pytest

from abtest.errors import InsufficientData, ValidationError
from abtest.questionnaires import CES, CSAT, NPS, QUESTIONNAIRES, SEQ, SUS, UMUX_LITE
from abtest.stats.questionnaires import (
    NpsCounts,
    csat_top_two_box,
    nps,
    nps_difference,
    nps_paired_difference,
    sus_grade,
    sus_percentile,
    umux_sus_adjusted,
)
from abtest.stats.summary import Moments

sus_score = SUS.score


def test_sus_scoring():
    assert sus_score([5, 1] * 5) == 100.0
    assert sus_score([1, 5] * 5) == 0.0
    assert sus_score([3] * 10) == 50.0
    # Brooke (1996): odd items score − 1, even items 5 − score, sum × 2.5
    assert sus_score([4, 2, 4, 1, 5, 2, 4, 2, 4, 3]) == (3 + 3 + 3 + 4 + 4 + 3 + 3 + 3 + 3 + 2) * 2.5


@pytest.mark.parametrize(
    ("score", "grade"),
    [(100, "A+"), (84.1, "A+"), (84.0, "A"), (80.8, "A"), (80.7, "A-"), (78.9, "A-"),
     (78.8, "B+"), (77.2, "B+"), (77.1, "B"), (74.1, "B"), (74.0, "B-"), (72.6, "B-"),
     (72.5, "C+"), (71.1, "C+"), (71.0, "C"), (68.0, "C"), (65.0, "C"), (64.9, "C-"),
     (62.7, "C-"), (62.6, "D"), (51.7, "D"), (51.6, "F"), (0, "F")],
)
def test_sus_curved_grades(score, grade):
    assert sus_grade(score) == grade


def test_sus_percentile_normal_approximation():
    assert sus_percentile(68) == pytest.approx(50.0)
    # 80.5 = 68 + 12.5 is one sd above the mean: Φ(1) = 0.8413447
    assert sus_percentile(80.5) == pytest.approx(84.13447, abs=1e-4)


def test_sus_validation_names_item():
    with pytest.raises(ValidationError) as err:
        sus_score([3] * 9)
    assert err.value.field == "answers"
    with pytest.raises(ValidationError) as err:
        sus_score([3, 3, 3, 6, 3, 3, 3, 3, 3, 3])
    assert err.value.field == "answers[4]"
    with pytest.raises(ValidationError):
        sus_score([3, 3, 3, 2.5, 3, 3, 3, 3, 3, 3])
    with pytest.raises(ValidationError):
        sus_grade(101)


def test_umux_lite():
    # Lewis, Utesch & Maher (2013): raw = (i1 + i2 − 2)/12 × 100; SUS-comparable 0.65 raw + 22.9
    assert UMUX_LITE.score([7, 7]) == pytest.approx(100.0) and umux_sus_adjusted(100.0) == pytest.approx(87.9)
    assert UMUX_LITE.score([5, 6]) == pytest.approx(75.0)
    assert umux_sus_adjusted(75.0) == pytest.approx(0.65 * 75 + 22.9)
    assert UMUX_LITE.score([1, 1]) == 0.0
    with pytest.raises(ValidationError) as err:
        UMUX_LITE.score([0, 5])
    assert err.value.field == "answers[1]"


def test_seq_csat_and_ces():
    assert SEQ.score([7]) == 7
    with pytest.raises(ValidationError):
        SEQ.score([8])
    assert CSAT.band(4).code == 1 and CSAT.band(3).code == 0 and CSAT.band(5).name == "satisfied"
    est = csat_top_two_box(30, 40)
    assert est.value == 0.75 and est.ci.contains(0.75)
    assert CES.score([6]) == 6 and CES.scale.low == 1 and CES.scale.high == 7


def test_every_declaration_scores_inside_its_range():
    """Each linear score's extremes are its declared range (the statistics bound intervals by it)."""
    for q in QUESTIONNAIRES.values():
        low, high = [q.scale.low] * len(q.items), [q.scale.high] * len(q.items)
        if hasattr(q.scoring, "weights"):
            best = [q.scale.high if w > 0 else q.scale.low for w in q.scoring.weights]
            worst = [q.scale.low if w > 0 else q.scale.high for w in q.scoring.weights]
            assert (q.score(worst), q.score(best)) == pytest.approx((q.scoring.low, q.scoring.high)), q.name
        else:  # bands cover the scale without gaps or overlaps
            covered = sorted(a for b in q.scoring.bands for a in range(b.low, b.high + 1))
            assert covered == list(range(q.scale.low, q.scale.high + 1)), q.name
            assert q.band(low[0]) and q.band(high[0])


def test_nps_and_trinomial_se():
    assert [NPS.band(a).name for a in (0, 6, 7, 8, 9, 10)] == [
        "detractor", "detractor", "passive", "passive", "promoter", "promoter"]
    est = nps(promoters=50, passives=30, detractors=20)
    assert est.value == pytest.approx(30.0)
    se = math.sqrt((0.5 + 0.2 - 0.3**2) / 100)
    assert est.ci.as_tuple() == pytest.approx((100 * (0.3 - 1.959963984540054 * se), 100 * (0.3 + 1.959963984540054 * se)))
    with pytest.raises(InsufficientData):
        nps(10, 0, 0)
    with pytest.raises(InsufficientData):
        nps(1, 0, 0)
    with pytest.raises(ValidationError):
        NPS.band(11)


class TestNpsDifference:
    """Reference numbers from ``Rscript tests/stats/reference.R`` (lines ``nps_diff…`` and
    ``nps_paired``): effect, SE, p-value, CI low, CI high, all in NPS points. The paired line is
    R's own ``t.test(paired = TRUE)``; the independent lines follow Rocks' (2016) adjusted-Wald."""

    def test_independent_designs_use_adjusted_wald(self):
        # design A: 12 promoters, 18 passives, 10 detractors (NPS 5); B: 25 / 15 / 8 (NPS 35.4)
        effect = nps_difference(NpsCounts(12, 18, 10), NpsCounts(25, 15, 8))
        assert effect.effect == pytest.approx(30.4166666666667, rel=1e-6)  # the plain difference
        assert effect.se == pytest.approx(15.4093292034533, rel=1e-6)
        assert effect.p_value == pytest.approx(0.0626946234110406, rel=1e-6)
        assert effect.ci.as_tuple() == pytest.approx((-1.51955972205404, 58.8839008073254), rel=1e-6)
        assert effect.effect_kind == "difference" and "adjusted-Wald" in effect.method
        assert not effect.significant(0.05)

    def test_adjusted_wald_has_an_interval_even_when_everyone_is_a_promoter(self):
        effect = nps_difference(NpsCounts(4, 0, 0), NpsCounts(6, 0, 0))
        assert effect.effect == 0.0
        assert effect.se == pytest.approx(32.9859885681321, rel=1e-6)
        assert effect.p_value == pytest.approx(0.7727934545148, rel=1e-6)
        assert effect.ci.as_tuple() == pytest.approx((-55.1275400641792, 74.1751591117983), rel=1e-6)

    def test_swapping_the_designs_flips_the_sign_only(self):
        forward = nps_difference(NpsCounts(12, 18, 10), NpsCounts(25, 15, 8))
        backward = nps_difference(NpsCounts(25, 15, 8), NpsCounts(12, 18, 10))
        assert backward.effect == pytest.approx(-forward.effect)
        assert backward.p_value == pytest.approx(forward.p_value)

    def test_paired_difference_is_a_paired_t_test_on_the_codes(self):
        # 12 participants rated both designs; per-person code differences: five +1, seven 0.
        differences = Moments.from_values([0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0])
        effect = nps_paired_difference(differences)
        assert effect.effect == pytest.approx(41.6666666666667, rel=1e-6)
        assert effect.se == pytest.approx(14.8647097502641, rel=1e-6)
        assert effect.p_value == pytest.approx(0.0171804873430132, rel=1e-6)
        assert effect.ci.as_tuple() == pytest.approx((8.94966109726594, 74.3836722360674), rel=1e-6)
        assert "paired t-test" in effect.method

    def test_false_positive_rate_at_usability_sample_sizes(self):
        """A/A: 8 respondents per design drawn from the same 30/40/30 split, 4,000 times. The
        adjusted-Wald test must stay at or under α (binomial 99.7 % band); plain Wald gave 8 %."""
        import numpy as np

        rng = np.random.default_rng(20261201)
        a = rng.multinomial(8, [0.3, 0.4, 0.3], size=4000)
        b = rng.multinomial(8, [0.3, 0.4, 0.3], size=4000)
        rejected = sum(nps_difference(NpsCounts(*map(int, x)), NpsCounts(*map(int, y))).p_value < 0.05
                       for x, y in zip(a, b, strict=True))
        assert rejected / 4000 <= 0.05 + 3 * (0.05 * 0.95 / 4000) ** 0.5

    def test_refuses_what_has_no_standard_error(self):
        with pytest.raises(InsufficientData):
            nps_difference(NpsCounts(1, 0, 0), NpsCounts(5, 3, 2))  # one respondent
        with pytest.raises(InsufficientData):
            nps_paired_difference(Moments.from_values([1, 1, 1]))  # every change identical
        with pytest.raises(ValidationError):
            NpsCounts(-1, 2, 3)
