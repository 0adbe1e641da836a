"""What only surveys store: the ``surveys`` row beside the registry's core row (see
:mod:`abtest.kinds`), and, when loading one, the variants of the experiment it is linked to."""

from __future__ import annotations

from sqlmodel import Session, col, select

from abtest.definitions import Core
from abtest.errors import Conflict
from abtest.models import Experiment, Survey, Variant
from abtest.surveys.definition import SurveyDef, questions_of


def store(session: Session, row: Experiment, definition: SurveyDef) -> None:
    """Write the survey's settings in the caller's transaction; the linked experiment must exist."""
    assert row.id is not None
    if definition.experiment is not None:
        linked = session.exec(select(Experiment).where(Experiment.key == definition.experiment)).first()
        if linked is None or linked.kind != "experiment":
            raise Conflict(f"there is no A/B experiment with key {definition.experiment!r} to link this survey to",
                           field="experiment")
    settings = session.exec(select(Survey).where(Survey.experiment_id == row.id)).first() or Survey(experiment_id=row.id)
    settings.linked_key = definition.experiment
    settings.pages = list(definition.pages)
    settings.show = definition.show
    settings.delay = definition.delay
    settings.event = definition.event
    settings.share = definition.share
    settings.title = definition.title
    settings.questions = [q.to_dict() for q in definition.questions]
    session.add(settings)
    session.flush()


def load(session: Session, row: Experiment, core: Core) -> SurveyDef:
    settings = session.exec(select(Survey).where(Survey.experiment_id == row.id)).first() or Survey(experiment_id=0)
    linked: tuple[str, ...] = ()
    if settings.linked_key:
        linked = tuple(session.exec(
            select(Variant.key).join(Experiment, col(Experiment.id) == col(Variant.experiment_id))
            .where(Experiment.key == settings.linked_key).order_by(col(Variant.position))).all())
    return SurveyDef(
        core=core, questions=tuple(questions_of(settings.questions or []).values()),
        pages=tuple(settings.pages or ("*",)), show=settings.show, delay=settings.delay, event=settings.event,
        share=settings.share, title=settings.title, experiment=settings.linked_key, linked_variants=linked)


def linked_to(session: Session, experiment_key: str) -> list[str]:
    """The keys of the surveys linked to an experiment, oldest first."""
    return list(session.exec(
        select(Experiment.key).join(Survey, col(Survey.experiment_id) == col(Experiment.id))
        .where(Survey.linked_key == experiment_key).order_by(col(Experiment.id))).all())
