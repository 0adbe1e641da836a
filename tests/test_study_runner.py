"""The participant runner end to end with the Flask test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from abtest.models import Event, StudyParticipant
from tests.study_helpers import csrf, step_number, store_study

URL = "/s/checkout-study"


@pytest.fixture
def study(session):  # type: ignore[no-untyped-def]
    return store_study(session)


def _events(engine, **where):  # type: ignore[no-untyped-def]
    table = Event.__table__
    query = sa.select(table).where(*(table.c[k] == v for k, v in where.items())).order_by(table.c.id)
    with engine.connect() as conn:
        return conn.execute(query).mappings().all()


def _participant(engine, pid):  # type: ignore[no-untyped-def]
    table = StudyParticipant.__table__
    with engine.connect() as conn:
        return conn.execute(sa.select(table).where(table.c.pid == pid)).mappings().one()


def _join(client, pid="p-1"):  # type: ignore[no-untyped-def]
    page = client.get(f"{URL}?pid={pid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "What we record" in html and "We record task times and answers." in html
    token = csrf(html)
    joined = client.post(URL, data={"csrf_token": token, "pid": pid})
    assert joined.status_code == 302 and joined.location.endswith("/s/checkout-study/step")
    return token


def _page(client):  # type: ignore[no-untyped-def]
    response = client.get(f"{URL}/step")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def _do_task(client, token, outcome="done", seq="6"):  # type: ignore[no-untyped-def]
    html = _page(client)
    assert "Start task" in html
    assert client.post(f"{URL}/task/start", data={"csrf_token": token, "step": step_number(html)}).status_code == 302
    html = _page(client)
    assert "I'm done" in html and "I gave up" in html and "https://example.com/" in html
    assert client.post(f"{URL}/task/end", data={"csrf_token": token, "step": step_number(html),
                                                "outcome": outcome}).status_code == 302
    html = _page(client)
    assert "Overall, how difficult or easy was the task to complete?" in html
    assert "Very difficult" in html and "Very easy" in html
    assert client.post(f"{URL}/answer", data={"csrf_token": token, "step": step_number(html),
                                              "SEQ-1": seq}).status_code == 302


SUS = {f"SUS-{i}": str(a) for i, a in enumerate([4, 2, 5, 1, 4, 2, 4, 2, 5, 1], start=1)}


def test_participant_completes_the_study(client, engine, study):
    token = _join(client)
    _do_task(client, token, "done", "6")
    _do_task(client, token, "gave-up", "2")
    html = _page(client)
    assert "I think that I would like to use this system frequently." in html
    assert "Strongly disagree" in html and "Strongly agree" in html
    assert client.post(f"{URL}/answer", data={"csrf_token": token, "step": step_number(html), **SUS}).status_code == 302
    html = _page(client)
    assert 'name="comment"' in html
    done = client.post(f"{URL}/answer", data={"csrf_token": token, "step": step_number(html), "comment": "Nice shop"})
    assert done.status_code == 302
    assert client.get(f"{URL}/step").location.endswith("/thanks")
    thanks = client.get(f"{URL}/thanks").get_data(as_text=True)
    assert "Thank you" in thanks and "CODE-42" in thanks

    participant = _participant(engine, "p-1")
    assert participant["finished_at"] is not None and participant["abandoned_at"] is None
    design = participant["designs"][0]
    tasks = _events(engine, type="task")
    assert [(e["task"], e["success"], e["variant"], e["unit"]) for e in tasks] == [
        ("buy", True, design, "p-1"), ("address", False, design, "p-1")]
    assert all(0 <= e["duration_ms"] < 60_000 for e in tasks)
    responses = _events(engine, type="response")
    assert [(e["questionnaire"], e["task"], e["answers"]) for e in responses] == [
        ("SEQ", "buy", [6]), ("SEQ", "address", [2]), ("SUS", None, [4, 2, 5, 1, 4, 2, 4, 2, 5, 1]),
        ("comment", None, ["Nice shop"])]
    assert len(_events(engine, type="exposure")) == 1
    # The consent page of a finished participant sends them on, not into a second run.
    assert client.get(URL).status_code == 302


def test_reload_resumes_where_the_participant_was(client, engine, study, app):
    token = _join(client)
    html = _page(client)
    client.post(f"{URL}/task/start", data={"csrf_token": token, "step": step_number(html)})
    assert "I'm done" in _page(client)  # a reload shows the running task, not a fresh start
    # A new browser with the same panel id resumes too (progress is server-side).
    other = app.test_client()
    token2 = _join(other, "p-1")
    assert "I'm done" in _page(other)
    assert token2
    assert _participant(engine, "p-1")["number"] == 1


def test_double_submit_is_refused_and_stores_nothing_twice(client, engine, study):
    token = _join(client)
    html = _page(client)
    client.post(f"{URL}/task/start", data={"csrf_token": token, "step": step_number(html)})
    html = _page(client)
    form = {"csrf_token": token, "step": step_number(html), "outcome": "done"}
    assert client.post(f"{URL}/task/end", data=form).status_code == 302
    again = client.post(f"{URL}/task/end", data=form)
    assert again.status_code == 409
    assert "already" in again.get_data(as_text=True)
    assert len(_events(engine, type="task")) == 1
    html = _page(client)
    seq = {"csrf_token": token, "step": step_number(html), "SEQ-1": "5"}
    assert client.post(f"{URL}/answer", data=seq).status_code == 302
    assert client.post(f"{URL}/answer", data=seq).status_code == 409
    assert len(_events(engine, type="response")) == 1


@pytest.mark.parametrize("answers, message", [
    ({**SUS, "SUS-3": "6"}, "Choose a whole number from 1 to 5."),
    ({k: v for k, v in SUS.items() if k != "SUS-10"}, "Please choose an answer."),
    ({**SUS, "SUS-1": "abc"}, "Choose a whole number from 1 to 5."),
])
def test_out_of_scale_or_missing_answers_store_nothing(client, engine, study, answers, message):
    token = _join(client)
    _do_task(client, token)
    _do_task(client, token)
    html = _page(client)
    step = step_number(html)
    refused = client.post(f"{URL}/answer", data={"csrf_token": token, "step": step, **answers})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert message in body and 'aria-invalid="true"' in body
    assert 'value="4" required checked' in body  # the other answers are kept on the page
    assert [e["questionnaire"] for e in _events(engine, type="response")] == ["SEQ", "SEQ"]
    assert str(_participant(engine, "p-1")["step"]) == step


def test_seq_out_of_scale_is_refused(client, engine, study):
    token = _join(client)
    html = _page(client)
    client.post(f"{URL}/task/start", data={"csrf_token": token, "step": step_number(html)})
    html = _page(client)
    client.post(f"{URL}/task/end", data={"csrf_token": token, "step": step_number(html), "outcome": "done"})
    html = _page(client)
    refused = client.post(f"{URL}/answer", data={"csrf_token": token, "step": step_number(html), "SEQ-1": "8"})
    assert refused.status_code == 422 and "from 1 to 7" in refused.get_data(as_text=True)
    assert _events(engine, type="response") == []


def test_time_limit_exceeded_is_a_failure(client, engine, study):
    token = _join(client)
    html = _page(client)
    client.post(f"{URL}/task/start", data={"csrf_token": token, "step": step_number(html)})
    table = StudyParticipant.__table__
    with engine.begin() as conn:  # the participant started 10 minutes ago; the limit is 5
        started = conn.execute(sa.select(table.c.task_started_at)).scalar_one()
        conn.execute(table.update().values(task_started_at=started - timedelta(minutes=10)))
    html = _page(client)
    client.post(f"{URL}/task/end", data={"csrf_token": token, "step": step_number(html), "outcome": "done"})
    [event] = _events(engine, type="task")
    assert event["success"] is False and event["duration_ms"] >= 600_000


def test_leaving_keeps_what_was_finished(client, engine, study):
    token = _join(client)
    _do_task(client, token)
    assert client.post(f"{URL}/leave", data={"csrf_token": token}).status_code == 302
    assert "You left this study" in _page(client)
    participant = _participant(engine, "p-1")
    assert participant["abandoned_at"] is not None and participant["finished_at"] is None
    assert len(_events(engine, type="task")) == 1


def test_unknown_study_and_plain_experiments_are_404(client, seeded_experiment):
    assert client.get("/s/no-such-study").status_code == 404
    assert client.get("/s/checkout-button").status_code == 404
    assert client.get("/s/no-such-study/step").status_code == 404


def test_closed_study_and_bad_pid(client, session):
    store_study(session, status="draft")
    assert client.get(URL).status_code == 403
    session.expire_all()


def test_bad_participant_id_is_refused(client, study):
    assert client.get(f"{URL}?pid=%3Cscript%3E").status_code == 400


def test_steps_without_joining_go_to_consent(client, study):
    assert client.get(f"{URL}/step").location.endswith(URL)
    assert client.get(f"{URL}/thanks").location.endswith(URL)


def test_within_subjects_shows_every_design(client, engine, session):
    store_study(session, within_subjects=True, questionnaires=[], comment=False)
    token = _join(client)
    for _ in range(4):
        _do_task(client, token)
    assert client.get(f"{URL}/step").location.endswith("/thanks")
    assert {e["variant"] for e in _events(engine, type="task")} == {"current", "new"}
    assert _participant(engine, "p-1")["designs"] == ["current", "new"]


# --- success by reaching a URL (reported by abtest-study.js on the tested site) ------------------

REACH_TASKS = [{"key": "buy", "prompt": "Buy the shoes", "success_url": "*/confirmation.html*", "time_limit": 300},
               {"key": "address", "prompt": "Change the address"}]


def _reach(client, pid="p-1", task="buy", url="https://shop.example/confirmation.html?order=1", key="checkout-study"):  # type: ignore[no-untyped-def]
    # What the snippet sends: JSON as text/plain (no preflight), no cookies, no CSRF token.
    return client.post(f"/s/{key}/reached", data=json.dumps({"pid": pid, "task": task, "url": url}),
                       headers={"Content-Type": "text/plain", "Origin": "http://127.0.0.1:9"})


def _start(client, token):  # type: ignore[no-untyped-def]
    html = _page(client)
    assert client.post(f"{URL}/task/start", data={"csrf_token": token, "step": step_number(html)}).status_code == 302
    return _page(client)


def test_reaching_the_success_url_ends_the_task(client, engine, session):
    store_study(session, tasks=REACH_TASKS)
    token = _join(client)
    html = _start(client, token)
    # The design link carries the study, participant and task; the page polls for progress.
    assert "https://example.com/a?abtest_study=checkout-study&amp;abtest_pid=p-1&amp;abtest_task=buy" in html \
        or "https://example.com/b?abtest_study=checkout-study&amp;abtest_pid=p-1&amp;abtest_task=buy" in html
    assert "Checking…" in html and 'hx-trigger="every 2s"' in html and "htmx-2.0.11.min.js" in html
    step = step_number(html)
    assert client.get(f"{URL}/progress?step={step}").status_code == 204

    miss = _reach(client, url="https://shop.example/cart.html")
    assert miss.status_code == 200 and miss.get_json() == {"ended": False}
    assert _events(engine, type="task") == []

    hit = _reach(client)
    assert hit.status_code == 200 and hit.get_json() == {"ended": True}
    assert hit.headers["Access-Control-Allow-Origin"] in ("*", "http://127.0.0.1:9")
    [event] = _events(engine, type="task")
    assert (event["task"], event["success"], event["unit"]) == ("buy", True, "p-1")
    assert 0 <= event["duration_ms"] < 60_000
    assert _participant(engine, "p-1")["phase"] == "seq"

    # A second report (another page load, a reload) changes nothing.
    again = _reach(client)
    assert again.status_code == 200 and again.get_json() == {"ended": False}
    assert len(_events(engine, type="task")) == 1

    # The runner moves on by itself: the poll redirects, the page asks the SEQ.
    moved = client.get(f"{URL}/progress?step={step}", headers={"HX-Request": "true"})
    assert moved.status_code == 200 and moved.headers["HX-Redirect"].endswith("/s/checkout-study/step")
    assert "Overall, how difficult or easy was the task to complete?" in _page(client)


def test_reached_before_start_or_for_another_task_is_a_no_op(client, engine, session):
    store_study(session, tasks=REACH_TASKS)
    token = _join(client)
    assert _reach(client).get_json() == {"ended": False}  # not started yet
    _start(client, token)
    assert _reach(client, task="address").get_json() == {"ended": False}  # not the running task
    assert _events(engine, type="task") == []
    assert _participant(engine, "p-1")["phase"] == "running"


def test_self_reported_task_ignores_reached_urls(client, engine, session):
    store_study(session)  # no success_url anywhere
    token = _join(client)
    html = _start(client, token)
    assert "Checking…" not in html and "htmx" not in html
    assert _reach(client).get_json() == {"ended": False}
    assert _events(engine, type="task") == []


def test_reached_after_im_done_is_a_no_op(client, engine, session):
    store_study(session, tasks=REACH_TASKS)
    token = _join(client)
    html = _start(client, token)
    assert client.post(f"{URL}/task/end", data={"csrf_token": token, "step": step_number(html),
                                                "outcome": "done"}).status_code == 302
    assert _reach(client).get_json() == {"ended": False}
    assert len(_events(engine, type="task")) == 1


def test_reached_refuses_unknown_and_bad_input_as_json(client, engine, session):
    store_study(session, tasks=REACH_TASKS)
    _join(client)
    unknown_pid = _reach(client, pid="nobody")
    assert unknown_pid.status_code == 404 and unknown_pid.get_json()["error"]["field"] == "pid"
    unknown_study = _reach(client, key="no-such-study")
    assert unknown_study.status_code == 404 and unknown_study.get_json()["error"]["field"] == "study"
    bad = client.post(f"{URL}/reached", data="{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "body"
    missing = client.post(f"{URL}/reached", json={"pid": "p-1", "task": "buy"})
    assert missing.status_code == 400 and missing.get_json()["error"]["field"] == "url"
    wrong_type = client.post(f"{URL}/reached", json={"pid": "p-1", "task": "buy", "url": 3})
    assert wrong_type.status_code == 400 and wrong_type.get_json()["error"]["field"] == "url"
    preflight = client.options(f"{URL}/reached", headers={
        "Origin": "http://127.0.0.1:9", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.headers.get("Access-Control-Allow-Origin") in ("*", "http://127.0.0.1:9")
    assert _events(engine, type="task") == []


def test_design_link_keeps_its_query():
    from web.studies import with_params

    assert with_params("https://x.test/p?a=1&abtest_task=old#top", abtest_study="s", abtest_task="t") == \
        "https://x.test/p?a=1&abtest_study=s&abtest_task=t#top"
    assert with_params("/local", abtest_pid="p 1") == "/local?abtest_pid=p+1"


# --- the "how many participants" planner on the study results page ------------------------------


def test_planner_on_the_study_results_page(logged_in, session):
    store_study(session)
    page = logged_in.get("/experiments/checkout-study/results").get_data(as_text=True)
    assert "How many participants?" in page and 'hx-get="/experiments/checkout-study/planner"' in page
    # Defaults: Nielsen & Landauer's p = 31 %, five participants.
    assert "<strong>84.4 %</strong>" in page and "<strong>6</strong> participants" in page

    fragment = logged_in.get("/experiments/checkout-study/planner?p=31&n=5&target=84&rate=50&margin=20",
                             headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and html.lstrip().startswith('<div id="plan-result"')
    assert "<strong>5</strong> participants" in html and "<strong>21</strong>" in html

    bad = logged_in.get("/experiments/checkout-study/planner?p=abc&margin=0").get_data(as_text=True)
    assert "p: Enter a number." in bad and "margin:" in bad and 'role="alert"' in bad
    # Without script, the form's GET lands on the page itself with the same answers.
    again = logged_in.get("/experiments/checkout-study/results?p=31&n=5&target=84").get_data(as_text=True)
    assert "<strong>5</strong> participants" in again
    assert logged_in.get("/experiments/nope-nope/planner").status_code == 404


def test_planner_needs_a_login(client, session):
    store_study(session)
    response = client.get("/experiments/checkout-study/planner")
    assert response.status_code in (302, 401) and "login" in (response.location or "")
