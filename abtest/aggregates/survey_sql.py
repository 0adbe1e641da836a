"""Survey aggregates, straight from the events: who was asked, who answered, and each visitor's
first answer to each question, counted per variant, each visitor once and in one variant: the
variant of their first survey event (as an experiment's unit belongs to the variant of its first
exposure), however often or with whatever variant the page sent later. Answers reach the events
only after ingest checked them against the survey's questions (:mod:`abtest.ingest`), so the
numbers here are on the question's scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from abtest.aggregates.base import AnswerCounts, ReachCounts, SurveyReach, Texts
from abtest.models import Event

EVENTS = Event.__table__  # type: ignore[attr-defined]


def _mine(experiment_id: int) -> list[sa.ColumnElement[bool]]:
    e = EVENTS.c
    return [e.experiment_id == experiment_id, e.forced == sa.false(), e.variant.is_not(None)]


def _first(partition: tuple[Any, ...]) -> sa.ColumnElement[int]:
    return sa.func.row_number().over(partition_by=partition, order_by=(EVENTS.c.ts, EVENTS.c.id))


def _unit_variants(experiment_id: int) -> sa.Subquery:
    """(unit, variant): the variant of each visitor's first survey event."""
    e = EVENTS.c
    ranked = sa.select(e.unit, e.variant, _first((e.unit,)).label("rn")).where(*_mine(experiment_id)).subquery()
    return sa.select(ranked.c.unit, ranked.c.variant).where(ranked.c.rn == 1).subquery("unit_variant")


def reach(conn: sa.Connection, experiment_id: int) -> dict[str, ReachCounts]:
    """Per variant: visitors shown (any survey event), answering, dismissing without an answer."""
    e = EVENTS.c

    def flag(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.max(sa.case((condition, 1), else_=0))

    per_unit = (sa.select(e.unit, flag(e.type == "response").label("answered"),
                          flag(sa.and_(e.type == "survey", e.event == "dismissed")).label("dismissed"))
                .where(*_mine(experiment_id)).group_by(e.unit).subquery())
    u, first = per_unit.c, _unit_variants(experiment_id)
    rows = conn.execute(sa.select(first.c.variant, sa.func.count(), sa.func.sum(u.answered),
                                  sa.func.sum(sa.case((sa.and_(u.dismissed == 1, u.answered == 0), 1), else_=0)))
                        .select_from(per_unit.join(first, first.c.unit == u.unit))
                        .group_by(first.c.variant)).all()
    return {str(v): ReachCounts(int(s or 0), int(a or 0), int(d or 0)) for v, s, a, d in rows}


def _first_answers(experiment_id: int, *conditions: sa.ColumnElement[bool]) -> Any:
    """Each visitor's first answer per question (task, unit, answers, ts, id), with their variant."""
    e = EVENTS.c
    ranked = (sa.select(e.task, e.unit, e.answers, e.ts, e.id, _first((e.task, e.unit)).label("rn"))
              .where(*_mine(experiment_id), e.type == "response", *conditions).subquery())
    first = _unit_variants(experiment_id)
    return ranked, first, ranked.join(first, first.c.unit == ranked.c.unit)


def answer_counts(conn: sa.Connection, experiment_id: int, requests: Sequence[AnswerCounts]
                  ) -> dict[AnswerCounts, dict[str, dict[int, int]]]:
    """Per question and variant: visitors by their first answer, in one query for every question."""
    e = EVENTS.c
    ranked, first, joined = _first_answers(experiment_id, e.task.in_([r.question for r in requests]),
                                           e.questionnaire != "text")
    value = ranked.c.answers[0].as_float()
    rows = conn.execute(sa.select(ranked.c.task, first.c.variant, value, sa.func.count()).select_from(joined)
                        .where(ranked.c.rn == 1).group_by(ranked.c.task, first.c.variant, value)).all()
    by_question: dict[str, AnswerCounts] = {r.question: r for r in requests}
    out: dict[AnswerCounts, dict[str, dict[int, int]]] = {r: {} for r in requests}
    for task, variant, answer, n in rows:
        if answer is not None:
            out[by_question[task]].setdefault(str(variant), {})[int(answer)] = int(n)
    return out


def texts(conn: sa.Connection, experiment_id: int, question: str) -> dict[str, list[str]]:
    """Per variant: each visitor's first free-text answer to ``question``, oldest first."""
    e = EVENTS.c
    ranked, first, joined = _first_answers(experiment_id, e.questionnaire == "text", e.task == question)
    out: dict[str, list[str]] = {}
    for variant, answers in conn.execute(sa.select(first.c.variant, ranked.c.answers).select_from(joined)
                                         .where(ranked.c.rn == 1).order_by(ranked.c.ts, ranked.c.id)):
        if answers:
            out.setdefault(str(variant), []).append(str(answers[0]))
    return out


def answer(conn: sa.Connection, experiment_id: int, families: dict[type, list[Any]]) -> dict[Any, dict[Any, Any]]:
    """Every survey request of one report, as ``{request: {None: per-variant answer}}``."""
    out: dict[Any, dict[Any, Any]] = {}
    for request in families.get(SurveyReach, []):
        out[request] = {None: reach(conn, experiment_id)}
    if AnswerCounts in families:
        out.update({r: {None: v} for r, v in answer_counts(conn, experiment_id, families[AnswerCounts]).items()})
    for request in families.get(Texts, []):
        if request.task is not None:
            out[request] = {None: texts(conn, experiment_id, request.task)}
    return out
