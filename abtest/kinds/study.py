"""The usability-study kind: designs (the core's variants), tasks and questionnaires, run by the
participant runner (``/s/<key>``) and analysed with small-sample methods. Never reachable with a
public key: participants are assigned when they join, never by the snippet."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlmodel import Session

from abtest.aggregates.base import AggregateSource, Request
from abtest.assignment import Assignment, bucket, choose_variant
from abtest.checks import KEY_PATTERN, NAME_PATTERN, VARIANT_PATTERN
from abtest.definitions import Core
from abtest.kinds.base import Kind
from abtest.models import Experiment
from abtest.report import Report
from abtest.studies import analysis, store
from abtest.studies.definition import END_OF_SESSION, StudyDef, check_launched, parse_study


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DesignDocument(_Shape):
    key: str = PField(pattern=VARIANT_PATTERN.pattern, max_length=64)
    url: str | None = PField(default=None, description="usability study: http(s):// URL or a path starting with /")
    tree: str | dict[str, Any] | None = PField(
        default=None, description="tree test: the menu as indented labels (2 spaces per level) or nested objects")
    name: str = ""
    weight: float | None = PField(default=None, gt=0, le=1, description="all or none; none: an equal split")


class TaskDocument(_Shape):
    key: str = PField(pattern=NAME_PATTERN.pattern)
    prompt: str
    start_url: str | None = None
    success: Literal["self-report"] | None = None
    success_url: str | None = PField(default=None, description="glob on the full URL that ends the task as a success")
    time_limit: int | None = PField(default=None, ge=1, le=4 * 3600, description="seconds")
    correct: list[str] | dict[str, list[str]] | None = PField(
        default=None, description="tree test: node paths (\"Help > Returns\"), per design key with two trees")
    screens: dict[str, ScreenDocument] | None = PField(
        default=None, description="first-click test: per design key, the uploaded image and its targets")


class ScreenDocument(_Shape):
    image: str = PField(description="the name POST /api/v1/images answered")
    targets: list[list[float]] = PField(min_length=1, max_length=10, description="[x, y, width, height] in image px")
    width: int | None = PField(default=None, description="filled in from the stored image")
    height: int | None = None


class StudyDocument(_Shape):
    """A usability study (DESIGN §4.2, last paragraph)."""

    kind: Literal["study"]
    key: str = PField(pattern=KEY_PATTERN.pattern)
    name: str = ""
    hypothesis: str = ""
    status: Literal["draft", "running", "stopped", "archived"] = "draft"
    method: Literal["usability", "tree-test", "first-click"] = "usability"
    seq: bool | None = PField(default=None, description="ask the SEQ after each task (default: usability studies only)")
    within_subjects: bool = False
    designs: list[DesignDocument] = PField(min_length=1, max_length=10)
    tasks: list[TaskDocument] = PField(min_length=1, max_length=30)
    questionnaires: list[Literal[END_OF_SESSION]] = PField(default_factory=list)  # type: ignore[valid-type]
    comment: bool = False
    completion_code: str | None = None
    consent: str = ""


class StudyKind(Kind):
    name = "study"
    noun = "usability study"
    variants_field = "designs"
    snippet = False
    schema = StudyDocument

    def parse(self, raw: Mapping[str, Any], source: str | None = None) -> StudyDef:
        return parse_study(raw, source)

    def check_update(self, old: StudyDef, new: StudyDef) -> None:
        """The core's rules (lifecycle, frozen designs and weights) and, once launched, the
        study's own: its steps and how success is judged stay as participants found them."""
        super().check_update(old, new)
        if old.status != "draft":
            check_launched(old, new)

    def store(self, session: Session, row: Experiment, definition: StudyDef) -> None:
        store.store(session, row, definition)

    def load(self, session: Session, row: Experiment, core: Core) -> StudyDef:
        return store.load(session, row, core)

    def requests(self, definition: StudyDef) -> list[Request]:
        return analysis.requests(definition)

    def analyze(self, definition: StudyDef, source: AggregateSource, now: datetime, by: str | None = None) -> Report:
        return analysis.analyze(definition, source, now, by)

    def assign(self, definition: StudyDef, unit: str, attributes: Mapping[str, object] | None = None,
               overrides: Mapping[str, str] | None = None) -> Assignment:
        """Between subjects: the design a participant with this id would get when joining (the
        experiments' hash). Within subjects every participant sees every design. A study that is
        not running takes nobody, as the participant link says."""
        if definition.status != "running":
            return Assignment(definition.key, None, False, "not_running", note=definition.status)
        if definition.within_subjects:
            return Assignment(definition.key, None, False, "within_subjects",
                              note="every participant sees every design, in a Latin-square order by arrival")
        position = bucket(definition.seed, unit)
        index = choose_variant(position, definition.weights)
        return Assignment(definition.key, definition.variant_keys[index or 0], True, "assigned", position)
