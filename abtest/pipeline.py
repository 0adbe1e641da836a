"""The one pipeline every kind of test runs through: store, edit, sync, lifecycle, load-or-404
and results. The registry keeps the core; ``KINDS[row.kind]`` does what differs per kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from abtest.aggregates.rollup import Refreshed
from abtest.aggregates.base import AggregateSource
from abtest.aggregates.sql import SqlSource
from abtest.errors import Conflict
from abtest.kinds import KINDS
from abtest.models import Experiment
from abtest.report import Report
from abtest.store import audit, registry
from abtest.store.target import clickhouse_of


def definition_of(session: Session, row: Experiment) -> Any:
    return KINDS[row.kind].load(session, row, registry.load_core(session, row))


def load(session: Session, key: str) -> tuple[Experiment, Any]:
    """The stored row and its whole definition, of whatever kind (NotFound naming the key)."""
    row = registry.get_row(session, key)
    return row, definition_of(session, row)


def list_all(session: Session, status: Iterable[str] | None = None,
             kinds: Iterable[str] | None = None) -> list[tuple[Experiment, Any]]:
    """Every stored test (optionally only some statuses and kinds), oldest first, a few queries in all."""
    wanted = set(kinds) if kinds is not None else set(KINDS)
    stored = [(row, core) for row, core in registry.list_rows(session, status) if row.kind in wanted]
    definitions: dict[int, Any] = {}
    for name in wanted:
        mine = [(row, core) for row, core in stored if row.kind == name]
        definitions.update({row.id: d for (row, _c), d in zip(mine, KINDS[name].load_many(session, mine), strict=True)})
    return [(row, definitions[row.id]) for row, _core in stored]


def check_new(session: Session, definition: Any) -> None:
    registry.check_new(session, definition.key)


def check_update(old: Any, new: Any) -> None:
    """The rule an edit must pass (read-only, so forms ask it while the designer types)."""
    if old.kind != new.kind:
        raise Conflict(f"{old.key!r} is a stored {KINDS[old.kind].noun}; it cannot become a "
                       f"{KINDS[new.kind].noun} (keys are never reused, so choose a new key)", field="kind")
    KINDS[new.kind].check_update(old, new)


def create(session: Session, definition: Any, actor: str = "") -> Experiment:
    """Store a new test of any kind in the caller's transaction (and say who, in its history)."""
    row = registry.create_row(session, definition.core, definition.kind)
    KINDS[definition.kind].store(session, row, definition)
    launched = {"status": {"from": None, "to": definition.status}} if definition.status != "draft" else None
    audit.record(session, row, "create", actor, launched)
    return row


def update(session: Session, definition: Any, actor: str = "") -> Experiment:
    """Replace a stored definition, enforcing its kind's update rule, in the caller's transaction;
    the history keeps each changed field's before and after."""
    row, current = load(session, definition.key)
    check_update(current, definition)
    kind = KINDS[definition.kind]
    changes = audit.changed_fields(kind.document(current), kind.document(definition))
    registry.update_row(session, row, definition.core)
    kind.store(session, row, definition)
    if changes:
        audit.record(session, row, "update", actor, changes)
    return row


def transition(session: Session, key: str, status: str, actor: str = "") -> Experiment:
    """Start, stop or archive a test of any kind, if the lifecycle allows it."""
    row = registry.transition(session, key, status)
    audit.record(session, row, status, actor)
    return row


def history(session: Session, key: str) -> list[dict[str, Any]]:
    """A test's audit log, newest first, as the API and the pages show it."""
    row = registry.get_row(session, key)
    return [{"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "changes": e.changes or {}}
            for e in audit.history(session, row)]


@dataclass(frozen=True, slots=True)
class SyncResult:
    key: str
    action: str  # created | updated | unchanged


def plan_sync(session: Session, definitions: Sequence[Any]) -> list[SyncResult]:
    """What a sync would do, raising on the first definition that would be refused; writes nothing."""
    seen: set[str] = set()
    plan = []
    for definition in definitions:
        if definition.key in seen:
            raise Conflict(f"{definition.key!r} is defined twice", field="key")
        seen.add(definition.key)
        row = registry.find_row(session, definition.key)
        if row is None:
            plan.append(SyncResult(definition.key, "created"))
            continue
        current = definition_of(session, row)
        check_update(current, definition)
        plan.append(SyncResult(definition.key, "unchanged" if current == definition else "updated"))
    return plan


def sync(session: Session, definitions: Sequence[Any], actor: str = "abtest sync") -> list[SyncResult]:
    """Create or update every definition in the caller's transaction: all of them or none."""
    results = plan_sync(session, definitions)
    by_key = {d.key: d for d in definitions}
    for result in sorted(results, key=lambda r: KINDS[by_key[r.key].kind].sync_order):
        if result.action == "created":
            create(session, by_key[result.key], actor)
        elif result.action == "updated":
            update(session, by_key[result.key], actor)
    return results


def document(row: Experiment, definition: Any) -> dict[str, Any]:
    """A stored definition as the API returns it: its TOML/JSON shape plus lifecycle timestamps."""
    out = KINDS[definition.kind].document(definition)
    for stamp in ("created_at", "updated_at", "started_at", "stopped_at", "archived_at"):
        value = getattr(row, stamp)
        out[stamp] = value.isoformat() if value else None
    return out


def source(engine: sa.Engine) -> AggregateSource:
    """Where the aggregates come from: ClickHouse when the events live there, else the registry."""
    clickhouse = clickhouse_of(engine)
    if clickhouse is None:
        return SqlSource(engine)
    from abtest.clickhouse.source import ClickHouseSource

    return ClickHouseSource(engine, clickhouse)


def results(engine: sa.Engine, definition: Any, by: str | None = None, now: datetime | None = None) -> Report:
    """The results document of a loaded definition, from the aggregates where its events are."""
    return KINDS[definition.kind].analyze(definition, source(engine), now or datetime.now(UTC), by)


def analyze(engine: sa.Engine, key: str, by: str | None = None, now: datetime | None = None) -> Report:
    """Load ``key`` (NotFound naming it) and compute its results now."""
    with Session(engine) as session:
        _row, definition = load(session, key)
    return results(engine, definition, by, now)


def attribute_names(engine: sa.Engine, definition: Any) -> list[str]:
    """What the results of ``definition`` can be broken down by (attributes its units carried)."""
    return source(engine).attribute_names(definition.key, KINDS[definition.kind].requests(definition))


def refresh_rollups(engine: sa.Engine, keys: Sequence[str] | None = None) -> list[tuple[str, Refreshed]]:
    """Bring the per-unit rollups of these tests (every A/B experiment by default) up to date now.

    Reports do it themselves; this is for after loading or migrating many events, so the first
    results page does not pay the build."""
    with Session(engine) as session:
        stored = list_all(session) if keys is None else [load(session, key) for key in keys]
    answering = source(engine)
    wanted = [(d.key, KINDS[d.kind].requests(d)) for _row, d in stored]
    return [(key, answering.refresh(key, requests)) for key, requests in wanted  # type: ignore[attr-defined]
            if keys is not None or answering.rolls_up(requests)]  # type: ignore[attr-defined]
