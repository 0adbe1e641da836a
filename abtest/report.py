"""The results document (DESIGN §4.5) as small immutable records, and its plain-language verdict.

One document for every kind of test: each kind's analysis (:mod:`abtest.kinds`) fills the same
records, and a kind's own readings (a study's participants and comments) travel in ``details``.
``to_dict()`` gives the JSON of the results API and ``abtest analyze --format json``;
:mod:`abtest.report_text` gives its terminal text. A number that could not be computed is
``None`` with a ``reason`` beside it: the document never carries NaN or infinity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from abtest.stats.summary import Effect


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r} reached the report")
    return value


def _pair(values: tuple[float, float] | None) -> list[float | None] | None:
    return None if values is None else [_finite(values[0]), _finite(values[1])]


@dataclass(frozen=True, slots=True)
class VariantResult:
    variant: str
    n: int
    value: float | None
    ci: tuple[float, float] | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"variant": self.variant, "n": self.n, "value": _finite(self.value), "ci": _pair(self.ci)}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class Comparison:
    variant: str
    baseline: str
    effect: float | None
    effect_kind: str
    relative: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    p_adjusted: float | None
    significant: bool
    method: str
    chance_to_beat: float | None = None
    expected_loss: float | None = None
    reason: str | None = None
    ci_adjustment: str | None = None  # "Holm": the interval is at the level the adjusted decision uses
    # The comparison at another α (for that adjusted interval); not part of the document.
    at_level: Callable[[float], Effect] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "variant": self.variant, "baseline": self.baseline, "effect": _finite(self.effect),
            "effect_kind": self.effect_kind, "relative": _finite(self.relative), "ci": _pair(self.ci),
            "p_value": _finite(self.p_value), "p_adjusted": _finite(self.p_adjusted),
            "significant": self.significant, "method": self.method,
            "chance_to_beat": _finite(self.chance_to_beat), "expected_loss": _finite(self.expected_loss),
        }
        if self.reason:
            out["reason"] = self.reason
        if self.ci_adjustment:
            out["ci_adjustment"] = self.ci_adjustment
        return out


@dataclass(frozen=True, slots=True)
class SegmentResult:
    """One metric within one segment (exploratory: p-values Holm-adjusted across segments)."""

    segment: str
    variants: tuple[VariantResult, ...]
    comparisons: tuple[Comparison, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "variants": [v.to_dict() for v in self.variants],
                "comparisons": [c.to_dict() for c in self.comparisons]}


@dataclass(frozen=True, slots=True)
class MetricResult:
    name: str
    type: str
    primary: bool
    method: str  # how each variant's value and interval were computed
    variants: tuple[VariantResult, ...]
    comparisons: tuple[Comparison, ...]
    adjustment: str | None = None  # multiple-comparison correction applied to p_adjusted
    unit: str = ""  # how to read `value`: "rate", "seconds (geometric mean)", …
    reason: str | None = None  # why the metric has no numbers at all
    segments: tuple[SegmentResult, ...] = ()
    label: str = ""  # how a page names it ("buy-shoes: success"); the name when empty
    # Distribution metrics (quantiles): per variant (value, share of values ≤ it) points of the
    # empirical distribution, and the reference lines to draw over it (a vital's good/poor bounds).
    distribution: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()
    marks: tuple[tuple[str, float], ...] = ()

    def to_dict(self, with_segments: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "primary": self.primary, "method": self.method,
                               "unit": self.unit, "adjustment": self.adjustment,
                               "variants": [v.to_dict() for v in self.variants],
                               "comparisons": [c.to_dict() for c in self.comparisons]}
        if self.reason:
            out["reason"] = self.reason
        if self.distribution:
            out["distribution"] = {variant: [list(p) for p in points] for variant, points in self.distribution}
            out["marks"] = [{"label": label, "value": value} for label, value in self.marks]
        if with_segments:
            out["segments"] = [s.to_dict() for s in self.segments]
        return out


@dataclass(frozen=True, slots=True)
class SrmResult:
    p_value: float | None
    alarm: bool
    method: str = "chi-square goodness of fit"
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"p_value": _finite(self.p_value), "alarm": self.alarm, "method": self.method}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class PowerResult:
    target_n_per_variant: int | None
    progress: float | None
    method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"target_n_per_variant": self.target_n_per_variant, "progress": _finite(self.progress),
                "method": self.method}


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """The primary comparison as it stood at the end of one day (cumulative data)."""

    day: str
    variant: str
    units: int
    effect: float | None
    ci: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "variant": self.variant, "units": self.units, "effect": _finite(self.effect),
                "ci": _pair(self.ci)}


@dataclass(frozen=True, slots=True)
class SegmentUnits:
    """One segment of a breakdown: its units per variant and its own sample-ratio check."""

    segment: str
    units: dict[str, int]
    srm: SrmResult

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "units": dict(self.units), "srm": self.srm.to_dict()}


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Results split by one attribute (the value on each unit's first exposure)."""

    by: str
    segments: tuple[SegmentUnits, ...]
    message: str | None = None  # e.g. no unit carried the attribute
    method: str = ("exploratory: each segment's p-values Holm-adjusted across segments and variants, intervals at "
                   "the level that adjustment leaves; "
                   "the 20 largest segments, the rest pooled as (other)")

    @classmethod
    def nothing_carried(cls, by: str) -> Breakdown:
        # Also what a test with no units yet gets: nothing carried it *yet*.
        return cls(by, (), f"no unit's first exposure has carried the attribute {by!r} yet, so there is nothing "
                           "to break down by it")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"by": self.by, "exploratory": True, "method": self.method,
                               "segments": [s.to_dict() for s in self.segments]}
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True, slots=True)
class Report:
    experiment: str
    status: str
    analysis: str
    alpha: float
    units: dict[str, int]
    srm: SrmResult
    metrics: tuple[MetricResult, ...]
    power: PowerResult
    verdict: str
    excluded: dict[str, int] = field(default_factory=dict)
    series: tuple[SeriesPoint, ...] = ()
    horizon_reached: bool = True  # False: a fixed-horizon test short of its plan may not call a winner
    kind: str = "experiment"
    breakdown: Breakdown | None = None
    details: Any = None  # the kind's own readings (a record with to_dict), e.g. a study's participants
    before_exposure: dict[str, int] = field(default_factory=dict)  # per event: stamped before the unit's exposure

    def to_dict(self) -> dict[str, Any]:
        out = {
            "experiment": self.experiment, "kind": self.kind, "status": self.status, "analysis": self.analysis,
            "alpha": self.alpha, "units": dict(self.units), "excluded": dict(self.excluded),
            "before_exposure": dict(self.before_exposure),
            "srm": self.srm.to_dict(),
            "metrics": [m.to_dict(with_segments=self.breakdown is not None) for m in self.metrics],
            "power": self.power.to_dict(), "verdict": self.verdict, "horizon_reached": self.horizon_reached,
            "series": [p.to_dict() for p in self.series],
        }
        if self.breakdown is not None:
            out["breakdown"] = self.breakdown.to_dict()
        if self.details is not None:
            out.update(self.details.to_dict())
        return out

    @property
    def primary(self) -> MetricResult | None:
        return next((m for m in self.metrics if m.primary), None)


