"""What the experiment and study forms share: repeatable rows, typed numbers, error placement and
the htmx fragment rule.

Both forms translate inputs into the raw table a TOML file would give and let the definition
parser judge it. The parser names fields by list position (``variants[1].weight``,
``tasks[0].prompt``), while the form numbers its rows as typed, blank rows included; a
:class:`RowSection` remembers which form row each list position came from, so an error lands
beside the input it is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Response
from htmx_flask import request
from sqlmodel import Session

from abtest import pipeline
from abtest.checks import InvalidDefinition
from abtest.errors import AbtestError, Conflict

D = TypeVar("D")

def wants_fragment() -> bool:
    """htmx asked for a fragment (a history restore needs the full page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def vary_on_htmx(response: Response) -> Response:
    """Fragments and full pages share URLs, so caches must key on the htmx header."""
    response.vary.add("HX-Request")
    return response


MAX_ROWS = 50  # form rows read per list; more than any definition allows, so nothing is dropped silently
_ROW_ACTION = re.compile(r"(add|remove)-([a-z]+)(?:-(\d+))?")


def blank_row(inputs: tuple[str, ...], **values: str) -> dict[str, str]:
    return {name: values.get(name, "") for name in inputs}


def read_rows(form: Mapping[str, str], prefix: str, inputs: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows named ``<prefix>-<i>-<input>`` in the order of ``i``, every input as typed."""
    pattern = re.compile(rf"{prefix}-(\d+)-({'|'.join(inputs)})")
    indexes = sorted({int(m.group(1)) for name in form if (m := pattern.fullmatch(name))})
    return [{name: str(form.get(f"{prefix}-{i}-{name}", "")) for name in inputs} for i in indexes[:MAX_ROWS]]


def is_blank(row: Mapping[str, str], names: tuple[str, ...]) -> bool:
    return not any(row[name].strip() for name in names)


def shown(value: float | None) -> str:
    """A stored number as the designer would type it (0.5, not 0.50000; 3, not 3.0)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def typed_number(text: str) -> float | str:
    """A typed number, or the text itself so the definition parser names the bad field."""
    try:
        return float(text.strip())
    except ValueError:
        return text.strip()


def typed_integer(text: str) -> int | float | str:
    try:
        return int(text.strip())
    except ValueError:
        return typed_number(text)


@dataclass
class RowSection:
    """One repeatable list of a form: its rows as typed and, after translation, which form row each
    position of the raw table's list came from (blank rows are left out of the table)."""

    rows: list[dict[str, str]]
    inputs: tuple[str, ...]
    noun: str  # "Variant", "Design", …: the label of an error in the summary
    defaults: dict[str, str] = field(default_factory=dict)  # values of a newly added row
    order: list[int] = field(default_factory=list)

    def locate(self, section: str, position: int, sub: str | None,
               slot_inputs: tuple[str, ...] | None = None) -> tuple[str, str]:
        """(error slot, label) for ``<section>[position].<sub>``; the fieldset when out of range."""
        if position >= len(self.order):
            return section, section.capitalize()
        row = self.order[position]
        inputs = slot_inputs or self.inputs
        return f"{section}-{row}-{sub if sub in inputs else inputs[0]}", f"{self.noun} {row + 1} {sub or ''}".strip()


def locate_row(field_name: str, sections: Mapping[str, RowSection]) -> tuple[str, str] | None:
    """The slot and label of a field such as ``designs[1].url``; None if it is not a row field."""
    match = re.fullmatch(r"([a-z_]+)\[(\d+)\](?:\.(\w+))?", field_name)
    if not match or match.group(1) not in sections:
        return None
    section = match.group(1)
    return sections[section].locate(section, int(match.group(2)), match.group(3))


def change_rows(action: str, sections: Mapping[str, RowSection]) -> tuple[str, str, int | None, str] | None:
    """Apply an ``add-<noun>`` / ``remove-<noun>-<i>`` button to its section.

    Returns (section, verb, index, id to focus next), or None when ``action`` is no row button.
    The section's key is the plural the inputs are named with; the noun is its singular.
    """
    match = _ROW_ACTION.fullmatch(action)
    if not match:
        return None
    verb, noun, index = match.group(1), match.group(2), match.group(3)
    section = next((name for name, s in sections.items() if s.noun.lower() == noun), None)
    if section is None:
        return None
    rows = sections[section]
    if verb == "add":
        rows.rows.append(blank_row(rows.inputs, **rows.defaults))
        return section, verb, None, f"{section}-{len(rows.rows) - 1}-{rows.inputs[0]}"
    position = int(index) if index is not None else None
    if position is not None and position < len(rows.rows):
        del rows.rows[position]
    else:
        position = None
    return section, verb, position, f"add-{noun}"


@dataclass(frozen=True)
class FieldError:
    slot: str | None  # id of the input (or group) whose error slot shows the message; None: summary only
    label: str
    message: str
    anchor: str = ""  # where the summary's link sends the focus; by default the slot, else the form

    def __post_init__(self) -> None:
        if not self.anchor:
            object.__setattr__(self, "anchor", self.slot or "definition-form")


@dataclass
class Checked:
    """One validation pass: the definition when valid, else errors placed beside their inputs."""

    definition: object | None
    errors: list[FieldError]
    conflict: bool = False

    @property
    def by_slot(self) -> dict[str, list[str]]:
        slots: dict[str, list[str]] = {}
        for e in self.errors:
            if e.slot:
                slots.setdefault(e.slot, []).append(e.message)
        return slots


def judge(raw: Mapping[str, Any], parse: Callable[[Mapping[str, Any]], D], stored: D | None,
          check_update: Callable[[D, D], None], shape_errors: Sequence[AbtestError] = ()
          ) -> tuple[D | None, list[AbtestError], bool]:
    """Validate a form's raw table as ``abtest sync`` does, then the rule storing it would apply.

    An edit runs ``check_update(stored, new)`` (frozen splits, launched studies…), a new
    definition the registry's key rule; both only read, so checking while the designer types
    never takes a write lock. Returns (the definition if nothing is wrong, every problem, whether
    the problem is a conflict with what is stored).
    """
    from web.extensions import get_engine

    problems = list(shape_errors)
    definition = None
    try:
        definition = parse(raw)
    except InvalidDefinition as exc:
        problems.extend(exc.errors)
    conflict = False
    if definition is not None and not problems:
        try:
            if stored is not None:
                check_update(stored, definition)
            else:
                with Session(get_engine()) as session:
                    pipeline.check_new(session, definition)
        except Conflict as exc:
            problems.append(exc)
            conflict = True
    return (definition if not problems else None), problems, conflict


def save(definition: Any, stored: Any, created: str, conflict: Callable[[Conflict], Any]) -> Any:
    """Store a checked definition (create, or update ``stored``) and go to its results page with a
    flash message (``created`` for a new one); a Conflict raised while storing (the state changed
    since the check: launched in another tab, a linked test gone) goes to ``conflict``, nothing stored."""
    from flask import flash, redirect, url_for

    from web.auth import actor
    from web.extensions import get_engine

    with Session(get_engine()) as session:
        try:
            (pipeline.update if stored else pipeline.create)(session, definition, actor())
            session.commit()
        except Conflict as exc:
            session.rollback()
            return conflict(exc)
    flash(f"Saved “{definition.name}”." if stored else created, "success")
    return redirect(url_for("results.page", key=definition.key))
