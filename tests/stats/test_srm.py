"""Sample-ratio mismatch against R chisq.test(x, p = weights)."""

import pytest

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.srm import srm_check

REL = 1e-6


def test_matches_r_chisq_test():
    # R: chisq.test(c(5050, 4950), p = c(0.5, 0.5))$p.value
    r = srm_check([5050, 4950], [0.5, 0.5])
    assert r.p_value == pytest.approx(0.317310507862914, rel=REL)
    assert not r.alarm and r.df == 1 and r.method == "chi-square goodness of fit"
    # R: chisq.test(c(3400, 3300, 3000), p = c(0.34, 0.33, 0.33))$p.value
    r = srm_check([3400, 3300, 3000], [0.34, 0.33, 0.33])
    assert r.p_value == pytest.approx(8.1172699216146e-05, rel=REL)
    assert r.alarm
    # R: chisq.test(c(5200, 4800), p = c(0.5, 0.5))$p.value
    assert srm_check([5200, 4800], [0.5, 0.5]).p_value == pytest.approx(
        6.33424836662398e-05, rel=REL
    )


@pytest.mark.parametrize(("units", "weights"), [
    ([5050, 4950], [0.5, 0.5]), ([1, 0], [0.5, 0.5]), ([0, 7, 3], [0.2, 0.3, 0.5]),
    ([2006, 1994], [0.5, 0.5]), ([123456, 61000, 60100], [0.5, 0.25, 0.25]), ([10, 90], [0.1, 0.9]),
])
def test_equals_scipy_chisquare(units, weights):
    from scipy.stats import chisquare

    reference = chisquare(units, f_exp=[w * sum(units) for w in weights])
    r = srm_check(units, weights)
    assert r.statistic == pytest.approx(float(reference.statistic), rel=1e-12, abs=1e-12)
    assert r.p_value == pytest.approx(float(reference.pvalue), rel=1e-10, abs=1e-300)


def test_threshold_is_a_parameter():
    r = srm_check([5200, 4800], [0.5, 0.5], threshold=1e-5)
    assert not r.alarm


def test_validation():
    with pytest.raises(ValidationError) as err:
        srm_check([10, 10], [0.6, 0.6])
    assert err.value.field == "weights"
    with pytest.raises(ValidationError) as err:
        srm_check([10, 10, 3], [0.5, 0.5])
    assert err.value.field == "units"
    with pytest.raises(ValidationError):
        srm_check([10, 10], [1.0, 0.0])
    with pytest.raises(InsufficientData):
        srm_check([0, 0], [0.5, 0.5])
