"""The experiment registry: create, update and move experiments through their lifecycle.

Rules that protect the statistics live here, once: a running experiment's variants, weights,
seed and namespace are frozen (changing them moves units between variants), coverage may only
rise (that adds units without moving anyone), and keys are never reused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, delete, select

from abtest.definitions import ExperimentDef, MetricDef, NamespaceDef, PlanDef, VariantDef
from abtest.errors import Conflict, NotFound
from abtest.models import Experiment, Metric, Variant, utcnow

# Allowed lifecycle moves; anything else is refused with the reason.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("running", "archived"),
    "running": ("stopped",),
    "stopped": ("archived",),
    "archived": (),
}
_STAMPS = {"running": "started_at", "stopped": "stopped_at", "archived": "archived_at"}


def check_transition(current: str, target: str) -> None:
    if current == target:
        return
    if target not in TRANSITIONS.get(current, ()):
        allowed = ", ".join(TRANSITIONS.get(current, ())) or "nothing (final state)"
        raise Conflict(f"cannot move from {current} to {target}; from {current} it can go to {allowed}",
                       field="status")


def check_update(old: ExperimentDef, new: ExperimentDef) -> None:
    """Refuse changes that would break a live split; the lifecycle move itself is checked too."""
    check_transition(old.status, new.status)
    if old.status == "draft":
        return  # nothing has been measured yet: anything may change
    if old.variant_keys != new.variant_keys or old.weights != new.weights:
        raise Conflict("variants and weights of a launched experiment cannot change "
                       "(it would move units between variants); stop it and start a new one",
                       field="variants")
    if old.seed != new.seed:
        raise Conflict("the seed of a launched experiment cannot change (it reshuffles every unit)", field="seed")
    if old.namespace != new.namespace:
        raise Conflict("the namespace of a launched experiment cannot change", field="namespace")
    # Changing how the result is judged after the data has been seen is p-hacking: the test's
    # alpha, mode and planned sample are fixed at launch.
    for name in ("alpha", "analysis", "plan"):
        if getattr(old, name) != getattr(new, name):
            raise Conflict(f"the {name} of a launched experiment cannot change: it was fixed at launch so "
                           "the results stay honest", field=name)
    if old.status == "running" and new.coverage < old.coverage:
        raise Conflict(f"coverage of a running experiment may only rise (now {old.coverage}); "
                       "lowering it would drop units already in the test", field="coverage")


def _row_to_definition(row: Experiment, variants: Sequence[Variant], metrics: Sequence[Metric]) -> ExperimentDef:
    namespace = None
    if row.namespace_name is not None:
        namespace = NamespaceDef(row.namespace_name, row.namespace_start or 0.0, row.namespace_end or 1.0)
    plan = PlanDef(**row.plan) if row.plan else None
    return ExperimentDef(
        key=row.key, name=row.name, hypothesis=row.hypothesis, kind=row.kind, status=row.status,
        coverage=row.coverage, seed=row.seed, analysis=row.analysis, alpha=row.alpha, cuped=row.cuped,
        namespace=namespace, plan=plan,
        targeting={k: tuple(v) for k, v in (row.targeting or {}).items()},
        variants=tuple(VariantDef(v.key, v.weight, v.name, v.description)
                       for v in sorted(variants, key=lambda v: v.position)),
        metrics=tuple(MetricDef(m.name, m.type, m.event, m.task, m.primary, m.days)
                      for m in sorted(metrics, key=lambda m: m.position)),
    )


def _fill_row(row: Experiment, definition: ExperimentDef) -> None:
    row.name = definition.name
    row.hypothesis = definition.hypothesis
    row.kind = definition.kind
    row.coverage = definition.coverage
    row.seed = definition.seed
    row.analysis = definition.analysis
    row.alpha = definition.alpha
    row.cuped = definition.cuped
    ns = definition.namespace
    row.namespace_name, row.namespace_start, row.namespace_end = (ns.name, ns.start, ns.end) if ns else (None, None, None)
    row.targeting = {k: list(v) for k, v in definition.targeting.items()}
    plan = definition.plan
    row.plan = None if plan is None else {
        "units_per_variant": plan.units_per_variant, "baseline": plan.baseline, "mde": plan.mde, "power": plan.power}
    row.updated_at = utcnow()


def _set_status(row: Experiment, status: str) -> None:
    if row.status == status:
        return
    row.status = status
    stamp = _STAMPS.get(status)
    if stamp:
        setattr(row, stamp, utcnow())


def _replace_children(session: Session, row: Experiment, definition: ExperimentDef) -> None:
    assert row.id is not None
    session.exec(delete(Variant).where(col(Variant.experiment_id) == row.id))  # type: ignore[call-overload]
    session.exec(delete(Metric).where(col(Metric.experiment_id) == row.id))  # type: ignore[call-overload]
    session.add_all(Variant(experiment_id=row.id, position=i, key=v.key, weight=v.weight, name=v.name,
                            description=v.description) for i, v in enumerate(definition.variants))
    session.add_all(Metric(experiment_id=row.id, position=i, name=m.name, type=m.type, event=m.event,
                           task=m.task, days=m.days, primary=m.primary) for i, m in enumerate(definition.metrics))


def get_row(session: Session, key: str) -> Experiment:
    row = session.exec(select(Experiment).where(Experiment.key == key)).first()
    if row is None:
        raise NotFound(f"no experiment with key {key!r}", field="experiment")
    return row


def load(session: Session, row: Experiment) -> ExperimentDef:
    variants = session.exec(select(Variant).where(Variant.experiment_id == row.id)).all()
    metrics = session.exec(select(Metric).where(Metric.experiment_id == row.id)).all()
    return _row_to_definition(row, variants, metrics)


def get(session: Session, key: str) -> ExperimentDef:
    """The stored definition of one experiment (raises NotFound naming the key)."""
    return load(session, get_row(session, key))


def list_definitions(session: Session, status: Iterable[str] | None = None) -> list[ExperimentDef]:
    """Every experiment (optionally only some statuses), in creation order, with two queries in all."""
    query = select(Experiment).order_by(col(Experiment.id))
    if status is not None:
        query = query.where(col(Experiment.status).in_(list(status)))
    rows = session.exec(query).all()
    ids = [r.id for r in rows]
    variants: dict[int, list[Variant]] = {i: [] for i in ids if i is not None}
    metrics: dict[int, list[Metric]] = {i: [] for i in ids if i is not None}
    for v in session.exec(select(Variant).where(col(Variant.experiment_id).in_(ids))).all():
        variants[v.experiment_id].append(v)
    for m in session.exec(select(Metric).where(col(Metric.experiment_id).in_(ids))).all():
        metrics[m.experiment_id].append(m)
    return [_row_to_definition(r, variants[r.id], metrics[r.id]) for r in rows if r.id is not None]


def check_new(session: Session, definition: ExperimentDef) -> None:
    """Refuse a key that was ever used (archived ones included); reads only, so forms can ask it."""
    if session.exec(select(Experiment.id).where(Experiment.key == definition.key)).first() is not None:
        raise Conflict(f"experiment key {definition.key!r} is already used; keys are never reused", field="key")


def create(session: Session, definition: ExperimentDef) -> Experiment:
    """Store a new experiment; its key must never have been used (archived ones included)."""
    check_new(session, definition)
    row = Experiment(key=definition.key, name=definition.name, seed=definition.seed, status="draft")
    _fill_row(row, definition)
    _set_status(row, definition.status)
    session.add(row)
    session.flush()
    _replace_children(session, row, definition)
    session.flush()
    return row


def update(session: Session, definition: ExperimentDef) -> Experiment:
    """Replace an experiment's definition, enforcing the lifecycle and the frozen-split rules."""
    row = get_row(session, definition.key)
    check_update(load(session, row), definition)
    _fill_row(row, definition)
    _set_status(row, definition.status)
    session.add(row)
    _replace_children(session, row, definition)
    session.flush()
    return row


