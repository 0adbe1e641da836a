"""The ClickHouse aggregate source: per-variant sufficient statistics computed where the events are.

The registry still answers which id a test key has, and a usability study's participants'
progress (their rows live there, not in the events); ClickHouse answers everything else, one
query per request family (:mod:`abtest.clickhouse.queries` for A/B experiments and surveys,
:mod:`abtest.clickhouse.study_queries` for studies). A breakdown first picks the largest
segments, then runs each family once grouped by segment, and sums the segments for the whole
test, as :class:`~abtest.aggregates.sql.SqlSource` does, so the two give the same reports. A
study's participants are put in their segments by the attribute on their first exposure, which
ClickHouse answers, and counted from the registry's rows in Python. Surveys are answered here too
(each visitor's first answer, like :mod:`abtest.aggregates.survey_sql`).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from abtest.aggregates import events_sql, rollup_sql
from abtest.aggregates.base import (
    MAX_SEGMENTS,
    OTHER,
    Aggregates,
    AnswerCounts,
    AtOrBelow,
    AttemptRows,
    AttemptLogTimes,
    Attempts,
    Bands,
    DailyConversions,
    EventStats,
    EventTotals,
    ExposedUnits,
    Failed,
    PairedAttempts,
    PairedLogTimes,
    PairedScores,
    Participants,
    Quantiles,
    Request,
    ReachCounts,
    Returning,
    Scores,
    Segment,
    Slice,
    SurveyReach,
    TaskAnswers,
    Texts,
    UnitLogTimes,
)
from abtest.aggregates.combine import total
from abtest.aggregates.order import order_stats
from abtest.aggregates.rollup import Refreshed
from abtest.aggregates.segments import MAX_LISTED, SAMPLE_UNITS, check_attribute_name, largest
from abtest.aggregates.sql import SqlSource
from abtest.clickhouse import queries, study_queries
from abtest.clickhouse.client import ClickHouseClient
from abtest.clickhouse.order import ClickHouseOrdered
from abtest.clickhouse.schema import table, units_table
from abtest.errors import AbtestError, Unsupported
from abtest.questionnaires import QUESTIONNAIRES, Banded
from abtest.stats.summary import Counts, Moments

EXPERIMENT_FAMILIES = (ExposedUnits, EventTotals, UnitLogTimes, Returning, DailyConversions, Quantiles, AtOrBelow)
SURVEY_FAMILIES = (SurveyReach, AnswerCounts)
STUDY_FAMILIES = (Participants, Attempts, AttemptLogTimes, Scores, Bands, PairedAttempts, PairedLogTimes,
                  PairedScores, TaskAnswers)
SUPPORTED = (*EXPERIMENT_FAMILIES, *SURVEY_FAMILIES, *STUDY_FAMILIES, Texts)  # Texts: a survey's, a study's comment
Answers = dict[Request, dict[str | None, Any]]
Row = tuple[str | None, tuple[Any, ...]]
TOO_LARGE = "stored values are too large to sum (not a finite number)"


class ClickHouseSource:
    """:class:`~abtest.aggregates.base.AggregateSource` over events stored in ClickHouse."""

    def __init__(self, engine: sa.Engine, client: ClickHouseClient) -> None:
        self.registry = SqlSource(engine)  # key -> id, and a study's participants' progress
        self.client = client
        self.table = table(client)
        self.units = units_table(client)

    @staticmethod
    def rolls_up(requests: Sequence[Request]) -> bool:
        return False  # nothing to keep fresh: the units table is kept by a view as events arrive

    def refresh(self, key: str, requests: Sequence[Request]) -> Refreshed:
        return Refreshed(0, False)

    def attribute_names(self, key: str, requests: Sequence[Request]) -> list[str]:
        _check(requests)
        rows = self.client.query(queries.attribute_names(self.units),
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
        # An A/B test's segments count its analysable units; a study's (or a survey's) every exposed
        # participant, as the SQL source counts them.
        sizing = (queries.sizes(self.units) if any(isinstance(r, EXPERIMENT_FAMILIES) for r in requests)
                  else study_queries.sizes(self.table))
        sizes = self.client.query(sizing, {"e": experiment_id, "by": by, "limit": MAX_SEGMENTS + 1})
        top, more = largest([(str(v), int(n)) for v, n in sizes], MAX_SEGMENTS)
        if not top:
            return Aggregates(Slice(_slice(self._answer(experiment_id, requests, now, None), None)), by=by)
        # Daily conversions are whole-test only, but the segmented pass over the units gives them
        # too (summed over the segments): no second pass for them.
        alongside = [r for r in requests if isinstance(r, DailyConversions)]
        split = self._answer(experiment_id, [r for r in requests if not r.whole_only] + alongside, now, (by, top))
        whole = self._answer(experiment_id, [r for r in requests if r.whole_only and r not in alongside], now, None)
        whole.update({request: split.pop(request) for request in alongside})
        whole.update({request: {None: total(per.values())} for request, per in split.items()})
        order = list(top) + ([OTHER] if more else [])
        return Aggregates(Slice(_slice(whole, None)), by=by,
                          segments=tuple(Segment(value, Slice(_slice(split, value))) for value in order))

    def _answer(self, experiment_id: int, requests: Sequence[Request], now: datetime,
                labels: tuple[str, tuple[str, ...]] | None) -> Answers:
        """Every request answered per segment label (None: the whole test), one query per family (one
        for the A/B families together)."""
        families: dict[type, list[Any]] = defaultdict(list)
        for request in requests:
            families[type(request)].append(request)
        if not families:
            return {}
        params: dict[str, Any] = {"e": experiment_id}
        if labels is not None:
            params.update(by=labels[0], top=list(labels[1]))
        segmented = labels is not None

        def rows(sql: str, **extra: Any) -> list[Row]:
            return [((str(r[0]) if segmented else None), tuple(r[1:]))
                    for r in self.client.query(sql, {**params, **extra})]

        out: Answers = self._study(experiment_id, families, now, labels, rows)
        out.update(self._experiment(families, segmented, now, rows))
        for request in families.get(Quantiles, []):  # whole test only, like the SQL source
            store = ClickHouseOrdered(self.client, self.table, experiment_id, request.kind, request.event, request.over)
            out[request] = {None: order_stats(store, request.q, clustered=request.over == "events")}
        out.update(self._survey(experiment_id, families))
        for request in families.get(AtOrBelow, []):
            store = ClickHouseOrdered(self.client, self.table, experiment_id, request.kind, request.event)
            out[request] = {None: store.cluster_counts(request.threshold)}
        return out

    def _experiment(self, families: dict[type, list[Any]], segmented: bool, now: datetime,
                    rows: Callable[..., list[Row]]) -> Answers:
        """The A/B families (unit counts, event totals, log times, returning, daily conversions)
        from one per-unit pass (:func:`queries.experiment`): its rows per day of first exposure,
        added up per segment and variant."""
        asked = {family: families.get(family, []) for family in (ExposedUnits, EventTotals, UnitLogTimes, Returning,
                                                                  DailyConversions)}
        if not any(asked.values()):
            return {}
        names = sorted({r.event for r in asked[EventTotals]})
        tasks = sorted({r.task for r in asked[UnitLogTimes]})
        days = sorted({r.days for r in asked[Returning]})
        daily = sorted({r.event for r in asked[DailyConversions]})
        sql, params = queries.experiment(self.units, segmented, names, tasks, days, daily)
        cohorts: dict[str | None, dict[str, dict[str, int]]] = {}
        per_day: dict[tuple[str, Any], dict[str | None, dict[str, list[Any]]]] = defaultdict(dict)
        converters: dict[str, dict[tuple[str, str, str | None], int]] = defaultdict(dict)  # whole test

        def keep(family: str, key: Any, seg: str | None, variant: str, value: Any) -> None:
            per_day[(family, key)].setdefault(seg, {}).setdefault(variant, []).append(value)

        for seg, (variant, day, units, *rest) in rows(sql, **{**params, "now": now}):
            variant, units, first_day = str(variant), int(units), _day(day)
            cohorts.setdefault(seg, {}).setdefault(variant, {})[first_day] = units
            if variant in rollup_sql.EXCLUSIONS:
                continue  # a bucket of excluded units: counted, in no metric
            values = iter(rest)
            for name in names:
                keep("event", name, seg, variant, (units, *(next(values) for _ in range(7))))
            for task in tasks:
                n, mean, var = (next(values) for _ in range(3))
                if n:
                    keep("task", task, seg, variant, (int(n), mean, var))
            for d in days:
                due, came_back = int(next(values)), int(next(values))
                if due:
                    keep("back", d, seg, variant, (due, came_back))
            for name in daily:
                converted, counts = next(values), next(values)
                for on, n in zip(converted, counts, strict=True):
                    row = (variant, first_day, None if on < 0 else _day(on))
                    converters[name][row] = converters[name].get(row, 0) + int(n)

        def summed(family: str, key: Any, make: Callable[..., Any]) -> dict[str | None, Any]:
            return {seg: {v: total(make(*t) for t in found) for v, found in per.items()}
                    for seg, per in per_day.get((family, key), {}).items()}

        out: Answers = {}
        units = {seg: rollup_sql.unit_counts_of(buckets) for seg, buckets in cohorts.items()}
        for request in asked[ExposedUnits]:
            out[request] = units if units else {None: rollup_sql.unit_counts_of({})} if not segmented else {}
        for request in asked[EventTotals]:
            out[request] = _guarded(lambda: summed("event", request.event, _event_stats))
        for request in asked[UnitLogTimes]:
            out[request] = _guarded(lambda: summed("task", request.task, _moments))
        for request in asked[Returning]:
            out[request] = summed("back", request.days, Counts)
        for request in asked[DailyConversions]:
            out[request] = {None: [(*row, n) for row, n in converters[request.event].items()]}
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
            if request.task is None:
                continue  # a study's open comment (in _study)
            texts: dict[str, list[str]] = {}
            for variant, text in self.client.query(queries.answer_texts(self.table), {**params, "task": request.task}):
                texts.setdefault(str(variant), []).append(str(text))
            out[request] = {None: texts}
        return out

    def _study(self, experiment_id: int, families: dict[type, list[Any]], now: datetime,
               labels: tuple[str, tuple[str, ...]] | None, rows: Callable[..., list[Row]]) -> Answers:
        """A usability study's answers (the rules of :mod:`abtest.aggregates.events_sql`), one query
        per family; the participants' progress from the registry."""
        out: Answers = {}
        segmented, table = labels is not None, self.table
        if Attempts in families:
            by_task = {r.task: r for r in families[Attempts]}
            counts: Answers = {r: {} for r in families[Attempts]}
            for seg, (task, variant, n, x) in rows(study_queries.attempts(table, segmented), tasks=sorted(by_task)):
                counts[by_task[task]].setdefault(seg, {})[str(variant)] = Counts(int(n), int(x))
            out.update(counts)
        if AttemptLogTimes in families:
            by_task = {r.task: r for r in families[AttemptLogTimes]}
            times: dict[Request, dict[str | None, dict[str, tuple[Any, ...]]]] = {r: {} for r in by_task.values()}
            for seg, (task, variant, *m) in rows(study_queries.attempt_log_times(table, segmented),
                                                 tasks=sorted(by_task)):
                times[by_task[task]].setdefault(seg, {})[str(variant)] = tuple(m)
            out.update({request: _guarded(lambda found=found: _all_moments(found)) for request, found in times.items()})
        if TaskAnswers in families:
            by_task = {r.task: r for r in families[TaskAnswers]}
            tries: Answers = {r: {} for r in families[TaskAnswers]}
            for seg, (task, variant, success, duration, answers) in rows(study_queries.task_answers(table, segmented),
                                                                         tasks=sorted(by_task)):
                per = tries[by_task[task]].setdefault(seg, {})
                attempt = (bool(success), float(duration or 0.0), None if answers is None else json.loads(answers))
                per[str(variant)] = per.get(str(variant), AttemptRows()).plus(attempt)
            out.update(tries)
        branched: list[tuple[type, Callable[[list[Any]], str], dict[str, str]]] = [
            (Scores, lambda rs: study_queries.scores(table, segmented, [(r.questionnaire, r.task, r.per_participant)
                                                                          for r in rs]),
             {"q": "questionnaire", "t": "task"}),
            (PairedLogTimes, lambda rs: study_queries.paired_log_times(table, segmented, len(rs)),
             {"t": "task", "b": "baseline"}),
            (PairedScores, lambda rs: study_queries.paired_scores(
                table, segmented, [(r.questionnaire, r.task, r.per_participant, r.codes) for r in rs]),
             {"q": "questionnaire", "t": "task", "b": "baseline"}),
        ]
        for family, sql, fields in branched:  # moments per request
            if family in families:
                requests = families[family]
                found: list[dict[str | None, dict[str, tuple[Any, ...]]]] = [{} for _ in requests]
                for seg, (r, variant, *m) in rows(sql(requests), **_named(requests, fields)):
                    found[int(r)].setdefault(seg, {})[str(variant)] = tuple(m)
                out.update({request: _guarded(lambda f=f: _all_moments(f)) for request, f in zip(requests, found)})
        if PairedAttempts in families:
            requests = families[PairedAttempts]
            pairs: list[dict[str | None, dict[str, tuple[int, int, int]]]] = [{} for _ in requests]
            for seg, (r, variant, n, base_only, other_only) in rows(
                    study_queries.paired_attempts(table, segmented, len(requests)),
                    **_named(requests, {"t": "task", "b": "baseline"})):
                pairs[int(r)].setdefault(seg, {})[str(variant)] = (int(n), int(base_only), int(other_only))
            out.update(zip(requests, pairs))
        if Bands in families:
            requests = families[Bands]
            names = [r.questionnaire for r in requests]
            tallies: list[dict[str | None, dict[str, list[int]]]] = [{} for _ in requests]
            for seg, (r, variant, band, n) in rows(study_queries.bands(table, segmented, names),
                                                   **_named(requests, {"q": "questionnaire"})):
                scoring = QUESTIONNAIRES[names[int(r)]].scoring
                assert isinstance(scoring, Banded)
                tally = tallies[int(r)].setdefault(seg, {}).setdefault(str(variant), [0] * len(scoring.bands))
                if band is not None:  # an answer in no band counts in none (as on SQL)
                    tally[int(band)] += int(n)
            out.update({request: {seg: {v: tuple(t) for v, t in per.items()} for seg, per in tally.items()}
                        for request, tally in zip(requests, tallies)})
        for request in families.get(Texts, []):
            if request.task is None:  # a study's open comment (a survey's text questions: _survey)
                comments: dict[str, list[str]] = {}
                for variant, answers in self.client.query(study_queries.texts(table),
                                                          {"e": experiment_id, "q0": request.questionnaire}):
                    given = None if answers is None else json.loads(answers)
                    if given:
                        comments.setdefault(str(variant), []).append(str(given[0]))
                out[request] = {None: comments}
        if Participants in families:
            out.update(self._participants(experiment_id, families[Participants], now, labels))
        return out

    def _participants(self, experiment_id: int, requests: list[Participants], now: datetime,
                      labels: tuple[str, tuple[str, ...]] | None) -> Answers:
        """Progress is the registry's (study_participants), counted by the SQL source's own rules;
        in a breakdown each participant's segment comes from their first exposure here."""
        scope = events_sql.scope(experiment_id, None)
        if labels is not None:
            by, top = labels
            segments = dict(self.client.query(study_queries.segments(self.table),
                                              {"e": experiment_id, "by": by, "top": list(top)}))
            scope = _Segmented(experiment_id, {str(u): str(s) for u, s in segments.items()})
        with self.registry.engine.connect() as conn:
            return {request: events_sql.participants(conn, scope, request, now) for request in requests}


