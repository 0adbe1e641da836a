"""What a study's results page adds to the shared one: the "how many participants" planner and the
CSV of every response and timing. (The results themselves are the one results route's.)"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, make_response, render_template, request, url_for
from sqlmodel import Session

from abtest import pipeline
from abtest.errors import ValidationError
from abtest.report import Report
from abtest.studies import store
from abtest.studies.ia import describe_path
from abtest.studies.runner import get_study
from web.extensions import get_engine
from web.ia_results import ia_views
from web.auth import login_required

study_results = Blueprint("study_results", __name__)

PLAN_DEFAULTS = {"p": 0.31, "target": 0.85, "n": 5, "rate": 0.8, "margin": 0.15}


def study_context(row: Any, definition: Any, report: Report, args: Mapping[str, str]) -> dict[str, Any]:
    """The study page's own parts: the planner, the CSV link, the participants and readings, and
    the study's history (the experiments show theirs on their definition page)."""
    with Session(get_engine()) as session:
        history = pipeline.history(session, row.key)
    return {"study": definition, "details": report.details, "plan": plan_answers(args),
            "ia_tasks": ia_views(definition, report.details),
            "plan_url": url_for("study_results.plan", key=row.key),
            "csv_url": url_for("study_results.export", key=row.key), "history": history}


def plan_answers(args: Mapping[str, str]) -> dict[str, Any]:
    """The "how many participants" planner: inputs (percentages in the form), answers, errors."""
    from abtest.stats import planning

    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, default in PLAN_DEFAULTS.items():
        raw = (args.get(name) or "").strip()
        try:
            number = (int(raw) if name == "n" else float(raw) / 100) if raw else default
        except ValueError:
            errors[name] = "Enter a number."
            number = default
        values[name] = number
    # Checked before computing: (1 − p)ⁿ of a 400-digit n overflows.
    n_out_of_range = "n" not in errors and not 0 <= values["n"] <= 1000
    if n_out_of_range:
        errors["n"] = "From 0 to 1000 participants."
    answers: dict[str, Any] = {}
    for out, compute in (("chance", lambda: planning.discovery_chance(values["p"], values["n"])),
                         ("needed", lambda: planning.participants_for_discovery(values["p"], values["target"])),
                         ("for_margin", lambda: planning.participants_for_margin(values["rate"], values["margin"]))):
        if out == "chance" and n_out_of_range:
            continue
        try:
            answers[out] = compute()
        except ValidationError as exc:
            errors.setdefault(exc.field or out, exc.message)
    return {"values": values, "answers": answers, "errors": errors}


@study_results.get("/experiments/<key>/planner")
@login_required
def plan(key: str):  # type: ignore[no-untyped-def]
    """The planner's answers (htmx fragment; the form also works without script via the page)."""
    with Session(get_engine()) as db:
        get_study(db, key)
    response = make_response(render_template("studies/_planner.html", plan=plan_answers(request.args)))
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@study_results.get("/experiments/<key>/responses.csv")
@login_required
def export(key: str) -> Response:
    """Every timing and response of the study, one row per event (answers separated by ';')."""
    with Session(get_engine()) as db:
        row, study = get_study(db, key)
        assert row.id is not None
        rows = store.export_rows(db.connection(), row.id, [t.key for t in study.tasks])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(store.CSV_COLUMNS)
    for unit, variant, type_, task, success, duration, questionnaire, answers, ts in rows:
        if study.method == "tree-test" and type_ == "task" and answers and variant in dict(study.trees):
            answers = describe_path(study.tree_of(variant), answers)  # the path in labels, not node numbers
        writer.writerow([_cell(unit), variant, type_, task or "", "" if success is None else int(success),
                         "" if duration is None else f"{duration:.0f}", questionnaire or "",
                         ";".join(_cell(str(a)) for a in answers or []), ts.isoformat() if ts else ""])
    response = make_response(out.getvalue())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{key}-study.csv"'
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _cell(text: str) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
