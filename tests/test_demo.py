"""Demo seeding: every lifecycle state, realistic traffic, and idempotent on a second start."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select

from abtest import pipeline
from abtest.demo import DEMO_EMAIL, seed_demo
from abtest.models import Event, User


def test_demo_seeds_once(engine, session, tmp_path):
    lines = seed_demo(engine, instance_path=tmp_path)
    assert any("checkout-button" in line for line in lines)
    statuses = {d.key: d.status for d in [d for _r, d in pipeline.list_all(session)]}
    assert statuses == {"checkout-button": "running", "onboarding-copy": "stopped", "pricing-layout": "draft",
                        "checkout-study": "running", "menu-tree-test": "running", "home-first-click": "running",
                        "checkout-csat": "running"}
    assert len(list((tmp_path / "images").iterdir())) == 2  # the first-click screens, in the image store
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


def test_demo_tree_test_and_first_click_show_real_differences(engine, tmp_path):
    """The simulated participants are built to find their way better in the proposed menu and to
    start a trial from the redesigned page: the demo's results must say so."""
    seed_demo(engine, instance_path=tmp_path)
    tree = pipeline.analyze(engine, "menu-tree-test")
    success = next(m for m in tree.metrics if m.name == "track-order-success")
    assert success.variants[1].value > success.variants[0].value and success.comparisons[0].significant
    assert {t["task"] for t in tree.details.tasks} == {"return-laptop", "track-order", "buy-charger"}
    click = pipeline.analyze(engine, "home-first-click")
    trial = next(m for m in click.metrics if m.name == "start-trial-success")
    assert trial.comparisons[0].significant and trial.variants[1].value > trial.variants[0].value
    assert all(d["clicks"] for t in click.details.tasks for d in t["designs"].values())
