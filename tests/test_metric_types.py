"""Metric types and the experiment analysis on fixture aggregates: no database, numbers written in.

References were computed once with statsmodels/scipy (the calls are quoted beside each value):
the analysis must give the same numbers from the sufficient statistics alone.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from abtest.aggregates.base import DailyConversions, EventStats, EventTotals, ExposedUnits, Failed, Returning, UnitLogTimes
from abtest.analysis import analyze, requests
from abtest.definitions import parse_experiment
from abtest.metrics import METRIC_TYPES, PARAMS
from abtest.stats.summary import Counts, Moments
from tests.fixture_source import FixtureSource, moments, units

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def experiment(*metrics: dict, variants: int = 2, analysis: str = "fixed", **fields) -> object:  # type: ignore[no-untyped-def]
    keys = ["control", "green", "blue"][:variants]
    weights = [0.5, 0.5] if variants == 2 else [0.34, 0.33, 0.33]
    plan = {"units_per_variant": 100} if analysis == "fixed" else None
    return parse_experiment({"key": "cta", "status": "stopped", "analysis": analysis,
                             **({"plan": plan} if plan else {}), **fields,
                             "variants": [{"key": k, "weight": w} for k, w in zip(keys, weights)],
                             "metrics": list(metrics)})


def totals(n: int, x: int, post: Moments | None = None) -> EventStats:
    """A variant's EventTotals answer: x of n converted; ``post`` the per-unit value sums."""
    zero = Moments(n, 0.0, 0.0)
    return EventStats(Counts(n, x), post or zero, zero, 0.0)


def metric(report, name: str):  # type: ignore[no-untyped-def]
    return next(m for m in report.metrics if m.name == name)


def test_each_type_declares_what_the_parser_schema_and_form_read():
    from web.experiment_form import METRIC_INPUTS

    from abtest.kinds.experiment import MetricDocument

    assert set(METRIC_TYPES) == {"conversion", "mean", "duration", "retention", "quantile", "threshold"}
    for kind in METRIC_TYPES.values():
        for param in kind.params:
            assert param.name in MetricDocument.model_fields and param.name in METRIC_INPUTS
            assert (PARAMS[param.name].kind, PARAMS[param.name].label) == (param.kind, param.label)  # one form input
            assert f"{kind.name}: {param.description}" in MetricDocument.model_fields[param.name].description
    assert MetricDocument.model_json_schema()["properties"]["type"]["enum"] == list(METRIC_TYPES)


def test_conversion_is_the_pooled_z_test_with_the_wald_interval():
    definition = experiment({"name": "buy", "type": "conversion"})
    source = FixtureSource({ExposedUnits(): units(control=2000, green=2000),
                            EventTotals("buy"): {"control": totals(2000, 200), "green": totals(2000, 250)}})
    report = analyze(definition, source, NOW)
    buy = metric(report, "buy")
    assert [(v.n, v.value) for v in buy.variants] == [(2000, 0.1), (2000, 0.125)]
    [c] = buy.comparisons
    # statsmodels.stats.proportion.proportions_ztest([250, 200], [2000, 2000])
    assert c.p_value == pytest.approx(0.012350947711191423, rel=1e-9)
    # confint_proportions_2indep(250, 2000, 200, 2000, method="wald")
    assert c.ci == pytest.approx((0.005431008554656017, 0.04456899144534397), rel=1e-9)
    assert c.significant and c.method.startswith("two-proportion z-test")
    assert report.verdict.startswith("Significant: green raises buy by 2.5 points")


def test_mean_is_welch_on_the_per_unit_sums():
    definition = experiment({"name": "revenue", "type": "mean", "event": "buy"})
    source = FixtureSource({ExposedUnits(): units(control=500, green=480), EventTotals("buy"): {
        "control": totals(500, 90, moments(500, 42.0, 20.0)), "green": totals(480, 95, moments(480, 45.5, 22.0))}})
    [c] = metric(analyze(definition, source, NOW), "revenue").comparisons
    # scipy.stats.ttest_ind_from_stats(45.5, 22, 480, 42, 20, 500, equal_var=False)
    assert c.p_value == pytest.approx(0.009391067568278934, rel=1e-9)
    assert c.effect == pytest.approx(3.5) and "Welch" in c.method


def test_duration_is_a_ratio_of_geometric_means_by_welch_on_log_times():
    definition = experiment({"name": "time", "type": "duration", "task": "checkout"})
    source = FixtureSource({ExposedUnits(): units(control=400, green=400), UnitLogTimes("checkout"): {
        "control": moments(300, 4.0, 0.5), "green": moments(280, 3.85, 0.55)}})
    time = metric(analyze(definition, source, NOW), "time")
    [c] = time.comparisons
    # scipy.stats.ttest_ind_from_stats(3.85, 0.55, 280, 4.0, 0.5, 300, equal_var=False); exp(3.85 − 4.0)
    assert c.p_value == pytest.approx(0.0006503738714102073, rel=1e-9)
    assert c.effect == pytest.approx(0.8607079764250579) and c.effect_kind == "ratio"
    assert time.variants[0].n == 300 and c.chance_to_beat > 0.99  # faster is better for times


