"""Task success within subjects: McNemar tests on the discordant pairs.

Each participant tries the task on both designs; only discordant pairs carry information:
``baseline_only`` (b: succeeded on baseline only) and ``treatment_only`` (c). Under H0 they
split 50:50, so the exact McNemar test is a two-sided binomial test of c on b + c (R
``binom.test(c, b + c)``). The mid-p version (Fagerland, Lydersen & Laake 2013, *BMC Medical
Research Methodology* 13:91) subtracts half the point probability of the observed split; they
recommend it as the default because the exact test is too conservative.

The exact test is ``statsmodels.stats.contingency_tables.mcnemar(exact=True)``; statsmodels has
no mid-p McNemar, so that one is ours (binomial CDF from ``scipy.special``).
"""

from __future__ import annotations

import math

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.summary import Effect, Interval, Moments, _count, check_alpha, clip_p, t_two_sided_p, z_quantile


def mcnemar(
    n_pairs: int,
    baseline_only: int,
    treatment_only: int,
    alpha: float = 0.05,
    mid_p: bool = True,
) -> Effect:
    """Difference in success rates (treatment − baseline) for paired binary outcomes.

    ``effect = (c − b) / n_pairs``; its interval is the Wald interval for paired proportions
    (se = sqrt(b + c − (c − b)²/n) / n, Agresti *Categorical Data Analysis* §10.1). The
    p-value is the mid-p McNemar test by default, or the exact (binomial) one with
    ``mid_p=False`` (``statsmodels.stats.contingency_tables.mcnemar(exact=True)``). Refuses
    when there are no discordant pairs. When every discordant pair points the same way the
    plain Wald interval has zero width; the Agresti-Min interval (1/2 added to each cell) takes
    its place. Intervals are clipped to [−1, 1].
    """
    check_alpha(alpha)
    n = _count(n_pairs, "n_pairs")
    b = _count(baseline_only, "baseline_only")
    c = _count(treatment_only, "treatment_only")
    if b + c > n:
        raise ValidationError(
            f"discordant pairs ({b + c}) exceed pairs ({n})", field="treatment_only"
        )
    m = b + c
    if m == 0:
        raise InsufficientData("no discordant pairs: both designs got the same result from everyone")
    if mid_p:
        from scipy.special import bdtr

        low = min(b, c)
        tail = float(bdtr(low, m, 0.5))  # P(X ≤ min(b, c)), X ~ Binomial(b + c, 1/2)
        point = math.comb(m, low) / 2**m  # P(X = min(b, c))
        p = clip_p(2 * (tail - 0.5 * point))
        method = "mid-p McNemar test (Fagerland et al. 2013), Wald interval of the paired difference"
    else:
        from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

        # rows: baseline success / failure; columns: treatment success / failure. The exact
        # test reads only the discordant cells, so the concordant pairs all go in one cell.
        table = [[n - m, b], [c, 0]]
        p = clip_p(float(sm_mcnemar(table, exact=True).pvalue))
        method = "exact McNemar test (binomial), Wald interval of the paired difference"
    diff = (c - b) / n
    se = math.sqrt(max(m - (c - b) ** 2 / n, 0.0)) / n
    z = z_quantile(alpha)
    if se > 0.0:
        ci = Interval(diff - z * se, diff + z * se)
    else:
        # Every discordant pair went the same way (5 of 5 succeeded on one design only): the
        # clearest outcome there is, but the Wald interval has zero width. Agresti & Min (2005):
        # add 1/2 to each of the four cells and take the Wald interval of the adjusted table.
        bt, ct, nt = b + 0.5, c + 0.5, n + 2.0
        adjusted = (ct - bt) / nt
        se = math.sqrt(max((bt + ct) / nt - adjusted**2, 0.0) / nt)
        ci = Interval(adjusted - z * se, adjusted + z * se)
        method = method.replace("Wald interval", "Agresti-Min adjusted Wald interval")
    return Effect(
        effect=diff,
        effect_kind="difference",
        ci=ci.clip(-1.0, 1.0),
        p_value=p,
        se=se,
        method=method,
        statistic=float(c),
    )


def paired_t(differences: Moments, alpha: float = 0.05) -> Effect:
    """Paired t-test from the moments of the per-participant differences (treatment − baseline),
    as R ``t.test(treatment, baseline, paired = TRUE)``: the mean difference with its t interval."""
    from abtest.stats.means import mean_interval

    check_alpha(alpha)
    estimate = mean_interval(differences, alpha)  # refuses n < 2 and zero spread
    se = math.sqrt(differences.variance / differences.n)
    stat = estimate.value / se
    return Effect(estimate.value, "difference", estimate.ci, t_two_sided_p(stat, differences.n - 1), se,
                  "paired t-test of the per-participant differences", statistic=stat, df=differences.n - 1)
