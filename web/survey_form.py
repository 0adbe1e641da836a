"""Designer pages for surveys: the survey form (new, edit, validation as you type).

The translation every form here makes (:mod:`web.study_form`): the inputs become the raw table a
``kind = "survey"`` TOML file gives, the survey kind's parser validates it as ``abtest sync``
does, the stored survey's rules (:func:`abtest.pipeline.check_update`: a launched survey keeps
its link and questions) run read-only, and every error's field is mapped back to its input.
Launching, stopping and the TOML download are the experiments' routes, which know every kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, render_template
from htmx_flask import request
from sqlmodel import Session

from abtest import pipeline
from abtest.errors import Conflict, NotFound
from abtest.surveys.definition import MAX_QUESTIONS, QUESTION_TYPES, SHOW, SurveyDef, parse_survey
from web.auth import login_required
from web.extensions import get_engine
from web.form_rows import (
    Checked,
    FieldError,
    RowSection,
    judge,
    locate_row,
    read_rows,
    save,
    shown,
    typed_integer,
    typed_number,
    vary_on_htmx,
    wants_fragment,
)

survey_form = Blueprint("survey_form", __name__, url_prefix="/surveys")
survey_form.after_request(vary_on_htmx)

QUESTION_INPUTS = ("key", "type", "text", "choices")
TOP_LABELS = {"key": "Key", "name": "Name", "hypothesis": "Purpose", "experiment": "Linked experiment",
              "pages": "Pages", "show": "When", "delay": "Delay", "event": "Event", "share": "Share asked",
              "title": "Prompt heading", "questions": "Questions", "status": "Status", "kind": "Kind"}
SHOW_LABELS = {"delay": "After a delay on the page", "exit-intent": "When the pointer leaves the page (desktop)",
               "event": "After an event the page tracks (abtest.track)"}


@dataclass
class SurveyForm:
    """What the designer typed, kept verbatim so an invalid form comes back exactly as sent."""

    key: str = ""
    name: str = ""
    hypothesis: str = ""
    experiment: str = ""
    pages: str = "*"
    show: str = "delay"
    delay: str = "5"
    event: str = ""
    share: str = "1"
    title: str = "Quick question"
    questions: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def blank(cls) -> SurveyForm:
        return cls(questions=_padded([{"key": "csat", "type": "CSAT", "text": "", "choices": ""}]))

    @classmethod
    def from_definition(cls, d: SurveyDef) -> SurveyForm:
        return cls(key=d.key, name=d.name, hypothesis=d.hypothesis, experiment=d.experiment or "",
                   pages="\n".join(d.pages), show=d.show, delay=shown(d.delay), event=d.event or "",
                   share=shown(d.share), title=d.title,
                   questions=_padded([{"key": q.key, "type": q.type, "text": q.text, "choices": "\n".join(q.choices)}
                                      for q in d.questions]))

    @classmethod
    def from_request(cls, form: Any) -> SurveyForm:
        def text(name: str, default: str = "") -> str:
            return str(form.get(name, default))

        return cls(key=text("key").strip(), name=text("name"), hypothesis=text("hypothesis"),
                   experiment=text("experiment").strip(), pages=text("pages"), show=text("show", "delay"),
                   delay=text("delay"), event=text("event"), share=text("share"), title=text("title"),
                   questions=_padded(read_rows(form, "questions", QUESTION_INPUTS)))

    def sections(self) -> dict[str, RowSection]:
        return {"questions": RowSection(self.questions, QUESTION_INPUTS, "Question")}

    def to_raw(self, stored: SurveyDef | None) -> tuple[dict[str, Any], dict[str, RowSection]]:
        """The raw survey table; a question row with no type is not asked. On edit the key and
        status come from the stored survey (status changes go through launch/stop)."""
        raw: dict[str, Any] = {"kind": "survey"}
        if stored or self.key:
            raw["key"] = stored.key if stored else self.key
        if stored:
            raw["status"] = stored.status
        for name in ("name", "hypothesis", "experiment", "title", "event"):
            if getattr(self, name).strip():
                raw[name] = getattr(self, name).strip()
        raw["pages"] = [line.strip() for line in self.pages.splitlines() if line.strip()]
        raw["show"] = self.show
        for name, typed in (("delay", typed_integer), ("share", typed_number)):
            if getattr(self, name).strip():
                raw[name] = typed(getattr(self, name))
        sections = self.sections()
        raw["questions"] = []
        for i, row in enumerate(self.questions):
            if not row["type"]:
                continue
            sections["questions"].order.append(i)
            question: dict[str, Any] = {"type": row["type"]}
            if row["key"].strip():  # left out when empty, so the parser says it is required
                question["key"] = row["key"].strip()
            if row["text"].strip():
                question["text"] = row["text"].strip()
            if row["type"] == "choice":
                question["choices"] = [c.strip() for c in row["choices"].splitlines() if c.strip()]
            raw["questions"].append(question)
        return raw, sections


def _padded(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Always the most questions a survey may ask, the unused ones blank (type: not asked)."""
    blank = {name: "" for name in QUESTION_INPUTS}
    return [*rows, *(dict(blank) for _ in range(MAX_QUESTIONS - len(rows)))][:MAX_QUESTIONS]


