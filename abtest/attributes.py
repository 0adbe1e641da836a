"""Visitor attributes: the values targeting matches and segments break results down by.

One rule for every way they arrive (events, ``/assign``, the snippet, the CLI): string keys,
string, number or boolean values, at most :data:`MAX_ATTRIBUTES` keys and
:data:`MAX_VALUE_LENGTH` characters per value. Values compare and are stored in one canonical
string form (``True`` → ``"true"``, ``3.0`` → ``"3"``), the same form ``abtest.js`` uses, so a
segment from the browser and one from a server never split on spelling.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal

MAX_ATTRIBUTES = 20
MAX_VALUE_LENGTH = 200
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
# The labels a breakdown gives its pooled segments; a visitor's value may not pass for one.
OTHER = "(other)"  # the segments beyond the largest ones, pooled
NOT_SET = "(not set)"  # units whose first exposure did not carry the attribute


class BadAttribute(ValueError):
    """A bad attribute, naming it (``attributes.country``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def canonical_attribute(value: object) -> str:
    """Targeting values and visitor attributes compare as these strings (same rule in abtest.js)."""
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else _js_float(value)
    return str(value)


def _js_float(value: float) -> str:
    """A fraction as JavaScript's String() writes it: the same shortest digits as repr(), but plain
    down to 1e-6 and then "1.5e-7" where Python says "1e-05" and "1.5e-07"."""
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    if int(exponent) >= -6:
        return format(Decimal(text), "f")
    return f"{mantissa}e{int(exponent)}"


def _scalar(name: str, value: object) -> str:
    where = f"attributes.{name}"
    if isinstance(value, float) and not math.isfinite(value):
        raise BadAttribute(where, "must be a finite number")
    if not isinstance(value, (str, int, float, bool)):
        raise BadAttribute(where, f"must be a string, number or boolean, not {type(value).__name__}")
    text = canonical_attribute(value)
    if len(text) > MAX_VALUE_LENGTH:
        raise BadAttribute(where, f"at most {MAX_VALUE_LENGTH} characters, got {len(text)}")
    if "\x00" in text:
        raise BadAttribute(where, "must not contain NUL characters")
    if text in (OTHER, NOT_SET):
        raise BadAttribute(where, f"{text!r} is reserved for the pooled segments of a breakdown")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: a string cut in the middle of an emoji
        raise BadAttribute(where, "must be valid Unicode text (it holds a lone surrogate)") from None
    return text


def clean_attributes(raw: object, allow_lists: bool = False) -> dict[str, str | list[str]]:
    """Validated attributes in canonical form; raises :class:`BadAttribute` naming the first bad one.

    ``allow_lists``: targeting on ``/assign`` may give several values for one attribute (a
    visitor in several groups); events record one value per attribute.
    """
    if not isinstance(raw, Mapping):
        raise BadAttribute("attributes", "must be an object of name: value")
    if len(raw) > MAX_ATTRIBUTES:
        raise BadAttribute("attributes", f"at most {MAX_ATTRIBUTES} attributes, got {len(raw)}")
    out: dict[str, str | list[str]] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise BadAttribute(f"attributes.{name}", "names are 1-64 letters, digits, _ . - "
                                                        "starting with a letter or _")
        if isinstance(value, list) and allow_lists:
            if len(value) > MAX_ATTRIBUTES:  # [] is fine: a visitor in no group matches no rule
                raise BadAttribute(f"attributes.{name}", f"a list holds at most {MAX_ATTRIBUTES} values")
            out[name] = [_scalar(name, v) for v in value]
        else:
            out[name] = _scalar(name, value)
    return out


def segment_attributes(attributes: Mapping[str, str | list[str]] | None) -> dict[str, str] | None:
    """What is stored with an event for segments: the single-valued attributes (a list is a
    targeting convenience, not a segment), or None when there are none."""
    if not attributes:
        return None
    kept = {k: v for k, v in attributes.items() if isinstance(v, str)}
    return kept or None


def device_of(user_agent: str, mobile_hint: str | None = None) -> str:
    """``mobile``, ``tablet`` or ``desktop`` from a request's User-Agent (and the ``Sec-CH-UA-Mobile``
    client hint when the browser sends it): the segment the snippet reports from the browser side."""
    ua = user_agent.lower()
    if "ipad" in ua or "tablet" in ua or ("android" in ua and "mobile" not in ua):
        return "tablet"
    if mobile_hint == "?1" or any(word in ua for word in ("mobi", "iphone", "ipod", "android")):
        return "mobile"
    return "desktop"
