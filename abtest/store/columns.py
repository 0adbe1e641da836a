"""Stored columns -> definitions, for rows of any shape: the ORM's objects (the registry, the
experiment kind) and the plain rows of :mod:`abtest.store.quick`'s driver-level read alike. One
place turns columns into a definition, so the two reads cannot drift apart. No SQLAlchemy here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from abtest.definitions import Core, ExperimentDef, NamespaceDef, PlanDef, VariantDef
from abtest.metrics import METRIC_TYPES, MetricDef


def core_of(row: Any, variants: Sequence[Any]) -> Core:
    """A test's core from its ``experiments`` row and its ``variants`` rows (any order)."""
    return Core(key=row.key, name=row.name, hypothesis=row.hypothesis, status=row.status, seed=row.seed,
                variants=tuple(VariantDef(v.key, v.weight, v.name, v.description)
                               for v in sorted(variants, key=lambda v: v.position)))


def metric_of(row: Any) -> MetricDef:
    """A stored metric, its parameters in its type's declared order."""
    params = row.params or {}
    kind = METRIC_TYPES.get(row.type)
    names = [p.name for p in kind.params] if kind else sorted(params)
    return MetricDef(row.name, row.type, bool(row.primary), tuple((n, params.get(n)) for n in names))


def experiment_of(row: Any, core: Core, metrics: Sequence[Any]) -> ExperimentDef:
    """An experiment from its ``experiments`` row, its core and its ``metrics`` rows (any order)."""
    namespace = None
    if row.namespace_name is not None:
        namespace = NamespaceDef(row.namespace_name, row.namespace_start or 0.0, row.namespace_end or 1.0)
    return ExperimentDef(
        core=core, coverage=row.coverage, analysis=row.analysis, alpha=row.alpha, cuped=bool(row.cuped),
        namespace=namespace, plan=PlanDef(**row.plan) if row.plan else None,
        targeting={k: tuple(v) for k, v in (row.targeting or {}).items()},
        metrics=tuple(metric_of(m) for m in sorted(metrics, key=lambda m: m.position)),
    )
