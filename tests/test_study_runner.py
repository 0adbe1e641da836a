"""The participant runner end to end with the Flask test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
import sqlalchemy as sa

from abtest.models import Event, StudyParticipant, utcnow
from abtest.studies.tokens import bound_participant, issue_reach_token
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
    # The consent link again (a bookmark, a second tab) sends the participant back to their step.
    again = client.get(f"{URL}?pid=p-1")
    assert again.status_code == 302 and again.location.endswith("/s/checkout-study/step")
    assert _participant(engine, "p-1")["number"] == 1


# --- the runner is bound to the browser that consented ------------------------------------------


def _counts(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return (conn.execute(sa.select(sa.func.count()).select_from(Event.__table__)).scalar_one(),
                conn.execute(sa.select(sa.func.count()).select_from(StudyParticipant.__table__)).scalar_one())


def test_consent_sets_a_signed_httponly_per_study_cookie(client, study):
    page = client.get(f"{URL}?pid=p-1")
    assert "A cookie in this browser remembers that" in page.get_data(as_text=True)  # said before consent
    joined = client.post(URL, data={"csrf_token": csrf(page.get_data(as_text=True)), "pid": "p-1"})
    [header] = [h for h in joined.headers.getlist("Set-Cookie") if h.startswith("abtest_participant=")]
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")[1:]}
    assert attributes["path"] == "Path=/s/checkout-study"
    assert "httponly" in attributes and attributes["samesite"] == "SameSite=Lax"
    assert attributes["max-age"] == f"Max-Age={30 * 24 * 3600}"
    value = header.split(";")[0].split("=", 1)[1]
    with client.application.app_context():  # signed with the app's key: it names p-1 in this study
        assert bound_participant(client.application.secret_key, value, "checkout-study", utcnow()) == "p-1"


def test_the_same_participant_id_in_another_browser_is_refused(client, engine, study, app):
    token = _join(client)
    html = _page(client)
    client.post(f"{URL}/task/start", data={"csrf_token": token, "step": step_number(html)})
    before = _counts(engine)
    # Someone who read "p-1" off a link, in their own browser: the consent page says no ...
    other = app.test_client()
    page = other.get(f"{URL}?pid=p-1")
    assert page.status_code == 403
    assert "Already taking part in another browser" in page.get_data(as_text=True)
    # ... and posting the consent form with that id anyway stores nothing and binds nothing.
    posted = other.post(URL, data={"csrf_token": csrf(other.get(URL).get_data(as_text=True)), "pid": "p-1"})
    assert posted.status_code == 403 and "already in use in another browser" in posted.get_data(as_text=True)
    assert not [h for h in posted.headers.getlist("Set-Cookie") if h.startswith("abtest_participant=")]
    assert other.get(f"{URL}/step").location.endswith(URL)  # still not a participant
    assert _counts(engine) == before
    assert _participant(engine, "p-1")["phase"] == "running"  # untouched
    assert "I'm done" in _page(client)  # the participant's own browser carries on


def _steps_refused(browser, token, html):  # type: ignore[no-untyped-def]
    """Every runner step answers 403 with a page for this browser."""
    step = step_number(html)
    answers = [browser.get(f"{URL}/step"), browser.get(f"{URL}/thanks"), browser.get(f"{URL}/progress?step={step}"),
               browser.post(f"{URL}/task/start", data={"csrf_token": token, "step": step}),
               browser.post(f"{URL}/task/end", data={"csrf_token": token, "step": step, "outcome": "done"}),
               browser.post(f"{URL}/answer", data={"csrf_token": token, "step": step, "SEQ-1": "5"}),
               browser.post(f"{URL}/leave", data={"csrf_token": token})]
    for response in answers:
        assert response.status_code == 403, (response.request.path, response.status_code)
        assert "Cannot continue in this browser" in response.get_data(as_text=True)


def _stolen_cookie_value(client):  # type: ignore[no-untyped-def]
    return client.get_cookie("abtest_participant", path="/s/checkout-study").value


@pytest.mark.parametrize("forge", [
    lambda value: value[:-3] + ("xyz" if not value.endswith("xyz") else "abc"),  # signature altered
    lambda value: "eyJzIjoiY2hlY2tvdXQtc3R1ZHkiLCJwIjoicC0xIiwiZSI6OTk5OTk5OTk5OX0.forged",  # made up
    lambda value: "p-1",  # the bare participant id
])
def test_steps_with_a_forged_cookie_are_refused_and_store_nothing(client, engine, study, forge):
    token = _join(client)
    html = _page(client)
    before = _counts(engine)
    client.set_cookie("abtest_participant", forge(_stolen_cookie_value(client)), path="/s/checkout-study")
    _steps_refused(client, token, html)
    assert _counts(engine) == before
    assert (_participant(engine, "p-1")["step"], _participant(engine, "p-1")["phase"]) == (0, "ready")


def test_a_cookie_of_another_study_is_refused(client, app, engine, session):
    store_study(session)
    store_study(session, key="other-study")
    token = _join(client)
    html = _page(client)
    elsewhere = app.test_client()  # a participant of other-study, with a genuine cookie for it
    elsewhere.post("/s/other-study", data={"csrf_token": csrf(elsewhere.get("/s/other-study").get_data(as_text=True))})
    foreign = elsewhere.get_cookie("abtest_participant", path="/s/other-study").value
    assert "Start task" in elsewhere.get("/s/other-study/step").get_data(as_text=True)
    before = _counts(engine)
    # Moved onto checkout-study's path, the other study's cookie opens nothing there ...
    mover = app.test_client()
    mover.get(URL)
    mover.set_cookie("abtest_participant", foreign, path="/s/checkout-study")
    _steps_refused(mover, csrf(mover.get(URL).get_data(as_text=True)), html)
    # ... and checkout-study's cookie opens nothing in other-study.
    mover.set_cookie("abtest_participant", _stolen_cookie_value(client), path="/s/other-study")
    assert mover.get("/s/other-study/step").status_code == 403
    assert _counts(engine) == before
    assert token


def test_steps_without_the_cookie_are_refused(client, app, engine, study):
    token = _join(client)
    html = _page(client)
    before = _counts(engine)
    stranger = app.test_client()
    for path, form in [("task/start", {}), ("task/end", {"outcome": "done"}), ("answer", {"SEQ-1": "5"}),
                       ("leave", {})]:
        response = stranger.post(f"{URL}/{path}", data={"csrf_token": token, "step": step_number(html), **form})
        assert response.status_code in (400, 403), path  # 400: no CSRF session either
    # With a CSRF token of its own (it loaded the consent page) but no participant cookie: 403.
    own = csrf(stranger.get(URL).get_data(as_text=True))
    refused = stranger.post(f"{URL}/task/start", data={"csrf_token": own, "step": step_number(html)})
    assert refused.status_code == 403 and "Start from the study link" in refused.get_data(as_text=True)
    assert _counts(engine) == before and _participant(engine, "p-1")["phase"] == "ready"


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


def _reach(client, token, url="https://shop.example/confirmation.html?order=1", key="checkout-study"):  # type: ignore[no-untyped-def]
    # What the snippet sends: JSON as text/plain (no preflight), no cookies, no CSRF token.
    return client.post(f"/s/{key}/reached", data=json.dumps({"token": token, "url": url}),
                       headers={"Content-Type": "text/plain", "Origin": "http://127.0.0.1:9"})


def _start(client, token):  # type: ignore[no-untyped-def]
    html = _page(client)
    assert client.post(f"{URL}/task/start", data={"csrf_token": token, "step": step_number(html)}).status_code == 302
    return _page(client)


def _link_token(html):  # type: ignore[no-untyped-def]
    """The reach token on the design link of the task page."""
    match = re.search(r'id="task-link"', html) and re.search(r'abtest_token=([^"&]+)', html)
    assert match, "no reach token on the design link"
    return unquote(match.group(1))


def _mint(app, engine, step, task, pid="p-1", now=None, key="checkout-study"):  # type: ignore[no-untyped-def]
    """A genuine token as the runner would sign it (for attempts the page does not show)."""
    row_id = _participant(engine, pid)["id"]
    return issue_reach_token(app.secret_key, key, row_id, step, task, now or utcnow())


def test_reaching_the_success_url_ends_the_task(client, engine, session):
    store_study(session, tasks=REACH_TASKS)
    token = _join(client)
    html = _start(client, token)
    # The design link marks the study visit and carries a signed token, not the participant id.
    assert re.search(r'href="https://example.com/[ab]\?abtest_study=checkout-study&amp;abtest_token=[^"]+"', html)
    assert "p-1" not in html.split('id="task-link"')[0].rsplit("<a ", 1)[1]
    assert "Checking…" in html and 'hx-trigger="every 2s"' in html and "htmx-2.0.11.min.js" in html
    step = step_number(html)
    assert client.get(f"{URL}/progress?step={step}").status_code == 204
    reach = _link_token(html)

    miss = _reach(client, reach, url="https://shop.example/cart.html")
    assert miss.status_code == 200 and miss.get_json() == {"ended": False}
    assert _events(engine, type="task") == []

    hit = _reach(client, reach)
    assert hit.status_code == 200 and hit.get_json() == {"ended": True}
    assert hit.headers["Access-Control-Allow-Origin"] in ("*", "http://127.0.0.1:9")
    [event] = _events(engine, type="task")
    assert (event["task"], event["success"], event["unit"]) == ("buy", True, "p-1")
    assert 0 <= event["duration_ms"] < 60_000
    assert _participant(engine, "p-1")["phase"] == "seq"

    # The token is spent: a second report (a reload, or someone replaying it) is refused.
    before = _counts(engine)
    again = _reach(client, reach)
    assert again.status_code == 403 and again.get_json()["error"]["field"] == "token"
    assert "spent" in again.get_json()["error"]["message"]
    assert _counts(engine) == before

    # The runner moves on by itself: the poll redirects, the page asks the SEQ.
    moved = client.get(f"{URL}/progress?step={step}", headers={"HX-Request": "true"})
    assert moved.status_code == 200 and moved.headers["HX-Redirect"].endswith("/s/checkout-study/step")
    assert "Overall, how difficult or easy was the task to complete?" in _page(client)


def test_a_spent_token_cannot_end_a_later_task(client, app, engine, session):
    tasks = [REACH_TASKS[0], {**REACH_TASKS[0], "key": "pay", "prompt": "Pay"}]
    store_study(session, tasks=tasks, questionnaires=[], comment=False)
    token = _join(client)
    first = _link_token(_start(client, token))
    assert _reach(client, first).get_json() == {"ended": True}
    html = _page(client)
    client.post(f"{URL}/answer", data={"csrf_token": token, "step": step_number(html), "SEQ-1": "5"})
    second = _link_token(_start(client, token))
    assert second != first
    before = _counts(engine)
    assert _reach(client, first).status_code == 403  # the same success page, the old token
    assert _counts(engine) == before and _participant(engine, "p-1")["phase"] == "running"
    assert _reach(client, second).get_json() == {"ended": True}


def test_reached_before_start_or_for_a_later_task_is_a_no_op(client, app, engine, session):
    store_study(session, tasks=REACH_TASKS)
    token = _join(client)
    html = _page(client)
    assert "abtest_token" not in html  # no design link (and no token) before Start task
    assert _reach(client, _mint(app, engine, 0, "buy")).get_json() == {"ended": False}  # not started yet
    _start(client, token)
    assert _reach(client, _mint(app, engine, 1, "address")).get_json() == {"ended": False}  # not its turn
    assert _events(engine, type="task") == []
    assert _participant(engine, "p-1")["phase"] == "running"


def test_self_reported_task_ignores_reached_urls(client, app, engine, session):
    store_study(session)  # no success_url anywhere
    token = _join(client)
    html = _start(client, token)
    assert "Checking…" not in html and "htmx" not in html
    assert "abtest_study=checkout-study" in html and "abtest_token" not in html  # nothing for a page to end
    assert _reach(client, _mint(app, engine, 0, "buy")).get_json() == {"ended": False}
    assert _events(engine, type="task") == []


def test_reached_after_im_done_is_refused(client, engine, session):
    store_study(session, tasks=REACH_TASKS)
    token = _join(client)
    html = _start(client, token)
    reach = _link_token(html)
    assert client.post(f"{URL}/task/end", data={"csrf_token": token, "step": step_number(html),
                                                "outcome": "done"}).status_code == 302
    refused = _reach(client, reach)
    assert refused.status_code == 403 and refused.get_json()["error"]["field"] == "token"
    assert len(_events(engine, type="task")) == 1


def test_forged_expired_and_foreign_tokens_are_refused_and_store_nothing(client, app, engine, session):
    store_study(session, tasks=REACH_TASKS)
    store_study(session, key="other-study", tasks=REACH_TASKS)
    token = _join(client)
    reach = _link_token(_start(client, token))
    row_id = _participant(engine, "p-1")["id"]
    now = utcnow()
    before = _counts(engine)
    forged = [
        None,  # the old body: a participant id and a task, no token
        "",
        reach[:-4] + ("AAAA" if not reach.endswith("AAAA") else "BBBB"),  # signature altered
        issue_reach_token("a guessed secret", "checkout-study", row_id, 0, "buy", now),
        issue_reach_token(app.secret_key, "checkout-study", row_id, 0, "buy", now - timedelta(hours=1),
                          timedelta(minutes=10)),  # expired
        issue_reach_token(app.secret_key, "other-study", row_id, 0, "buy", now),  # another study's
        issue_reach_token(app.secret_key, "checkout-study", row_id + 1000, 0, "buy", now),  # nobody
        client.get_cookie("abtest_participant", path="/s/checkout-study").value,  # the cookie's value
    ]
    for value in forged:
        body = {"pid": "p-1", "task": "buy", "url": "https://shop.example/confirmation.html"}
        if value is not None:
            body = {"token": value, "url": body["url"]}
        refused = client.post(f"{URL}/reached", data=json.dumps(body), headers={"Content-Type": "text/plain"})
        assert refused.status_code == 403, value
        assert refused.get_json()["error"]["field"] == "token" and refused.get_json()["error"]["code"] == "forbidden"
    # checkout-study's own token posted to other-study is refused there too.
    assert _reach(client, reach, key="other-study").status_code == 403
    assert _counts(engine) == before and _participant(engine, "p-1")["phase"] == "running"
    assert _reach(client, reach).get_json() == {"ended": True}  # the genuine one still works


def test_reached_refuses_unknown_and_bad_input_as_json(client, engine, session):
    store_study(session, tasks=REACH_TASKS)
    token = _join(client)
    reach = _link_token(_start(client, token))
    unknown_study = _reach(client, reach, key="no-such-study")
    assert unknown_study.status_code == 404 and unknown_study.get_json()["error"]["field"] == "study"
    bad = client.post(f"{URL}/reached", data="{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "body"
    missing = client.post(f"{URL}/reached", json={"token": reach})
    assert missing.status_code == 400 and missing.get_json()["error"]["field"] == "url"
    wrong_type = client.post(f"{URL}/reached", json={"token": reach, "url": 3})
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
    assert with_params("/local", abtest_token="a b") == "/local?abtest_token=a+b"


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
