"""From stored events to a results :class:`~abtest.report.Report`.

The database does the counting: one ``GROUP BY`` per metric turns events into sufficient
statistics per variant (units, conversions, sums, sums of squares, sums of log times), with the
same query text on SQLite and PostgreSQL. Python only sees those few numbers per variant and
hands them to :mod:`abtest.stats`; no raw event list is ever loaded.

Who counts: a unit's first exposure fixes its variant and start time. Units exposed to more than
one variant, and units forced by a QA override, are left out (and counted in ``excluded``).
A conversion counts when it happened at or after the unit's first exposure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from abtest import registry
from abtest.definitions import ExperimentDef, MetricDef
from abtest.errors import AbtestError
from abtest.models import Event
from abtest.report import Comparison, MetricResult, PowerResult, Report, SeriesPoint, SrmResult, VariantResult, verdict
from abtest.stats.summary import Counts, Effect, Estimate, Moments

DEFAULT_PLANNED_N = 10_000  # tunes the always-valid test when the experiment states no plan
_EV = Event.__table__  # type: ignore[attr-defined]


# ---- SQL: sufficient statistics ----------------------------------------------------------------

class _elapsed_days(FunctionElement[float]):  # noqa: N801 - reads as a SQL function
    """Days from ``earlier`` to ``later`` as a float: the one date sum that needs dialect SQL."""

    type = sa.Float()
    inherit_cache = True
    name = "elapsed_days"


@compiles(_elapsed_days, "sqlite")
def _elapsed_days_sqlite(element, compiler, **kw):  # type: ignore[no-untyped-def]
    later, earlier = list(element.clauses)
    return f"(julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)}))"


@compiles(_elapsed_days, "postgresql")
def _elapsed_days_postgresql(element, compiler, **kw):  # type: ignore[no-untyped-def]
    later, earlier = list(element.clauses)
    return f"(EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})) / 86400.0)"


def _timeline(experiment_id: int, include: sa.ColumnElement[bool] | None = None) -> sa.Subquery:
    """The experiment's exposures (plus the events one metric needs), each row carrying its
    unit's first exposure time: a window over one scan, so no per-unit join is needed."""
    is_exposure = _EV.c.type == "exposure"
    return (
        sa.select(
            _EV.c.unit, _EV.c.type, _EV.c.variant, _EV.c.forced, _EV.c.ts, _EV.c.value, _EV.c.duration_ms,
            sa.func.min(sa.case((is_exposure, _EV.c.ts))).over(partition_by=_EV.c.unit).label("first_ts"),
        )
        .where(_EV.c.experiment_id == experiment_id, is_exposure if include is None else sa.or_(is_exposure, include))
        .subquery("timeline")
    )


def _per_unit(timeline: sa.Subquery, *measures: sa.ColumnElement[object]) -> sa.Subquery:
    """One row per analysable unit: exposed to exactly one variant and never forced."""
    exposure = timeline.c.type == "exposure"
    return (
        sa.select(timeline.c.unit, sa.func.min(sa.case((exposure, timeline.c.variant))).label("variant"), *measures)
        .group_by(timeline.c.unit)
        .having(sa.func.count(sa.distinct(sa.case((exposure, timeline.c.variant)))) == 1,
                sa.func.max(sa.case((sa.and_(exposure, timeline.c.forced), 1), else_=0)) == 0)
        .subquery("per_unit")
    )


def _unit_counts(conn: sa.Connection, experiment_id: int) -> tuple[dict[str, int], dict[str, int]]:
    """Exposed units per variant, and how many were excluded (forced, or seen in several variants)."""
    t = _timeline(experiment_id)
    per_unit = (
        sa.select(
            sa.case(
                (sa.func.max(sa.case((t.c.forced, 1), else_=0)) == 1, "forced"),
                (sa.func.count(sa.distinct(t.c.variant)) > 1, "multiple_variants"),
                else_=sa.func.min(t.c.variant),
            ).label("bucket")
        ).group_by(t.c.unit).subquery("per_unit")
    )
    rows = conn.execute(sa.select(per_unit.c.bucket, sa.func.count()).group_by(per_unit.c.bucket)).all()
    counts = {str(bucket): int(n) for bucket, n in rows}
    excluded = {"forced": counts.pop("forced", 0), "multiple_variants": counts.pop("multiple_variants", 0)}
    return counts, excluded


@dataclass(frozen=True, slots=True)
class _ValueStats:
    units: Counts
    post: Moments
    pre: Moments
    cross: float  # Σ post·pre, for CUPED


