"""From stored events to a results :class:`~abtest.report.Report`.

The database does the counting. :mod:`abtest.rollup` first brings the per-unit rollups up to date
(recomputing only the units whose events changed); then one ``GROUP BY variant`` per metric over
those rows gives the sufficient statistics per variant (units, conversions, sums, sums of
squares, sums of log times), with the same query text on SQLite and PostgreSQL. Python only sees
those few numbers per variant and hands them to :mod:`abtest.stats`; no raw event list is ever
loaded.

Who counts: a unit's first exposure fixes its variant and start time. Units exposed to more than
one variant, and units forced by a QA override, are left out (and counted in ``excluded``).
A conversion counts when it happened at or after the unit's first exposure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from abtest import registry
from abtest.db import snapshot
from abtest.definitions import ExperimentDef, MetricDef
from abtest.errors import AbtestError, InsufficientData
from abtest.rollup import MEASURES, UNITS, Measures, Refreshed, analysable, refresh
from abtest.report import Comparison, MetricResult, PowerResult, Report, SeriesPoint, SrmResult, VariantResult, verdict
from abtest.stats.cuped import CovariateMoments
from abtest.stats.summary import Counts, Effect, Estimate, Moments

DEFAULT_PLANNED_N = 10_000  # tunes the always-valid test when the experiment states no plan


# ---- SQL: sufficient statistics ----------------------------------------------------------------

Cohorts = dict[str, dict[str, int]]  # bucket (a variant or one of EXCLUSIONS) → UTC day → units
EXCLUSIONS = ("forced", "multiple_variants")  # why a unit is left out of every metric


def _cohorts(conn: sa.Connection, experiment_id: int) -> Cohorts:
    """Exposed units by bucket and UTC day of first exposure: one scan of the unit rollups that
    serves the unit counts, every metric's n and the daily series."""
    bucket = sa.case(
        (UNITS.c.forced > 0, "forced"),
        (UNITS.c.variant_lo != UNITS.c.variant_hi, "multiple_variants"),
        else_=UNITS.c.variant_lo,
    ).label("bucket")
    rows = conn.execute(sa.select(bucket, UNITS.c.first_day, sa.func.count())
                        .where(UNITS.c.experiment_id == experiment_id).group_by(bucket, UNITS.c.first_day)).all()
    cohorts: Cohorts = {}
    for b, day, n in rows:
        if b is not None:  # exposures that name no variant: not analysable, not a known exclusion
            cohorts.setdefault(str(b), {})[str(day)] = int(n)
    return cohorts


def _unit_counts(cohorts: Cohorts) -> tuple[dict[str, int], dict[str, int]]:
    """Analysable units per variant, and how many were excluded (forced, or seen in several variants)."""
    counts = {b: sum(days.values()) for b, days in cohorts.items()}
    excluded = {reason: counts.pop(reason, 0) for reason in EXCLUSIONS}
    return counts, excluded


def _measure(experiment_id: int, kind: str, name: str) -> sa.Select[Any]:
    """Rows of one measure (analysable units only), to be aggregated per variant."""
    return (sa.select().select_from(MEASURES)
            .where(MEASURES.c.experiment_id == experiment_id, MEASURES.c.kind == kind, MEASURES.c.name == name))


@dataclass(frozen=True, slots=True)
class _ValueStats:
    units: Counts
    post: Moments
    pre: Moments
    cross: float  # Σ post·pre, for CUPED


def _value_stats(conn: sa.Connection, experiment_id: int, units: dict[str, int], event: str) -> dict[str, _ValueStats]:
    """Per variant: units converting on ``event`` at or after exposure, and per-unit value sums
    after (the metric) and before exposure (CUPED's covariate). Units without a row for the
    event add only to n: every sum is zero for them."""
    m = MEASURES.c
    rows = conn.execute(
        _measure(experiment_id, "event", event).add_columns(
            m.variant, sa.func.sum(sa.case((m.k > 0, 1), else_=0)), sa.func.sum(m.post), sa.func.sum(m.post * m.post),
            sa.func.sum(m.pre), sa.func.sum(m.pre * m.pre), sa.func.sum(m.post * m.pre),
        ).group_by(m.variant)
    ).all()
    sums = {variant: rest for variant, *rest in rows}
    out = {}
    for variant, n in units.items():
        x, s, ss, p, pp, sp = sums.get(variant, (0, 0.0, 0.0, 0.0, 0.0, 0.0))
        out[variant] = _ValueStats(Counts(n, int(x or 0)), Moments(n, float(s or 0), float(ss or 0)),
                                   Moments(n, float(p or 0), float(pp or 0)), float(sp or 0))
    return out


