"""Property tests (hypothesis): intervals contain their estimates, p-values lie in [0, 1]."""

from hypothesis import given, settings
from hypothesis import strategies as st

from abtest.errors import InsufficientData
from abtest.stats.multiple import benjamini_hochberg, holm
from abtest.stats.proportions import compare_proportions, fisher_exact, proportion_interval, z_test
from abtest.stats.means import welch_test
from abtest.stats.sequential import sequential_proportions
from abtest.stats.summary import Counts, Moments

SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def counts(draw, max_n=5000):
    n = draw(st.integers(1, max_n))
    return Counts(n, draw(st.integers(0, n)))


@SETTINGS
@given(counts(), st.sampled_from(["wilson", "agresti_coull", "clopper_pearson"]), st.sampled_from([0.01, 0.05, 0.2]))
def test_rate_intervals_contain_estimate_and_stay_in_unit_interval(c, method, alpha):
    est = proportion_interval(c, alpha, method)
    assert 0.0 <= est.ci.low <= est.value <= est.ci.high <= 1.0


@SETTINGS
@given(counts(), counts())
def test_two_proportion_tests(b, t):
    try:
        for eff in (z_test(b, t), compare_proportions(b, t)):
            assert 0.0 <= eff.p_value <= 1.0
            assert eff.ci.low <= eff.ci.high
            assert eff.se > 0
        assert z_test(b, t).ci.contains(t.rate - b.rate)
        seq = sequential_proportions(b, t, planned_n=1000) if min(b.n, t.n) >= 2 else None
        if seq is not None:
            fixed = z_test(b, t)
            assert seq.ci.low <= fixed.ci.low and seq.ci.high >= fixed.ci.high
            assert 0.0 <= seq.p_value <= 1.0
    except InsufficientData:
        pass
    p = fisher_exact(b, t).p_value
    assert 0.0 <= p <= 1.0


@SETTINGS
@given(
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=2, max_size=40),
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=2, max_size=40),
)
def test_welch_interval_contains_difference(yb, yt):
    try:
        eff = welch_test(Moments.from_values(yb), Moments.from_values(yt))
    except InsufficientData:
        return
    assert 0.0 <= eff.p_value <= 1.0
    assert eff.ci.contains(eff.effect)


@SETTINGS
@given(st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_adjusted_p_values_are_monotone_and_capped(ps):
    for adjusted in (holm(ps), benjamini_hochberg(ps)):
        assert all(r <= a + 1e-15 <= 1.0 + 1e-15 for r, a in zip(ps, adjusted))
        order = sorted(range(len(ps)), key=lambda i: ps[i])
        ranked = [adjusted[i] for i in order]
        assert all(x <= y + 1e-15 for x, y in zip(ranked, ranked[1:]))
