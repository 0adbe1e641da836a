"""The ClickHouse aggregate source: per-variant sufficient statistics computed where the events are.

The registry still answers which id a test key has; ClickHouse answers everything else, one
query per request family (:mod:`abtest.clickhouse.queries`). A breakdown first picks the largest
segments, then runs each family once grouped by segment, and sums the segments for the whole
test, as :class:`~abtest.aggregates.sql.SqlSource` does, so the two give the same reports.
Surveys are answered here too (each visitor's first answer, like :mod:`abtest.aggregates.survey_sql`).
Usability-study requests are refused (:class:`Unsupported`): their events can be stored here, but
their analysis still reads the registry's SQL (participants' progress lives there).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from abtest.aggregates import rollup_sql
from abtest.aggregates.base import (
    MAX_SEGMENTS,
    OTHER,
    Aggregates,
    AnswerCounts,
    AtOrBelow,
    DailyConversions,
    EventStats,
    EventTotals,
    ExposedUnits,
    Failed,
    Quantiles,
    Request,
    ReachCounts,
    Returning,
    Segment,
    Slice,
    SurveyReach,
    Texts,
    UnitLogTimes,
)
from abtest.aggregates.combine import total
from abtest.aggregates.order import order_stats
from abtest.aggregates.rollup import Refreshed
from abtest.aggregates.segments import MAX_LISTED, SAMPLE_UNITS, check_attribute_name, largest
from abtest.aggregates.sql import SqlSource
from abtest.clickhouse import queries
from abtest.clickhouse.client import ClickHouseClient
from abtest.clickhouse.order import ClickHouseOrdered
from abtest.clickhouse.schema import table
from abtest.errors import AbtestError, Unsupported
from abtest.stats.summary import Counts, Moments

EXPERIMENT_FAMILIES = (ExposedUnits, EventTotals, UnitLogTimes, Returning, DailyConversions, Quantiles, AtOrBelow)
SURVEY_FAMILIES = (SurveyReach, AnswerCounts)
Answers = dict[Request, dict[str | None, Any]]
TOO_LARGE = "stored values are too large to sum (not a finite number)"


class ClickHouseSource:
    """:class:`~abtest.aggregates.base.AggregateSource` over events stored in ClickHouse."""

    def __init__(self, engine: sa.Engine, client: ClickHouseClient) -> None:
        self.registry = SqlSource(engine)  # key -> id only
        self.client = client
        self.table = table(client)

    @staticmethod
    def rolls_up(requests: Sequence[Request]) -> bool:
        return False  # nothing to keep fresh: every report scans the events

    def refresh(self, key: str, requests: Sequence[Request]) -> Refreshed:
        return Refreshed(0, False)

    def attribute_names(self, key: str, requests: Sequence[Request]) -> list[str]:
        _check(requests)
        rows = self.client.query(queries.attribute_names(self.table),
                                 {"e": self.registry.experiment_id(key), "sample": SAMPLE_UNITS, "limit": MAX_LISTED})
        return [str(name) for (name,) in rows]

    def fetch(self, key: str, variants: Sequence[str], requests: Sequence[Request], now: datetime,
              by: str | None = None) -> Aggregates:
        _check(requests)
        experiment_id = self.registry.experiment_id(key)
        requests = list(dict.fromkeys(requests))
        if by is None:
            return Aggregates(Slice(_slice(self._answer(experiment_id, requests, now, None), None)))
        by = check_attribute_name(by)
        sizes = self.client.query(queries.sizes(self.table), {"e": experiment_id, "by": by, "limit": MAX_SEGMENTS + 1})
        top, more = largest([(str(v), int(n)) for v, n in sizes], MAX_SEGMENTS)
        if not top:
            return Aggregates(Slice(_slice(self._answer(experiment_id, requests, now, None), None)), by=by)
        split = self._answer(experiment_id, [r for r in requests if not r.whole_only], now, (by, top))
        whole = self._answer(experiment_id, [r for r in requests if r.whole_only], now, None)
        whole.update({request: {None: total(per.values())} for request, per in split.items()})
        order = list(top) + ([OTHER] if more else [])
        return Aggregates(Slice(_slice(whole, None)), by=by,
                          segments=tuple(Segment(value, Slice(_slice(split, value))) for value in order))

    def _answer(self, experiment_id: int, requests: Sequence[Request], now: datetime,
                labels: tuple[str, tuple[str, ...]] | None) -> Answers:
        """Every request answered per segment label (None: the whole test), one query per family."""
        families: dict[type, list[Any]] = defaultdict(list)
        for request in requests:
            families[type(request)].append(request)
        if not families:
            return {}
        params: dict[str, Any] = {"e": experiment_id}
        if labels is not None:
            params.update(by=labels[0], top=list(labels[1]))
        segmented = labels is not None

        def rows(sql: str, **extra: Any) -> list[tuple[str | None, tuple[Any, ...]]]:
            return [((str(r[0]) if segmented else None), tuple(r[1:]))
                    for r in self.client.query(sql, {**params, **extra})]

        by_seg: dict[str | None, dict[str, dict[str, int]]] = {}
        for seg, (bucket, day, n) in rows(queries.unit_counts(self.table, segmented)):
            by_seg.setdefault(seg, {}).setdefault(str(bucket), {})[str(day)] = int(n)
        units = {seg: rollup_sql.unit_counts_of(buckets) for seg, buckets in by_seg.items()}
        out: Answers = {}
        for request in families.get(ExposedUnits, []):
            out[request] = units if units else {None: rollup_sql.unit_counts_of({})} if not segmented else {}
        if EventTotals in families:
            names = sorted({r.event for r in families[EventTotals]})
            found = defaultdict(dict)
            for seg, (variant, name, n, x, post_mean, post_var, pre_mean, pre_var, cov, early) in rows(
                    queries.event_totals(self.table, segmented), names=names):
                found[name].setdefault(seg, {})[str(variant)] = (int(n), int(x), post_mean, post_var, pre_mean,
                                                                  pre_var, cov, int(early))
            for request in families[EventTotals]:
                out[request] = _guarded(lambda: {seg: {v: _event_stats(*t) for v, t in per.items()}
                                                 for seg, per in found.get(request.event, {}).items()})
        if UnitLogTimes in families:
            tasks = sorted({r.task for r in families[UnitLogTimes]})
            times = defaultdict(dict)
            for seg, (variant, task, n, mean, var) in rows(queries.unit_log_times(self.table, segmented), tasks=tasks):
                times[task].setdefault(seg, {})[str(variant)] = (int(n), mean, var)
            for request in families[UnitLogTimes]:
                out[request] = _guarded(lambda: {seg: {v: _moments(*t) for v, t in per.items()}
                                                 for seg, per in times.get(request.task, {}).items()})
        if Returning in families:
            days = sorted({r.days for r in families[Returning]})
            back: dict[int, dict[str | None, dict[str, Counts]]] = defaultdict(dict)
            for seg, (variant, d, n, x) in rows(queries.returning(self.table, segmented), days=days, now=now):
                back[int(d)].setdefault(seg, {})[str(variant)] = Counts(int(n), int(x))
            for request in families[Returning]:
                out[request] = back.get(request.days, {})
        for request in families.get(Quantiles, []):  # whole test only, like the SQL source
            store = ClickHouseOrdered(self.client, self.table, experiment_id, request.kind, request.event, request.over)
            out[request] = {None: order_stats(store, request.q, clustered=request.over == "events")}
        out.update(self._survey(experiment_id, families))
        for request in families.get(AtOrBelow, []):
            store = ClickHouseOrdered(self.client, self.table, experiment_id, request.kind, request.event)
            out[request] = {None: store.cluster_counts(request.threshold)}
        for request in families.get(DailyConversions, []):
            out[request] = {None: [(str(v), str(d), None if c is None else str(c), int(n)) for v, d, c, n
                                   in self.client.query(queries.daily_conversions(self.table),
                                                        {"e": experiment_id, "event": request.event})]}
        return out


    def _survey(self, experiment_id: int, families: dict[type, list[Any]]) -> Answers:
        """A survey's reach, answer counts and texts, whole survey only (as the SQL source)."""
        out: Answers = {}
        params = {"e": experiment_id}
        for request in families.get(SurveyReach, []):
            out[request] = {None: {str(v): ReachCounts(int(s), int(a), int(d))
                                   for v, s, a, d in self.client.query(queries.survey_reach(self.table), params)}}
        if AnswerCounts in families:
            counts: dict[str, dict[str, dict[int, int]]] = defaultdict(dict)
            for task, variant, value, n in self.client.query(
                    queries.answer_counts(self.table), {**params, "tasks": [r.question for r in families[AnswerCounts]]}):
                counts[str(task)].setdefault(str(variant), {})[int(value)] = int(n)
            for request in families[AnswerCounts]:
                out[request] = {None: counts.get(request.question, {})}
        for request in families.get(Texts, []):
            texts: dict[str, list[str]] = {}
            for variant, text in self.client.query(queries.answer_texts(self.table), {**params, "task": request.task}):
                texts.setdefault(str(variant), []).append(str(text))
            out[request] = {None: texts}
        return out


