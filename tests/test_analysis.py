"""From events in the database to the results document, on SQLite and PostgreSQL.

The events are written straight to the table with known outcomes; the expected numbers were
computed once with statsmodels/scipy from the same per-unit data (the calls are in the comments).
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from abtest import pipeline
from abtest.pipeline import analyze
from abtest.kinds import parse_definition
from abtest.errors import NotFound
from abtest.store.events import write_events

from abtest.clickhouse.schema import rebuild_units
from abtest.clickhouse.schema import table as table_of
from abtest.store.target import clickhouse_of
from tests.conftest import BACKENDS_WITH_CHDB, backend_engine

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS_WITH_CHDB)
def engine(request):  # type: ignore[no-untyped-def]
    """SQLite, PostgreSQL, and a SQLite registry with its events in ClickHouse (chdb)."""
    yield from backend_engine(request)


def event(experiment_id: int, type_: str, unit: str, variant: str | None, ts: datetime, **fields):  # type: ignore[no-untyped-def]
    row = {"event_id": str(uuid.uuid4()), "type": type_, "experiment_id": experiment_id, "variant": variant,
           "unit": unit, "event": None, "value": None, "task": None, "success": None, "duration_ms": None,
           "questionnaire": None, "answers": None, "forced": False, "ts": ts, "received_at": ts}
    row.update(fields)
    return row


def create(session, **changes):  # type: ignore[no-untyped-def]
    raw = {"key": "checkout-button", "status": "running", "analysis": "fixed", "plan": {"units_per_variant": 100},
           "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}],
           "metrics": [{"name": "purchase", "type": "conversion", "primary": True},
                       {"name": "revenue", "type": "mean", "event": "purchase"},
                       {"name": "checkout-time", "type": "duration", "task": "checkout"}]}
    raw.update(changes)
    row = pipeline.create(session, parse_definition(raw))
    session.commit()
    return row.id


def seed_known_outcomes(engine, experiment_id: int) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for arm, converters, value, geo in (("control", 30, 10.0, 60.0), ("green", 50, 12.0, 50.0)):
        for i in range(200):
            unit = f"{arm}-{i}"
            seen = T0 + timedelta(hours=i % 48)
            rows.append(event(experiment_id, "exposure", unit, arm, seen))
            rows.append(event(experiment_id, "exposure", unit, arm, seen + timedelta(hours=1)))  # repeat view
            if i < converters:
                rows.append(event(experiment_id, "conversion", unit, arm, seen + timedelta(minutes=5),
                                  event="purchase", value=value))
            elif i < converters + 10:  # converted before being exposed: must not count
                rows.append(event(experiment_id, "conversion", unit, arm, seen - timedelta(minutes=5),
                                  event="purchase", value=value))
            if i < 40:
                wiggle = math.sin(i) if arm == "control" else math.cos(i)
                rows.append(event(experiment_id, "task", unit, arm, seen + timedelta(minutes=2), task="checkout",
                                  success=True, duration_ms=1000 * geo * math.exp(0.3 * wiggle)))
                rows.append(event(experiment_id, "task", unit, arm, seen + timedelta(minutes=3), task="checkout",
                                  success=False, duration_ms=999_000.0))  # failed attempts are not timed
    for i in range(5):  # QA overrides: excluded
        rows.append(event(experiment_id, "exposure", f"qa-{i}", "green", T0, forced=True))
        rows.append(event(experiment_id, "conversion", f"qa-{i}", "green", T0 + timedelta(minutes=1), event="purchase"))
    for i in range(3):  # seen in both variants: excluded
        rows.append(event(experiment_id, "exposure", f"both-{i}", "control", T0))
        rows.append(event(experiment_id, "exposure", f"both-{i}", "green", T0 + timedelta(hours=1)))
    with engine.begin() as conn:
        write_events(conn, rows)


def metric(report, name):  # type: ignore[no-untyped-def]
    return next(m for m in report.metrics if m.name == name)


def test_fixed_analysis_end_to_end(engine, session):
    seed_known_outcomes(engine, create(session))
    report = analyze(engine, "checkout-button")
    assert report.units == {"control": 200, "green": 200}
    assert report.excluded == {"forced": 5, "multiple_variants": 3}
    purchase = metric(report, "purchase")
    assert [(v.n, v.value) for v in purchase.variants] == [(200, 0.15), (200, 0.25)]
    # statsmodels proportion_confint(30, 200, method="wilson")
    assert purchase.variants[0].ci == pytest.approx((0.10713593562241994, 0.2060557928416666), rel=1e-9)
    comparison = purchase.comparisons[0]
    assert comparison.effect == pytest.approx(0.10)
    # statsmodels proportions_ztest([50, 30], [200, 200]) -> z = 2.5, p = 0.012419330651552265 (= R prop.test(correct=FALSE))
    assert comparison.p_value == pytest.approx(0.012419330651552265, rel=1e-9)
    assert comparison.ci == pytest.approx((0.022216340773956594, 0.17778365922604342), rel=1e-9)  # unpooled Wald
    assert comparison.relative == pytest.approx(0.25 / 0.15 - 1)
    assert comparison.significant and comparison.chance_to_beat > 0.99
    assert comparison.method.startswith("two-proportion z-test")

    revenue = metric(report, "revenue")
    assert [v.value for v in revenue.variants] == [pytest.approx(1.5), pytest.approx(3.0)]
    # scipy ttest_ind(green, control, equal_var=False) on the per-unit sums -> p = 0.0008762499925219322
    assert revenue.comparisons[0].p_value == pytest.approx(0.0008762499925219322, rel=1e-6)

    times = metric(report, "checkout-time")
    assert [v.n for v in times.variants] == [40, 40]
    assert times.variants[0].value == pytest.approx(60.52114445342015, rel=1e-9)  # geometric mean, seconds
    ratio = times.comparisons[0]
    assert ratio.effect_kind == "ratio"
    assert ratio.effect == pytest.approx(0.8356009820201694, rel=1e-9)
    # scipy ttest_ind(log green, log control, equal_var=False) -> p = 0.00034596724243925663
    assert ratio.p_value == pytest.approx(0.00034596724243925663, rel=1e-6)

    assert report.srm.p_value == pytest.approx(1.0) and not report.srm.alarm
    assert report.power.target_n_per_variant == 100 and report.power.progress == 1.0
    assert report.verdict == "Significant: green raises purchase by 10.0 points (95% CI 2.2 to 17.8)."
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["metrics"][0]["comparisons"][0]["p_adjusted"] == pytest.approx(0.012419330651552265)
    assert {p["variant"] for p in document["series"]} == {"green"}
    assert document["series"][-1]["units"] == 400


def test_fixed_test_is_not_called_before_its_planned_sample(engine, session):
    seed_known_outcomes(engine, create(session, plan={"units_per_variant": 1000}))
    report = analyze(engine, "checkout-button")
    comparison = metric(report, "purchase").comparisons[0]
    assert comparison.p_value < 0.05 and not comparison.significant
    # What is known leads; the estimate follows without a claim ("raises") it has not earned.
    assert report.verdict == ("Too early to call purchase (a fixed-horizon test; 20% of the planned sample so far). "
                              "So far green against control: +10.0 points on purchase (95% CI 2.2 to 17.8).")


def test_sequential_analysis_is_always_valid_and_wider(engine, session):
    seed_known_outcomes(engine, create(session, analysis="sequential"))
    report = analyze(engine, "checkout-button")
    comparison = metric(report, "purchase").comparisons[0]
    assert comparison.method.startswith("always-valid mSPRT")
    assert comparison.p_value > 0.012419330651552265  # always-valid p is never below the fixed one here
    low, high = comparison.ci
    assert low < 0.022216340773956594 and high > 0.17778365922604342


def test_many_variants_get_holm_adjustment(engine, session):
    experiment_id = create(session, variants=[{"key": "control", "weight": 0.34}, {"key": "green", "weight": 0.33},
                                              {"key": "blue", "weight": 0.33}])
    seed_known_outcomes(engine, experiment_id)
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "exposure", f"blue-{i}", "blue", T0) for i in range(150)])
    report = analyze(engine, "checkout-button")
    purchase = metric(report, "purchase")
    assert purchase.adjustment == "Holm"
    green, blue = purchase.comparisons
    assert blue.effect == pytest.approx(-0.15) and blue.p_value < green.p_value
    assert blue.p_adjusted == pytest.approx(min(1.0, 2 * blue.p_value))  # Holm: smallest p times 2
    assert green.p_adjusted == pytest.approx(max(green.p_value, blue.p_adjusted))  # then times 1, monotone


def test_empty_experiment_reports_reasons_not_numbers(engine, session):
    create(session)
    report = analyze(engine, "checkout-button")
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["units"] == {"control": 0, "green": 0}
    assert document["srm"]["p_value"] is None and document["srm"]["reason"]
    assert document["metrics"][0]["variants"][0] == {"variant": "control", "n": 0, "value": None, "ci": None,
                                                     "reason": "no units yet"}
    assert document["metrics"][0]["comparisons"][0]["reason"]
    assert report.verdict.startswith("No visitors yet")


def test_zero_variance_is_explained(engine, session):
    experiment_id = create(session)
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "exposure", f"u{i}", "control" if i % 2 else "green", T0)
                             for i in range(20)])
    report = analyze(engine, "checkout-button")
    comparison = metric(report, "purchase").comparisons[0]
    assert comparison.effect is None and "no unit converted" in comparison.reason
    assert report.verdict.startswith("Not enough data on purchase yet")


def test_sample_ratio_mismatch_raises_the_alarm(engine, session):
    experiment_id = create(session)
    with engine.begin() as conn:
        write_events(conn, [event(experiment_id, "exposure", f"u{i}", "control" if i < 600 else "green", T0)
                             for i in range(1000)])
    report = analyze(engine, "checkout-button")
    assert report.srm.alarm and report.srm.p_value < 1e-9
    assert report.verdict.startswith("Sample ratio mismatch")


def test_unknown_experiment(engine):
    with pytest.raises(NotFound, match="nope-nope"):
        analyze(engine, "nope-nope")


def test_aggregation_runs_in_the_database(engine, session, monkeypatch):
    """The analysis issues a handful of GROUP BY queries, whatever the number of events."""
    seed_known_outcomes(engine, create(session))
    statements: list[str] = []
    clickhouse = clickhouse_of(engine)
    if clickhouse is not None:  # the events are in ClickHouse: count its queries
        query = clickhouse.query
        monkeypatch.setattr(clickhouse, "query", lambda sql, params=None: statements.append(sql) or query(sql, params))
        analyze(engine, "checkout-button")
        assert 0 < len(statements) <= 6
        assert all("GROUP BY" in s and "FINAL" in s for s in statements)
        return

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        analyze(engine, "checkout-button")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    event_queries = [s for s in statements if "FROM events" in s or "JOIN events" in s]
    assert 0 < len(event_queries) <= 6
    # Aggregated where the events are: grouped, or (the unit rows of a rollup build) windowed per unit.
    assert all("GROUP BY" in s or "OVER (PARTITION BY" in s for s in event_queries)


def test_cuped_uses_pre_exposure_values(engine, session):
    experiment_id = create(session, cuped=True)
    rows = []
    for arm, lift in (("control", 0.0), ("green", 2.0)):
        for i in range(300):
            unit = f"{arm}-{i}"
            seen = T0 + timedelta(days=1)
            habit = float(i % 10)  # what the unit spent before the test predicts what it spends in it
            rows.append(event(experiment_id, "exposure", unit, arm, seen))
            rows.append(event(experiment_id, "conversion", unit, arm, seen - timedelta(hours=1), event="purchase",
                              value=habit + 1))
            rows.append(event(experiment_id, "conversion", unit, arm, seen + timedelta(hours=1), event="purchase",
                              value=habit + lift + (i % 3)))
    with engine.begin() as conn:
        write_events(conn, rows)
    revenue = metric(analyze(engine, "checkout-button"), "revenue").comparisons[0]
    assert revenue.method.startswith("CUPED")
    assert revenue.effect == pytest.approx(2.0)
    # With the covariate the interval is far narrower than Welch's on the raw sums.
    from abtest.stats.means import welch_test
    from abtest.stats.summary import Moments

    raw = welch_test(Moments.from_values([i % 10 + i % 3 for i in range(300)]),
                     Moments.from_values([i % 10 + 2.0 + i % 3 for i in range(300)]))
    assert (revenue.ci[1] - revenue.ci[0]) < 0.5 * raw.ci.width


def test_retention_counts_units_that_came_back_after_n_days(engine, session):
    experiment_id = create(session, metrics=[{"name": "week-back", "type": "retention", "days": 7, "primary": True}])
    recent = datetime.now(UTC) - timedelta(days=1)
    # Exposed yesterday: they cannot have come back a week later yet, so they are not counted.
    rows = [event(experiment_id, "exposure", f"new-{i}", "control" if i % 2 else "green", recent) for i in range(300)]
    for arm, returners in (("control", 20), ("green", 45)):
        for i in range(100):
            unit = f"{arm}-{i}"
            rows.append(event(experiment_id, "exposure", unit, arm, T0))
            if i < returners:  # back on day 8
                rows.append(event(experiment_id, "exposure", unit, arm, T0 + timedelta(days=8)))
            elif i < returners + 10:  # back after 6.9 days: too early to count
                rows.append(event(experiment_id, "conversion", unit, arm, T0 + timedelta(days=6, hours=22),
                                  event="purchase"))
    with engine.begin() as conn:
        write_events(conn, rows)
    report = analyze(engine, "checkout-button")
    retention = metric(report, "week-back")
    assert [(v.n, v.value) for v in retention.variants] == [(100, 0.20), (100, 0.45)]
    assert retention.comparisons[0].effect == pytest.approx(0.25)
    assert report.verdict.startswith("Significant: green raises week-back by 25.0 points")


def test_daily_series_uses_only_what_was_known_by_each_day(engine, session):
    experiment_id = create(session, analysis="sequential")
    day1, day3 = datetime(2026, 11, 1, 10, tzinfo=UTC), datetime(2026, 11, 3, 10, tzinfo=UTC)
    rows = []
    for i in range(100):
        arm = "control" if i % 2 else "green"
        rows.append(event(experiment_id, "exposure", f"u{i}", arm, day1))
        if arm == "green" and i < 60:  # green units convert, but only on day 3
            rows.append(event(experiment_id, "conversion", f"u{i}", arm, day3, event="purchase"))
    with engine.begin() as conn:
        write_events(conn, rows)
    series = analyze(engine, "checkout-button").series
    assert [p.day for p in series] == ["2026-11-01", "2026-11-03"]
    assert series[0].effect is None  # nobody had converted by the end of day 1: nothing to compare
    assert series[1].effect == pytest.approx(30 / 50)


def test_cuped_falls_back_to_welch_without_pre_exposure_data(engine, session):
    seed_known_outcomes(engine, create(session, cuped=True))
    # Drop the pre-exposure conversions: the covariate is all zeros.
    units = [f"{arm}-{i}" for arm in ("control", "green")
             for i in range(30 if arm == "control" else 50, 60 if arm == "control" else 60)]
    clickhouse = clickhouse_of(engine)
    if clickhouse is not None:
        clickhouse.command(f"DELETE FROM {table_of(clickhouse)} WHERE type = 'conversion' AND unit IN {{u:Array(String)}}",
                           {"u": units})
        rebuild_units(clickhouse, "unit IN {u:Array(String)}", {"u": units})  # a DELETE by hand: the view saw none
    else:
        with engine.begin() as conn:
            table = sa.table("events", sa.column("ts"), sa.column("type"), sa.column("unit"))
            conn.execute(sa.delete(table).where(table.c.unit.in_(units), table.c.type == "conversion"))
    revenue = metric(analyze(engine, "checkout-button"), "revenue").comparisons[0]
    assert revenue.method.startswith("Welch") and "CUPED skipped" in revenue.method
    assert revenue.p_value == pytest.approx(0.0008762499925219322, rel=1e-6)


def test_a_metric_that_cannot_be_summarised_does_not_sink_the_report(engine, session):
    experiment_id = create(session)
    seed_known_outcomes(engine, experiment_id)
    with engine.begin() as conn:  # written past the API's bounds, straight into the table
        write_events(conn, [event(experiment_id, "conversion", "control-0", "control", T0 + timedelta(hours=1),
                                   event="purchase", value=1e200)])
    report = analyze(engine, "checkout-button")
    purchase = metric(report, "purchase")
    assert purchase.reason and "finite" in purchase.reason
    assert metric(report, "checkout-time").comparisons[0].effect is not None
    json.dumps(report.to_dict(), allow_nan=False)
