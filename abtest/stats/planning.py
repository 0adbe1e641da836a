"""How many participants: planning small usability studies (Sauro & Lewis, *Quantifying the User
Experience*, 2nd ed., ch. 6 and 7).

- Problem discovery (Virzi 1992; Nielsen & Landauer 1993): a problem that affects a share ``p`` of
  users is seen at least once among ``n`` participants with probability ``1 − (1 − p)^n``; with
  p = 0.31, five participants see it with probability 0.844 — Nielsen's "five users find about
  85 % of the problems".
- Completion-rate precision: the smallest ``n`` whose adjusted-Wald (Agresti-Coull) interval
  around an expected completion rate is no wider than a target margin (half-width), found by
  iterating ``n`` as Sauro & Lewis do, since the adjusted rate moves with ``n``.
"""

from __future__ import annotations

import math

from abtest.errors import ValidationError
from abtest.stats.summary import z_quantile

MAX_PARTICIPANTS = 100_000


def _share(value: float, field: str, *, closed: bool = False) -> float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = number and ((0 <= value <= 1) if closed else (0 < value < 1))
    if not ok:
        bounds = "from 0 to 1" if closed else "strictly between 0 and 1"
        raise ValidationError(f"{value!r} must be a proportion {bounds}", field=field)
    return float(value)


def discovery_chance(p: float, n: int) -> float:
    """Chance that a problem affecting a share ``p`` of users shows up at least once in ``n`` sessions."""
    _share(p, "p", closed=True)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_PARTICIPANTS:
        raise ValidationError(f"must be a whole number of participants from 0 to {MAX_PARTICIPANTS}", field="n")
    return _seen(p, n)


def _seen(p: float, n: int) -> float:
    return 1 - (1 - p) ** n


def participants_for_discovery(p: float, target: float) -> int:
    """Smallest ``n`` with ``1 − (1 − p)^n ≥ target``."""
    _share(p, "p")
    _share(target, "target")
    too_many = ValidationError(f"needs more than {MAX_PARTICIPANTS} participants; raise p or lower the target",
                               field="target")
    estimate = math.log1p(-target) / math.log1p(-p)
    if not estimate <= MAX_PARTICIPANTS + 1:  # also where 1 − p rounds to 1 and no n would ever do
        raise too_many
    n = max(1, math.ceil(estimate))
    while n > 1 and _seen(p, n - 1) >= target:  # guard against rounding in the logs
        n -= 1
    while _seen(p, n) < target:
        n += 1
        if n > MAX_PARTICIPANTS:
            raise too_many
    return n


def adjusted_wald_margin(rate: float, n: int, alpha: float = 0.05) -> float:
    """Half-width of the adjusted-Wald interval for an observed completion rate ``rate`` out of ``n``."""
    _share(rate, "rate", closed=True)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValidationError(f"{n!r} must be a whole number of participants, 1 or more", field="n")
    z = z_quantile(alpha)
    n_adj = n + z * z
    p_adj = (rate * n + z * z / 2) / n_adj
    return z * math.sqrt(p_adj * (1 - p_adj) / n_adj)


def participants_for_margin(rate: float, margin: float, alpha: float = 0.05) -> int:
    """Smallest ``n`` whose adjusted-Wald interval around ``rate`` has half-width ≤ ``margin``."""
    _share(rate, "rate", closed=True)
    _share(margin, "margin")
    if margin > 0.5:
        raise ValidationError("a margin above ±50 points says nothing; choose 0.5 or less", field="margin")
    z = z_quantile(alpha)
    # Start near the closed form n = z²·p(1−p)/d² − z², then step to the exact smallest n.
    squared = margin * margin
    estimate = z * z * min(rate * (1 - rate), 0.25) / squared - z * z if squared > 0 else math.inf
    if estimate > 2 * MAX_PARTICIPANTS:  # far past the bound (a margin of 1e-300 would overflow the guess)
        raise ValidationError(f"needs more than {MAX_PARTICIPANTS} participants", field="margin")
    guess = math.floor(estimate)
    n = max(1, min(guess, MAX_PARTICIPANTS))
    while n > 1 and adjusted_wald_margin(rate, n - 1, alpha) <= margin:
        n -= 1
    while adjusted_wald_margin(rate, n, alpha) > margin:
        n += 1
        if n > MAX_PARTICIPANTS:
            raise ValidationError(f"needs more than {MAX_PARTICIPANTS} participants", field="margin")
    return n
