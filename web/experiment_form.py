"""The experiment definition form's logic: what the designer typed, how it becomes the raw table
a TOML file gives, where each error goes, and the sample-size helper. No routes here
(:mod:`web.experiments` has them).

The form is a translation layer only. Its inputs become the same raw table a TOML file gives
(numbers that do not parse are passed through as typed, so the parser names them), the experiment
kind's parser validates it exactly as ``abtest sync`` does, and the stored experiment's update rule
(frozen splits, coverage only up) or the key rule run read-only while the designer types. Every
error's ``field`` is then mapped back to the input it belongs to. The metric rows' inputs and
type menu come from :data:`abtest.metrics.METRIC_TYPES`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from abtest import pipeline
from abtest.definitions import PLAN_FIELDS, ExperimentDef, parse_experiment
from abtest.errors import ValidationError
from abtest.metrics import PARAMS
from web.form_rows import (
    Checked,
    FieldError,
    RowSection,
    blank_row,
    change_rows,
    is_blank,
    judge,
    locate_row,
    read_rows,
    shown,
    typed_integer,
    typed_number,
)

VARIANT_INPUTS = ("key", "name", "weight", "description")
METRIC_INPUTS = ("name", "type", *PARAMS)
TARGETING_INPUTS = ("attribute", "values")
PLAN_INPUTS = PLAN_FIELDS
HELPER_INPUTS = ("baseline", "mde", "daily_traffic")
SECTIONS = ("variants", "metrics", "targeting", "plan")

TOP_LABELS = {
    "key": "Key", "name": "Name", "hypothesis": "Hypothesis", "analysis": "Analysis",
    "alpha": "Significance level (α)", "coverage": "Coverage", "cuped": "CUPED",
    "seed": "Seed", "status": "Status", "kind": "Kind",
}


# ---- the form's state: strings as typed, rows as lists ---------------------------------------------


@dataclass
class DefinitionForm:
    """What the designer typed, kept verbatim so an invalid form comes back exactly as sent."""

    key: str = ""
    name: str = ""
    hypothesis: str = ""
    analysis: str = "sequential"
    alpha: str = "0.05"
    coverage: str = "1"
    cuped: bool = False
    variants: list[dict[str, str]] = field(default_factory=list)
    metrics: list[dict[str, str]] = field(default_factory=list)
    primary: str = "0"
    targeting: list[dict[str, str]] = field(default_factory=list)
    namespace: dict[str, str] = field(default_factory=lambda: {"name": "", "start": "", "end": ""})
    plan: dict[str, str] = field(default_factory=lambda: dict.fromkeys(PLAN_INPUTS, ""))
    helper: dict[str, str] = field(default_factory=lambda: dict.fromkeys(HELPER_INPUTS, ""))

    @classmethod
    def blank(cls) -> DefinitionForm:
        """A new experiment: a 50/50 control/treatment split and one empty metric row."""
        return cls(
            variants=[{"key": "control", "name": "Control", "weight": "0.5", "description": ""},
                      {"key": "treatment", "name": "", "weight": "0.5", "description": ""}],
            metrics=[blank_row(METRIC_INPUTS, type="conversion")],
            targeting=[blank_row(TARGETING_INPUTS)],
        )

    @classmethod
    def from_definition(cls, d: ExperimentDef) -> DefinitionForm:
        plan = d.plan
        return cls(
            key=d.key, name=d.name, hypothesis=d.hypothesis, analysis=d.analysis,
            alpha=shown(d.alpha), coverage=shown(d.coverage), cuped=d.cuped,
            variants=[{"key": v.key, "name": v.name, "weight": shown(v.weight), "description": v.description}
                      for v in d.variants],
            metrics=[{"name": m.name, "type": m.type, **{p: shown(m.param(p)) for p in PARAMS}}
                     for m in d.metrics] or [blank_row(METRIC_INPUTS, type="conversion")],
            primary=str(next((i for i, m in enumerate(d.metrics) if m.primary), 0)),
            targeting=[{"attribute": k, "values": ", ".join(v)} for k, v in d.targeting.items()]
            or [blank_row(TARGETING_INPUTS)],
            namespace={"name": d.namespace.name, "start": shown(d.namespace.start), "end": shown(d.namespace.end)}
            if d.namespace else {"name": "", "start": "", "end": ""},
            plan={k: shown(getattr(plan, k)) if plan else "" for k in PLAN_INPUTS},
        )

    @classmethod
    def from_request(cls, form: Mapping[str, str]) -> DefinitionForm:
        def text(name: str, default: str = "") -> str:
            return str(form.get(name, default))

        return cls(
            key=text("key").strip(), name=text("name"), hypothesis=text("hypothesis"),
            analysis=text("analysis"), alpha=text("alpha"), coverage=text("coverage"),
            cuped=form.get("cuped") is not None,
            variants=read_rows(form, "variants", VARIANT_INPUTS),
            metrics=read_rows(form, "metrics", METRIC_INPUTS),
            primary=text("primary"),
            targeting=read_rows(form, "targeting", TARGETING_INPUTS),
            namespace={k: text(f"namespace-{k}") for k in ("name", "start", "end")},
            plan={k: text(f"plan-{k}") for k in PLAN_INPUTS},
            helper={k: text(k) for k in HELPER_INPUTS},
        )

    def apply(self, action: str) -> str | None:
        """Add or remove a row, or copy the helper into the plan; returns the id to focus next."""
        changed = change_rows(action, {
            "variants": RowSection(self.variants, VARIANT_INPUTS, "Variant"),
            "metrics": RowSection(self.metrics, METRIC_INPUTS, "Metric", {"type": "conversion"}),
            "targeting": RowSection(self.targeting, TARGETING_INPUTS, "Targeting")})
        if changed:
            section, verb, index, focus = changed
            if section == "metrics" and verb == "remove" and index is not None and self.primary.isdigit():
                chosen = int(self.primary)
                self.primary = "" if chosen == index else str(chosen - (chosen > index))
            return focus
        if action == "plan-from-helper":
            self.plan.update(units_per_variant="", baseline=self.helper["baseline"], mde=self.helper["mde"])
            return "plan-baseline"
        return None

    def to_raw(self, stored: ExperimentDef | None) -> tuple[dict[str, Any], list[ValidationError], RowMap]:
        """The raw definition table, plus problems of the form's own shape and where rows went.

        Blank rows are left out, so ``rows`` maps each list position in the table back to the
        form row it came from. On edit, what the form does not show (key, seed, status) comes
        from the stored definition: status changes go through the lifecycle pages.
        """
        raw: dict[str, Any] = {}
        if stored or self.key:
            raw["key"] = stored.key if stored else self.key
        if stored:
            raw["seed"] = stored.seed
            raw["status"] = stored.status
        for name in ("name", "hypothesis"):
            if getattr(self, name).strip():
                raw[name] = getattr(self, name).strip()
        if self.analysis:
            raw["analysis"] = self.analysis
        for name in ("alpha", "coverage"):
            if getattr(self, name).strip():
                raw[name] = typed_number(getattr(self, name))
        raw["cuped"] = self.cuped
        rows = RowMap()
        shape_errors: list[ValidationError] = []

        raw["variants"] = []
        for i, row in enumerate(self.variants):
            if is_blank(row, ("key", "name", "weight")):
                continue
            rows.variants.append(i)
            variant: dict[str, Any] = {"key": row["key"].strip()}
            if row["weight"].strip():
                variant["weight"] = typed_number(row["weight"])
            for name in ("name", "description"):
                if row[name].strip():
                    variant[name] = row[name].strip()
            raw["variants"].append(variant)

        raw["metrics"] = []
        for i, row in enumerate(self.metrics):
            if is_blank(row, ("name", *PARAMS)):
                continue
            rows.metrics.append(i)
            metric: dict[str, Any] = {"name": row["name"].strip(), "type": row["type"]}
            for name, param in PARAMS.items():  # only the inputs typed in: the parser names a misplaced one
                if row[name].strip():
                    metric[name] = _typed_param(param.kind, row[name])
            metric["primary"] = self.primary == str(i)
            raw["metrics"].append(metric)

        targeting: dict[str, list[str]] = {}
        for i, row in enumerate(self.targeting):
            attribute = row["attribute"].strip()
            values = [v.strip() for v in row["values"].split(",") if v.strip()]
            if not attribute and not values:
                continue
            if not attribute:
                shape_errors.append(ValidationError("name the visitor attribute these values are for",
                                                    field=f"targeting-{i}-attribute"))
            elif attribute in targeting:
                shape_errors.append(ValidationError(f"{attribute!r} already has a row; list all its values in "
                                                    "that one row", field=f"targeting-{i}-attribute"))
            else:
                rows.targeting[attribute] = i
                targeting[attribute] = values
        if targeting:
            raw["targeting"] = targeting

        if any(v.strip() for v in self.namespace.values()):
            raw["namespace"] = {"name": self.namespace["name"].strip(),
                                "range": [typed_number(self.namespace["start"]), typed_number(self.namespace["end"])]}

        if any(self.plan[k].strip() for k in ("units_per_variant", "baseline", "mde")):
            plan: dict[str, Any] = {}
            for name in PLAN_INPUTS:
                if self.plan[name].strip():
                    plan[name] = typed_integer(self.plan[name]) if name == "units_per_variant" else typed_number(self.plan[name])
            raw["plan"] = plan
        return raw, shape_errors, rows


@dataclass
class RowMap:
    """Position in the raw table's lists → form row (blank rows are skipped)."""

    variants: list[int] = field(default_factory=list)
    metrics: list[int] = field(default_factory=list)
    targeting: dict[str, int] = field(default_factory=dict)


