"""Adding sufficient statistics: the answers of disjoint slices of units sum to the answer for
their union (counts and sums add; so do moments, since n, Σx and Σx² do). A breakdown reads each
segment once and gets the whole test as their sum.

Moments are sums around a shift (against cancellation, see :class:`~abtest.stats.summary.Moments`):
slices with the same shift, as the SQL sources give them, add exactly; otherwise the second is
first re-centred on the shift of the first (or of the second, when the first has no units)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import reduce
from typing import Any

from abtest.aggregates.base import AttemptRows, EventStats, Failed, ParticipantCounts, UnitCounts
from abtest.stats.summary import Counts, Moments


def add(a: Any, b: Any) -> Any:
    """The answer for two disjoint slices together."""
    if isinstance(a, Failed) or isinstance(b, Failed):
        return a if isinstance(a, Failed) else b
    if isinstance(a, (int, float)) and not isinstance(a, bool):  # a variant's units
        return a + b
    if isinstance(a, Counts):
        return Counts(a.n + b.n, a.x + b.x)
    if isinstance(a, Moments):
        if a.n == 0:
            a, b = b, a
        b = b.recentred(a.shift)
        return Moments(a.n + b.n, a.total + b.total, a.total_sq + b.total_sq, a.shift)
    if isinstance(a, EventStats):
        if a.post.n == 0:
            a, b = b, a
        b = b.recentred(a.post.shift, a.pre.shift)
        return EventStats(add(a.units, b.units), add(a.post, b.post), add(a.pre, b.pre), a.cross + b.cross,
                          a.before_exposure + b.before_exposure)
    if isinstance(a, UnitCounts):
        return UnitCounts(_add_maps(a.units, b.units), _add_maps(a.excluded, b.excluded))
    if isinstance(a, ParticipantCounts):
        return ParticipantCounts(*(x + y for x, y in zip(_fields(a), _fields(b), strict=True)))
    if isinstance(a, AttemptRows):
        return AttemptRows(a.rows + b.rows)
    if isinstance(a, tuple):  # band counts, (pairs, baseline only, other only)
        return tuple(x + y for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping):  # per variant (or design)
        return _add_maps(a, b)
    raise TypeError(f"cannot add answers of type {type(a).__name__}")


def _add_maps(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = add(out[key], value) if key in out else value
    return out


def _fields(p: ParticipantCounts) -> tuple[int, int, int, int]:
    return (p.started, p.finished, p.abandoned, p.in_progress)


def total(answers: Iterable[Any]) -> Any:
    """The sum of the answers of every slice (an empty per-variant answer when there are none)."""
    answers = list(answers)
    return reduce(add, answers) if answers else {}
