"""Result pages: the report of one experiment as HTML (with SVG charts) and as its JSON twin.

The page renders :func:`abtest.analysis.analyze`'s report and computes nothing statistical. A
normal request gets the full page; an htmx request (the Refresh button, or the 60-second poll
on running experiments) gets only the ``#results`` fragment to swap in place, except for htmx's
history-restore request, which needs the whole page. Responses vary on ``HX-Request`` so caches
never hand a fragment to a full-page request.

``/experiments/<key>/results.json`` is the same document as ``GET /api/v1/experiments/<key>/results``,
behind the designer login instead of an API token (datasette's "every page has a .json twin").
An unknown key raises :class:`abtest.errors.NotFound`, which the app renders as a 404 page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, make_response, render_template, request, url_for
from sqlmodel import Session
from werkzeug.routing import BuildError

from abtest import registry
from abtest.definitions import ExperimentDef
from abtest.models import Experiment
from abtest.report import MetricResult, Report
from web import charts, get_engine
from web.auth import login_required

results = Blueprint("results", __name__)


def _experiment(key: str) -> tuple[Experiment, ExperimentDef]:
    """The stored row (name, dates) and definition (variant names, weights); NotFound → 404."""
    with Session(get_engine()) as session:
        row = registry.get_row(session, key)
        return row, registry.load(session, row)


def _install_url(key: str) -> str:
    """The install page (snippet, API call) where it exists; its plain path otherwise."""
    try:
        return url_for("experiments.install", key=key)
    except BuildError:
        return f"/experiments/{key}/install"


def _fixed_before_plan(report: Report) -> bool:
    """A fixed-horizon test that has not reached its planned sample may not call a winner
    (DESIGN §7): the page says so beside every p-value instead of showing a badge."""
    return report.analysis == "fixed" and not report.horizon_reached


def _expected_split(definition: ExperimentDef, report: Report) -> list[dict[str, Any]]:
    """Per variant: configured weight, expected and observed units, for the SRM banner."""
    total = sum(report.units.values())
    return [{"variant": v.key, "weight": v.weight, "expected": total * v.weight, "observed": report.units.get(v.key, 0)}
            for v in definition.variants]


@results.context_processor
def _formatters() -> dict[str, Any]:
    return {
        "format_value": charts.format_value, "format_value_ci": charts.format_value_ci,
        "format_effect": charts.format_effect, "format_effect_ci": charts.format_effect_ci,
        "format_relative": charts.format_relative, "format_p": charts.format_p,
        "format_chance": charts.format_chance, "effect_axis_label": charts.effect_axis_label,
    }


def _metric_view(metric: MetricResult, alpha: float) -> dict[str, Any]:
    methods = list(dict.fromkeys(c.method for c in metric.comparisons if c.method))
    return {"metric": metric, "forest": charts.forest_plot(metric, alpha), "comparison_methods": methods,
            "has_chance": any(c.chance_to_beat is not None for c in metric.comparisons)}


@results.get("/experiments/<key>/results")
@login_required
def page(key: str):  # type: ignore[no-untyped-def]
    """The results page, or its ``#results`` fragment for htmx swaps."""
    from abtest.analysis import analyze

    row, definition = _experiment(key)
    report = analyze(get_engine(), key)
    total = sum(report.units.values())
    context = {
        "experiment": row, "definition": definition, "report": report, "total_units": total,
        "has_data": total > 0,
        "variant_names": {v.key: v.name for v in definition.variants if v.name and v.name != v.key},
        "level": f"{1 - report.alpha:.0%}",
        "p_label": "always-valid p" if report.analysis == "sequential" else "p",
        "fixed_before_plan": _fixed_before_plan(report),
        "split": _expected_split(definition, report),
        "excluded_total": sum(report.excluded.values()),
        "metrics": [_metric_view(m, report.alpha) for m in report.metrics] if total else [],
        "cumulative": charts.cumulative_chart(report) if total else None,
        "install_url": _install_url(key),
        "results_url": url_for("results.page", key=key),
        "json_url": url_for("results.document", key=key),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    fragment = bool(request.htmx) and not request.htmx.history_restore_request  # type: ignore[attr-defined]
    template = "results/_results.html" if fragment else "results/page.html"
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")  # fragment and page share a URL: caches must tell them apart
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@results.get("/experiments/<key>/results.json")
@login_required
def document(key: str):  # type: ignore[no-untyped-def]
    """The results document (DESIGN §4.5), the same JSON as the API's."""
    from abtest.analysis import analyze

    response = jsonify(analyze(get_engine(), key).to_dict())
    response.headers["Cache-Control"] = "private, no-cache"
    return response
