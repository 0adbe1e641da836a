"""Benchmark: cost of one ``assign()`` call, as ratios to baselines measured in the same run.

Run: ``python tests/benchmarks/bench_assign.py`` (not part of the default test run). Baselines:
a bare C FNV-1a call (the floor), the pure-Python FNV loop, and — when the ``growthbook``
package happens to be installed — GrowthBook's Python SDK evaluating the same experiment
(``pip install growthbook`` for the comparison; it is not a dependency of abtest).
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fnv_hash_fast import fnv1a_32  # noqa: E402

from abtest.assignment import assign, bucket  # noqa: E402
from abtest.kinds import parse_definition  # noqa: E402
from tests.reference_assignment import fnv1a32 as python_fnv  # noqa: E402

UNITS = [f"visitor-{i:08d}" for i in range(2000)]


def per_call(fn, repeat: int = 7) -> float:  # type: ignore[no-untyped-def]
    """Best-of-``repeat`` seconds per call over all UNITS (best-of resists scheduler noise)."""
    number = 20
    best = min(timeit.repeat(lambda: [fn(u) for u in UNITS], number=number, repeat=repeat))
    return best / (number * len(UNITS))


def main() -> None:
    definition = parse_definition({
        "key": "checkout-button", "status": "running", "coverage": 0.8,
        "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}],
        "targeting": {"country": ["DE", "AT"]},
    })
    attributes = {"country": "DE"}
    loop_cost = per_call(lambda u: None)
    results = {
        "C fnv1a_32 (baseline)": per_call(lambda u: fnv1a_32(u.encode())),
        "pure-Python FNV loop": per_call(python_fnv),
        "abtest bucket()": per_call(lambda u: bucket("checkout-button", u)),
        "abtest assign()": per_call(lambda u: assign(definition, u, attributes)),
    }
    try:
        from growthbook import Experiment, GrowthBook

        experiment = Experiment(key="checkout-button", variations=["control", "green"], weights=[0.5, 0.5],
                                coverage=0.8, condition={"country": {"$in": ["DE", "AT"]}}, seed="checkout-button",
                                hashVersion=2)

        def growthbook_run(unit: str) -> object:
            gb = GrowthBook(attributes={"id": unit, "country": "DE"})
            return gb.run(experiment).variationId

        for u in UNITS[:200]:  # the two libraries must agree before their speed means anything
            assert growthbook_run(u) == (
                None if (r := assign(definition, u, attributes)).variant is None else ["control", "green"].index(r.variant)
            ) or not assign(definition, u, attributes).in_experiment, u
        results["GrowthBook SDK run()"] = per_call(growthbook_run, repeat=3)
    except ImportError:
        pass
    base = results["C fnv1a_32 (baseline)"] - loop_cost
    print(f"{'what':28} {'ns/call':>10} {'x C FNV':>9}")
    for name, seconds in results.items():
        net = seconds - loop_cost
        print(f"{name:28} {net * 1e9:10.0f} {net / base:9.1f}")
    if "GrowthBook SDK run()" in results:
        ratio = (results["abtest assign()"] - loop_cost) / (results["GrowthBook SDK run()"] - loop_cost)
        print(f"abtest assign() / GrowthBook run() = {ratio:.2f}")


if __name__ == "__main__":
    main()
