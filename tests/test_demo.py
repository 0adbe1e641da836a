"""Demo seeding: every lifecycle state, realistic traffic, and idempotent on a second start."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select

from abtest import pipeline
from abtest.demo import DEMO_EMAIL, seed_demo
from abtest.models import Event, User


def test_demo_seeds_once(engine, session):
    lines = seed_demo(engine)
    assert any("checkout-button" in line for line in lines)
    statuses = {d.key: d.status for d in [d for _r, d in pipeline.list_all(session)]}
    assert statuses == {"checkout-button": "running", "onboarding-copy": "stopped", "pricing-layout": "draft",
                        "checkout-study": "running", "checkout-csat": "running"}
    events = session.exec(select(sa.func.count()).select_from(Event)).one()
    assert events > 8000
    seed_demo(engine)
    assert session.exec(select(sa.func.count()).select_from(Event)).one() == events
    assert session.exec(select(User).where(User.email == DEMO_EMAIL)).one()


def test_demo_split_follows_assignment(engine, session):
    seed_demo(engine)
    table = Event.__table__
    checkout_id = pipeline.load(session, "checkout-button")[0].id
    query = sa.select(table.c.variant, sa.func.count(sa.distinct(table.c.unit))).where(
        table.c.type == "exposure", table.c.experiment_id == checkout_id).group_by(table.c.variant)
    counts = dict(session.connection().execute(query).all())
    assert set(counts) >= {"control", "green"}
    assert abs(counts["control"] - counts["green"]) < 300  # 4000 units split 50/50
