"""Breaking results down by an attribute, on SQLite and PostgreSQL: every number of every segment
equals a direct computation on that segment's raw events (statsmodels / scipy on per-unit data).

Events go in through the API's ingestion (validation and canonical attribute values included);
each unit's segment is the attribute on its first exposure, whatever later exposures say.
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
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from abtest import pipeline
from abtest.ingest import ingest
from abtest.kinds import parse_definition

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
DEVICES = ("desktop", "mobile", "tablet")
from tests.conftest import BACKENDS_WITH_CHDB, backend_engine


@pytest.fixture(params=BACKENDS_WITH_CHDB)
def engine(request):  # type: ignore[no-untyped-def]
    """SQLite, PostgreSQL, and a SQLite registry with its events in ClickHouse (chdb)."""
    yield from backend_engine(request)


def create(session) -> None:  # type: ignore[no-untyped-def]
    pipeline.create(session, parse_definition({
        "key": "cta", "status": "running", "analysis": "fixed", "plan": {"units_per_variant": 50},
        "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}],
        "metrics": [{"name": "purchase", "type": "conversion"}, {"name": "revenue", "type": "mean", "event": "purchase"},
                    {"name": "time", "type": "duration", "task": "checkout"}]}))
    session.commit()


def _event(type_: str, unit: str, ts: datetime, **fields) -> dict:  # type: ignore[no-untyped-def]
    return {"id": str(uuid.uuid4()), "type": type_, "experiment": "cta", "unit": unit,
            "ts": ts.isoformat().replace("+00:00", "Z"), **fields}


def simulate(seed: int = 11, units: int = 900) -> tuple[list[dict], dict[str, dict]]:
    """Raw events, and per unit what a by-hand reading of them says: variant, segment (first
    exposure's device), converted, revenue after exposure, mean log seconds of successful tasks."""
    rng = random.Random(seed)
    events, truth = [], {}
    for i in range(units):
        unit, variant = f"u{i:04d}", ("control", "green")[i % 2]
        device = DEVICES[rng.randrange(3)] if i % 17 else None  # some units never say
        first = START + timedelta(minutes=rng.uniform(0, 2000))
        attributes = {"device": device, "beta": i % 3 == 0} if device else {"beta": i % 3 == 0}
        events.append(_event("exposure", unit, first, variant=variant, attributes=attributes))
        # a later page view on another device: the unit keeps the segment of its first exposure
        events.append(_event("exposure", unit, first + timedelta(hours=2), variant=variant,
                             attributes={"device": "desktop"}))
        lift = {"desktop": 0.0, "mobile": 0.12, "tablet": 0.04, None: 0.0}[device] if variant == "green" else 0.0
        converted = rng.random() < 0.25 + lift
        revenue = 0.0
        if converted:
            for _ in range(1 + rng.randrange(2)):
                value = round(rng.uniform(5, 60), 2)
                revenue += value
                events.append(_event("conversion", unit, first + timedelta(minutes=rng.uniform(1, 90)),
                                     event="purchase", value=value))
        if rng.random() < 0.2:  # bought before seeing the test: not counted
            events.append(_event("conversion", unit, first - timedelta(minutes=5), event="purchase", value=99.0))
        logs = []
        for _ in range(rng.randrange(3)):
            seconds = math.exp(rng.gauss(4.0 - (0.15 if variant == "green" else 0.0), 0.4))
            success = rng.random() < 0.85
            events.append(_event("task", unit, first + timedelta(minutes=3), task="checkout", success=success,
                                 duration_ms=round(seconds * 1000, 1)))
            if success:
                logs.append(math.log(round(seconds * 1000, 1) / 1000))
        truth[unit] = {"variant": variant, "device": device or "(not set)", "converted": converted,
                       "revenue": revenue, "log_time": sum(logs) / len(logs) if logs else None}
    return events, truth


def store(engine, events: list[dict]) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, len(events), 1000):
        result = ingest(engine, events[start:start + 1000], kinds=("experiment",))
        assert result.rejected == [] and result.accepted == len(events[start:start + 1000])