def _retention_stats(conn: sa.Connection, experiment_id: int, days: int, now: datetime) -> dict[str, Counts]:
    """Per variant: units seen again (any event) at least ``days`` days after first exposure.

    Only units first exposed at least ``days`` days before ``now`` count: the others have not yet
    had the chance to come back, and counting them as lost would understate retention.
    """
    cutoff = now - timedelta(days=days)
    exposed = dict(conn.execute(
        sa.select(UNITS.c.variant_lo, sa.func.count())
        .where(UNITS.c.experiment_id == experiment_id, analysable(), UNITS.c.first_ts <= cutoff)
        .group_by(UNITS.c.variant_lo)).all())
    back = dict(conn.execute(
        _measure(experiment_id, "retention", str(days)).add_columns(MEASURES.c.variant, sa.func.count())
        .where(MEASURES.c.first_ts <= cutoff).group_by(MEASURES.c.variant)).all())
    return {variant: Counts(int(n), int(back.get(variant, 0))) for variant, n in exposed.items()}


def _duration_stats(conn: sa.Connection, experiment_id: int, task: str) -> dict[str, Moments]:
    """Per variant: moments of each unit's mean log time (seconds) over successful attempts."""
    log_t = MEASURES.c.log_sum / MEASURES.c.log_n
    rows = conn.execute(
        _measure(experiment_id, "task", task).add_columns(
            MEASURES.c.variant, sa.func.count(), sa.func.sum(log_t), sa.func.sum(log_t * log_t))
        .where(MEASURES.c.log_n > 0).group_by(MEASURES.c.variant)
    ).all()
    return {variant: Moments(n, float(s or 0), float(ss or 0)) for variant, n, s, ss in rows}


def _daily_conversions(conn: sa.Connection, experiment_id: int, event: str,
                       cohorts: Cohorts) -> list[tuple[str, str, str | None, int]]:
    """(variant, UTC day of first exposure, UTC day of first conversion or None, units): enough to
    rebuild, for any day, the units exposed and converted by the end of that day."""
    m = MEASURES.c
    converters = conn.execute(
        _measure(experiment_id, "event", event).add_columns(m.variant, m.first_day, m.converted_day, sa.func.count())
        .where(m.k > 0).group_by(m.variant, m.first_day, m.converted_day)
    ).all()
    out = [(str(v), str(d), str(c), int(n)) for v, d, c, n in converters]
    converted: dict[tuple[str, str], int] = {}
    for v, d, _c, n in out:
        converted[(v, d)] = converted.get((v, d), 0) + n
    for variant, days in cohorts.items():
        for day, n in days.items():
            rest = n - converted.get((variant, day), 0)
            if rest and variant not in EXCLUSIONS:
                out.append((variant, day, None, rest))
    return out


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


@dataclass(frozen=True)
class _Context:
    """What every metric of one analysis shares."""

    conn: sa.Connection
    experiment_id: int
    definition: ExperimentDef
    planned_n: int
    significance_allowed: bool
    now: datetime
    values: Callable[[str], dict[str, _ValueStats]]  # cached per event name


def _metric(ctx: _Context, metric: MetricDef) -> MetricResult:
    """One metric's variants and comparisons; a metric whose data cannot be summarised (say, sums
    too large to square) reports why instead of failing the whole report."""
    try:
        return _metric_result(ctx, metric)
    except AbtestError as exc:
        return MetricResult(metric.name, metric.type, metric.primary, "", (), (), reason=exc.message)
    except sa.exc.DataError:  # PostgreSQL: a sum of squares overflowed double precision
        ctx.conn.rollback()  # the failed statement aborted the transaction; later metrics need a fresh one
        return MetricResult(metric.name, metric.type, metric.primary, "", (), (),
                            reason="stored values are too large to sum (not a finite number)")


