"""What only studies store: the ``studies`` row (design mode, questionnaires, URLs, consent) and
the ``study_tasks`` rows, beside the registry's core row and designs (see :mod:`abtest.kinds`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from abtest.definitions import Core
from abtest.models import Event, Experiment, Study, StudyTask
from abtest.studies.definition import StudyDef, TaskDef, url_table

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
    session.add(settings)
    session.exec(delete(StudyTask).where(col(StudyTask.experiment_id) == row.id))  # type: ignore[call-overload]
    session.add_all(StudyTask(experiment_id=row.id, position=i, key=t.key, prompt=t.prompt, start_url=t.start_url,
                              success_url=t.success_url, time_limit=t.time_limit)
                    for i, t in enumerate(definition.tasks))
    session.flush()


def load(session: Session, row: Experiment, core: Core) -> StudyDef:
    settings = session.exec(select(Study).where(Study.experiment_id == row.id)).first() or Study(experiment_id=0)
    tasks = session.exec(select(StudyTask).where(StudyTask.experiment_id == row.id)
                         .order_by(col(StudyTask.position))).all()
    return StudyDef(
        core=core, within_subjects=settings.within_subjects,
        tasks=tuple(TaskDef(t.key, t.prompt, t.start_url, t.success_url, t.time_limit) for t in tasks),
        questionnaires=tuple(settings.questionnaires or ()), comment=settings.comment,
        completion_code=settings.completion_code, consent=settings.consent,
        design_urls=url_table(settings.design_urls or {}, core.variants),
    )


CSV_COLUMNS = ("participant", "design", "type", "task", "success", "duration_ms", "questionnaire", "answers", "ts")


def export_rows(conn: sa.Connection, experiment_id: int, tasks: Sequence[str]) -> list[tuple[Any, ...]]:
    """Every task and response event of a study, oldest first per participant (the CSV export).

    Only the study's own tasks: the snippet on a tested page also times its page loads (task
    ``page-load``, under the visitor's random id), which is not a study answer."""
    e = EVENTS.c
    return [tuple(r) for r in conn.execute(
        sa.select(e.unit, e.variant, e.type, e.task, e.success, e.duration_ms, e.questionnaire, e.answers, e.ts)
        .where(e.experiment_id == experiment_id,
               sa.or_(e.type == "response", sa.and_(e.type == "task", e.task.in_(list(tasks)))))
        .order_by(e.unit, e.ts, e.id)).all()]
