"""A deliberately plain re-implementation of DESIGN §4.3, kept only as the tests' reference.

It hashes with the textbook FNV-1a loop over UTF-16 code units (no C extension, no fast path),
so the production module's ASCII shortcut and arithmetic are checked against something else.
"""

from __future__ import annotations


def fnv1a32(text: str) -> int:
    h = 2166136261
    units = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(units), 2):
        h ^= int.from_bytes(units[i:i + 2], "little")
        h = (h * 16777619) % 2**32
    return h


def bucket(seed: str, unit: str) -> float:
    return (fnv1a32(str(fnv1a32(seed + unit))) % 10000) / 10000


def ranges(weights: list[float], coverage: float) -> list[list[float]]:
    out, cumulative = [], 0.0
    for w in weights:
        out.append([cumulative, cumulative + coverage * w])
        cumulative += w
    return out


def choose(b: float, weights: list[float], coverage: float) -> int | None:
    for i, (lo, hi) in enumerate(ranges(weights, coverage)):
        if lo <= b < hi:
            return i
    return None


def namespace_position(unit: str, namespace: str) -> float:
    return (fnv1a32(unit + "__" + namespace) % 1000) / 1000