def _cuped_or_welch(b: CovariateMoments, t: CovariateMoments, alpha: float) -> Effect:
    """CUPED when the pre-exposure covariate varies; otherwise plain Welch, saying so."""
    from abtest.stats import cuped as cuped_stats
    from abtest.stats import means

    try:
        return cuped_stats.cuped(b, t, alpha).effect
    except InsufficientData:
        effect = means.welch_test(Moments(b.n, b.sum_y, b.sum_y2), Moments(t.n, t.sum_y, t.sum_y2), alpha)
        return replace(effect, method=effect.method + " (CUPED skipped: no pre-exposure values vary)")


def _metric_result(ctx: _Context, metric: MetricDef) -> MetricResult:
    from abtest.stats import durations, means, proportions, sequential

    definition = ctx.definition
    alpha, planned_n = definition.alpha, ctx.planned_n
    sequential_mode = definition.analysis == "sequential"
    baseline = definition.variant_keys[0]
    adjustment = "Holm" if len(definition.variants) > 2 else None

    def compared(pairs: dict[str, Any], compute: Callable[[Any, Any], Effect]) -> tuple[Comparison, ...]:
        return _compare(metric, definition, baseline, pairs, compute, ctx.significance_allowed)

    if metric.type == "duration":
        assert metric.task is not None
        logs = _duration_stats(ctx.conn, ctx.experiment_id, metric.task)
        variants = _variant_rows(definition, {k: (m.n, functools.partial(durations.geometric_mean, m, alpha))
                                              for k, m in logs.items()})
        if sequential_mode:
            def always_valid_ratio(b: Moments, t: Moments) -> Effect:
                diff = sequential.sequential_means(b, t, planned_n, alpha)
                return durations.as_ratio(diff, diff.method + " on log times (ratio of geometric means)")

            comparisons = compared(logs, always_valid_ratio)
        else:
            comparisons = compared(logs, lambda b, t: durations.compare_durations(b, t, alpha))
        return MetricResult(metric.name, metric.type, metric.primary,
                            "geometric mean of successful task times with t interval on log times",
                            variants, comparisons, adjustment, unit="seconds (geometric mean)")

    if metric.type in ("conversion", "retention"):
        if metric.type == "retention":
            assert metric.days is not None
            counts = _retention_stats(ctx.conn, ctx.experiment_id, metric.days, ctx.now)
            method = f"Wilson score interval; units first exposed at least {metric.days} days ago"
        else:
            assert metric.event is not None
            counts = {k: s.units for k, s in ctx.values(metric.event).items()}
            method = "Wilson score interval"
        variants = _variant_rows(definition, {k: (c.n, functools.partial(proportions.wilson_interval, c, alpha))
                                              for k, c in counts.items()})
        if sequential_mode:
            comparisons = compared(counts, lambda b, t: sequential.sequential_proportions(b, t, planned_n, alpha))
        else:
            comparisons = compared(counts, lambda b, t: proportions.compare_proportions(b, t, alpha))
        return MetricResult(metric.name, metric.type, metric.primary, method, variants, comparisons, adjustment,
                            unit="rate")

    assert metric.event is not None
    stats = ctx.values(metric.event)
    moments = {k: s.post for k, s in stats.items()}
    variants = _variant_rows(definition, {k: (m.n, functools.partial(means.mean_interval, m, alpha))
                                          for k, m in moments.items()})
    method = "mean per unit with t interval"
    if sequential_mode:
        comparisons = compared(moments, lambda b, t: sequential.sequential_means(b, t, planned_n, alpha))
        if definition.cuped:
            method += " (CUPED is not applied to the always-valid test)"
    elif definition.cuped:
        covariates = {k: CovariateMoments(s.post.n, s.post.total, s.post.total_sq, s.pre.total, s.pre.total_sq,
                                          s.cross) for k, s in stats.items()}
        comparisons = compared(covariates, lambda b, t: _cuped_or_welch(b, t, alpha))
    else:
        comparisons = compared(moments, lambda b, t: means.welch_test(b, t, alpha))
    return MetricResult(metric.name, metric.type, metric.primary, method, variants, comparisons, adjustment,
                        unit=f"sum of {metric.event} values per unit")