# ---- errors: from a definition field to the input beside which the message goes -------------------


_FIELDSETS = ("variants", "metrics", "targeting", "namespace", "plan")


def field_error(field_name: str | None, rows: RowMap, message: str) -> FieldError:
    """A definition problem placed beside its input, with the summary link's target."""
    slot, label = locate(field_name, rows)
    anchor = ("definition-form" if slot is None else
              {"analysis": "analysis-sequential", "namespace-range": "namespace-start"}.get(
                  slot, f"{slot}-fieldset" if slot in _FIELDSETS else slot))
    return FieldError(slot, label, message, anchor)


def locate(field_name: str | None, rows: RowMap) -> tuple[str | None, str]:
    """The error slot and a human label for a definition field such as ``variants[1].weight``."""
    name = field_name or ""
    in_row = locate_row(name, {
        "variants": RowSection([], ("key", "name", "weight"), "Variant", order=rows.variants),
        "metrics": RowSection([], METRIC_INPUTS + ("primary",), "Metric", order=rows.metrics)})
    if in_row is not None:
        return in_row
    if re.fullmatch(r"targeting-\d+-attribute", name):  # the form's own shape errors
        return name, f"Targeting row {int(name.split('-')[1]) + 1} attribute"
    if name.startswith("targeting."):
        attribute = name.removeprefix("targeting.")
        row = rows.targeting.get(attribute)
        return (f"targeting-{row}-values" if row is not None else "targeting"), f"Targeting “{attribute}”"
    if name in ("namespace.name", "namespace.range"):
        return name.replace(".", "-"), f"Namespace {name.split('.')[1]}"
    if name.startswith("plan."):
        sub = name.removeprefix("plan.")
        return (f"plan-{sub}" if sub in PLAN_INPUTS else "plan"), f"Plan {sub.replace('_', ' ')}"
    if name in ("variants", "metrics", "targeting", "plan") or name.startswith("namespace"):
        return name.split(".")[0], name.split(".")[0].capitalize()
    if name in ("key", "name", "hypothesis", "analysis", "alpha", "coverage", "cuped"):
        return name, TOP_LABELS[name]
    return None, TOP_LABELS.get(name, name or "Definition")


