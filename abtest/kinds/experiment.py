"""The A/B experiment kind: variants split by hash, metrics of the registered types, peek-safe or
fixed-horizon analysis. The registry stores its core; this stores the experiment's own columns
(coverage, analysis, namespace, targeting, plan) and its metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model
from pydantic import Field as PField
from sqlmodel import Session, col, delete, select

from abtest import analysis
from abtest.aggregates.base import AggregateSource, Request
from abtest.assignment import Assignment, assign
from abtest.checks import KEY_PATTERN, NAME_PATTERN, VARIANT_PATTERN
from abtest.config import Settings
from abtest.definitions import Core, ExperimentDef, parse_experiment
from abtest.errors import Conflict
from abtest.kinds.base import Kind
from abtest.metrics import METRIC_TYPES, PARAMS
from abtest.models import Experiment, Metric
from abtest.report import Report
from abtest.store.columns import experiment_of


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantDocument(_Shape):
    key: str = PField(pattern=VARIANT_PATTERN.pattern, max_length=64)
    weight: float = PField(gt=0, le=1, description="positive; all weights sum to 1")
    name: str = ""
    description: str = ""


def _param_description(name: str) -> str:
    """What each type that takes the parameter means by it."""
    return "; ".join(f"{t.name}: {p.description}" for t in METRIC_TYPES.values() for p in t.params if p.name == name)


MetricDocument = create_model(  # one field per parameter any registered metric type takes
    "MetricDocument", __base__=_Shape,
    name=(str, PField(pattern=NAME_PATTERN.pattern)),
    type=(Literal[tuple(METRIC_TYPES)], ...),  # type: ignore[valid-type]
    primary=(bool, False),
    **{p.name: ({"days": int, "number": float, "flag": bool}.get(p.kind, str) | None, PField(default=None, description=_param_description(p.name)))
       for p in PARAMS.values()},
)


class NamespaceDocument(_Shape):
    name: str
    range: tuple[float, float] = PField(description="[start, end) inside [0, 1]")


class PlanDocument(_Shape):
    units_per_variant: int | None = PField(default=None, ge=2)
    baseline: float | None = PField(default=None, gt=0, lt=1)
    mde: float | None = PField(default=None, gt=0)
    power: float = PField(default=0.8, gt=0, lt=1)


class ExperimentDocument(_Shape):
    """An A/B experiment (DESIGN §4.2). The parser enforces the rules with messages that name the
    field; this model declares the shape once for the OpenAPI document."""

    kind: Literal["experiment"] = "experiment"
    key: str = PField(pattern=KEY_PATTERN.pattern)
    name: str = ""
    hypothesis: str = ""
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
    metrics: list[MetricDocument] = PField(default_factory=list)  # type: ignore[valid-type]


class ExperimentKind(Kind):
    name = "experiment"
    noun = "experiment"
    variants_field = "variants"
    snippet = True
    schema = ExperimentDocument

    def parse(self, raw: Mapping[str, Any], source: str | None = None) -> ExperimentDef:
        return parse_experiment(raw, source)

    def check_update(self, old: ExperimentDef, new: ExperimentDef) -> None:
        """The core's rules, then: a launched experiment's namespace, analysis plan and primary
        metric are fixed, and a running one's coverage may only rise (that adds units without
        moving anyone)."""
        super().check_update(old, new)
        if old.status == "draft":
            return
        if old.namespace != new.namespace:
            raise Conflict("the namespace of a launched experiment cannot change", field="namespace")
        # Changing how the result is judged after the data has been seen is p-hacking: the test's
        # alpha, mode and planned sample are fixed at launch.
        for name in ("alpha", "analysis", "plan"):
            if getattr(old, name) != getattr(new, name):
                raise Conflict(f"the {name} of a launched experiment cannot change: it was fixed at launch so "
                               "the results stay honest", field=name)
        # Swapping the primary metric after seeing the data is the same fishing trip: the metric
        # that decides (its name, type and parameters) is fixed at launch too. Other metrics may
        # still be added or changed: they are secondary and labelled so.
        old_primary = next((m for m in old.metrics if m.primary), None)
        new_primary = next((m for m in new.metrics if m.primary), None)
        if old_primary != new_primary:
            was = f"{old_primary.name!r} ({old_primary.type})" if old_primary else "none"
            raise Conflict(f"the primary metric of a launched experiment cannot change (it is {was}): it was "
                           "fixed at launch so the results stay honest", field="metrics")
        if old.status == "running" and new.coverage < old.coverage:
            raise Conflict(f"coverage of a running experiment may only rise (now {old.coverage}); "
                           "lowering it would drop units already in the test", field="coverage")

    def store(self, session: Session, row: Experiment, definition: ExperimentDef) -> None:
        assert row.id is not None
        row.coverage, row.analysis, row.alpha, row.cuped = (definition.coverage, definition.analysis,
                                                            definition.alpha, definition.cuped)
        ns = definition.namespace
        row.namespace_name, row.namespace_start, row.namespace_end = (ns.name, ns.start, ns.end) if ns else (None,) * 3
        row.targeting = {k: list(v) for k, v in definition.targeting.items()}
        plan = definition.plan
        row.plan = None if plan is None else {"units_per_variant": plan.units_per_variant, "baseline": plan.baseline,
                                              "mde": plan.mde, "power": plan.power}
        session.add(row)
        session.exec(delete(Metric).where(col(Metric.experiment_id) == row.id))  # type: ignore[call-overload]
        session.add_all(Metric(experiment_id=row.id, position=i, name=m.name, type=m.type, primary=m.primary,
                               params={k: v for k, v in m.params if v is not None})
                        for i, m in enumerate(definition.metrics))
        session.flush()

    def load(self, session: Session, row: Experiment, core: Core) -> ExperimentDef:
        return experiment_of(row, core, session.exec(select(Metric).where(Metric.experiment_id == row.id)).all())

    def load_many(self, session: Session, stored: Sequence[tuple[Experiment, Core]]) -> list[ExperimentDef]:
        """Many at once (the snippet's config): one query for all their metrics."""
        metrics: dict[int, list[Metric]] = {row.id: [] for row, _core in stored if row.id is not None}
        for m in session.exec(select(Metric).where(col(Metric.experiment_id).in_(list(metrics)))).all():
            metrics[m.experiment_id].append(m)
        return [experiment_of(row, core, metrics[row.id]) for row, core in stored if row.id is not None]

    def requests(self, definition: ExperimentDef) -> list[Request]:
        return analysis.requests(definition)

    def analyze(self, definition: ExperimentDef, source: AggregateSource, now: datetime,
                by: str | None = None) -> Report:
        return analysis.analyze(definition, source, now, by)

    def assign(self, definition: ExperimentDef, unit: str, attributes: Mapping[str, object] | None = None,
               overrides: Mapping[str, str] | None = None) -> Assignment:
        return assign(definition, unit, attributes, overrides)

    def config_entry(self, d: ExperimentDef, settings: Settings) -> dict[str, Any]:
        entry: dict[str, Any] = {"key": d.key, "seed": d.seed, "coverage": d.coverage,
                                 "variants": [{"key": v.key, "weight": v.weight} for v in d.variants]}
        if d.namespace is not None:
            entry["namespace"] = {"name": d.namespace.name, "range": [d.namespace.start, d.namespace.end]}
        if d.targeting:
            entry["targeting"] = {k: list(v) for k, v in d.targeting.items()}
        # Page-speed metrics: the snippet loads abtest-vitals.js only when an experiment asks for one.
        vitals = sorted({m.param("vital") for m in d.metrics if m.param("vital")})
        if vitals:
            entry["vitals"] = vitals
        return entry

