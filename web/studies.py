"""Usability studies on the web: the participant runner (``/s/<study>``, no login). Designers read
a study's results on the one results page (:mod:`web.results`, :mod:`web.study_results`).

The runner keeps no state of its own: the participant id lives in the Flask session, and where
they are (step, phase, task start time) lives in ``study_participants``, so a reload or a new
tab resumes at the same place. Each POST names the step it answers; :mod:`abtest.studies`
refuses it unless that is still the participant's current step, so nothing is recorded twice.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, abort, jsonify, make_response, redirect, render_template, request, session, url_for
from sqlmodel import Session

from abtest.attributes import device_of
from abtest.errors import AbtestError, BadRequest, Conflict, ValidationError
from abtest.questionnaires import QUESTIONNAIRES
from abtest.storable import text_problem
from abtest.studies import runner as core
from abtest.studies.definition import StudyDef
from web.extensions import csrf, get_engine

studies = Blueprint("studies", __name__, url_prefix="/s")

_SESSION_KEY = "study_participants"


def _pid(key: str) -> str | None:
    return (session.get(_SESSION_KEY) or {}).get(key)


def _remember(key: str, pid: str) -> None:
    known = dict(session.get(_SESSION_KEY) or {})
    known[key] = pid
    session[_SESSION_KEY] = known
    session.permanent = True


def _message(study: StudyDef | None, title: str, message: str, status: int, key: str | None = None) -> Any:
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
        participant = core.join(get_engine(), key, pid, attributes={"device": device_of(
            request.headers.get("User-Agent", ""), request.headers.get("Sec-CH-UA-Mobile"))})
    except ValidationError as exc:
        return _message(None, "Invalid link", f"The participant id is not valid: {exc.message}.", 400)
    _remember(key, participant.pid)
    return redirect(url_for("studies.step", key=key))


def _participant(key: str) -> tuple[Any, StudyDef, Any] | None:
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
            return render_template("studies/questions.html", questionnaire=QUESTIONNAIRES["SEQ"],
                                   **context), status
        return render_template("studies/task.html", **context), status
    if current.kind == "questionnaire":
        return render_template("studies/questions.html", questionnaire=QUESTIONNAIRES[current.item],
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
        if (problem := text_problem(body[name])) is not None:  # a lone surrogate cannot reach the database
            return _json_error(BadRequest(f"{name} {problem}", field=name))
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
