"""Issue 14 end to end, on SQLite and PostgreSQL: per-unit values near 1e9 whose spread is a few
units (and log times whose spread is 1e-5 of their mean) keep every digit of their variance.

Sums of x and x² would cancel there (Σx² − (Σx)²/n: two numbers near 1e21 whose difference is
about n); the rollups sum around a shift near the data instead. Every number is checked against
scipy on the raw per-unit values: the values less 1e9 (exact) for full precision, since an ulp of
1e9 is 1.2e-7 (interval endpoints near 1e9 are compared to 1e-6).
"""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from abtest import pipeline
from abtest.kinds import parse_definition
from abtest.store.events import write_events

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BIG = 1e9
DEVICES = ("desktop", "mobile", "tablet")


def _row(experiment_id: int, type_: str, unit: str, variant: str, ts: datetime, **fields):  # type: ignore[no-untyped-def]
    row = {"event_id": str(uuid.uuid4()), "type": type_, "experiment_id": experiment_id, "variant": variant,
           "unit": unit, "event": None, "value": None, "task": None, "success": None, "duration_ms": None,
           "questionnaire": None, "answers": None, "forced": False, "ts": ts, "received_at": ts, "attributes": None}
    row.update(fields)
    return row


def create(session, cuped: bool = False) -> int:  # type: ignore[no-untyped-def]
    row = pipeline.create(session, parse_definition({
        "key": "big", "status": "running", "analysis": "fixed", "cuped": cuped, "plan": {"units_per_variant": 50},
        "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}],
        "metrics": [{"name": "revenue", "type": "mean", "event": "purchase", "primary": True},
                    {"name": "refunds", "type": "mean", "event": "refund"},
                    {"name": "time", "type": "duration", "task": "checkout"}]}))
    session.commit()
    return row.id


def seed(engine, experiment_id: int, units: int = 300) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """Events, and per unit its variant, device, revenue after and before exposure, refunds and
    log seconds, read by hand. Values are multiples of 1/8 so that their sums are exact."""
    rng = random.Random(14)
    rows, truth = [], {}
    for i in range(units):
        unit, variant = f"u{i:04d}", ("control", "green")[i % 2]
        device = DEVICES[rng.randrange(3)] if i % 11 else None
        seen = T0 + timedelta(minutes=i)
        rows.append(_row(experiment_id, "exposure", unit, variant, seen,
                         attributes={"device": device} if device else {"beta": "true"}))
        pre = BIG - 50 + (i % 13) / 4
        rows.append(_row(experiment_id, "conversion", unit, variant, seen - timedelta(hours=1), event="purchase",
                         value=pre))  # before exposure: CUPED's covariate
        # two purchases of at most 1e9 each (the API's limit), 1e9 + a few units in all
        noise = rng.randrange(40) / 8 + (pre - BIG + 50) / 2 + (0.75 if variant == "green" else 0.0)
        for value in (6e8, 4e8 + noise):
            rows.append(_row(experiment_id, "conversion", unit, variant, seen + timedelta(minutes=5),
                             event="purchase", value=value))
        refund = 0.0
        if rng.random() < 0.25:  # most units never refund: their value is 0
            refund = BIG + i % 4
            rows.append(_row(experiment_id, "conversion", unit, variant, seen + timedelta(minutes=9), event="refund",
                             value=refund))
        log_time = None
        if rng.random() < 0.85:
            ms = 1e6 * math.exp(1e-5 * (rng.gauss(0, 1) - (0.6 if variant == "green" else 0.0)))
            rows.append(_row(experiment_id, "task", unit, variant, seen + timedelta(minutes=2), task="checkout",
                             success=True, duration_ms=ms))
            rows.append(_row(experiment_id, "task", unit, variant, seen + timedelta(minutes=3), task="checkout",
                             success=False, duration_ms=5e6))  # failed attempts are not timed
            log_time = math.log(ms / 1000.0)
        truth[unit] = {"variant": variant, "device": device or "(not set)", "revenue": 6e8 + (4e8 + noise),
                       "pre": pre, "refunds": refund, "log_time": log_time}
    with engine.begin() as conn:
        write_events(conn, rows)
    return truth


def metric(report, name):  # type: ignore[no-untyped-def]
    return next(m for m in report.metrics if m.name == name)


def level(c) -> float:  # type: ignore[no-untyped-def]
    """The confidence level of a comparison's interval: 95 %, or where Holm adjusted the decision
    (segments of a breakdown) the level that decision leaves, 1 − α·p/p_Holm."""
    return 1 - 0.05 * c.p_value / c.p_adjusted if c.ci_adjustment == "Holm" else 0.95


