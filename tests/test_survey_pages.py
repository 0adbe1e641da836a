"""The survey pages: a designer defines a survey in the form (errors beside their fields, the same
validator as `abtest sync`), reads its results, finds its answers on the linked experiment's
results page, and gets the install help (Flask test client, CSRF on, both databases)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from abtest import pipeline
from abtest.accounts import create_token
from abtest.surveys.definition import SurveyDef, parse_survey
from tests.test_experiment_pages import assert_error_beside, experiment_keys, token
from tests.test_surveys import LINKED, answer, ev

VALID: dict[str, Any] = {
    "key": "cart-nps", "name": "Cart NPS", "hypothesis": "", "experiment": "checkout-button",
    "pages": "/cart*\nhttps://shop.example/thanks", "show": "event", "delay": "0", "event": "purchase", "share": "0.5",
    "title": "One question",
    "questions-0-type": "NPS", "questions-0-key": "nps", "questions-0-text": "", "questions-0-choices": "",
    "questions-1-type": "choice", "questions-1-key": "plan", "questions-1-text": "Which plan?",
    "questions-1-choices": "Free\nPro\n\nTeam", "questions-2-type": "", "questions-2-key": "",
    "questions-2-text": "", "questions-2-choices": "",
}


def send(client, url: str, data: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.post(url, data={**data, "csrf_token": token(client, "/surveys/new")})


def stored(engine, key: str) -> SurveyDef:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return pipeline.load(session, key)[1]


def test_survey_pages_need_a_login(client, engine):
    assert client.get("/surveys/new").status_code == 302
    assert client.post("/surveys/new", data=VALID).status_code in (302, 400)
    assert experiment_keys(engine) == []


def test_a_designer_creates_a_survey_in_the_form(logged_in, engine, seeded_experiment):
    listing = logged_in.get("/experiments/").get_data(as_text=True)
    assert 'href="/surveys/new"' in listing
    response = send(logged_in, "/surveys/new", VALID)
    assert response.status_code == 302 and response.headers["Location"].endswith("/experiments/cart-nps/results")
    survey = stored(engine, "cart-nps")
    assert (survey.status, survey.experiment, survey.show, survey.event, survey.share) == (
        "draft", "checkout-button", "event", "purchase", 0.5)
    assert survey.pages == ("/cart*", "https://shop.example/thanks")
    assert [(q.key, q.type, q.choices) for q in survey.questions] == [("nps", "NPS", ()),
                                                                     ("plan", "choice", ("Free", "Pro", "Team"))]
    edit = logged_in.get("/surveys/cart-nps/edit").get_data(as_text=True)
    assert 'value="purchase"' in edit and "Pro\nTeam</textarea>" in edit


def test_errors_come_back_beside_their_fields(logged_in, engine, seeded_experiment):
    bad = {**VALID, "key": "Bad Key", "share": "2", "event": "", "questions-1-choices": "Only one",
           "questions-0-key": ""}
    response = send(logged_in, "/surveys/new", bad)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert_error_beside(page, "key", "is not allowed", "key")
    assert_error_beside(page, "share", "at most 1", "share")
    assert_error_beside(page, "event", "is required", "event")
    assert_error_beside(page, "questions-1-choices", "2 to 10 options", "questions-1-choices")
    assert_error_beside(page, "questions-0-key", "is required", "questions-0-key")
    assert 'value="Bad Key"' in page  # the form comes back as typed
    assert experiment_keys(engine) == ["checkout-button"]


def test_a_launched_survey_keeps_its_questions_in_the_form(logged_in, engine, session, seeded_experiment):
    pipeline.create(session, parse_survey(LINKED))
    session.commit()
    form = {"name": "Checkout satisfaction", "hypothesis": "", "experiment": "checkout-button", "pages": "/checkout*",
            "show": "delay", "delay": "2", "event": "", "share": "1", "title": "Quick question",
            "questions-0-type": "CSAT", "questions-0-key": "csat", "questions-0-text": "Happy with checkout?",
            "questions-0-choices": "", "questions-1-type": "", "questions-1-key": "", "questions-1-text": "",
            "questions-1-choices": "", "questions-2-type": "", "questions-2-key": "", "questions-2-text": "",
            "questions-2-choices": ""}
    response = send(logged_in, "/surveys/checkout-csat/edit", {**form, "editing": "checkout-csat"})
    assert response.status_code == 409
    assert "cannot be added, removed" in response.get_data(as_text=True)
    assert len(stored(engine, "checkout-csat").questions) == 3


def _answers(client, session) -> None:  # type: ignore[no-untyped-def]
    public = {"Authorization": f"Bearer {create_token(session, 'public', 'site').secret}"}
    session.commit()
    events = []
    for i, (variant, value) in enumerate([("control", 5), ("control", 2), ("green", 4), ("green", 5), ("green", 3)]):
        events += [ev("survey", f"u{i}", variant, event="shown"), answer(f"u{i}", value, variant=variant),
                   answer(f"u{i}", 9, "nps", "NPS", variant=variant)]
    events += [answer("u0", "<b>Make it faster</b>", "why", "text"), ev("survey", "u9", "green", event="dismissed")]
    assert client.post("/api/v1/events", headers=public, json={"events": events}).get_json()["accepted"] == len(events)


def test_survey_results_and_the_linked_experiment_page(logged_in, session, seeded_experiment):
    pipeline.create(session, parse_survey(LINKED))
    session.commit()
    _answers(logged_in, session)
    page = logged_in.get("/experiments/checkout-csat/results").get_data(as_text=True)
    assert "csat: CSAT (top-2-box)" in page and "Response rate (answered / shown)" in page
    assert 'id="responses-table"' in page and "Break down by" not in page
    assert "&lt;b&gt;Make it faster&lt;/b&gt;" in page  # visitors' text is escaped
    assert "<svg" in page and "Answers to csat (CSAT)" in page  # the answer distribution chart
    assert "Edit survey" in page and 'href="/surveys/checkout-csat/install"' in page
    experiment = logged_in.get("/experiments/checkout-button/results").get_data(as_text=True)
    assert 'id="survey-checkout-csat"' in experiment and 'id="checkout-csat-metric-csat"' in experiment
    assert 'id="checkout-csat-responses-table"' in experiment
    document = logged_in.get("/experiments/checkout-csat/results.json").get_json()
    assert [r["shown"] for r in document["responses"]] == [2, 4]
    install = logged_in.get("/surveys/checkout-csat/install").get_data(as_text=True)
    assert "abtest-survey.js" in install and "/static/abtest.js" in install


def test_typing_validates_with_errors_swapped_beside_the_fields(logged_in, seeded_experiment):
    response = logged_in.post("/surveys/validate", headers={"HX-Request": "true"},
                              data={**VALID, "share": "0", "csrf_token": token(logged_in, "/surveys/new")})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in page
    assert 'id="share-error" class="field-error" hx-swap-oob="true"' in page and "must be above 0" in page


def test_choice_options_with_dollar_signs_are_drawn_as_words():
    from web.answers_chart import answers_chart

    svg = answers_chart({"key": "budget", "type": "choice", "labels": ["$10 to $50", "$x^$"],
                         "counts": {"all": [3, 1]}})
    assert svg is not None and "$10 to $50 75%" in svg  # the words for screen readers, and no TeX error
