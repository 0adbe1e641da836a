"""The study form: a designer defines and edits a usability study in the browser; the same
validator as `abtest sync` judges it, errors sit beside their fields, launch/stop and the TOML
file work as for experiments (Flask test client, CSRF on, both databases)."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
from sqlmodel import Session

from abtest import pipeline
from abtest.checks import InvalidDefinition
from abtest.studies.definition import parse_study
from abtest.studies.runner import get_study
from tests.study_helpers import store_study, study_raw
from tests.test_experiment_pages import HTMX, assert_error_beside, error_beside, experiment_keys, form_fields, token

VALID: dict[str, Any] = {
    "key": "signup-study", "name": "Sign-up flow", "hypothesis": "The short form is easier",
    "designs-0-key": "long", "designs-0-name": "Long form", "designs-0-url": "https://example.com/signup",
    "designs-0-weight": "",
    "designs-1-key": "short", "designs-1-name": "", "designs-1-url": "/signup-v2", "designs-1-weight": "",
    "tasks-0-key": "sign-up", "tasks-0-prompt": "Create an account with your work e-mail.",
    "tasks-0-start_url": "https://example.com/", "tasks-0-success": "url", "tasks-0-success_url": "*/welcome",
    "tasks-0-time_limit": "240",
    "tasks-1-key": "find-plan", "tasks-1-prompt": "Find the price of the team plan.", "tasks-1-start_url": "",
    "tasks-1-success": "self-report", "tasks-1-success_url": "", "tasks-1-time_limit": "",
    "questionnaires": ["SUS", "NPS"], "comment": "true", "completion_code": "SGN-1", "consent": "We time tasks.",
}


def send(client, url: str, data: dict[str, Any], headers: dict[str, str] | None = None, csrf: bool = True):  # type: ignore[no-untyped-def]
    body = dict(data)
    if csrf:
        body["csrf_token"] = token(client, "/studies/new")
    return client.post(url, data=body, headers=headers or {})


def stored(engine, key: str):  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return get_study(session, key)[1]


def test_study_pages_need_a_login(client, engine):
    assert client.get("/studies/new").status_code == 302
    store_study_in(engine)
    assert client.get("/studies/checkout-study/edit").status_code == 302
    refused = client.post("/studies/new", data={k: v for k, v in VALID.items()})
    assert refused.status_code in (302, 400) and experiment_keys(engine) == ["checkout-study"]


def store_study_in(engine, **changes: Any):  # type: ignore[no-untyped-def]
    with Session(engine, expire_on_commit=False) as session:
        return store_study(session, **changes)


def test_new_study_is_reachable_from_the_experiments_list(logged_in):
    listing = logged_in.get("/experiments/").get_data(as_text=True)
    assert 'href="/studies/new"' in listing
    page = logged_in.get("/studies/new").get_data(as_text=True)
    assert 'name="csrf_token"' in page
    for label in ('for="designs-1-url"', 'for="tasks-0-prompt"', 'for="tasks-0-time_limit"', 'for="within_subjects"',
                  'id="questionnaire-UMUX-Lite"', 'for="consent"', 'for="completion_code"'):
        assert label in page, label


def test_a_valid_study_is_stored_as_a_draft_through_the_studies_code(logged_in, engine):
    response = send(logged_in, "/studies/new", VALID)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/experiments/signup-study/results")
    study = stored(engine, "signup-study")
    expected = parse_study({
        "kind": "study", "key": "signup-study", "name": "Sign-up flow", "hypothesis": "The short form is easier",
        "questionnaires": ["SUS", "NPS"], "comment": True, "completion_code": "SGN-1", "consent": "We time tasks.",
        "designs": [{"key": "long", "name": "Long form", "url": "https://example.com/signup"},
                    {"key": "short", "url": "/signup-v2"}],
        "tasks": [{"key": "sign-up", "prompt": "Create an account with your work e-mail.",
                   "start_url": "https://example.com/", "success_url": "*/welcome", "time_limit": 240},
                  {"key": "find-plan", "prompt": "Find the price of the team plan.", "success": "self-report"}]})
    assert study == expected
    assert study.status == "draft" and study.weights == (0.5, 0.5)
    results = logged_in.get("/experiments/signup-study/results").get_data(as_text=True)
    assert "Created the study" in results and "/studies/signup-study/edit" in results


# (changes to the valid form) → [(error slot, text of the message, input marked invalid)]
INVALID: dict[str, tuple[dict[str, Any], list[tuple[str, str, str | None]]]] = {
    "bad design url": ({"designs-1-url": "signup-v2"}, [("designs-1-url", "must be an http(s):// URL", "designs-1-url")]),
    "missing design url": ({"designs-1-url": ""}, [("designs-1-url", "is required", "designs-1-url")]),
    "duplicate design key": ({"designs-1-key": "long"}, [("designs-1-key", "duplicate design key", "designs-1-key")]),
    "weights not summing to 1": ({"designs-0-weight": "0.7", "designs-1-weight": "0.7"},
                                 [("designs", "they must sum to 1", None)]),
    "one weight only": ({"designs-0-weight": "0.5"}, [("designs", "give every design a weight, or none", None)]),
    "empty prompt": ({"tasks-1-prompt": "  "}, [("tasks-1-prompt", "is required", "tasks-1-prompt")]),
    "time limit not a number": ({"tasks-0-time_limit": "four minutes"},
                                [("tasks-0-time_limit", "whole seconds", "tasks-0-time_limit")]),
    "url success without a pattern": ({"tasks-0-success_url": ""},
                                      [("tasks-0-success_url", "must not be empty", "tasks-0-success_url")]),
    "self-report and a url": ({"tasks-1-success_url": "*/done"},
                              [("tasks-1-success_url", "not both", "tasks-1-success_url")]),
    "bad key": ({"key": "Sign Up"}, [("key", "lowercase letters, digits and dashes", "key")]),
    "NUL in a prompt": ({"tasks-0-prompt": "Sign\x00up"}, [("tasks-0-prompt", "NUL character", "tasks-0-prompt")]),
    "unknown questionnaire": ({"questionnaires": ["SUS", "CSAT"]}, [("questionnaires", "is not one of", None)]),
    "no tasks": ({f"tasks-{i}-{n}": "" for i in (0, 1) for n in ("key", "prompt", "start_url", "success_url",
                                                                  "time_limit")},
                 [("tasks", "needs 1 to", None)]),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_each_error_sits_beside_its_field_keeps_the_input_and_saves_nothing(logged_in, engine, case):
    changes, expected = INVALID[case]
    response = send(logged_in, "/studies/new", {**VALID, **changes})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "nothing was saved" in page
    for slot, text, input_id in expected:
        assert_error_beside(page, slot, text, input_id)
    assert error_beside(page, "name") == ""
    kept = form_fields(page)
    for name, value in changes.items():
        if isinstance(value, str):
            assert kept.get(name, "") == value, name
    assert experiment_keys(engine) == []


def test_the_form_reports_exactly_what_sync_reports_for_the_same_study(logged_in):
    """One validator: the messages beside the fields are the parser's own for the same table."""
    broken = study_raw(key="broken-study", designs=[{"key": "a", "url": "nope"}, {"key": "b", "url": "/b"}],
                       tasks=[{"key": "t", "prompt": "Do it", "time_limit": 0}])
    with pytest.raises(InvalidDefinition) as sync_errors:
        parse_study(broken)
    form = {"key": "broken-study", "name": broken["name"], "designs-0-key": "a", "designs-0-url": "nope",
            "designs-1-key": "b", "designs-1-url": "/b", "tasks-0-key": "t", "tasks-0-prompt": "Do it",
            "tasks-0-success": "self-report", "tasks-0-time_limit": "0", "questionnaires": ["SUS"],
            "comment": "true", "completion_code": "CODE-42", "consent": broken["consent"]}
    page = send(logged_in, "/studies/new", form).get_data(as_text=True)
    slots = {"designs[0].url": "designs-0-url", "tasks[0].time_limit": "tasks-0-time_limit"}
    assert {e.field for e in sync_errors.value.errors} == set(slots)
    for error in sync_errors.value.errors:
        assert error_beside(page, slots[error.field or ""]) == error.message


