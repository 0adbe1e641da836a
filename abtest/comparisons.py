"""From statistics to report records, the same way for every kind of test.

A variant's value, or the reason it has none; a comparison against the baseline, or the reason
it has none; Holm-adjusted p-values across a family of comparisons; and, for A/B experiments,
the Bayesian decision view beside each effect. Every number that cannot be computed becomes
``None`` with a ``reason``: a report never carries NaN or infinity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from abtest.errors import AbtestError
from abtest.report import Comparison, SegmentResult, VariantResult
from abtest.stats.summary import Effect, Estimate


def variant_row(variant: str, n: int, compute: Callable[[], Estimate] | None) -> VariantResult:
    """One variant's value and interval, or why there is none (no units, too few, no spread)."""
    if compute is None:
        return VariantResult(variant, 0, None, None, "no units yet")
    try:
        estimate = compute()
    except AbtestError as exc:
        return VariantResult(variant, n, None, None, exc.message)
    return VariantResult(variant, n, estimate.value, estimate.ci.as_tuple())


def comparison(variant: str, baseline: str, effect_kind: str, compute: Callable[[float], Effect] | None,
               alpha: float, higher_is_better: bool | None = None) -> Comparison:
    """Treatment against baseline at level α (unadjusted; see :func:`adjust`, which may ask
    ``compute`` again at the level a multiple-comparison adjustment leaves). ``higher_is_better``
    asks for the Bayesian chance to beat and expected loss beside the effect."""
    if compute is None:
        return Comparison(variant, baseline, None, effect_kind, None, None, None, None, False, "",
                          reason="no units yet in one of the variants")
    try:
        effect = compute(alpha)
    except AbtestError as exc:
        return Comparison(variant, baseline, None, effect_kind, None, None, None, None, False, "", reason=exc.message)
    relative = effect.relative if effect.effect_kind == "difference" else effect.effect - 1
    if relative is not None and not math.isfinite(relative):
        relative = None
    chance = loss = None
    if higher_is_better is not None:
        from abtest.stats.bayes import decide_effect

        try:
            decision = decide_effect(effect, higher_is_better)
            chance, loss = decision.chance_to_beat, decision.expected_loss_treatment
        except AbtestError:
            pass
    return Comparison(variant, baseline, effect.effect, effect.effect_kind, relative, effect.ci.as_tuple(),
                      effect.p_value, effect.p_value, False, effect.method, chance, loss, at_level=compute)


def adjust(comparisons: Sequence[Comparison], alpha: float, significance_allowed: bool = True) -> tuple[Comparison, ...]:
    """Holm-adjust the p-values of one family of comparisons (when there is more than one), call
    each significant when its adjusted p is below α and a decision is allowed, and give each the
    interval that matches that decision.

    The matching interval is the comparison's own interval at level α·p/p_Holm: that level puts
    "excludes no effect" exactly where "p_Holm < α" is (for a test and interval that agree, as
    Welch's t and the mSPRT do), and lies between Bonferroni's α/m and α. An unadjusted interval
    beside an adjusted decision reads "95% CI 0.1 to 3.7; not significant", which is the
    contradiction this avoids."""
    from abtest.stats.multiple import holm

    p_values = [c.p_value for c in comparisons if c.p_value is not None]
    family = len(p_values) > 1
    adjusted = iter(holm(p_values) if family else p_values)
    out = []
    for c in comparisons:
        if c.p_value is None:
            out.append(c)
            continue
        p_adj = next(adjusted)
        c = replace(c, p_adjusted=p_adj, significant=significance_allowed and p_adj < alpha)
        out.append(_matching_interval(c, alpha * c.p_value / p_adj) if family and p_adj > 0 else c)
    return tuple(out)


def _matching_interval(c: Comparison, level: float) -> Comparison:
    """``c`` with its interval recomputed at ``level`` (named Holm-adjusted); unchanged when the
    comparison cannot be recomputed."""
    if c.at_level is None or not 0 < level <= 1:
        return c
    try:
        effect = c.at_level(min(level, 1.0))
    except AbtestError:
        return c
    return replace(c, ci=effect.ci.as_tuple(), ci_adjustment="Holm")


def segment_results(parts: Sequence[tuple[str, tuple[VariantResult, ...], tuple[Comparison, ...]]], alpha: float,
                    significance_allowed: bool = True) -> tuple[SegmentResult, ...]:
    """One metric per segment, its comparisons Holm-adjusted as one family across every segment
    and variant: looking in twenty segments must not make twenty chances to find something."""
    flat = adjust([c for _s, _v, cs in parts for c in cs], alpha, significance_allowed)
    out, i = [], 0
    for value, variants, comparisons in parts:
        out.append(SegmentResult(value, variants, flat[i:i + len(comparisons)]))
        i += len(comparisons)
    return tuple(out)
