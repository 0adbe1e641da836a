"""Planning: sample size, minimum detectable effect, progress toward the planned n.

Proportions use the normal approximation of the pooled two-sided two-proportion z-test that
the analysis runs, exactly the equation R ``power.prop.test`` solves (its default
``strict = FALSE``): n = (z₁₋α/₂·√(2·p̄·q̄) + z₁₋β·√(p₁q₁ + p₂q₂))² / δ², p̄ = (p₁ + p₂)/2,
rounded up. Evan Miller's online calculator uses baseline variance under H0
(√(2·p₁q₁) instead of √(2·p̄·q̄)) and rounds to the nearest unit; ``formula="evan_miller"``
reproduces it (baseline 20 %, +5 points, α 0.05, power 0.8 → 1,030 per variant, against 1,094
for ``power.prop.test``). For a baseline above 50 % his calculator replaces p₁ by 1 − p₁ and keeps
the MDE as it is, so baseline 80 %, +5 points is planned as 20 %, +5 points (1,030 per variant):
that is the n for p₁ − δ (80 % → 75 %, towards 50 %, the larger variance), not for p₁ + δ
(973). ``evan_miller`` does the same. (Replacing δ by −δ as well would change nothing: the
formula is symmetric under p → 1 − p, δ → −δ.) At exactly 50 % the complement is the baseline,
so the two sides meet without a jump.

The proportion formula is ours: statsmodels' ``NormalIndPower`` works on Cohen's effect size
h = 2·asin√p₂ − 2·asin√p₁, a different approximation that changes the numbers (it would not
reproduce ``power.prop.test`` or Evan Miller), so it is not used.

Means use the noncentral t of a two-sample equal-n t-test, the equation R ``power.t.test``
solves. R's default (``strict = FALSE``) counts only the upper rejection region, i.e. one-sided
power at α/2, which is what :func:`_t_power` computes: 1 − F(t_crit; df = 2n − 2, ncp = δ/σ·√(n/2))
with F the noncentral t CDF (``scipy.special.nctdtr``) and t_crit the upper α/2 quantile of the
central t (``stdtrit``). That is the very function behind ``statsmodels.stats.power.TTestIndPower``
(``alternative="larger"`` at α/2; the tests check both, and R), called directly so ``abtest power
--sd`` loads neither statsmodels nor scipy.stats (1.4 s). The sample size is the smallest whole n
whose power reaches the target, found by bisection on the integers (power rises with n), so no
root finder's tolerance can put it one off.

With k variants each of the k − 1 comparisons against the baseline is planned at the
Bonferroni level α/(k − 1): conservative for the Holm adjustment the analysis applies, so the
plan is never optimistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from abtest.errors import InsufficientData, ValidationError

ProportionFormula = Literal["pooled", "evan_miller"]
# The standard normal, for the closed form's two quantiles: the stdlib's inverse CDF (Wichura's
# AS241, ~1e-16 relative) agrees with scipy's ``norm.ppf`` to the last digits, and `abtest power`
# does not pay scipy's import (~0.6 s) for two numbers.
_NORMAL = NormalDist()
# Beyond this many units per variant a plan is refused rather than printed (a minimum detectable
# effect of 1e-300 would otherwise overflow the arithmetic): far past any site's traffic.
_MAX_N = 1e15


@dataclass(frozen=True, slots=True)
class SampleSize:
    n_per_variant: int
    n_total: int
    variants: int
    alpha_per_comparison: float
    power: float
    method: str


def _number(value: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"must be a number, got {value!r}", field=field)
    try:
        return float(value)
    except OverflowError:  # an integer beyond the float range
        raise ValidationError(f"must be a finite number, not an integer of {len(str(abs(value)))} digits",
                              field=field) from None


def _open_unit(value: float, field: str) -> float:
    value = _number(value, field)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ValidationError(f"must be between 0 and 1 (exclusive), got {value}", field=field)
    return value


def _positive(value: float, field: str) -> float:
    value = _number(value, field)
    if not (math.isfinite(value) and value > 0):
        raise ValidationError(f"must be greater than 0, got {value}", field=field)
    return value


# More arms than any test has; the bound keeps α/(k − 1) a float (k of 400 digits overflows it).
MAX_VARIANTS = 1000


def _variants(variants: int) -> int:
    if isinstance(variants, bool) or int(variants) != variants or not 2 <= variants <= MAX_VARIANTS:
        raise ValidationError(f"must be a whole number from 2 to {MAX_VARIANTS}, got {variants!r}", field="variants")
    return int(variants)


def _common(alpha: float, power: float, variants: int) -> tuple[float, float, int]:
    alpha = _open_unit(alpha, "alpha")
    power = _open_unit(power, "power")
    k = _variants(variants)
    return alpha / (k - 1), power, k


def _check_rate(baseline: float, mde: float) -> tuple[float, float]:
    baseline = _open_unit(baseline, "baseline")
    mde = _positive(mde, "mde")
    if baseline + mde >= 1.0:
        raise ValidationError(
            f"baseline + mde must stay below 1, got {baseline} + {mde}", field="mde"
        )
    return baseline, mde


def _n_proportions(p1: float, delta: float, a: float, power: float, formula: str) -> float:
    if formula == "evan_miller" and p1 > 0.5:
        p1 = 1.0 - p1  # his calculator's complement above 50 %, with the same δ (module docstring)
    p2 = p1 + delta
    # z of the upper α/2 tail as −Φ⁻¹(α/2), not Φ⁻¹(1 − α/2), which loses digits for a tiny α.
    za, zb = -_NORMAL.inv_cdf(a / 2), _NORMAL.inv_cdf(power)
    if formula == "pooled":
        pbar = (p1 + p2) / 2
        null_sd = math.sqrt(2 * pbar * (1 - pbar))
    else:
        null_sd = math.sqrt(2 * p1 * (1 - p1))
    alt_sd = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ratio = (za * null_sd + zb * alt_sd) / delta
    return ratio * ratio  # not ** 2, which raises on overflow: a tiny delta gives inf, refused by the caller


def sample_size_proportions(
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
    formula: ProportionFormula = "pooled",
) -> SampleSize:
    """Units per variant to detect an absolute rise ``mde`` over ``baseline`` (two-sided).

    ``formula="pooled"`` matches R ``power.prop.test`` (rounded up); ``"evan_miller"`` matches
    Evan Miller's calculator (rounded to nearest), including its use of 1 − ``baseline`` with the
    same ``mde`` when ``baseline`` is above 0.5 (so 0.8 + 0.05 is planned as 0.2 + 0.05). Our closed
    form (normal quantiles from the standard library), not statsmodels' ``NormalIndPower``: that uses Cohen's h
    and gives other numbers.
    """
    baseline, mde = _check_rate(baseline, mde)
    a, power, k = _common(alpha, power, variants)
    if formula not in ("pooled", "evan_miller"):
        raise ValidationError(f"unknown formula {formula!r}", field="formula")
    n_exact = _n_proportions(baseline, mde, a, power, formula)
    if not n_exact <= _MAX_N:
        raise ValidationError(f"mde {mde} is too small to plan for: it needs more than {_MAX_N:.3g} units per "
                              "variant", field="mde")
    n = math.ceil(n_exact - 1e-9) if formula == "pooled" else max(1, round(n_exact))
    name = (
        "normal approximation of the pooled two-proportion z-test (R power.prop.test)"
        if formula == "pooled"
        else "normal approximation, baseline variance under H0 (Evan Miller's calculator)"
    )
    if k > 2:
        name += f", Bonferroni α/{k - 1} per comparison"
    return SampleSize(n, n * k, k, a, power, name)


def mde_proportions(
    baseline: float,
    n_per_variant: int,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
) -> float:
    """Smallest absolute rise over ``baseline`` detectable with ``n_per_variant`` units per
    variant (inverse of :func:`sample_size_proportions` with the pooled formula)."""
    from scipy.optimize import brentq

    baseline = _open_unit(baseline, "baseline")
    n = _positive(n_per_variant, "n_per_variant")
    a, power, _ = _common(alpha, power, variants)
    hi = 1.0 - baseline - 1e-12

    def gap(delta: float) -> float:
        return _n_proportions(baseline, delta, a, power, "pooled") - n

    if gap(hi) > 0:
        raise InsufficientData(
            f"{n_per_variant} units per variant cannot detect any rise over {baseline}",
            field="n_per_variant",
        )
    return float(brentq(gap, 1e-12, hi, xtol=1e-14, rtol=1e-12))


# Beyond this many units per variant planning is refused (the bound of the former doubling
# search: 2**39 ≈ 5.5e11).
_MAX_N_MEANS = float(2**39)


def _t_power(n: float, delta: float, sd: float, a: float) -> float:
    """Power of the two-sided equal-n two-sample t-test as R ``power.t.test`` defines it (upper
    rejection region only, i.e. one-sided at α/2; see the module docstring)."""
    from scipy.special import nctdtr, stdtrit

    df = 2.0 * n - 2.0
    critical = -stdtrit(df, a / 2)  # the upper α/2 quantile, as −(lower), which keeps digits for a tiny α
    return float(1.0 - nctdtr(df, delta / sd * math.sqrt(n / 2.0), critical))


def sample_size_means(
    sd: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
) -> SampleSize:
    """Units per variant to detect a difference ``mde`` in means with unit-level standard
    deviation ``sd`` (two-sided two-sample t-test; the equation of R ``power.t.test``, rounded up):
    the smallest n ≥ 2 whose power (:func:`_t_power`) reaches ``power``."""
    sd = _positive(sd, "sd")
    mde = _positive(mde, "mde")
    a, power, k = _common(alpha, power, variants)
    if _t_power(2.0, mde, sd, a) >= power:
        n = 2
    else:
        if _t_power(_MAX_N_MEANS, mde, sd, a) < power:
            raise ValidationError("mde is too small relative to sd to plan for", field="mde")
        short, enough = 2, int(_MAX_N_MEANS)  # power(short) < target <= power(enough)
        while enough - short > 1:
            middle = (short + enough) // 2
            if _t_power(middle, mde, sd, a) >= power:
                enough = middle
            else:
                short = middle
        n = enough
    name = "two-sample t-test, noncentral t (R power.t.test)"
    if k > 2:
        name += f", Bonferroni α/{k - 1} per comparison"
    return SampleSize(n, n * k, k, a, power, name)


def mde_means(
    sd: float,
    n_per_variant: int,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
) -> float:
    """Smallest difference in means detectable with ``n_per_variant`` units per variant.

    The power is :func:`_t_power` (one-sided at α/2, as R ``power.t.test``), the root scipy's
    ``brentq`` (``TTestIndPower().solve_power`` for the effect size is only good to ~1e-6
    relative: 2.5e-6 off R at n = 10, and drifts far off for n ≳ 1e11).
    """
    sd = _positive(sd, "sd")
    n = _positive(n_per_variant, "n_per_variant")
    if n < 2:
        raise ValidationError("must be at least 2", field="n_per_variant")
    a, power, _ = _common(alpha, power, variants)
    from scipy.optimize import brentq

    hi = sd
    while _t_power(n, hi, sd, a) < power:
        hi *= 2
    return float(brentq(lambda d: _t_power(n, d, sd, a) - power, 0.0, hi, xtol=1e-14, rtol=1e-12))


def progress(n_observed: int, n_target: int) -> float:
    """Share of the planned sample reached, in [0, 1] (capped at 1 once the target is met)."""
    if isinstance(n_observed, bool) or n_observed < 0:
        raise ValidationError(f"must be ≥ 0, got {n_observed!r}", field="n_observed")
    if isinstance(n_target, bool) or not n_target > 0:
        raise ValidationError(f"must be > 0, got {n_target!r}", field="n_target")
    return min(1.0, n_observed / n_target)
