"""Sample-ratio mismatch: do the exposed units split as the weights say?

A split far from the configured weights means broken assignment or lost exposures, which
invalidates every comparison (Fabijan et al. 2019, "Diagnosing sample ratio mismatch in online
controlled experiments", KDD). The check is Pearson's chi-square goodness of fit against
expected counts weight × total (R ``chisq.test(units, p = weights)``); the alarm threshold is
strict (p < 0.001 by default) because the check runs on every experiment at every look.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.summary import _count, check_alpha, clip_p


@dataclass(frozen=True, slots=True)
class SrmResult:
    p_value: float
    alarm: bool
    statistic: float
    df: int
    expected: tuple[float, ...]
    method: str = "chi-square goodness of fit"


def srm_check(
    units: Sequence[int], weights: Sequence[float], threshold: float = 0.001
) -> SrmResult:
    """Chi-square goodness of fit of observed units per variant against the weights.

    ``weights`` must be positive and sum to 1 (±1e-9), the same rule as experiment
    definitions: nothing is normalised silently. ``alarm`` is ``p_value < threshold``.
    The statistic is Σ (observed − expected)² / expected, its p-value the chi-square survival
    function ``scipy.special.chdtrc`` (what ``scipy.stats.chisquare`` computes, checked against
    it and against R in the tests, without importing scipy.stats: every report runs this check,
    and that import costs about 0.4 s).
    """
    from scipy.special import chdtrc

    check_alpha(threshold, "threshold")
    if len(units) != len(weights):
        raise ValidationError(
            f"{len(units)} unit counts for {len(weights)} weights", field="units"
        )
    if len(units) < 2:
        raise ValidationError("needs at least 2 variants", field="units")
    counts = [_count(u, "units") for u in units]
    for w in weights:
        if not (math.isfinite(w) and w > 0):
            raise ValidationError(f"weights must be positive, got {w!r}", field="weights")
    if abs(math.fsum(weights) - 1.0) > 1e-9:
        raise ValidationError(f"weights must sum to 1, they sum to {math.fsum(weights)}", field="weights")
    total = sum(counts)
    if total == 0:
        raise InsufficientData("no units exposed yet", field="units")
    expected = tuple(w * total for w in weights)
    stat = math.fsum((o - e) ** 2 / e for o, e in zip(counts, expected, strict=True))
    df = len(counts) - 1
    p = clip_p(float(chdtrc(df, stat)))
    return SrmResult(p_value=p, alarm=p < threshold, statistic=stat, df=df, expected=expected)
