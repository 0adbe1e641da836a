"""Segment labels in SQL: a unit's value of one attribute on its first exposure, with the values
beyond the largest :data:`~abtest.aggregates.base.MAX_SEGMENTS` pooled as ``"(other)"``.

Attributes are stored in canonical string form (:mod:`abtest.attributes`), so extracting one as
text gives the same label on SQLite (``json_extract``) and PostgreSQL (``->>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from abtest.aggregates.base import NOT_SET, OTHER
from abtest.attributes import NAME_PATTERN
from abtest.errors import ValidationError


def check_attribute_name(by: str) -> str:
    if not NAME_PATTERN.fullmatch(by):
        raise ValidationError(f"{by!r} is not an attribute name (1-64 letters, digits, _ . -)", field="by")
    return by


def attribute_value(attributes: sa.ColumnElement[object], by: str) -> sa.ColumnElement[str]:
    """The attribute's value as text, ``"(not set)"`` where the unit's first exposure lacked it."""
    typed = sa.type_coerce(attributes, sa.JSON)
    return sa.func.coalesce(typed[by].as_string(), NOT_SET)


@dataclass(frozen=True, slots=True)
class Labels:
    """How to label a unit's segment: its value if among ``top``, else ``"(other)"``."""

    by: str
    top: tuple[str, ...]

    def of(self, attributes: sa.ColumnElement[object]) -> sa.ColumnElement[str]:
        value = attribute_value(attributes, self.by)
        return sa.case((value.in_(self.top), value), else_=sa.literal(OTHER)) if self.top else sa.literal(OTHER)


def largest(sizes: Sequence[tuple[str, int]], limit: int) -> tuple[tuple[str, ...], bool]:
    """The ``limit`` largest segment values (ties by value, so the choice is stable) and whether
    others remain to pool. A breakdown where no unit carries the attribute has none."""
    ordered = sorted(((str(v), int(n)) for v, n in sizes if n), key=lambda item: (-item[1], item[0]))
    if all(value == NOT_SET for value, _n in ordered):
        return (), False
    return tuple(v for v, _n in ordered[:limit]), len(ordered) > limit


MAX_LISTED = 50  # attribute names offered for a breakdown
SAMPLE_UNITS = 10_000  # how many units' first exposures are looked at to list them


def attribute_names(conn: sa.Connection, rows: sa.Select[tuple[object]]) -> list[str]:
    """The attribute names present in the ``attributes`` objects ``rows`` select (the newest
    units' first exposures, so an attribute the site began to send lately is listed), sorted:
    what a designer can break the results down by."""
    sample = rows.limit(SAMPLE_UNITS).subquery("sample")
    column = sample.c[0]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        binary = sa.cast(column, postgresql.JSONB)  # events keep json, the unit rollups jsonb
        keys = sa.func.jsonb_object_keys(binary).table_valued("value").render_derived(name="k")
        query = sa.select(keys.c.value).select_from(sample).join(keys, sa.true()).where(
            sa.func.jsonb_typeof(binary) == "object")
    else:
        keys = sa.func.json_each(column).table_valued("key").alias("k")
        query = sa.select(keys.c.key).select_from(sample).join(keys, sa.true()).where(
            sa.func.json_type(column) == "object")
    name = query.selected_columns[0]
    return [str(n) for (n,) in conn.execute(query.distinct().order_by(name).limit(MAX_LISTED)).all()]
