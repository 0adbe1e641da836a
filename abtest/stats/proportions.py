"""Conversion rates and their comparison (between subjects).

Per variant: Wilson score interval by default (good coverage at any n, well defined at 0 and
n conversions); adjusted Wald / Agresti-Coull for small-sample task success as Sauro & Lewis
recommend (*Quantifying the User Experience*, 2nd ed., ch. 3); Clopper-Pearson when a
guaranteed-coverage ("exact") interval is wanted.

Between variants (:func:`compare_proportions`) the fixed-horizon default is the pooled
two-proportion z-test, equal to R's ``prop.test(correct = FALSE)``, with the unpooled Wald
interval of the difference (the results-document contract, DESIGN §4.5). When the 2×2 table is
small the normal approximation is poor, so the choice follows Sauro & Lewis (ch. 5) and
Campbell (2007, *Statistics in Medicine* 26:3661): the N−1 chi-square test while every expected
cell count is ≥ 1, the Fisher exact (Fisher–Irwin) test below that.

statsmodels does the numerical work where it has the exact method: the Clopper-Pearson interval
(``statsmodels.stats.proportion.proportion_confint``), the pooled z-test (``proportions_ztest``)
and its Wald interval (``confint_proportions_2indep``). It has no N−1 test and its Agresti-Caffo
interval always adds 1 success and 1 failure (not z²/4), so those stay ours; Fisher's test is
``scipy.stats.fisher_exact``. The Wilson and adjusted-Wald intervals are closed forms (the same
formulas as ``proportion_confint``'s, checked against it and against R in the tests): every
report computes them, and importing ``statsmodels.stats.proportion`` (with scipy.stats and
pandas) costs about 0.8 s, most of what ``abtest analyze`` took. statsmodels is imported inside
the functions that use it.
"""

from __future__ import annotations

import math
from typing import Literal

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.summary import (
    Counts,
    Effect,
    Estimate,
    Interval,
    check_alpha,
    clip_p,
    normal_two_sided_p,
    relative_lift,
    z_quantile,
)

IntervalMethod = Literal["wilson", "agresti_coull", "clopper_pearson"]

_INTERVAL_NAMES = {
    "wilson": "Wilson score interval",
    "agresti_coull": "adjusted Wald (Agresti-Coull) interval",
    "clopper_pearson": "Clopper-Pearson exact interval",
}


def _z(alpha: float) -> float:
    return z_quantile(alpha)


def _need_units(counts: Counts, field: str) -> None:
    if counts.n == 0:
        raise InsufficientData("no units yet", field=field)


def proportion_interval(
    counts: Counts, alpha: float = 0.05, method: IntervalMethod = "wilson"
) -> Estimate:
    """Observed rate ``x/n`` with a ``1 − alpha`` interval.

    ``method``: ``"wilson"`` (Wilson 1927; default), ``"agresti_coull"`` (adjusted Wald:
    Wald interval around (x + z²/2)/(n + z²), Agresti & Coull 1998, Sauro & Lewis 2005; clipped
    to [0, 1]) or ``"clopper_pearson"`` (beta quantiles, as R ``binom.test``). All three are
    valid at 0 and n conversions. The point estimate is always the observed rate.

    Wilson and adjusted Wald are their closed forms (as ``proportion_confint``'s ``"wilson"`` and
    ``"agresti_coull"``, which they equal to rounding); Clopper-Pearson is computed by
    ``statsmodels.stats.proportion.proportion_confint(method="beta")``. The ends are pinned at 0
    and n conversions.
    """
    check_alpha(alpha)
    _need_units(counts, "n")
    if method not in _INTERVAL_NAMES:
        raise ValidationError(
            f"unknown interval method {method!r}; use one of {sorted(_INTERVAL_NAMES)}",
            field="method",
        )
    x, n = counts.x, counts.n
    if method == "wilson":
        low, high = _wilson(x, n, _z(alpha))
    elif method == "agresti_coull":
        low, high = _agresti_coull(x, n, _z(alpha))
    else:
        from statsmodels.stats.proportion import proportion_confint

        low, high = (float(v) for v in proportion_confint(x, n, alpha=alpha, method="beta"))
    # Exact ends at 0 and n conversions; elsewhere only rounding can cross [0, 1].
    low = 0.0 if x == 0 else min(max(0.0, low), x / n)
    high = 1.0 if x == n else max(min(1.0, high), x / n)
    return Estimate(counts.rate, Interval(low, high), counts.n, _INTERVAL_NAMES[method])


def _wilson(x: int, n: int, z: float) -> tuple[float, float]:
    """Wilson (1927): the rates p whose score test |p̂ − p| / √(p(1 − p)/n) ≤ z, i.e.
    (x + z²/2) / (n + z²) ± z / (n + z²) · √(x(n − x)/n + z²/4)."""
    z2 = z * z
    centre = (x + z2 / 2) / (n + z2)
    half = z / (n + z2) * math.sqrt(x * (n - x) / n + z2 / 4)
    return centre - half, centre + half


