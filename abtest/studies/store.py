"""What only studies store: the ``studies`` row (design mode, questionnaires, URLs, consent) and
the ``study_tasks`` rows, beside the registry's core row and designs (see :mod:`abtest.kinds`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from abtest.definitions import Core
from abtest.models import Event, Experiment, Study, StudyTask
from abtest.store.target import clickhouse_of
from abtest.studies.definition import StudyDef, TaskDef, url_table
from abtest.studies.ia import screen_from_dict, tree_from_rows

EVENTS = Event.__table__  # type: ignore[attr-defined]


def store(session: Session, row: Experiment, definition: StudyDef) -> None:
    """Write the study's settings and tasks in the caller's transaction (replacing the old ones)."""
    assert row.id is not None
    settings = session.exec(select(Study).where(Study.experiment_id == row.id)).first() or Study(experiment_id=row.id)
    settings.within_subjects = definition.within_subjects
    settings.questionnaires = list(definition.questionnaires)
    settings.comment = definition.comment
    settings.completion_code = definition.completion_code
    settings.consent = definition.consent
    settings.design_urls = dict(definition.design_urls)
    settings.method = definition.method
    settings.seq = definition.seq
    settings.trees = {d: tree.to_rows() for d, tree in definition.trees} or None
    session.add(settings)
    session.exec(delete(StudyTask).where(col(StudyTask.experiment_id) == row.id))  # type: ignore[call-overload]
    session.add_all(StudyTask(experiment_id=row.id, position=i, key=t.key, prompt=t.prompt, start_url=t.start_url,
                              success_url=t.success_url, time_limit=t.time_limit,
                              correct={d: list(nodes) for d, nodes in t.correct} or None,
                              screens={d: screen.to_dict() for d, screen in t.screens} or None)
                    for i, t in enumerate(definition.tasks))
    session.flush()


def load(session: Session, row: Experiment, core: Core) -> StudyDef:
    settings = session.exec(select(Study).where(Study.experiment_id == row.id)).first() or Study(experiment_id=0)
    tasks = session.exec(select(StudyTask).where(StudyTask.experiment_id == row.id)
                         .order_by(col(StudyTask.position))).all()
    return StudyDef(
        core=core, within_subjects=settings.within_subjects,
        tasks=tuple(TaskDef(t.key, t.prompt, t.start_url, t.success_url, t.time_limit,
                            tuple((d, tuple(nodes)) for d, nodes in (t.correct or {}).items()),
                            tuple((d, screen_from_dict(v)) for d, v in (t.screens or {}).items()))
                    for t in tasks),
        questionnaires=tuple(settings.questionnaires or ()), comment=settings.comment,
        completion_code=settings.completion_code, consent=settings.consent,
        design_urls=url_table(settings.design_urls or {}, core.variants), method=settings.method or "usability",
        seq=settings.seq, trees=tuple((d.key, tree_from_rows(settings.trees[d.key]))
                                      for d in core.variants if settings.trees and d.key in settings.trees),
    )


CSV_COLUMNS = ("participant", "design", "type", "task", "success", "duration_ms", "questionnaire", "answers", "ts")


def export_rows(conn: sa.Connection, experiment_id: int, tasks: Sequence[str]) -> list[tuple[Any, ...]]:
    """Every task and response event of a study, oldest first per participant (the CSV export).

    Only the study's own tasks: the snippet on a tested page also times its page loads (task
    ``page-load``, under the visitor's random id), which is not a study answer."""
    clickhouse = clickhouse_of(conn.engine)
    if clickhouse is not None:  # ABTEST_EVENTS_URL: the events live in ClickHouse
        from abtest.clickhouse import study_queries
        from abtest.clickhouse.schema import table

        return [(unit, variant, type_, task, None if success is None else bool(success), duration, questionnaire,
                 None if answers is None else json.loads(answers), ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts)
                for unit, variant, type_, task, success, duration, questionnaire, answers, ts in clickhouse.query(
                    study_queries.export(table(clickhouse)), {"e": experiment_id, "tasks": list(tasks)})]
    e = EVENTS.c
    return [tuple(r) for r in conn.execute(
        sa.select(e.unit, e.variant, e.type, e.task, e.success, e.duration_ms, e.questionnaire, e.answers, e.ts)
        .where(e.experiment_id == experiment_id,
               sa.or_(e.type == "response", sa.and_(e.type == "task", e.task.in_(list(tasks)))))
        .order_by(e.unit, e.ts, e.id)).all()]
