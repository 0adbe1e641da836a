"""Definition rules (DESIGN §4.2): every rule has an example that breaks it, with the field named."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from abtest.checks import InvalidDefinition
from abtest.studies.images import store_for
from abtest.kinds import load_toml, parse_definition

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def valid(**changes):  # type: ignore[no-untyped-def]
    raw = {
        "key": "checkout-button", "name": "Green button", "status": "running",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}],
        "metrics": [{"name": "purchase", "type": "conversion", "primary": True}],
    }
    raw.update(changes)
    return raw


def problems(raw) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidDefinition) as err:
        parse_definition(raw)
    return {e.field: e.message for e in err.value.errors}


def test_a_valid_definition_parses_with_defaults():
    definition = parse_definition(valid())
    assert definition.seed == "checkout-button"
    assert definition.coverage == 1.0
    assert definition.analysis == "sequential"
    assert definition.alpha == 0.05
    assert definition.metrics[0].param("event") == "purchase"  # a conversion counts its own name by default
    assert definition.primary_metric is not None and definition.primary_metric.name == "purchase"


def test_definition_round_trips_through_to_dict():
    definition = parse_definition(valid(namespace={"name": "checkout", "range": [0, 0.5]},
                                        targeting={"country": ["DE", "AT"]}, plan={"baseline": 0.1, "mde": 0.02}))
    assert parse_definition(definition.to_dict()) == definition


@pytest.mark.parametrize("raw, field, fragment", [
    (valid(key="Checkout"), "key", "lowercase letters, digits and dashes"),
    (valid(key="x"), "key", "2 to 64"),
    (valid(key="-lead"), "key", "starting with a letter or digit"),
    ({k: v for k, v in valid().items() if k != "key"}, "key", "required"),
    (valid(colour="green"), "colour", "unknown field"),
    (valid(status="paused"), "status", "not one of"),
    (valid(analysis="bayes"), "analysis", "not one of"),
    (valid(coverage=0), "coverage", "above 0"),
    (valid(coverage=1.5), "coverage", "at most 1"),
    (valid(coverage="half"), "coverage", "finite number"),
    (valid(alpha=0.7), "alpha", "between 0 and 0.5"),
    (valid(kind="study"), "kind", "not supported"),
    (valid(variants=[{"key": "control", "weight": 1.0}]), "variants", "at least 2"),
    (valid(variants=[{"key": "a", "weight": 0.5}, {"key": "a", "weight": 0.5}]), "variants[1].key", "duplicate"),
    (valid(variants=[{"key": "a", "weight": 0.6}, {"key": "b", "weight": 0.6}]), "variants", "sum to 1.2"),
    (valid(variants=[{"key": "a", "weight": 1.5}, {"key": "b", "weight": -0.5}]), "variants[1].weight", "positive"),
    (valid(variants=[{"key": "a", "weight": 0.5}, {"key": "b"}]), "variants[1].weight", "required"),
    (valid(variants=[{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5, "color": 1}]),
     "variants[1].color", "unknown field"),
    (valid(variants=[{"key": "A B", "weight": 0.5}, {"key": "b", "weight": 0.5}]), "variants[0].key", "dashes and underscores"),
    (valid(variants="control,green"), "variants", "list of tables"),
    (valid(metrics=[{"name": "m", "type": "median"}]), "metrics[0].type", "not one of"),
    (valid(metrics=[{"name": "revenue", "type": "mean"}]), "metrics[0].event", "must name the event"),
    (valid(metrics=[{"name": "time", "type": "duration"}]), "metrics[0].task", "must name the task"),
    (valid(metrics=[{"name": "time", "type": "duration", "task": "t", "event": "e"}]), "metrics[0].event", "take no event"),
    (valid(metrics=[{"name": "buy", "type": "conversion", "task": "t"}]), "metrics[0].task", "only duration"),
    (valid(metrics=[{"name": "a", "type": "conversion"}, {"name": "a", "type": "conversion"}]),
     "metrics[1].name", "duplicate"),
    (valid(metrics=[{"name": "a", "type": "conversion", "primary": True},
                    {"name": "b", "type": "conversion", "primary": True}]), "metrics", "only one metric"),
    (valid(namespace={"name": "checkout", "range": [0.5, 0.2]}), "namespace.range", "start < end"),
    (valid(namespace={"name": "checkout", "range": [0.5, 1.2]}), "namespace.range", "start < end"),
    (valid(namespace={"name": "checkout"}), "namespace.range", "two numbers"),
    (valid(namespace={"range": [0, 1]}), "namespace.name", "required"),
    (valid(targeting={"country": []}), "targeting.country", "at least one"),
    (valid(targeting={"score": 0.5}), "targeting.score", "strings, integers or booleans"),
    # The rules of the attributes a visitor sends: a rule nobody could ever match is refused.
    (valid(targeting={"Plan Tier": "pro"}), "targeting.Plan Tier", "attribute names are 1-64"),
    (valid(targeting={"plan": ["pro", "x" * 201]}), "targeting.plan", "at most 200 characters"),
    (valid(plan={"baseline": 0.1}), "plan", "both baseline and mde"),
    (valid(plan={"baseline": 1.2, "mde": 0.01}), "plan.baseline", "between 0 and 1"),
    (valid(plan={"units_per_variant": 1}), "plan.units_per_variant", "at least 2"),
    (valid(plan={}), "plan", "both baseline and mde"),
    (valid(plan={"power": 0.9}), "plan", "both baseline and mde"),
    (valid(plan={"baseline": 0.95, "mde": 0.1}), "plan.mde", "must stay below 1"),
    (valid(analysis="fixed"), "plan", "fixed-horizon analysis needs its planned sample"),
    (valid(name="Green\x00button"), "name", "NUL character"),
])
def test_each_rule_names_its_field(raw, field, fragment):
    found = problems(raw)
    assert field in found, found
    assert fragment in found[field]


def test_weights_are_never_normalised():
    found = problems(valid(variants=[{"key": "a", "weight": 1}, {"key": "b", "weight": 1}]))
    assert "never rescales" in found["variants"]


def test_weights_within_tolerance_are_accepted():
    thirds = [{"key": k, "weight": 1 / 3} for k in ("a", "b", "c")]
    assert parse_definition(valid(variants=thirds)).weights == (1 / 3, 1 / 3, 1 / 3)


def test_all_problems_are_reported_at_once():
    found = problems(valid(key="Bad", coverage=2, status="live"))
    assert {"key", "coverage", "status"} <= set(found)


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('key = "a\n')
    with pytest.raises(InvalidDefinition) as err:
        load_toml(path)
    assert err.value.lines()[0].startswith(f"{path}: (file): invalid TOML")


def test_duplicate_toml_keys_are_refused(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text('key = "abc"\nkey = "abd"\n')
    with pytest.raises(InvalidDefinition, match="invalid TOML"):
        load_toml(path)


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_example_definitions_are_valid(path, tmp_path):
    definition = load_toml(path, store_for(tmp_path))  # a first-click test's screens are stored on loading
    assert definition.key == path.stem
    assert tomllib.loads(path.read_text())  # plain TOML a person can edit


@pytest.mark.parametrize("metric, field, fragment", [
    ({"name": "back", "type": "retention"}, "metrics[0].days", "whole days"),
    ({"name": "back", "type": "retention", "days": 0}, "metrics[0].days", "whole days"),
    ({"name": "back", "type": "retention", "days": 7, "event": "x"}, "metrics[0].event", "take no event"),
    ({"name": "buy", "type": "conversion", "days": 7}, "metrics[0].days", "only retention"),
])
def test_retention_rules(metric, field, fragment):
    found = problems(valid(metrics=[metric]))
    assert fragment in found[field]


def test_retention_metric_round_trips():
    definition = parse_definition(valid(metrics=[{"name": "back", "type": "retention", "days": 7}]))
    assert definition.metrics[0].param("days") == 7
    assert parse_definition(definition.to_dict()) == definition


@pytest.mark.parametrize("raw, field", [
    (valid(key="new"), "key"),
    (valid(name="x" * 201), "name"),
    (valid(variants=[{"key": "a", "weight": 0.5, "name": "n" * 201}, {"key": "b", "weight": 0.5}]), "variants[0].name"),
    (valid(namespace={"name": "n" * 101, "range": [0, 1]}), "namespace.name"),
])
def test_lengths_and_reserved_keys(raw, field):
    assert field in problems(raw)


@pytest.mark.parametrize("raw, field", [
    (valid(key="Bad Key!"), "key"),
    (valid(variants=[{"key": "A B", "weight": 0.5}, {"key": "b", "weight": 0.5}]), "variants[0].key"),
    (valid(metrics=[{"name": "sign up", "type": "conversion"}]), "metrics[0].name"),
])
def test_a_malformed_key_or_name_is_explained_in_words_not_as_a_regex(raw, field):
    message = problems(raw)[field]
    assert "letters, digits" in message and "starting with a letter or digit" in message
    assert not re.search(r"[\[\]{}\\^$]", message), message  # no pattern syntax for the designer to decode