def check(form: DefinitionForm, stored: ExperimentDef | None) -> Checked:
    """Validate as ``abtest sync`` does, then let the pipeline refuse what it would refuse.

    An edit runs the stored experiment's update rule (:func:`abtest.pipeline.check_update`: frozen
    splits, coverage only up); a new definition the key rule. Both only read,
    so checking while the designer types never takes a write lock.
    """
    raw, shape_errors, rows = form.to_raw(stored)
    definition, problems, conflict = judge(raw, parse_experiment, stored, pipeline.check_update, shape_errors)
    return Checked(definition, [field_error(p.field, rows, p.message) for p in problems], conflict)


# ---- the sample-size helper ----------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSizeAnswer:
    n_per_variant: int | None = None
    n_total: int | None = None
    days: int | None = None
    variants: int = 2
    alpha: float = 0.05
    coverage: float = 1.0
    daily_traffic: float | None = None
    method: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)


MAX_HELPER_DAYS = 36_525


def _plain_float(text: str | None, default: float, low: float, high: float) -> float:
    try:
        value = float(text or "")
    except ValueError:
        return default
    return value if low < value <= high else default


def sample_size(values: Mapping[str, str]) -> SampleSizeAnswer | None:
    """Units per variant for the helper's baseline and effect; days from daily traffic × coverage.

    The statistics are :func:`abtest.stats.power.sample_size_proportions` (the same numbers as
    ``abtest power``); its errors name the field, which puts them beside the helper's input.
    Returns None while the helper is untouched.
    """
    from abtest.stats.power import sample_size_proportions

    baseline, mde, daily = (str(values.get(k, "")).strip() for k in HELPER_INPUTS)
    if not (baseline or mde):
        return None
    alpha = _plain_float(values.get("alpha"), 0.05, 0, 0.4999999)
    coverage = _plain_float(values.get("coverage"), 1.0, 0, 1)
    try:
        variants = max(2, min(20, int(values.get("variant_count") or 2)))
    except ValueError:
        variants = 2
    errors: dict[str, list[str]] = {}
    traffic = None
    if daily:
        try:
            traffic = float(daily)
        except ValueError:
            traffic = None
        if traffic is None or not math.isfinite(traffic) or traffic <= 0:
            errors["helper-daily_traffic"] = [f"must be a positive number of visitors per day, not {daily!r}"]
            traffic = None
    for slot, text in (("helper-baseline", baseline), ("helper-mde", mde)):
        if not text:
            errors[slot] = ["is required, e.g. 0.10 for a 10% rate" if slot == "helper-baseline"
                            else "is required, e.g. 0.02 for 2 percentage points"]
    if "helper-baseline" in errors or "helper-mde" in errors:
        return SampleSizeAnswer(variants=variants, alpha=alpha, coverage=coverage, errors=errors)
    try:
        size = sample_size_proportions(typed_number(baseline), typed_number(mde), alpha=alpha, power=0.8,  # type: ignore[arg-type]
                                       variants=variants)
    except ValidationError as exc:
        errors.setdefault({"baseline": "helper-baseline", "mde": "helper-mde"}.get(exc.field or "", "helper"),
                          []).append(exc.message)
        return SampleSizeAnswer(variants=variants, alpha=alpha, coverage=coverage, errors=errors)
    days = None
    if traffic:
        rate = traffic * coverage  # visitors entering the test per day; 1e-300 × 1e-300 is 0
        span = size.n_total / rate if rate > 0 else math.inf
        if span > MAX_HELPER_DAYS:
            errors["helper-daily_traffic"] = [f"at {daily} visitors a day the test would run for more than "
                                              f"{MAX_HELPER_DAYS:,} days (a century)"]
        else:
            days = math.ceil(span)
    return SampleSizeAnswer(size.n_per_variant, size.n_total, days, variants, alpha, coverage, traffic,
                            size.method, errors)


def _typed_param(kind: str, text: str) -> Any:
    """A metric parameter as typed in the form, in the type the definition parser expects (or
    the text itself, so the parser names the field)."""
    if kind == "days":
        return typed_integer(text)
    if kind == "number":
        return typed_number(text)
    if kind == "flag":
        return {"yes": True, "true": True, "no": False, "false": False}.get(text.strip().lower(), text.strip())
    return text.strip()
