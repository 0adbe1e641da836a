"""``retention``: the share of units seen again (any event) at least ``days`` days after their
first exposure, among units exposed long enough ago to have had the chance.

Analysed like a conversion: Wilson interval per variant; z-test or the always-valid test.
"""

from __future__ import annotations

from abtest.aggregates.base import Request, Returning
from abtest.metrics.base import ComparisonPlan, MetricDef, Param
from abtest.metrics.conversion import Conversion
from abtest.stats.summary import Counts


class Retention(Conversion):
    name = "retention"
    label = "retention: share of units back after N days"
    params = (Param("days", "came back at least this many days after the first exposure", kind="days",
                    required=True, label="Days", example="7"),)

    def request(self, metric: MetricDef) -> Request:
        return Returning(metric.param("days"))

    def series_request(self, metric: MetricDef) -> Request | None:
        return None

    def summary(self, stat: Counts) -> tuple[int, Counts]:  # type: ignore[override]
        return stat.n, stat

    def measures(self, metric: MetricDef) -> str:
        days = metric.param("days")
        return f"seen again after {days} day{'' if days == 1 else 's'}"

    def method(self, metric: MetricDef, plan: ComparisonPlan) -> str:
        return f"Wilson score interval; units first exposed at least {metric.param('days')} days ago"