class _Segmented(events_sql._Scope):
    """The SQL source's participants scope with each participant's segment known beforehand
    (from ClickHouse): rows of participants never exposed are in no segment, as its join leaves them."""

    def __init__(self, experiment_id: int, segments: dict[str, str]) -> None:
        super().__init__(experiment_id, None)
        self.segments = segments

    def columns(self) -> list[sa.ColumnElement[Any]]:
        return [events_sql.PARTICIPANTS.c.pid]

    def rows(self, conn: sa.Connection, query: sa.Select[Any]) -> list[tuple[str | None, tuple[Any, ...]]]:
        return [(self.segments[r[0]], tuple(r[1:])) for r in conn.execute(query).all() if r[0] in self.segments]


def _day(number: int) -> str:
    """YYYY-MM-DD of a day counted from 1970-01-01 (ClickHouse's Date as a number)."""
    return (date(1970, 1, 1) + timedelta(days=int(number))).isoformat()


def _named(requests: Sequence[Any], fields: dict[str, str]) -> dict[str, Any]:
    """Each request's fields as the parameters ``{<name><r>}`` of its branch (None: not used)."""
    return {f"{name}{r}": getattr(request, field) for r, request in enumerate(requests)
            for name, field in fields.items() if getattr(request, field) is not None}


def _all_moments(found: dict[str | None, dict[str, tuple[Any, ...]]]) -> dict[str | None, dict[str, Moments]]:
    return {seg: {v: _moments(int(n), mean, var) for v, (n, mean, var) in per.items()} for seg, per in found.items()}


def _check(requests: Sequence[Request]) -> None:
    """Refuse, by name, a request no family here answers (one added to the seam and not built
    here yet), rather than answer it with nothing."""
    unsupported = sorted({type(r).__name__ for r in requests if not isinstance(r, SUPPORTED)})
    if unsupported:
        raise Unsupported("not computed on ClickHouse events yet (unsupported requests: "
                          f"{', '.join(unsupported)}); keep ABTEST_EVENTS_URL unset for these", field="ABTEST_EVENTS_URL")


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
