"""Designer pages for studies: the study form (new, edit, validation as you type) for usability
studies, tree tests and first-click tests.

The same translation as the experiment form (:mod:`web.experiments`): the inputs become the raw
table a study TOML file gives, the study kind's parser validates it exactly as
``abtest sync`` does, the stored study's own rules (:func:`abtest.pipeline.check_update`: frozen
designs, tasks and questionnaires once launched) or the key rule run read-only, and every error's
field is mapped back to the input it belongs to. Launching, stopping and the TOML download are
the experiments' routes, which know studies.

A tree test or first-click test compares at most two designs, so each task carries one answer
field (correct nodes; a screen and its targets) per design *row* of the form, for the first
:data:`DESIGN_SLOTS` rows: the fields keep their row when a design's key is retyped, and move
with it when a design above is removed. Screens are stored in the image store as soon as they
arrive (the form's POST without JavaScript, :func:`upload_image` with it); the form then carries
only the stored name, and the size always comes from the store, never from the browser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, jsonify, render_template
from htmx_flask import request
from sqlmodel import Session

from abtest import pipeline
from abtest.errors import Conflict, ValidationError
from abtest.studies.definition import END_OF_SESSION, StudyDef, parse_study
from abtest.studies.ia import METHODS
from abtest.studies.images import MAX_BYTES, ImageStore, ImageTooLarge, StoredImage
from abtest.studies.runner import get_study
from web.auth import current_user, login_required
from web.extensions import get_engine
from web.form_rows import (
    Checked,
    FieldError,
    RowSection,
    blank_row,
    change_rows,
    is_blank,
    judge,
    read_rows,
    save,
    shown,
    typed_integer,
    typed_number,
    vary_on_htmx,
    wants_fragment,
)
from web.study_form_fields import (
    DESIGN_SLOTS,
    TaskRows,
    node_paths,
    METHOD_CHOICES,
    SECTIONS,
    placed,
    read_upload,
    rectangles,
    shown_targets,
    slot_id,
    target_rows,
)
from web.study_images import image_store, image_url

study_form = Blueprint("study_form", __name__, url_prefix="/studies")

_PER_DESIGN = ("correct", "image", "targets")
DESIGN_INPUTS = ("key", "name", "url", "tree", "weight")
TASK_INPUTS = ("key", "prompt", "start_url", "success", "success_url", "time_limit",
               *(f"{name}_{j}" for name in _PER_DESIGN for j in range(DESIGN_SLOTS)))
SUCCESS_CHOICES = {"self-report": "The participant says whether they managed",
                   "url": "Reaching a URL (detected by abtest-study.js)"}
# What makes a row more than blank, per method (inputs of another method are kept but not read).
_DESIGN_READS = {"usability": ("key", "name", "url", "weight"), "tree-test": ("key", "name", "tree", "weight"),
                 "first-click": ("key", "name", "weight")}
_TASK_READS = {"usability": ("key", "prompt", "start_url", "success_url", "time_limit"),
               "tree-test": ("key", "prompt", "time_limit", *(f"correct_{j}" for j in range(DESIGN_SLOTS))),
               "first-click": ("key", "prompt", "time_limit",
                               *(f"{n}_{j}" for n in ("image", "targets") for j in range(DESIGN_SLOTS)))}
_UPLOAD = re.compile(r"tasks-(\d+)-file_(\d+)")
_TASK_ROW = re.compile(rf"tasks-(\d+)-({'|'.join(TASK_INPUTS)})")
# The app refuses bodies over 2 MB before any view runs (the CSRF check reads the form first). A
# screen may be 5 MB, so these routes get their own limit, set ahead of that check and only for a
# logged-in designer; without JavaScript one save carries several screens at once.
UPLOAD_LIMIT, SAVE_LIMIT = MAX_BYTES + 64 * 1024, 4 * MAX_BYTES + 1024 * 1024
_BODY_LIMITS = {"study_form.upload_image": UPLOAD_LIMIT, "study_form.new": SAVE_LIMIT, "study_form.edit": SAVE_LIMIT}


study_form.after_request(vary_on_htmx)


def _screen_body_limit() -> None:
    limit = _BODY_LIMITS.get(request.endpoint or "")
    if limit and request.method == "POST" and current_user() is not None:
        request.max_content_length = limit


@study_form.record_once
def _limit_before_csrf(state: Any) -> None:
    state.app.before_request_funcs.setdefault(None, []).insert(0, _screen_body_limit)


@dataclass
class StudyForm:
    """What the designer typed, kept verbatim so an invalid form comes back exactly as sent."""

    key: str = ""
    name: str = ""
    hypothesis: str = ""
    method: str = "usability"
    within_subjects: bool = False
    seq: bool = True
    designs: list[dict[str, str]] = field(default_factory=list)
    tasks: list[dict[str, str]] = field(default_factory=list)
    questionnaires: list[str] = field(default_factory=list)
    comment: bool = False
    completion_code: str = ""
    consent: str = ""
    upload_errors: dict[tuple[int, int], str] = field(default_factory=dict)  # (task row, design row) → message

    @classmethod
    def blank(cls) -> StudyForm:
        """A new study: two empty designs (a comparison needs both), one self-reported task, SUS."""
        return cls(designs=[blank_row(DESIGN_INPUTS), blank_row(DESIGN_INPUTS)],
                   tasks=[blank_row(TASK_INPUTS, success="self-report")], questionnaires=["SUS"])

    @classmethod
    def from_definition(cls, d: StudyDef) -> StudyForm:
        trees = dict(d.trees)
        designs = [{"key": v.key, "name": v.name, "url": d.url_of(v.key),
                    "tree": trees[v.key].to_text() if v.key in trees else "", "weight": shown(v.weight)}
                   for v in d.variants]
        tasks = []
        for t in d.tasks:
            row = {"key": t.key, "prompt": t.prompt, "start_url": t.start_url or "", "success": t.success,
                   "success_url": t.success_url or "", "time_limit": shown(t.time_limit)}
            correct = dict(t.correct)
            for j, v in enumerate(d.variants[:DESIGN_SLOTS]):
                tree, screen = trees.get(v.key), t.screen_for(v.key)
                row[f"correct_{j}"] = "\n".join(tree.path(n) for n in correct.get(v.key, ())) if tree else ""
                row[f"image_{j}"] = screen.image if screen else ""
                row[f"targets_{j}"] = "\n".join(shown_targets(r.to_list()) for r in screen.targets) if screen else ""
            tasks.append({name: row.get(name, "") for name in TASK_INPUTS})
        return cls(
            key=d.key, name=d.name, hypothesis=d.hypothesis, method=d.method, within_subjects=d.within_subjects,
            seq=d.seq, designs=designs, tasks=tasks, questionnaires=list(d.questionnaires), comment=d.comment,
            completion_code=d.completion_code or "", consent=d.consent,
        )

    @classmethod
    def from_request(cls, form: Any) -> StudyForm:
        def text(name: str) -> str:
            return str(form.get(name, ""))

        method = text("method") or "usability"
        # The checkbox sits after a hidden "false", so an unticked box still says so; a post
        # without either (an old form, a script) gets the method's default.
        seq_sent = form.getlist("seq")
        seq = "true" in seq_sent if seq_sent else method == "usability"
        return cls(
            key=text("key").strip(), name=text("name"), hypothesis=text("hypothesis"), method=method,
            within_subjects=form.get("within_subjects") is not None, seq=seq,
            designs=read_rows(form, "designs", DESIGN_INPUTS), tasks=read_rows(form, "tasks", TASK_INPUTS),
            questionnaires=[str(q) for q in form.getlist("questionnaires")],
            comment=form.get("comment") is not None, completion_code=text("completion_code"),
            consent=text("consent"),
        )

    def take_uploads(self, form: Any, files: Any, store: ImageStore) -> None:
        """Store each screen sent with the form and keep its name in the row (so a re-render
        after any error keeps it); a file that is no fit image becomes that field's error."""
        indexes = sorted({int(m.group(1)) for name in form if (m := _TASK_ROW.fullmatch(name))})
        for name, upload in files.items(multi=True):
            match = _UPLOAD.fullmatch(name)
            if not match or not upload.filename:
                continue
            page_row, slot = int(match.group(1)), int(match.group(2))
            if page_row not in indexes or slot >= DESIGN_SLOTS:
                continue
            row = indexes.index(page_row)
            try:
                stored = store.save(read_upload(upload))
            except ValidationError as exc:
                self.upload_errors[(row, slot)] = f"“{upload.filename}” {exc.message}"
            else:
                self.tasks[row][f"image_{slot}"] = stored.name

    def sections(self) -> dict[str, RowSection]:
        return {"designs": RowSection(self.designs, DESIGN_INPUTS, "Design"),
                "tasks": TaskRows(self.tasks, TASK_INPUTS, "Task", {"success": "self-report"}, method=self.method)}

    def apply(self, action: str) -> str | None:
        """Add or remove a design or task row; returns the id to focus next. A removed design
        takes its answer fields in every task with it (those below move up a row)."""
        changed = change_rows(action, self.sections())
        if changed and changed[:2] == ("designs", "remove") and changed[2] is not None:
            for row in self.tasks:
                for j in range(changed[2], DESIGN_SLOTS):
                    for name in _PER_DESIGN:
                        row[f"{name}_{j}"] = row.get(f"{name}_{j + 1}", "")
        self.upload_errors.clear()
        return changed[3] if changed else None

    def design_label(self, row: int) -> str:
        """How a task's per-design field names its design: the name, the key, or the row."""
        if row >= len(self.designs):
            return f"design {row + 1}"
        d = self.designs[row]
        name, key = d["name"].strip(), d["key"].strip()
        if name and key and name != key:
            return f"{name} ({key})"
        return name or key or f"design {row + 1}"

    def to_raw(self, stored: StudyDef | None, images: ImageStore | None = None
               ) -> tuple[dict[str, Any], dict[str, RowSection]]:
        """The raw study table (what a TOML file would hold) and where its list positions came from.

        Empty inputs are left out, so the parser's own "is required" names them; on edit the key
        and status come from the stored study (status changes go through launch/stop). Screens
        get their size from ``images`` (a name the store does not hold gets none, which the
        parser reports).
        """
        method = self.method if self.method in METHODS else "usability"
        raw: dict[str, Any] = {"kind": "study"}
        if stored or self.key:
            raw["key"] = stored.key if stored else self.key
        if stored:
            raw["status"] = stored.status
        for name in ("name", "hypothesis", "completion_code", "consent"):
            if getattr(self, name).strip():
                raw[name] = getattr(self, name).strip()
        raw["method"] = self.method.strip()
        raw["within_subjects"] = self.within_subjects and method == "usability"
        raw["seq"] = self.seq
        raw["comment"] = self.comment
        raw["questionnaires"] = list(self.questionnaires)
        sections = self.sections()
        tasks_section = sections["tasks"]
        assert isinstance(tasks_section, TaskRows)

        raw["designs"] = []
        for i, row in enumerate(self.designs):
            if is_blank(row, _DESIGN_READS[method]):
                continue
            sections["designs"].order.append(i)
            design: dict[str, Any] = {"key": row["key"].strip()}
            tasks_section.design_rows.setdefault(design["key"], i)
            if row["name"].strip():
                design["name"] = row["name"].strip()
            if method == "usability" and row["url"].strip():
                design["url"] = row["url"].strip()
            if method == "tree-test" and row["tree"].strip():
                design["tree"] = row["tree"]  # as typed: the first line's indent means something
            if row["weight"].strip():
                design["weight"] = typed_number(row["weight"])
            raw["designs"].append(design)
        answered = [(j, key) for key, j in tasks_section.design_rows.items() if j < DESIGN_SLOTS]

        raw["tasks"] = []
        for i, row in enumerate(self.tasks):
            if is_blank(row, _TASK_READS[method]):
                continue
            sections["tasks"].order.append(i)
            task: dict[str, Any] = {"key": row["key"].strip()}
            if row["prompt"].strip():
                task["prompt"] = row["prompt"].strip()
            if row["time_limit"].strip():
                task["time_limit"] = typed_integer(row["time_limit"])
            if method == "usability":
                self._usability_task(row, task)
            elif method == "tree-test" and answered:
                self._correct(row, task, answered, len(raw["designs"]))
            elif method == "first-click" and answered:
                task["screens"] = {key: self._screen(row, j, images) for j, key in answered}
            raw["tasks"].append(task)
        return raw, sections

    @staticmethod
    def _usability_task(row: Mapping[str, str], task: dict[str, Any]) -> None:
        if row["start_url"].strip():
            task["start_url"] = row["start_url"].strip()
        if row["success"] == "url":
            task["success_url"] = row["success_url"].strip()
        else:  # self-report (or whatever was sent, which the parser then names)
            task["success"] = row["success"] or "self-report"
            if row["success_url"].strip():
                task["success_url"] = row["success_url"].strip()

    @staticmethod
    def _correct(row: Mapping[str, str], task: dict[str, Any], answered: list[tuple[int, str]], designs: int) -> None:
        """One design: a list (left out when empty: "is required"). Two: a table; an empty
        field is an empty list, which the parser names beside that design's field."""
        paths = {key: node_paths(row[f"correct_{j}"]) for j, key in answered}
        if designs == 1:
            if paths[answered[0][1]]:
                task["correct"] = paths[answered[0][1]]
        elif any(paths.values()):
            task["correct"] = paths

    @staticmethod
    def _screen(row: Mapping[str, str], j: int, images: ImageStore | None) -> dict[str, Any]:
        screen: dict[str, Any] = {}
        name = row[f"image_{j}"].strip()
        if name:
            screen["image"] = name
            info = images.info(name) if images is not None else None
            if info is not None:
                screen["width"], screen["height"] = info.width, info.height
        targets = target_rows(row[f"targets_{j}"])
        if targets:
            screen["targets"] = targets
        return screen


