"""The survey kind: one to three questions shown by the snippet (abtest-survey.js) to a share of
visitors on the pages it names, optionally linked to an A/B experiment whose variants its answers
carry. Reachable with a public key: the config lists running surveys, events record answers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlmodel import Session

from abtest.aggregates.base import AggregateSource, Request
from abtest.assignment import Assignment, bucket
from abtest.checks import KEY_PATTERN, NAME_PATTERN
from abtest.config import Settings
from abtest.definitions import Core
from abtest.kinds.base import Kind
from abtest.models import Experiment
from abtest.questionnaires import QUESTIONNAIRES
from abtest.report import Report
from abtest.surveys import analysis, store
from abtest.surveys.definition import ALL, MAX_DELAY, MAX_QUESTIONS, SurveyDef, check_launched, parse_survey


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuestionDocument(_Shape):
    key: str = PField(pattern=NAME_PATTERN.pattern)
    type: Literal["CSAT", "NPS", "CES", "choice", "text"]
    text: str | None = PField(default=None, max_length=300, description="the wording; CSAT, NPS, CES have a default")
    choices: list[str] | None = PField(default=None, min_length=2, max_length=10, description="choice questions only")


class SurveyDocument(_Shape):
    """An in-product survey (issue 17)."""

    kind: Literal["survey"]
    key: str = PField(pattern=KEY_PATTERN.pattern)
    name: str = ""
    hypothesis: str = ""
    status: Literal["draft", "running", "stopped", "archived"] = "draft"
    experiment: str | None = PField(default=None, description="key of the A/B experiment whose variants answers carry")
    pages: list[str] = PField(default=["*"], description="globs: /path* (any host), https://host/path*, or *")
    show: Literal["delay", "exit-intent", "event"] = "delay"
    delay: int = PField(default=5, ge=0, le=MAX_DELAY, description="seconds (after the page, or after the event)")
    event: str | None = PField(default=None, description="show = event: the abtest.track() event, e.g. purchase")
    share: float = PField(default=1.0, gt=0, le=1, description="share of visitors asked")
    title: str = PField(default="Quick question", max_length=100)
    questions: list[QuestionDocument] = PField(min_length=1, max_length=MAX_QUESTIONS)


class SurveyKind(Kind):
    name = "survey"
    noun = "survey"
    variants_field = "variants"  # a survey has one, "all" (never written in its file)
    snippet = True
    schema = SurveyDocument
    config_section = "surveys"
    sync_order = 1  # after the experiments it may link to

    def parse(self, raw: Mapping[str, Any], source: str | None = None) -> SurveyDef:
        return parse_survey(raw, source)

    def check_update(self, old: SurveyDef, new: SurveyDef) -> None:
        super().check_update(old, new)
        if old.status != "draft":
            check_launched(old, new)

    def store(self, session: Session, row: Experiment, definition: SurveyDef) -> None:
        store.store(session, row, definition)

    def load(self, session: Session, row: Experiment, core: Core) -> SurveyDef:
        return store.load(session, row, core)

    def requests(self, definition: SurveyDef) -> list[Request]:
        return analysis.requests(definition)

    def analyze(self, definition: SurveyDef, source: AggregateSource, now: datetime, by: str | None = None) -> Report:
        return analysis.analyze(definition, source, now, by)

    def assign(self, definition: SurveyDef, unit: str, attributes: Mapping[str, object] | None = None,
               overrides: Mapping[str, str] | None = None) -> Assignment:
        """Whether ``unit`` is in the survey's sample (the snippet draws the same hash). A linked
        survey also needs the visitor in its experiment, which only the snippet knows."""
        if definition.status != "running":
            return Assignment(definition.key, None, False, "not_running", note=definition.status)
        position = bucket(definition.seed, unit)
        if position >= definition.share:
            return Assignment(definition.key, None, False, "coverage", position)
        return Assignment(definition.key, ALL, True, "assigned", position)

    def config_entry(self, d: SurveyDef, settings: Settings) -> dict[str, Any]:
        questions = []
        for q in d.questions:
            entry: dict[str, Any] = {"key": q.key, "type": q.type, "text": q.text}
            if q.type in QUESTIONNAIRES:
                scale = QUESTIONNAIRES[q.type].scale
                entry |= {"low": scale.low, "high": scale.high, "low_label": scale.low_label,
                          "high_label": scale.high_label}
            if q.choices:
                entry["choices"] = list(q.choices)
            questions.append(entry)
        return {"key": d.key, "seed": d.seed, "share": d.share, "match": d.match, "experiment": d.experiment,
                "show": d.show, "delay": d.delay, "event": d.event, "quiet_days": settings.survey_quiet_days,
                "title": d.title, "questions": questions}
