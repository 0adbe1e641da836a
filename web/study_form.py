"""Designer pages for usability studies: the study form (new, edit, validation as you type).

The same translation as the experiment form (:mod:`web.experiments`): the inputs become the raw
table a study TOML file gives, the study kind's parser validates it exactly as
``abtest sync`` does, the stored study's own rules (:func:`abtest.pipeline.check_update`: frozen
designs, tasks and questionnaires once launched) or the key rule run read-only, and every error's
field is mapped back to the input it belongs to. Launching, stopping and the TOML download are
the experiments' routes, which know studies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, render_template
from htmx_flask import request
from sqlmodel import Session

from abtest import pipeline
from abtest.errors import Conflict
from abtest.studies.definition import END_OF_SESSION, StudyDef, parse_study
from abtest.studies.runner import get_study
from web.extensions import get_engine
from web.auth import login_required
from web.form_rows import (
    Checked,
    FieldError,
    RowSection,
    blank_row,
    change_rows,
    is_blank,
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

study_form = Blueprint("study_form", __name__, url_prefix="/studies")

DESIGN_INPUTS = ("key", "name", "url", "weight")
TASK_INPUTS = ("key", "prompt", "start_url", "success", "success_url", "time_limit")
SECTIONS = ("designs", "tasks")
SUCCESS_CHOICES = {"self-report": "The participant says whether they managed",
                   "url": "Reaching a URL (detected by abtest-study.js)"}
TOP_LABELS = {"key": "Key", "name": "Name", "hypothesis": "Hypothesis", "within_subjects": "Design mode",
              "questionnaires": "Questionnaires", "comment": "Open comment", "completion_code": "Completion code",
              "consent": "Consent text", "status": "Status", "kind": "Kind"}


study_form.after_request(vary_on_htmx)


@dataclass
class StudyForm:
    """What the designer typed, kept verbatim so an invalid form comes back exactly as sent."""

    key: str = ""
    name: str = ""
    hypothesis: str = ""
    within_subjects: bool = False
    designs: list[dict[str, str]] = field(default_factory=list)
    tasks: list[dict[str, str]] = field(default_factory=list)
    questionnaires: list[str] = field(default_factory=list)
    comment: bool = False
    completion_code: str = ""
    consent: str = ""

    @classmethod
    def blank(cls) -> StudyForm:
        """A new study: two empty designs (a comparison needs both), one self-reported task, SUS."""
        return cls(designs=[blank_row(DESIGN_INPUTS), blank_row(DESIGN_INPUTS)],
                   tasks=[blank_row(TASK_INPUTS, success="self-report")], questionnaires=["SUS"])

    @classmethod
    def from_definition(cls, d: StudyDef) -> StudyForm:
        return cls(
            key=d.key, name=d.name, hypothesis=d.hypothesis, within_subjects=d.within_subjects,
            designs=[{"key": v.key, "name": v.name, "url": d.url_of(v.key), "weight": shown(v.weight)}
                     for v in d.variants],
            tasks=[{"key": t.key, "prompt": t.prompt, "start_url": t.start_url or "", "success": t.success,
                    "success_url": t.success_url or "", "time_limit": shown(t.time_limit)} for t in d.tasks],
            questionnaires=list(d.questionnaires), comment=d.comment, completion_code=d.completion_code or "",
            consent=d.consent,
        )

    @classmethod
    def from_request(cls, form: Any) -> StudyForm:
        def text(name: str) -> str:
            return str(form.get(name, ""))

        return cls(
            key=text("key").strip(), name=text("name"), hypothesis=text("hypothesis"),
            within_subjects=form.get("within_subjects") is not None,
            designs=read_rows(form, "designs", DESIGN_INPUTS), tasks=read_rows(form, "tasks", TASK_INPUTS),
            questionnaires=[str(q) for q in form.getlist("questionnaires")],
            comment=form.get("comment") is not None, completion_code=text("completion_code"),
            consent=text("consent"),
        )

    def sections(self) -> dict[str, RowSection]:
        return {"designs": RowSection(self.designs, DESIGN_INPUTS, "Design"),
                "tasks": RowSection(self.tasks, TASK_INPUTS, "Task", {"success": "self-report"})}

    def apply(self, action: str) -> str | None:
        """Add or remove a design or task row; returns the id to focus next."""
        changed = change_rows(action, self.sections())
        return changed[3] if changed else None

    def to_raw(self, stored: StudyDef | None) -> tuple[dict[str, Any], dict[str, RowSection]]:
        """The raw study table (what a TOML file would hold) and where its list positions came from.

        Empty inputs are left out, so the parser's own "is required" names them; on edit the key
        and status come from the stored study (status changes go through launch/stop).
        """
        raw: dict[str, Any] = {"kind": "study"}
        if stored or self.key:
            raw["key"] = stored.key if stored else self.key
        if stored:
            raw["status"] = stored.status
        for name in ("name", "hypothesis", "completion_code", "consent"):
            if getattr(self, name).strip():
                raw[name] = getattr(self, name).strip()
        raw["within_subjects"] = self.within_subjects
        raw["comment"] = self.comment
        raw["questionnaires"] = list(self.questionnaires)
        sections = self.sections()

        raw["designs"] = []
        for i, row in enumerate(self.designs):
            if is_blank(row, DESIGN_INPUTS):
                continue
            sections["designs"].order.append(i)
            design: dict[str, Any] = {"key": row["key"].strip()}
            for name in ("name", "url"):
                if row[name].strip():
                    design[name] = row[name].strip()
            if row["weight"].strip():
                design["weight"] = typed_number(row["weight"])
            raw["designs"].append(design)

        raw["tasks"] = []
        for i, row in enumerate(self.tasks):
            if is_blank(row, ("key", "prompt", "start_url", "success_url", "time_limit")):
                continue
            sections["tasks"].order.append(i)
            task: dict[str, Any] = {"key": row["key"].strip()}
            for name in ("prompt", "start_url"):
                if row[name].strip():
                    task[name] = row[name].strip()
            if row["success"] == "url":
                task["success_url"] = row["success_url"].strip()
            else:  # self-report (or whatever was sent, which the parser then names)
                task["success"] = row["success"] or "self-report"
                if row["success_url"].strip():
                    task["success_url"] = row["success_url"].strip()
            if row["time_limit"].strip():
                task["time_limit"] = typed_integer(row["time_limit"])
            raw["tasks"].append(task)
        return raw, sections


def locate(field_name: str | None, sections: Mapping[str, RowSection]) -> tuple[str | None, str, str]:
    """(error slot, label, summary link target) of a study field, e.g. ``tasks[1].time_limit`` →
    the second task row's time-limit input; a slot of None means the summary only."""
    name = field_name or ""
    in_row = locate_row(name, sections)
    if in_row is not None:
        return in_row[0], in_row[1], in_row[0]
    if name in SECTIONS:
        return name, name.capitalize(), f"{name}-fieldset"
    if name.startswith("questionnaires"):
        return "questionnaires", TOP_LABELS["questionnaires"], "questionnaires-fieldset"
    if name in TOP_LABELS and name not in ("status", "kind"):
        return name, TOP_LABELS[name], name
    return None, TOP_LABELS.get(name, name or "Study"), "definition-form"