def check(form: StudyForm, stored: StudyDef | None, images: ImageStore | None = None) -> Checked:
    """Validate as ``abtest sync`` does, then the rules storing would apply (read-only). A screen
    that could not be stored is its field's error (and nothing is saved, even when an earlier
    screen would still pass)."""
    raw, sections = form.to_raw(stored, images)
    definition, problems, conflict = judge(raw, parse_study, stored, pipeline.check_update)
    uploads = [FieldError(slot_id(row, "file", j), f"Task {row + 1} screen image", message)
               for (row, j), message in sorted(form.upload_errors.items())]
    taken = {e.slot for e in uploads}
    errors = [e for e in (placed(p.field, sections, p.message) for p in problems) if e.slot not in taken]
    return Checked(None if uploads else definition, uploads + errors, conflict)


def _stored(key: str) -> StudyDef:
    """The stored study (NotFound, a 404 page, for unknown keys and for plain experiments)."""
    with Session(get_engine()) as session:
        return get_study(session, key)[1]


class _Images:
    """Stored screens for the template: size by name (read once per render), and their URLs."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self._seen: dict[str, StoredImage | None] = {}

    def __call__(self, name: str) -> StoredImage | None:
        if name not in self._seen:
            self._seen[name] = self.store.info(name) if name else None
        return self._seen[name]


def _render(form: StudyForm, stored: StudyDef | None, checked: Checked | None = None, *, status: int = 200,
            focus: str | None = None, fragment: bool = False, oob: bool = False,
            section: str | None = None) -> tuple[str, int]:
    context = {
        "form": form, "stored": stored, "errors": checked.by_slot if checked else {},
        "problems": checked.errors if checked else [], "submitted": checked is not None and not oob,
        "frozen": stored is not None and stored.status != "draft", "focus": focus, "oob": oob,
        "questionnaire_names": END_OF_SESSION, "success_choices": SUCCESS_CHOICES,
        "method_choices": METHOD_CHOICES, "section_endpoint": "study_form.form_section",
        "design_slots": range(DESIGN_SLOTS), "image_info": _Images(image_store()), "image_url": image_url,
        "rectangles": rectangles, "max_image_bytes": MAX_BYTES,
    }
    if section == "designs":  # the tasks' per-design fields follow their design rows (labels, removal)
        designs = render_template("studies/_designs.html", **context)
        return designs + render_template("studies/_tasks.html", **context, tasks_oob=True), status
    if section:
        return render_template(f"studies/_{section}.html", **context), status
    return render_template("studies/_form.html" if fragment else "studies/form.html", **context), status


def _form_page(stored: StudyDef | None):  # type: ignore[no-untyped-def]
    """GET shows the form; POST saves, or re-renders after a no-JS add/remove button."""
    if request.method == "GET":
        return _render(StudyForm.from_definition(stored) if stored else StudyForm.blank(), stored)
    form = StudyForm.from_request(request.form)
    images = image_store()
    form.take_uploads(request.form, request.files, images)
    action = request.form.get("action", "save")
    if action != "save":
        return _render(form, stored, focus=form.apply(action), fragment=wants_fragment())
    checked = check(form, stored, images)
    definition = checked.definition
    if not isinstance(definition, StudyDef):
        return _render(form, stored, checked, status=409 if checked.conflict else 422, fragment=wants_fragment())

    def refused(exc: Conflict):  # type: ignore[no-untyped-def]
        failed = Checked(None, [placed(exc.field, form.to_raw(stored, images)[1], exc.message)], conflict=True)
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
    """Errors as you type: every error slot, swapped out of band (200 either way: htmx swaps 2xx).
    Files are not read here: screens are stored by :func:`upload_image` or on save."""
    stored = _editing()
    form = StudyForm.from_request(request.form)
    checked = check(form, stored, image_store())
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


@study_form.post("/images")
@login_required
def upload_image():  # type: ignore[no-untyped-def]
    """ia-form.js: store one screen (the ``file`` field) the moment it is chosen, so the form
    carries only its name and the designer can draw targets on it at once. 201 with its name,
    size and URL; 400 (413 over 5 MB) with the error that goes beside the file field."""
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ValidationError("is missing: choose a PNG or JPEG file", field="image")
        stored = image_store().save(read_upload(upload))
    except ImageTooLarge as exc:
        return jsonify(error=exc.to_dict()), 413
    except ValidationError as exc:
        return jsonify(error=exc.to_dict()), 400
    return jsonify(image=stored.name, width=stored.width, height=stored.height, url=image_url(stored.name)), 201
