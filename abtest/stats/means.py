"""Means of per-unit values (revenue, counts): t interval and Welch comparison.

Welch's unequal-variance t-test with the Welch–Satterthwaite degrees of freedom (Welch 1947),
the same numbers as R ``t.test(var.equal = FALSE)``; the relative lift gets a delta-method
interval. Everything is computed from :class:`~abtest.stats.summary.Moments`.

statsmodels has no public Welch test from summary statistics (``statsmodels.stats.weightstats``
needs the raw data; its from-statistics helpers are private), so the test is ours:
t = difference / standard error, its p-value from Student's t distribution
(``scipy.special.stdtr``), the Welch–Satterthwaite degrees of freedom and the t intervals. The
tests check it against R and against ``scipy.stats.ttest_ind_from_stats(equal_var=False)``
(what it used to call: importing scipy.stats costs about 0.4 s of every ``abtest analyze``).
"""

from __future__ import annotations

import math

from abtest.errors import InsufficientData
from abtest.stats.summary import (
    Effect,
    Estimate,
    Interval,
    Moments,
    check_alpha,
    mean_difference,
    relative_lift,
    t_quantile,
    t_two_sided_p,
    z_quantile,
)


def _need(m: Moments, field: str) -> None:
    if m.n < 2:
        raise InsufficientData(f"needs at least 2 units, has {m.n}", field=field)


def mean_interval(moments: Moments, alpha: float = 0.05) -> Estimate:
    """Sample mean with the Student t interval ``mean ± t(n−1)·s/√n`` (R ``t.test(x)``).

    Refuses n < 2 and zero variance (every value equal): there is no spread to build an
    interval from.
    """
    check_alpha(alpha)
    _need(moments, "n")
    var = moments.variance
    if var == 0.0:
        raise InsufficientData("every value is the same; no variance to build an interval")
    half = t_quantile(alpha, moments.n - 1) * math.sqrt(var / moments.n)
    mean = moments.mean
    return Estimate(mean, Interval(mean - half, mean + half), moments.n, "mean with t interval")


def welch_from_parts(
    mean_b: float,
    var_b: float,
    n_b: int,
    mean_t: float,
    var_t: float,
    n_t: int,
    alpha: float,
    method: str,
    diff: float | None = None,
) -> Effect:
    """Welch t-test of mean_t − mean_b from means, variances (ddof = 1) and counts.

    Shared by means, durations (on logs) and CUPED (on adjusted values). t = diff / se with the
    Welch–Satterthwaite df, two-sided p from ``scipy.special.stdtr`` (what
    ``scipy.stats.ttest_ind_from_stats(equal_var=False)`` computes). ``diff``: mean_t − mean_b when the caller has it more precisely
    than the two rounded means (:func:`~abtest.stats.summary.mean_difference`).
    """
    check_alpha(alpha)
    if n_b < 2 or n_t < 2:
        raise InsufficientData("each variant needs at least 2 units")
    vb, vt = var_b / n_b, var_t / n_t
    se = math.sqrt(vb + vt)
    if se == 0.0:
        raise InsufficientData("both variants have zero variance; the t-test is undefined")
    denominator = vb * vb / (n_b - 1) + vt * vt / (n_t - 1)
    if denominator == 0.0:
        raise InsufficientData("the variances are too small to estimate degrees of freedom")
    df = (vb + vt) ** 2 / denominator
    diff = mean_t - mean_b if diff is None else diff
    stat = diff / se  # t depends on the means only through their difference
    p = t_two_sided_p(stat, df)
    tq = t_quantile(alpha, df)
    # The lift interval uses the normal quantile: the delta method is asymptotic anyway.
    rel, rel_ci = relative_lift(mean_b, mean_t, vb, vt, z_quantile(alpha))
    return Effect(
        effect=diff,
        effect_kind="difference",
        ci=Interval(diff - tq * se, diff + tq * se),
        p_value=p,
        se=se,
        method=method,
        relative=rel,
        relative_ci=rel_ci,
        statistic=stat,
        df=df,
    )


def welch_test(baseline: Moments, treatment: Moments, alpha: float = 0.05) -> Effect:
    """Welch t-test and Welch–Satterthwaite interval of treatment − baseline means.

    Checked against R ``t.test(treatment, baseline)``. The relative lift
    mean_t / mean_b − 1 has a delta-method interval (``None`` when the baseline mean is 0).
    """
    _need(baseline, "baseline")
    _need(treatment, "treatment")
    return welch_from_parts(
        baseline.mean,
        baseline.variance,
        baseline.n,
        treatment.mean,
        treatment.variance,
        treatment.n,
        alpha,
        "Welch t-test",
        mean_difference(baseline, treatment),
    )
