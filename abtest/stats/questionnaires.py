"""Statistics of standard usability questionnaires: grades, percentiles and intervals.

How each questionnaire is asked and scored is declared once in :mod:`abtest.questionnaires`.

* SUS (Brooke 1996): 0–100. Grade on the Sauro-Lewis curved grading scale (*Quantifying the User Experience*,
  2nd ed., table 8.5). Percentile rank from a score → percentile table of Sauro's published
  percentiles (:data:`SUS_PERCENTILE_TABLE`: both ends of the percentile range of every grade of
  that scale, plus the point values Sauro publishes; his full per-score table, sold with *A
  Practical Guide to the System Usability Scale* (2011), is not reproduced), interpolated linearly
  between its rows and kept inside the band of the score's grade, so that the grade and the
  percentile shown beside it always agree.
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
from bisect import bisect_right
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
# Percentile range of each grade on the same scale (Sauro & Lewis 2016, table 8.5).
SUS_GRADE_PERCENTILES: dict[str, tuple[float, float]] = {
    "A+": (96.0, 100.0), "A": (90.0, 95.0), "A-": (85.0, 89.0), "B+": (80.0, 84.0),
    "B": (70.0, 79.0), "B-": (65.0, 69.0), "C+": (60.0, 64.0), "C": (41.0, 59.0),
    "C-": (35.0, 40.0), "D": (15.0, 34.0), "F": (0.0, 14.0),
}

# SUS score → percentile rank, (score, percentile) rows in increasing score; interpolated linearly.
# Sources, named on each row:
#   CGS  Sauro & Lewis (2016), Quantifying the User Experience, 2nd ed., table 8.5, the curved
#        grading scale: every grade's score range and percentile range; one row at each end of
#        every range (so 80.8, the lowest A, is the 90th percentile and 80.7, the highest A-, the 89th).
#   S11  Sauro (2011), "Measuring Usability with the System Usability Scale (SUS)", measuringu.com/sus
#        (the summary of A Practical Guide to the System Usability Scale): 68 is the 50th percentile,
#        74 the 70th, 80.3 the 90th (an A is the top 10 %), a score below 51 the bottom 15 %.
#   S18  Sauro (2018), "5 Ways to Interpret a SUS Score", measuringu.com/interpret-sus-score: 68 is
#        the 50th percentile, 75 the 73rd, 52 the 15th.
#   GLH  the F range split at 25 (0–25 → 0–1.9, 25.1–51.6 → 2–14), as GitLab's UX handbook page
#        "System Usability Scale" (handbook.gitlab.com) prints Sauro's scale. The only rows not
#        taken from Sauro's own text; without them F would be a straight line from 0 to 51.6.
# S11 predates CGS (another database). Where they differ, the S11 point is kept as close as the CGS
# band of its grade allows: 80.3 is an A- on CGS (85–89), so 89 rather than 90; 51 is an F (0–14),
# so 14 rather than 15. S11's 74 → 70 and S18's 52 → 15 need no row of their own: the CGS rows put
# them at 69.0 and 15.5.
SUS_PERCENTILE_TABLE: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),     # CGS: F 0–51.6 is 0–14
    (25.0, 1.9),    # GLH: 0–25 is 0–1.9
    (25.1, 2.0),    # GLH: 25.1–51.6 is 2–14
    (51.0, 14.0),   # S11: below 51 is the bottom 15 %; held at 14, the top of F (CGS)
    (51.6, 14.0),   # CGS: F
    (51.7, 15.0),   # CGS: D 51.7–62.6 is 15–34
    (62.6, 34.0),   # CGS: D
    (62.7, 35.0),   # CGS: C- 62.7–64.9 is 35–40
    (64.9, 40.0),   # CGS: C-
    (65.0, 41.0),   # CGS: C 65.0–71.0 is 41–59
    (68.0, 50.0),   # S11, S18: 68 is the 50th percentile (also the middle of C on CGS)
    (71.0, 59.0),   # CGS: C
    (71.1, 60.0),   # CGS: C+ 71.1–72.5 is 60–64
    (72.5, 64.0),   # CGS: C+
    (72.6, 65.0),   # CGS: B- 72.6–74.0 is 65–69
    (74.0, 69.0),   # CGS: B-
    (74.1, 70.0),   # CGS: B 74.1–77.1 is 70–79
    (75.0, 73.0),   # S18: 75 is the 73rd percentile
    (77.1, 79.0),   # CGS: B
    (77.2, 80.0),   # CGS: B+ 77.2–78.8 is 80–84
    (78.8, 84.0),   # CGS: B+
    (78.9, 85.0),   # CGS: A- 78.9–80.7 is 85–89
    (80.3, 89.0),   # S11: 80.3 is the 90th percentile; held at 89, the top of A- (CGS)
    (80.7, 89.0),   # CGS: A-
    (80.8, 90.0),   # CGS: A 80.8–84.0 is 90–95
    (84.0, 95.0),   # CGS: A
    (84.1, 96.0),   # CGS: A+ 84.1–100 is 96–100
    (100.0, 100.0),  # CGS: A+
)
_TABLE_SCORES = tuple(score for score, _ in SUS_PERCENTILE_TABLE)


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
    """Percentile rank 0–100 of a SUS score from the table of Sauro's published percentiles.

    Linear interpolation between the rows of :data:`SUS_PERCENTILE_TABLE`, then kept inside the
    percentile band of the score's grade on the curved grading scale: a score between two
    published ranges (e.g. 80.75) gets the lower grade from :func:`sus_grade`, and so the top of
    that grade's band (89), not a value between the two bands.
    """
    score = _sus_range(score)
    i = min(max(bisect_right(_TABLE_SCORES, score), 1), len(SUS_PERCENTILE_TABLE) - 1)
    (x0, y0), (x1, y1) = SUS_PERCENTILE_TABLE[i - 1], SUS_PERCENTILE_TABLE[i]
    value = y0 + (y1 - y0) * (score - x0) / (x1 - x0)
    low, high = SUS_GRADE_PERCENTILES[sus_grade(score)]
    return min(max(value, low), high)


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