def check_mean(result, base: list[float], treat: list[float]) -> None:  # type: ignore[no-untyped-def]
    """Variant values and t intervals, and the Welch comparison, against scipy on raw values."""
    for variant, values in zip(result.variants, (base, treat), strict=True):
        x = np.array(values)
        assert variant.n == len(x)
        assert variant.value == pytest.approx(BIG + float(np.mean(x - BIG)), rel=1e-15)
        low, high = stats.t.interval(0.95, len(x) - 1, loc=float(np.mean(x - BIG)), scale=float(stats.sem(x - BIG)))
        assert variant.ci == pytest.approx((BIG + low, BIG + high), abs=1e-6)
        assert variant.ci[1] - variant.ci[0] == pytest.approx(high - low, rel=1e-6)
    [c] = result.comparisons
    b, t = np.array(base) - BIG, np.array(treat) - BIG
    exact = stats.ttest_ind(t, b, equal_var=False)
    assert c.effect == pytest.approx(float(np.mean(t) - np.mean(b)), rel=1e-9)
    assert c.p_value == pytest.approx(float(exact.pvalue), rel=1e-9)
    assert c.ci == pytest.approx(tuple(exact.confidence_interval(level(c))), rel=1e-9)
    raw = stats.ttest_ind(np.array(treat), np.array(base), equal_var=False)
    assert c.p_value == pytest.approx(float(raw.pvalue), rel=1e-4)  # raw means round at 1e9


def check_time(result, base: list[float], treat: list[float]) -> None:  # type: ignore[no-untyped-def]
    for variant, logs in zip(result.variants, (base, treat), strict=True):
        assert variant.n == len(logs)
        assert variant.value == pytest.approx(math.exp(float(np.mean(logs))), rel=1e-12)
        low, high = stats.t.interval(0.95, len(logs) - 1, loc=float(np.mean(logs)), scale=float(stats.sem(logs)))
        assert variant.ci == pytest.approx((math.exp(low), math.exp(high)), rel=1e-12)
        assert math.log(variant.ci[1]) - math.log(variant.ci[0]) == pytest.approx(high - low, rel=1e-6)
    [c] = result.comparisons
    exact = stats.ttest_ind(treat, base, equal_var=False)
    assert c.effect_kind == "ratio"
    assert math.log(c.effect) == pytest.approx(float(np.mean(treat) - np.mean(base)), rel=1e-6)
    assert c.p_value == pytest.approx(float(exact.pvalue), rel=1e-6)
    low, high = exact.confidence_interval(level(c))
    assert [math.log(v) for v in c.ci] == pytest.approx([low, high], rel=1e-6)


def per_variant(units: list[dict], key: str) -> tuple[list[float], list[float]]:
    return tuple([u[key] for u in units if u["variant"] == v and u[key] is not None]  # type: ignore[return-value]
                 for v in ("control", "green"))


def test_values_near_a_billion_keep_their_variance(engine, session):
    truth = seed(engine, create(session))
    units = list(truth.values())
    report = pipeline.analyze(engine, "big")
    assert report.units == {"control": 150, "green": 150}
    check_mean(metric(report, "revenue"), *per_variant(units, "revenue"))
    check_mean(metric(report, "refunds"), *per_variant(units, "refunds"))  # units without a row count as 0
    check_time(metric(report, "time"), *per_variant(units, "log_time"))
    assert metric(report, "revenue").comparisons[0].p_value < 0.05  # a 0.75 lift on 1e9 is seen

    # A breakdown: each segment is its own direct computation, and the whole is their sum.
    by = pipeline.analyze(engine, "big", by="device")
    segments: dict[str, list[dict]] = defaultdict(list)
    for u in units:
        segments[u["device"]].append(u)
    assert {s.segment for s in by.breakdown.segments} == set(segments)
    for name in ("revenue", "refunds", "time"):
        whole, alone = metric(by, name), metric(report, name)
        assert [(v.n, v.value, v.ci) for v in whole.variants] == [(v.n, v.value, v.ci) for v in alone.variants]
        for w, a in zip(whole.comparisons, alone.comparisons, strict=True):
            assert (w.effect, w.p_value) == pytest.approx((a.effect, a.p_value), rel=1e-9)
            assert w.ci == pytest.approx(a.ci, rel=1e-9)
        for segment in whole.segments:
            check = check_time if name == "time" else check_mean
            check(segment, *per_variant(segments[segment.segment], "log_time" if name == "time" else name))


def test_cuped_on_values_near_a_billion(engine, session):
    truth = seed(engine, create(session, cuped=True))
    units = list(truth.values())
    report = pipeline.analyze(engine, "big")
    [c] = metric(report, "revenue").comparisons
    assert c.method.startswith("CUPED")
    # θ = cov(x, y) / var(x) on all units pooled, then Welch on y − θ(x − x̄); around 1e9 (exact)
    y = np.array([u["revenue"] for u in units]) - BIG
    x = np.array([u["pre"] for u in units]) - BIG
    xc = x - x.mean()
    theta = float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))
    adjusted = y - theta * xc
    green = np.array([u["variant"] == "green" for u in units])
    exact = stats.ttest_ind(adjusted[green], adjusted[~green], equal_var=False)
    assert c.effect == pytest.approx(float(adjusted[green].mean() - adjusted[~green].mean()), rel=1e-9)
    assert c.p_value == pytest.approx(float(exact.pvalue), rel=1e-9)
    assert c.ci == pytest.approx(tuple(exact.confidence_interval(level(c))), rel=1e-9)
    plain = stats.ttest_ind(y[green], y[~green], equal_var=False)
    assert c.p_value < plain.pvalue  # the covariate explains part of the noise
    check_mean(metric(report, "refunds"), *per_variant(units, "refunds"))  # no covariate: Welch, as before
