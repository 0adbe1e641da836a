"""Adjusted p-values for many variants or metrics.

Holm (1979) step-down controls the family-wise error rate under any dependence and is
uniformly more powerful than Bonferroni: the default. Benjamini-Hochberg (1995) controls the
false discovery rate (independent or positively dependent tests), on request. Both return
adjusted p-values, monotone in the order of the raw ones and capped at 1, equal to R
``p.adjust(p, "holm")`` / ``p.adjust(p, "BH")`` (a dozen lines of our own: statsmodels'
``multipletests`` costs ~50 ms a call here, too slow for per-page reports).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from abtest.errors import ValidationError

AdjustMethod = Literal["holm", "bh"]


def _check(p_values: Sequence[float]) -> list[float]:
    out = []
    for i, p in enumerate(p_values):
        p = float(p)
        if not (math.isfinite(p) and 0.0 <= p <= 1.0):
            raise ValidationError(f"p-value {i} is {p!r}, not in [0, 1]", field="p_values")
        out.append(p)
    return out


def adjust(p_values: Sequence[float], method: AdjustMethod = "holm") -> tuple[float, ...]:
    """Adjusted p-values in the input order; ``method`` is ``"holm"`` or ``"bh"``."""
    if method not in ("holm", "bh"):
        raise ValidationError(f"unknown method {method!r}; use 'holm' or 'bh'", field="method")
    ps = _check(p_values)
    m = len(ps)
    order = sorted(range(m), key=ps.__getitem__)  # ascending raw p
    adjusted = [0.0] * m
    if method == "holm":
        # step-down: (m − i)·p_(i) for i = 0..m−1, running maximum from the smallest
        running = 0.0
        for i, idx in enumerate(order):
            running = max(running, min(1.0, (m - i) * ps[idx]))
            adjusted[idx] = running
    else:
        # step-up: m/(i+1)·p_(i), running minimum from the largest
        running = 1.0
        for i in range(m - 1, -1, -1):
            idx = order[i]
            running = min(running, m / (i + 1) * ps[idx])
            adjusted[idx] = running
    return tuple(adjusted)


def holm(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm step-down adjusted p-values (family-wise error rate)."""
    return adjust(p_values, "holm")


def benjamini_hochberg(p_values: Sequence[float]) -> tuple[float, ...]:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate)."""
    return adjust(p_values, "bh")


def method_name(method: AdjustMethod) -> str:
    return {"holm": "Holm step-down", "bh": "Benjamini-Hochberg"}[method]