def test_missing_csrf_token_is_refused(logged_in, engine):
    response = send(logged_in, "/studies/new", VALID, csrf=False)
    assert response.status_code == 400 and experiment_keys(engine) == []


def test_a_used_key_is_refused_beside_the_key(logged_in, engine):
    store_study_in(engine)
    response = send(logged_in, "/studies/new", {**VALID, "key": "checkout-study"})
    assert response.status_code == 409
    assert_error_beside(response.get_data(as_text=True), "key", "already used", "key")


def test_live_validation_returns_error_slots_out_of_band_and_writes_nothing(logged_in, engine):
    response = send(logged_in, "/studies/validate", {**VALID, "tasks-0-time_limit": "-5"}, headers=HTMX)
    assert response.status_code == 200 and "Vary" in response.headers and "HX-Request" in response.headers["Vary"]
    page = response.get_data(as_text=True)
    assert "<html" not in page
    assert '<small id="tasks-0-time_limit-error" class="field-error" hx-swap-oob="true">whole seconds' in page
    assert experiment_keys(engine) == []


def test_row_buttons_add_and_remove_designs_and_tasks(logged_in):
    added = send(logged_in, "/studies/new", {**VALID, "action": "add-design"})
    assert added.status_code == 200 and 'id="designs-2-url"' in added.get_data(as_text=True)
    fragment = send(logged_in, "/studies/form/tasks", {**VALID, "action": "remove-task-0"}, headers=HTMX)
    page = fragment.get_data(as_text=True)
    assert page.lstrip().startswith('<fieldset id="tasks-fieldset"')
    assert 'value="find-plan"' in page and 'value="sign-up"' not in page
    assert send(logged_in, "/studies/form/nope", VALID, headers=HTMX).status_code == 404


