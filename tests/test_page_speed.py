"""Page speed as an A/B metric, from stored vital events to the report, on every backend.

The expected numbers are computed here from the same simulated page views with numpy
(``np.quantile(..., method="inverted_cdf")`` is R's ``quantile(type = 1)``) and by direct sums for
the per-visitor counts, independently of the SQL: every backend must give them exactly.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from abtest import pipeline
from abtest.definitions import parse_experiment
from abtest.checks import InvalidDefinition
from abtest.kinds import parse_definition
from abtest.pipeline import analyze
from abtest.store.events import write_events
from tests.conftest import BACKENDS_WITH_CHDB, backend_engine

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
METRICS = [{"name": "purchase", "type": "conversion", "primary": True},
           {"name": "lcp", "type": "quantile", "vital": "LCP"},
           {"name": "lcp-visitors", "type": "quantile", "vital": "LCP", "over": "units", "quantile": 0.5},
           {"name": "good-lcp", "type": "threshold", "vital": "LCP"}]


@pytest.fixture(params=BACKENDS_WITH_CHDB)
def engine(request):  # type: ignore[no-untyped-def]
    yield from backend_engine(request)


def row(experiment_id: int, type_: str, unit: str, variant: str | None, ts: datetime, **fields):  # type: ignore[no-untyped-def]
    out = {"event_id": str(uuid.uuid4()), "type": type_, "experiment_id": experiment_id, "variant": variant,
           "unit": unit, "event": None, "value": None, "task": None, "success": None, "duration_ms": None,
           "questionnaire": None, "answers": None, "attributes": None, "forced": False, "ts": ts, "received_at": ts}
    out.update(fields)
    return out


def seed(engine, experiment_id: int, rng: np.random.Generator) -> dict[str, dict[str, list[float]]]:  # type: ignore[no-untyped-def]
    """Visitors with 1–6 page views each (log-normal LCP with a visitor effect); returns the
    values every metric must count, per variant and visitor."""
    rows, counted = [], {"control": {}, "green": {}}
    for arm, geo in (("control", 2000.0), ("green", 2300.0)):
        for i in range(150):
            unit = f"{arm}-{i}"
            seen = T0 + timedelta(minutes=i)
            rows.append(row(experiment_id, "exposure", unit, arm, seen,
                            attributes={"device": "mobile" if i % 2 else "desktop"}))
            visitor = rng.normal(0, 0.3)
            values = [float(np.round(np.exp(np.log(geo) + visitor + rng.normal(0, 0.4)), 1))
                      for _ in range(1 + i % 6)]
            counted[arm][unit] = values
            for k, value in enumerate(values):
                rows.append(row(experiment_id, "vital", unit, arm, seen + timedelta(seconds=3 + k), event="LCP",
                                value=value, attributes={"path": "/", "navigation": "navigate"}))
            # not counted: before the exposure, another vital, a conversion's value
            rows.append(row(experiment_id, "vital", unit, arm, seen - timedelta(seconds=1), event="LCP", value=1.0))
            rows.append(row(experiment_id, "vital", unit, arm, seen + timedelta(seconds=2), event="FCP", value=1.0))
    for i in range(4):  # QA overrides: excluded with their page views
        rows.append(row(experiment_id, "exposure", f"qa-{i}", "green", T0, forced=True))
        rows.append(row(experiment_id, "vital", f"qa-{i}", "green", T0 + timedelta(seconds=1), event="LCP", value=1.0))
    with engine.begin() as conn:
        write_events(conn, rows)
    return counted


def create(engine) -> int:  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    raw = {"key": "speed", "status": "running", "analysis": "fixed", "plan": {"units_per_variant": 100},
           "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}], "metrics": METRICS}
    with Session(engine) as session:
        experiment = pipeline.create(session, parse_definition(raw))
        session.commit()
        return int(experiment.id)


def metric(report, name):  # type: ignore[no-untyped-def]
    return next(m for m in report.metrics if m.name == name)


def test_quantiles_and_good_share_from_stored_page_views(engine):
    counted = seed(engine, create(engine), np.random.default_rng(16))
    report = analyze(engine, "speed")

    lcp = metric(report, "lcp")
    assert lcp.reason is None, lcp.reason
    for variant in lcp.variants:
        views = np.concatenate([np.array(v) for v in counted[variant.variant].values()])
        assert variant.n == 150  # visitors; their page views are the observations
        assert variant.value == np.quantile(views, 0.75, method="inverted_cdf")
        low, high = variant.ci
        assert low < variant.value < high
    assert lcp.unit == "ms (p75)" and "Deng" in lcp.method
    effect = lcp.comparisons[0]
    assert effect.effect == pytest.approx(lcp.variants[1].value - lcp.variants[0].value)
    assert effect.relative == pytest.approx(lcp.variants[1].value / lcp.variants[0].value - 1)
    assert not report.to_dict()["metrics"][1].get("reason")
    assert [v for v, _points in lcp.distribution] == ["control", "green"]
    assert lcp.marks == (("good", 2500.0), ("poor", 4000.0))

    medians = metric(report, "lcp-visitors")
    for variant in medians.variants:
        own = np.array([np.quantile(v, 0.5, method="inverted_cdf") for v in counted[variant.variant].values()])
        assert variant.value == np.quantile(own, 0.5, method="inverted_cdf")

    good = metric(report, "good-lcp")
    for variant in good.variants:
        views = np.concatenate([np.array(v) for v in counted[variant.variant].values()])
        assert variant.value == pytest.approx(np.mean(views <= 2500.0), rel=1e-12)
    assert good.unit == "rate"

    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    speed = next(m for m in document["metrics"] if m["name"] == "lcp")
    assert set(speed["distribution"]) == {"control", "green"}
    assert speed["marks"] == [{"label": "good", "value": 2500.0}, {"label": "poor", "value": 4000.0}]


def test_every_backend_gives_the_same_page_speed_numbers(engine, tmp_path):
    """The same simulated page views give the numbers stored in this test's first run on SQLite
    (the reference backend); PostgreSQL and ClickHouse must match them number for number."""
    seed(engine, create(engine), np.random.default_rng(7))
    report = analyze(engine, "speed")
    numbers = {m.name: ([(v.n, v.value, v.ci) for v in m.variants],
                        [(c.effect, c.ci, c.p_value) for c in m.comparisons]) for m in report.metrics[1:]}
    sqlite_numbers = _sqlite_reference(tmp_path)
    assert numbers == sqlite_numbers


def _sqlite_reference(tmp_path):  # type: ignore[no-untyped-def]
    from abtest.db import make_engine, upgrade

    reference = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade(reference)
    try:
        seed(reference, create(reference), np.random.default_rng(7))
        report = analyze(reference, "speed")
        return {m.name: ([(v.n, v.value, v.ci) for v in m.variants],
                         [(c.effect, c.ci, c.p_value) for c in m.comparisons]) for m in report.metrics[1:]}
    finally:
        reference.dispose()


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"type": "quantile"}, "metrics[0].vital", "exactly one"),
    ({"type": "quantile", "vital": "LCP", "event": "purchase"}, "metrics[0].vital", "exactly one"),
    ({"type": "quantile", "vital": "LCD"}, "metrics[0].vital", "not one of"),
    ({"type": "quantile", "vital": "LCP", "quantile": 1.5}, "metrics[0].quantile", "between 0 and 1"),
    ({"type": "quantile", "vital": "LCP", "over": "sessions"}, "metrics[0].over", "not one of"),
    ({"type": "quantile", "vital": "LCP", "lower_is_better": "yes"}, "metrics[0].lower_is_better", "true or false"),
    ({"type": "threshold", "event": "purchase"}, "metrics[0].threshold", "needs its threshold"),
    ({"type": "conversion", "vital": "LCP"}, "metrics[0].vital", "only quantile, threshold metrics"),
])
def test_page_speed_definitions_name_the_bad_field(fields, field, words):
    raw = {"key": "speed", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
           "metrics": [{"name": "lcp", **fields}]}
    with pytest.raises(InvalidDefinition) as caught:
        parse_experiment(raw)
    problems = {e.field: e.message for e in caught.value.errors}
    assert field in problems and words in problems[field], problems


def test_vitals_are_lower_is_better_and_event_quantiles_higher_unless_told():
    from abtest.metrics import METRIC_TYPES

    d = parse_experiment({"key": "speed", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
                          "metrics": [{"name": "lcp", "type": "quantile", "vital": "LCP"},
                                      {"name": "basket", "type": "quantile", "event": "purchase"},
                                      {"name": "wait", "type": "quantile", "event": "wait", "lower_is_better": True}]})
    kind = METRIC_TYPES["quantile"]
    assert [kind.prefers_higher(m) for m in d.metrics] == [False, True, False]
    assert d.metrics[0].to_dict() == {"name": "lcp", "type": "quantile", "vital": "LCP", "primary": True}



def test_a_breakdown_leaves_page_speed_metrics_whole_and_says_so(engine):
    experiment_id = create(engine)
    seed(engine, experiment_id, np.random.default_rng(3))
    report = analyze(engine, "speed", by="device")
    assert [s.segment for s in metric(report, "purchase").segments] == ["desktop", "mobile"]
    assert metric(report, "lcp").segments == () and metric(report, "lcp").variants[0].value is not None


def test_the_rank_r_float_arithmetic_would_miss_is_still_rs(engine):
    """0.7 · 10 is 7.000000000000001 in floating point: a store's ⌈q·n⌉ takes rank 8; R's
    quantile(type = 1) — and the report — take rank 7 (tests/stats/reference.R: quantile1_0.7)."""
    from sqlmodel import Session

    raw = {"key": "fuzz", "status": "running", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
           "metrics": [{"name": "lcp", "type": "quantile", "vital": "LCP", "quantile": 0.7}]}
    with Session(engine) as session:
        experiment_id = int(pipeline.create(session, parse_definition(raw)).id)
        session.commit()
    lcp = [2310, 1830, 4120, 990, 2750, 1460, 3300, 2050, 1720, 5600]
    rows = []
    for arm in ("a", "b"):
        for i, value in enumerate(lcp):
            rows.append(row(experiment_id, "exposure", f"{arm}{i}", arm, T0))
            rows.append(row(experiment_id, "vital", f"{arm}{i}", arm, T0 + timedelta(seconds=1), event="LCP",
                            value=float(value)))
    with engine.begin() as conn:
        write_events(conn, rows)
    report = analyze(engine, "fuzz")
    assert [v.value for v in report.metrics[0].variants] == [2750.0, 2750.0]
