"""Definitions (DESIGN §4.2): the core every kind of test shares, and the A/B experiment.

Every kind's definition *composes* a :class:`Core` (key, name, hypothesis, lifecycle status,
hash seed and its variants: an experiment's variants, a study's designs) with the fields only that
kind has; :class:`HasCore` gives read access to the core's fields. The registry stores the core,
each kind stores the rest (see :mod:`abtest.kinds`).

:func:`parse_experiment` turns a TOML, JSON or form table into an :class:`ExperimentDef`, naming
the field of every problem; metric parameters come from :data:`abtest.metrics.METRIC_TYPES`.
Nothing is silently fixed: weights that do not sum to 1 are an error, not a cue to normalise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from abtest.assignment import bucket_ranges
from abtest.attributes import MAX_VALUE_LENGTH, canonical_attribute
from abtest.attributes import NAME_PATTERN as ATTRIBUTE_NAME  # not checks.NAME_PATTERN (metric names)
from abtest.checks import (
    KEY_PATTERN,
    KEY_WORDS,
    NAME_PATTERN,
    NAME_WORDS,
    VARIANT_PATTERN,
    VARIANT_WORDS,
    Checker,
    root_table,
)
from abtest.storable import number_problem, text_problem
from abtest.metrics import METRIC_TYPES, PARAMS, MetricDef

STATUSES = ("draft", "running", "stopped", "archived")
ANALYSES = ("sequential", "fixed")
MAX_VARIANTS = 20
# Keys that would collide with the designer pages' own paths under /experiments/.
RESERVED_KEYS = frozenset({"new", "validate", "sample-size", "form"})
PLAN_FIELDS = ("units_per_variant", "baseline", "mde", "power")
# A planned sample beyond any real traffic (10¹² units per variant) is a typo, not a plan.
MAX_PLANNED = 10**12


@dataclass(frozen=True, slots=True)
class VariantDef:
    key: str
    weight: float
    name: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Core:
    """What every kind of test has: identity, lifecycle, and variants split by the same hash."""

    key: str
    name: str
    variants: tuple[VariantDef, ...]
    hypothesis: str = ""
    status: str = "draft"
    seed: str = ""

    @property
    def variant_keys(self) -> tuple[str, ...]:
        return tuple(v.key for v in self.variants)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(v.weight for v in self.variants)


class HasCore:
    """The core's fields, read through a kind's definition record (which holds ``core``)."""

    __slots__ = ()
    core: Core
    kind: ClassVar[str]

    @property
    def key(self) -> str:
        return self.core.key

    @property
    def name(self) -> str:
        return self.core.name

    @property
    def hypothesis(self) -> str:
        return self.core.hypothesis

    @property
    def status(self) -> str:
        return self.core.status

    @property
    def seed(self) -> str:
        return self.core.seed

    @property
    def variants(self) -> tuple[VariantDef, ...]:
        return self.core.variants

    @property
    def variant_keys(self) -> tuple[str, ...]:
        return self.core.variant_keys

    @property
    def weights(self) -> tuple[float, ...]:
        return self.core.weights


def parse_identity(c: Checker, raw: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """Key, name, hypothesis and status: the fields every kind shares, checked once."""
    key = c.text(raw, "key", "key", required=True)
    c.pattern(key, "key", KEY_PATTERN, KEY_WORDS)
    if key in RESERVED_KEYS:
        c.fail("key", f"{key!r} is reserved by the designer pages; choose another key")
    name = c.text(raw, "name", "name", default=key or "")
    c.length(name, "name", 200)
    hypothesis = c.text(raw, "hypothesis", "hypothesis", default="")
    status = c.text(raw, "status", "status", default="draft")
    c.choice(status, STATUSES, "status")
    return key or "", name or "", hypothesis or "", status or "draft"


# ---- the A/B experiment -------------------------------------------------------------------------------


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
class ExperimentDef(HasCore):
    kind: ClassVar[str] = "experiment"

    core: Core
    metrics: tuple[MetricDef, ...] = ()
    coverage: float = 1.0
    analysis: str = "sequential"
    alpha: float = 0.05
    namespace: NamespaceDef | None = None
    targeting: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cuped: bool = False
    plan: PlanDef | None = None
    # Derived once, because assignment reads it on every call.
    ranges: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", tuple(bucket_ranges(self.weights, self.coverage)))

    @property
    def primary_metric(self) -> MetricDef | None:
        return next((m for m in self.metrics if m.primary), None)

    def to_dict(self) -> dict[str, Any]:
        """The definition in the TOML/JSON shape of DESIGN §4.2 (round-trips through the parser)."""
        out: dict[str, Any] = {
            "kind": self.kind, "key": self.key, "name": self.name, "hypothesis": self.hypothesis,
            "status": self.status, "coverage": self.coverage, "seed": self.seed,
            "analysis": self.analysis, "alpha": self.alpha, "cuped": self.cuped,
        }
        if self.namespace is not None:
            out["namespace"] = {"name": self.namespace.name, "range": [self.namespace.start, self.namespace.end]}
        if self.targeting:
            out["targeting"] = {k: list(v) for k, v in self.targeting.items()}
        if self.plan is not None:
            out["plan"] = {k: getattr(self.plan, k) for k in PLAN_FIELDS if getattr(self.plan, k) is not None}
        out["variants"] = [
            {k: v for k, v in (("key", x.key), ("weight", x.weight), ("name", x.name),
                               ("description", x.description)) if v != ""}
            for x in self.variants
        ]
        out["metrics"] = [m.to_dict() for m in self.metrics]
        return out


TOP_FIELDS = {"key", "name", "hypothesis", "kind", "status", "coverage", "seed", "analysis", "alpha", "cuped",
              "namespace", "targeting", "plan", "variants", "metrics"}
_VARIANT_FIELDS = {"key", "weight", "name", "description"}
_METRIC_FIELDS = {"name", "type", "primary", *PARAMS}


def parse_experiment(raw: Any, source: str | None = None) -> ExperimentDef:
    """Validate an experiment table; raise :class:`~abtest.checks.InvalidDefinition` listing every problem."""
    raw = root_table(raw, source)
    c = Checker()
    c.unknown(raw, TOP_FIELDS, "")
    key, name, hypothesis, status = parse_identity(c, raw)
    analysis = c.text(raw, "analysis", "analysis", default="sequential")
    c.choice(analysis, ANALYSES, "analysis")
    seed = c.text(raw, "seed", "seed", default=key)
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

    variants = parse_variants(c, raw.get("variants"))
    metrics = _parse_metrics(c, raw.get("metrics", []))
    namespace = _parse_namespace(c, raw["namespace"]) if "namespace" in raw else None
    targeting = _parse_targeting(c, raw["targeting"]) if "targeting" in raw else {}
    plan = _parse_plan(c, raw["plan"]) if "plan" in raw else None

    if analysis == "fixed" and plan is None and "plan" not in raw:
        c.fail("plan", "a fixed-horizon analysis needs its planned sample: { units_per_variant = N } "
                       "or { baseline = p, mde = d }; or use analysis = \"sequential\"")
    c.raise_if_failed(source)
    return ExperimentDef(
        core=Core(key, name, variants, hypothesis, status, seed or ""), metrics=metrics,
        coverage=coverage or 1.0, analysis=analysis or "sequential", alpha=alpha or 0.05,
        namespace=namespace, targeting=targeting, cuped=cuped, plan=plan,
    )


def parse_variants(c: Checker, given: Any) -> tuple[VariantDef, ...]:
    raw = c.tables(given, "variants", "key and weight", required="at least two [[variants]] with key and weight")
    if raw is None:
        return ()
    if len(raw) < 2:
        c.fail("variants", f"needs at least 2 variants, got {len(raw)}")
    if len(raw) > MAX_VARIANTS:
        c.fail("variants", f"at most {MAX_VARIANTS} variants, got {len(raw)}")
    variants = []
    for where, item, vkey in c.keyed(raw, "variants", _VARIANT_FIELDS, "key", VARIANT_PATTERN, VARIANT_WORDS,
                                     "variant"):
        weight = c.number(item, "weight", f"{where}.weight", required=True)
        if weight is not None and weight <= 0:
            c.fail(f"{where}.weight", f"{weight} must be positive")
        vname = c.text(item, "name", f"{where}.name", default="")
        c.length(vname, f"{where}.name", 200)
        description = c.text(item, "description", f"{where}.description", default="")
        variants.append(VariantDef(vkey or "", weight or 0.0, vname or "", description or ""))
    c.weights_sum_to_one([v.weight for v in variants], "variants")
    return tuple(variants)


def _parse_metrics(c: Checker, given: Any) -> tuple[MetricDef, ...]:
    raw = c.tables(given, "metrics", "name and type")
    if raw is None:
        return ()
    metrics = []
    for where, item, mname in c.keyed(raw, "metrics", _METRIC_FIELDS, "name", NAME_PATTERN, NAME_WORDS, "metric"):
        mtype = c.text(item, "type", f"{where}.type", required=True)
        c.choice(mtype, tuple(METRIC_TYPES), f"{where}.type")
        metric_type = METRIC_TYPES.get(mtype or "")
        params: list[tuple[str, Any]] = []
        if metric_type is not None:
            taken = {p.name for p in metric_type.params}
            params = [(p.name, p.read(c, item, where, mname, metric_type.name)) for p in metric_type.params]
            for name in sorted(set(item) & set(PARAMS) - taken):
                owners = ", ".join(t.name for t in METRIC_TYPES.values() if name in {p.name for p in t.params})
                c.fail(f"{where}.{name}", f"{mtype} metrics take no {name}; only {owners} metrics do")
        primary = c.boolean(item, "primary", f"{where}.primary")
        metric = MetricDef(mname or "", mtype or "", primary, tuple(params))
        if metric_type is not None:
            metric_type.check(c, metric, where)
        metrics.append(metric)
    primaries = [m.name for m in metrics if m.primary]
    if len(primaries) > 1:
        c.fail("metrics", f"only one metric can be primary, got {', '.join(primaries)}")
    if metrics and not primaries:
        first = metrics[0]
        metrics[0] = MetricDef(first.name, first.type, True, first.params)
    return tuple(metrics)


def _parse_namespace(c: Checker, raw: Any) -> NamespaceDef | None:
    if not isinstance(raw, Mapping):
        c.fail("namespace", "must be a table: { name = \"...\", range = [start, end] }")
        return None
    c.unknown(raw, {"name", "range"}, "namespace.")
    name = c.text(raw, "name", "namespace.name", required=True)
    c.length(name, "namespace.name", 100)
    if name is not None and not name.strip():
        c.fail("namespace.name", "must not be empty")
    bounds = raw.get("range")
    if (not isinstance(bounds, list) or len(bounds) != 2
            or any(isinstance(b, bool) or not isinstance(b, (int, float)) or number_problem(b) for b in bounds)):
        c.fail("namespace.range", "must be two numbers [start, end], both finite")
        return None
    start, end = float(bounds[0]), float(bounds[1])
    if not 0 <= start < end <= 1:
        c.fail("namespace.range", f"[{start}, {end}] must satisfy 0 ≤ start < end ≤ 1")
    return NamespaceDef(name or "", start, end)


def _parse_targeting(c: Checker, raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        c.fail("targeting", "must be a table of attribute = value or [values]")
        return {}
    rules: dict[str, tuple[str, ...]] = {}
    for attr, allowed in raw.items():
        where = f"targeting.{attr}"
        values = allowed if isinstance(allowed, list) else [allowed]
        if not isinstance(attr, str) or not ATTRIBUTE_NAME.fullmatch(attr):
            # The same rule /assign and the snippet apply to the attributes they send.
            c.fail(where, "attribute names are 1-64 letters, digits, _ . - starting with a letter or _")
            continue
        if not values:
            c.fail(where, "must list at least one value")
            continue
        bad = [v for v in values if isinstance(v, float) or not isinstance(v, (str, int, bool))]
        if bad:
            c.fail(where, f"values must be strings, integers or booleans, not {bad[0]!r}")
            continue
        texts = tuple(canonical_attribute(v) for v in values)
        long = [t for t in texts if len(t) > MAX_VALUE_LENGTH]
        if long:
            c.fail(where, f"values are at most {MAX_VALUE_LENGTH} characters (a visitor's cannot be longer), "
                          f"got {len(long[0])}")
            continue
        problems = [p for p in map(text_problem, texts) if p]
        if problems:  # a visitor's attribute with one is refused, so the rule could never match
            c.fail(where, f"values {problems[0]}")
            continue
        rules[attr] = texts
    return rules


def _parse_plan(c: Checker, raw: Any) -> PlanDef | None:
    if not isinstance(raw, Mapping):
        c.fail("plan", "must be a table: { units_per_variant = N } or { baseline = p, mde = d }")
        return None
    c.unknown(raw, set(PLAN_FIELDS), "plan.")
    units = raw.get("units_per_variant")
    if units is not None and (isinstance(units, bool) or not isinstance(units, int) or not 2 <= units <= MAX_PLANNED):
        c.fail("plan.units_per_variant", f"{_shown(units)} must be an integer of at least 2 and at most {MAX_PLANNED:,}")
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


def _shown(value: Any) -> str:
    """A value as an error message quotes it: a 400-digit number is cut, not printed whole."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"
