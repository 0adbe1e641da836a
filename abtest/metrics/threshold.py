"""``threshold``: the share of page views rated good — a vital at or below its published
threshold (LCP ≤ 2.5 s, INP ≤ 200 ms, CLS ≤ 0.1 …), or an event's values at or below a bound.

A ratio of two per-visitor sums (good page views / page views), so its variance is the delta
method's for clustered data (Deng, Knoblich & Lu 2018), not the binomial one: a visitor's page
views are not independent. Variants compared by the difference of shares with a z-test, or
peek-safe by the always-valid mixture SPRT on the same standard errors.
"""

from __future__ import annotations

from abtest.aggregates.base import AtOrBelow, Request
from abtest.checks import Checker
from abtest.metrics.base import ComparisonPlan, MetricDef, MetricType, Param
from abtest.metrics.quantile import VALUE_EVENT, VITAL, check_values, values_of, what
from abtest.stats.summary import Effect, Estimate
from abtest.vitals import VITALS_TABLE


class Threshold(MetricType):
    name = "threshold"
    label = "threshold: share of page views at or below a bound (good LCP ≤ 2.5 s)"
    params = (
        VITAL, VALUE_EVENT,
        Param("threshold", "the bound (a vital's default: its published 'good' threshold)", kind="number",
              bounds=(-1e9, 1e9), label="Threshold", example="2500"),
    )

    def bound(self, metric: MetricDef) -> float:
        given = metric.param("threshold")
        if given is not None:
            return float(given)
        return VITALS_TABLE[metric.param("vital")].good

    def request(self, metric: MetricDef) -> Request:
        kind, event = values_of(metric)
        return AtOrBelow(kind, event, self.bound(metric))

    def check(self, c: Checker, metric: MetricDef, where: str) -> None:
        check_values(c, metric, where)
        if metric.param("vital") is None and metric.param("event") is not None and metric.param("threshold") is None:
            c.fail(f"{where}.threshold", "a threshold metric on an event's values needs its threshold")

    def summary(self, stat):  # type: ignore[no-untyped-def]
        return stat.units, stat

    def estimate(self, stat, alpha: float) -> Estimate:  # type: ignore[no-untyped-def]
        from abtest.stats.quantiles import share_estimate

        return share_estimate(stat, alpha)

    def compare(self, baseline, treatment, plan: ComparisonPlan) -> Effect:  # type: ignore[no-untyped-def]
        from abtest.stats import quantiles

        if plan.sequential:
            return quantiles.sequential_compare_shares(baseline, treatment, plan.planned_n, plan.alpha)
        return quantiles.compare_shares(baseline, treatment, plan.alpha)

    def measures(self, metric: MetricDef) -> str:
        vital = metric.param("vital")
        unit = VITALS_TABLE[vital].unit if vital else ""
        return f"share of page views with {what(metric)} ≤ {self.bound(metric):g}{(' ' + unit) if unit else ''}"

    def method(self, metric: MetricDef, plan: ComparisonPlan) -> str:
        return "share of page views with a delta-method interval, clustered by visitor"

    def unit(self, metric: MetricDef) -> str:
        return "rate"  # a share: shown in % and compared in points, like a conversion rate
