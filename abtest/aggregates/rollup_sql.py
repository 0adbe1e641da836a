"""A/B experiment aggregates from the per-unit rollups (:mod:`abtest.aggregates.rollup`).

One ``GROUP BY`` per request family over rows that are one per unit (not per event), with the
same query text on SQLite and PostgreSQL; a breakdown adds the unit's segment label (its
first-exposure attribute, joined from ``rollup_units``) to the grouping. Python only sees a few
numbers per variant and segment. Values are summed around a shift near the data (one stored
value per measure), not from zero: sums of x and x² would cancel the variance of large means away.

Who counts: a unit's first exposure fixes its variant and start time. Units exposed to more than
one variant, and units forced by a QA override, are left out of every metric and counted in
``excluded``. A conversion counts when it happened at or after the unit's first exposure; those
stamped before it are counted apart (``before_exposure``), so the report can say they were left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from abtest.aggregates.base import (
    MAX_SEGMENTS,
    OTHER,
    DailyConversions,
    EventStats,
    EventTotals,
    Returning,
    UnitCounts,
    UnitLogTimes,
)
from abtest.aggregates.rollup import MEASURES, UNITS, analysable
from abtest.aggregates.segments import Labels, attribute_value
from abtest.stats.summary import Counts, Moments

EXCLUSIONS = ("forced", "multiple_variants")  # why a unit is left out of every metric
Seg = str | None  # a segment label; None: the whole experiment
PerSegment = dict[Seg, Any]

_BUCKET = sa.case(
    (UNITS.c.forced > 0, "forced"),
    (UNITS.c.variant_lo != UNITS.c.variant_hi, "multiple_variants"),
    else_=UNITS.c.variant_lo,
).label("bucket")
_WITH_UNITS = MEASURES.join(UNITS, sa.and_(UNITS.c.experiment_id == MEASURES.c.experiment_id,
                                           UNITS.c.unit == MEASURES.c.unit))


def segment_sizes(conn: sa.Connection, experiment_id: int, by: str) -> list[tuple[str, int]]:
    """Analysable units per value of ``by``, largest first: just enough rows to pick the largest."""
    value = attribute_value(UNITS.c.attributes, by).label("value")
    n = sa.func.count().label("n")
    return [(str(v), int(c)) for v, c in conn.execute(
        sa.select(value, n).where(UNITS.c.experiment_id == experiment_id, analysable())
        .group_by(value).order_by(n.desc(), value).limit(MAX_SEGMENTS + 1)).all()]


def _label(labels: Labels | None) -> list[sa.ColumnElement[Any]]:
    return [] if labels is None else [labels.of(UNITS.c.attributes).label("segment")]


def _group(labels: Labels | None) -> list[sa.ColumnElement[Any]]:
    """GROUP BY the segment column by its name: the same CASE written twice would carry other bind
    parameters, and PostgreSQL would not see it as the selected expression."""
    return [] if labels is None else [sa.literal_column("segment")]


def _rows(conn: sa.Connection, query: sa.Select[Any], labels: Labels | None) -> list[tuple[Seg, tuple[Any, ...]]]:
    """Rows as (segment, rest): the segment column comes first when there is one."""
    rows = conn.execute(query).all()
    return [(str(r[0]), tuple(r[1:])) for r in rows] if labels is not None else [(None, tuple(r)) for r in rows]


MAX_UNIT_ROWS = 20_000  # (value, bucket, day) rows a breakdown reads in one pass before it narrows down


def unit_table(conn: sa.Connection, experiment_id: int, by: str) -> list[tuple[str, str, str, int]] | None:
    """Units by value of ``by``, bucket and first day, in one scan; None when the attribute has so
    many values that the rows would pass :data:`MAX_UNIT_ROWS` (then the largest values are picked
    first, by :func:`segment_sizes`)."""
    value = attribute_value(UNITS.c.attributes, by).label("value")
    rows = conn.execute(sa.select(value, _BUCKET, UNITS.c.first_day, sa.func.count())
                        .where(UNITS.c.experiment_id == experiment_id)
                        .group_by(value, _BUCKET, UNITS.c.first_day).limit(MAX_UNIT_ROWS + 1)).all()
    if len(rows) > MAX_UNIT_ROWS:
        return None
    return [(str(v), str(b), str(d), int(n)) for v, b, d, n in rows if b is not None]


def from_unit_table(rows: list[tuple[str, str, str, int]], top: tuple[str, ...]
                    ) -> tuple[PerSegment, dict[str, dict[str, int]]]:
    """Per segment label (``top`` values, the rest pooled as "(other)") the unit counts, and the
    whole experiment's cohorts by bucket and day: what :func:`unit_counts` and :func:`cohorts` give."""
    per: dict[Seg, dict[str, dict[str, int]]] = {}
    whole: dict[str, dict[str, int]] = {}
    for value, bucket, day, n in rows:
        label = value if value in top else OTHER
        days = per.setdefault(label, {}).setdefault(bucket, {})
        days[day] = days.get(day, 0) + n
        whole.setdefault(bucket, {})[day] = whole.get(bucket, {}).get(day, 0) + n
    return {label: unit_counts_of(buckets) for label, buckets in per.items()}, whole


