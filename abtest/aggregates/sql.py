"""The SQL aggregate source (SQLite and PostgreSQL): the registry database answers for itself.

Experiment requests are answered from the per-unit rollups, which this source first brings up to
date (recomputing only the units whose events changed); study requests straight from the events.
Every answer of one fetch reads one snapshot of the database, so the numbers agree with each
other. A breakdown first picks the largest segments, then runs each request family once more
grouped by segment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from abtest.aggregates import events_sql, quantiles_sql, rollup_sql, survey_sql
from abtest.aggregates.combine import total
from abtest.aggregates.base import (
    MAX_SEGMENTS,
    OTHER,
    Aggregates,
    AtOrBelow,
    AttemptLogTimes,
    Attempts,
    Bands,
    DailyConversions,
    EventTotals,
    ExposedUnits,
    Failed,
    PairedAttempts,
    PairedLogTimes,
    PairedScores,
    Participants,
    Quantiles,
    Request,
    Returning,
    Scores,
    Segment,
    Slice,
    TaskAnswers,
    Texts,
    UnitLogTimes,
)
from abtest.aggregates.rollup import Measures, Refreshed, refresh
from abtest.aggregates.segments import Labels, attribute_names, check_attribute_name, largest
from abtest.db import snapshot
from abtest.errors import AbtestError, NotFound
from abtest.models import Experiment

# Quantiles and AtOrBelow read the events, joined to the unit rollups that fix each unit's variant.
_ROLLUP = (ExposedUnits, EventTotals, UnitLogTimes, Returning, DailyConversions, Quantiles, AtOrBelow)
_EXPERIMENTS = Experiment.__table__  # type: ignore[attr-defined]

Answers = dict[Request, dict[str | None, Any]]


class SqlSource:
    """:class:`~abtest.aggregates.base.AggregateSource` over the registry's own database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def experiment_id(self, key: str) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(_EXPERIMENTS.c.id).where(_EXPERIMENTS.c.key == key)).scalar()
        if found is None:
            raise NotFound(f"no experiment with key {key!r}", field="experiment")
        return int(found)

    @staticmethod
    def rolls_up(requests: Sequence[Request]) -> bool:
        """Whether any of these requests is answered from the per-unit rollups."""
        return any(isinstance(r, _ROLLUP) for r in requests)

    def refresh(self, key: str, requests: Sequence[Request]) -> Refreshed:
        """Bring the rollups that answer ``requests`` up to date now (reports do it themselves)."""
        if not self.rolls_up(requests):
            return Refreshed(0, False)  # answered straight from the events
        return refresh(self.engine, self.experiment_id(key), Measures.of(requests))

    def attribute_names(self, key: str, requests: Sequence[Request]) -> list[str]:
        """Attributes seen on the units' first exposures (a sample), for the breakdown control."""
        experiment_id = self.experiment_id(key)
        with self.engine.connect() as conn:
            if self.rolls_up(requests):
                units = rollup_sql.UNITS
                rows = sa.select(units.c.attributes).where(units.c.experiment_id == experiment_id).order_by(
                    units.c.first_ts.desc())
            else:
                events = events_sql.EVENTS
                rows = sa.select(events.c.attributes).where(events.c.experiment_id == experiment_id,
                                                            events.c.type == "exposure").order_by(events.c.id.desc())
            return attribute_names(conn, rows)

    def fetch(self, key: str, variants: Sequence[str], requests: Sequence[Request], now: datetime,
              by: str | None = None) -> Aggregates:
        experiment_id = self.experiment_id(key)
        requests = list(dict.fromkeys(requests))
        rollups = [r for r in requests if isinstance(r, _ROLLUP)]
        if rollups:
            refresh(self.engine, experiment_id, Measures.of(rollups))
        with snapshot(self.engine) as conn:
            if by is None:
                return Aggregates(Slice(_slice(_answer(conn, experiment_id, requests, now, None), None)))
            by = check_attribute_name(by)
            # Experiments: one pass over the unit rollups gives the segment sizes, each segment's
            # unit counts and the daily cohorts, unless the attribute has too many values.
            table = rollup_sql.unit_table(conn, experiment_id, by) if rollups else None
            if table is not None:
                sizes = rollup_sql.sizes_of(table)
            else:
                sizes = (rollup_sql.segment_sizes if rollups else events_sql.segment_sizes)(conn, experiment_id, by)
            top, more = largest(sizes, MAX_SEGMENTS)
            if not top:
                return Aggregates(Slice(_slice(_answer(conn, experiment_id, requests, now, None), None)), by=by)
            units, by_day = rollup_sql.from_unit_table(table, top) if table is not None else (None, None)
            split = _answer(conn, experiment_id, [r for r in requests if not r.whole_only], now, Labels(by, top),
                            units)
            # Every unit is in exactly one segment and sufficient statistics add up, so the whole
            # test is the sum of its segments: only what has no segments is read again.
            whole = _answer(conn, experiment_id, [r for r in requests if r.whole_only], now, None, by_day=by_day)
        order = list(top) + ([OTHER] if more else [])
        whole.update({request: {None: total(per.values())} for request, per in split.items()})
        return Aggregates(Slice(_slice(whole, None)), by=by,
                          segments=tuple(Segment(value, Slice(_slice(split, value))) for value in order))


