"""Visitor attributes: one rule and one spelling, whichever side (browser or server) sends them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from abtest.attributes import BadAttribute, canonical_attribute, clean_attributes
from abtest.kinds import KINDS, parse_definition

# What JavaScript's String() writes for these numbers (node 18, the snippet's `canonical`),
# so a segment sent by abtest.js and one sent by a server never split on spelling.
JS_STRINGS = [
    (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (0.00001, "0.00001"), (0.0000015, "0.0000015"), (1e-6, "0.000001"),
    (0.5, "0.5"), (123.456, "123.456"), (1e-300, "1e-300"), (-2.5e-8, "-2.5e-8"), (1e21, "1000000000000000000000"),
    (2.0**53 + 2, "9007199254740994"), (0.1 + 0.2, "0.30000000000000004"), (5e-324, "5e-324"),
    (3.0, "3"), (True, "true"), (False, "false"), (42, "42"), ("DE", "DE"),
]


@pytest.mark.parametrize(("value", "js"), JS_STRINGS)
def test_canonical_form_is_what_javascript_writes(value, js):
    assert canonical_attribute(value) == js


@pytest.mark.parametrize(("raw", "field", "fragment"), [
    ({"t": "cut \ud83d"}, "attributes.t", "lone surrogate"),
    ({"country": "(other)"}, "attributes.country", "reserved"),
    ({"country": "(not set)"}, "attributes.country", "reserved"),
    ({"n": float("inf")}, "attributes.n", "finite"),
    ({"v": "x\x00"}, "attributes.v", "NUL"),
])
def test_values_the_store_or_a_breakdown_cannot_hold_are_refused_by_name(raw, field, fragment):
    with pytest.raises(BadAttribute) as err:
        clean_attributes(raw)
    assert err.value.field == field and fragment in err.value.message


def test_targeting_lists_may_be_empty_but_not_endless():
    assert clean_attributes({"groups": []}, allow_lists=True) == {"groups": []}
    with pytest.raises(BadAttribute, match="at most 20 values"):
        clean_attributes({"groups": list(range(21))}, allow_lists=True)


def test_a_study_that_is_not_running_assigns_nobody():
    raw = tomllib.loads((Path(__file__).parents[1] / "experiments" / "checkout-study.toml").read_text())
    running = parse_definition(raw)
    assert KINDS["study"].assign(running, "p1").in_experiment
    draft = parse_definition({**raw, "status": "draft"})
    decided = KINDS["study"].assign(draft, "p1")
    assert (decided.in_experiment, decided.reason, decided.variant) == (False, "not_running", None)