def test_edit_round_trips_and_changes_a_draft(logged_in, engine):
    original = store_study_in(engine, status="draft", questionnaires=["SUS", "UMUX-Lite"])
    page = logged_in.get("/studies/checkout-study/edit").get_data(as_text=True)
    fields = form_fields(page)
    assert fields["designs-1-url"] == "https://example.com/b" and fields["tasks-0-time_limit"] == "300"
    assert 'id="questionnaire-UMUX-Lite" name="questionnaires" value="UMUX-Lite" checked' in page
    form = {k: v for k, v in fields.items() if k != "questionnaires"}
    form["questionnaires"] = ["SUS", "UMUX-Lite"]
    unchanged = send(logged_in, "/studies/checkout-study/edit", form)
    assert unchanged.status_code == 302 and stored(engine, "checkout-study") == original

    form.update({"tasks-2-key": "track", "tasks-2-prompt": "Track your order", "tasks-2-success": "self-report",
                 "within_subjects": "true"})
    assert send(logged_in, "/studies/checkout-study/edit", form).status_code == 302
    study = stored(engine, "checkout-study")
    assert [t.key for t in study.tasks] == ["buy", "address", "track"] and study.within_subjects


def test_a_running_studys_designs_and_tasks_cannot_change(logged_in, engine):
    store_study_in(engine)  # running
    fields = form_fields(logged_in.get("/studies/checkout-study/edit").get_data(as_text=True))
    fields["questionnaires"] = ["SUS"]
    added = send(logged_in, "/studies/checkout-study/edit", {**fields, "tasks-2-key": "track",
                                                              "tasks-2-prompt": "Track it", "tasks-2-success": "self-report"})
    assert added.status_code == 409
    assert_error_beside(added.get_data(as_text=True), "tasks", "cannot be added, removed or reordered")
    reweighted = send(logged_in, "/studies/checkout-study/edit", {**fields, "designs-0-weight": "0.4",
                                                                   "designs-1-weight": "0.6"})
    assert reweighted.status_code == 409
    assert_error_beside(reweighted.get_data(as_text=True), "designs", "cannot change")
    assert [t.key for t in stored(engine, "checkout-study").tasks] == ["buy", "address"]
    for change, slot in (({"tasks-0-time_limit": "5"}, "tasks-0-time_limit"),
                         ({"tasks-0-success": "url", "tasks-0-success_url": "*/done"}, "tasks-0-success_url")):
        rescored = send(logged_in, "/studies/checkout-study/edit", {**fields, **change})
        assert rescored.status_code == 409, change  # earlier participants were judged by the old rule
        assert_error_beside(rescored.get_data(as_text=True), slot, "cannot change")
    reworded = send(logged_in, "/studies/checkout-study/edit", {**fields, "tasks-0-prompt": "Buy the red shoes"})
    assert reworded.status_code == 302
    assert stored(engine, "checkout-study").tasks[0].prompt == "Buy the red shoes"


