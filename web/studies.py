"""Usability studies on the web: the participant runner (``/s/<study>``, no login) and the study
results pages for designers (``/experiments/<key>/study-results`` with its JSON and CSV twins).

The runner keeps no state of its own: the participant id lives in the Flask session, and where
they are (step, phase, task start time) lives in ``study_participants``, so a reload or a new
tab resumes at the same place. Each POST names the step it answers; :mod:`abtest.studies`
refuses it unless that is still the participant's current step, so nothing is recorded twice.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import (
    Blueprint,
    Response,
    abort,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlmodel import Session

from abtest import studies as core
from abtest.errors import AbtestError, BadRequest, Conflict, ValidationError
from web import csrf, get_engine
from web.auth import login_required

studies = Blueprint("studies", __name__, url_prefix="/s")
study_results = Blueprint("study_results", __name__)

_SESSION_KEY = "study_participants"


def _pid(key: str) -> str | None:
    return (session.get(_SESSION_KEY) or {}).get(key)


def _remember(key: str, pid: str) -> None:
    known = dict(session.get(_SESSION_KEY) or {})
    known[key] = pid
    session[_SESSION_KEY] = known
    session.permanent = True


def _message(study: core.StudyDef | None, title: str, message: str, status: int, key: str | None = None) -> Any:
    return render_template("studies/message.html", study=study, title=title, message=message,
                           continue_url=url_for("studies.step", key=key) if key else None), status


def _step_number() -> int:
    try:
        return int(request.form.get("step", ""))
    except ValueError:
        abort(400, description="the form is missing its step number; reload the page")


@studies.get("/<key>")
def consent(key: str):  # type: ignore[no-untyped-def]
    """What the study records, and the button to take part (``?pid=`` carries a panel's id)."""
    with Session(get_engine()) as db:
        row, study = core.get_study(db, key)
        pid = _pid(key)
        if pid and core.get_participant(db, row, pid) is not None:
            return redirect(url_for("studies.step", key=key))
    if row.status != "running":
        return _message(study, "This study is closed", "This study is not taking participants at the moment. "
                        "Thank you for your interest.", 410 if row.status in ("stopped", "archived") else 403)
    pid = request.args.get("pid", "")
    if pid:
        try:
            core.check_pid(pid)
        except ValidationError as exc:
            return _message(study, "Invalid link", f"The participant id in this link is not valid: {exc.message}.", 400)
    designs = 1 if not study.within_subjects else len(study.variants)
    return render_template("studies/consent.html", study=study, pid=pid, designs=designs)


@studies.post("/<key>")
def join(key: str):  # type: ignore[no-untyped-def]
    pid = request.form.get("pid") or _pid(key) or None
    try:
        participant = core.join(get_engine(), key, pid)
    except ValidationError as exc:
        return _message(None, "Invalid link", f"The participant id is not valid: {exc.message}.", 400)
    _remember(key, participant.pid)
    return redirect(url_for("studies.step", key=key))


def _participant(key: str) -> tuple[Any, core.StudyDef, Any] | None:
    pid = _pid(key)
    if pid is None:
        return None
    with Session(get_engine()) as db:
        row, study = core.get_study(db, key)
        participant = core.get_participant(db, row, pid)
    return (row, study, participant) if participant is not None else None


@studies.get("/<key>/step")
def step(key: str, errors: dict[int, str] | None = None, values: dict[str, str] | None = None,
         status: int = 200):  # type: ignore[no-untyped-def]
    """Whatever comes next for this participant: a task, its SEQ, a questionnaire, the comment."""
    found = _participant(key)
    if found is None:
        with Session(get_engine()) as db:
            core.get_study(db, key)  # unknown study: 404
        return redirect(url_for("studies.consent", key=key))
    row, study, participant = found
    if participant.abandoned_at is not None:
        return _message(study, "You left this study", "You chose to leave this study; what you finished was kept. "
                        "Thank you for your time.", 200)
    current = core.current_step(study, participant)
    if current is None:
        return redirect(url_for("studies.thanks", key=key))
    path = core.steps(study, participant.designs)
    context: dict[str, Any] = {
        "study": study, "participant": participant, "step": current, "total": len(path),
        "position": current.number + 1, "errors": errors or {}, "values": values or {},
        "design_index": participant.designs.index(current.design) + 1, "design_count": len(participant.designs),
    }
    if current.kind == "task":
        task = study.task(current.item)
        context.update(task=task, url=with_params(task.start_url or study.url_of(current.design), abtest_study=key,
                                                  abtest_pid=participant.pid, abtest_task=task.key),
                       task_number=[t.key for t in study.tasks].index(task.key) + 1)
        if participant.phase == "seq":
            return render_template("studies/questions.html", name="SEQ", scale=core.SCALES["SEQ"][0],
                                   items=core.SCALES["SEQ"][1], **context), status
        return render_template("studies/task.html", **context), status
    if current.kind == "questionnaire":
        scale, items = core.SCALES[current.item]
        return render_template("studies/questions.html", name=current.item, scale=scale, items=items,
                               **context), status
    return render_template("studies/comment.html", max_comment=core.MAX_COMMENT, **context), status


def _conflict(key: str, exc: Conflict):  # type: ignore[no-untyped-def]
    return _message(None, "Already recorded", f"{exc.message[:1].upper()}{exc.message[1:]}.", 409, key=key)


@studies.post("/<key>/task/start")
def start_task(key: str):  # type: ignore[no-untyped-def]
    pid = _pid(key) or abort(403, description="start from the study link first")
    try:
        core.start_task(get_engine(), key, pid, _step_number())
    except core.StepConflict as exc:
        return _conflict(key, exc)
    return redirect(url_for("studies.step", key=key))


@studies.post("/<key>/task/end")
def end_task(key: str):  # type: ignore[no-untyped-def]
    pid = _pid(key) or abort(403, description="start from the study link first")
    outcome = request.form.get("outcome")
    if outcome not in ("done", "gave-up"):
        abort(400, description="choose “I'm done” or “I gave up”")
    try:
        core.end_task(get_engine(), key, pid, _step_number(), gave_up=outcome == "gave-up")
    except core.StepConflict as exc:
        return _conflict(key, exc)
    return redirect(url_for("studies.step", key=key))


@studies.get("/<key>/progress")
def progress(key: str):  # type: ignore[no-untyped-def]
    """Polled by the task page (htmx, every 2 s) while a task with a success URL runs: nothing
    (204) until the participant has moved on, then an ``HX-Redirect`` to whatever comes next."""
    found = _participant(key)
    if found is None:
        return "", 204
    _row, _study, participant = found
    if str(participant.step) == request.args.get("step") and participant.phase == "running" \
            and participant.abandoned_at is None:
        return "", 204
    response = make_response("", 200)
    response.headers["HX-Redirect"] = url_for("studies.step", key=key)
    return response


@studies.post("/<key>/reached")
@csrf.exempt
def reached(key: str):  # type: ignore[no-untyped-def]
    """The snippet on the tested site reports a page the participant loaded (public, no cookies,
    any origin). Body: JSON ``{"pid", "task", "url"}`` (sent as text/plain to skip the CORS
    preflight). Answers ``{"ended": true}`` when that ended the running task as a success."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return _json_error(BadRequest("the body must be a JSON object with pid, task and url", field="body"))
    for name in ("pid", "task", "url"):
        if not isinstance(body.get(name), str) or not body[name] or len(body[name]) > 4000:
            return _json_error(BadRequest(f"{name} must be a non-empty string", field=name))
    try:
        ended = core.reached(get_engine(), key, body["pid"], body["task"], body["url"])
    except AbtestError as exc:
        return _json_error(exc)
    return jsonify(ended=ended)


def _json_error(exc: AbtestError):  # type: ignore[no-untyped-def]
    return jsonify(error=exc.to_dict()), exc.status


def with_params(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query (existing parameters kept, same names replaced)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


@studies.post("/<key>/answer")
def answer(key: str):  # type: ignore[no-untyped-def]
    pid = _pid(key) or abort(403, description="start from the study link first")
    try:
        core.answer(get_engine(), key, pid, _step_number(), request.form)
    except core.StepConflict as exc:
        return _conflict(key, exc)
    except core.AnswerErrors as exc:
        return step(key, errors=exc.errors, values=request.form.to_dict(), status=422)
    return redirect(url_for("studies.step", key=key))


@studies.post("/<key>/leave")
def leave(key: str):  # type: ignore[no-untyped-def]
    pid = _pid(key) or abort(403, description="start from the study link first")
    core.abandon(get_engine(), key, pid)
    return redirect(url_for("studies.step", key=key))


@studies.get("/<key>/thanks")
def thanks(key: str):  # type: ignore[no-untyped-def]
    found = _participant(key)
    if found is None:
        return redirect(url_for("studies.consent", key=key))
    _row, study, participant = found
    if participant.finished_at is None:
        return redirect(url_for("studies.step", key=key))
    return render_template("studies/thanks.html", study=study)


# --- results (designers) ------------------------------------------------------------------------


@study_results.get("/experiments/<key>/study-results")
@login_required
def page(key: str):  # type: ignore[no-untyped-def]
    """The study's results page: the experiment results layout plus participants and comments."""
    from abtest.study_analysis import analyze_study
    from web.results import _metric_view

    results = analyze_study(get_engine(), key)
    report = results.report
    with Session(get_engine()) as db:
        row, study = core.get_study(db, key)
    total = sum(report.units.values())
    context = {
        "experiment": row, "definition": study, "study": study, "report": report, "results": results,
        "total_units": total, "has_data": total > 0,
        "variant_names": {v.key: v.name for v in study.variants if v.name and v.name != v.key},
        "level": f"{1 - report.alpha:.0%}", "p_label": "p", "fixed_before_plan": False, "split": [],
        "excluded_total": 0, "metrics": [_metric_view(m, report.alpha) for m in report.metrics] if total else [],
        "cumulative": None, "install_url": url_for("studies.consent", key=key),
        "results_url": url_for("study_results.page", key=key),
        "json_url": url_for("study_results.document", key=key),
        "csv_url": url_for("study_results.export", key=key),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "plan": _plan(request.args), "plan_url": url_for("study_results.plan", key=key),
        "lifecycle_actions": _actions(row.status),
    }
    from web.results import _formatters

    context.update(_formatters())
    fragment = bool(request.htmx) and not request.htmx.history_restore_request  # type: ignore[attr-defined]
    template = "results/_results.html" if fragment else "studies/results.html"
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _actions(status: str) -> list[str]:
    """The lifecycle buttons a study in ``status`` offers (the experiments' moves and pages)."""
    from abtest.registry import TRANSITIONS
    from web.experiments import ACTION_FOR_STATUS

    return [ACTION_FOR_STATUS[s] for s in TRANSITIONS.get(status, ())]


PLAN_DEFAULTS = {"p": 0.31, "target": 0.85, "n": 5, "rate": 0.8, "margin": 0.15}


def _plan(args: Any) -> dict[str, Any]:
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
    answers: dict[str, Any] = {}
    for out, compute in (("chance", lambda: planning.discovery_chance(values["p"], values["n"])),
                         ("needed", lambda: planning.participants_for_discovery(values["p"], values["target"])),
                         ("for_margin", lambda: planning.participants_for_margin(values["rate"], values["margin"]))):
        try:
            answers[out] = compute()
        except ValidationError as exc:
            errors.setdefault(exc.field or out, exc.message)
    if "n" not in errors and not 0 <= values["n"] <= 1000:
        errors["n"] = "From 0 to 1000 participants."
        answers.pop("chance", None)
    return {"values": values, "answers": answers, "errors": errors}


@study_results.get("/experiments/<key>/study-results/plan")
@login_required
def plan(key: str):  # type: ignore[no-untyped-def]
    """The planner's answers (htmx fragment; the form also works without script via the page)."""
    with Session(get_engine()) as db:
        core.get_study(db, key)
    response = make_response(render_template("studies/_planner.html", plan=_plan(request.args)))
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@study_results.get("/experiments/<key>/study-results.json")
@login_required
def document(key: str):  # type: ignore[no-untyped-def]
    from abtest.study_analysis import analyze_study

    response = jsonify(analyze_study(get_engine(), key).to_dict())
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@study_results.get("/experiments/<key>/study-results.csv")
@login_required
def export(key: str) -> Response:
    """Every timing and response of the study, one row per event (answers separated by ';')."""
    with Session(get_engine()) as db:
        row, _study = core.get_study(db, key)
        rows = db.connection().execute(core.study_events(db, row)).all()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["participant", "design", "type", "task", "success", "duration_ms", "questionnaire",
                     "answers", "ts"])
    for unit, variant, type_, task, success, duration, questionnaire, answers, ts in rows:
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
