"""Error-rate claims checked by simulation (seeded, on sufficient statistics).

Bands: with R replications and true rate q, the estimate has se = sqrt(q(1−q)/R); the 99%
binomial band is q ± 2.576·se.
"""

import math

import numpy as np
import pytest

from abtest.stats.cuped import CovariateMoments, cuped
from abtest.stats.means import welch_test
from abtest.stats.multiple import holm
from abtest.stats.power import sample_size_proportions
from abtest.stats.proportions import z_test
from abtest.stats.sequential import sequential_means, sequential_proportions
from abtest.stats.srm import srm_check
from abtest.stats.summary import Counts, Moments

ALPHA = 0.05


def band99(q: float, reps: int) -> tuple[float, float]:
    half = 2.576 * math.sqrt(q * (1 - q) / reps)
    return q - half, q + half


def test_aa_z_test_false_positive_rate():
    rng = np.random.default_rng(1)
    reps, n, p = 2000, 1000, 0.1
    xb, xt = rng.binomial(n, p, reps), rng.binomial(n, p, reps)
    fp = np.mean([z_test(Counts(n, b), Counts(n, t)).p_value < ALPHA for b, t in zip(xb, xt)])
    low, high = band99(ALPHA, reps)
    assert low <= fp <= high


def test_aa_welch_false_positive_rate():
    rng = np.random.default_rng(2)
    reps, n = 2000, 100
    # skewed revenue-like values; only the sufficient statistics reach the test
    yb, yt = rng.exponential(10.0, (reps, n)), rng.exponential(10.0, (reps, n))
    fp = np.mean([
        welch_test(Moments(n, a.sum(), (a * a).sum()), Moments(n, b.sum(), (b * b).sum())).p_value < ALPHA
        for a, b in zip(yb, yt)
    ])
    low, high = band99(ALPHA, reps)
    assert low <= fp <= high


def test_peeking_inflates_fixed_test_but_not_sequential():
    rng = np.random.default_rng(3)
    reps, looks, step, p = 2000, 20, 100, 0.1
    xb = rng.binomial(step, p, (reps, looks)).cumsum(axis=1)
    xt = rng.binomial(step, p, (reps, looks)).cumsum(axis=1)
    planned = looks * step
    fixed_hits = seq_hits = 0
    for r in range(reps):
        fixed = False
        previous = None
        for k in range(looks):
            b, t = Counts((k + 1) * step, int(xb[r, k])), Counts((k + 1) * step, int(xt[r, k]))
            fixed = fixed or z_test(b, t).p_value < ALPHA
            previous = sequential_proportions(b, t, planned, ALPHA, previous)
        seq = previous.p_value < ALPHA  # running minimum: < α at the end iff at any look
        fixed_hits += fixed
        seq_hits += seq
    se = math.sqrt(ALPHA * (1 - ALPHA) / reps)
    assert fixed_hits / reps > 0.1
    assert seq_hits / reps <= ALPHA + 2.6 * se


def test_sequential_means_under_peeking():
    rng = np.random.default_rng(4)
    reps, looks, step = 1000, 20, 50
    def moments(shape):
        y = rng.lognormal(1.0, 0.8, shape)
        return y.sum(axis=2).cumsum(axis=1), (y * y).sum(axis=2).cumsum(axis=1)
    sb, qb = moments((reps, looks, step))
    st, qt = moments((reps, looks, step))
    hits = 0
    for r in range(reps):
        previous = None
        for k in range(looks):
            n = (k + 1) * step
            previous = sequential_means(Moments(n, sb[r, k], qb[r, k]), Moments(n, st[r, k], qt[r, k]), looks * step, ALPHA, previous)
        hits += previous.p_value < ALPHA
    se = math.sqrt(ALPHA * (1 - ALPHA) / reps)
    assert hits / reps <= ALPHA + 2.6 * se


def test_planned_power_is_achieved():
    # 4,000 replications: se = sqrt(.8·.2/4000) = 0.0063, so 78–82 % is ±3.2 se.
    rng = np.random.default_rng(5)
    plan = sample_size_proportions(0.10, 0.02, power=0.8)
    n, reps = plan.n_per_variant, 4000
    xb, xt = rng.binomial(n, 0.10, reps), rng.binomial(n, 0.12, reps)
    power = np.mean([z_test(Counts(n, b), Counts(n, t)).p_value < ALPHA for b, t in zip(xb, xt)])
    assert 0.78 <= power <= 0.82


def test_srm_false_alarms_are_rare_and_real_mismatch_is_caught():
    rng = np.random.default_rng(6)
    reps, weights = 10000, [0.5, 0.3, 0.2]
    draws = rng.multinomial(5000, weights, reps)
    alarms = sum(srm_check(list(d), weights).alarm for d in draws)
    assert alarms <= 25  # expected 10; P(Poisson(10) > 25) < 1e-4
    lost = rng.multinomial(100_000, [0.5, 0.5], 200)
    lost[:, 1] = (lost[:, 1] * 0.95).astype(int)  # 5 % of one arm's exposures lost
    assert np.mean([srm_check(list(d), [0.5, 0.5]).alarm for d in lost]) > 0.99


def test_holm_controls_family_wise_error():
    rng = np.random.default_rng(7)
    reps, m = 4000, 5
    ps = rng.uniform(size=(reps, m))
    fwer = np.mean([min(holm(list(row))) < ALPHA for row in ps])
    se = math.sqrt(ALPHA * (1 - ALPHA) / reps)
    assert fwer <= ALPHA + 2.6 * se
    unadjusted = np.mean((ps < ALPHA).any(axis=1))
    assert unadjusted > 0.2  # 1 − 0.95⁵ ≈ 0.23: what Holm protects against


def test_cuped_aa_false_positive_rate_and_gain():
    rng = np.random.default_rng(8)
    reps, n = 2000, 200
    hits, reductions = 0, []
    for _ in range(reps):
        sums = []
        for _arm in range(2):
            x = rng.normal(10, 3, n)
            y = 0.8 * x + rng.normal(0, 2, n)
            sums.append(CovariateMoments(n, y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum()))
        res = cuped(*sums)
        hits += res.effect.p_value < ALPHA
        reductions.append(res.variance_reduction)
    low, high = band99(ALPHA, reps)
    assert low <= hits / reps <= high
    # ρ² = 0.8²·9 / (0.8²·9 + 4) ≈ 0.59
    assert np.mean(reductions) == pytest.approx(0.59, abs=0.03)