def test_launch_and_stop_a_study_like_an_experiment(logged_in, engine):
    store_study_in(engine, status="draft")
    results = logged_in.get("/experiments/checkout-study/results").get_data(as_text=True)
    assert "/experiments/checkout-study/launch" in results
    confirm = logged_in.get("/experiments/checkout-study/launch").get_data(as_text=True)
    assert "participant link" in confirm and "/s/checkout-study" in confirm
    launched = send(logged_in, "/experiments/checkout-study/launch", {})
    assert launched.status_code == 302 and launched.headers["Location"].endswith("/checkout-study/results")
    assert stored(engine, "checkout-study").status == "running"
    assert logged_in.get("/s/checkout-study").status_code == 200  # participants can now take part
    assert send(logged_in, "/experiments/checkout-study/stop", {}).status_code == 302
    assert stored(engine, "checkout-study").status == "stopped"
    assert send(logged_in, "/experiments/checkout-study/launch", {}).status_code == 409


def test_the_launch_page_says_what_stays_editable_as_the_update_rule_does(logged_in, engine):
    """The launch confirmation lists what freezes and what stays editable; the update rule a
    launched study is held to (pipeline.check_update) must agree with both lists."""
    from abtest.errors import Conflict

    store_study_in(engine, status="draft")
    confirm = logged_in.get("/experiments/checkout-study/launch").get_data(as_text=True)
    frozen = re.search(r'<li id="frozen-after-launch">(.*?)</li>', confirm, re.S).group(1)
    editable = re.search(r'<li id="editable-after-launch">(.*?)</li>', confirm, re.S).group(1)
    assert "time limit" in frozen and "success URL" in frozen and "time limit" not in editable
    assert "may still change" not in confirm

    running = parse_study(study_raw(status="running"))
    tasks, designs = study_raw()["tasks"], study_raw()["designs"]
    still_editable = {
        "name": {"name": "Renamed study"}, "hypothesis": {"hypothesis": "New words"},
        "design names": {"designs": [{**designs[0], "name": "Old shop"}, designs[1]]},
        "URLs": {"designs": [{**designs[0], "url": "https://example.com/moved"}, designs[1]]},
        "task prompts": {"tasks": [{**tasks[0], "prompt": "Buy the red shoes"}, tasks[1]]},
        "start URLs": {"tasks": [{**tasks[0], "start_url": "/shop"}, tasks[1]]},
        "consent text": {"consent": "We record times."}, "completion code": {"completion_code": "NEW-1"},
    }
    for words, change in still_editable.items():
        assert words in editable, words
        pipeline.check_update(running, parse_study(study_raw(status="running", **change)))  # accepted
    refused = {
        "time limit": {"tasks": [{**tasks[0], "time_limit": 600}, tasks[1]]},
        "success URL": {"tasks": [{**tasks[0], "success_url": "*/done"}, tasks[1]]},
        "order": {"tasks": [tasks[1], tasks[0]]},
        "questionnaires": {"questionnaires": ["SUS", "NPS"]},
        "closing comment": {"comment": False},
        "design mode": {"within_subjects": True},
        "split": {"designs": [{**designs[0], "weight": 0.4}, {**designs[1], "weight": 0.6}]},
    }
    for words, change in refused.items():
        assert words in frozen, words
        with pytest.raises(Conflict):
            pipeline.check_update(running, parse_study(study_raw(status="running", **change)))


def test_study_toml_download_round_trips_through_sync_parsing(logged_in, engine):
    original = store_study_in(engine, tasks=[{"key": "buy", "prompt": "Buy", "success_url": "*/thanks",
                                              "start_url": "/shop"}])
    response = logged_in.get("/experiments/checkout-study.toml")
    assert response.status_code == 200 and 'filename="checkout-study.toml"' in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert "[[designs]]" in text and "[[tasks]]" in text and 'kind = "study"' in text
    assert parse_study(tomllib.loads(text)) == original


def test_the_experiment_form_still_points_studies_to_their_own_form(logged_in, engine):
    store_study_in(engine)
    response = logged_in.get("/experiments/checkout-study/edit")
    assert response.status_code == 409 and "/studies/checkout-study/edit" in response.get_data(as_text=True)
    assert logged_in.get("/studies/checkout-study/edit").status_code == 200
    with Session(engine) as session:
        assert pipeline.load(session, "checkout-study")[1].kind == "study"


def test_editing_an_experiment_as_a_study_is_404(logged_in, seeded_experiment):
    assert logged_in.get("/studies/checkout-button/edit").status_code == 404
