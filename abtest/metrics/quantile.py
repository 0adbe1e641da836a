"""``quantile``: the q-th quantile (default the 75th percentile) of a value per variant — page
speed as the Core Web Vitals standard reads it, where a mean is dragged by a few slow loads.

Over every page view (``over = "events"``: visitors with many page views are clusters) or over each
visitor's own median (``over = "units"``). Per variant the sample quantile (R type 1) with the
outer confidence interval of Deng, Knoblich & Lu (2018), whose rank band uses the delta-method
variance of the clustered empirical distribution; variants compared by the difference of the two
quantiles with standard errors from those intervals, or peek-safe by the quantile confidence
sequences of Howard & Ramdas (2022).
"""

from __future__ import annotations

from abtest.aggregates.base import Quantiles, Request
from abtest.checks import Checker
from abtest.metrics.base import ComparisonPlan, MetricDef, MetricType, Param
from abtest.stats.summary import Effect, Estimate
from abtest.vitals import VITALS, VITALS_TABLE

VITAL = Param("vital", "the Core Web Vital the snippet reports (LCP, INP, CLS, FCP or TTFB)", kind="choice",
              choices=VITALS, label="Vital", example="LCP")
VALUE_EVENT = Param("event", "instead of a vital: the conversion event whose values it reads", label="Event",
                    example="purchase")
DEFAULT_Q = 0.75


def values_of(metric: MetricDef) -> tuple[str, str]:
    """(stored event type, name) of the values a page-speed or value metric reads."""
    vital = metric.param("vital")
    return ("vital", vital) if vital else ("conversion", metric.param("event"))


def check_values(c: Checker, metric: MetricDef, where: str) -> None:
    if (metric.param("vital") is None) == (metric.param("event") is None):
        c.fail(f"{where}.vital", f"a {metric.type} metric reads either a vital (vital = \"LCP\") or an "
                                 "event's values (event = \"purchase\"), exactly one of them")


def what(metric: MetricDef) -> str:
    vital = metric.param("vital")
    return f"{vital} ({VITALS_TABLE[vital].title})" if vital else f"{metric.param('event')} values"


class Quantile(MetricType):
    name = "quantile"
    label = "quantile: a percentile of a vital or an event's values (page speed: p75)"
    params = (
        VITAL, VALUE_EVENT,
        Param("quantile", "which quantile, between 0 and 1 (default 0.75, the Web Vitals standard)", kind="number",
              label="Quantile", example="0.75"),
        Param("over", "events: every page view (default); units: each visitor's own median", kind="choice",
              choices=("events", "units"), label="Over", example="events"),
        Param("lower_is_better", "whether a lower value wins (default: true for vitals, false for events)",
              kind="flag", label="Lower is better", example="true"),
    )

    def q(self, metric: MetricDef) -> float:
        return metric.param("quantile") or DEFAULT_Q

    def request(self, metric: MetricDef) -> Request:
        kind, event = values_of(metric)
        return Quantiles(kind, event, self.q(metric), metric.param("over") or "events")

    def check(self, c: Checker, metric: MetricDef, where: str) -> None:
        check_values(c, metric, where)

    def prefers_higher(self, metric: MetricDef) -> bool:
        lower = metric.param("lower_is_better")
        return not (metric.param("vital") is not None if lower is None else lower)

    def summary(self, stat):  # type: ignore[no-untyped-def]
        return stat.units, stat

    def estimate(self, stat, alpha: float) -> Estimate:  # type: ignore[no-untyped-def]
        from abtest.stats.quantiles import quantile_estimate

        return quantile_estimate(stat, alpha)

    def compare(self, baseline, treatment, plan: ComparisonPlan) -> Effect:  # type: ignore[no-untyped-def]
        from abtest.stats import quantiles

        if plan.sequential:
            return quantiles.sequential_compare_quantiles(baseline, treatment, plan.alpha, plan.planned_n)
        return quantiles.compare_quantiles(baseline, treatment, plan.alpha)

    def distribution(self, stat) -> tuple[tuple[float, float], ...]:  # type: ignore[no-untyped-def]
        from abtest.stats.quantiles import distribution

        return tuple(distribution(stat))

    def marks(self, metric: MetricDef) -> tuple[tuple[str, float], ...]:
        vital = metric.param("vital")
        if vital is None:
            return ()
        v = VITALS_TABLE[vital]
        return (("good", v.good), ("poor", v.poor))

    def measures(self, metric: MetricDef) -> str:
        over = "each visitor's median" if metric.param("over") == "units" else "page views"
        return f"p{percent(self.q(metric))} of {what(metric)} over {over}"

    def method(self, metric: MetricDef, plan: ComparisonPlan) -> str:
        clustered = "" if metric.param("over") == "units" else ", clustered by visitor (delta method)"
        return f"sample quantile (R type 1) with the outer interval of Deng, Knoblich & Lu 2018{clustered}"

    def unit(self, metric: MetricDef) -> str:
        vital = metric.param("vital")
        scale = (VITALS_TABLE[vital].unit or "score") if vital else "value"
        return f"{scale} (p{percent(self.q(metric))})"


def percent(q: float) -> str:
    """0.75 → "75", 0.995 → "99.5"."""
    return f"{q * 100:g}"
