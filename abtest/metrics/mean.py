"""``mean``: the per-unit sum of an event's values after exposure (0 for units without one).

Per variant a t interval of the mean; variants compared by Welch's t-test, by CUPED on the
pre-exposure sums when the experiment asks for it (fixed horizon), or peek-safe by the
always-valid mixture SPRT on the means.
"""

from __future__ import annotations

from dataclasses import replace

from abtest.aggregates.base import EventStats, EventTotals, Request
from abtest.errors import InsufficientData
from abtest.metrics.base import ComparisonPlan, MetricDef, MetricType, Param
from abtest.stats.summary import Effect, Estimate


class Mean(MetricType):
    name = "mean"
    label = "mean: per-unit sum of the event's values"
    params = (Param("event", "the event whose values it sums", required=True, label="Event", example="purchase"),)

    def request(self, metric: MetricDef) -> Request:
        return EventTotals(metric.param("event"))

    def summary(self, stat: EventStats) -> tuple[int, EventStats]:
        return stat.post.n, stat

    def estimate(self, stat: EventStats, alpha: float) -> Estimate:
        from abtest.stats.means import mean_interval

        return mean_interval(stat.post, alpha)

    def compare(self, baseline: EventStats, treatment: EventStats, plan: ComparisonPlan) -> Effect:
        from abtest.stats import means, sequential

        if plan.sequential:
            return sequential.sequential_means(baseline.post, treatment.post, plan.planned_n, plan.alpha)
        if plan.cuped:
            return _cuped_or_welch(baseline, treatment, plan.alpha)
        return means.welch_test(baseline.post, treatment.post, plan.alpha)

    def measures(self, metric: MetricDef) -> str:
        return f"sum of {metric.param('event')} values per unit"

    def method(self, metric: MetricDef, plan: ComparisonPlan) -> str:
        note = " (CUPED is not applied to the always-valid test)" if plan.cuped and plan.sequential else ""
        return "mean per unit with t interval" + note

    def unit(self, metric: MetricDef) -> str:
        return f"sum of {metric.param('event')} values per unit"


def _cuped_or_welch(b: EventStats, t: EventStats, alpha: float) -> Effect:
    """CUPED when the pre-exposure covariate varies; otherwise plain Welch, saying so."""
    from abtest.stats import cuped, means

    def covariates(s: EventStats) -> cuped.CovariateMoments:
        return cuped.CovariateMoments(s.post.n, s.post.total, s.post.total_sq, s.pre.total, s.pre.total_sq, s.cross,
                                      s.post.shift, s.pre.shift)

    try:
        return cuped.cuped(covariates(b), covariates(t), alpha).effect
    except InsufficientData:
        effect = means.welch_test(b.post, t.post, alpha)
        return replace(effect, method=effect.method + " (CUPED skipped: no pre-exposure values vary)")