def _agresti_coull(x: int, n: int, z: float) -> tuple[float, float]:
    """Agresti & Coull (1998): the Wald interval around p̃ = (x + z²/2) / ñ with ñ = n + z²."""
    n_tilde = n + z * z
    p_tilde = (x + z * z / 2) / n_tilde
    half = z * math.sqrt(p_tilde * (1 - p_tilde) / n_tilde)
    return p_tilde - half, p_tilde + half


def wilson_interval(counts: Counts, alpha: float = 0.05) -> Estimate:
    """Wilson score interval (the default for conversion rates)."""
    return proportion_interval(counts, alpha, "wilson")


def adjusted_wald_interval(counts: Counts, alpha: float = 0.05) -> Estimate:
    """Adjusted Wald (Agresti-Coull) interval: Sauro & Lewis's choice for task success."""
    return proportion_interval(counts, alpha, "agresti_coull")


def clopper_pearson_interval(counts: Counts, alpha: float = 0.05) -> Estimate:
    """Clopper-Pearson "exact" interval (guaranteed coverage, conservative)."""
    return proportion_interval(counts, alpha, "clopper_pearson")


# --- two independent groups -------------------------------------------------------------


def _check_pair(baseline: Counts, treatment: Counts) -> None:
    _need_units(baseline, "baseline")
    _need_units(treatment, "treatment")
    pooled = (baseline.x + treatment.x) / (baseline.n + treatment.n)
    if pooled in (0.0, 1.0):
        what = "no" if pooled == 0.0 else "every"
        raise InsufficientData(
            f"{what} unit converted in either variant, so there is no difference to test"
        )


def _wald_se(baseline: Counts, treatment: Counts, add: float = 0.0) -> tuple[float, float]:
    """p_t − p_b and its unpooled standard error; with ``add`` > 0 the adjusted-Wald variant
    that adds ``add`` successes and ``add`` failures to each group (Agresti & Caffo 2000).
    Refuses a zero standard error (degenerate interval)."""
    pb = (baseline.x + add) / (baseline.n + 2 * add)
    pt = (treatment.x + add) / (treatment.n + 2 * add)
    se = math.sqrt(pb * (1 - pb) / (baseline.n + 2 * add) + pt * (1 - pt) / (treatment.n + 2 * add))
    if se == 0.0:
        raise InsufficientData(
            "each variant converted all or none of its units; the Wald interval is degenerate"
        )
    return pt - pb, se


def _wald_difference(
    baseline: Counts, treatment: Counts, z: float, add: float = 0.0
) -> tuple[float, float, Interval]:
    """Wald interval ``d ± z·se`` of :func:`_wald_se` (ours: statsmodels' Agresti-Caffo
    interval fixes ``add`` at 1, we use z²/4 as Sauro & Lewis do)."""
    diff, se = _wald_se(baseline, treatment, add)
    return diff, se, Interval(diff - z * se, diff + z * se).clip(*DIFFERENCE_RANGE)


DIFFERENCE_RANGE = (-1.0, 1.0)  # a difference of two rates; every interval of one is clipped to it


def _relative(baseline: Counts, treatment: Counts, z: float) -> tuple[float | None, Interval | None]:
    pb, pt = baseline.rate, treatment.rate
    rel, ci = relative_lift(pb, pt, pb * (1 - pb) / baseline.n, pt * (1 - pt) / treatment.n, z)
    # A rate cannot fall by more than all of it: the lift is at least −100 %.
    return rel, None if ci is None else ci.clip(-1.0, math.inf)


