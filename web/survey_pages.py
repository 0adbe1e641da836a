"""What a survey's results page adds to the shared one (its responses, the equal-response-rate
check, each question's answers), the surveys section of a linked experiment's results page, and
a survey's install help (the same snippet as experiments)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import Blueprint, render_template, url_for
from sqlmodel import Session

from abtest import pipeline
from abtest.errors import AbtestError
from abtest.report import Report
from abtest.surveys import store
from abtest.surveys.definition import SurveyDef
from web.answers_chart import answers_chart
from web.auth import login_required
from web.extensions import get_engine
from web.metric_views import metric_view
from web.snippet import paste_snippet

survey_pages = Blueprint("survey_pages", __name__)


def _questions(report: Report) -> list[dict[str, Any]]:
    return [dict(q, chart=answers_chart(q)) for q in report.details.questions]


def survey_context(row: Any, definition: SurveyDef, report: Report, args: Mapping[str, str]) -> dict[str, Any]:
    """The survey page's own parts: responses per variant, the rate check, answers, history."""
    with Session(get_engine()) as session:
        history = pipeline.history(session, row.key)
    return {"survey": definition, "details": report.details, "questions": _questions(report), "history": history}


def linked_surveys(row: Any, definition: Any, report: Report, args: Mapping[str, str]) -> dict[str, Any]:
    """An experiment page's surveys: each linked survey's report, its metrics drawn like the
    experiment's own (the answers per variant, compared with the first variant)."""
    with Session(get_engine()) as session:
        linked = [pipeline.load(session, key)[1] for key in store.linked_to(session, row.key)]
    out = []
    for survey in linked:
        try:
            survey_report = pipeline.results(get_engine(), survey)
        except AbtestError as exc:  # one survey that cannot be computed leaves the experiment's page standing
            out.append({"survey": survey, "error": exc.message, "url": url_for("results.page", key=survey.key)})
            continue
        out.append({"survey": survey, "report": survey_report, "details": survey_report.details,
                    # the experiment's own primary metric is the page's; the survey's is not
                    "metrics": [metric_view(replace(m, primary=False), survey_report.alpha)
                                for m in survey_report.metrics],
                    "url": url_for("results.page", key=survey.key)})
    return {"linked_surveys": out}


@survey_pages.get("/surveys/<key>/install")
@login_required
def install(key: str):  # type: ignore[no-untyped-def]
    """How a survey reaches a site: the snippet every experiment uses, and what it will do."""
    with Session(get_engine()) as session:
        _row, definition = pipeline.load(session, key)
    snippet = paste_snippet(url_for("static", filename="abtest.js", _external=True), "pk_…")
    return render_template("surveys/install.html", d=definition, snippet=snippet)
