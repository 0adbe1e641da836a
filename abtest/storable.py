"""What every store can hold: the checks of raw input values that the databases would otherwise refuse
with a 500 (or, worse, store in a form nothing can read back).

PostgreSQL cannot store NUL characters or lone surrogates (half an emoji, "\\ud83d" in JSON) in
text, nor NaN or infinity in JSON; SQLite then stores non-standard JSON. Integers beyond the float
range (a 400-digit number is legal JSON and TOML) overflow the first arithmetic on them. Each check
returns the problem in words, or None, so callers can name the field it belongs to.
"""

from __future__ import annotations

import math
from typing import Any

# Definitions' free text (hypothesis, descriptions, consent text): generous for prose, small
# enough that a definition stays a few hundred kilobytes at most.
MAX_TEXT = 5000


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if "\x00" in value:
        return "must not contain a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def number_problem(value: int | float) -> str | None:
    """Why a JSON/TOML number cannot be used as one, or None (bools are not numbers here)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else f"must be a finite number, not {value!r}"
    try:
        float(value)
    except OverflowError:
        return f"must be a finite number, not an integer of {len(str(abs(value)))} digits"
    return None


def first_unstorable(data: Any, where: str = "") -> tuple[str, str] | None:
    """The first (field, problem) anywhere in a parsed JSON value: keys and strings that are not
    storable text, numbers that are not finite. Fields read like ``answers[2]`` or ``attributes.x``."""
    stack: list[tuple[str, Any]] = [(where, data)]
    while stack:
        path, value = stack.pop()
        problem = None
        if isinstance(value, str):
            problem = text_problem(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            problem = number_problem(value)
        elif isinstance(value, dict):
            items = []
            for key, inner in value.items():
                inner_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and text_problem(key):  # not echoed: it cannot be printed
                    return path or "body", "holds a field name that is not valid text (NUL or a lone surrogate)"
                items.append((inner_path, inner))
            stack.extend(reversed(items))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{path}[{i}]", inner) for i, inner in enumerate(value)]))
        if problem:
            return path or "body", problem
    return None
