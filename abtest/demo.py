"""Demo data for ``abtest serve --demo``: experiments in every state, a usability study and a
survey, with simulated traffic.

Units are assigned with the real assignment code, so the demo's split is what production would
produce; outcomes are drawn from a seeded generator with a known effect, so the results pages
have something true to show.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from abtest import pipeline
from abtest.accounts import create_user
from abtest.assignment import assign
from abtest.db import session_scope
from abtest.definitions import ExperimentDef, parse_experiment
from abtest.models import Experiment, User, utcnow
from abtest.store.events import event_row, write_events
from abtest.studies.demo import seed_demo_study
from abtest.studies.ia_demo import seed_demo_first_click, seed_demo_tree_test
from abtest.surveys.demo import seed_demo_survey

DEMO_EMAIL = "demo@abtest.local"
DEMO_PASSWORD = "demo-password"

CHECKOUT = {
    "key": "checkout-button", "name": "Green checkout button", "status": "running",
    "hypothesis": "A green checkout button raises purchases by 2 points",
    "analysis": "sequential", "plan": {"baseline": 0.10, "mde": 0.02},
    "variants": [{"key": "control", "weight": 0.5, "name": "Blue button"},
                 {"key": "green", "weight": 0.5, "name": "Green button"}],
    "metrics": [{"name": "purchase", "type": "conversion", "primary": True},
                {"name": "revenue", "type": "mean", "event": "purchase"},
                {"name": "checkout-time", "type": "duration", "task": "checkout"},
                {"name": "lcp", "type": "quantile", "vital": "LCP"},
                {"name": "good-lcp", "type": "threshold", "vital": "LCP"}],
}
ONBOARDING = {
    "key": "onboarding-copy", "name": "Shorter onboarding copy", "status": "running",
    "hypothesis": "Cutting the welcome text to one sentence raises sign-ups",
    "analysis": "fixed", "plan": {"units_per_variant": 1500},
    "variants": [{"key": "control", "weight": 0.34}, {"key": "short", "weight": 0.33},
                 {"key": "bullets", "weight": 0.33}],
    "metrics": [{"name": "signup", "type": "conversion", "primary": True}],
}
PRICING = {
    "key": "pricing-layout", "name": "Pricing table layout", "status": "draft",
    "hypothesis": "A three-column pricing table makes the middle plan the most chosen",
    "coverage": 0.5,
    "variants": [{"key": "control", "weight": 0.5}, {"key": "three-columns", "weight": 0.5}],
    "metrics": [{"name": "plan-selected", "type": "conversion", "event": "plan_selected"}],
}

# (conversion rate, mean purchase value, geometric-mean checkout seconds) per variant
_CHECKOUT_TRUTH = {"control": (0.10, 42.0, 64.0), "green": (0.125, 42.0, 55.0)}
_ONBOARDING_TRUTH = {"control": 0.20, "short": 0.28, "bullets": 0.21}
# LCP per page view, log-normal: geometric mean in ms per variant (the green button's web font
# slows the largest paint a little), a per-visitor factor (device, network) and per-view noise.
_LCP_GEO_MS = {"control": 2000.0, "green": 2150.0}
_LCP_VISITOR_SD, _LCP_VIEW_SD = 0.35, 0.4


DEVICES = ("desktop", "mobile", "tablet")


def _event(rng: random.Random, experiment_id: int, variant: str, unit: str, ts: datetime, type_: str,
           **fields: object) -> dict[str, object]:
    return event_row(experiment_id, str(uuid.UUID(int=rng.getrandbits(128))), type_, unit, ts, variant=variant,
                     **fields)


def _simulate(rng: random.Random, definition: ExperimentDef, experiment_id: int, units: int,
              days: int, outcome) -> Iterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    start = utcnow() - timedelta(days=days)
    for i in range(units):
        unit = f"visitor-{definition.key}-{i:05d}"
        result = assign(definition, unit)
        if result.variant is None:
            continue
        seen = start + timedelta(seconds=rng.uniform(0, days * 86400 - 3600))
        # The device the snippet would report, so the demo's results can be broken down by it.
        device = {"device": DEVICES[i % 7 % 3]}
        yield _event(rng, experiment_id, result.variant, unit, seen, type_="exposure", attributes=device)
        yield from outcome(rng, experiment_id, result.variant, unit, seen)


def _checkout_outcome(rng, experiment_id, variant, unit, seen):  # type: ignore[no-untyped-def]
    rate, mean_value, geo_seconds = _CHECKOUT_TRUTH[variant]
    # page views from their own stream, so adding them left the demo's other numbers as they were
    yield from _page_views(random.Random(f"lcp-{unit}"), experiment_id, variant, unit, seen)
    if rng.random() < 0.6:  # most visitors start the checkout task
        seconds = math.exp(rng.gauss(math.log(geo_seconds), 0.5))
        yield _event(rng, experiment_id, variant, unit, seen + timedelta(seconds=seconds), type_="task",
                     task="checkout", success=True, duration_ms=round(seconds * 1000))
    if rng.random() < rate:
        value = round(rng.expovariate(1 / mean_value), 2)
        yield _event(rng, experiment_id, variant, unit, seen + timedelta(minutes=rng.uniform(1, 30)),
                     type_="conversion", event="purchase", value=value)


def _page_views(rng, experiment_id, variant, unit, seen):  # type: ignore[no-untyped-def]
    """The LCP the snippet's page-speed module would report for each of the visitor's page views."""
    visitor = rng.gauss(0.0, _LCP_VISITOR_SD)
    for view in range(1 + int(rng.expovariate(1 / 2.0))):
        lcp = math.exp(math.log(_LCP_GEO_MS[variant]) + visitor + rng.gauss(0.0, _LCP_VIEW_SD))
        yield _event(rng, experiment_id, variant, unit, seen + timedelta(seconds=5 + 40 * view), type_="vital",
                     event="LCP", value=round(lcp, 1), attributes={"path": "/checkout" if view else "/",
                                                                   "navigation": "navigate"})


def _onboarding_outcome(rng, experiment_id, variant, unit, seen):  # type: ignore[no-untyped-def]
    if rng.random() < _ONBOARDING_TRUTH[variant]:
        yield _event(rng, experiment_id, variant, unit, seen + timedelta(minutes=rng.uniform(1, 10)),
                     type_="conversion", event="signup")


def seed_demo(engine: sa.Engine, seed: int = 2026, instance_path: Path | None = None) -> list[str]:
    """Seed the demo if the registry is empty; return the lines to show the person starting it.
    The first-click demo's screens go to the image store of ``instance_path`` (without one, that
    demo is left out)."""
    with Session(engine) as session:
        empty = session.exec(select(Experiment.id)).first() is None
        has_demo_user = session.exec(select(User.id).where(User.email == DEMO_EMAIL)).first() is not None
    if not empty:
        # Never add a known password to a registry that holds real work.
        return ([f"demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}"] if has_demo_user else
                ["demo: the database already holds experiments, so no demo data or demo login was added"])
    lines = []
    if empty:
        rng = random.Random(seed)
        plans = ((CHECKOUT, 4000, 14, _checkout_outcome), (ONBOARDING, 5400, 21, _onboarding_outcome),
                 (PRICING, 0, 0, None))
        with session_scope(engine) as session:
            for raw, units, days, outcome in plans:
                definition = parse_experiment(raw)
                row = pipeline.create(session, definition, "demo")
                if outcome is None:
                    continue
                assert row.id is not None
                write_events(session.connection(), list(_simulate(rng, definition, row.id, units, days, outcome)))
                lines.append(f"demo: {definition.key} with {units} simulated visitors")
            pipeline.transition(session, ONBOARDING["key"], "stopped", "demo")
            lines.append(f"demo: {PRICING['key']} (draft, no traffic yet)")
        lines.append(seed_demo_study(engine, rng))
        lines.append(seed_demo_tree_test(engine, rng))
        if instance_path is not None:
            lines.append(seed_demo_first_click(engine, rng, instance_path))
        lines.append(seed_demo_survey(engine, parse_experiment(CHECKOUT), 4000, 14))
    if not has_demo_user:
        with session_scope(engine) as session:
            create_user(session, DEMO_EMAIL, DEMO_PASSWORD)
    lines.append(f"demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
    return lines
