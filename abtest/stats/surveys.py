"""Survey statistics beyond the questionnaires' own (:mod:`abtest.stats.questionnaires`).

* Equal response rates: when a survey is linked to an A/B experiment, a variant that changes who
  answers biases every comparison of the answers (the people answering in one variant are not
  like those answering in the other). The check is Pearson's chi-square test of equal
  proportions across the k variants, answered / shown, without continuity correction: R
  ``prop.test(answered, shown, correct = FALSE)``, computed by statsmodels'
  ``proportions_chisquare``.
* Answers as counts: a 1–5 or 0–10 answer per visitor, counted per value, gives the mean and
  variance of the CES exactly (:func:`moments_of`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.summary import Moments, _count, clip_p

EQUAL_RATES_METHOD = "Pearson chi-square test of equal response rates across variants (no continuity correction)"


@dataclass(frozen=True, slots=True)
class RateCheck:
    statistic: float
    df: int
    p_value: float
    method: str = EQUAL_RATES_METHOD


def equal_rates(answered: Sequence[int], shown: Sequence[int]) -> RateCheck:
    """Are the response rates ``answered[i] / shown[i]`` of k ≥ 2 groups equal?"""
    from statsmodels.stats.proportion import proportions_chisquare

    if len(answered) != len(shown) or len(shown) < 2:
        raise ValidationError("needs answered and shown counts of at least 2 variants", field="shown")
    x = [_count(a, "answered") for a in answered]
    n = [_count(s, "shown") for s in shown]
    if any(a > s for a, s in zip(x, n, strict=True)):
        raise ValidationError("more visitors answered than were shown the survey", field="answered")
    if any(s == 0 for s in n):
        raise InsufficientData("the survey has not been shown in every variant yet", field="shown")
    if sum(x) in (0, sum(n)):
        raise InsufficientData("every visitor shown the survey answered, or none did: no rates to compare",
                               field="answered")
    statistic, p_value, _tables = proportions_chisquare(x, n)
    return RateCheck(float(statistic), len(n) - 1, clip_p(float(p_value)))


def moments_of(counts: Mapping[int, int], shift: float = 0.0) -> Moments:
    """Moments of the values behind ``{value: how many}`` (around ``shift``, a value near the data)."""
    n = sum(counts.values())
    total = sum(k * (v - shift) for v, k in counts.items())
    total_sq = sum(k * (v - shift) ** 2 for v, k in counts.items())
    return Moments(n, float(total), float(total_sq), float(shift))