def sizes_of(rows: list[tuple[str, str, str, int]]) -> list[tuple[str, int]]:
    """Analysable units per value (what :func:`segment_sizes` reads)."""
    out: dict[str, int] = {}
    for value, bucket, _day, n in rows:
        if bucket not in EXCLUSIONS:
            out[value] = out.get(value, 0) + n
    return list(out.items())


def unit_counts_of(by_day: dict[str, dict[str, int]]) -> UnitCounts:
    units, excluded = {}, dict.fromkeys(EXCLUSIONS, 0)
    for bucket, days in by_day.items():
        (excluded if bucket in EXCLUSIONS else units)[bucket] = sum(days.values())
    return UnitCounts(units, excluded)


def cohorts(conn: sa.Connection, experiment_id: int) -> dict[str, dict[str, int]]:
    """Exposed units by bucket (a variant, or why the unit is excluded) and UTC day of first
    exposure: one scan of the unit rollups serves the unit counts and the daily series."""
    rows = conn.execute(sa.select(_BUCKET, UNITS.c.first_day, sa.func.count())
                        .where(UNITS.c.experiment_id == experiment_id).group_by(_BUCKET, UNITS.c.first_day)).all()
    out: dict[str, dict[str, int]] = {}
    for bucket, day, n in rows:
        if bucket is not None:  # exposures that name no variant: not analysable, not a known exclusion
            out.setdefault(str(bucket), {})[str(day)] = int(n)
    return out


def unit_counts(conn: sa.Connection, experiment_id: int, labels: Labels | None,
                by_day: dict[str, dict[str, int]] | None = None) -> PerSegment:
    """Analysable units per variant and the excluded ones by reason, per segment (the whole
    experiment's from its ``by_day`` cohorts when given)."""
    if labels is None:
        return {None: unit_counts_of(by_day if by_day is not None else cohorts(conn, experiment_id))}
    per: dict[Seg, dict[str, dict[str, int]]] = {}
    for seg, (bucket, n) in _rows(conn, sa.select(*_label(labels), _BUCKET, sa.func.count())
                                  .where(UNITS.c.experiment_id == experiment_id)
                                  .group_by(*_group(labels), _BUCKET), labels):
        if bucket is not None:
            per.setdefault(seg, {})[str(bucket)] = {"": int(n)}
    return {seg: unit_counts_of(buckets) for seg, buckets in per.items()}


