"""Sufficient statistics and the result records shared by every statistical family.

The statistics layer never sees raw events: the database aggregates per variant with
``GROUP BY`` and hands over counts and sums. These records validate those numbers once, at the
boundary, so the methods can trust them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from abtest.errors import InsufficientData, ValidationError

EffectKind = Literal["difference", "ratio"]


def _finite(value: float, field: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValidationError(f"must be a finite number, got {value!r}", field=field)
    return value


def _count(value: int, field: str) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValidationError(f"must be a whole number, got {value!r}", field=field)
    if value < 0:
        raise ValidationError(f"must be ≥ 0, got {value}", field=field)
    return int(value)


def check_alpha(alpha: float, field: str = "alpha") -> float:
    """Fail fast unless 0 < alpha < 1."""
    alpha = _finite(alpha, field)
    if not 0.0 < alpha < 1.0:
        raise ValidationError(f"must be between 0 and 1 (exclusive), got {alpha}", field=field)
    return alpha


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed interval ``[low, high]``; confidence intervals use it."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise InsufficientData("the interval is not finite")
        if self.low > self.high:
            raise ValueError(f"interval low {self.low} > high {self.high}")

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def clip(self, low: float, high: float) -> Interval:
        """The interval kept inside its parameter's range: a normal approximation knows no
        bounds, but a difference of two rates lies in [−1, 1] and a 1–7 rating in [1, 7]
        (R ``prop.test`` clips its interval the same way)."""
        return Interval(min(max(self.low, low), high), max(min(self.high, high), low))

    @property
    def width(self) -> float:
        return self.high - self.low

    def as_tuple(self) -> tuple[float, float]:
        return (self.low, self.high)


@dataclass(frozen=True, slots=True)
class Counts:
    """Conversions: ``x`` of ``n`` units converted (or ``x`` of ``n`` participants succeeded)."""

    n: int
    x: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _count(self.n, "n"))
        object.__setattr__(self, "x", _count(self.x, "x"))
        if self.x > self.n:
            raise ValidationError(f"conversions ({self.x}) exceed units ({self.n})", field="x")

    @property
    def rate(self) -> float:
        """Observed share ``x / n``; refuses ``n = 0`` rather than returning NaN."""
        if self.n == 0:
            raise InsufficientData("no units yet", field="n")
        return self.x / self.n


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, sum and sum of squares of a per-unit value: enough for means and variances.

    The sums are taken around ``shift``, a value close to the data: ``total`` = Σ(x − shift) and
    ``total_sq`` = Σ(x − shift)². Plain Σx² − (Σx)²/n cancels catastrophically when the mean is
    large against the spread (values 1e9 ± 1 keep no digit of their variance); around a nearby
    shift the sums stay small and the variance keeps its digits. ``shift = 0`` means plain sums.
    Moments add only around one shift (:meth:`recentred` moves them).

    For task times pass the moments of the *logs* (n, Σ log t, Σ (log t)²); see
    :func:`abtest.stats.durations.log_moments`.
    """

    n: int
    total: float
    total_sq: float
    shift: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _count(self.n, "n"))
        object.__setattr__(self, "total", _finite(self.total, "total"))
        object.__setattr__(self, "total_sq", _finite(self.total_sq, "total_sq"))
        object.__setattr__(self, "shift", _finite(self.shift, "shift"))
        if self.total_sq < 0:
            raise ValidationError("a sum of squares cannot be negative", field="total_sq")

    @classmethod
    def from_values(cls, values: Iterable[float]) -> Moments:
        """Build from per-unit values (tests and small in-memory studies), around their mean."""
        vals = [float(v) for v in values]
        shift = math.fsum(vals) / len(vals) if vals else 0.0
        return cls(len(vals), math.fsum(v - shift for v in vals), math.fsum((v - shift) ** 2 for v in vals), shift)

    def recentred(self, shift: float) -> Moments:
        """The same values' moments around another ``shift`` (exact when the shifts are equal)."""
        if shift == self.shift:
            return self
        d = self.shift - shift  # x − shift = (x − self.shift) + d
        total_sq = self.total_sq + 2.0 * d * self.total + self.n * d * d
        return Moments(self.n, self.total + self.n * d, max(total_sq, 0.0), shift)

    @property
    def mean(self) -> float:
        if self.n == 0:
            raise InsufficientData("no units yet", field="n")
        return self.shift + self.total / self.n

    @property
    def variance(self) -> float:
        """Sample variance (ddof = 1), clipped at 0 against rounding in Σd² − (Σd)²/n (d = x − shift)."""
        if self.n < 2:
            raise InsufficientData("a variance needs at least 2 units", field="n")
        centred = self.total_sq - self.total * self.total / self.n
        # Rounding can leave a tiny negative or tiny positive residue when all values are equal.
        if centred <= 1e-12 * max(self.total_sq, 1e-300):
            return 0.0
        return centred / (self.n - 1)

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance)


