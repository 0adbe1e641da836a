"""Issue 14: no interval leaves its parameter's range, and the most lopsided outcomes are tested.

Each reference is written here with its source; none comes from the code under test.
"""

from __future__ import annotations

import math

import pytest

from abtest.stats.paired import mcnemar
from abtest.stats.proportions import compare_proportions, z_test
from abtest.stats.questionnaires import NpsCounts, nps, nps_difference
from abtest.stats.sequential import sequential_proportions
from abtest.stats.summary import Counts, Interval

Z = 1.959963984540054  # qnorm(0.975)


def test_difference_of_proportions_is_clipped_like_r_prop_test():
    # R 4.3: prop.test(c(1, 14), c(26, 14), correct = FALSE)$conf.int → -1.0000000 -0.8876191
    # (R clips the Wald interval to [-1, 1]); $p.value → 2.079822e-09.
    effect = z_test(Counts(14, 14), Counts(26, 1))
    assert effect.ci.as_tuple() == pytest.approx((-1.0, -0.8876191), abs=1e-7)
    assert effect.p_value == pytest.approx(2.079822e-09, rel=1e-6)
    assert compare_proportions(Counts(14, 14), Counts(26, 1)).ci.low == -1.0


def test_small_tables_stay_inside_minus_one_to_one():
    # 8/8 against 0/8 (a study's task success): the adjusted Wald interval alone would reach
    # −1.067; a difference of two rates cannot.
    effect = compare_proportions(Counts(8, 8), Counts(8, 0))
    assert -1.0 <= effect.ci.low < effect.ci.high <= 1.0 and effect.ci.low == -1.0
    assert effect.effect == -1.0 and effect.relative_ci.low >= -1.0


def test_mcnemar_interval_stays_inside_minus_one_to_one():
    # n = 8, b = 2, c = 6: Wald 0.5 ± 1.96·√6/8 has upper bound 1.100.
    effect = mcnemar(8, 2, 6)
    assert effect.ci.high == 1.0
    assert effect.ci.low == pytest.approx(0.5 - Z * math.sqrt(6) / 8)


def test_every_participant_succeeding_on_one_design_only_is_tested_exactly():
    # n = 5, b = 5, c = 0. R: binom.test(0, 5)$p.value = 0.0625; mid-p = 2 * (0.5^5 - 0.5 * 0.5^5)
    # = 0.03125 (Fagerland et al. 2013's definition).
    exact, mid = mcnemar(5, 5, 0, mid_p=False), mcnemar(5, 5, 0)
    assert exact.p_value == pytest.approx(0.0625, rel=1e-12)
    assert mid.p_value == pytest.approx(0.03125, rel=1e-12)
    assert mid.effect == -1.0
    # Agresti & Min (2005): add 1/2 to every cell (n + 2 = 7): b̃ = 5.5, c̃ = 0.5,
    # d̃ = (0.5 − 5.5)/7, se = √(((5.5 + 0.5)/7 − d̃²)/7); then clipped to [−1, 1].
    d = -5 / 7
    se = math.sqrt((6 / 7 - d * d) / 7)
    assert mid.ci.as_tuple() == pytest.approx((-1.0, d + Z * se))
    assert "Agresti-Min" in mid.method


def test_fifty_of_fifty_against_none_of_fifty_is_tested_exactly():
    # The 2×2 table [[50, 0], [0, 50]]: with margins fixed the only tables as unlikely are it
    # and its mirror, each with probability 1 / C(100, 50), so Fisher's two-sided p is
    # 2 / C(100, 50) = 1.982331e-29 (R: fisher.test(matrix(c(50, 0, 0, 50), 2))$p.value).
    effect = compare_proportions(Counts(50, 0), Counts(50, 50))
    assert effect.p_value == pytest.approx(2 / math.comb(100, 50), rel=1e-9)
    assert "Fisher" in effect.method and effect.effect == 1.0
    assert effect.ci.high == 1.0 and effect.ci.low > 0.85
    # Peek-safe: the always-valid test plugs in the pooled variance and still decides.
    sequential = sequential_proportions(Counts(50, 0), Counts(50, 50), planned_n=1000)
    assert sequential.p_value < 0.05 and sequential.ci.high == 1.0 and "pooled variance" in sequential.method


def test_nps_intervals_stay_on_the_nps_scale():
    # 3 promoters of 3 and 1 detractor: the Wald interval alone runs past +100.
    assert nps(3, 0, 1).ci.high <= 100.0
    diff = nps_difference(NpsCounts(0, 0, 3), NpsCounts(3, 0, 0))
    assert -200.0 <= diff.ci.low and diff.ci.high <= 200.0


def test_clip_keeps_a_proper_interval():
    assert Interval(-1.2, 0.3).clip(-1, 1) == Interval(-1, 0.3)
    assert Interval(1.05, 1.2).clip(-1, 1) == Interval(1, 1)  # entirely outside: pinned at the edge