def _value_stats(conn: sa.Connection, experiment_id: int, event: str) -> dict[str, _ValueStats]:
    """Per variant: units converting on ``event`` at or after exposure, and per-unit value sums
    after (the metric) and before exposure (CUPED's covariate)."""
    t = _timeline(experiment_id, sa.and_(_EV.c.type == "conversion", _EV.c.event == event))
    conversion = t.c.type == "conversion"
    after = sa.and_(conversion, t.c.ts >= t.c.first_ts)
    before = sa.and_(conversion, t.c.ts < t.c.first_ts)
    value = sa.func.coalesce(t.c.value, 0.0)
    per_unit = _per_unit(
        t,
        sa.func.sum(sa.case((after, 1), else_=0)).label("k"),
        sa.func.sum(sa.case((after, value), else_=0.0)).label("post"),
        sa.func.sum(sa.case((before, value), else_=0.0)).label("pre"),
    )
    rows = conn.execute(
        sa.select(
            per_unit.c.variant, sa.func.count(), sa.func.sum(sa.case((per_unit.c.k > 0, 1), else_=0)),
            sa.func.sum(per_unit.c.post), sa.func.sum(per_unit.c.post * per_unit.c.post),
            sa.func.sum(per_unit.c.pre), sa.func.sum(per_unit.c.pre * per_unit.c.pre),
            sa.func.sum(per_unit.c.post * per_unit.c.pre),
        ).group_by(per_unit.c.variant)
    ).all()
    return {
        variant: _ValueStats(Counts(n, int(x or 0)), Moments(n, float(s or 0), float(ss or 0)),
                             Moments(n, float(p or 0), float(pp or 0)), float(sp or 0))
        for variant, n, x, s, ss, p, pp, sp in rows
    }


def _retention_stats(conn: sa.Connection, experiment_id: int, days: int) -> dict[str, Counts]:
    """Per variant: units seen again (any event) at least ``days`` days after first exposure."""
    t = _timeline(experiment_id, _EV.c.type != "exposure")
    back = _elapsed_days(t.c.ts, t.c.first_ts) >= days
    per_unit = _per_unit(t, sa.func.max(sa.case((back, 1), else_=0)).label("back"))
    rows = conn.execute(
        sa.select(per_unit.c.variant, sa.func.count(), sa.func.sum(per_unit.c.back)).group_by(per_unit.c.variant)
    ).all()
    return {variant: Counts(n, int(x or 0)) for variant, n, x in rows}


def _duration_stats(conn: sa.Connection, experiment_id: int, task: str) -> dict[str, Moments]:
    """Per variant: moments of each unit's mean log time (seconds) over successful attempts."""
    t = _timeline(experiment_id, sa.and_(_EV.c.type == "task", _EV.c.task == task, _EV.c.success.is_(True),
                                         _EV.c.duration_ms > 0))
    timed = sa.and_(t.c.type == "task", t.c.ts >= t.c.first_ts)
    per_unit = _per_unit(t, sa.func.avg(sa.case((timed, sa.func.ln(t.c.duration_ms / 1000.0)))).label("log_t"))
    rows = conn.execute(
        sa.select(per_unit.c.variant, sa.func.count(), sa.func.sum(per_unit.c.log_t),
                  sa.func.sum(per_unit.c.log_t * per_unit.c.log_t))
        .where(per_unit.c.log_t.is_not(None)).group_by(per_unit.c.variant)
    ).all()
    return {variant: Moments(n, float(s or 0), float(ss or 0)) for variant, n, s, ss in rows}