def _placed(field_name: str | None, sections: Mapping[str, RowSection], message: str) -> FieldError:
    slot, label, anchor = locate(field_name, sections)
    return FieldError(slot, label, message, anchor)


def check(form: StudyForm, stored: StudyDef | None) -> Checked:
    """Validate as ``abtest sync`` does, then the rules storing would apply (read-only)."""
    raw, sections = form.to_raw(stored)
    definition, problems, conflict = judge(raw, parse_study, stored, pipeline.check_update)
    return Checked(definition, [_placed(p.field, sections, p.message) for p in problems], conflict)


def _stored(key: str) -> StudyDef:
    """The stored study (NotFound, a 404 page, for unknown keys and for plain experiments)."""
    with Session(get_engine()) as session:
        return get_study(session, key)[1]


def _render(form: StudyForm, stored: StudyDef | None, checked: Checked | None = None, *, status: int = 200,
            focus: str | None = None, fragment: bool = False, oob: bool = False,
            section: str | None = None) -> tuple[str, int]:
    context = {
        "form": form, "stored": stored, "errors": checked.by_slot if checked else {},
        "problems": checked.errors if checked else [], "submitted": checked is not None and not oob,
        "frozen": stored is not None and stored.status != "draft", "focus": focus, "oob": oob,
        "questionnaire_names": END_OF_SESSION, "success_choices": SUCCESS_CHOICES,
        "section_endpoint": "study_form.form_section",
    }
    if section:
        return render_template(f"studies/_{section}.html", **context), status
    return render_template("studies/_form.html" if fragment else "studies/form.html", **context), status


def _form_page(stored: StudyDef | None):  # type: ignore[no-untyped-def]
    """GET shows the form; POST saves, or re-renders after a no-JS add/remove button."""
    if request.method == "GET":
        return _render(StudyForm.from_definition(stored) if stored else StudyForm.blank(), stored)
    form = StudyForm.from_request(request.form)
    action = request.form.get("action", "save")
    if action != "save":
        return _render(form, stored, focus=form.apply(action), fragment=wants_fragment())
    checked = check(form, stored)
    definition = checked.definition
    if not isinstance(definition, StudyDef):
        return _render(form, stored, checked, status=409 if checked.conflict else 422, fragment=wants_fragment())

    def refused(exc: Conflict):  # type: ignore[no-untyped-def]
        failed = Checked(None, [_placed(exc.field, form.to_raw(stored)[1], exc.message)], conflict=True)
        return _render(form, stored, failed, status=409, fragment=wants_fragment())

    return save(definition, stored, f"Created the study “{definition.name}” as a draft. Launch it to open the "
                                    "participant link.", refused)


@study_form.route("/new", methods=["GET", "POST"])
@login_required
def new():  # type: ignore[no-untyped-def]
    return _form_page(None)


@study_form.route("/<key>/edit", methods=["GET", "POST"])
@login_required
def edit(key: str):  # type: ignore[no-untyped-def]
    return _form_page(_stored(key))


def _editing() -> StudyDef | None:
    key = request.form.get("editing")
    return _stored(key) if key else None


@study_form.post("/validate")
@login_required
def validate():  # type: ignore[no-untyped-def]
    """Errors as you type: every error slot, swapped out of band (200 either way: htmx swaps 2xx)."""
    stored = _editing()
    form = StudyForm.from_request(request.form)
    checked = check(form, stored)
    return _render(form, stored, checked, fragment=wants_fragment(), oob=wants_fragment())


@study_form.post("/form/<section>")
@login_required
def form_section(section: str):  # type: ignore[no-untyped-def]
    """htmx: apply one row button (add/remove a design or task) to its fieldset."""
    if section not in SECTIONS:
        abort(404)
    stored = _editing()
    form = StudyForm.from_request(request.form)
    focus = form.apply(request.form.get("action", ""))
    return _render(form, stored, focus=focus, section=section if wants_fragment() else None)
