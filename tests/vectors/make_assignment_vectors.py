"""Regenerate tests/vectors/assignment.json from the plain reference implementation.

Run once when the contract grows: ``python tests/vectors/make_assignment_vectors.py``. The FNV
values of non-ASCII strings were checked against JavaScript's charCodeAt loop in Node (the
``fnv1a32`` section keeps those numbers as they came out of Node).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference_assignment import bucket, choose, fnv1a32, namespace_position, ranges  # noqa: E402

OUT = Path(__file__).with_name("assignment.json")

# Computed in Node 20 with GrowthBook's shift-add formulation of the FNV-1a multiply over charCodeAt.
NODE_FNV = [["", 2166136261], ["a", 3826002220], ["seeda", 717764279], ["ü", 2030796987],
            ["用户", 3303804768], ["😀", 3409036472], ["seed用户42", 1596595719],
            ["naïve-visitor", 2517054051], ["Zoë😀x", 1873369958]]
PUBLISHED_BUCKETS = [["seed", "a", 0.0505], ["seed", "b", 0.2696], ["foo", "ab", 0.2575],
                     ["89123klj", "8952klfjas09ujkasdf", 0.124]]
MORE_UNITS = ["alice", "bob", "visitor-00017", "ü", "用户", "😀", "Zoë😀x", "0", "a" * 200]
WEIGHTS = [[0.5, 0.5], [0.2, 0.3, 0.5], [0.1, 0.2, 0.3, 0.4], [1 / 3, 1 / 3, 1 / 3], [0.34, 0.33, 0.33]]
COVERAGES = [1.0, 0.6, 0.2, 0.05]


def main() -> None:
    for text, expected in NODE_FNV:
        assert fnv1a32(text) == expected, text
    for seed, unit, expected in PUBLISHED_BUCKETS:
        assert bucket(seed, unit) == expected, (seed, unit)
    buckets = PUBLISHED_BUCKETS + [[s, u, bucket(s, u)] for s in ("checkout-button", "seed用户")
                                   for u in MORE_UNITS]
    choices = []
    for weights in WEIGHTS:
        for coverage in COVERAGES:
            for b in (0.0, 0.0505, 0.199, 0.2, 0.333, 0.3333, 0.5, 0.6, 0.9999):
                choices.append({"bucket": b, "weights": weights, "coverage": coverage,
                                "variant": choose(b, weights, coverage)})
    vectors = {
        "about": "DESIGN §4.3 assignment contract; read by the Python and JavaScript tests",
        "fnv1a32": [{"input": t, "hash": h} for t, h in NODE_FNV],
        "bucket": [{"seed": s, "unit": u, "bucket": b} for s, u, b in buckets],
        "ranges": [{"weights": w, "coverage": c, "ranges": ranges(w, c)} for w in WEIGHTS for c in COVERAGES],
        "choose": choices,
        "namespace": [{"unit": u, "namespace": n, "position": namespace_position(u, n)}
                      for n in ("checkout", "用户") for u in MORE_UNITS],
    }
    OUT.write_text(json.dumps(vectors, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