def _number(value: float) -> str:
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _ci_words(comparison: Comparison, level: str) -> str:
    """"95% CI", or "Holm-adjusted 95% CI" where the interval matches an adjusted decision."""
    ci = f"{level} CI".strip()
    return f"{comparison.ci_adjustment}-adjusted {ci}" if comparison.ci_adjustment else ci


def describe_effect(metric: MetricResult, comparison: Comparison, level: str = "") -> str:
    """'green raises purchase by 2.5 points (95% CI 0.5 to 4.5)': the effect always with its interval."""
    assert comparison.effect is not None and comparison.ci is not None
    low, high = comparison.ci
    ci = _ci_words(comparison, level)
    if comparison.effect_kind == "ratio":  # task times: below 1 is faster
        change = 1 - comparison.effect
        direction = "faster" if change > 0 else "slower"
        return (f"{comparison.variant} makes {metric.name} {abs(change):.0%} {direction} "
                f"(time ratio {comparison.effect:.2f}, {ci} {low:.2f} to {high:.2f})")
    verb = "raises" if comparison.effect > 0 else "lowers"
    if metric.unit == "rate":
        return (f"{comparison.variant} {verb} {metric.name} by {abs(comparison.effect) * 100:.1f} points "
                f"({ci} {low * 100:.1f} to {high * 100:.1f})")
    return (f"{comparison.variant} {verb} {metric.name} by {_number(abs(comparison.effect))} "
            f"({ci} {_number(low)} to {_number(high)})")


def describe_estimate(metric: MetricResult, comparison: Comparison, level: str = "") -> str:
    """'green against control: +1.8 points (95% CI −1.3 to 5.0)': the estimate without a claim,
    for results that are not significant (a verb such as "raises" would claim what is not known)."""
    assert comparison.effect is not None and comparison.ci is not None
    low, high = comparison.ci
    ci = _ci_words(comparison, level)
    who = f"{comparison.variant} against {comparison.baseline}"
    if comparison.effect_kind == "ratio":
        return f"{who}: {metric.name} time ratio {comparison.effect:.2f} ({ci} {low:.2f} to {high:.2f})"
    if metric.unit == "rate":
        return (f"{who}: {comparison.effect * 100:+.1f} points on {metric.name} "
                f"({ci} {low * 100:.1f} to {high * 100:.1f})")
    sign = "+" if comparison.effect > 0 else "−" if comparison.effect < 0 else "±"
    return f"{who}: {sign}{_number(abs(comparison.effect))} on {metric.name} ({ci} {_number(low)} to {_number(high)})"


def verdict(metric: MetricResult | None, analysis: str, alpha: float, power: PowerResult, total_units: int,
            horizon_reached: bool) -> str:
    """One sentence on the primary metric that never overstates what the data support."""
    if total_units == 0:
        return "No visitors yet: install the snippet (or call the assign API) and start the experiment."
    if metric is None:
        return "No primary metric is defined, so there is nothing to judge."
    if metric.reason:
        return f"No result for {metric.name}: {metric.reason}."
    usable = [c for c in metric.comparisons if c.effect is not None and c.ci is not None]
    if not usable:
        reasons = {c.reason for c in metric.comparisons if c.reason}
        return f"Not enough data on {metric.name} yet: {'; '.join(sorted(reasons)) or 'keep collecting'}."
    # What is known comes first; the estimate follows, with a claim only when it is significant.
    best = min(usable, key=lambda c: (c.p_adjusted if c.p_adjusted is not None else 1.0, -abs(c.effect or 0)))
    level = f"{1 - alpha:.0%}"
    if best.significant:
        return f"Significant: {describe_effect(metric, best, level)}."
    estimate = describe_estimate(metric, best, level)
    if not horizon_reached:
        progress = power.progress
        share = "no plan: stop the experiment to mark its end" if progress is None else \
            f"{progress:.0%} of the planned sample so far"
        return f"Too early to call {metric.name} (a fixed-horizon test; {share}). So far {estimate}."
    if analysis == "sequential":
        return (f"No difference detected yet in {metric.name}: {estimate}. The always-valid test allows "
                "either: keep it running, or stop with no winner.")
    return f"No difference detected in {metric.name} at the planned sample, so no winner: {estimate}."

