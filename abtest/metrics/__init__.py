"""The metric types of A/B experiments, one module each, registered once in :data:`METRIC_TYPES`.

The definition parser, the API schema, the designer form, the aggregate sources and the analysis
all read this table; a new type is a new module and one line here.
"""

from __future__ import annotations

from abtest.metrics.base import ComparisonPlan, MetricDef, MetricType, Param
from abtest.metrics.conversion import Conversion
from abtest.metrics.duration import Duration
from abtest.metrics.mean import Mean
from abtest.metrics.quantile import Quantile
from abtest.metrics.retention import Retention
from abtest.metrics.threshold import Threshold

METRIC_TYPES: dict[str, MetricType] = {t.name: t for t in (Conversion(), Mean(), Duration(), Retention(), Quantile(),
                                                          Threshold())}
PARAMS: dict[str, Param] = {p.name: p for t in METRIC_TYPES.values() for p in t.params}

__all__ = ["METRIC_TYPES", "PARAMS", "ComparisonPlan", "MetricDef", "MetricType", "Param"]
