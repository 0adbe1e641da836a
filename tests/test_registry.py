"""Registry rules on a real database (SQLite and PostgreSQL): lifecycle, frozen splits, sync."""

from __future__ import annotations

import pytest
from sqlmodel import select

from abtest import pipeline
from abtest.kinds import parse_definition
from abtest.errors import Conflict, NotFound
from abtest.models import Experiment, Variant


def definition(**changes):  # type: ignore[no-untyped-def]
    raw = {"key": "checkout-button", "status": "draft",
           "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}],
           "metrics": [{"name": "purchase", "type": "conversion"}]}
    raw.update(changes)
    return parse_definition(raw)


def test_create_and_read_back(session):
    stored = definition(namespace={"name": "n", "range": [0, 0.5]}, targeting={"country": ["DE"]},
                        plan={"units_per_variant": 100})
    pipeline.create(session, stored)
    session.commit()
    assert pipeline.load(session, "checkout-button")[1] == stored


def test_timestamps_are_timezone_aware_utc(session):
    pipeline.create(session, definition(status="running"))
    session.commit()
    row = session.exec(select(Experiment)).one()
    session.refresh(row)
    assert row.created_at.utcoffset().total_seconds() == 0
    assert row.started_at is not None and row.started_at.tzinfo is not None


def test_keys_are_never_reused(session):
    pipeline.create(session, definition())
    pipeline.transition(session, "checkout-button", "archived")
    with pytest.raises(Conflict) as err:
        pipeline.create(session, definition())
    assert err.value.field == "key"


def test_unknown_key_is_not_found(session):
    with pytest.raises(NotFound, match="no-such"):
        pipeline.load(session, "no-such")[1]


@pytest.mark.parametrize("path", [["running", "stopped", "archived"], ["archived"]])
def test_legal_lifecycle(session, path):
    pipeline.create(session, definition())
    for status in path:
        assert pipeline.transition(session, "checkout-button", status).status == status


@pytest.mark.parametrize("start, target", [
    ("draft", "stopped"), ("running", "draft"), ("running", "archived"), ("stopped", "running"),
    ("archived", "running"), ("archived", "draft"),
])
def test_illegal_lifecycle_moves_are_refused(session, start, target):
    pipeline.create(session, definition())
    for status in {"draft": [], "running": ["running"], "stopped": ["running", "stopped"],
                   "archived": ["archived"]}[start]:
        pipeline.transition(session, "checkout-button", status)
    with pytest.raises(Conflict) as err:
        pipeline.transition(session, "checkout-button", target)
    assert err.value.field == "status"
    assert f"cannot move from {start} to {target}" in err.value.message


@pytest.mark.parametrize("change, field", [
    ({"variants": [{"key": "control", "weight": 0.4}, {"key": "green", "weight": 0.6}]}, "variants"),
    ({"variants": [{"key": "control", "weight": 0.5}, {"key": "blue", "weight": 0.5}]}, "variants"),
    ({"seed": "other"}, "seed"),
    ({"namespace": {"name": "n", "range": [0, 0.5]}}, "namespace"),
    ({"coverage": 0.5}, "coverage"),
    ({"alpha": 0.2}, "alpha"),
    ({"analysis": "fixed", "plan": {"units_per_variant": 40}}, "analysis"),
    ({"plan": {"units_per_variant": 40}}, "plan"),
    # The deciding metric: swapped for another, retyped, or pointed at another event.
    ({"metrics": [{"name": "purchase", "type": "conversion"},
                  {"name": "signup", "type": "conversion", "primary": True}]}, "metrics"),
    ({"metrics": [{"name": "purchase", "type": "conversion", "event": "checkout"}]}, "metrics"),
    ({"metrics": [{"name": "purchase", "type": "mean", "event": "purchase"}]}, "metrics"),
])
def test_running_experiment_split_is_frozen(session, change, field):
    pipeline.create(session, definition(status="running", coverage=0.8))
    with pytest.raises(Conflict) as err:
        pipeline.update(session, definition(**{"status": "running", "coverage": 0.8, **change}))
    assert err.value.field == field