def transition(session: Session, key: str, status: str) -> Experiment:
    """Move one experiment to ``status`` (start, stop, archive) if the lifecycle allows it."""
    row = get_row(session, key)
    check_transition(row.status, status)
    _set_status(row, status)
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class SyncResult:
    key: str
    action: str  # created | updated | unchanged


def plan_sync(session: Session, definitions: Sequence[ExperimentDef]) -> list[SyncResult]:
    """What a sync would do, raising on the first definition the registry refuses; writes nothing."""
    seen: set[str] = set()
    plan = []
    for definition in definitions:
        if definition.key in seen:
            raise Conflict(f"experiment {definition.key!r} is defined twice", field="key")
        seen.add(definition.key)
        row = session.exec(select(Experiment).where(Experiment.key == definition.key)).first()
        if row is None:
            plan.append(SyncResult(definition.key, "created"))
            continue
        current = load(session, row)
        check_update(current, definition)
        plan.append(SyncResult(definition.key, "unchanged" if current == definition else "updated"))
    return plan


def sync(session: Session, definitions: Sequence[ExperimentDef]) -> list[SyncResult]:
    """Create or update every definition in the caller's transaction: all of them or none."""
    results = plan_sync(session, definitions)
    by_key = {d.key: d for d in definitions}
    for result in results:
        if result.action == "created":
            create(session, by_key[result.key])
        elif result.action == "updated":
            update(session, by_key[result.key])
    return results
