"""Designer pages for experiments: the list, the definition form, lifecycle moves and install help.

The form is a translation layer only. Its inputs become the same raw table a TOML file gives
(numbers that do not parse are passed through as typed, so the definition parser names them),
:func:`abtest.definitions.parse_definition` validates it exactly as ``abtest sync`` does, and the
registry's own checks (reused keys, frozen splits) run on a rolled-back transaction while the
designer types. Every error's ``field`` is then mapped back to the input it belongs to.

htmx: full pages on normal requests, fragments when ``request.htmx`` (never for a history
restore); every response varies on ``HX-Request``. Everything works without JavaScript: the
add/remove buttons and the sample-size button are ordinary submit buttons as well.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import tomli_w
from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask import session as cookie
from htmx_flask import request
from sqlmodel import Session, col, select

from abtest import registry
from abtest.accounts import create_token, list_tokens
from abtest.definitions import (
    METRIC_TYPES,
    ExperimentDef,
    parse_definition,
)
from abtest.errors import Conflict, ValidationError
from abtest.models import Experiment
from web import get_engine
from web.auth import login_required
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
    vary_on_htmx,
    wants_fragment,
)

experiments = Blueprint("experiments", __name__, url_prefix="/experiments")

VARIANT_INPUTS = ("key", "name", "weight", "description")
METRIC_INPUTS = ("name", "type", "event", "task", "days")
TARGETING_INPUTS = ("attribute", "values")
PLAN_INPUTS = ("units_per_variant", "baseline", "mde", "power")
HELPER_INPUTS = ("baseline", "mde", "daily_traffic")
SECTIONS = ("variants", "metrics", "targeting", "plan")

# Lifecycle actions as the pages name them → the status they move to, and what the move means.
LIFECYCLE: dict[str, dict[str, str]] = {
    "launch": {"status": "running", "verb": "Launch", "done": "launched: visitors are now being assigned",
               "study_done": "launched: the participant link is open"},
    "stop": {"status": "stopped", "verb": "Stop", "done": "stopped: no new visitors are assigned and its results are final",
             "study_done": "stopped: the participant link is closed and its results are final"},
    "archive": {"status": "archived", "verb": "Archive", "done": "archived", "study_done": "archived"},
}
ACTION_FOR_STATUS = {spec["status"]: action for action, spec in LIFECYCLE.items()}

TOP_LABELS = {
    "key": "Key", "name": "Name", "hypothesis": "Hypothesis", "analysis": "Analysis",
    "alpha": "Significance level (α)", "coverage": "Coverage", "cuped": "CUPED",
    "seed": "Seed", "status": "Status", "kind": "Kind",
}


experiments.after_request(vary_on_htmx)


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
            metrics=[{"name": m.name, "type": m.type, "event": m.event or "", "task": m.task or "",
                      "days": shown(m.days)} for m in d.metrics] or [blank_row(METRIC_INPUTS, type="conversion")],
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
            if is_blank(row, ("name", "event", "task", "days")):
                continue
            rows.metrics.append(i)
            metric: dict[str, Any] = {"name": row["name"].strip(), "type": row["type"]}
            for name in ("event", "task"):
                if row[name].strip():
                    metric[name] = row[name].strip()
            if row["days"].strip():
                metric["days"] = typed_integer(row["days"])
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
    """Validate as ``abtest sync`` does, then let the registry refuse what it would refuse.

    An edit runs the registry's own update rule (:func:`registry.check_update`: frozen splits,
    coverage only up); a new definition its key rule (:func:`registry.check_new`). Both only read,
    so checking while the designer types never takes a write lock.
    """
    raw, shape_errors, rows = form.to_raw(stored)
    definition, problems, conflict = judge(raw, parse_definition, stored, registry.check_update, shape_errors)
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
    days = math.ceil(size.n_total / (traffic * coverage)) if traffic else None
    return SampleSizeAnswer(size.n_per_variant, size.n_total, days, variants, alpha, coverage, traffic,
                            size.method, errors)


# ---- rendering helpers -------------------------------------------------------------------------------


def _stored(key: str, studies_too: bool = False) -> tuple[ExperimentDef, Experiment]:
    """The stored definition and its row; an unknown key raises NotFound (a 404 page).

    Pages about experiments only (this form, install help) refuse a study: it has its own form
    (:mod:`web.study_form`) and results page. Lifecycle moves and the TOML file serve both, and
    then a study comes back as its whole :class:`~abtest.studies.StudyDef`.
    """
    with Session(get_engine()) as session:
        row = registry.get_row(session, key)
        if row.kind == "study":
            if studies_too:
                from abtest.studies import load_study

                return load_study(session, row), row
            raise Conflict(f"{key!r} is a usability study: edit it at /studies/{key}/edit; "
                           f"its results are at /experiments/{key}/study-results", field="kind")
        return registry.load(session, row), row


def _home(row: Experiment) -> str:
    """An experiment's own page, or a study's results page (a study's home)."""
    if row.kind == "study":
        return url_for("study_results.page", key=row.key)
    return url_for("experiments.show", key=row.key)


def _render_form(form: DefinitionForm, stored: ExperimentDef | None, checked: Checked | None = None, *,
                 status: int = 200, focus: str | None = None, fragment: bool = False, oob: bool = False,
                 section: str | None = None) -> tuple[str, int]:
    helper = sample_size({**form.helper, "alpha": form.alpha, "coverage": form.coverage,
                          "variant_count": str(len(form.variants))})
    context = {
        "form": form, "stored": stored, "errors": {**(checked.by_slot if checked else {}), **(helper.errors if helper else {})},
        "problems": checked.errors if checked else [], "submitted": checked is not None and not oob,
        "frozen": stored is not None and stored.status == "running", "focus": focus, "oob": oob,
        "helper": helper, "metric_types": METRIC_TYPES,
    }
    if section:
        return render_template(f"experiments/_{section}.html", **context), status
    template = "experiments/_form.html" if fragment else "experiments/form.html"
    return render_template(template, **context), status


def _toml(definition: ExperimentDef) -> str:
    """The definition as a TOML file for version control (empty values left out)."""

    def prune(value: Any) -> Any:
        if isinstance(value, dict):
            pruned = {k: prune(v) for k, v in value.items()}
            return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
        if isinstance(value, list):
            return [prune(v) for v in value]
        return value

    document = prune(definition.to_dict())
    # tomli_w writes short tables inline; variants and metrics (a study's designs and tasks) read
    # better as [[variants]] blocks, the shape of DESIGN §4.2, so each table body is dumped on its
    # own under its header.
    lists = {name: document.pop(name) for name in list(document)
             if isinstance(document[name], list) and all(isinstance(item, dict) for item in document[name])}
    chunks = [tomli_w.dumps(document)]
    for name, tables in lists.items():
        chunks.extend(f"\n[[{name}]]\n{tomli_w.dumps(table)}" for table in tables)
    return "".join(chunks)


def _with_override(site: str, key: str, variant: str) -> str:
    parts = urlsplit(site)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != f"abtest_{key}"]
    query.append((f"abtest_{key}", variant))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _qa_links(definition: ExperimentDef, site: str) -> tuple[list[tuple[str, str]], str | None]:
    """(variant, link) pairs; without a site URL the links are just the query suffix."""
    site = site.strip()
    error = None
    if site and not (urlsplit(site).scheme in ("http", "https") and urlsplit(site).netloc):
        error = "enter a full address starting with https:// or http://, e.g. https://shop.example.com/cart"
    links = []
    for variant in definition.variant_keys:
        suffix = "?" + urlencode({f"abtest_{definition.key}": variant})
        links.append((variant, _with_override(site, definition.key, variant) if site and not error else suffix))
    return links, error


