"""Always-valid inference for peeking: the mixture sequential probability ratio test.

Method: the normal-mixture mSPRT of Johari, Koomen, Pekelis & Walsh (2017, "Peeking at A/B
tests", KDD; 2022, "Always valid inference", *Operations Research* 70(3)). With θ̂ the observed
difference, V its estimated variance and a N(0, τ²) mixing distribution over the true
difference, the mixture likelihood ratio against H0: θ = θ₀ is

    Λ(θ₀) = √(V / (V + τ²)) · exp(τ² (θ̂ − θ₀)² / (2 V (V + τ²))).

By Ville's inequality P(∃ look: Λ(θ_true) ≥ 1/α) ≤ α, so

* the always-valid p-value is min(1, 1/Λ(0)), and
* the always-valid confidence interval is {θ₀ : Λ(θ₀) < 1/α}
  = θ̂ ± √(V(V + τ²)/τ² · (2 log(1/α) + log((V + τ²)/V))).

This interval is exactly the Gaussian-mixture asymptotic confidence sequence of Waudby-Smith,
Arnold, Wu, Wang, Ramdas et al. (2023, "Time-uniform central limit theory and asymptotic
confidence sequences", *Annals of Statistics*) with τ² = ρ²σ²; with V estimated from the data
(plug-in variance) the guarantee is asymptotic, as in that paper. τ² is tuned so the interval is
narrowest at the planned sample size n*: their choice ρ² = (−2 log α + log(1 − 2 log α)) / n*
becomes τ² = (−2 log α + log(1 − 2 log α)) · V(n*), with V(n*) the variance of the difference
when both variants reach n* units.

Running behaviour: a single look is always valid on its own; to report the monotone versions
(running minimum of p, running intersection of intervals), pass the previous look's
:class:`~abtest.stats.summary.Effect` as ``previous``, or call :func:`sequential_series` over a
cumulative series of looks. If the running intersection became empty (which happens with
probability ≤ α) the current interval is reported instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.summary import (
    Counts,
    Effect,
    Interval,
    Moments,
    _count,
    check_alpha,
    mean_difference,
)

METHOD = "always-valid mSPRT (Johari et al. 2017), normal mixture"


def mixture_tau2(var_b: float, var_t: float, planned_n: int, alpha: float) -> float:
    """τ² that makes the confidence sequence tightest at ``planned_n`` units per variant."""
    c = -2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))
    return c * (var_b / planned_n + var_t / planned_n)


def _msprt(
    diff: float,
    var: float,
    tau2: float,
    alpha: float,
    previous: Effect | None,
    relative: float | None,
    what: str,
) -> Effect:
    if var <= 0 or tau2 <= 0:
        raise InsufficientData("zero variance in both variants; nothing to test")
    total = var + tau2
    log_lr = 0.5 * math.log(var / total) + tau2 * diff * diff / (2 * var * total)
    p = 1.0 if log_lr <= 0 else math.exp(-log_lr)
    half = math.sqrt(var * total / tau2 * (2 * math.log(1 / alpha) + math.log(total / var)))
    ci = Interval(diff - half, diff + half)
    if previous is not None:
        p = min(p, previous.p_value)
        low, high = max(ci.low, previous.ci.low), min(ci.high, previous.ci.high)
        if low <= high:
            ci = Interval(low, high)
    return Effect(
        effect=diff,
        effect_kind="difference",
        ci=ci,
        p_value=min(1.0, max(0.0, p)),
        se=math.sqrt(var),
        method=f"{METHOD}, {what}",
        relative=relative,
        relative_ci=None,
        statistic=log_lr,
        prior_var=tau2,
    )


def _planned(planned_n: int) -> int:
    n = _count(planned_n, "planned_n")
    if n < 1:
        raise ValidationError("must be at least 1", field="planned_n")
    return n


def sequential_proportions(
    baseline: Counts,
    treatment: Counts,
    planned_n: int,
    alpha: float = 0.05,
    previous: Effect | None = None,
) -> Effect:
    """Always-valid p-value and interval for the difference of two conversion rates.

    V = p_b(1−p_b)/n_b + p_t(1−p_t)/n_t (unpooled). ``relative`` is the point lift only;
    ``relative_ci`` is ``None`` (the always-valid guarantee is for the difference).
    """
    check_alpha(alpha)
    n_star = _planned(planned_n)
    for c, field in ((baseline, "baseline"), (treatment, "treatment")):
        if c.n < 2:
            raise InsufficientData("needs at least 2 units per variant", field=field)
    pb, pt = baseline.rate, treatment.rate
    vb, vt = pb * (1 - pb), pt * (1 - pt)
    what = "difference of proportions"
    if vb == 0 and vt == 0:
        # Each variant converted all or none (and not the same: _check_pair would have said):
        # the unpooled variance is zero, so plug in the pooled one, the variance under H0.
        pooled = (baseline.x + treatment.x) / (baseline.n + treatment.n)
        if pooled in (0.0, 1.0):
            raise InsufficientData("no unit converted, or every unit did, in both variants")
        vb = vt = pooled * (1 - pooled)
        what += " (pooled variance: each variant converted all or none of its units)"
    var = vb / baseline.n + vt / treatment.n
    tau2 = mixture_tau2(vb, vt, n_star, alpha)
    rel = pt / pb - 1 if pb > 0 else None
    effect = _msprt(pt - pb, var, tau2, alpha, previous, rel, what)
    return replace(effect, ci=effect.ci.clip(-1.0, 1.0))


def sequential_means(
    baseline: Moments,
    treatment: Moments,
    planned_n: int,
    alpha: float = 0.05,
    previous: Effect | None = None,
) -> Effect:
    """Always-valid p-value and interval for the difference of two means (plug-in variances)."""
    check_alpha(alpha)
    n_star = _planned(planned_n)
    for m, field in ((baseline, "baseline"), (treatment, "treatment")):
        if m.n < 2:
            raise InsufficientData("needs at least 2 units per variant", field=field)
    vb, vt = baseline.variance, treatment.variance
    var = vb / baseline.n + vt / treatment.n
    tau2 = mixture_tau2(vb, vt, n_star, alpha)
    mb, mt = baseline.mean, treatment.mean
    rel = mt / mb - 1 if mb != 0 else None
    return _msprt(mean_difference(baseline, treatment), var, tau2, alpha, previous, rel, "difference of means")


def sequential_difference(
    diff: float,
    var_b: float,
    var_t: float,
    unit_var_b: float,
    unit_var_t: float,
    planned_n: int,
    alpha: float = 0.05,
    what: str = "difference",
    relative: float | None = None,
) -> Effect:
    """Always-valid test of any difference whose estimate is asymptotically normal: ``var_*`` the
    variance of each variant's estimate, ``unit_var_*`` the variance of one unit's contribution
    (what the mixture is tuned with at ``planned_n`` units per variant)."""
    check_alpha(alpha)
    n_star = _planned(planned_n)
    tau2 = mixture_tau2(unit_var_b, unit_var_t, n_star, alpha)
    return _msprt(diff, var_b + var_t, tau2, alpha, None, relative, what)


def sequential_series(
    looks: Sequence[tuple[Counts, Counts]] | Sequence[tuple[Moments, Moments]],
    planned_n: int,
    alpha: float = 0.05,
) -> list[Effect]:
    """Run the test over cumulative looks (baseline, treatment) in time order and return the
    monotone results: running-minimum p-value, running-intersection interval."""
    out: list[Effect] = []
    previous: Effect | None = None
    for baseline, treatment in looks:
        if isinstance(baseline, Counts) and isinstance(treatment, Counts):
            previous = sequential_proportions(baseline, treatment, planned_n, alpha, previous)
        elif isinstance(baseline, Moments) and isinstance(treatment, Moments):
            previous = sequential_means(baseline, treatment, planned_n, alpha, previous)
        else:
            raise ValidationError("each look is a pair of Counts or a pair of Moments", field="looks")
        out.append(previous)
    return out