def _daily_conversions(conn: sa.Connection, experiment_id: int, event: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(UTC day of first exposure, variant) → (units, converted units), for the cumulative chart."""
    t = _timeline(experiment_id, sa.and_(_EV.c.type == "conversion", _EV.c.event == event))
    converted = sa.and_(t.c.type == "conversion", t.c.ts >= t.c.first_ts)
    per_unit = _per_unit(
        t,
        sa.func.substr(sa.cast(sa.func.min(t.c.first_ts), sa.String), 1, 10).label("day"),
        sa.func.max(sa.case((converted, 1), else_=0)).label("converted"),
    )
    rows = conn.execute(
        sa.select(per_unit.c.day, per_unit.c.variant, sa.func.count(), sa.func.sum(per_unit.c.converted))
        .group_by(per_unit.c.day, per_unit.c.variant)
    ).all()
    return {(str(d), v): (int(n), int(x or 0)) for d, v, n, x in rows}


# ---- statistics: one metric -----------------------------------------------------------------------

def _planned_n(definition: ExperimentDef) -> tuple[int | None, str | None]:
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


def _safe(compute: Callable[[], Estimate]) -> tuple[Estimate | None, str | None]:
    try:
        return compute(), None
    except AbtestError as exc:
        return None, exc.message


def _variant_rows(definition: ExperimentDef, stats: dict[str, tuple[int, Callable[[], Estimate]]]) -> tuple[VariantResult, ...]:
    """Each variant's value and interval, or the reason it has none (in definition order)."""
    rows = []
    for key in definition.variant_keys:
        entry = stats.get(key)
        if entry is None:
            rows.append(VariantResult(key, 0, None, None, "no units yet"))
            continue
        n, compute = entry
        result, reason = _safe(compute)
        rows.append(VariantResult(key, n, result.value if result else None,
                                  result.ci.as_tuple() if result else None, reason))
    return tuple(rows)


def _compare(metric: MetricDef, definition: ExperimentDef, baseline_key: str, pairs, compute,  # type: ignore[no-untyped-def]
             significance_allowed: bool) -> tuple[Comparison, ...]:
    """Run ``compute(baseline, treatment)`` per treatment; Holm-adjust; add the Bayesian view."""
    from abtest.stats.bayes import decide_effect
    from abtest.stats.multiple import holm

    effects: list[tuple[str, Effect | None, str | None]] = []
    for key in definition.variant_keys[1:]:
        base, treat = pairs.get(baseline_key), pairs.get(key)
        if base is None or treat is None:
            effects.append((key, None, "no units yet in one of the variants"))
            continue
        try:
            effects.append((key, compute(base, treat), None))
        except AbtestError as exc:
            effects.append((key, None, exc.message))
    p_values = [e.p_value for _k, e, _r in effects if e is not None]
    adjusted = iter(holm(p_values) if len(p_values) > 1 else p_values)
    higher_is_better = metric.type != "duration"
    out = []
    for key, effect, reason in effects:
        if effect is None:
            out.append(Comparison(key, baseline_key, None, "ratio" if metric.type == "duration" else "difference",
                                  None, None, None, None, False, "", reason=reason))
            continue
        p_adj = next(adjusted)
        try:
            decision = decide_effect(effect, higher_is_better)
            chance, loss = decision.chance_to_beat, decision.expected_loss_treatment
        except AbtestError:
            chance = loss = None
        out.append(Comparison(
            variant=key, baseline=baseline_key, effect=effect.effect, effect_kind=effect.effect_kind,
            relative=effect.relative if effect.effect_kind == "difference" else effect.effect - 1,
            ci=effect.ci.as_tuple(), p_value=effect.p_value, p_adjusted=p_adj,
            significant=significance_allowed and p_adj < definition.alpha, method=effect.method,
            chance_to_beat=chance, expected_loss=loss,
        ))
    return tuple(out)


def _as_ratio(effect: Effect) -> Effect:
    """A difference of mean log times, shown as a ratio of geometric means."""
    return Effect(math.exp(effect.effect), "ratio", type(effect.ci)(math.exp(effect.ci.low), math.exp(effect.ci.high)),
                  effect.p_value, effect.se, effect.method + " on log times (ratio of geometric means)")


def _metric(conn: sa.Connection, experiment_id: int, definition: ExperimentDef, metric: MetricDef,
            planned_n: int, significance_allowed: bool) -> MetricResult:
    from abtest.stats import cuped as cuped_stats
    from abtest.stats import durations, means, proportions, sequential

    alpha = definition.alpha
    sequential_mode = definition.analysis == "sequential"
    baseline = definition.variant_keys[0]
    adjustment = "Holm" if len(definition.variants) > 2 else None
    if metric.type == "duration":
        assert metric.task is not None
        logs = _duration_stats(conn, experiment_id, metric.task)
        variants = _variant_rows(definition, {k: (m.n, lambda m=m: durations.geometric_mean(m, alpha))
                                              for k, m in logs.items()})
        if sequential_mode:
            compute = lambda b, t: _as_ratio(sequential.sequential_means(b, t, planned_n, alpha))  # noqa: E731
        else:
            compute = lambda b, t: durations.compare_durations(b, t, alpha)  # noqa: E731
        comparisons = _compare(metric, definition, baseline, logs, compute, significance_allowed)
        return MetricResult(metric.name, metric.type, metric.primary,
                            "geometric mean of successful task times with t interval on log times",
                            variants, comparisons, adjustment, unit="seconds (geometric mean)")

    if metric.type in ("conversion", "retention"):
        if metric.type == "retention":
            assert metric.days is not None
            counts = _retention_stats(conn, experiment_id, metric.days)
        else:
            assert metric.event is not None
            counts = {k: s.units for k, s in _value_stats(conn, experiment_id, metric.event).items()}
        variants = _variant_rows(definition, {k: (c.n, lambda c=c: proportions.wilson_interval(c, alpha))
                                              for k, c in counts.items()})
        if sequential_mode:
            compute = lambda b, t: sequential.sequential_proportions(b, t, planned_n, alpha)  # noqa: E731
        else:
            compute = lambda b, t: proportions.compare_proportions(b, t, alpha)  # noqa: E731
        comparisons = _compare(metric, definition, baseline, counts, compute, significance_allowed)
        return MetricResult(metric.name, metric.type, metric.primary, "Wilson score interval", variants,
                            comparisons, adjustment, unit="rate")

    assert metric.event is not None
    stats = _value_stats(conn, experiment_id, metric.event)
    moments = {k: s.post for k, s in stats.items()}
    variants = _variant_rows(definition, {k: (m.n, lambda m=m: means.mean_interval(m, alpha))
                                          for k, m in moments.items()})
    if sequential_mode:
        compute = lambda b, t: sequential.sequential_means(b, t, planned_n, alpha)  # noqa: E731
        pairs: dict = moments
    elif definition.cuped:
        pairs = {k: cuped_stats.CovariateMoments(s.post.n, s.post.total, s.post.total_sq, s.pre.total,
                                                 s.pre.total_sq, s.cross) for k, s in stats.items()}
        compute = lambda b, t: cuped_stats.cuped(b, t, alpha).effect  # noqa: E731
    else:
        pairs = moments
        compute = lambda b, t: means.welch_test(b, t, alpha)  # noqa: E731
    comparisons = _compare(metric, definition, baseline, pairs, compute, significance_allowed)
    return MetricResult(metric.name, metric.type, metric.primary, "mean per unit with t interval", variants,
                        comparisons, adjustment, unit=f"sum of {metric.event} values per unit")


def _series(conn: sa.Connection, experiment_id: int, definition: ExperimentDef, metric: MetricDef | None,
            planned_n: int) -> tuple[SeriesPoint, ...]:
    """Cumulative effect of each variant on the primary conversion metric, day by day."""
    from abtest.stats import proportions, sequential

    if metric is None or metric.type != "conversion" or metric.event is None:
        return ()
    daily = _daily_conversions(conn, experiment_id, metric.event)
    days = sorted({d for d, _v in daily})
    totals = {k: [0, 0] for k in definition.variant_keys}
    previous: dict[str, Effect | None] = {k: None for k in definition.variant_keys[1:]}
    points = []
    baseline = definition.variant_keys[0]
    for day in days:
        for key in definition.variant_keys:
            n, x = daily.get((day, key), (0, 0))
            totals[key][0] += n
            totals[key][1] += x
        for key in definition.variant_keys[1:]:
            base, treat = Counts(*totals[baseline]), Counts(*totals[key])
            try:
                if definition.analysis == "sequential":
                    effect = sequential.sequential_proportions(base, treat, planned_n, definition.alpha, previous[key])
                    previous[key] = effect
                else:
                    effect = proportions.compare_proportions(base, treat, definition.alpha)
                points.append(SeriesPoint(day, key, base.n + treat.n, effect.effect, effect.ci.as_tuple()))
            except AbtestError:
                points.append(SeriesPoint(day, key, base.n + treat.n, None, None))
    return tuple(points)


# ---- the report -------------------------------------------------------------------------------------

def analyze(engine: sa.Engine, key: str) -> Report:
    """The whole results document of one experiment, computed from the database now."""
    from abtest.stats.power import progress as progress_of
    from abtest.stats.srm import srm_check

    with Session(engine) as session:
        row = registry.get_row(session, key)
        definition = registry.load(session, row)
    assert row.id is not None
    with engine.connect() as conn:
        units, excluded = _unit_counts(conn, row.id)
        units = {k: units.get(k, 0) for k in definition.variant_keys}
        target, target_method = _planned_n(definition)
        smallest = min(units.values())
        progress = progress_of(smallest, target) if target else None
        # A fixed-horizon test may call a winner only at its planned sample; without a plan, the
        # designer's stop marks the horizon.
        fixed_horizon_reached = (smallest >= target) if target else row.status in ("stopped", "archived")
        significance_allowed = definition.analysis == "sequential" or fixed_horizon_reached
        planned_n = target or DEFAULT_PLANNED_N
        metrics = tuple(_metric(conn, row.id, definition, m, planned_n, significance_allowed)
                        for m in definition.metrics)
        series = _series(conn, row.id, definition, definition.primary_metric, planned_n)
    total = sum(units.values())
    try:
        srm_result = srm_check([units[k] for k in definition.variant_keys], list(definition.weights))
        srm = SrmResult(srm_result.p_value, srm_result.alarm, srm_result.method)
    except AbtestError as exc:
        srm = SrmResult(None, False, reason=exc.message)
    power = PowerResult(target, progress, target_method)
    primary = next((m for m in metrics if m.primary), None)
    text = verdict(primary, definition.analysis, definition.alpha, power, total, significance_allowed)
    if srm.alarm:
        text = ("Sample ratio mismatch: the split of units is off the configured weights "
                f"(p = {srm.p_value:.2g}), so the results are not trustworthy until its cause is found. " + text)
    return Report(key, row.status, definition.analysis, definition.alpha, units, srm, metrics, power, text,
                  excluded, series)