def _guarded(conn: sa.Connection, requests: list[Any], answer: Callable[[list[Any]], Answers]) -> Answers:
    """Answer ``requests``, or mark each :class:`Failed` with the reason (the rest of the report
    stands). PostgreSQL raises on a sum that overflows double precision: a savepoint keeps the
    report's snapshot usable; SQLite returns infinity, which the statistics records refuse."""
    try:
        with conn.begin_nested():
            return answer(requests)
    except sa.exc.DataError:
        reason = "stored values are too large to sum (not a finite number)"
    except AbtestError as exc:
        reason = f"stored values are too large to sum ({exc.message})"
    return {request: {None: Failed(reason)} for request in requests}


def _slice(answers: Answers, segment: str | None) -> dict[Request, Any]:
    """The answers of one segment (a failed request fails in every segment)."""
    return {request: per[None] if isinstance(per.get(None), Failed) else per.get(segment, {})
            for request, per in answers.items()}


def _answer(conn: sa.Connection, experiment_id: int, requests: Sequence[Request], now: datetime,
            labels: Labels | None, units: dict[str | None, Any] | None = None,
            by_day: dict[str, dict[str, int]] | None = None) -> Answers:
    """Every request answered per segment (``None``: the whole test), one query per family;
    ``units`` and ``by_day`` are the unit counts and daily cohorts when already read."""
    families: dict[type, list[Any]] = defaultdict(list)
    for request in requests:
        families[type(request)].append(request)
    out: Answers = {}
    if by_day is None and labels is None and DailyConversions in families:
        by_day = rollup_sql.cohorts(conn, experiment_id)
    if units is None and (ExposedUnits in families or any(t in families for t in (EventTotals, Returning))):
        units = rollup_sql.unit_counts(conn, experiment_id, labels, by_day)
    units = units or {}
    for request in families.get(ExposedUnits, []):
        out[request] = units
    for request in families.get(EventTotals, []):  # one at a time: a sum that overflows spoils only its own
        out.update(_guarded(conn, [request], lambda r: rollup_sql.event_totals(conn, experiment_id, r, units, labels)))
    if UnitLogTimes in families:
        out.update(_guarded(conn, families[UnitLogTimes],
                            lambda r: rollup_sql.unit_log_times(conn, experiment_id, r, labels)))
    if Returning in families:
        out.update(_guarded(conn, families[Returning], lambda r: rollup_sql.returning(conn, experiment_id, r, now, labels)))
    for request in families.get(DailyConversions, []):
        assert by_day is not None
        out[request] = {None: rollup_sql.daily_conversions(conn, experiment_id, request, by_day)}
    out.update(quantiles_sql.answer(conn, experiment_id, families.get(Quantiles, []) + families.get(AtOrBelow, [])))
    for request in families.get(Texts, []):
        if request.task is None:  # a study's open comment (a survey's text questions: below)
            out[request] = {None: events_sql.texts(conn, experiment_id, request)}
    out.update(survey_sql.answer(conn, experiment_id, families))

    scope = events_sql.scope(experiment_id, labels)
    batched: dict[type, Callable[..., Answers]] = {Attempts: events_sql.attempts,
                                                   AttemptLogTimes: events_sql.attempt_log_times,
                                                   TaskAnswers: events_sql.task_answers}
    for family, handler in batched.items():
        if family in families:
            out.update(handler(conn, scope, families[family]))
    single: dict[type, Callable[..., dict[str | None, Any]]] = {
        Scores: events_sql.scores, Bands: events_sql.bands, PairedAttempts: events_sql.paired_attempts,
        PairedLogTimes: events_sql.paired_log_times, PairedScores: events_sql.paired_scores}
    for family, one in single.items():
        for request in families.get(family, []):
            out[request] = one(conn, scope, request)
    for request in families.get(Participants, []):
        out[request] = events_sql.participants(conn, scope, request, now)
    return out
