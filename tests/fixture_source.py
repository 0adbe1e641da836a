"""An aggregate source with no database: answers are given up front, per request (and segment).

What tea-tasting does for its metrics: analysis is a pure function of aggregates, so it can be
tested on numbers written into the test, with the database tests kept for the SQL side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from abtest.aggregates.base import Aggregates, Request, Segment, Slice, UnitCounts
from abtest.stats.summary import Moments


def moments(n: int, mean: float, sd: float) -> Moments:
    """Moments of n values with this mean and (ddof = 1) standard deviation."""
    return Moments(n, n * mean, (n - 1) * sd * sd + n * mean * mean)


def units(**per_variant: int) -> UnitCounts:
    return UnitCounts(per_variant, {"forced": 0, "multiple_variants": 0})


@dataclass
class FixtureSource:
    """Answers ``whole`` (request → per-variant answer) and, for a breakdown, ``segments``
    (segment value → the same). Records what it was asked, so tests can check the requests."""

    whole: Mapping[Request, Any]
    segments: Mapping[str, Mapping[Request, Any]] = field(default_factory=dict)
    asked: list[tuple[str, tuple[Request, ...], str | None]] = field(default_factory=list)

    def fetch(self, key: str, variants: Sequence[str], requests: Sequence[Request], now: datetime,
              by: str | None = None) -> Aggregates:
        self.asked.append((key, tuple(requests), by))
        whole = {r: self.whole.get(r, {}) for r in requests}
        segments = tuple(Segment(value, Slice({r: answers.get(r, {}) for r in requests if not r.whole_only}))
                         for value, answers in self.segments.items()) if by else ()
        return Aggregates(Slice(whole), by=by, segments=segments)