def mean_difference(baseline: Moments, treatment: Moments) -> float:
    """treatment.mean − baseline.mean from the shifted sums, so that means far from zero (1e9 ± 1)
    do not round the difference away: (shift_t − shift_b) is exact for nearby shifts."""
    if baseline.n == 0 or treatment.n == 0:
        raise InsufficientData("no units yet", field="n")
    return (treatment.shift - baseline.shift) + (treatment.total / treatment.n - baseline.total / baseline.n)


@dataclass(frozen=True, slots=True)
class Estimate:
    """One number for one variant with its interval: a rate, a mean, a geometric mean, a score."""

    value: float
    ci: Interval
    n: int
    method: str


@dataclass(frozen=True, slots=True)
class Effect:
    """A comparison of treatment against baseline.

    ``effect`` is treatment − baseline (``effect_kind = "difference"``) or treatment / baseline
    (``"ratio"``, task times). ``se`` is the standard error on the scale the test works on:
    the difference itself, or the log ratio for ``"ratio"`` (what a normal approximation such as
    :mod:`abtest.stats.bayes` needs). ``relative`` is the lift treatment / baseline − 1 with its
    own interval, or ``None`` where the baseline is zero and a lift has no meaning.
    """

    effect: float
    effect_kind: EffectKind
    ci: Interval
    p_value: float
    se: float
    method: str
    relative: float | None = None
    relative_ci: Interval | None = None
    statistic: float | None = None
    df: float | None = None
    # The prior variance of the true effect a test assumed, on the scale of ``se`` (the mSPRT's
    # normal mixture N(0, τ²)); a chance to beat beside the test then uses the same prior.
    prior_var: float | None = None

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


@lru_cache(maxsize=64)
def z_quantile(alpha: float) -> float:
    """Two-sided normal critical value z₁₋α/₂."""
    from scipy.special import ndtri

    return float(ndtri(1.0 - alpha / 2.0))


def normal_two_sided_p(stat: float) -> float:
    """2·(1 − Φ(|stat|)), computed as erfc(|stat|/√2) so it keeps precision in the far tail."""
    return clip_p(math.erfc(abs(stat) / math.sqrt(2.0)))


def t_two_sided_p(stat: float, df: float) -> float:
    """2·P(T_df > |stat|) for Student's t."""
    from scipy.special import stdtr

    return clip_p(2.0 * float(stdtr(df, -abs(stat))))


def t_quantile(alpha: float, df: float) -> float:
    """Two-sided t critical value t₁₋α/₂(df)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 1.0 - alpha / 2.0))


def clip_p(p: float) -> float:
    """Keep a p-value inside [0, 1] against floating-point overshoot."""
    if not math.isfinite(p):
        raise InsufficientData("the p-value is not finite")
    return min(1.0, max(0.0, float(p)))


def relative_lift(
    baseline: float, treatment: float, var_baseline: float, var_treatment: float, z: float
) -> tuple[float | None, Interval | None]:
    """Lift treatment / baseline − 1 with a delta-method interval (independent arms).

    Var(T/B) ≈ Var(T)/B² + T²·Var(B)/B⁴ (first-order Taylor expansion). Returns ``(None, None)``
    when the baseline is zero (or so close that the lift overflows): a lift relative to
    nothing is undefined.
    """
    if baseline == 0:
        return None, None
    try:
        ratio = treatment / baseline
        half = z * math.sqrt(max(var_treatment + ratio * ratio * var_baseline, 0.0)) / abs(baseline)
    except (OverflowError, ZeroDivisionError):
        return None, None
    if not (math.isfinite(ratio) and math.isfinite(half)):
        return None, None  # baseline too close to zero for a meaningful lift
    return ratio - 1.0, Interval(ratio - 1.0 - half, ratio - 1.0 + half)
