"""Experiment definitions (DESIGN §4.2): TOML, JSON or form data → one validated, typed object.

Every surface (``abtest sync``, the API, the designer UI) goes through :func:`parse_definition`,
so a rule is written once and its error names the field it is about. Nothing is silently fixed:
weights that do not sum to 1 are an error, not a cue to normalise.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from abtest.errors import ValidationError

KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,63}")
VARIANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
STATUSES = ("draft", "running", "stopped", "archived")
ANALYSES = ("sequential", "fixed")
METRIC_TYPES = ("conversion", "mean", "duration", "retention")
MAX_RETENTION_DAYS = 365
WEIGHT_TOLERANCE = 1e-9
MAX_VARIANTS = 20
# Keys that would collide with the designer pages' own paths under /experiments/.
RESERVED_KEYS = frozenset({"new", "validate", "sample-size", "form"})



class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantDocument(_Shape):
    key: str = PField(pattern=VARIANT_PATTERN.pattern, max_length=64)
    weight: float = PField(gt=0, le=1, description="positive; all weights sum to 1")
    name: str = ""
    description: str = ""


class MetricDocument(_Shape):
    name: str = PField(pattern=NAME_PATTERN.pattern)
    type: Literal["conversion", "mean", "duration", "retention"]
    event: str | None = PField(default=None, description="conversion/mean: the event counted or summed")
    task: str | None = PField(default=None, description="duration: the timed task")
    days: int | None = PField(default=None, ge=1, le=365, description="retention: came back at least this many days later")
    primary: bool = False


class NamespaceDocument(_Shape):
    name: str
    range: tuple[float, float] = PField(description="[start, end) inside [0, 1]")


class PlanDocument(_Shape):
    units_per_variant: int | None = PField(default=None, ge=2)
    baseline: float | None = PField(default=None, gt=0, lt=1)
    mde: float | None = PField(default=None, gt=0)
    power: float = PField(default=0.8, gt=0, lt=1)


class DefinitionDocument(_Shape):
    """The shape of a definition (DESIGN §4.2), for the OpenAPI document and the field lists below.

    :func:`parse_definition` enforces the rules with messages that name the field; this model only
    declares the fields once so the documented schema and the parser cannot drift apart.
    """

    key: str = PField(pattern=KEY_PATTERN.pattern)
    name: str = ""
    hypothesis: str = ""
    kind: Literal["experiment"] = "experiment"
    status: Literal["draft", "running", "stopped", "archived"] = "draft"
    coverage: float = PField(default=1.0, gt=0, le=1)
    seed: str = PField(default="", description="hash seed; defaults to the key")
    analysis: Literal["sequential", "fixed"] = "sequential"
    alpha: float = PField(default=0.05, gt=0, lt=0.5)
    cuped: bool = False
    namespace: NamespaceDocument | None = None
    targeting: dict[str, str | int | bool | list[str | int | bool]] = PField(default_factory=dict)
    plan: PlanDocument | None = None
    variants: list[VariantDocument] = PField(min_length=2, max_length=20)
    metrics: list[MetricDocument] = PField(default_factory=list)


_TOP_FIELDS = set(DefinitionDocument.model_fields)
_VARIANT_FIELDS = set(VariantDocument.model_fields)
_METRIC_FIELDS = set(MetricDocument.model_fields)
_NAMESPACE_FIELDS = set(NamespaceDocument.model_fields)
_PLAN_FIELDS = set(PlanDocument.model_fields)


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


def canonical_attribute(value: object) -> str:
    """Targeting values and visitor attributes compare as these strings (same rule in abtest.js)."""
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class VariantDef:
    key: str
    weight: float
    name: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class MetricDef:
    """``conversion``: units with ≥1 ``event``; ``mean``: per-unit sum of ``event`` values;
    ``duration``: per-unit time of ``task``, analysed on the log scale; ``retention``: units seen
    again (any event) at least ``days`` days after their first exposure."""

    name: str
    type: str
    event: str | None = None
    task: str | None = None
    primary: bool = False
    days: int | None = None


@dataclass(frozen=True, slots=True)
class NamespaceDef:
    name: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class PlanDef:
    """The planned sample: given directly, or from a baseline rate and minimum detectable effect."""

    units_per_variant: int | None = None
    baseline: float | None = None
    mde: float | None = None
    power: float = 0.8


@dataclass(frozen=True, slots=True)
class ExperimentDef:
    key: str
    name: str
    variants: tuple[VariantDef, ...]
    metrics: tuple[MetricDef, ...] = ()
    hypothesis: str = ""
    kind: str = "experiment"
    status: str = "draft"
    coverage: float = 1.0
    seed: str = ""
    analysis: str = "sequential"
    alpha: float = 0.05
    namespace: NamespaceDef | None = None
    targeting: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cuped: bool = False
    plan: PlanDef | None = None
    # Derived once, because assignment reads them on every call.
    weights: tuple[float, ...] = field(init=False, repr=False, compare=False)
    ranges: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from abtest.assignment import bucket_ranges

        object.__setattr__(self, "weights", tuple(v.weight for v in self.variants))
        object.__setattr__(self, "ranges", tuple(bucket_ranges(self.weights, self.coverage)))

    @property
    def variant_keys(self) -> tuple[str, ...]:
        return tuple(v.key for v in self.variants)

    @property
    def primary_metric(self) -> MetricDef | None:
        return next((m for m in self.metrics if m.primary), None)

    def to_dict(self) -> dict[str, Any]:
        """The definition in the TOML/JSON shape of DESIGN §4.2 (round-trips through parse)."""
        out: dict[str, Any] = {
            "key": self.key, "name": self.name, "hypothesis": self.hypothesis,
            "status": self.status, "coverage": self.coverage, "seed": self.seed,
            "analysis": self.analysis, "alpha": self.alpha, "cuped": self.cuped,
        }
        if self.namespace is not None:
            out["namespace"] = {"name": self.namespace.name, "range": [self.namespace.start, self.namespace.end]}
        if self.targeting:
            out["targeting"] = {k: list(v) for k, v in self.targeting.items()}
        if self.plan is not None:
            out["plan"] = {k: getattr(self.plan, k) for k in PlanDocument.model_fields
                           if getattr(self.plan, k) is not None}
        out["variants"] = [
            {k: v for k, v in (("key", x.key), ("weight", x.weight), ("name", x.name),
                               ("description", x.description)) if v != ""}
            for x in self.variants
        ]
        out["metrics"] = [
            {k: v for k, v in (("name", m.name), ("type", m.type), ("event", m.event),
                               ("task", m.task), ("days", m.days), ("primary", m.primary)) if v is not None}
            for m in self.metrics
        ]
        return out


class _Checker:
    """Collects every problem of one definition instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[ValidationError] = []

    def fail(self, field_name: str, message: str) -> None:
        self.errors.append(ValidationError(message, field=field_name))

    def unknown(self, table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for name in sorted(set(table) - allowed):
            self.fail(f"{prefix}{name}", f"unknown field; allowed: {', '.join(sorted(allowed))}")

    def text(self, table: Mapping[str, Any], name: str, where: str, default: str | None = None,
             required: bool = False) -> str | None:
        if name not in table:
            if required:
                self.fail(where, "is required")
            return default
        value = table[name]
        if not isinstance(value, str):
            self.fail(where, f"must be a string, not {type(value).__name__}")
            return default
        if "\x00" in value:  # PostgreSQL cannot store it: refuse here, by name, not with a 500
            self.fail(where, "must not contain a NUL character")
            return default
        return value

    def number(self, table: Mapping[str, Any], name: str, where: str, default: float | None = None,
               required: bool = False) -> float | None:
        if name not in table:
            if required:
                self.fail(where, "is required")
            return default
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(where, f"must be a finite number, not {value!r}")
            return default
        return float(value)

    def boolean(self, table: Mapping[str, Any], name: str, where: str, default: bool = False) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false, not {value!r}")
            return default
        return value

    def pattern(self, value: str | None, where: str, pattern: re.Pattern[str], words: str) -> None:
        if value is not None and not pattern.fullmatch(value):
            self.fail(where, f"{value!r} must match {pattern.pattern}: {words}")

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


def parse_identity(c: _Checker, raw: Mapping[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    """Key, name, hypothesis and status: the fields experiments and studies share, checked once."""
    key = c.text(raw, "key", "key", required=True)
    c.pattern(key, "key", KEY_PATTERN, "2-64 lowercase letters, digits, dashes")
    if key in RESERVED_KEYS:
        c.fail("key", f"{key!r} is reserved by the designer pages; choose another key")
    name = c.text(raw, "name", "name", default=key or "")
    c.length(name, "name", 200)
    hypothesis = c.text(raw, "hypothesis", "hypothesis", default="")
    status = c.text(raw, "status", "status", default="draft")
    c.choice(status, STATUSES, "status")
    return key, name, hypothesis, status


def parse_definition(raw: Mapping[str, Any], source: str | None = None) -> ExperimentDef:
    """Validate a definition table; raise :class:`InvalidDefinition` listing every problem."""
    if not isinstance(raw, Mapping):
        raise InvalidDefinition([ValidationError("a definition must be a table/object", field="(root)")], source)
    if raw.get("kind") == "study":  # usability studies have their own fields and rules
        from abtest.studies import parse_study

        return parse_study(raw, source)
    c = _Checker()
    c.unknown(raw, _TOP_FIELDS, "")
    key, name, hypothesis, status = parse_identity(c, raw)
    kind = c.text(raw, "kind", "kind", default="experiment")
    if kind != "experiment":
        c.fail("kind", f"{kind!r} is not supported; only 'experiment' definitions can be synced")
    analysis = c.text(raw, "analysis", "analysis", default="sequential")
    c.choice(analysis, ANALYSES, "analysis")
    seed = c.text(raw, "seed", "seed", default=key or "")
    c.length(seed, "seed", 200)
    if seed == "" and "seed" in raw:
        c.fail("seed", "must not be empty")
    coverage = c.number(raw, "coverage", "coverage", default=1.0)
    if coverage is not None and not 0 < coverage <= 1:
        c.fail("coverage", f"{coverage} must be above 0 and at most 1")
    alpha = c.number(raw, "alpha", "alpha", default=0.05)
    if alpha is not None and not 0 < alpha < 0.5:
        c.fail("alpha", f"{alpha} must be between 0 and 0.5 (typically 0.05)")
    cuped = c.boolean(raw, "cuped", "cuped")

    variants = _parse_variants(c, raw.get("variants"))
    metrics = _parse_metrics(c, raw.get("metrics", []))
    namespace = _parse_namespace(c, raw["namespace"]) if "namespace" in raw else None
    targeting = _parse_targeting(c, raw["targeting"]) if "targeting" in raw else {}
    plan = _parse_plan(c, raw["plan"]) if "plan" in raw else None

    if analysis == "fixed" and plan is None and "plan" not in raw:
        c.fail("plan", "a fixed-horizon analysis needs its planned sample: { units_per_variant = N } "
                       "or { baseline = p, mde = d }; or use analysis = \"sequential\"")
    if c.errors:
        raise InvalidDefinition(c.errors, source)
    return ExperimentDef(
        key=key or "", name=name or "", variants=variants, metrics=metrics,
        hypothesis=hypothesis or "", status=status or "draft", coverage=coverage or 1.0,
        seed=seed or "", analysis=analysis or "sequential", alpha=alpha or 0.05,
        namespace=namespace, targeting=targeting, cuped=cuped, plan=plan,
    )


def _parse_variants(c: _Checker, given: Any) -> tuple[VariantDef, ...]:
    raw = c.tables(given, "variants", "key and weight", required="at least two [[variants]] with key and weight")
    if raw is None:
        return ()
    if len(raw) < 2:
        c.fail("variants", f"needs at least 2 variants, got {len(raw)}")
    if len(raw) > MAX_VARIANTS:
        c.fail("variants", f"at most {MAX_VARIANTS} variants, got {len(raw)}")
    variants = []
    for where, item, vkey in c.keyed(raw, "variants", _VARIANT_FIELDS, "key", VARIANT_PATTERN,
                                     "lowercase letters, digits, dashes, underscores", "variant"):
        weight = c.number(item, "weight", f"{where}.weight", required=True)
        if weight is not None and weight <= 0:
            c.fail(f"{where}.weight", f"{weight} must be positive")
        vname = c.text(item, "name", f"{where}.name", default="")
        c.length(vname, f"{where}.name", 200)
        description = c.text(item, "description", f"{where}.description", default="")
        variants.append(VariantDef(vkey or "", weight or 0.0, vname or "", description or ""))
    weights = [v.weight for v in variants]
    if len(variants) >= 2 and all(w > 0 for w in weights):
        total = math.fsum(weights)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            c.fail("variants", f"weights sum to {total:.10g}; they must sum to 1 (abtest never rescales them)")
    return tuple(variants)


def _parse_metrics(c: _Checker, given: Any) -> tuple[MetricDef, ...]:
    raw = c.tables(given, "metrics", "name and type")
    if raw is None:
        return ()
    metrics = []
    for where, item, mname in c.keyed(raw, "metrics", _METRIC_FIELDS, "name", NAME_PATTERN,
                                      "letters, digits, dots, dashes, underscores", "metric"):
        mtype = c.text(item, "type", f"{where}.type", required=True)
        c.choice(mtype, METRIC_TYPES, f"{where}.type")
        event = c.text(item, "event", f"{where}.event")
        task = c.text(item, "task", f"{where}.task")
        if mtype == "conversion" and event is None:
            event = mname
        if mtype == "mean" and event is None:
            c.fail(f"{where}.event", "a mean metric must name the event whose values it sums")
        if mtype == "duration" and task is None:
            c.fail(f"{where}.task", "a duration metric must name the task it times")
        if mtype in ("conversion", "mean", "retention") and task is not None:
            c.fail(f"{where}.task", f"only duration metrics take a task, not {mtype}")
        if mtype in ("duration", "retention") and event is not None:
            c.fail(f"{where}.event", f"{mtype} metrics take no event")
        days = item.get("days")
        if mtype == "retention":
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS:
                c.fail(f"{where}.days", f"a retention metric needs whole days between 1 and {MAX_RETENTION_DAYS}, "
                                        f"not {days!r}")
                days = None
        elif days is not None:
            c.fail(f"{where}.days", "only retention metrics take days")
            days = None
        c.pattern(event, f"{where}.event", NAME_PATTERN, "letters, digits, dots, dashes, underscores")
        c.pattern(task, f"{where}.task", NAME_PATTERN, "letters, digits, dots, dashes, underscores")
        primary = c.boolean(item, "primary", f"{where}.primary")
        metrics.append(MetricDef(mname or "", mtype or "", event, task, primary, days))
    primaries = [m.name for m in metrics if m.primary]
    if len(primaries) > 1:
        c.fail("metrics", f"only one metric can be primary, got {', '.join(primaries)}")
    if metrics and not primaries:
        first = metrics[0]
        metrics[0] = MetricDef(first.name, first.type, first.event, first.task, True, first.days)
    return tuple(metrics)


def _parse_namespace(c: _Checker, raw: Any) -> NamespaceDef | None:
    if not isinstance(raw, Mapping):
        c.fail("namespace", "must be a table: { name = \"...\", range = [start, end] }")
        return None
    c.unknown(raw, _NAMESPACE_FIELDS, "namespace.")
    name = c.text(raw, "name", "namespace.name", required=True)
    c.length(name, "namespace.name", 100)
    if name is not None and not name.strip():
        c.fail("namespace.name", "must not be empty")
    bounds = raw.get("range")
    if (not isinstance(bounds, list) or len(bounds) != 2
            or any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in bounds)):
        c.fail("namespace.range", "must be two numbers [start, end]")
        return None
    start, end = float(bounds[0]), float(bounds[1])
    if not 0 <= start < end <= 1:
        c.fail("namespace.range", f"[{start}, {end}] must satisfy 0 ≤ start < end ≤ 1")
    return NamespaceDef(name or "", start, end)


def _parse_targeting(c: _Checker, raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        c.fail("targeting", "must be a table of attribute = value or [values]")
        return {}
    rules: dict[str, tuple[str, ...]] = {}
    for attr, allowed in raw.items():
        where = f"targeting.{attr}"
        values = allowed if isinstance(allowed, list) else [allowed]
        if not values:
            c.fail(where, "must list at least one value")
            continue
        bad = [v for v in values if isinstance(v, float) or not isinstance(v, (str, int, bool))]
        if bad:
            c.fail(where, f"values must be strings, integers or booleans, not {bad[0]!r}")
            continue
        rules[attr] = tuple(canonical_attribute(v) for v in values)
    return rules


def _parse_plan(c: _Checker, raw: Any) -> PlanDef | None:
    if not isinstance(raw, Mapping):
        c.fail("plan", "must be a table: { units_per_variant = N } or { baseline = p, mde = d }")
        return None
    c.unknown(raw, _PLAN_FIELDS, "plan.")
    units = raw.get("units_per_variant")
    if units is not None and (isinstance(units, bool) or not isinstance(units, int) or units < 2):
        c.fail("plan.units_per_variant", f"{units!r} must be an integer of at least 2")
        units = None
    baseline = c.number(raw, "baseline", "plan.baseline")
    mde = c.number(raw, "mde", "plan.mde")
    power = c.number(raw, "power", "plan.power", default=0.8)
    if baseline is not None and not 0 < baseline < 1:
        c.fail("plan.baseline", f"{baseline} must be a rate between 0 and 1")
    if mde is not None and mde <= 0:
        c.fail("plan.mde", f"{mde} must be positive")
    if power is not None and not 0 < power < 1:
        c.fail("plan.power", f"{power} must be between 0 and 1")
    if units is None and (baseline is None or mde is None):
        c.fail("plan", "give units_per_variant, or both baseline and mde")
    if baseline is not None and mde is not None and baseline + mde >= 1:
        c.fail("plan.mde", f"baseline {baseline} + mde {mde} must stay below 1 (a rate cannot exceed 100%)")
    return PlanDef(units, baseline, mde, power or 0.8)


def load_toml(path: Path) -> ExperimentDef:
    """Read and validate one TOML file; errors carry the file name as their source."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidDefinition([ValidationError(f"invalid TOML: {exc}", field="(file)")], str(path)) from exc
    except OSError as exc:
        raise InvalidDefinition([ValidationError(f"cannot read: {exc.strerror}", field="(file)")], str(path)) from exc
    return parse_definition(raw, source=str(path))
