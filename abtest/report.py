"""The results document (DESIGN §4.5) as small immutable records, and its plain-language verdict.

One document for every kind of test: each kind's analysis (:mod:`abtest.kinds`) fills the same
records, and a kind's own readings (a study's participants and comments) travel in ``details``.
``to_dict()`` gives the JSON of the results API and ``abtest analyze --format json``. A number
that could not be computed is ``None`` with a ``reason`` beside it: the document never carries
NaN or infinity.
"""

from __future__ import annotations

import math
import textwrap
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

    def to_dict(self, with_segments: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "primary": self.primary, "method": self.method,
                               "unit": self.unit, "adjustment": self.adjustment,
                               "variants": [v.to_dict() for v in self.variants],
                               "comparisons": [c.to_dict() for c in self.comparisons]}
        if self.reason:
            out["reason"] = self.reason
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

    def to_dict(self) -> dict[str, Any]:
        out = {
            "experiment": self.experiment, "kind": self.kind, "status": self.status, "analysis": self.analysis,
            "alpha": self.alpha, "units": dict(self.units), "excluded": dict(self.excluded),
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


def describe_effect(metric: MetricResult, comparison: Comparison, level: str = "") -> str:
    """'green raises purchase by 2.5 points (95% CI 0.5 to 4.5)': the effect always with its interval."""
    assert comparison.effect is not None and comparison.ci is not None
    low, high = comparison.ci
    ci = f"{level} CI".strip()
    if comparison.ci_adjustment:
        ci = f"{comparison.ci_adjustment}-adjusted {ci}"
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
    best = min(usable, key=lambda c: (c.p_adjusted if c.p_adjusted is not None else 1.0, -abs(c.effect or 0)))
    sentence = describe_effect(metric, best, level=f"{1 - alpha:.0%}")
    if best.significant:
        return f"{sentence}; significant."
    if not horizon_reached:
        progress = power.progress
        share = "no plan: stop the experiment to mark its end" if progress is None else \
            f"{progress:.0%} of the planned sample so far"
        return f"{sentence}; too early to call a fixed-horizon test ({share})."
    if analysis == "sequential":
        return f"{sentence}; not significant yet (always-valid test: keep it running or stop with no winner)."
    return f"{sentence}; not significant at the planned sample: no winner."


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "rate":
        return f"{value * 100:.2f}%"
    if unit == "points":  # a difference of two rates, in percentage points
        return f"{value * 100:+.2f} pts"
    if unit == "ratio":
        return f"{value:.3f}x"
    return f"{value:,.4g}"


def _chance(value: float | None) -> str:
    if value is None:
        return "–"
    return ">99.9%" if value > 0.999 else "<0.1%" if value < 0.001 else f"{value:.1%}"


def _fmt_ci(ci: tuple[float, float] | None, unit: str) -> str:
    if ci is None:
        return "–"
    return f"[{_fmt(ci[0], unit)}, {_fmt(ci[1], unit)}]"


WIDTH = 100  # ``to_text`` keeps every line within this many columns


def _wrap(text: str, indent: str = "", hanging: str | None = None) -> list[str]:
    """One paragraph wrapped to ``WIDTH``; continuation lines indented by ``hanging``."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  " if hanging is None
                         else hanging, break_on_hyphens=False) or [indent.rstrip()]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return [line(cells).rstrip() for cells in [header, ["-" * w for w in widths], *rows]]


def _widest(lines: list[str]) -> int:
    return max((len(line) for line in lines), default=0)


def _fit_table(header: list[str], rows: list[list[str]], text_column: int | None = None, *,
               below: bool = False, shared: bool = True) -> list[str]:
    """``_table`` within ``WIDTH``. The text column (method, note) moves below the table when
    ``below`` or when the table is too wide: as one line ``method: …`` if every row shares it (and
    ``shared`` allows), else as numbered notes ``[1] …`` the rows point to. A table still too wide
    loses the columns that hold no number in any row (``–`` throughout), then puts each row's name
    on a line of its own."""
    lines = _table(header, rows)
    if _widest(lines) <= WIDTH and not below:
        return lines
    notes: list[str] = []
    if text_column is not None and rows:
        texts = [r[text_column] for r in rows]
        distinct = list(dict.fromkeys(t for t in texts if t))
        if shared and len(distinct) == 1 and all(texts):
            notes = _wrap(f"{header[text_column]}: {distinct[0]}")
            header = [c for i, c in enumerate(header) if i != text_column]
            rows = [[c for i, c in enumerate(r) if i != text_column] for r in rows]
        elif distinct:
            marks = {text: f"[{i}]" for i, text in enumerate(distinct, 1)}
            notes = [line for text, mark in marks.items()
                     for line in _wrap(f"{mark} {text}", hanging=" " * (len(mark) + 1))]
            rows = [[marks.get(c, "") if i == text_column else c for i, c in enumerate(r)] for r in rows]
        lines = _table(header, rows)
    if _widest(lines) > WIDTH:  # columns with no number in any row say nothing: drop them
        keep = [i for i in range(len(header)) if i == 0 or any(r[i] != "–" for r in rows)]
        header, rows = [header[i] for i in keep], [[r[i] for i in keep] for r in rows]
        lines = _table(header, rows)
    if _widest(lines) > WIDTH:
        lines = _stacked(header, rows) or lines
    return lines + notes


def _stacked(header: list[str], rows: list[list[str]]) -> list[str] | None:
    """When the first column (long variant or segment names) is what makes a table too wide:
    each row's name on a line of its own, its cells indented below it (None if they do not fit)."""
    rest = _table(header[1:], [r[1:] for r in rows])
    if _widest(rest) + 2 > WIDTH:
        return None
    out = [header[0], *("  " + line for line in rest[:2])]
    for row, cells in zip(rows, rest[2:]):
        out += [*_wrap(row[0], hanging="    "), "  " + cells]
    return out


def _comparison_rows(metric: MetricResult, comparisons: tuple[Comparison, ...], prefix: str = "") -> list[list[str]]:
    rows = []
    for c in comparisons:
        effect_unit = "ratio" if c.effect_kind == "ratio" else "points" if metric.unit == "rate" else ""
        rows.append([f"{prefix}{c.variant} vs {c.baseline}", _fmt(c.effect, effect_unit), _fmt_ci(c.ci, effect_unit),
                     "–" if c.p_value is None else f"{c.p_value:.3g}",
                     "–" if c.p_adjusted is None else f"{c.p_adjusted:.3g}",
                     _chance(c.chance_to_beat), "yes" if c.significant else "no", c.reason or c.method])
    return rows


_COMPARISON_HEADER = ["comparison", "effect", "CI", "p", "p adj.", "P(beat)", "signif.", "method"]


def _comparison_table(metric: MetricResult, comparisons: tuple[Comparison, ...],
                      prefixes: list[str] | None = None) -> list[str]:
    """The comparisons with their method below the table (why a row has no numbers, as a note)."""
    if not comparisons:
        return []
    rows = [row for i, c in enumerate(comparisons)
            for row in _comparison_rows(metric, (c,), prefixes[i] if prefixes else "")]
    return _fit_table(_COMPARISON_HEADER, rows, text_column=7, below=True,
                      shared=not any(c.reason for c in comparisons))


def to_text(report: Report) -> str:
    """The report as aligned plain-text tables for a terminal (``abtest analyze``), every line
    within ``WIDTH`` columns: sentences wrap, each comparison table names its method below itself,
    and a table still too wide is condensed as ``_fit_table`` says."""
    kind = "" if report.kind == "experiment" else f"{report.kind}, "
    out = [*_wrap(f"{report.experiment}  ({kind}{report.status}, {report.analysis} analysis, alpha {report.alpha})"),
           "", *_wrap(report.verdict, hanging=""), ""]
    units = ", ".join(f"{k} {v:,}" for k, v in report.units.items())
    out += _wrap(f"units: {units}")
    if any(report.excluded.values()):
        out += _wrap("excluded: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report.excluded.items() if v))
    srm = report.srm
    srm_text = srm.reason or f"p = {srm.p_value:.3g}" + ("  ALARM: the split is off the weights" if srm.alarm else "")
    out += _wrap(f"sample ratio ({srm.method}): {srm_text}")
    if report.power.target_n_per_variant:
        out += _wrap(f"planned: {report.power.target_n_per_variant:,} units per variant, "
                     f"{(report.power.progress or 0):.0%} reached")
    if report.breakdown is not None:
        out += ["", *_wrap(f"by {report.breakdown.by} ({report.breakdown.method})", hanging="    ")]
        if report.breakdown.message:
            out += _wrap(report.breakdown.message)
        for segment in report.breakdown.segments:
            alarm = "  ALARM: the split is off the weights" if segment.srm.alarm else ""
            out += _wrap(f"{segment.segment}: " + ", ".join(f"{k} {v:,}" for k, v in segment.units.items()) + alarm,
                         indent="  ", hanging="      ")
    for metric in report.metrics:
        head = f"{metric.name}  [{metric.type}{', primary' if metric.primary else ''}]"
        about = f"value: {metric.unit}; {metric.method}"
        out += ["", f"{head}  {about}"] if len(head) + 2 + len(about) <= WIDTH else ["", *_wrap(head),
                                                                                   *_wrap(about, "  ", "  ")]
        if metric.reason:
            out += _wrap(f"no result: {metric.reason}")
            continue
        out += _fit_table(["variant", "n", "value", "95% CI" if report.alpha == 0.05 else "CI", "note"],
                          [[v.variant, f"{v.n:,}", _fmt(v.value, metric.unit), _fmt_ci(v.ci, metric.unit),
                            v.reason or ""] for v in metric.variants], text_column=4)
        if metric.comparisons:
            out.append("")
            out += _comparison_table(metric, metric.comparisons)
        if metric.segments:
            out += ["", *_wrap(f"by {report.breakdown.by if report.breakdown else 'segment'} (exploratory; p adj.: "
                               "Holm across segments)")]
            out += _comparison_table(metric, tuple(c for s in metric.segments for c in s.comparisons),
                                     [f"{s.segment}: " for s in metric.segments for _c in s.comparisons]) or \
                ["no comparison in any segment"]
    if report.details is not None and hasattr(report.details, "to_text"):
        out.append("")
        for line in report.details.to_text():
            indent = line[:len(line) - len(line.lstrip())]
            out += _wrap(line.strip(), indent) if len(line) > WIDTH else [line]
    return "\n".join(out) + "\n"
