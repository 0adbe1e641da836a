"""abtest.js hashes exactly as Python does (DESIGN §4.3): shared vectors, then random unit ids.

The snippet runs in a real Chromium page; its pure functions are reached through
``abtest._hash``. Every comparison is exact equality of the numbers, never approximate.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import pytest

from abtest.assignment import bucket, choose_variant, fnv1a32, namespace_position

from .conftest import free_port, snippet_page

pytestmark = pytest.mark.browser

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "assignment.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def hashing(browser, site):  # type: ignore[no-untyped-def]
    """A page with the snippet loaded; its API points at a closed port, so nothing else happens."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    closed = f"http://127.0.0.1:{free_port()}"
    page.goto(site.page("hashing.html", snippet_page("abtest.js", key="pk_test", api=closed)))
    page.wait_for_function("window.abtest && window.abtest._hash")
    yield page
    assert errors == []
    context.close()


def test_fnv1a32_vectors(hashing):  # type: ignore[no-untyped-def]
    cases = VECTORS["fnv1a32"]
    got = hashing.evaluate("cases => cases.map(c => abtest._hash.fnv1a32(c.input))", cases)
    assert got == [c["hash"] for c in cases]


def test_bucket_vectors(hashing):  # type: ignore[no-untyped-def]
    cases = VECTORS["bucket"]
    got = hashing.evaluate("cases => cases.map(c => abtest._hash.bucket(c.seed, c.unit))", cases)
    assert got == [c["bucket"] for c in cases]


def test_choose_vectors(hashing):  # type: ignore[no-untyped-def]
    cases = VECTORS["choose"]
    got = hashing.evaluate(
        "cases => cases.map(c => abtest._hash.chooseVariant(c.bucket, c.weights, c.coverage))", cases)
    assert got == [c["variant"] for c in cases]


def test_range_edges(hashing):  # type: ignore[no-untyped-def]
    """Each range's start belongs to it and its end does not: the edges are the same floats."""
    cases = VECTORS["ranges"]
    got = hashing.evaluate(
        """cases => cases.map(c => c.ranges.map(([lo, hi]) =>
             [abtest._hash.chooseVariant(lo, c.weights, c.coverage),
              abtest._hash.chooseVariant(hi, c.weights, c.coverage)]))""",
        cases,
    )
    for case, edges in zip(cases, got, strict=True):
        for index, ((lo, hi), (at_lo, at_hi)) in enumerate(zip(case["ranges"], edges, strict=True)):
            assert at_lo == index, (case, lo)
            assert at_hi != index, (case, hi)
            assert at_lo == choose_variant(lo, case["weights"], case["coverage"])
            assert at_hi == choose_variant(hi, case["weights"], case["coverage"])


def test_namespace_vectors(hashing):  # type: ignore[no-untyped-def]
    cases = VECTORS["namespace"]
    got = hashing.evaluate("cases => cases.map(c => abtest._hash.namespacePosition(c.unit, c.namespace))", cases)
    assert got == [c["position"] for c in cases]


def _random_units(rng: random.Random, n: int) -> list[str]:
    """Unit ids as sites really have them (UUIDs, numbers, emails) and as they should not
    (accents, CJK, emoji outside the BMP, quotes and spaces): half of them non-ASCII."""
    alphabets = ["abcXYZ019-_.@ '\"\\", "äöüßéñçø", "用户名字测试", "😀🎉𝔘🀄", "\u0301\u200d\ufeff\uffff"]
    units = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            units.append(str(uuid.UUID(int=rng.getrandbits(128))))
        elif kind == 1:
            units.append(str(rng.randrange(10**12)) if i % 8 == 1 else f"user{rng.randrange(10**6)}@example.com")
        else:
            units.append("".join(rng.choice(rng.choice(alphabets)) for _ in range(rng.randint(1, 24))))
    return units


def test_random_units_agree_with_python(hashing):  # type: ignore[no-untyped-def]
    rng = random.Random(20240611)
    units = _random_units(rng, 3000)
    assert sum(not u.isascii() for u in units) > 1000
    seeds = ["checkout-button", "hero-color", "seed用户", "😀"]
    cases = [[seeds[i % len(seeds)], unit] for i, unit in enumerate(units)]
    got = hashing.evaluate(
        """cases => cases.map(([seed, unit]) => [abtest._hash.fnv1a32(unit), abtest._hash.bucket(seed, unit),
                                                  abtest._hash.namespacePosition(unit, seed)])""",
        cases,
    )
    expected = [[fnv1a32(unit), bucket(seed, unit), namespace_position(unit, seed)] for seed, unit in cases]
    mismatches = [(case, js, py) for case, js, py in zip(cases, got, expected, strict=True) if js != py]
    assert mismatches == []


def test_random_choices_agree_with_python(hashing):  # type: ignore[no-untyped-def]
    """Weights that are not exact binary fractions, where running float sums could drift apart."""
    rng = random.Random(7)
    weight_sets = [[1 / 3] * 3, [0.1] * 10, [0.7, 0.2, 0.1], [1 / 7] * 7, [0.34, 0.33, 0.33]]
    cases = []
    for _ in range(3000):
        weights = rng.choice(weight_sets)
        coverage = rng.choice([1.0, 0.9, 0.5, 0.3, 0.05, rng.random() or 1.0])
        # Buckets are multiples of 1/10000, so probe those, including every range edge region.
        cases.append([rng.randrange(10000) / 10000, weights, coverage])
    got = hashing.evaluate("cases => cases.map(([b, w, c]) => abtest._hash.chooseVariant(b, w, c))", cases)
    assert got == [choose_variant(b, w, c) for b, w, c in cases]
