"""The registry: the core of every test (key, name, lifecycle, variants) and its lifecycle rules.

Rules that protect any split live here, once, for every kind: keys are never reused, the
lifecycle only moves forward, and once launched a test's variants (a study's designs), weights
and seed are frozen, since changing them moves units between variants. What only one kind has
(an experiment's metrics, a study's tasks) is stored by that kind (:mod:`abtest.kinds`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, delete, select

from abtest.definitions import Core
from abtest.errors import Conflict, NotFound
from abtest.models import Experiment, Variant, utcnow
from abtest.store.columns import core_of

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


def check_core_update(old: Core, new: Core, variants_field: str = "variants", noun: str = "experiment") -> None:
    """The lifecycle move, and a launched test's frozen split (``variants_field`` names its
    variants as the kind's files do: ``variants``, ``designs``; ``noun`` the kind)."""
    check_transition(old.status, new.status)
    if old.status == "draft":
        return  # nothing has been measured yet: anything may change
    if old.variant_keys != new.variant_keys or old.weights != new.weights:
        raise Conflict(f"the {variants_field} and weights of a launched {noun} cannot change (it would move "
                       f"units between {variants_field}); stop it and start a new one", field=variants_field)
    if old.seed != new.seed:
        raise Conflict(f"the seed of a launched {noun} cannot change (it reshuffles every unit)", field="seed")


def get_row(session: Session, key: str) -> Experiment:
    row = session.exec(select(Experiment).where(Experiment.key == key)).first()
    if row is None:
        raise NotFound(f"no experiment with key {key!r}", field="experiment")
    return row


def find_row(session: Session, key: str) -> Experiment | None:
    return session.exec(select(Experiment).where(Experiment.key == key)).first()


def load_core(session: Session, row: Experiment) -> Core:
    return core_of(row, session.exec(select(Variant).where(Variant.experiment_id == row.id)).all())


def list_rows(session: Session, status: Iterable[str] | None = None) -> list[tuple[Experiment, Core]]:
    """Every stored test (optionally only some statuses) with its core, oldest first, in two queries."""
    query = select(Experiment).order_by(col(Experiment.id))
    if status is not None:
        query = query.where(col(Experiment.status).in_(list(status)))
    rows = session.exec(query).all()
    variants: dict[int, list[Variant]] = {r.id: [] for r in rows if r.id is not None}
    for v in session.exec(select(Variant).where(col(Variant.experiment_id).in_(list(variants)))).all():
        variants[v.experiment_id].append(v)
    return [(r, core_of(r, variants[r.id])) for r in rows if r.id is not None]


def check_new(session: Session, key: str) -> None:
    """Refuse a key that was ever used (archived ones included); reads only, so forms can ask it."""
    if session.exec(select(Experiment.id).where(Experiment.key == key)).first() is not None:
        raise Conflict(f"the key {key!r} is already used; keys are never reused", field="key")


def _fill(session: Session, row: Experiment, core: Core) -> None:
    assert row.id is not None
    row.name, row.hypothesis, row.seed = core.name, core.hypothesis, core.seed
    row.updated_at = utcnow()
    _set_status(row, core.status)
    session.add(row)
    session.exec(delete(Variant).where(col(Variant.experiment_id) == row.id))  # type: ignore[call-overload]
    session.add_all(Variant(experiment_id=row.id, position=i, key=v.key, weight=v.weight, name=v.name,
                            description=v.description) for i, v in enumerate(core.variants))


def create_row(session: Session, core: Core, kind: str) -> Experiment:
    """Store a new test's core; its key must never have been used."""
    check_new(session, core.key)
    row = Experiment(key=core.key, kind=kind, name=core.name, seed=core.seed, status="draft")
    session.add(row)
    session.flush()
    _fill(session, row, core)
    session.flush()
    return row


def update_row(session: Session, row: Experiment, core: Core) -> Experiment:
    """Replace a stored core (the caller has checked the kind's update rule)."""
    _fill(session, row, core)
    session.flush()
    return row


def _set_status(row: Experiment, status: str) -> None:
    if row.status == status:
        return
    row.status = status
    stamp = _STAMPS.get(status)
    if stamp:
        setattr(row, stamp, utcnow())


def transition(session: Session, key: str, status: str) -> Experiment:
    """Move one test to ``status`` (start, stop, archive) if the lifecycle allows it."""
    row = get_row(session, key)
    check_transition(row.status, status)
    _set_status(row, status)
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row