def test_retention_reads_the_eligible_units_it_asked_for():
    definition = experiment({"name": "back", "type": "retention", "days": 7})
    source = FixtureSource({ExposedUnits(): units(control=3000, green=3000),
                            Returning(7): {"control": Counts(2000, 200), "green": Counts(2000, 250)}})
    back = metric(analyze(definition, source, NOW), "back")
    assert [v.n for v in back.variants] == [2000, 2000]
    assert back.comparisons[0].p_value == pytest.approx(0.012350947711191423, rel=1e-9)
    assert "7 days ago" in back.method


def test_the_types_ask_for_shared_aggregates_once():
    definition = experiment({"name": "buy", "type": "conversion"}, {"name": "revenue", "type": "mean", "event": "buy"},
                            {"name": "time", "type": "duration", "task": "t"}, {"name": "back", "type": "retention", "days": 3})
    asked = requests(definition)
    assert asked == [ExposedUnits(), EventTotals("buy"), EventTotals("buy"), UnitLogTimes("t"), Returning(3),
                     DailyConversions("buy")]
    source = FixtureSource({ExposedUnits(): units()})
    analyze(definition, source, NOW)
    assert source.asked[0][0] == "cta"


def test_sequential_mode_names_its_always_valid_test():
    definition = experiment({"name": "buy", "type": "conversion"}, analysis="sequential")
    source = FixtureSource({ExposedUnits(): units(control=2000, green=2000),
                            EventTotals("buy"): {"control": totals(2000, 200), "green": totals(2000, 250)}})
    [c] = metric(analyze(definition, source, NOW), "buy").comparisons
    assert "always-valid" in c.method and c.p_value > 0.012350947711191423  # peek-safe costs power


def test_three_variants_are_holm_adjusted():
    definition = experiment({"name": "buy", "type": "conversion"}, variants=3, analysis="fixed")
    source = FixtureSource({ExposedUnits(): units(control=2000, green=2000, blue=2000), EventTotals("buy"): {
        "control": totals(2000, 200), "green": totals(2000, 250), "blue": totals(2000, 215)}})
    buy = metric(analyze(definition, source, NOW), "buy")
    # statsmodels multipletests([0.012350947711191423, 0.43670309747385494], method="holm")
    assert [c.p_adjusted for c in buy.comparisons] == pytest.approx([0.0247019, 0.4367031], rel=1e-6)
    assert buy.adjustment == "Holm"


def test_a_failed_aggregate_costs_only_its_metric():
    definition = experiment({"name": "buy", "type": "conversion"}, {"name": "time", "type": "duration", "task": "t"})
    source = FixtureSource({ExposedUnits(): units(control=10, green=10), EventTotals("buy"): Failed("too large"),
                            UnitLogTimes("t"): {"control": moments(10, 1.0, 0.2), "green": moments(10, 1.1, 0.2)}})
    report = analyze(definition, source, NOW)
    assert metric(report, "buy").reason == "too large"
    assert metric(report, "time").comparisons[0].effect is not None


def test_segments_are_holm_adjusted_across_segments_and_checked_for_sample_ratio():
    definition = experiment({"name": "buy", "type": "conversion"})
    per_segment = {
        "DE": {ExposedUnits(): units(control=2000, green=2000),
               EventTotals("buy"): {"control": totals(2000, 200), "green": totals(2000, 250)}},
        "FR": {ExposedUnits(): units(control=2000, green=1700),
               EventTotals("buy"): {"control": totals(2000, 200), "green": totals(1700, 183)}},
    }
    whole = {ExposedUnits(): units(control=4000, green=3700),
             EventTotals("buy"): {"control": totals(4000, 400), "green": totals(3700, 433)}}
    report = analyze(definition, FixtureSource(whole, per_segment), NOW, by="country")
    de, fr = metric(report, "buy").segments
    assert (de.segment, fr.segment) == ("DE", "FR")
    from statsmodels.stats.multitest import multipletests

    raw = [de.comparisons[0].p_value, fr.comparisons[0].p_value]
    assert [de.comparisons[0].p_adjusted, fr.comparisons[0].p_adjusted] == pytest.approx(
        list(multipletests(raw, method="holm")[1]))
    assert de.comparisons[0].p_value == pytest.approx(0.012350947711191423, rel=1e-9)
    assert [s.srm.alarm for s in report.breakdown.segments] == [False, True]  # 2000 vs 1700 off a 50/50 split
    document = report.to_dict()
    assert document["breakdown"]["exploratory"] is True
    assert [s["segment"] for s in document["metrics"][0]["segments"]] == ["DE", "FR"]


def test_a_breakdown_nobody_sent_says_so():
    definition = experiment({"name": "buy", "type": "conversion"})
    source = FixtureSource({ExposedUnits(): units(control=10, green=10)})
    document = analyze(definition, source, NOW, by="nope").to_dict()
    assert document["breakdown"]["segments"] == [] and "nope" in document["breakdown"]["message"]
    assert document["metrics"][0]["segments"] == []