def z_test(baseline: Counts, treatment: Counts, alpha: float = 0.05) -> Effect:
    """Pooled two-proportion z-test with the unpooled Wald interval of the difference.

    The p-value equals R ``prop.test(c(xt, xb), c(nt, nb), correct = FALSE)``; the interval is
    the Wald interval ``d ± z·sqrt(pb(1−pb)/nb + pt(1−pt)/nt)``; the relative lift
    pt/pb − 1 gets a delta-method interval (``None`` when pb = 0; ours, statsmodels has no
    delta-method ratio interval).

    Test: ``statsmodels.stats.proportion.proportions_ztest`` (pooled variance, two-sided);
    interval: ``statsmodels.stats.proportion.confint_proportions_2indep(method="wald",
    compare="diff")``.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    check_alpha(alpha)
    _check_pair(baseline, treatment)
    z = _z(alpha)
    diff, se = _wald_se(baseline, treatment)
    stat, p = proportions_ztest(
        [treatment.x, baseline.x],
        [treatment.n, baseline.n],
        value=0,
        alternative="two-sided",
        prop_var=False,
    )
    stat, p = float(stat), clip_p(float(p))
    low, high = confint_proportions_2indep(
        treatment.x, treatment.n, baseline.x, baseline.n, method="wald", compare="diff", alpha=alpha
    )
    ci = Interval(float(low), float(high)).clip(*DIFFERENCE_RANGE)
    rel, rel_ci = _relative(baseline, treatment, z)
    return Effect(
        effect=diff,
        effect_kind="difference",
        ci=ci,
        p_value=p,
        se=se,
        method="two-proportion z-test (pooled), Wald interval of the difference",
        relative=rel,
        relative_ci=rel_ci,
        statistic=stat,
    )


def n_minus_1_test(baseline: Counts, treatment: Counts, alpha: float = 0.05) -> Effect:
    """N−1 two-proportion test (Campbell 2007; Sauro & Lewis ch. 5).

    The Pearson chi-square of the 2×2 table scaled by (N−1)/N, i.e. z·sqrt((N−1)/N) on the
    normal distribution; accurate down to expected cell counts of 1. The interval is the
    adjusted Wald interval of the difference that Sauro & Lewis pair with it: z²/4 successes
    and z²/4 failures added to each group (Agresti & Caffo 2000). Hand-written: statsmodels
    has neither the N−1 test nor this interval (its Agresti-Caffo adds exactly 1 and 1).
    """
    check_alpha(alpha)
    _check_pair(baseline, treatment)
    z = _z(alpha)
    total = baseline.n + treatment.n
    if total < 3:
        raise InsufficientData("the N−1 test needs at least 3 units in all")
    pooled = (baseline.x + treatment.x) / total
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / baseline.n + 1 / treatment.n))
    raw = treatment.rate - baseline.rate
    stat = raw / se0 * math.sqrt((total - 1) / total)
    p = normal_two_sided_p(stat)
    _, se, ci = _wald_difference(baseline, treatment, z, add=z * z / 4)
    rel, rel_ci = _relative(baseline, treatment, z)
    return Effect(
        effect=raw,
        effect_kind="difference",
        ci=ci,
        p_value=p,
        se=se,
        method="N−1 two-proportion test (Campbell 2007), adjusted Wald interval of the difference",
        relative=rel,
        relative_ci=rel_ci,
        statistic=stat,
    )


def fisher_exact(baseline: Counts, treatment: Counts, alpha: float = 0.05) -> Effect:
    """Fisher exact (Fisher–Irwin) test, two-sided, as R ``fisher.test``.

    The two-sided p-value sums the probabilities of all tables no more likely than the observed
    one (hypergeometric, margins fixed). The interval is the adjusted Wald interval of the
    difference (z²/4 successes and failures added per group), as for the N−1 test.
    Computed by ``scipy.stats.fisher_exact`` (statsmodels has no Fisher test).
    """
    from scipy.stats import fisher_exact as scipy_fisher

    check_alpha(alpha)
    _need_units(baseline, "baseline")
    _need_units(treatment, "treatment")
    z = _z(alpha)
    table = [
        [treatment.x, treatment.n - treatment.x],
        [baseline.x, baseline.n - baseline.x],
    ]
    p = clip_p(float(scipy_fisher(table, alternative="two-sided").pvalue))
    _, se, ci = _wald_difference(baseline, treatment, z, add=z * z / 4)
    rel, rel_ci = _relative(baseline, treatment, z)
    return Effect(
        effect=treatment.rate - baseline.rate,
        effect_kind="difference",
        ci=ci,
        p_value=p,
        se=se,
        method="Fisher exact test (two-sided), adjusted Wald interval of the difference",
        relative=rel,
        relative_ci=rel_ci,
    )


def smallest_expected_cell(baseline: Counts, treatment: Counts) -> float:
    """Smallest expected count of the 2×2 table under independence (row total × column
    total / N)."""
    total = baseline.n + treatment.n
    conv = baseline.x + treatment.x
    return min(
        arm * col / total
        for arm in (baseline.n, treatment.n)
        for col in (conv, total - conv)
    )


def compare_proportions(baseline: Counts, treatment: Counts, alpha: float = 0.05, small_samples: bool = False
                        ) -> Effect:
    """Compare two conversion rates, choosing the test by the size of the table.

    Rule (stated in ``Effect.method``):

    * every expected cell ≥ 5 → pooled two-proportion z-test (:func:`z_test`), the contract of
      the results document;
    * every expected cell ≥ 1 but some < 5 → N−1 two-proportion test (:func:`n_minus_1_test`),
      Campbell (2007) / Sauro & Lewis;
    * some expected cell < 1 → Fisher exact test (:func:`fisher_exact`);
    * each variant converted all or none of its units (50/50 against 0/50) → Fisher exact test
      too: the Wald interval of the z-test and the N−1 test has zero width there, yet such a
      lopsided table is the clearest evidence there is, not a lack of data.

    ``small_samples`` (tree and first-click tests): the N−1 test however large the table, as
    Sauro & Lewis recommend for every sample size (it approaches the z-test as n grows), Fisher
    below an expected cell of 1.
    """
    check_alpha(alpha)
    _check_pair(baseline, treatment)
    smallest = smallest_expected_cell(baseline, treatment)
    if all(c.x in (0, c.n) for c in (baseline, treatment)):
        return fisher_exact(baseline, treatment, alpha)
    if smallest >= 5 and not small_samples:
        return z_test(baseline, treatment, alpha)
    if smallest >= 1:
        return n_minus_1_test(baseline, treatment, alpha)
    return fisher_exact(baseline, treatment, alpha)
