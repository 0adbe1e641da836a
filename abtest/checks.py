"""The validation toolkit every definition parser uses: field-named errors, all of them at once.

A parser walks its raw table (TOML, JSON or form data) with a :class:`Checker`, which records
each problem with the field it is about (``variants[1].weight``) instead of stopping at the
first, then raises :class:`InvalidDefinition` listing them all. Nothing is silently fixed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from abtest.errors import ValidationError
from abtest.storable import MAX_TEXT, number_problem, text_problem

KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,63}")
VARIANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# What each pattern allows, in words: the error a designer reads (in the form, the CLI or an API
# field error) says this, not the regular expression.
KEY_WORDS = "2 to 64 lowercase letters, digits and dashes, starting with a letter or digit"
VARIANT_WORDS = "up to 64 lowercase letters, digits, dashes and underscores, starting with a letter or digit"
NAME_WORDS = "up to 64 letters, digits, dots, dashes and underscores, starting with a letter or digit"


class InvalidDefinition(ValidationError):
    """All the problems found in one definition, each a :class:`ValidationError` with a field."""

    def __init__(self, errors: list[ValidationError], source: str | None = None) -> None:
        first = errors[0]
        super().__init__(first.message, field=first.field)
        self.errors = errors
        self.source = source

    def lines(self) -> list[str]:
        """``source: field: message`` lines, as ``abtest sync`` prints them."""
        prefix = f"{self.source}: " if self.source else ""
        return [f"{prefix}{e.field or '(file)'}: {e.message}" for e in self.errors]

    def __str__(self) -> str:
        return "; ".join(self.lines())


class Checker:
    """Collects every problem of one definition instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[ValidationError] = []

    def fail(self, field_name: str, message: str) -> None:
        self.errors.append(ValidationError(message, field=field_name))

    def raise_if_failed(self, source: str | None) -> None:
        if self.errors:
            raise InvalidDefinition(self.errors, source)

    def unknown(self, table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for name in sorted(set(table) - allowed):
            self.fail(f"{prefix}{name}", f"unknown field; allowed: {', '.join(sorted(allowed))}")

    def text(self, table: Mapping[str, Any], name: str, where: str, default: str | None = None,
             required: bool = False) -> str | None:
        """A string field, at most :data:`~abtest.storable.MAX_TEXT` characters (fields with a
        tighter rule check it with :meth:`length`) and storable: no NUL, no lone surrogate."""
        if name not in table:
            if required:
                self.fail(where, "is required")
            return default
        value = table[name]
        if not isinstance(value, str):
            self.fail(where, f"must be a string, not {type(value).__name__}")
            return default
        problem = text_problem(value)  # PostgreSQL cannot store it: refuse here, by name, not with a 500
        if problem is None and len(value) > MAX_TEXT:
            problem = f"at most {MAX_TEXT} characters, got {len(value)}"
        if problem is not None:
            self.fail(where, problem)
            return default
        return value

    def number(self, table: Mapping[str, Any], name: str, where: str, default: float | None = None,
               required: bool = False) -> float | None:
        if name not in table:
            if required:
                self.fail(where, "is required")
            return default
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(where, f"must be a finite number, not {value!r}")
            return default
        problem = number_problem(value)  # NaN, infinity, or an integer beyond the float range
        if problem is not None:
            self.fail(where, problem)
            return default
        return float(value)

    def whole(self, table: Mapping[str, Any], name: str, where: str, low: int, high: int,
              words: str) -> int | None:
        """An optional whole number in [low, high]; ``words`` says what it counts."""
        value = table.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(where, f"{words} between {low} and {high}, not {value!r}")
            return None
        return value

    def boolean(self, table: Mapping[str, Any], name: str, where: str, default: bool = False) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false, not {value!r}")
            return default
        return value

    def pattern(self, value: str | None, where: str, pattern: re.Pattern[str], words: str) -> None:
        if value is not None and not pattern.fullmatch(value):
            self.fail(where, f"{value!r} is not allowed: use {words}")

    def length(self, value: str | None, where: str, limit: int) -> None:
        if value is not None and len(value) > limit:
            self.fail(where, f"at most {limit} characters, got {len(value)}")

    def choice(self, value: str | None, allowed: tuple[str, ...], where: str) -> None:
        if value is not None and value not in allowed:
            self.fail(where, f"{value!r} is not one of {', '.join(allowed)}")

    def tables(self, raw: Any, where: str, contents: str, required: str | None = None) -> list[Mapping[str, Any]] | None:
        """A list of tables (``[[variants]]``, ``[[tasks]]``…), or None with the problem noted.

        ``required`` is the hint when the list is missing (None: the list is optional, so a missing
        one never reaches here and a null is just the wrong shape); ``contents`` names the fields
        each table needs.
        """
        if raw is None and required is not None:
            self.fail(where, f"is required: {required}")
            return None
        if not isinstance(raw, list) or not all(isinstance(item, Mapping) for item in raw):
            self.fail(where, f"must be a list of tables with {contents}")
            return None
        return raw

    def keyed(self, items: list[Mapping[str, Any]], section: str, allowed: set[str], key_field: str,
              key_pattern: re.Pattern[str], words: str, noun: str
              ) -> Iterator[tuple[str, Mapping[str, Any], str | None]]:
        """Each table with its place (``variants[1]``) and its key, after the checks every keyed list
        shares: no unknown fields, the key present, well-formed and not used twice."""
        seen: set[str] = set()
        for i, item in enumerate(items):
            where = f"{section}[{i}]"
            self.unknown(item, allowed, f"{where}.")
            key = self.text(item, key_field, f"{where}.{key_field}", required=True)
            self.pattern(key, f"{where}.{key_field}", key_pattern, words)
            if key is not None and key in seen:
                self.fail(f"{where}.{key_field}", f"duplicate {noun} {key_field} {key!r}")
            seen.add(key or "")
            yield where, item, key

    def weights_sum_to_one(self, weights: list[float], where: str, at_least: int = 2) -> None:
        """Weights must sum to 1 (±1e-9): abtest never rescales them for you. Checked once the list
        has ``at_least`` entries, all positive (fewer, or a bad one, is reported on its own)."""
        if len(weights) >= at_least and all(w > 0 for w in weights):
            total = math.fsum(weights)
            if abs(total - 1.0) > WEIGHT_TOLERANCE:
                self.fail(where, f"weights sum to {total:.10g}; they must sum to 1 (abtest never rescales them)")


WEIGHT_TOLERANCE = 1e-9


def root_table(raw: Any, source: str | None) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidDefinition([ValidationError("a definition must be a table/object", field="(root)")], source)
    return raw
