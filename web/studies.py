"""Studies on the web: the participant runner (``/s/<study>``, no login). Designers read a study's
results on the one results page (:mod:`web.results`, :mod:`web.study_results`).

A usability study's task opens the tested website; a tree test's task is answered here, node by
node (``/tree/open``, ``/tree/choose``), and a first-click test's by one click on a picture of a
screen (``/click``), all with plain forms (POST, then redirect to the step).

The runner keeps no state of its own: the participant id lives in a signed per-study cookie set
at consent (:mod:`web.study_access`), and where they are (step, phase, task start time) lives in
``study_participants``, so a reload or a new tab of that browser resumes at the same place;
another browser with the same participant id is refused. Each POST names the step it answers;
:mod:`abtest.studies` refuses it unless that is still the participant's current step, so nothing
is recorded twice.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, abort, jsonify, make_response, redirect, render_template, request, url_for
from sqlmodel import Session

from abtest.attributes import device_of
from abtest.errors import AbtestError, BadRequest, Conflict, Forbidden, ValidationError
from abtest.questionnaires import QUESTIONNAIRES
from abtest.storable import text_problem
from abtest.studies import ia_runner
from abtest.studies import runner as core
from abtest.studies.definition import StudyDef
from abtest.studies.ia import Screen
from web import study_access as access
from web.extensions import csrf, get_engine
from web.study_images import image_url

studies = Blueprint("studies", __name__, url_prefix="/s")


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
        bound = access.bound_pid(key, strict=False)
        if bound and core.get_participant(db, row, bound) is not None:
            return redirect(url_for("studies.step", key=key))
        if row.status != "running":
            return _message(study, "This study is closed", "This study is not taking participants at the moment. "
                            "Thank you for your interest.", 410 if row.status in ("stopped", "archived") else 403)
        pid = request.args.get("pid", "")
        if pid:
            try:
                core.check_pid(pid)
            except ValidationError as exc:
                return _message(study, "Invalid link", f"The participant id in this link is not valid: {exc.message}.",
                                400)
            if core.get_participant(db, row, pid) is not None:  # enrolled, and not from this browser
                access.refuse(*access.TAKEN, study=study)
    designs = 1 if not study.within_subjects else len(study.variants)
    return render_template("studies/consent.html", study=study, pid=pid, designs=designs)


@studies.post("/<key>")
def join(key: str):  # type: ignore[no-untyped-def]
    bound = access.bound_pid(key, strict=False)
    pid = request.form.get("pid") or bound or None
    try:
        participant = core.join(get_engine(), key, pid, may_resume=pid is not None and pid == bound,
                                attributes={"device": device_of(request.headers.get("User-Agent", ""),
                                                                request.headers.get("Sec-CH-UA-Mobile"))})
    except core.ParticipantTaken:
        access.refuse(*access.TAKEN)
    except ValidationError as exc:
        return _message(None, "Invalid link", f"The participant id is not valid: {exc.message}.", 400)
    return access.bind(redirect(url_for("studies.step", key=key)), key, participant.pid)


def _participant(key: str) -> tuple[Any, StudyDef, Any] | None:
    """This browser's participant (None without a cookie or if they are gone; 403 for a bad cookie)."""
    pid = access.bound_pid(key)
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
        context.update(task=task, task_number=[t.key for t in study.tasks].index(task.key) + 1)
        if participant.phase == "seq":
            return render_template("studies/questions.html", questionnaire=QUESTIONNAIRES["SEQ"],
                                   **context), status
        if study.method == "tree-test":
            return render_template("studies/tree_task.html", **context, **_tree_context(study, participant,
                                                                                       current)), status
        if study.method == "first-click":
            screen = task.screen_for(current.design)
            return render_template("studies/click_task.html", screen=screen,
                                   image=image_url(screen.image) if screen else None, **context), status
        context.update(url=_design_link(study, participant, current))
        return render_template("studies/task.html", **context), status
    if current.kind == "questionnaire":
        return render_template("studies/questions.html", questionnaire=QUESTIONNAIRES[current.item],
                               **context), status
    return render_template("studies/comment.html", max_comment=core.MAX_COMMENT, **context), status


