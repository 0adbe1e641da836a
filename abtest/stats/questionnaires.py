"""Statistics of standard usability questionnaires: grades, percentiles and intervals.

How each questionnaire is asked and scored is declared once in :mod:`abtest.questionnaires`.

* SUS (Brooke 1996): 0–100. Grade on the Sauro-Lewis curved grading scale (*Quantifying the User Experience*,
  2nd ed., table 8.5). Percentile rank by a normal approximation of the SUS distribution with
  mean 68 and sd 12.5 (Sauro 2011, *A Practical Guide to the System Usability Scale*): an
  approximation of Sauro's published lookup table, good to a few percentile points.
* UMUX-Lite (Lewis, Utesch & Maher 2013, CHI): the SUS-comparable regression 0.65 × raw + 22.9.
* NPS (Reichheld 2003): 0–10; promoters 9–10, detractors 0–6; NPS = %promoters − %detractors on
  −100..100, with the trinomial standard error √((p₊ + p₋ − (p₊ − p₋)²)/n) and a Wald interval.
  Two designs: the difference of two independent scores by the adjusted-Wald method (Rocks 2016,
  The American Statistician; recommended by Sauro & Lewis): per design ¾ is added to promoters
  and to detractors and 3 to n before the trinomial variances are summed, z-test and interval on
  the adjusted difference; the plain Wald version rejected a true null 8–13 % of the time at 5–8
  respondents per design in our simulation, the adjusted one ≤ 5 %. For the same participants
  rating both designs: a paired t-test on each participant's difference of codes (promoter +1,
  passive 0, detractor −1), whose mean is the NPS difference.
* CSAT: share answering 4 or 5 on a 1–5 scale (top-2-box), with a Wilson interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.summary import (
    Counts,
    Effect,
    Estimate,
    Interval,
    Moments,
    _count,
    check_alpha,
    normal_two_sided_p,
    t_two_sided_p,
    z_quantile,
)

# (lower bound, grade), highest first: Sauro-Lewis curved grading scale.
SUS_GRADES: tuple[tuple[float, str], ...] = (
    (84.1, "A+"),
    (80.8, "A"),
    (78.9, "A-"),
    (77.2, "B+"),
    (74.1, "B"),
    (72.6, "B-"),
    (71.1, "C+"),
    (65.0, "C"),
    (62.7, "C-"),
    (51.7, "D"),
    (0.0, "F"),
)
SUS_MEAN, SUS_SD = 68.0, 12.5


def _sus_range(score: float) -> float:
    if not (math.isfinite(score) and 0.0 <= score <= 100.0):
        raise ValidationError(f"a SUS score is within 0–100, got {score}", field="score")
    return float(score)


def sus_grade(score: float) -> str:
    """Letter grade on the Sauro-Lewis curved grading scale (A+ … F).

    Boundaries are the published ones to one decimal (A+ 84.1–100 … F 0–51.6); a score between
    two published ranges (e.g. 84.05) gets the lower grade.
    """
    score = _sus_range(score)
    for lower, grade in SUS_GRADES:
        if score >= lower:
            return grade
    return "F"  # pragma: no cover - 0.0 is the last lower bound


def sus_percentile(score: float) -> float:
    """Percentile rank 0–100 of a SUS score: Φ((score − 68) / 12.5) × 100 (normal
    approximation of Sauro's benchmark distribution)."""
    from scipy.special import ndtr

    score = _sus_range(score)
    return float(ndtr((score - SUS_MEAN) / SUS_SD)) * 100.0


def umux_sus_adjusted(raw: float) -> float:
    """UMUX-Lite's raw score (0–100) on the SUS scale: 0.65 × raw + 22.9 (Lewis et al. 2013)."""
    return 0.65 * raw + 22.9


@dataclass(frozen=True, slots=True)
class NpsCounts:
    """Promoters (9–10), passives (7–8) and detractors (0–6) of one design: all NPS needs."""

    promoters: int
    passives: int
    detractors: int

    def __post_init__(self) -> None:
        for name in ("promoters", "passives", "detractors"):
            _count(getattr(self, name), name)

    @property
    def n(self) -> int:
        return self.promoters + self.passives + self.detractors

    def score_and_variance(self) -> tuple[float, float]:
        """(p₊ − p₋, its trinomial variance (p₊ + p₋ − (p₊ − p₋)²)/n), on the −1..1 scale."""
        n = self.n
        if n < 2:
            raise InsufficientData("NPS needs at least 2 respondents", field="n")
        pp, pd = self.promoters / n, self.detractors / n
        score = pp - pd
        return score, (pp + pd - score * score) / n


NPS_METHOD = "Net Promoter Score, Wald interval with trinomial standard error"
NPS_DIFFERENCE_METHOD = ("difference of two independent NPS: adjusted-Wald z-test and interval "
                         "(¾ added to promoters and detractors and 3 to n per design; Rocks 2016)")
NPS_PAIRED_METHOD = ("paired t-test on each participant's difference of NPS codes "
                     "(promoter +1, passive 0, detractor −1)")
ADJUSTMENT = 0.75  # added to promoters and to detractors (and 1.5 to passives: n + 3), Rocks 2016


def nps(promoters: int, passives: int, detractors: int, alpha: float = 0.05) -> Estimate:
    """Net Promoter Score on −100..100 with a Wald interval from the trinomial standard error.

    Refuses fewer than 2 respondents, and a sample where everyone is in one group (the
    standard error is zero, so the interval would be a point).
    """
    check_alpha(alpha)
    counts = NpsCounts(promoters, passives, detractors)
    score, var = counts.score_and_variance()
    if var <= 0:
        raise InsufficientData("every respondent is in the same group; no spread for an interval")
    half = z_quantile(alpha) * math.sqrt(var)
    return Estimate(100 * score, Interval(100 * (score - half), 100 * (score + half)).clip(-100.0, 100.0),
                    counts.n, NPS_METHOD)


def nps_difference(baseline: NpsCounts, treatment: NpsCounts, alpha: float = 0.05) -> Effect:
    """NPS of ``treatment`` − NPS of ``baseline`` (different respondents), in NPS points.

    The effect is the plain difference of the two scores, as the tables show them. Its test and
    interval are adjusted-Wald: each design's proportions become (promoters + ¾)/(n + 3) and
    (detractors + ¾)/(n + 3), the two trinomial variances add, and z and the interval are built
    around the adjusted difference. Not for the same people rating both designs (their answers
    correlate): use :func:`nps_paired_difference`.
    """
    check_alpha(alpha)
    raw_b, _ = baseline.score_and_variance()  # also refuses fewer than 2 respondents
    raw_t, _ = treatment.score_and_variance()
    (adj_b, var_b), (adj_t, var_t) = _adjusted(baseline), _adjusted(treatment)
    se = math.sqrt(var_b + var_t)
    centre, stat = adj_t - adj_b, (adj_t - adj_b) / se
    half = z_quantile(alpha) * se
    ci = Interval(100 * (centre - half), 100 * (centre + half)).clip(-200.0, 200.0)  # NPS spans −100..100
    return Effect(100 * (raw_t - raw_b), "difference", ci, normal_two_sided_p(stat), 100 * se, NPS_DIFFERENCE_METHOD,
                  statistic=stat)


def _adjusted(counts: NpsCounts) -> tuple[float, float]:
    """Adjusted-Wald NPS (−1..1) of one design and its trinomial variance."""
    n = counts.n + 4 * ADJUSTMENT
    pp, pd = (counts.promoters + ADJUSTMENT) / n, (counts.detractors + ADJUSTMENT) / n
    score = pp - pd
    return score, (pp + pd - score * score) / n


def nps_paired_difference(differences: Moments, alpha: float = 0.05) -> Effect:
    """NPS difference when every participant rated both designs (within subjects), in NPS points.

    ``differences`` are the moments of each participant's code on the treatment minus their
    code on the baseline (codes: promoter +1, passive 0, detractor −1; each difference is in
    −2..2). Their mean is exactly the NPS difference; the test is the paired t-test on them
    (R ``t.test(b, a, paired = TRUE)`` on the codes), like the other within-subjects scores, so a
    person's agreement between their two ratings narrows the interval.
    """
    from abtest.stats.means import mean_interval

    check_alpha(alpha)
    n = differences.n
    if n < 2:
        raise InsufficientData("a paired NPS difference needs at least 2 participants who rated both designs",
                               field="n")
    if differences.variance <= 0:
        raise InsufficientData("every participant's change is the same: the difference has no standard error")
    estimate = mean_interval(differences, alpha)
    se = math.sqrt(differences.variance / n)
    stat = estimate.value / se
    ci = Interval(100 * estimate.ci.low, 100 * estimate.ci.high).clip(-200.0, 200.0)
    return Effect(100 * estimate.value, "difference", ci, t_two_sided_p(stat, n - 1), 100 * se, NPS_PAIRED_METHOD,
                  statistic=stat, df=n - 1)


def csat_top_two_box(top_two: int, n: int, alpha: float = 0.05) -> Estimate:
    """CSAT as the share of 4s and 5s on a 1–5 scale, with a Wilson interval."""
    from abtest.stats.proportions import wilson_interval

    est = wilson_interval(Counts(n, top_two), alpha)
    return Estimate(est.value, est.ci, est.n, "CSAT top-2-box share, Wilson score interval")