# ---- routes: list ------------------------------------------------------------------------------------


@experiments.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    """Every experiment with its status; units, progress and verdict load per row (htmx)."""
    with Session(get_engine()) as session:
        rows = session.exec(select(Experiment).order_by(col(Experiment.status) != "running",
                                                        col(Experiment.id).desc())).all()
    return render_template("experiments/index.html", experiments=rows)


@experiments.get("/<key>/summary")
@login_required
def summary(key: str):  # type: ignore[no-untyped-def]
    """One row's live numbers: exposed units, progress to the plan and the primary verdict."""
    from abtest.analysis import analyze

    report = analyze(get_engine(), key)
    return render_template("experiments/_summary.html", report=report, total=sum(report.units.values()))


# ---- routes: the definition form ----------------------------------------------------------------------


def _form_page(stored: ExperimentDef | None):  # type: ignore[no-untyped-def]
    """GET shows the form; POST saves, or re-renders after a no-JS add/remove/calculate button."""
    if request.method == "GET":
        form = DefinitionForm.from_definition(stored) if stored else DefinitionForm.blank()
        return _render_form(form, stored)
    form = DefinitionForm.from_request(request.form)
    action = request.form.get("action", "save")
    if action != "save":
        focus = form.apply(action)
        return _render_form(form, stored, focus=focus or "sample-size-result", fragment=wants_fragment())
    checked = check(form, stored)
    if checked.definition is None:
        return _render_form(form, stored, checked, status=409 if checked.conflict else 422,
                            fragment=wants_fragment())
    with Session(get_engine()) as session:
        try:
            (registry.update if stored else registry.create)(session, checked.definition)
            session.commit()
        except Conflict as exc:  # the state changed since the check (someone launched it meanwhile)
            session.rollback()
            raw_rows = form.to_raw(stored)[2]
            failed = Checked(None, [field_error(exc.field, raw_rows, exc.message)], conflict=True)
            return _render_form(form, stored, failed, status=409, fragment=wants_fragment())
    key = checked.definition.key
    flash(f"Saved “{checked.definition.name}”." if stored else
          f"Created “{checked.definition.name}” as a draft. Launch it when the site has the snippet.", "success")
    return redirect(url_for("experiments.show", key=key))