def _check(requests: Sequence[Request]) -> None:
    unsupported = sorted({type(r).__name__ for r in requests if not _supported(r)})
    if unsupported:
        raise Unsupported("usability-study results are not computed on ClickHouse events yet "
                          f"(unsupported requests: {', '.join(unsupported)}); keep ABTEST_EVENTS_URL unset "
                          "for studies", field="ABTEST_EVENTS_URL")


def _supported(request: Request) -> bool:
    """A/B experiments' and surveys' requests (a survey's text answers; not a study's comments)."""
    return (isinstance(request, (*EXPERIMENT_FAMILIES, *SURVEY_FAMILIES))
            or (isinstance(request, Texts) and request.task is not None))


def _finite(*values: float) -> None:
    if not all(math.isfinite(float(v)) for v in values):
        raise ArithmeticError(TOO_LARGE)


def _moments(n: int, mean: float, var_pop: float) -> Moments:
    """Moments around the mean: Σ(x − mean) = 0 and Σ(x − mean)² = n·variance."""
    _finite(mean, var_pop)
    return Moments(n, 0.0, n * float(var_pop), float(mean))


def _event_stats(n: int, x: int, post_mean: float, post_var: float, pre_mean: float, pre_var: float, cov: float,
                 early: int) -> EventStats:
    _finite(cov)
    return EventStats(Counts(n, x), _moments(n, post_mean, post_var), _moments(n, pre_mean, pre_var), n * float(cov),
                      early)


def _guarded(answer: Callable[[], dict[str | None, Any]]) -> dict[str | None, Any]:
    """One request's answer, or :class:`Failed` (the rest of the report stands)."""
    try:
        return answer()
    except ArithmeticError as exc:
        return {None: Failed(str(exc))}
    except AbtestError as exc:
        return {None: Failed(f"stored values are too large to sum ({exc.message})")}


def _slice(answers: Answers, segment: str | None) -> dict[Request, Any]:
    return {request: per[None] if isinstance(per.get(None), Failed) else per.get(segment, {})
            for request, per in answers.items()}
