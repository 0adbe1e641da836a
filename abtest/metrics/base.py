"""What a metric type is: its parameters, the aggregate it needs, and how variants are compared.

A metric type is one class in one module (``conversion.py``, ``mean.py`` …) registered in
:data:`abtest.metrics.METRIC_TYPES`. The definition parser, the API schema, the designer form,
the aggregate sources and the analysis all read that one table, so adding a type touches no
other file. Types are pure: they turn a variant's sufficient statistics into an estimate and two
variants' into an effect, with :mod:`abtest.stats` doing the numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from abtest.aggregates.base import Request
from abtest.checks import NAME_PATTERN, NAME_WORDS, Checker
from abtest.stats.summary import Effect, Estimate


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter a metric type takes in a definition (``event = "purchase"``, ``days = 7``)."""

    name: str
    description: str
    kind: Literal["name", "days", "choice", "number", "flag"] = "name"
    required: bool = False
    defaults_to_name: bool = False  # conversion: the event defaults to the metric's own name
    label: str = ""  # the form's label
    example: str = ""  # the form's placeholder
    choices: tuple[str, ...] = ()  # kind "choice": the allowed values
    bounds: tuple[float, float] = (0.0, 1.0)  # kind "number": the open interval it lies in

    def read(self, c: Checker, item: Mapping[str, Any], where: str, metric_name: str | None,
             type_name: str) -> Any:
        field_name = f"{where}.{self.name}"
        if self.kind == "number":
            number = c.number(item, self.name, field_name, required=self.required)
            low, high = self.bounds
            if number is not None and not low < number < high:
                c.fail(field_name, f"must lie between {low:g} and {high:g} (exclusive), not {number:g}")
                return None
            return number
        if self.kind == "flag":
            return c.boolean(item, self.name, field_name) if self.name in item else None
        if self.kind == "choice":
            chosen = c.text(item, self.name, field_name, required=self.required)
            c.choice(chosen, self.choices, field_name)
            return chosen
        if self.kind == "days":
            value = item.get(self.name)
            if value is None or isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
                c.fail(field_name, f"a {type_name} metric needs whole days between 1 and {MAX_DAYS}, not {value!r}")
                return None
            return value
        value = c.text(item, self.name, field_name)
        if value is None and self.defaults_to_name:
            value = metric_name
        if value is None and self.required:
            c.fail(field_name, f"a {type_name} metric must name {self.description}")
        c.pattern(value, field_name, NAME_PATTERN, NAME_WORDS)
        return value


MAX_DAYS = 365


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One metric of an experiment: its name, type, whether it is the primary one, and the
    type's parameters (see the type's :attr:`MetricType.params`), in declaration order."""

    name: str
    type: str
    primary: bool = False
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str) -> Any:
        return dict(self.params).get(name)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type,
                **{k: v for k, v in self.params if v is not None}, "primary": self.primary}


@dataclass(frozen=True, slots=True)
class ComparisonPlan:
    """How one experiment compares variants: its α, peek-safe or fixed horizon, and the planned
    sample that tunes the always-valid test."""

    alpha: float
    sequential: bool
    planned_n: int
    cuped: bool = False


class MetricType(ABC):
    """A kind of metric. Subclasses set the class attributes and implement the four methods."""

    name: ClassVar[str]
    label: ClassVar[str]  # one line for the form's type menu
    params: ClassVar[tuple[Param, ...]]
    effect_kind: ClassVar[Literal["difference", "ratio"]] = "difference"
    higher_is_better: ClassVar[bool] = True

    def prefers_higher(self, metric: MetricDef) -> bool:
        """Whether a higher value is better for this metric (a type may let the metric say)."""
        return self.higher_is_better

    @abstractmethod
    def request(self, metric: MetricDef) -> Request:
        """The aggregate this metric needs (one per metric; equal requests are fetched once)."""

    @abstractmethod
    def summary(self, stat: Any) -> tuple[int, Any]:
        """(units, the statistic :meth:`estimate` and :meth:`compare` take) from one variant's answer."""

    @abstractmethod
    def estimate(self, stat: Any, alpha: float) -> Estimate:
        """One variant's value and interval."""

    @abstractmethod
    def compare(self, baseline: Any, treatment: Any, plan: ComparisonPlan) -> Effect:
        """Treatment against baseline: effect, interval and p-value by the plan's method."""

    def method(self, metric: MetricDef, plan: ComparisonPlan) -> str:
        """How each variant's value and interval were computed (shown beside the table)."""
        return ""

    def unit(self, metric: MetricDef) -> str:
        """How to read a variant's value: ``"rate"``, ``"seconds (geometric mean)"`` …"""
        return ""

    @abstractmethod
    def measures(self, metric: MetricDef) -> str:
        """What the metric counts, in one phrase for the definition page ("units with a purchase event")."""

    def distribution(self, stat: Any) -> tuple[tuple[float, float], ...]:
        """(value, share of values ≤ it) points of one variant's distribution, for types that
        keep one (quantiles); none by default."""
        return ()

    def marks(self, metric: MetricDef) -> tuple[tuple[str, float], ...]:
        """Labelled reference values drawn over the distribution (a vital's thresholds)."""
        return ()

    def series_request(self, metric: MetricDef) -> Request | None:
        """The daily rows behind the cumulative chart, when this type keeps one (as the primary metric)."""
        return None

    def check(self, c: Checker, metric: MetricDef, where: str) -> None:
        """Rules across this type's parameters (none by default)."""
