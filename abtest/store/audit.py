"""The audit log of each test: one row per create, edit and lifecycle move, with who and what.

Edits record only the fields that changed, each as ``{"from": …, "to": …}`` in the definition
document's own terms (the TOML/API shape), so the history reads like the definitions did.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from abtest.models import AuditEntry, Experiment


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The top-level fields of two definition documents that differ: {field: {"from", "to"}}."""
    return {name: {"from": old.get(name), "to": new.get(name)}
            for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)}


def record(session: Session, row: Experiment, action: str, actor: str = "",
           changes: dict[str, Any] | None = None) -> None:
    """Add one entry in the caller's transaction (it commits or rolls back with the change)."""
    assert row.id is not None
    session.add(AuditEntry(experiment_id=row.id, actor=actor[:200], action=action, changes=changes or None))


def history(session: Session, row: Experiment) -> list[AuditEntry]:
    """Newest first."""
    query = select(AuditEntry).where(AuditEntry.experiment_id == row.id)
    return list(session.exec(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())).all())  # type: ignore[attr-defined]
