"""Task times, analysed on the log scale.

Times are right-skewed, so Sauro & Lewis (*Quantifying the User Experience*, ch. 3 and 5)
recommend the geometric mean for a typical time and comparisons of log times. Callers pass the
moments of log times: n, Σ log t, Σ (log t)², taken around a shift near the data against
cancellation (see :class:`~abtest.stats.summary.Moments`; build them with :func:`log_moments` in tests).
Back-transformed, a difference of mean logs is the ratio of geometric means, so comparisons
report ``effect_kind = "ratio"`` (treatment / baseline; < 1 means faster).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.means import _need, mean_interval, welch_from_parts
from abtest.stats.summary import (
    Effect,
    Estimate,
    Interval,
    Moments,
    check_alpha,
    mean_difference,
    t_quantile,
    t_two_sided_p,
)


def log_moments(times: Iterable[float]) -> Moments:
    """Moments of log times from raw positive times (for tests and small studies)."""
    logs = []
    for i, t in enumerate(times):
        if not t > 0:
            raise ValidationError(f"task times must be positive, item {i} is {t!r}", field="times")
        logs.append(math.log(t))
    return Moments.from_values(logs)


def _exp(x: float) -> float:
    if x > 700:
        raise InsufficientData("the back-transformed value overflows")
    return math.exp(x)


def geometric_mean(log_times: Moments, alpha: float = 0.05) -> Estimate:
    """Geometric mean exp(mean log t) with the t interval of the mean log, back-transformed.

    Sauro & Lewis ch. 3 (confidence interval for task times).
    """
    est = mean_interval(log_times, alpha)
    return Estimate(
        _exp(est.value),
        Interval(_exp(est.ci.low), _exp(est.ci.high)),
        est.n,
        "geometric mean with t interval on log times",
    )


def as_ratio(diff_effect: Effect, method: str) -> Effect:
    """A difference of mean log times, shown as a ratio of geometric means (with its interval)."""
    ratio = _exp(diff_effect.effect)
    ci = Interval(_exp(diff_effect.ci.low), _exp(diff_effect.ci.high))
    return Effect(
        effect=ratio,
        effect_kind="ratio",
        ci=ci,
        p_value=diff_effect.p_value,
        se=diff_effect.se,
        method=method,
        relative=ratio - 1.0,
        relative_ci=Interval(ci.low - 1.0, ci.high - 1.0),
        statistic=diff_effect.statistic,
        df=diff_effect.df,
        prior_var=diff_effect.prior_var,
    )


def compare_durations(baseline: Moments, treatment: Moments, alpha: float = 0.05) -> Effect:
    """Welch t-test on log times → ratio of geometric means (treatment / baseline) with CI.

    Same numbers as R ``t.test(log(treatment), log(baseline))`` exponentiated. ``se`` is on
    the log scale. t and p come from :func:`~abtest.stats.means.welch_from_parts` (statsmodels
    has no public from-statistics Welch test).
    """
    _need(baseline, "baseline")
    _need(treatment, "treatment")
    diff = welch_from_parts(
        baseline.mean,
        baseline.variance,
        baseline.n,
        treatment.mean,
        treatment.variance,
        treatment.n,
        alpha,
        "Welch t-test on log times",
        mean_difference(baseline, treatment),
    )
    return as_ratio(diff, "Welch t-test on log times, ratio of geometric means")


def paired_durations(log_differences: Moments, alpha: float = 0.05) -> Effect:
    """Within-subjects: paired t-test on log times → ratio of geometric means with CI.

    ``log_differences`` are the moments of log(t_treatment) − log(t_baseline) per participant
    (n pairs). Same numbers as R ``t.test(log(tt), log(tb), paired = TRUE)``. Hand-written
    one-sample t on the differences (t distribution from ``scipy.special``): neither statsmodels
    nor scipy has a public paired/one-sample t-test from summary statistics.
    """
    check_alpha(alpha)
    _need(log_differences, "log_differences")
    var = log_differences.variance
    if var == 0.0:
        raise InsufficientData("every pair has the same log difference; the t-test is undefined")
    n = log_differences.n
    se = math.sqrt(var / n)
    mean = log_differences.mean
    stat = mean / se
    p = t_two_sided_p(stat, n - 1)
    tq = t_quantile(alpha, n - 1)
    diff = Effect(
        effect=mean,
        effect_kind="difference",
        ci=Interval(mean - tq * se, mean + tq * se),
        p_value=p,
        se=se,
        method="paired t-test on log times",
        statistic=stat,
        df=float(n - 1),
    )
    return as_ratio(diff, "paired t-test on log times, ratio of geometric means")
