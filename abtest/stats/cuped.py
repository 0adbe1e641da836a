"""CUPED: variance reduction with a pre-experiment covariate (Deng, Xu, Kohavi & Walker 2013,
"Improving the sensitivity of online controlled experiments by utilizing pre-experiment data",
WSDM).

Each unit has the metric y and its pre-period value x. The adjusted metric
y − θ(x − x̄), with θ = cov(x, y) / var(x) estimated on all units pooled across variants, has the
same expected difference between variants (x is unaffected by treatment) and variance
var(y)(1 − ρ²). The comparison is then a Welch t-test on the adjusted metric. Everything comes
from per-variant sufficient statistics n, Σy, Σy², Σx, Σx², Σxy, taken around a shift of y and
of x (values close to the data, so that large means do not cancel the variances' digits away).
As in the paper, the uncertainty of θ itself is ignored (negligible at A/B-test sample sizes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.means import welch_from_parts
from abtest.stats.summary import Effect, _count, _finite


@dataclass(frozen=True, slots=True)
class CovariateMoments:
    """Per-variant sums for a metric y and its pre-period covariate x, around ``shift_y`` and
    ``shift_x``: ``sum_y`` = Σ(y − shift_y), ``sum_xy`` = Σ(x − shift_x)(y − shift_y) and so on
    (shifted sums keep the digits that Σy² − (Σy)²/n loses to cancellation when the mean is large)."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float
    shift_y: float = 0.0
    shift_x: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _count(self.n, "n"))
        for name in ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "shift_y", "shift_x"):
            object.__setattr__(self, name, _finite(getattr(self, name), name))

    @classmethod
    def from_values(cls, y: Iterable[float], x: Iterable[float]) -> CovariateMoments:
        """Build from per-unit values, around their means."""
        ys, xs = [float(v) for v in y], [float(v) for v in x]
        if len(ys) != len(xs):
            raise ValidationError("y and x must have the same length", field="x")
        cy = math.fsum(ys) / len(ys) if ys else 0.0
        cx = math.fsum(xs) / len(xs) if xs else 0.0
        dy, dx = [v - cy for v in ys], [v - cx for v in xs]
        return cls(
            len(ys),
            math.fsum(dy),
            math.fsum(v * v for v in dy),
            math.fsum(dx),
            math.fsum(v * v for v in dx),
            math.fsum(a * b for a, b in zip(dx, dy, strict=True)),
            cy,
            cx,
        )

    def recentred(self, shift_y: float, shift_x: float) -> CovariateMoments:
        """The same sums around other shifts (unchanged when they are equal)."""
        if shift_y == self.shift_y and shift_x == self.shift_x:
            return self
        n, dy, dx = self.n, self.shift_y - shift_y, self.shift_x - shift_x
        return CovariateMoments(
            n,
            self.sum_y + n * dy,
            max(0.0, self.sum_y2 + 2 * dy * self.sum_y + n * dy * dy),
            self.sum_x + n * dx,
            max(0.0, self.sum_x2 + 2 * dx * self.sum_x + n * dx * dx),
            self.sum_xy + dx * self.sum_y + dy * self.sum_x + n * dx * dy,
            shift_y,
            shift_x,
        )

    def _centred(self) -> tuple[float, float, float]:
        """(Σ(y−ȳ)², Σ(x−x̄)², Σ(x−x̄)(y−ȳ)) within this variant."""
        n = self.n
        syy = max(0.0, self.sum_y2 - self.sum_y**2 / n)
        sxx = max(0.0, self.sum_x2 - self.sum_x**2 / n)
        sxy = self.sum_xy - self.sum_x * self.sum_y / n
        return syy, sxx, sxy


@dataclass(frozen=True, slots=True)
class CupedResult:
    effect: Effect
    unadjusted: Effect
    theta: float
    adjusted_means: tuple[float, float]
    variance_reduction: float
    method: str = "CUPED (Deng et al. 2013), Welch t-test on the adjusted metric"


def cuped(
    baseline: CovariateMoments, treatment: CovariateMoments, alpha: float = 0.05
) -> CupedResult:
    """Welch comparison of treatment − baseline on the CUPED-adjusted metric.

    ``variance_reduction`` is 1 − Var(adjusted difference) / Var(unadjusted difference).
    Refuses when the covariate has no variance (θ undefined) or a variant has < 2 units.
    """
    for m, field in ((baseline, "baseline"), (treatment, "treatment")):
        if m.n < 2:
            raise InsufficientData("needs at least 2 units", field=field)
    treatment = treatment.recentred(baseline.shift_y, baseline.shift_x)  # pooled sums need one shift
    n = baseline.n + treatment.n
    sx = baseline.sum_x + treatment.sum_x
    sy = baseline.sum_y + treatment.sum_y
    pooled_sxx = baseline.sum_x2 + treatment.sum_x2 - sx * sx / n
    pooled_sxy = baseline.sum_xy + treatment.sum_xy - sx * sy / n
    if pooled_sxx <= 1e-12 * max(baseline.sum_x2 + treatment.sum_x2, 1e-300):
        raise InsufficientData("the pre-period covariate has no variance; CUPED cannot adjust")
    theta = pooled_sxy / pooled_sxx
    x_bar = sx / n  # pooled mean of x − shift_x

    parts = []
    for m in (baseline, treatment):
        syy, sxx, sxy = m._centred()
        var_y = syy / (m.n - 1)
        var_adj = max(0.0, (syy - 2 * theta * sxy + theta * theta * sxx) / (m.n - 1))
        mean_y = m.shift_y + m.sum_y / m.n
        mean_adj = mean_y - theta * (m.sum_x / m.n - x_bar)
        parts.append((mean_y, var_y, mean_adj, var_adj, m.n))
    (yb, vyb, ab, vab, nb), (yt, vyt, at, vat, nt) = parts
    # Both around the baseline's shifts: the differences come from the small shifted means, whole.
    diff_y = treatment.sum_y / nt - baseline.sum_y / nb
    diff_adj = diff_y - theta * (treatment.sum_x / nt - baseline.sum_x / nb)
    unadjusted = welch_from_parts(yb, vyb, nb, yt, vyt, nt, alpha, "Welch t-test", diff_y)
    adjusted = welch_from_parts(
        ab, vab, nb, at, vat, nt, alpha, "CUPED (Deng et al. 2013), Welch t-test on the adjusted metric", diff_adj
    )
    reduction = 1.0 - adjusted.se**2 / unadjusted.se**2
    return CupedResult(adjusted, unadjusted, theta, (ab, at), reduction)