def _series(conn: sa.Connection, experiment_id: int, definition: ExperimentDef, metric: MetricDef | None,
            planned_n: int, exposed: Cohorts) -> tuple[SeriesPoint, ...]:
    """Cumulative effect of each variant on the primary conversion metric, day by day."""
    from abtest.stats import proportions, sequential

    if metric is None or metric.type != "conversion" or metric.event is None:
        return ()
    cohorts = _daily_conversions(conn, experiment_id, metric.event, exposed)
    days = sorted({d for _v, d, _c, _n in cohorts} | {c for _v, _d, c, _n in cohorts if c is not None})
    points = []
    baseline = definition.variant_keys[0]
    for day in days:
        # As the data stood at the end of ``day``: units exposed by then, conversions made by then.
        totals = {k: [0, 0] for k in definition.variant_keys}
        for variant, exposed_day, converted_day, n in cohorts:
            if variant in totals and exposed_day <= day:
                totals[variant][0] += n
                if converted_day is not None and converted_day <= day:
                    totals[variant][1] += n
        for key in definition.variant_keys[1:]:
            base, treat = Counts(*totals[baseline]), Counts(*totals[key])
            try:
                # Each day's always-valid interval on its own (no running intersection), so the
                # last point is exactly the interval the tables and the verdict state.
                if definition.analysis == "sequential":
                    effect = sequential.sequential_proportions(base, treat, planned_n, definition.alpha)
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
    refresh(engine, row.id, Measures.of(definition))
    with snapshot(engine) as conn:  # every aggregate from the same state of the rollups
        cohorts = _cohorts(conn, row.id)
        analysable, excluded = _unit_counts(cohorts)
        units = {k: analysable.get(k, 0) for k in definition.variant_keys}
        target, target_method = _planned_n(definition)
        smallest = min(units.values())
        progress = progress_of(smallest, target) if target else None
        # A fixed-horizon test may call a winner only at its planned sample; without a plan, the
        # designer's stop marks the horizon.
        fixed_horizon_reached = (smallest >= target) if target else row.status in ("stopped", "archived")
        significance_allowed = definition.analysis == "sequential" or fixed_horizon_reached
        planned_n = target or DEFAULT_PLANNED_N
        # A conversion and a mean metric on the same event share one query.
        values = functools.cache(functools.partial(_value_stats, conn, row.id, analysable))
        ctx = _Context(conn, row.id, definition, planned_n, significance_allowed, datetime.now(UTC), values)
        metrics = tuple(_metric(ctx, m) for m in definition.metrics)
        series = _series(conn, row.id, definition, definition.primary_metric, planned_n, cohorts)
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
                  excluded, series, horizon_reached=significance_allowed)


def refresh_rollups(engine: sa.Engine, keys: Sequence[str] | None = None) -> list[tuple[str, Refreshed]]:
    """Bring the per-unit rollups of these experiments (every A/B experiment by default) up to
    date now. Reports do it themselves; this is for after loading or migrating many events, so
    the first results page does not pay the build."""
    with Session(engine) as session:
        definitions = [d for d in registry.list_definitions(session) if d.kind == "experiment"] if keys is None \
            else [registry.get(session, key) for key in keys]
        ids = {d.key: registry.get_row(session, d.key).id for d in definitions}
    return [(d.key, refresh(engine, ids[d.key], Measures.of(d))) for d in definitions]  # type: ignore[arg-type]


def warm_up() -> None:
    """Import the numerical libraries now (≈1–2 s) so the first results request does not pay it.

    Called by ``abtest serve`` as each worker starts; the CLI and tests import lazily instead.
    """
    import scipy.stats  # noqa: F401
    import statsmodels.stats.proportion  # noqa: F401