def _placed(field_name: str | None, sections: dict[str, RowSection], message: str) -> FieldError:
    """The input an error belongs to: ``questions[1].choices[0]`` is the second question's choices."""
    name = re.sub(r"(\.\w+)\[\d+\]$", r"\1", field_name or "")
    in_row = locate_row(name, sections)
    if in_row is not None:
        return FieldError(in_row[0], in_row[1], message)
    top = name.split("[")[0]
    if top in TOP_LABELS and top not in ("status", "kind"):
        return FieldError(top, TOP_LABELS[top], message)
    return FieldError(None, TOP_LABELS.get(top, name or "Survey"), message, "definition-form")


def check(form: SurveyForm, stored: SurveyDef | None) -> Checked:
    """Validate as ``abtest sync`` does, then the rules storing would apply (read-only)."""
    raw, sections = form.to_raw(stored)
    definition, problems, conflict = judge(raw, parse_survey, stored, pipeline.check_update)
    return Checked(definition, [_placed(p.field, sections, p.message) for p in problems], conflict)


def _experiments() -> list[tuple[str, str]]:
    """(key, name) of the A/B experiments a survey may be linked to."""
    with Session(get_engine()) as session:
        return [(d.key, d.name) for _row, d in pipeline.list_all(session, kinds=["experiment"])
                if d.status != "archived"]


def _stored(key: str) -> SurveyDef:
    with Session(get_engine()) as session:
        _row, definition = pipeline.load(session, key)
    if not isinstance(definition, SurveyDef):
        raise NotFound(f"no survey with key {key!r}", field="key")
    return definition


def _render(form: SurveyForm, stored: SurveyDef | None, checked: Checked | None = None, *, status: int = 200,
            fragment: bool = False, oob: bool = False) -> tuple[str, int]:
    context = {"form": form, "stored": stored, "errors": checked.by_slot if checked else {},
               "problems": checked.errors if checked else [], "submitted": checked is not None and not oob,
               "frozen": stored is not None and stored.status != "draft", "focus": None, "oob": oob,
               "question_types": QUESTION_TYPES, "show_labels": {s: SHOW_LABELS[s] for s in SHOW},
               "experiments": _experiments()}
    return render_template("surveys/_form.html" if fragment else "surveys/form.html", **context), status


def _form_page(stored: SurveyDef | None):  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return _render(SurveyForm.from_definition(stored) if stored else SurveyForm.blank(), stored)
    form = SurveyForm.from_request(request.form)
    checked = check(form, stored)
    definition = checked.definition
    if not isinstance(definition, SurveyDef):
        return _render(form, stored, checked, status=409 if checked.conflict else 422, fragment=wants_fragment())

    def refused(exc: Conflict):  # type: ignore[no-untyped-def]
        failed = Checked(None, [_placed(exc.field, form.to_raw(stored)[1], exc.message)], conflict=True)
        return _render(form, stored, failed, status=409, fragment=wants_fragment())

    return save(definition, stored, f"Created the survey “{definition.name}” as a draft. Launch it to start "
                                    "asking visitors.", refused)


@survey_form.route("/new", methods=["GET", "POST"])
@login_required
def new():  # type: ignore[no-untyped-def]
    return _form_page(None)


@survey_form.route("/<key>/edit", methods=["GET", "POST"])
@login_required
def edit(key: str):  # type: ignore[no-untyped-def]
    return _form_page(_stored(key))


@survey_form.post("/validate")
@login_required
def validate():  # type: ignore[no-untyped-def]
    """Errors as you type: every error slot, swapped out of band (200 either way: htmx swaps 2xx)."""
    key = request.form.get("editing")
    stored = _stored(key) if key else None
    form = SurveyForm.from_request(request.form)
    return _render(form, stored, check(form, stored), fragment=wants_fragment(), oob=wants_fragment())
