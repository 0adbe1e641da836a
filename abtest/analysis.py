"""An A/B experiment's results: a pure function of (definition, aggregate source, now) → Report.

No SQL here. Each metric type (:data:`abtest.metrics.METRIC_TYPES`) names the aggregate it
needs; the source answers per variant (and per segment for a breakdown); the type turns the
answers into estimates and effects, and this module assembles them: Holm across variants, the
Bayesian view, the sample-ratio check, progress toward the planned sample, the daily series of
the primary metric, the verdict. A fixed-horizon test may call a winner only at its planned
sample (without a plan, when the designer stops it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from abtest.aggregates.base import AggregateSource, Aggregates, EventTotals, ExposedUnits, Failed, Request, Slice
from abtest.comparisons import adjust, comparison, segment_results, variant_row
from abtest.definitions import ExperimentDef
from abtest.errors import AbtestError, InsufficientData
from abtest.metrics import METRIC_TYPES, ComparisonPlan, MetricDef
from abtest.report import (
    Breakdown,
    MetricResult,
    PowerResult,
    Report,
    SegmentResult,
    SegmentUnits,
    SeriesPoint,
    SrmResult,
    verdict,
)
from abtest.stats.summary import Counts

DEFAULT_PLANNED_N = 10_000  # tunes the always-valid test when the experiment states no plan


def requests(definition: ExperimentDef) -> list[Request]:
    """What this experiment's report needs from the source."""
    out: list[Request] = [ExposedUnits()]
    out += [METRIC_TYPES[m.type].request(m) for m in definition.metrics]
    series = _series_request(definition.primary_metric)
    if series is not None:
        out.append(series)
    return out


def _series_request(metric: MetricDef | None) -> Request | None:
    """The daily series follows the primary metric, when its type keeps one."""
    return None if metric is None else METRIC_TYPES[metric.type].series_request(metric)


def planned_n(definition: ExperimentDef) -> tuple[int | None, str | None]:
    from abtest.stats.power import sample_size_proportions

    plan = definition.plan
    if plan is None:
        return None, None
    if plan.units_per_variant is not None:
        return plan.units_per_variant, "planned units per variant (from the definition)"
    assert plan.baseline is not None and plan.mde is not None
    size = sample_size_proportions(plan.baseline, plan.mde, alpha=definition.alpha, power=plan.power,
                                   variants=len(definition.variants))
    return size.n_per_variant, size.method


def _metric(definition: ExperimentDef, metric: MetricDef, answers: Slice, plan: ComparisonPlan
            ) -> tuple[MetricResult, tuple[Any, ...], tuple[Any, ...]]:
    """One metric's variant rows and (unadjusted) comparisons on one slice of the units."""
    kind = METRIC_TYPES[metric.type]
    stats: Mapping[str, Any] = answers.get(kind.request(metric), {})
    if isinstance(stats, Failed):
        raise InsufficientData(stats.reason)
    summaries = {k: kind.summary(v) for k, v in stats.items()}
    variants = tuple(variant_row(key, summaries[key][0] if key in summaries else 0,
                                 (lambda s=summaries[key][1]: kind.estimate(s, plan.alpha)) if key in summaries else None)
                     for key in definition.variant_keys)
    baseline = definition.variant_keys[0]
    comparisons = tuple(
        comparison(key, baseline, kind.effect_kind,
                   (lambda a, b=summaries[baseline][1], t=summaries[key][1]: kind.compare(b, t, replace(plan, alpha=a)))
                   if baseline in summaries and key in summaries else None,
                   plan.alpha, higher_is_better=kind.prefers_higher(metric))
        for key in definition.variant_keys[1:])
    distribution = tuple((key, points) for key in definition.variant_keys if key in summaries
                         for points in [kind.distribution(summaries[key][1])] if points)
    result = MetricResult(metric.name, metric.type, metric.primary, kind.method(metric, plan), (), (),
                          "Holm" if len(definition.variants) > 2 else None, kind.unit(metric),
                          distribution=distribution, marks=kind.marks(metric) if distribution else ())
    return result, variants, comparisons


def _metric_or_reason(definition: ExperimentDef, metric: MetricDef, answers: Slice, plan: ComparisonPlan,
                      allowed: bool) -> MetricResult:
    """A metric whose data cannot be summarised reports why instead of failing the whole report."""
    try:
        result, variants, comparisons = _metric(definition, metric, answers, plan)
    except AbtestError as exc:
        return MetricResult(metric.name, metric.type, metric.primary, "", (), (), reason=exc.message)
    return replace(result, variants=variants, comparisons=adjust(comparisons, plan.alpha, allowed))


def _segments(definition: ExperimentDef, metric: MetricDef, aggregates: Aggregates, plan: ComparisonPlan,
              allowed: bool) -> tuple[SegmentResult, ...]:
    """The metric in each segment; the whole family (segments × variants) Holm-adjusted together."""
    parts = []
    for segment in aggregates.segments:
        try:
            _result, variants, comparisons = _metric(definition, metric, segment.answers, plan)
        except AbtestError:
            variants, comparisons = (), ()
        parts.append((segment.value, variants, comparisons))
    return segment_results(parts, plan.alpha, allowed)


