"""Usability-study aggregates, straight from the events (studies are small: tens to hundreds of
participants, so no rollups are kept for them).

Every answer is a ``GROUP BY`` to counts, sums and sums of squares (around the values' mean,
against cancellation), one query per request family; questionnaire scores are computed in SQL
from the questionnaire's one declaration (:mod:`abtest.questionnaires`). Only the open comments
and the participants' progress rows are read row by row. A breakdown joins each participant's
segment label: the attribute on their first exposure (when they joined the study).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from abtest.aggregates.base import (
    MAX_SEGMENTS,
    AttemptLogTimes,
    AttemptRows,
    Attempts,
    Bands,
    ParticipantCounts,
    Participants,
    PairedAttempts,
    PairedLogTimes,
    PairedScores,
    Scores,
    TaskAnswers,
    Texts,
)
from abtest.aggregates.segments import Labels, attribute_value
from abtest.models import Event, StudyParticipant
from abtest.questionnaires import QUESTIONNAIRES, Banded, Linear
from abtest.stats.summary import Counts, Moments

EVENTS = Event.__table__  # type: ignore[attr-defined]
PARTICIPANTS = StudyParticipant.__table__  # type: ignore[attr-defined]
Seg = str | None
PerSegment = dict[Seg, Any]


# ---- scoring, from the questionnaire's declaration --------------------------------------------------


def _answer(events: Any, i: int) -> sa.ColumnElement[float]:
    return events.c.answers[i].as_float()


def score_sql(events: Any, name: str) -> sa.ColumnElement[float]:
    """The declared score of a stored response, in SQL (linear score, or the band's code)."""
    scoring = QUESTIONNAIRES[name].scoring
    if isinstance(scoring, Linear):
        total = sum((w * _answer(events, i) for i, w in enumerate(scoring.weights)), sa.literal(scoring.offset))
        return total * scoring.factor
    return band_code_sql(events, scoring)


def band_code_sql(events: Any, scoring: Banded) -> sa.ColumnElement[float]:
    a = _answer(events, 0)
    return sa.case(*((sa.and_(a >= b.low, a <= b.high), float(b.code)) for b in scoring.bands), else_=sa.null())


def _log_seconds(column: sa.ColumnElement[float]) -> sa.ColumnElement[float]:
    return sa.func.ln(column / 1000.0)


def _moments_by(rows: sa.Select[Any]) -> sa.Select[Any]:
    """``rows`` selects (group columns …, value); grouped by the group columns, this gives
    (group columns …, n, Σd, Σd², c) with d = value − c and c the mean of every value in ``rows``:
    around a shift near the data Σd² − (Σd)²/n keeps the digits that Σx² − (Σx)²/n loses to
    cancellation. One c for every group (and segment), so their moments add exactly."""
    values = rows.cte("moment_rows")
    *group, value = values.c
    c = sa.func.coalesce(sa.select(sa.func.avg(value)).scalar_subquery(), 0.0)
    d = value - c
    return sa.select(*group, sa.func.count(value), sa.func.sum(d), sa.func.sum(d * d), sa.func.max(c)).group_by(*group)


def _moments(n: Any, total: Any, total_sq: Any, shift: Any) -> Moments:
    return Moments(int(n or 0), float(total or 0), float(total_sq or 0), float(shift or 0))


# ---- segments --------------------------------------------------------------------------------------


def _first_exposures(experiment_id: int) -> sa.Subquery:
    """(unit, attributes) of each participant's first exposure."""
    ranked = (sa.select(EVENTS.c.unit, EVENTS.c.attributes,
                        sa.func.row_number().over(partition_by=EVENTS.c.unit,
                                                  order_by=(EVENTS.c.ts, EVENTS.c.id)).label("rn"))
              .where(EVENTS.c.experiment_id == experiment_id, EVENTS.c.type == "exposure").subquery())
    return sa.select(ranked.c.unit, ranked.c.attributes).where(ranked.c.rn == 1).subquery("first_exposure")


def segment_sizes(conn: sa.Connection, experiment_id: int, by: str) -> list[tuple[str, int]]:
    first = _first_exposures(experiment_id)
    value = attribute_value(first.c.attributes, by).label("value")
    n = sa.func.count().label("n")
    return [(str(v), int(c)) for v, c in conn.execute(
        sa.select(value, n).group_by(value).order_by(n.desc(), value).limit(MAX_SEGMENTS + 1)).all()]


class _Scope:
    """One study, whole or by segment: adds the segment label and its join to a query."""

    def __init__(self, experiment_id: int, labels: Labels | None) -> None:
        self.experiment_id = experiment_id
        self.labels = labels
        self.first = _first_exposures(experiment_id) if labels is not None else None

    def columns(self) -> list[sa.ColumnElement[Any]]:
        return [] if self.first is None else [self.labels.of(self.first.c.attributes).label("segment")]  # type: ignore[union-attr]

    def group(self) -> list[sa.ColumnElement[Any]]:
        """GROUP BY the segment by its name (see rollup_sql._group)."""
        return [] if self.first is None else [sa.literal_column("segment")]

    def source(self, table: Any, unit: sa.ColumnElement[str]) -> Any:
        return table if self.first is None else table.join(self.first, self.first.c.unit == unit)

    def rows(self, conn: sa.Connection, query: sa.Select[Any]) -> list[tuple[Seg, tuple[Any, ...]]]:
        rows = conn.execute(query).all()
        return [(str(r[0]), tuple(r[1:])) for r in rows] if self.first is not None else [(None, tuple(r)) for r in rows]

    def events(self, *conditions: sa.ColumnElement[bool]) -> list[sa.ColumnElement[bool]]:
        return [EVENTS.c.experiment_id == self.experiment_id, *conditions]


def _responses(events: Any, name: str) -> sa.ColumnElement[bool]:
    return sa.and_(events.c.type == "response", events.c.questionnaire == name)


# ---- per design ------------------------------------------------------------------------------------


def participants(conn: sa.Connection, scope: _Scope, request: Participants, now: datetime) -> PerSegment:
    """Per design: started, finished, abandoned (left, or silent too long) and in progress."""
    stale = now - timedelta(seconds=request.abandon_after_s)
    p = PARTICIPANTS.c
    query = (sa.select(*scope.columns(), p.designs, p.finished_at, p.abandoned_at, p.updated_at)
             .select_from(scope.source(PARTICIPANTS, p.pid)).where(p.experiment_id == scope.experiment_id))
    counts: dict[Seg, dict[str, list[int]]] = {}
    for seg, (designs, finished, abandoned, updated) in scope.rows(conn, query):
        state = 1 if finished is not None else 2 if abandoned is not None or updated < stale else 3
        for design in designs or ():
            tally = counts.setdefault(seg, {}).setdefault(design, [0, 0, 0, 0])
            tally[0] += 1
            tally[state] += 1
    return {seg: {d: ParticipantCounts(*t) for d, t in per.items()} for seg, per in counts.items()}


def attempts(conn: sa.Connection, scope: _Scope, requests: Sequence[Attempts]) -> dict[Attempts, PerSegment]:
    e = EVENTS.c
    query = (sa.select(*scope.columns(), e.task, e.variant, sa.func.count(),
                       sa.func.sum(sa.case((e.success, 1), else_=0)))
             .select_from(scope.source(EVENTS, e.unit))
             .where(*scope.events(e.type == "task", e.task.in_([r.task for r in requests])))
             .group_by(*scope.group(), e.task, e.variant))
    out: dict[Attempts, PerSegment] = {r: {} for r in requests}
    by_task = {r.task: r for r in requests}
    for seg, (task, variant, n, x) in scope.rows(conn, query):
        out[by_task[task]].setdefault(seg, {})[variant] = Counts(int(n), int(x or 0))
    return out


def task_answers(conn: sa.Connection, scope: _Scope, requests: Sequence[TaskAnswers]
                 ) -> dict[TaskAnswers, PerSegment]:
    e = EVENTS.c
    query = (sa.select(*scope.columns(), e.task, e.variant, e.success, e.duration_ms, e.answers)
             .select_from(scope.source(EVENTS, e.unit))
             .where(*scope.events(e.type == "task", e.task.in_([r.task for r in requests]), e.answers.is_not(None)))
             .order_by(e.ts, e.id))
    out: dict[TaskAnswers, PerSegment] = {r: {} for r in requests}
    by_task = {r.task: r for r in requests}
    for seg, (task, variant, success, duration, answers) in scope.rows(conn, query):
        per = out[by_task[task]].setdefault(seg, {})
        per[variant] = per.get(variant, AttemptRows()).plus((bool(success), float(duration or 0.0), answers))
    return out


def attempt_log_times(conn: sa.Connection, scope: _Scope, requests: Sequence[AttemptLogTimes]
                      ) -> dict[AttemptLogTimes, PerSegment]:
    e = EVENTS.c
    query = _moments_by(sa.select(*scope.columns(), e.task, e.variant, _log_seconds(e.duration_ms).label("value"))
                        .select_from(scope.source(EVENTS, e.unit))
                        .where(*scope.events(e.type == "task", e.task.in_([r.task for r in requests]),
                                             e.success == sa.true())))
    out: dict[AttemptLogTimes, PerSegment] = {r: {} for r in requests}
    by_task = {r.task: r for r in requests}
    for seg, (task, variant, n, s, ss, c) in scope.rows(conn, query):
        out[by_task[task]].setdefault(seg, {})[variant] = _moments(n, s, ss, c)
    return out


def scores(conn: sa.Connection, scope: _Scope, request: Scores) -> PerSegment:
    e = EVENTS.c
    conditions = [_responses(EVENTS, request.questionnaire)]
    if request.task is not None:
        conditions.append(e.task == request.task)
    score = score_sql(EVENTS, request.questionnaire)
    if request.per_participant:  # each participant's mean first, so a person counts once
        per_unit = (sa.select(e.variant, e.unit, sa.func.avg(score).label("score"))
                    .where(*scope.events(*conditions)).group_by(e.variant, e.unit).subquery())
        query = _moments_by(sa.select(*scope.columns(), per_unit.c.variant, per_unit.c.score.label("value"))
                            .select_from(scope.source(per_unit, per_unit.c.unit)))
    else:
        query = _moments_by(sa.select(*scope.columns(), e.variant, score.label("value"))
                            .select_from(scope.source(EVENTS, e.unit)).where(*scope.events(*conditions)))
    out: PerSegment = {}
    for seg, (variant, n, s, ss, c) in scope.rows(conn, query):
        out.setdefault(seg, {})[variant] = _moments(n, s, ss, c)
    return out


def bands(conn: sa.Connection, scope: _Scope, request: Bands) -> PerSegment:
    """Per design: answers per band of a banded questionnaire, in declaration order."""
    scoring = QUESTIONNAIRES[request.questionnaire].scoring
    assert isinstance(scoring, Banded)
    e = EVENTS.c
    a = _answer(EVENTS, 0)
    query = (sa.select(*scope.columns(), e.variant,
                       *(sa.func.sum(sa.case((sa.and_(a >= b.low, a <= b.high), 1), else_=0)) for b in scoring.bands))
             .select_from(scope.source(EVENTS, e.unit)).where(*scope.events(_responses(EVENTS, request.questionnaire)))
             .group_by(*scope.group(), e.variant))
    out: PerSegment = {}
    for seg, (variant, *counts) in scope.rows(conn, query):
        out.setdefault(seg, {})[variant] = tuple(int(c or 0) for c in counts)
    return out


def texts(conn: sa.Connection, experiment_id: int, request: Texts) -> dict[str, list[str]]:
    e = EVENTS.c
    out: dict[str, list[str]] = {}
    for variant, answers in conn.execute(
            sa.select(e.variant, e.answers)
            .where(e.experiment_id == experiment_id, _responses(EVENTS, request.questionnaire))
            .order_by(e.ts, e.id)):
        if answers:
            out.setdefault(variant, []).append(str(answers[0]))
    return out


# ---- within subjects: each participant against themselves ----------------------------------------------


def _pair(scope: _Scope, a: Any, b: Any, on: sa.ColumnElement[bool]) -> Any:
    joined = a.join(b, sa.and_(b.c.unit == a.c.unit, on))
    return scope.source(joined, a.c.unit)


def paired_attempts(conn: sa.Connection, scope: _Scope, request: PairedAttempts) -> PerSegment:
    a, b = EVENTS.alias("a"), EVENTS.alias("b")
    a_ok, b_ok = sa.case((a.c.success, 1), else_=0), sa.case((b.c.success, 1), else_=0)
    query = (sa.select(*scope.columns(), b.c.variant, sa.func.count(), sa.func.sum(a_ok * (1 - b_ok)),
                       sa.func.sum((1 - a_ok) * b_ok))
             .select_from(_pair(scope, a, b, sa.and_(b.c.experiment_id == a.c.experiment_id, b.c.type == "task",
                                                     b.c.task == a.c.task)))
             .where(a.c.experiment_id == scope.experiment_id, a.c.type == "task", a.c.task == request.task,
                    a.c.variant == request.baseline, b.c.variant != request.baseline)
             .group_by(*scope.group(), b.c.variant))
    out: PerSegment = {}
    for seg, (variant, n, base_only, other_only) in scope.rows(conn, query):
        out.setdefault(seg, {})[variant] = (int(n), int(base_only or 0), int(other_only or 0))
    return out


def paired_log_times(conn: sa.Connection, scope: _Scope, request: PairedLogTimes) -> PerSegment:
    a, b = EVENTS.alias("a"), EVENTS.alias("b")
    diff = _log_seconds(b.c.duration_ms) - _log_seconds(a.c.duration_ms)
    query = _moments_by(
        sa.select(*scope.columns(), b.c.variant, diff.label("value"))
        .select_from(_pair(scope, a, b, sa.and_(b.c.experiment_id == a.c.experiment_id, b.c.type == "task",
                                                b.c.task == a.c.task)))
        .where(a.c.experiment_id == scope.experiment_id, a.c.type == "task", a.c.task == request.task,
               a.c.variant == request.baseline, b.c.variant != request.baseline,
               a.c.success == sa.true(), b.c.success == sa.true()))
    out: PerSegment = {}
    for seg, (variant, n, s, ss, c) in scope.rows(conn, query):
        out.setdefault(seg, {})[variant] = _moments(n, s, ss, c)
    return out


def paired_scores(conn: sa.Connection, scope: _Scope, request: PairedScores) -> PerSegment:
    """Moments of (score on the other design − score on the baseline) per participant."""
    name = request.questionnaire
    scoring = QUESTIONNAIRES[name].scoring

    def score(events: Any) -> sa.ColumnElement[float]:
        if request.codes:
            assert isinstance(scoring, Banded)
            return band_code_sql(events, scoring)
        return score_sql(events, name)

    if request.per_participant:
        e = EVENTS.c
        per_unit = (sa.select(e.variant, e.unit, sa.func.avg(score(EVENTS)).label("score"))
                    .where(e.experiment_id == scope.experiment_id, _responses(EVENTS, name))
                    .group_by(e.variant, e.unit).subquery())
        a, b = per_unit.alias("a"), per_unit.alias("b")
        diff = b.c.score - a.c.score
        rows = (sa.select(*scope.columns(), b.c.variant, diff.label("value"))
                .select_from(scope.source(a.join(b, b.c.unit == a.c.unit), a.c.unit))
                .where(a.c.variant == request.baseline, b.c.variant != request.baseline))
    else:
        a, b = EVENTS.alias("a"), EVENTS.alias("b")
        conditions = [a.c.experiment_id == scope.experiment_id, _responses(a, name),
                      a.c.variant == request.baseline, b.c.variant != request.baseline]
        if request.task is not None:
            conditions.append(a.c.task == request.task)
        diff = score(b) - score(a)
        on = sa.and_(b.c.experiment_id == a.c.experiment_id, b.c.type == "response",
                     b.c.questionnaire == a.c.questionnaire, sa.or_(a.c.task.is_(None), b.c.task == a.c.task))
        rows = sa.select(*scope.columns(), b.c.variant, diff.label("value")).select_from(
            _pair(scope, a, b, on)).where(*conditions)
    out: PerSegment = {}
    for seg, (variant, n, s, ss, c) in scope.rows(conn, _moments_by(rows)):
        if n:
            out.setdefault(seg, {})[variant] = _moments(n, s, ss, c)
    return out


def scope(experiment_id: int, labels: Labels | None) -> _Scope:
    return _Scope(experiment_id, labels)
