"""Deterministic, stateless variant assignment (DESIGN §4.3).

Compatible with GrowthBook's v2 hashing so a unit lands in the same variant in Python, in
``abtest.js`` and in GrowthBook's SDKs. Everything here is a pure function of the experiment
definition and the unit id: any number of servers and browsers agree without talking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from fnv_hash_fast import fnv1a_32 as _fnv1a_32_bytes

from abtest.attributes import canonical_attribute
from abtest.errors import ValidationError

_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the string's UTF-16 code units, as JavaScript's charCodeAt loop sees it.

    For ASCII the code units are the bytes, so the C implementation hashes them (~16x faster than
    the Python loop); any other string takes the code-unit loop so non-ASCII ids agree with JS.
    """
    if text.isascii():
        return _fnv1a_32_bytes(text.encode("ascii"))
    h = _FNV_OFFSET
    encoded = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(encoded), 2):
        h ^= encoded[i] | (encoded[i + 1] << 8)
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h


def bucket(seed: str, unit: str) -> float:
    """The unit's position in [0, 1) for this seed: GrowthBook's v2 hash, 4 decimal places."""
    return (fnv1a32(str(fnv1a32(seed + unit))) % 10000) / 10000


def namespace_position(unit: str, namespace: str) -> float:
    """Position in [0, 1) used for mutual exclusion: GrowthBook's v1 hash, as its SDKs use."""
    return (fnv1a32(unit + "__" + namespace) % 1000) / 1000


def bucket_ranges(weights: Sequence[float], coverage: float = 1.0) -> list[tuple[float, float]]:
    """Variant i owns [w_cum, w_cum + coverage * w_i); running float sums, in variant order."""
    ranges = []
    cumulative = 0.0
    for weight in weights:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variant(bucket: float, weights: Sequence[float], coverage: float = 1.0) -> int | None:
    """Index of the variant whose range holds ``bucket``; ``None`` when outside every range."""
    for index, (start, end) in enumerate(bucket_ranges(weights, coverage)):
        if start <= bucket < end:
            return index
    return None


def targeting_matches(
    targeting: Mapping[str, tuple[str, ...]], attributes: Mapping[str, object]
) -> str | None:
    """``None`` when every targeting rule matches, else the name of the first attribute that fails.

    A rule lists allowed values; an attribute matches when its value (or, for a list, any of its
    values) is among them. Values compare in canonical string form, as in ``abtest.js``.
    """
    for name, allowed in targeting.items():
        if name not in attributes:
            return name
        value = attributes[name]
        values = value if isinstance(value, (list, tuple)) else [value]
        if not any(canonical_attribute(v) in allowed for v in values):
            return name
    return None


class Assignment(NamedTuple):
    """Which variant a unit gets and why; ``reason`` is a stable code, ``detail`` a sentence.

    A NamedTuple rather than a frozen dataclass: it is built on every call, and this is 5x cheaper.
    """

    experiment: str
    variant: str | None
    in_experiment: bool
    reason: str  # assigned | override | not_running | targeting | namespace | coverage | a kind's own
    bucket: float | None = None
    forced: bool = False
    note: str = ""  # what the sentence in ``detail`` needs: the status, attribute or namespace

    @property
    def detail(self) -> str:
        if self.reason == "override":
            return f"forced to {self.variant!r} by an override"
        if self.reason == "not_running":
            return f"the experiment is {self.note}, not running"
        if self.reason == "targeting":
            return f"attribute {self.note!r} does not match the targeting"
        if self.reason == "namespace":
            return f"outside the experiment's share of namespace {self.note}"
        if self.reason == "coverage":
            return f"bucket {self.bucket} is outside the share of traffic in the test"
        if self.reason not in ("assigned",):  # a kind's own reason says it in its note
            return self.note
        return f"bucket {self.bucket} falls in {self.variant!r}"

    def to_dict(self) -> dict[str, object]:
        return {"experiment": self.experiment, "variant": self.variant, "in_experiment": self.in_experiment,
                "reason": self.reason, "detail": self.detail, "bucket": self.bucket, "forced": self.forced}


class Assignable(Protocol):
    """What assignment reads of an experiment definition (:class:`abtest.definitions.ExperimentDef`)."""

    @property
    def key(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def seed(self) -> str: ...
    @property
    def variants(self) -> Sequence[Any]: ...
    @property
    def variant_keys(self) -> tuple[str, ...]: ...
    targeting: Mapping[str, tuple[str, ...]]
    namespace: Any
    ranges: tuple[tuple[float, float], ...]


def assign(
    definition: Assignable,
    unit: str,
    attributes: Mapping[str, object] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Assignment:
    """Decide a unit's variant: override, then status, targeting, namespace, coverage and hash.

    Overrides (QA forcing a variant) win even before launch and are marked ``forced`` so the
    analysis can leave them out.
    """
    key = definition.key
    if not unit or not isinstance(unit, str):
        raise ValidationError("the unit id must be a non-empty string", field="unit")
    if overrides and key in overrides:
        forced = overrides[key]
        if forced not in definition.variant_keys:
            raise ValidationError(
                f"unknown variant {forced!r} for experiment {key!r}; "
                f"choose one of {', '.join(definition.variant_keys)}",
                field="override",
            )
        return Assignment(key, forced, True, "override", None, True)
    if definition.status != "running":
        return Assignment(key, None, False, "not_running", note=definition.status)
    if definition.targeting:
        failed = targeting_matches(definition.targeting, attributes or {})
        if failed is not None:
            return Assignment(key, None, False, "targeting", note=failed)
    namespace = definition.namespace
    if namespace is not None:
        position = namespace_position(unit, namespace.name)
        if not namespace.start <= position < namespace.end:
            return Assignment(key, None, False, "namespace",
                              note=f"{namespace.name!r}: position {position} not in [{namespace.start}, {namespace.end})")
    position = bucket(definition.seed, unit)
    for index, (start, end) in enumerate(definition.ranges):
        if start <= position < end:
            return Assignment(key, definition.variants[index].key, True, "assigned", position)
    return Assignment(key, None, False, "coverage", position)
