"""The study form's fields (:mod:`web.study_form`): where each parser error is shown (a study
field to its input), and what only tree tests and first-click tests have: a task's per-design
answer fields, the Targets text, uploads. Pure helpers: no routes here."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from abtest.studies.images import MAX_BYTES, too_large
from web.form_rows import FieldError, RowSection, locate_row, shown, typed_number

SECTIONS = ("designs", "tasks")
METHOD_CHOICES = {
    "usability": ("Usability study", "Participants do tasks on the live designs; each task is timed and rated."),
    "tree-test": ("Tree test", "Participants find where things are in a text-only menu tree (no visual design), "
                               "so you learn whether the labels and grouping work."),
    "first-click": ("First-click test", "Participants see a screenshot and click where they would start a task; "
                                        "you learn whether the first click lands on the right spot."),
}
TOP_LABELS = {"key": "Key", "name": "Name", "hypothesis": "Hypothesis", "within_subjects": "Design mode",
              "questionnaires": "Questionnaires", "comment": "Open comment", "completion_code": "Completion code",
              "consent": "Consent text", "status": "Status", "kind": "Kind", "method": "Method",
              "seq": "SEQ after each task"}
DESIGN_SLOTS = 2  # per-design answer fields of a task: the parser allows two designs for these methods
_TASK_FIELD = re.compile(r"tasks\[(\d+)\]((?:\.[^.]+)*)")
_NUMBER_SPLIT = re.compile(r"[\s,;]+")


def slot_id(task_row: int, name: str, design_row: int) -> str:
    """The id (and name) of a task's per-design input: ``tasks-0-correct_1``."""
    return f"tasks-{task_row}-{name}_{design_row}"


def node_paths(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def target_rows(text: str) -> list[list[Any]]:
    """One rectangle per non-blank line, ``x, y, width, height`` (commas or spaces, brackets
    allowed); a value that is no number stays text, so the parser names that rectangle."""
    rows = []
    for line in text.splitlines():
        parts = [p for p in _NUMBER_SPLIT.split(line.strip().strip("[]()")) if p]
        if parts:
            values = [typed_number(p) for p in parts]
            rows.append([v if isinstance(v, str) or math.isfinite(v) else p for v, p in zip(values, parts, strict=True)])
    return rows


def rectangles(text: str) -> list[tuple[int, float, float, float, float]]:
    """The well-formed rectangles of a Targets field, numbered as the parser counts them (for drawing)."""
    out = []
    for number, row in enumerate(target_rows(text), start=1):
        if len(row) == 4 and all(isinstance(v, float) for v in row) and row[2] > 0 and row[3] > 0:
            out.append((number, *row))
    return out


def shown_targets(values: list[float]) -> str:
    return ", ".join(shown(v) for v in values)


@dataclass
class TaskRows(RowSection):
    """The tasks section, knowing which design row each design key came from (answers are per design)."""

    method: str = "usability"
    design_rows: dict[str, int] = field(default_factory=dict)  # key → form row, designs in the raw table

    def design_slot(self, key: str | None) -> int:
        """The form row of design ``key``'s answer fields (the first design's for the task as a whole)."""
        rows = [r for r in self.design_rows.values() if r < DESIGN_SLOTS]
        row = self.design_rows.get(key or "", -1)
        return row if 0 <= row < DESIGN_SLOTS else (rows[0] if rows else 0)


def read_upload(upload: Any) -> bytes:
    """An uploaded file's bytes; one over the limit is refused with its real size."""
    content = upload.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        upload.seek(0, 2)
        raise too_large(upload.tell())
    return bytes(content)


def task_field(name: str, sections: Mapping[str, RowSection]) -> tuple[str, str, str] | None:
    """(slot, label, message prefix) of a task's tree-test or first-click field, e.g.
    ``tasks[0].screens.b.targets[1]`` → the first task row's Targets field for design b, its
    message prefixed "rectangle 2: " (the number the drawing shows)."""
    tasks = sections.get("tasks")
    match = _TASK_FIELD.fullmatch(name)
    if not match or not isinstance(tasks, TaskRows) or tasks.method not in ("tree-test", "first-click"):
        return None
    position, rest = int(match.group(1)), match.group(2)
    if position >= len(tasks.order):
        return None
    parts = rest[1:].split(".") if rest else []
    design: str | None = None
    leaf: str | None = None
    if not parts:  # the whole task: a launched study's answers changed
        part = "correct" if tasks.method == "tree-test" else "targets"
    elif parts[0] in ("correct", "screens"):
        part, design = parts[0], (parts[1] if len(parts) > 1 else None)
        leaf = parts[2] if len(parts) > 2 else None
    elif parts[0].split("[")[0] in ("image", "width", "height", "targets"):  # one design, on the task itself
        part, leaf = "screens", parts[0]
    else:
        return None
    row, j = tasks.order[position], tasks.design_slot(design)
    of = f" ({design})" if design and len(tasks.design_rows) > 1 else ""
    if part == "correct":
        return slot_id(row, "correct", j), f"Task {row + 1} correct answers{of}", ""
    if part == "targets" or (leaf or "").startswith("targets"):
        index = re.fullmatch(r"targets\[(\d+)\]", leaf or "")
        prefix = f"rectangle {int(index.group(1)) + 1}: " if index else ""
        return slot_id(row, "targets", j), f"Task {row + 1} targets{of}", prefix
    return slot_id(row, "file", j), f"Task {row + 1} screen image{of}", ""


def locate(field_name: str | None, sections: Mapping[str, RowSection]) -> tuple[str | None, str, str]:
    """(error slot, label, summary link target) of a study field, e.g. ``tasks[1].time_limit`` →
    the second task row's time-limit input; a slot of None means the summary only."""
    name = field_name or ""
    in_task = task_field(name, sections)
    if in_task is not None:
        return in_task[0], in_task[1], in_task[0]
    in_row = locate_row(name, sections)
    if in_row is not None:
        return in_row[0], in_row[1], in_row[0]
    if name in SECTIONS:
        return name, name.capitalize(), f"{name}-fieldset"
    if name.startswith("questionnaires"):
        return "questionnaires", TOP_LABELS["questionnaires"], "questionnaires-fieldset"
    if name == "method":
        return name, TOP_LABELS[name], "method-fieldset"
    if name in TOP_LABELS and name not in ("status", "kind"):
        return name, TOP_LABELS[name], name
    return None, TOP_LABELS.get(name, name or "Study"), "definition-form"


def placed(field_name: str | None, sections: Mapping[str, RowSection], message: str) -> FieldError:
    slot, label, anchor = locate(field_name, sections)
    in_task = task_field(field_name or "", sections)
    if in_task is not None and in_task[2]:
        message = in_task[2] + message
    return FieldError(slot, label, message, anchor)