@experiments.route("/new", methods=["GET", "POST"])
@login_required
def new():  # type: ignore[no-untyped-def]
    return _form_page(None)


@experiments.route("/<key>/edit", methods=["GET", "POST"])
@login_required
def edit(key: str):  # type: ignore[no-untyped-def]
    return _form_page(_stored(key)[0])


def _editing() -> ExperimentDef | None:
    """The stored definition an htmx form request is about (the form's hidden ``editing`` key)."""
    key = request.form.get("editing")
    return _stored(key)[0] if key else None


@experiments.post("/validate")
@login_required
def validate():  # type: ignore[no-untyped-def]
    """Errors as you type: the form with every error beside its input (slots swapped out of band).

    Answers 200 either way (htmx swaps only 2xx); the error slots say what is wrong.
    """
    stored = _editing()
    form = DefinitionForm.from_request(request.form)
    checked = check(form, stored)
    if wants_fragment():
        return _render_form(form, stored, checked, fragment=True, oob=True)
    return _render_form(form, stored, checked)


@experiments.post("/form/<section>")
@login_required
def form_section(section: str):  # type: ignore[no-untyped-def]
    """htmx: apply one row button (add/remove a variant, metric, targeting rule) to one fieldset."""
    if section not in SECTIONS:
        abort(404)
    stored = _editing()
    form = DefinitionForm.from_request(request.form)
    focus = form.apply(request.form.get("action", ""))
    if not wants_fragment():
        return _render_form(form, stored, focus=focus)
    return _render_form(form, stored, focus=focus, section=section)


@experiments.get("/sample-size")
@login_required
def sample_size_page():  # type: ignore[no-untyped-def]
    """Units per variant and days needed; a fragment for the form's helper, or a page of its own."""
    answer = sample_size(request.args)
    context = {"helper": answer, "values": request.args, "helper_oob": wants_fragment(),
               "errors": answer.errors if answer else {}}
    if wants_fragment():
        return render_template("experiments/_sample_size.html", **context)
    return render_template("experiments/sample_size.html", **context), 422 if answer and answer.errors else 200


# ---- routes: one experiment ---------------------------------------------------------------------------


@experiments.get("/<key>")
@login_required
def show(key: str):  # type: ignore[no-untyped-def]
    definition, row = _stored(key)
    target = None
    if definition.plan is not None:
        target = _planned_units(definition)
    actions = [ACTION_FOR_STATUS[s] for s in registry.TRANSITIONS.get(definition.status, ())]
    return render_template("experiments/show.html", d=definition, row=row, actions=actions,
                           lifecycle=LIFECYCLE, target=target)


