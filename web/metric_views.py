"""One metric of a report as a results page draws it: its forest plot, distribution chart and
segment plots, with the words the tables need. Shared by every kind's results page and by the
linked surveys' section of an experiment's page."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from abtest.report import MetricResult
from web import charts
from web.distribution_chart import distribution_chart


def metric_view(metric: MetricResult, alpha: float) -> dict[str, Any]:
    methods = list(dict.fromkeys(c.method for c in metric.comparisons if c.method))
    return {"metric": metric, "forest": charts.forest_plot(metric, alpha), "comparison_methods": methods,
            "distribution": distribution_chart(metric),
            "has_chance": any(c.chance_to_beat is not None for c in metric.comparisons),
            "segments": [{"segment": s, "forest": charts.forest_plot(_segment_metric(metric, s), alpha)}
                         for s in metric.segments]}


def _segment_metric(metric: MetricResult, segment: Any) -> MetricResult:
    return replace(metric, name=f"{metric.label or metric.name} · {segment.segment}", variants=segment.variants,
                   comparisons=segment.comparisons, segments=())
