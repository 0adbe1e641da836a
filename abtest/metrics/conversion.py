"""``conversion``: the share of units with at least one ``event`` at or after their first exposure.

Per variant a Wilson score interval; variants compared by the pooled two-proportion z-test with
the unpooled Wald interval (R ``prop.test(correct = FALSE)``; N−1 or Fisher when cells are small),
or peek-safe by the always-valid mixture SPRT.
"""

from __future__ import annotations

from typing import Any

from abtest.aggregates.base import DailyConversions, EventStats, EventTotals, Request
from abtest.metrics.base import ComparisonPlan, MetricDef, MetricType, Param
from abtest.stats.summary import Counts, Effect, Estimate


class Conversion(MetricType):
    name = "conversion"
    label = "conversion: share of units with the event"
    params = (Param("event", "the event counted; defaults to the metric's name", defaults_to_name=True,
                    label="Event", example="purchase"),)

    def request(self, metric: MetricDef) -> Request:
        return EventTotals(metric.param("event"))

    def series_request(self, metric: MetricDef) -> Request | None:
        return DailyConversions(metric.param("event"))

    def summary(self, stat: EventStats) -> tuple[int, Counts]:
        return stat.units.n, stat.units

    def estimate(self, stat: Counts, alpha: float) -> Estimate:
        from abtest.stats.proportions import wilson_interval

        return wilson_interval(stat, alpha)

    def compare(self, baseline: Any, treatment: Any, plan: ComparisonPlan) -> Effect:
        from abtest.stats import proportions, sequential

        if plan.sequential:
            return sequential.sequential_proportions(baseline, treatment, plan.planned_n, plan.alpha)
        return proportions.compare_proportions(baseline, treatment, plan.alpha)

    def measures(self, metric: MetricDef) -> str:
        return f"units with a {metric.param('event')} event"

    def method(self, metric: MetricDef, plan: ComparisonPlan) -> str:
        return "Wilson score interval"

    def unit(self, metric: MetricDef) -> str:
        return "rate"