def _measure(kind: str, names: Sequence[str], labels: Labels | None, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """Per (name, variant[, segment]) aggregates of one measure kind, analysable units only."""
    m = MEASURES.c
    query = sa.select(*_label(labels), m.name, m.variant, *columns)
    query = query.select_from(_WITH_UNITS) if labels is not None else query.select_from(MEASURES)
    return query.where(m.kind == kind, m.name.in_(list(names))).group_by(*_group(labels), m.name, m.variant)


def _shift(kind: str, names: Sequence[str], experiment_id: int, value: Callable[[Any], sa.ColumnElement[float]],
           *where: Callable[[Any], sa.ColumnElement[bool]]) -> sa.ColumnElement[float]:
    """Per measure name, one stored unit's value (the first by unit, through the primary key): the
    shift the sums are taken around. Σ(x − c)² − (Σ(x − c))²/n keeps the digits that
    Σx² − (Σx)²/n loses to cancellation when the mean is large against the spread, for any c
    among the data (it then loses at most log10(n) digits). Each subquery is uncorrelated, so run
    once per query: the same c for every variant and segment, whose sums then add exactly."""
    row = MEASURES.alias("shift_row")

    def first(name: str) -> sa.ScalarSelect[Any]:
        return (sa.select(value(row.c)).where(row.c.experiment_id == experiment_id, row.c.kind == kind,
                                              row.c.name == name, *(w(row.c) for w in where))
                .order_by(row.c.unit).limit(1).scalar_subquery())

    m = MEASURES.c
    return sa.func.coalesce(sa.case(*((m.name == name, first(name)) for name in names)), 0.0)


def event_totals(conn: sa.Connection, experiment_id: int, requests: Sequence[EventTotals],
                 units: PerSegment, labels: Labels | None) -> dict[EventTotals, PerSegment]:
    """Per variant: units converting on the event at or after exposure, and per-unit value sums
    after (the metric) and before exposure (CUPED's covariate), around one shift per event
    (:func:`_shift`, against cancellation). Units without a row for the event have the value 0:
    they add (0 − c) and (0 − c)², counted from the rows each variant has."""
    m = MEASURES.c
    names = [r.event for r in requests]
    c_post = _shift("event", names, experiment_id, lambda row: row.post)
    c_pre = _shift("event", names, experiment_id, lambda row: row.pre)
    dy, dx = m.post - c_post, m.pre - c_pre
    query = _measure("event", names, labels, sa.func.count(), sa.func.sum(sa.case((m.k > 0, 1), else_=0)),
                     sa.func.sum(dy), sa.func.sum(dy * dy), sa.func.sum(dx), sa.func.sum(dx * dx),
                     sa.func.sum(dy * dx), sa.func.sum(m.k_pre), sa.func.max(c_post), sa.func.max(c_pre)
                     ).where(m.experiment_id == experiment_id)
    sums: dict[tuple[Seg, str, str], tuple[Any, ...]] = {}
    shifts: dict[str, tuple[float, float]] = {}
    for seg, (name, variant, *rest) in _rows(conn, query, labels):
        sums[(seg, name, variant)] = tuple(rest[:-2])
        shifts[name] = (float(rest[-2]), float(rest[-1]))
    out: dict[EventTotals, PerSegment] = {}
    for request in requests:
        cy, cx = shifts.get(request.event, (0.0, 0.0))
        per: PerSegment = {}
        for seg, counts in units.items():
            per[seg] = {}
            for variant, n in counts.units.items():
                rows, x, s, ss, p, pp, sp, early = sums.get((seg, request.event, variant),
                                                            (0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0))
                missing = n - int(rows)  # units without a row: value 0 after and before exposure
                post = Moments(n, float(s or 0) - missing * cy, float(ss or 0) + missing * cy * cy, cy)
                pre = Moments(n, float(p or 0) - missing * cx, float(pp or 0) + missing * cx * cx, cx)
                per[seg][variant] = EventStats(Counts(n, int(x or 0)), post, pre, float(sp or 0) + missing * cy * cx,
                                               int(early or 0))
        out[request] = per
    return out


def unit_log_times(conn: sa.Connection, experiment_id: int, requests: Sequence[UnitLogTimes],
                   labels: Labels | None) -> dict[UnitLogTimes, PerSegment]:
    """Per variant: moments of each unit's mean log time (seconds) over successful attempts, around
    one unit's mean log time per task (:func:`_shift`)."""
    m = MEASURES.c
    tasks = [r.task for r in requests]
    c = _shift("task", tasks, experiment_id, lambda col: col.log_sum / col.log_n, lambda col: col.log_n > 0)
    d = m.log_sum / m.log_n - c
    query = _measure("task", tasks, labels, sa.func.count(), sa.func.sum(d), sa.func.sum(d * d), sa.func.max(c)
                     ).where(m.experiment_id == experiment_id, m.log_n > 0)
    out: dict[UnitLogTimes, PerSegment] = {r: {} for r in requests}
    by_task = {r.task: r for r in requests}
    for seg, (task, variant, n, s, ss, shift) in _rows(conn, query, labels):
        out[by_task[task]].setdefault(seg, {})[variant] = Moments(int(n), float(s or 0), float(ss or 0), float(shift))
    return out


def returning(conn: sa.Connection, experiment_id: int, requests: Sequence[Returning], now: datetime,
              labels: Labels | None) -> dict[Returning, PerSegment]:
    """Per variant: units seen again at least ``days`` days after first exposure.

    Only units first exposed at least ``days`` days before ``now`` count: the others have not yet
    had the chance to come back, and counting them as lost would understate retention.
    """
    out: dict[Returning, PerSegment] = {}
    for request in requests:
        cutoff = now - timedelta(days=request.days)
        exposed = _rows(conn, sa.select(*_label(labels), UNITS.c.variant_lo, sa.func.count())
                        .where(UNITS.c.experiment_id == experiment_id, analysable(), UNITS.c.first_ts <= cutoff)
                        .group_by(*_group(labels), UNITS.c.variant_lo), labels)
        back = {(seg, variant): int(n) for seg, (_name, variant, n) in _rows(conn, _measure(
            "retention", [str(request.days)], labels, sa.func.count())
            .where(MEASURES.c.experiment_id == experiment_id, MEASURES.c.first_ts <= cutoff), labels)}
        per: PerSegment = {}
        for seg, (variant, n) in exposed:
            per.setdefault(seg, {})[variant] = Counts(int(n), back.get((seg, variant), 0))
        out[request] = per
    return out


def daily_conversions(conn: sa.Connection, experiment_id: int, request: DailyConversions,
                      by_day: dict[str, dict[str, int]]) -> list[tuple[str, str, str | None, int]]:
    """(variant, UTC day of first exposure, UTC day of first conversion or None, units): enough to
    rebuild, for any day, the units exposed and converted by the end of that day."""
    m = MEASURES.c
    converters = conn.execute(
        sa.select(m.variant, m.first_day, m.converted_day, sa.func.count())
        .where(m.experiment_id == experiment_id, m.kind == "event", m.name == request.event, m.k > 0)
        .group_by(m.variant, m.first_day, m.converted_day)).all()
    out = [(str(v), str(d), str(c), int(n)) for v, d, c, n in converters]
    converted: dict[tuple[str, str], int] = {}
    for v, d, _c, n in out:
        converted[(v, d)] = converted.get((v, d), 0) + n
    for variant, days in by_day.items():
        if variant in EXCLUSIONS:
            continue
        for day, n in days.items():
            rest = n - converted.get((variant, day), 0)
            if rest:
                out.append((variant, day, None, rest))
    return out
