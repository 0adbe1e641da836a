"""Decision support under a Gaussian approximation.

With a flat prior the posterior of the true effect δ is approximately N(effect, se²) (the same
normal approximation the frequentist tests use; cf. Stucchio 2015, "Bayesian A/B testing at
VWO", for expected loss as a stopping criterion). From it:

* chance to beat baseline P(δ > 0) = Φ(effect / se);
* expected loss of shipping treatment E[max(−δ, 0)] = se·φ(m/se) − m·Φ(−m/se), and of keeping
  baseline E[max(δ, 0)] = se·φ(m/se) + m·Φ(m/se) (m = effect), both in the units of the effect.

For ratio effects (task times) the computation runs on the log ratio, where the normal
approximation holds; losses are then in log units.

Beside a peek-safe (always-valid) test the flat prior would contradict it: the mSPRT averages
its likelihood ratio over a normal prior N(0, τ²) on the true effect, and a flat-prior chance of
96 % next to an always-valid p of 0.6 tells two stories. There the posterior is the conjugate
one under that same prior: N(k·effect, k·se²) with k = τ² / (τ² + se²), which shrinks toward no
effect exactly as much as the test's own prior does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from abtest.errors import InsufficientData, ValidationError
from abtest.stats.summary import Effect


@dataclass(frozen=True, slots=True)
class Decision:
    chance_to_beat: float
    expected_loss_treatment: float
    expected_loss_baseline: float
    method: str = "Gaussian approximation, flat prior"


FLAT = "Gaussian approximation, flat prior"
MIXTURE = "Gaussian posterior under the always-valid test's N(0, τ²) prior"


def _check(effect: float, se: float) -> None:
    if not math.isfinite(effect):
        raise ValidationError(f"must be finite, got {effect!r}", field="effect")
    if not math.isfinite(se) or se < 0:
        raise ValidationError(f"must be a finite number ≥ 0, got {se!r}", field="se")
    if se == 0:
        raise InsufficientData("the standard error is zero; no posterior spread", field="se")


def chance_to_beat(effect: float, se: float, higher_is_better: bool = True) -> float:
    """P(treatment beats baseline) = Φ(±effect / se)."""
    from scipy.special import ndtr

    _check(effect, se)
    m = effect if higher_is_better else -effect
    return float(ndtr(m / se))


def decide(effect: float, se: float, higher_is_better: bool = True, prior_var: float | None = None) -> Decision:
    """Chance to beat and expected losses for an effect on a difference scale; with
    ``prior_var`` (τ²) under the prior N(0, τ²) instead of a flat one."""
    from scipy.special import ndtr

    _check(effect, se)
    method = FLAT
    if prior_var is not None:
        if not (math.isfinite(prior_var) and prior_var > 0):
            raise ValidationError(f"must be a finite number > 0, got {prior_var!r}", field="prior_var")
        k = prior_var / (prior_var + se * se)
        effect, se, method = k * effect, math.sqrt(k) * se, MIXTURE
    m = effect if higher_is_better else -effect
    u = m / se
    pdf = math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)
    loss_treatment = se * pdf - m * float(ndtr(-u))
    loss_baseline = se * pdf + m * float(ndtr(u))
    return Decision(
        chance_to_beat=float(ndtr(u)),
        expected_loss_treatment=max(0.0, loss_treatment),
        expected_loss_baseline=max(0.0, loss_baseline),
        method=method,
    )


def decide_effect(effect: Effect, higher_is_better: bool = True) -> Decision:
    """:func:`decide` for an :class:`Effect`; ratio effects are taken on the log scale (its
    ``se`` is already the log-scale standard error)."""
    if effect.effect_kind == "ratio":
        if effect.effect <= 0:
            raise InsufficientData("a ratio effect must be positive")
        d = decide(math.log(effect.effect), effect.se, higher_is_better, effect.prior_var)
        return Decision(d.chance_to_beat, d.expected_loss_treatment, d.expected_loss_baseline,
                        d.method.replace("Gaussian", "Gaussian, on the log ratio,", 1))
    return decide(effect.effect, effect.se, higher_is_better, effect.prior_var)
