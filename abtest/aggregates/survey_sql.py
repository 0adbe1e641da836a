"""Survey aggregates, straight from the events: who was asked, who answered, and each visitor's
first answer to each question, counted per variant (each visitor once, however often the page
sent). Answers reach the events only after ingest checked them against the survey's questions
(:mod:`abtest.ingest`), so the numbers here are on the question's scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from abtest.aggregates.base import AnswerCounts, ReachCounts
from abtest.models import Event

EVENTS = Event.__table__  # type: ignore[attr-defined]


def reach(conn: sa.Connection, experiment_id: int) -> dict[str, ReachCounts]:
    """Per variant: visitors shown, answering, dismissing without an answer."""
    e = EVENTS.c

    def flag(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.max(sa.case((condition, 1), else_=0))

    answered = e.type == "response"
    dismissed = sa.and_(e.type == "survey", e.event == "dismissed")
    shown = sa.or_(answered, dismissed, sa.and_(e.type == "survey", e.event == "shown"))
    per_unit = (sa.select(e.variant, e.unit, flag(shown).label("shown"), flag(answered).label("answered"),
                          flag(dismissed).label("dismissed"))
                .where(e.experiment_id == experiment_id, e.forced == sa.false())
                .group_by(e.variant, e.unit).subquery())
    u = per_unit.c
    rows = conn.execute(sa.select(u.variant, sa.func.sum(u.shown), sa.func.sum(u.answered),
                                  sa.func.sum(sa.case((sa.and_(u.dismissed == 1, u.answered == 0), 1), else_=0)))
                        .group_by(u.variant)).all()
    return {str(v): ReachCounts(int(s or 0), int(a or 0), int(d or 0)) for v, s, a, d in rows if v is not None}


def answer_counts(conn: sa.Connection, experiment_id: int, requests: Sequence[AnswerCounts]
                  ) -> dict[AnswerCounts, dict[str, dict[int, int]]]:
    """Per question and variant: visitors by their first answer, in one query for every question."""
    e = EVENTS.c
    value = e.answers[0].as_float()
    first = (sa.select(e.task, e.variant, value.label("value"),
                       sa.func.row_number().over(partition_by=(e.task, e.variant, e.unit),
                                                 order_by=(e.ts, e.id)).label("rn"))
             .where(e.experiment_id == experiment_id, e.type == "response", e.forced == sa.false(),
                    e.task.in_([r.question for r in requests]), e.questionnaire != "text")
             .subquery())
    f = first.c
    rows = conn.execute(sa.select(f.task, f.variant, f.value, sa.func.count()).where(f.rn == 1)
                        .group_by(f.task, f.variant, f.value)).all()
    by_question: dict[str, AnswerCounts] = {r.question: r for r in requests}
    out: dict[AnswerCounts, dict[str, dict[int, int]]] = {r: {} for r in requests}
    for task, variant, answer, n in rows:
        if answer is not None and variant is not None:
            out[by_question[task]].setdefault(str(variant), {})[int(answer)] = int(n)
    return out


def texts(conn: sa.Connection, experiment_id: int, question: str) -> dict[str, list[str]]:
    """Per variant: each visitor's first free-text answer to ``question``, oldest first."""
    e = EVENTS.c
    first = (sa.select(e.variant, e.answers, e.ts, e.id,
                       sa.func.row_number().over(partition_by=(e.variant, e.unit), order_by=(e.ts, e.id)).label("rn"))
             .where(e.experiment_id == experiment_id, e.type == "response", e.forced == sa.false(),
                    e.questionnaire == "text", e.task == question).subquery())
    out: dict[str, list[str]] = {}
    for variant, answers in conn.execute(sa.select(first.c.variant, first.c.answers).where(first.c.rn == 1)
                                         .order_by(first.c.ts, first.c.id)):
        if answers and variant is not None:
            out.setdefault(str(variant), []).append(str(answers[0]))
    return out


def answer(conn: sa.Connection, experiment_id: int, families: dict[type, list[Any]]) -> dict[Any, dict[Any, Any]]:
    """Every survey request of one report, as ``{request: {None: per-variant answer}}``."""
    from abtest.aggregates.base import SurveyReach, Texts

    out: dict[Any, dict[Any, Any]] = {}
    for request in families.get(SurveyReach, []):
        out[request] = {None: reach(conn, experiment_id)}
    if AnswerCounts in families:
        out.update({r: {None: v} for r, v in answer_counts(conn, experiment_id, families[AnswerCounts]).items()})
    for request in families.get(Texts, []):
        if request.task is not None:
            out[request] = {None: texts(conn, experiment_id, request.task)}
    return out
