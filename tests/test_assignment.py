"""Assignment contract (DESIGN §4.3): hashing, ranges, namespaces, targeting, overrides."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chisquare

from abtest.assignment import (
    assign, bucket, bucket_ranges, choose_variant, fnv1a32, namespace_position, targeting_matches,
)
from abtest.kinds import parse_definition
from abtest.errors import ValidationError
from tests import reference_assignment as ref

VECTORS = json.loads((Path(__file__).parent / "vectors" / "assignment.json").read_text())


def experiment(**overrides):  # type: ignore[no-untyped-def]
    raw = {"key": "exp-one", "status": "running",
           "variants": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}]}
    raw.update(overrides)
    return parse_definition(raw)


@pytest.mark.parametrize("case", VECTORS["fnv1a32"], ids=lambda c: repr(c["input"]))
def test_fnv1a32_matches_javascript_charcode_loop(case):
    assert fnv1a32(case["input"]) == case["hash"]


@pytest.mark.parametrize("case", VECTORS["bucket"], ids=lambda c: f'{c["seed"]}|{c["unit"][:12]}')
def test_bucket_vectors(case):
    assert bucket(case["seed"], case["unit"]) == case["bucket"]


def test_published_growthbook_vectors():
    assert bucket("seed", "a") == 0.0505
    assert bucket("seed", "b") == 0.2696
    assert bucket("foo", "ab") == 0.2575
    assert bucket("89123klj", "8952klfjas09ujkasdf") == 0.124


def test_non_ascii_is_not_hashed_as_utf8_bytes():
    # "ü" is one UTF-16 code unit (0xFC) but two UTF-8 bytes: hashing bytes would disagree with JS.
    from fnv_hash_fast import fnv1a_32

    assert fnv1a32("ü") != fnv1a_32("ü".encode())
    assert fnv1a32("😀") == ref.fnv1a32("😀")  # astral: two surrogate code units


@pytest.mark.parametrize("case", VECTORS["ranges"], ids=lambda c: f'{c["weights"]}@{c["coverage"]}')
def test_range_vectors(case):
    assert [list(r) for r in bucket_ranges(case["weights"], case["coverage"])] == case["ranges"]


@pytest.mark.parametrize("case", VECTORS["choose"])
def test_choice_vectors(case):
    assert choose_variant(case["bucket"], case["weights"], case["coverage"]) == case["variant"]


@pytest.mark.parametrize("case", VECTORS["namespace"], ids=lambda c: f'{c["namespace"]}|{c["unit"][:12]}')
def test_namespace_vectors(case):
    assert namespace_position(case["unit"], case["namespace"]) == case["position"]


@given(st.text(max_size=40), st.text(max_size=40))
def test_bucket_agrees_with_reference_and_lies_in_unit_interval(seed, unit):
    b = bucket(seed, unit)
    assert 0 <= b < 1
    assert b == ref.bucket(seed, unit)
    assert bucket(seed, unit) == b  # stable under repeated calls


@given(st.text(min_size=1, max_size=30))
def test_assign_is_stable(unit):
    definition = experiment(coverage=0.7)
    assert assign(definition, unit) == assign(definition, unit)


@pytest.mark.parametrize("weights", [[0.5, 0.5], [0.2, 0.3, 0.5]])
def test_split_is_uniform_over_100k_units(weights):
    variants = [{"key": f"v{i}", "weight": w} for i, w in enumerate(weights)]
    definition = experiment(variants=variants)
    counts = Counter(assign(definition, f"user-{i}").variant for i in range(100_000))
    observed = [counts[f"v{i}"] for i in range(len(weights))]
    assert sum(observed) == 100_000
    assert chisquare(observed, [w * 100_000 for w in weights]).pvalue > 0.001


def test_two_experiments_with_different_seeds_are_independent():
    a, b = experiment(seed="first"), experiment(key="exp-two", seed="second")
    table = Counter((assign(a, f"u{i}").variant, assign(b, f"u{i}").variant) for i in range(40_000))
    # Under independence each of the four cells holds a quarter of the units.
    assert chisquare([table[k] for k in sorted(table)]).pvalue > 0.001


def test_coverage_ramp_moves_nobody_already_in():
    before = experiment(coverage=0.2)
    after = experiment(coverage=0.6)
    moved = entered = 0
    for i in range(20_000):
        old, new = assign(before, f"u{i}"), assign(after, f"u{i}")
        if old.in_experiment:
            moved += old.variant != new.variant
        else:
            entered += new.in_experiment
    assert moved == 0
    assert 0.45 < entered / 20_000 / 0.8 < 0.55  # 40 of the 80 points left out join


def test_coverage_share_is_respected():
    definition = experiment(coverage=0.25)
    inside = sum(assign(definition, f"u{i}").in_experiment for i in range(40_000))
    assert abs(inside / 40_000 - 0.25) < 0.01


def test_namespace_ranges_that_do_not_overlap_never_share_a_unit():
    left = experiment(key="left-test", namespace={"name": "checkout", "range": [0.0, 0.5]})
    right = experiment(key="right-test", namespace={"name": "checkout", "range": [0.5, 1.0]})
    both = left_count = 0
    for i in range(20_000):
        in_left = assign(left, f"u{i}").in_experiment
        in_right = assign(right, f"u{i}").in_experiment
        both += in_left and in_right
        left_count += in_left
        assert in_left or in_right  # the two halves cover everyone
    assert both == 0
    assert abs(left_count / 20_000 - 0.5) < 0.02


def test_namespace_exclusion_is_explained():
    definition = experiment(namespace={"name": "checkout", "range": [0.0, 0.1]})
    outside = next(f"u{i}" for i in range(1000) if namespace_position(f"u{i}", "checkout") >= 0.1)
    result = assign(definition, outside)
    assert (result.variant, result.in_experiment, result.reason) == (None, False, "namespace")


def test_targeting_equality_and_membership():
    definition = experiment(targeting={"country": ["DE", "AT"], "beta": True, "plan": 3})
    ok = {"country": "AT", "beta": True, "plan": 3}
    assert assign(definition, "alice", ok).in_experiment
    assert assign(definition, "alice", {**ok, "plan": "3", "beta": "true"}).in_experiment
    assert assign(definition, "alice", {**ok, "country": ["FR", "DE"]}).in_experiment
    for attributes in ({**ok, "country": "FR"}, {**ok, "beta": False}, {"country": "DE", "beta": True}):
        result = assign(definition, "alice", attributes)
        assert (result.in_experiment, result.reason) == (False, "targeting")
    assert targeting_matches(definition.targeting, {"country": "DE", "beta": True}) == "plan"


def test_override_wins_and_is_marked_forced():
    definition = experiment(targeting={"country": "DE"}, coverage=0.01)
    result = assign(definition, "alice", {"country": "FR"}, overrides={"exp-one": "treatment"})
    assert (result.variant, result.reason, result.forced) == ("treatment", "override", True)


def test_override_to_unknown_variant_is_an_error():
    with pytest.raises(ValidationError) as err:
        assign(experiment(), "alice", overrides={"exp-one": "purple"})
    assert err.value.field == "override"


def test_only_running_experiments_assign():
    result = assign(experiment(status="draft"), "alice")
    assert (result.variant, result.in_experiment, result.reason) == (None, False, "not_running")


def test_empty_unit_is_refused():
    with pytest.raises(ValidationError) as err:
        assign(experiment(), "")
    assert err.value.field == "unit"


def test_assignment_matches_reference_walk():
    definition = experiment(variants=[{"key": "a1", "weight": 0.2}, {"key": "b1", "weight": 0.3},
                                      {"key": "c1", "weight": 0.5}], coverage=0.6, seed="s")
    for i in range(2000):
        unit = f"visitor-{i}-ü" if i % 3 == 0 else f"visitor-{i}"
        index = ref.choose(ref.bucket("s", unit), [0.2, 0.3, 0.5], 0.6)
        expected = None if index is None else ["a1", "b1", "c1"][index]
        assert assign(definition, unit).variant == expected
