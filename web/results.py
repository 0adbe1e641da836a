"""Result pages: the report of any kind of test as HTML (with SVG charts) and as its JSON twin.

One route for every kind (``/experiments/<key>/results``): the page loads the definition once,
asks the pipeline for the report (``?by=ATTR`` breaks it down by an attribute) and renders it,
computing nothing statistical; the kind's page entry (:data:`web.kind_pages.PAGES`) chooses the
template and the words. A normal request gets the full page; an htmx request (Refresh, the
60-second poll, the "Break down by" control) gets only the ``#results`` fragment, except for
htmx's history-restore request. Responses vary on ``HX-Request``.

``/experiments/<key>/results.json`` is the same document as ``GET /api/v1/experiments/<key>/results``,
behind the designer login instead of an API token (datasette's "every page has a .json twin");
``results.csv`` is that document as a table for a spreadsheet (:data:`CSV_COLUMNS`).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, make_response, render_template, request, url_for
from sqlmodel import Session

from abtest import pipeline
from abtest.report import Report
from abtest.store.registry import TRANSITIONS
from web import charts
from web.extensions import get_engine
from web.auth import login_required
from web.form_rows import wants_fragment
from web.kind_pages import PAGES
from web.metric_views import metric_view

results = Blueprint("results", __name__)

LIFECYCLE_ACTIONS = {"running": "launch", "stopped": "stop", "archived": "archive"}


def formatters() -> dict[str, Any]:
    return {
        "format_value": charts.format_value, "format_value_ci": charts.format_value_ci,
        "format_effect": charts.format_effect, "format_effect_ci": charts.format_effect_ci,
        "format_relative": charts.format_relative, "format_p": charts.format_p,
        "format_chance": charts.format_chance, "effect_axis_label": charts.effect_axis_label,
    }


results.context_processor(formatters)


def _expected_split(definition: Any, report: Report) -> list[dict[str, Any]]:
    """Per variant: configured weight, expected and observed units, for the SRM banner."""
    total = sum(report.units.values())
    return [{"variant": v.key, "weight": v.weight, "expected": total * v.weight, "observed": report.units.get(v.key, 0)}
            for v in definition.variants]


def _context(row: Any, definition: Any, report: Report, by: str | None) -> dict[str, Any]:
    pages = PAGES[row.kind]
    total = sum(report.units.values())
    return {
        "experiment": row, "definition": definition, "report": report, "pages": pages, "total_units": total,
        "noun": getattr(definition, "noun", pages.noun),  # a study names its method: "tree test"
        "has_data": total > 0,
        "variant_names": {v.key: v.name for v in definition.variants if v.name and v.name != v.key},
        "level": f"{1 - report.alpha:.0%}",
        "p_label": "always-valid p" if report.analysis == "sequential" else "p",
        "fixed_before_plan": pages.planned and report.analysis == "fixed" and not report.horizon_reached,
        "split": _expected_split(definition, report),
        "excluded_total": sum(v for k, v in report.excluded.items() if k != "abandoned"),
        "metrics": [metric_view(m, report.alpha) for m in report.metrics] if total else [],
        "cumulative": charts.cumulative_chart(report) if total else None,
        "install_url": url_for(pages.install, key=row.key),
        "results_url": url_for("results.page", key=row.key),
        "json_url": url_for("results.document", key=row.key, by=by),
        "results_csv_url": url_for("results.table", key=row.key, by=by),
        "by": by or "", "attributes": pipeline.attribute_names(get_engine(), definition),
        "lifecycle_actions": [LIFECYCLE_ACTIONS[s] for s in TRANSITIONS.get(row.status, ())],
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


@results.get("/experiments/<key>/results")
@login_required
def page(key: str):  # type: ignore[no-untyped-def]
    """The results page, or its ``#results`` fragment for htmx swaps."""
    by = request.args.get("by") or None
    with Session(get_engine()) as session:
        row, definition = pipeline.load(session, key)
    report = pipeline.results(get_engine(), definition, by=by)
    context = _context(row, definition, report, by)
    if PAGES[row.kind].extras is not None:
        context.update(PAGES[row.kind].extras(row, definition, report, request.args))
    template = "results/_results.html" if wants_fragment() else PAGES[row.kind].results_template
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")  # fragment and page share a URL: caches must tell them apart
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@results.get("/experiments/<key>/results.json")
@login_required
def document(key: str):  # type: ignore[no-untyped-def]
    """The results document (DESIGN §4.5), the same JSON as the API's."""
    response = jsonify(pipeline.analyze(get_engine(), key, by=request.args.get("by") or None).to_dict())
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# One row per metric and variant (and per segment with ?by=), the variant's comparison beside it
# (the baseline's comparison cells are empty); ``reason`` says why the variant has no value,
# ``comparison_reason`` why its comparison has none. Numbers are the JSON document's, unrounded.
CSV_COLUMNS = ("metric", "segment", "variant", "unit", "n", "value", "ci_low", "ci_high", "reason", "baseline",
               "effect_kind", "effect", "effect_ci_low", "effect_ci_high", "p", "p_adjusted", "significant", "method",
               "comparison_reason")


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _text(value: str | None) -> str:
    """Free text as a cell (segments are what visitors sent): never a spreadsheet formula."""
    value = value or ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_rows(document: dict[str, Any]) -> list[list[str]]:
    """The results document as rows of :data:`CSV_COLUMNS` (a variant compared twice gets two rows,
    a metric with no variants one row with its reason)."""
    rows = []
    for metric in document["metrics"]:
        for segment, part in [("", metric), *((s["segment"], s) for s in metric.get("segments", []))]:
            if not part["variants"]:
                rows.append([metric["name"], _text(segment), "", metric["unit"], "", "", "", "",
                             _text(metric.get("reason")), *[""] * 10])
            for variant in part["variants"]:
                ci = variant["ci"] or [None, None]
                cells = [metric["name"], _text(segment), variant["variant"], metric["unit"], _number(variant["n"]),
                         _number(variant["value"]), _number(ci[0]), _number(ci[1]),
                         _text(variant.get("reason") or metric.get("reason"))]
                compared = [c for c in part["comparisons"] if c["variant"] == variant["variant"]]
                rows += [[*cells, *[""] * 10]] if not compared else [
                    [*cells, c["baseline"], c["effect_kind"], _number(c["effect"]),
                     *(_number(x) for x in c["ci"] or [None, None]), _number(c["p_value"]), _number(c["p_adjusted"]),
                     "true" if c["significant"] else "false", c["method"], _text(c.get("reason"))]
                    for c in compared]
    return rows


@results.get("/experiments/<key>/results.csv")
@login_required
def table(key: str):  # type: ignore[no-untyped-def]
    """The results document as CSV: per metric and variant its value and interval, and its comparison."""
    by = request.args.get("by") or None
    document = pipeline.analyze(get_engine(), key, by=by).to_dict()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(document))
    response = make_response(out.getvalue())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{key}-results{f"-by-{by}" if by else ""}.csv"'
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@results.get("/experiments/<key>/study-results")
@login_required
def study_page(key: str):  # type: ignore[no-untyped-def]
    """Where study results used to live: the one results page now."""
    from flask import redirect

    return redirect(url_for("results.page", key=key), 301)