def test_running_experiment_coverage_may_rise_and_text_may_change(session):
    pipeline.create(session, definition(status="running", coverage=0.5))
    pipeline.update(session, definition(status="running", coverage=0.9, name="Renamed"))
    stored = pipeline.load(session, "checkout-button")[1]
    assert (stored.coverage, stored.name) == (0.9, "Renamed")


def test_a_secondary_metric_may_join_a_running_experiment(session):
    pipeline.create(session, definition(status="running"))
    more = [{"name": "purchase", "type": "conversion"}, {"name": "signup", "type": "conversion"}]
    pipeline.update(session, definition(status="running", metrics=more))
    stored = pipeline.load(session, "checkout-button")[1]
    assert [(m.name, m.primary) for m in stored.metrics] == [("purchase", True), ("signup", False)]


def test_draft_may_change_anything(session):
    pipeline.create(session, definition())
    changed = definition(variants=[{"key": "a", "weight": 0.2}, {"key": "b", "weight": 0.8}], seed="x")
    pipeline.update(session, changed)
    session.commit()
    assert pipeline.load(session, "checkout-button")[1] == changed
    assert len(session.exec(select(Variant)).all()) == 2


def test_sync_is_all_or_nothing(session):
    pipeline.create(session, definition(status="running"))
    session.commit()
    batch = [definition(key="new-one"), definition(status="running", coverage=0.5)]  # second is refused
    with pytest.raises(Conflict):
        pipeline.sync(session, batch)
    session.rollback()
    assert [d.key for d in [d for _r, d in pipeline.list_all(session)]] == ["checkout-button"]


def test_sync_reports_created_updated_unchanged(session):
    first = pipeline.sync(session, [definition(), definition(key="second-one")])
    assert [r.action for r in first] == ["created", "created"]
    again = pipeline.sync(session, [definition(status="running"), definition(key="second-one")])
    assert [r.action for r in again] == ["updated", "unchanged"]
    assert pipeline.load(session, "checkout-button")[1].status == "running"


def test_sync_refuses_the_same_key_twice(session):
    with pytest.raises(Conflict, match="defined twice"):
        pipeline.sync(session, [definition(), definition()])


def test_list_filters_by_status(session):
    pipeline.sync(session, [definition(), definition(key="live-one", status="running")])
    assert [d.key for d in [d for _r, d in pipeline.list_all(session, status=["running"])]] == ["live-one"]


def test_stopped_experiment_split_stays_frozen(session):
    pipeline.create(session, definition(status="running"))
    pipeline.transition(session, "checkout-button", "stopped")
    with pytest.raises(Conflict) as err:
        pipeline.update(session, definition(status="stopped",
                                            variants=[{"key": "control", "weight": 0.3}, {"key": "green", "weight": 0.7}]))
    assert err.value.field == "variants"


def test_every_change_is_in_the_history_with_who_and_what(session):
    pipeline.create(session, definition(), actor="ann@example.com")
    pipeline.update(session, definition(name="Renamed", coverage=0.5), actor="API token sk_ab12…")
    pipeline.transition(session, "checkout-button", "running", actor="ann@example.com")
    pipeline.update(session, definition(status="running", name="Renamed", coverage=0.9), actor="abtest sync")
    pipeline.update(session, definition(status="running", name="Renamed", coverage=0.9))  # no change: no entry
    pipeline.transition(session, "checkout-button", "stopped", actor="bob@example.com")
    session.commit()
    history = pipeline.history(session, "checkout-button")
    assert [(e["action"], e["actor"]) for e in history] == [
        ("stopped", "bob@example.com"), ("update", "abtest sync"), ("running", "ann@example.com"),
        ("update", "API token sk_ab12…"), ("create", "ann@example.com")]
    assert history[1]["changes"] == {"coverage": {"from": 0.5, "to": 0.9}}
    assert history[3]["changes"]["name"]["to"] == "Renamed" and history[3]["changes"]["coverage"] == {
        "from": 1.0, "to": 0.5}
    with pytest.raises(Conflict):  # a refused change leaves no trace
        pipeline.update(session, definition(status="stopped", name="Renamed", coverage=0.9, seed="other"))
    session.rollback()
    assert len(pipeline.history(session, "checkout-button")) == 5