def _design_link(study: StudyDef, participant: Any, current: core.Step) -> str:
    """Where the task opens: the design, marked as a study visit (so its A/B tests leave the
    participant out) and, when reaching a page can end the task, with this attempt's reach token
    (the participant id itself never goes to the tested site)."""
    task = study.task(current.item)
    params = {"abtest_study": study.key}
    if task.success_url is not None and participant.phase == "running":
        params["abtest_token"] = access.reach_token(study.key, participant.id, current.number, task.key,
                                                    task.time_limit)
    return with_params(task.start_url or study.url_of(current.design), **params)


def _conflict(key: str, exc: Conflict):  # type: ignore[no-untyped-def]
    return _message(None, "Already recorded", f"{exc.message[:1].upper()}{exc.message[1:]}.", 409, key=key)


@studies.post("/<key>/task/start")
def start_task(key: str):  # type: ignore[no-untyped-def]
    pid = access.required_pid(key)
    try:
        core.start_task(get_engine(), key, pid, _step_number())
    except core.StepConflict as exc:
        return _conflict(key, exc)
    return redirect(url_for("studies.step", key=key))


@studies.post("/<key>/task/end")
def end_task(key: str):  # type: ignore[no-untyped-def]
    pid = access.required_pid(key)
    outcome = request.form.get("outcome")
    if outcome not in ("done", "gave-up"):
        abort(400, description="choose “I'm done” or “I gave up”")
    try:
        core.end_task(get_engine(), key, pid, _step_number(), gave_up=outcome == "gave-up")
    except core.StepConflict as exc:
        return _conflict(key, exc)
    return redirect(url_for("studies.step", key=key))


# --- tree tests and first-click tests (issue 19) --------------------------------------------------


def _tree_context(study: StudyDef, participant: Any, current: core.Step) -> dict[str, Any]:
    """What a tree-test page draws: where the participant is (the breadcrumb), what they can open
    from there, and the trail length the page was drawn with, which every form sends back so the
    core can refuse a click from an older page. Which nodes are right is never passed on."""
    tree = study.tree_of(current.design)
    here = ia_runner.current_node(participant)
    return {"here": here, "crumbs": [tree.labels[n] for n in tree.ancestors(here)],
            "options": [(n, tree.labels[n]) for n in tree.children[here]],
            "parent": tree.parents[here] if here > 0 else None, "seen": len(participant.trail or [])}


def _numbers(*names: str) -> list[int] | None:
    """Whole-number form fields (None if one is missing or not a number: a broken or foreign form)."""
    try:
        return [int(request.form.get(name, "")) for name in names]
    except ValueError:
        return None


def _not_possible(key: str, exc: ValidationError):  # type: ignore[no-untyped-def]
    return _message(None, "Not possible", f"{exc.message[:1].upper()}{exc.message[1:]}.", 400, key=key)


def _recorded(key: str, record: Any):  # type: ignore[no-untyped-def]
    """Run one tree-test or first-click step, then show what comes next: 409 when it was already
    recorded (a replay, another tab), 400 when it is not possible from here."""
    try:
        record()
    except core.StepConflict as exc:
        return _conflict(key, exc)
    except ValidationError as exc:
        return _not_possible(key, exc)
    return redirect(url_for("studies.step", key=key))


def _broken_form(key: str):  # type: ignore[no-untyped-def]
    return _not_possible(key, ValidationError("the form is incomplete; reload the page and try again"))


@studies.post("/<key>/tree/open")
def open_node(key: str):  # type: ignore[no-untyped-def]
    """A tree-test participant opens a node (one of the listed ones, or the parent: "Back")."""
    pid = access.required_pid(key)
    numbers = _numbers("step", "seen", "node")
    if numbers is None:
        return _broken_form(key)
    step_number, seen, node = numbers
    return _recorded(key, lambda: ia_runner.open_node(get_engine(), key, pid, step_number, seen, node))


@studies.post("/<key>/tree/choose")
def choose_node(key: str):  # type: ignore[no-untyped-def]
    """"I'd find it here" (the node the page was drawn at) or "Skip this task": ends the task.
    The form's ``node`` is not needed: ``seen`` already pins the page to one place in the trail."""
    pid = access.required_pid(key)
    outcome = request.form.get("outcome")
    numbers = _numbers("step", "seen")
    if numbers is None or outcome not in ("here", "skip"):
        return _broken_form(key)
    step_number, seen = numbers
    return _recorded(key, lambda: ia_runner.choose_node(get_engine(), key, pid, step_number, seen,
                                                        skip=outcome == "skip"))