def _planned_units(definition: ExperimentDef) -> int | None:
    plan = definition.plan
    if plan is None:
        return None
    if plan.units_per_variant:
        return plan.units_per_variant
    if plan.baseline is None or plan.mde is None:
        return None
    from abtest.stats.power import sample_size_proportions

    try:
        return sample_size_proportions(plan.baseline, plan.mde, alpha=definition.alpha, power=plan.power,
                                       variants=len(definition.variants)).n_per_variant
    except ValidationError:
        return None


@experiments.route("/<key>/<any(launch, stop, archive):action>", methods=["GET", "POST"])
@login_required
def lifecycle(key: str, action: str):  # type: ignore[no-untyped-def]
    """GET: what the move means, in plain words, with a confirm button. POST: make the move.

    Moves the lifecycle does not allow answer 409 with the registry's reason; nothing changes.
    """
    spec = LIFECYCLE[action]
    definition, row = _stored(key, studies_too=True)
    page = {"d": definition, "row": row, "action": action, "spec": spec, "home": _home(row),
            "study": row.kind == "study"}
    try:
        registry.check_transition(definition.status, spec["status"])
        if definition.status == spec["status"]:
            raise Conflict(f"the experiment is already {definition.status}", field="status")
    except Conflict as exc:
        return render_template("experiments/lifecycle.html", **page, refused=exc.message), 409
    if request.method == "GET":
        return render_template("experiments/lifecycle.html", **page, refused=None)
    with Session(get_engine()) as session:
        try:
            registry.transition(session, key, spec["status"])
            session.commit()
        except Conflict as exc:  # moved by someone else since the page was shown
            session.rollback()
            return render_template("experiments/lifecycle.html", **page, refused=exc.message), 409
    flash(f"“{definition.name}” {spec['study_done' if page['study'] else 'done']}.", "success")
    return redirect(page["home"])


@experiments.route("/<key>/install", methods=["GET", "POST"])
@login_required
def install(key: str):  # type: ignore[no-untyped-def]
    """The snippet, the server call, CSS hooks, QA links and the TOML. POST creates a public key.

    Keys are stored hashed, so a new one is shown once: it travels to the next page view in the
    session (a public key is public by design: it sits in every page that carries the snippet).
    """
    definition, row = _stored(key)
    if request.method == "POST":
        with Session(get_engine()) as session:
            token = create_token(session, "public", f"site for {key}")
            session.commit()
        cookie["new_public_key"] = token.secret
        flash("Created a public key. It is in the snippet below; copy it now: it cannot be shown again.", "success")
        return redirect(url_for("experiments.install", key=key))
    new_key = cookie.pop("new_public_key", None)
    with Session(get_engine()) as session:
        public_keys = [t for t in list_tokens(session) if t.kind == "public" and t.revoked_at is None]
    site = request.args.get("site", "")
    links, site_error = _qa_links(definition, site)
    return render_template("experiments/install.html", d=definition, row=row, public_key=new_key,
                           public_keys=public_keys, toml=_toml(definition), links=links, site=site,
                           site_error=site_error, errors={"site": [site_error]} if site_error else {})


@experiments.get("/<key>/qa-links")
@login_required
def qa_links(key: str):  # type: ignore[no-untyped-def]
    """htmx: the QA links for the typed site URL; without htmx, the install page with them."""
    definition, _ = _stored(key)
    site = request.args.get("site", "")
    if not wants_fragment():
        return redirect(url_for("experiments.install", key=key, site=site or None) + "#qa")
    links, site_error = _qa_links(definition, site)
    return render_template("experiments/_qa_links.html", d=definition, links=links, site=site,
                           site_error=site_error, errors={"site": [site_error]} if site_error else {}, oob=True)


@experiments.get("/<key>.toml")
@login_required
def definition_toml(key: str):  # type: ignore[no-untyped-def]
    """The definition as a file for ``experiments/`` in version control, ready for ``abtest sync``."""
    definition, _ = _stored(key, studies_too=True)
    return Response(_toml(definition), mimetype="application/toml",
                    headers={"Content-Disposition": f'attachment; filename="{key}.toml"'})
