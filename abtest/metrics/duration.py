"""``duration``: each unit's time on a task (its successful attempts), analysed on the log scale.

Per variant the geometric mean with a t interval on log times; variants compared by Welch's
t-test on log times, reported as the ratio of geometric means (below 1 is faster), or peek-safe
by the always-valid mixture SPRT on log times.
"""

from __future__ import annotations

from abtest.aggregates.base import Request, UnitLogTimes
from abtest.metrics.base import ComparisonPlan, MetricDef, MetricType, Param
from abtest.stats.summary import Effect, Estimate, Moments


class Duration(MetricType):
    name = "duration"
    label = "duration: time on a task (geometric mean)"
    params = (Param("task", "the task it times", required=True, label="Task", example="checkout"),)
    effect_kind = "ratio"
    higher_is_better = False

    def request(self, metric: MetricDef) -> Request:
        return UnitLogTimes(metric.param("task"))

    def summary(self, stat: Moments) -> tuple[int, Moments]:
        return stat.n, stat

    def estimate(self, stat: Moments, alpha: float) -> Estimate:
        from abtest.stats.durations import geometric_mean

        return geometric_mean(stat, alpha)

    def compare(self, baseline: Moments, treatment: Moments, plan: ComparisonPlan) -> Effect:
        from abtest.stats import durations, sequential

        if plan.sequential:
            diff = sequential.sequential_means(baseline, treatment, plan.planned_n, plan.alpha)
            return durations.as_ratio(diff, diff.method + " on log times (ratio of geometric means)")
        return durations.compare_durations(baseline, treatment, plan.alpha)

    def measures(self, metric: MetricDef) -> str:
        return f"time of task {metric.param('task')}"

    def method(self, metric: MetricDef, plan: ComparisonPlan) -> str:
        return "geometric mean of successful task times with t interval on log times"

    def unit(self, metric: MetricDef) -> str:
        return "seconds (geometric mean)"