def test_every_segment_number_equals_a_direct_computation(engine, session):
    create(session)
    events, truth = simulate()
    store(engine, events)
    report = pipeline.analyze(engine, "cta", by="device")
    by_segment: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for facts in truth.values():
        by_segment[facts["device"]][facts["variant"]].append(facts)

    assert report.breakdown is not None and report.breakdown.by == "device"
    sizes = {s.segment: s.units for s in report.breakdown.segments}
    assert sizes == {seg: {v: len(by_segment[seg][v]) for v in ("control", "green")} for seg in by_segment}
    order = [s.segment for s in report.breakdown.segments]
    assert order == sorted(by_segment, key=lambda s: (-sum(sizes[s].values()), s))  # largest first

    purchase = next(m for m in report.metrics if m.name == "purchase")
    raw_p = []
    for segment in purchase.segments:
        base, treat = by_segment[segment.segment]["control"], by_segment[segment.segment]["green"]
        xb, xt = sum(u["converted"] for u in base), sum(u["converted"] for u in treat)
        assert [v.n for v in segment.variants] == [len(base), len(treat)]
        assert [v.value for v in segment.variants] == pytest.approx([xb / len(base), xt / len(treat)], rel=1e-12)
        [c] = segment.comparisons
        _z, p = proportions_ztest([xt, xb], [len(treat), len(base)])
        assert c.p_value == pytest.approx(p, rel=1e-9), segment.segment
        raw_p.append((c, c.p_value, (xt, len(treat), xb, len(base))))
    holm = multipletests([p for _c, p, _t in raw_p], method="holm")[1]
    assert [s.comparisons[0].p_adjusted for s in purchase.segments] == pytest.approx(list(holm), rel=1e-12)
    for (c, p, table), p_holm in zip(raw_p, holm, strict=True):
        # The interval that matches the Holm decision: the Wald interval at level α·p/p_Holm.
        assert c.ci_adjustment == "Holm"
        assert c.ci == pytest.approx(confint_proportions_2indep(*table, method="wald", alpha=0.05 * p / p_holm),
                                     rel=1e-9)
        assert (c.ci[0] > 0 or c.ci[1] < 0) == (p_holm < 0.05)

    revenue = next(m for m in report.metrics if m.name == "revenue")
    for segment in revenue.segments:
        base = [u["revenue"] for u in by_segment[segment.segment]["control"]]
        treat = [u["revenue"] for u in by_segment[segment.segment]["green"]]
        assert segment.variants[1].value == pytest.approx(np.mean(treat), rel=1e-9)
        assert segment.comparisons[0].p_value == pytest.approx(
            stats.ttest_ind(treat, base, equal_var=False).pvalue, rel=1e-7)

    time = next(m for m in report.metrics if m.name == "time")
    for segment in time.segments:
        base = [u["log_time"] for u in by_segment[segment.segment]["control"] if u["log_time"] is not None]
        treat = [u["log_time"] for u in by_segment[segment.segment]["green"] if u["log_time"] is not None]
        assert [v.n for v in segment.variants] == [len(base), len(treat)]
        [c] = segment.comparisons
        assert c.effect == pytest.approx(math.exp(np.mean(treat) - np.mean(base)), rel=1e-9)
        assert c.p_value == pytest.approx(stats.ttest_ind(treat, base, equal_var=False).pvalue, rel=1e-7)

    whole = next(m for m in report.metrics if m.name == "purchase")
    assert sum(v.n for v in whole.variants) == len(truth)  # the breakdown leaves the whole untouched


def test_boolean_attributes_are_segments_too_and_the_document_says_exploratory(engine, session, client=None):
    create(session)
    events, truth = simulate(units=120)
    store(engine, events)
    document = pipeline.analyze(engine, "cta", by="beta").to_dict()
    values = {s["segment"]: sum(s["units"].values()) for s in document["breakdown"]["segments"]}
    assert values == {"true": sum(1 for i in range(120) if i % 3 == 0), "false": sum(1 for i in range(120) if i % 3)}
    assert document["breakdown"]["exploratory"] is True and "Holm" in document["breakdown"]["method"]
    assert all("segments" in m for m in document["metrics"])


def test_beyond_twenty_values_the_rest_is_pooled(engine, session):
    create(session)
    events = []
    for i in range(351):  # city-00 … city-25: city-k has 26 − k units, so the order is by size
        city = next(k for k in range(26) if i < sum(26 - j for j in range(k + 1)))
        events.append(_event("exposure", f"c{i}", START, variant=("control", "green")[i % 2],
                             attributes={"city": f"city-{city:02d}"}))
    store(engine, events[:1000])
    report = pipeline.analyze(engine, "cta", by="city")
    segments = [(s.segment, sum(s.units.values())) for s in report.breakdown.segments]
    assert [name for name, _n in segments] == [f"city-{k:02d}" for k in range(20)] + ["(other)"]
    assert segments[-1][1] == sum(26 - k for k in range(20, 26)) == 21
    assert [n for _name, n in segments[:20]] == [26 - k for k in range(20)]


def test_an_attribute_nobody_sent_gives_an_empty_breakdown_with_a_message(engine, session, client):
    create(session)
    events, _truth = simulate(units=40)
    store(engine, events)
    document = pipeline.analyze(engine, "cta", by="country").to_dict()
    assert document["breakdown"]["segments"] == [] and "country" in document["breakdown"]["message"]
    assert sorted(pipeline.attribute_names(engine, pipeline.load(session, "cta")[1])) == ["beta", "device"]


def test_a_bad_attribute_name_is_a_field_error(engine, session):
    from abtest.errors import ValidationError

    create(session)
    with pytest.raises(ValidationError) as error:
        pipeline.analyze(engine, "cta", by="no spaces!")
    assert error.value.field == "by"