def _image_point(screen: Screen, x: float, y: float, shown: str) -> tuple[float, float]:
    """A click in the image's own pixels. The browser sends it in CSS pixels of the picture as
    drawn (``click.x``/``click.y`` of the image button); ia-first-click.js sends how wide it was
    drawn, and without script the page draws it at its own size. The aspect ratio is kept, so one
    ratio serves both axes."""
    scale = 1.0
    if shown.strip():
        try:
            width = float(shown)
        except ValueError:
            width = math.nan
        if not math.isfinite(width) or not 0 < width <= 100_000:
            raise ValidationError("the width the picture was shown at is not a positive number", field="shown_width")
        scale = screen.width / width
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValidationError("the click has no position on the picture", field="click")
    # The browser rounds to whole CSS pixels, so a click on the last one may land just past the edge.
    return _edge(x * scale, screen.width, scale), _edge(y * scale, screen.height, scale)


def _edge(value: float, size: int, slack: float) -> float:
    if -slack <= value < 0:
        return 0.0
    if size < value <= size + slack:
        return float(size)
    return value  # further out: the core refuses it


@studies.post("/<key>/click")
def first_click(key: str):  # type: ignore[no-untyped-def]
    """A first-click participant's click on the task's screen: ends the task."""
    pid = access.required_pid(key)
    step_number = _step_number()
    try:
        x, y = float(request.form["click.x"]), float(request.form["click.y"])
    except (KeyError, ValueError):
        return _not_possible(key, ValidationError("click on the picture of the screen", field="click"))
    with Session(get_engine()) as db:
        _row, study, participant = core.load_participant(db, key, pid)
    path = core.steps(study, participant.designs)
    if study.method != "first-click" or not 0 <= step_number < len(path) or path[step_number].kind != "task":
        return _conflict(key, core.StepConflict("this click belongs to no task of this study; continue from where "
                                                "you are", field="step"))
    current = path[step_number]  # a step's design never changes, so its screen can be read outside the write
    screen = study.task(current.item).screen_for(current.design)
    assert screen is not None
    shown = request.form.get("shown_width", "")
    return _recorded(key, lambda: ia_runner.first_click(get_engine(), key, pid, step_number,
                                                        *_image_point(screen, x, y, shown)))


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
    any origin). Body: JSON ``{"token", "url"}`` (sent as text/plain to skip the CORS preflight),
    the token being the one the design link carried. Answers ``{"ended": true}`` when that ended
    the running task as a success; 403 for a token that is forged, expired, another study's or
    spent (its task has ended), and then nothing is stored."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return _json_error(BadRequest("the body must be a JSON object with token and url", field="body"))
    if not isinstance(body.get("url"), str) or not body["url"] or len(body["url"]) > 4000:
        return _json_error(BadRequest("url must be a non-empty string", field="url"))
    if (problem := text_problem(body["url"])) is not None:  # a lone surrogate cannot reach the database
        return _json_error(BadRequest(f"url {problem}", field="url"))
    # Who is reporting: only a token the runner signed says so (a participant id alone does not).
    token = body.get("token")
    if not isinstance(token, str) or not token or len(token) > 4000 or text_problem(token) is not None:
        return _json_error(Forbidden("the report carries no study token", field="token"))
    try:
        with Session(get_engine()) as db:
            core.get_study(db, key)  # an unknown study is 404 whatever the token
        ended = core.reached(get_engine(), key, access.read_reach_token(key, token), body["url"])
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
    pid = access.required_pid(key)
    try:
        core.answer(get_engine(), key, pid, _step_number(), request.form)
    except core.StepConflict as exc:
        return _conflict(key, exc)
    except core.AnswerErrors as exc:
        return step(key, errors=exc.errors, values=request.form.to_dict(), status=422)
    return redirect(url_for("studies.step", key=key))


@studies.post("/<key>/leave")
def leave(key: str):  # type: ignore[no-untyped-def]
    pid = access.required_pid(key)
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