def srm(units: Mapping[str, int], definition: ExperimentDef) -> SrmResult:
    from abtest.stats.srm import srm_check

    try:
        result = srm_check([units.get(k, 0) for k in definition.variant_keys], list(definition.weights))
    except AbtestError as exc:
        return SrmResult(None, False, reason=exc.message)
    return SrmResult(result.p_value, result.alarm, result.method)


def _series(definition: ExperimentDef, metric: MetricDef | None, rows: list[tuple[str, str, str | None, int]],
            plan: ComparisonPlan) -> tuple[SeriesPoint, ...]:
    """Cumulative effect of each variant on the primary conversion metric, day by day."""
    if metric is None or not rows:
        return ()
    kind = METRIC_TYPES[metric.type]
    days = sorted({d for _v, d, _c, _n in rows} | {c for _v, _d, c, _n in rows if c is not None})
    points = []
    baseline = definition.variant_keys[0]
    for day in days:
        # As the data stood at the end of ``day``: units exposed by then, conversions made by then.
        totals = {k: [0, 0] for k in definition.variant_keys}
        for variant, exposed_day, converted_day, n in rows:
            if variant in totals and exposed_day <= day:
                totals[variant][0] += n
                if converted_day is not None and converted_day <= day:
                    totals[variant][1] += n
        for key in definition.variant_keys[1:]:
            base, treat = Counts(*totals[baseline]), Counts(*totals[key])
            try:
                # Each day's interval on its own (no running intersection), so the last point is
                # exactly the interval the tables and the verdict state.
                effect = kind.compare(base, treat, plan)
                points.append(SeriesPoint(day, key, base.n + treat.n, effect.effect, effect.ci.as_tuple()))
            except AbtestError:
                points.append(SeriesPoint(day, key, base.n + treat.n, None, None))
    return tuple(points)


def analyze(definition: ExperimentDef, source: AggregateSource, now: datetime, by: str | None = None) -> Report:
    """The whole results document of one experiment, from the source's aggregates now."""
    from abtest.stats.power import progress as progress_of

    aggregates = source.fetch(definition.key, definition.variant_keys, requests(definition), now, by)
    whole = aggregates.whole
    counts = whole[ExposedUnits()]
    units = {k: counts.units.get(k, 0) for k in definition.variant_keys}
    target, target_method = planned_n(definition)
    smallest = min(units.values())
    progress = progress_of(smallest, target) if target else None
    sequential = definition.analysis == "sequential"
    # A fixed-horizon test may call a winner only at its planned sample; without a plan, the
    # designer's stop marks the horizon.
    horizon = (smallest >= target) if target else definition.status in ("stopped", "archived")
    allowed = sequential or horizon
    plan = ComparisonPlan(definition.alpha, sequential, target or DEFAULT_PLANNED_N, definition.cuped)
    metrics = []
    for metric in definition.metrics:
        result = _metric_or_reason(definition, metric, whole, plan, allowed)
        # Whole-test-only aggregates (order statistics) have no per-segment answers to compare.
        if aggregates.segments and not METRIC_TYPES[metric.type].request(metric).whole_only:
            result = replace(result, segments=_segments(definition, metric, aggregates, plan, allowed))
        metrics.append(result)
    series_request = _series_request(definition.primary_metric)
    series = _series(definition, definition.primary_metric, whole.get(series_request, []) if series_request else [],
                     plan)
    total = sum(units.values())
    srm_result = srm(units, definition)
    power = PowerResult(target, progress, target_method)
    primary = next((m for m in metrics if m.primary), None)
    text = verdict(primary, definition.analysis, definition.alpha, power, total, allowed)
    if srm_result.alarm:
        text = ("Sample ratio mismatch: the split of units is off the configured weights "
                f"(p = {srm_result.p_value:.2g}), so the results are not trustworthy until its cause is found. " + text)
    return Report(definition.key, definition.status, definition.analysis, definition.alpha, units, srm_result,
                  tuple(metrics), power, text, dict(counts.excluded), series, horizon_reached=allowed,
                  breakdown=_breakdown(aggregates, definition), before_exposure=_before_exposure(whole))


def _before_exposure(whole: Slice) -> dict[str, int]:
    """Per event, the conversions stamped before their unit's first exposure: accepted, counted
    in no metric, and so reported as left out rather than dropped silently."""
    out = {}
    for request, answer in whole.values.items():
        if isinstance(request, EventTotals) and isinstance(answer, Mapping):
            n = sum(stat.before_exposure for stat in answer.values())
            if n:
                out[request.event] = n
    return out


def _breakdown(aggregates: Aggregates, definition: ExperimentDef) -> Breakdown | None:
    """Each segment's units per variant with its own sample-ratio check."""
    if aggregates.by is None:
        return None
    if not aggregates.segments:
        return Breakdown.nothing_carried(aggregates.by)
    rows = []
    for segment in aggregates.segments:
        counts = segment.answers.get(ExposedUnits())
        units = {k: (counts.units.get(k, 0) if counts else 0) for k in definition.variant_keys}
        rows.append(SegmentUnits(segment.value, units, srm(units, definition)))
    return Breakdown(aggregates.by, tuple(rows))
