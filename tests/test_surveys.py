"""Surveys (issue 17): definitions, what the snippet may send, the config it reads, and results
that count each visitor once, per variant of the linked experiment, on SQLite, PostgreSQL and with
the events in ClickHouse (chdb)."""

from __future__ import annotations

import re
from datetime import timedelta
import tomllib
import uuid
from pathlib import Path

import pytest

from abtest import pipeline
from abtest.accounts import create_token
from abtest.checks import InvalidDefinition
from abtest.errors import Conflict
from abtest.kinds import KINDS, load_toml, parse_definition, to_toml
from abtest.surveys.definition import page_matches, parse_survey
from tests.conftest import BACKENDS_WITH_CHDB, backend_engine
from tests.test_api import now_iso

LINKED = {
    "kind": "survey", "key": "checkout-csat", "name": "Checkout satisfaction", "status": "running",
    "experiment": "checkout-button", "pages": ["/checkout*"], "share": 1.0, "delay": 2,
    "questions": [{"key": "csat", "type": "CSAT"}, {"key": "nps", "type": "NPS"},
                  {"key": "why", "type": "text", "text": "Why?"}],
}


@pytest.fixture(params=BACKENDS_WITH_CHDB)
def engine(request):  # type: ignore[no-untyped-def]
    """Every stored survey test also runs with the events in ClickHouse (chdb): the same numbers."""
    yield from backend_engine(request)


def errors_of(raw: dict) -> dict[str, str]:  # type: ignore[type-arg]
    with pytest.raises(InvalidDefinition) as caught:
        parse_survey(raw)
    return {e.field or "": e.message for e in caught.value.errors}


# ---- definitions ----------------------------------------------------------------------------------


def test_a_survey_defaults_to_the_questionnaires_wording_and_round_trips_through_toml():
    survey = parse_survey(LINKED)
    assert survey.question("csat").text == "Overall, how satisfied are you with your experience?"
    assert survey.question("nps").scale == (0, 10)
    assert (survey.show, survey.delay, survey.title) == ("delay", 2, "Quick question")
    assert parse_definition(tomllib.loads(to_toml(survey))) == survey


def test_every_bad_field_is_named():
    bad = {"kind": "survey", "key": "x-survey", "pages": ["checkout"], "show": "event", "share": 1.5, "delay": -1,
           "questions": [{"key": "a", "type": "CSAT", "choices": ["x", "y"]}, {"key": "a", "type": "choice",
                                                                              "text": "Pick", "choices": ["only"]},
                         {"key": "c", "type": "stars"}]}
    problems = errors_of(bad)
    assert set(problems) >= {"pages[0]", "event", "share", "delay", "questions[0].choices", "questions[1].key",
                             "questions[1].choices", "questions[2].type"}
    assert "abtest.track()" in problems["event"]
    assert set(errors_of({"kind": "survey", "key": "x-survey", "questions": []})) == {"questions"}
    assert set(errors_of({**LINKED, "questions": [{"key": f"q{i}", "type": "CES"} for i in range(4)]})) == {"questions"}


def test_page_globs_match_paths_on_any_host_and_ignore_the_query():
    survey = parse_survey({**LINKED, "pages": ["/checkout*", "https://shop.example/thanks"]})
    assert page_matches(survey, "https://shop.example/checkout/pay?step=2#top")
    assert page_matches(survey, "http://localhost:8000/checkout")
    assert page_matches(survey, "https://shop.example/thanks?order=7")
    assert not page_matches(survey, "https://shop.example/thanks/more")
    assert not page_matches(survey, "https://other.example/thanks")
    assert not page_matches(survey, "https://shop.example/cart?next=/checkout")
    assert page_matches(parse_survey({**LINKED, "pages": ["*"]}), "https://any.example/page?x")
    # Regular-expression characters in a glob stand for themselves.
    dotted = parse_survey({**LINKED, "pages": ["/a.b(1)"]})
    assert page_matches(dotted, "https://h/a.b(1)") and not page_matches(dotted, "https://h/aXb(1)")


def test_the_experiments_folder_survey_is_valid():
    survey = load_toml(Path(__file__).parents[1] / "experiments" / "checkout-csat.toml")
    assert (survey.kind, survey.experiment) == ("survey", "checkout-button")


def test_a_launched_survey_keeps_its_link_and_questions(session, seeded_experiment):
    survey = parse_survey(LINKED)
    pipeline.create(session, survey)
    session.commit()
    reworded = parse_survey({**LINKED, "questions": [{"key": "csat", "type": "CSAT", "text": "Happy?"},
                                                     *LINKED["questions"][1:]], "share": 0.5})
    pipeline.update(session, reworded)
    unlinked = {k: v for k, v in LINKED.items() if k != "experiment"}
    for changed, field in ((unlinked, "experiment"), ({**LINKED, "questions": LINKED["questions"][:2]}, "questions")):
        with pytest.raises(Conflict) as caught:
            pipeline.check_update(reworded, parse_survey(changed))
        assert caught.value.field == field


def test_linking_to_an_unknown_experiment_is_refused(session):
    with pytest.raises(Conflict) as caught:
        pipeline.create(session, parse_survey({**LINKED, "experiment": "no-such-test"}))
    assert caught.value.field == "experiment"


def test_the_share_asked_is_the_snippets_hash():
    survey = parse_survey({**LINKED, "share": 0.25})
    asked = [KINDS["survey"].assign(survey, f"visitor-{i}").in_experiment for i in range(4000)]
    assert 0.22 < sum(asked) / 4000 < 0.28
    assert KINDS["survey"].assign(parse_survey({**LINKED, "status": "draft"}), "v").reason == "not_running"


# ---- the public API: config and events --------------------------------------------------------------


@pytest.fixture
def public(session):  # type: ignore[no-untyped-def]
    token = create_token(session, "public", "site").secret
    session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def survey(session, seeded_experiment):  # type: ignore[no-untyped-def]
    definition = parse_survey(LINKED)
    pipeline.create(session, definition)
    session.commit()
    return definition


def ev(type_: str, unit: str, variant: str = "control", **fields):  # type: ignore[no-untyped-def]
    return {"id": str(uuid.uuid4()), "type": type_, "experiment": "checkout-csat", "unit": unit, "variant": variant,
            "ts": now_iso(), **fields}


def answer(unit: str, value, question: str = "csat", questionnaire: str = "CSAT", **fields):  # type: ignore[no-untyped-def]
    return ev("response", unit, task=question, questionnaire=questionnaire, answers=[value], **fields)


def test_the_config_gives_the_snippet_each_running_survey(client, public, survey):
    body = client.get("/api/v1/config", headers=public).get_json()
    [entry] = body["surveys"]
    assert entry["key"] == "checkout-csat" and entry["experiment"] == "checkout-button"
    assert (entry["show"], entry["delay"], entry["share"], entry["quiet_days"]) == ("delay", 2, 1.0, 14)
    assert entry["questions"][0] == {"key": "csat", "type": "CSAT", "text": survey.questions[0].text, "low": 1,
                                     "high": 5, "low_label": "Very dissatisfied", "high_label": "Very satisfied"}
    assert re.match(entry["match"], "https://shop.example/checkout?x=1")
    assert [e["key"] for e in body["experiments"]] == ["checkout-button"]  # a survey is no experiment to assign


def test_answers_that_do_not_fit_the_survey_are_refused_by_field(client, public, survey, session):
    good = [ev("survey", "u1", event="shown"), answer("u1", 4), answer("u1", 9, "nps", "NPS"),
            answer("u1", "Too slow", "why", "text"), ev("survey", "u2", "green", event="dismissed")]
    bad = [answer("u3", 6), answer("u3", 3.5), answer("u3", "4"), answer("u3", 4, "nope"),
           answer("u3", 4, "csat", "NPS"), answer("u3", "  ", "why", "text"), ev("survey", "u3", event="opened"),
           ev("exposure", "u3"), ev("survey", "u3", "blue", event="shown"),
           ev("response", "u3", task="csat", questionnaire="CSAT", answers=[4, 5])]
    body = client.post("/api/v1/events", headers=public, json={"events": good + bad}).get_json()
    assert body["accepted"] == len(good)
    fields = [r["error"]["field"] for r in body["rejected"]]
    assert fields == ["answers[0]", "answers[0]", "answers[0]", "task", "questionnaire", "answers[0]", "event",
                      "type", "variant", "answers"]
    assert "from 1 to 5" in body["rejected"][0]["error"]["message"]
    # Survey events belong to surveys only.
    wrong = {**ev("survey", "u4", event="shown"), "experiment": "checkout-button"}
    refused = client.post("/api/v1/events", headers=public, json={"events": [wrong]}).get_json()
    assert refused["rejected"][0]["error"]["field"] == "type"


def test_results_count_each_visitor_once_per_variant(client, public, survey, engine):
    events = []
    for i, (variant, value) in enumerate([("control", 5), ("control", 2), ("control", 4), ("green", 5), ("green", 4),
                                          ("green", 4), ("green", 1)]):
        unit = f"v{i}"
        events += [ev("survey", unit, variant, event="shown"), answer(unit, value, variant=variant)]
    events.append(answer("v0", 1))  # a second answer from the same visitor: not counted
    events += [ev("survey", "v9", "control", event="shown"), ev("survey", "v9", "control", event="dismissed"),
               ev("survey", "v10", "green", event="shown"), ev("survey", "v11", "green", event="dismissed")]
    events.append(answer("v1", "Could be faster", "why", "text"))
    assert client.post("/api/v1/events", headers=public, json={"events": events}).get_json()["accepted"] == len(events)
    report = pipeline.analyze(engine, "checkout-csat")
    assert report.units == {"control": 4, "green": 6}  # shown (a dismissal without a shown event counts)
    responses = {r["variant"]: r for r in report.details.to_dict()["responses"]}
    assert (responses["control"]["answered"], responses["control"]["dismissed"]) == (3, 1)
    assert (responses["green"]["answered"], responses["green"]["dismissed"]) == (4, 1)
    metrics = {m.name: m for m in report.metrics}
    csat = {v.variant: v for v in metrics["csat"].variants}
    assert (csat["control"].n, csat["control"].value) == (3, pytest.approx(2 / 3))  # 5, 2, 4: v0's later 1 ignored
    assert (csat["green"].n, csat["green"].value) == (4, pytest.approx(3 / 4))
    assert metrics["csat"].primary and not metrics["response-rate"].primary
    assert metrics["csat"].comparisons[0].effect == pytest.approx(3 / 4 - 2 / 3)
    [why] = [q for q in report.details.questions if q["key"] == "why"]
    assert why["answers"] == {"control": ["Could be faster"], "green": []}
    [dist] = [q for q in report.details.questions if q["key"] == "csat"]
    assert dist["counts"] == {"control": [0, 1, 0, 1, 1], "green": [1, 0, 0, 2, 1]}
    document = report.to_dict()
    assert document["kind"] == "survey" and document["linked_experiment"] == "checkout-button"
    assert document["response_check"]["method"].startswith("Pearson chi-square")


def test_the_same_batch_twice_is_counted_once(client, public, survey, engine):
    batch = [ev("survey", "u1", event="shown"), answer("u1", 5)]
    first = client.post("/api/v1/events", headers=public, json={"events": batch}).get_json()
    again = client.post("/api/v1/events", headers=public, json={"events": batch}).get_json()
    assert (first["accepted"], again["accepted"], again["duplicates"]) == (2, 0, 2)
    assert pipeline.analyze(engine, "checkout-csat").units == {"control": 1, "green": 0}


def test_an_unlinked_survey_counts_everyone_as_all(client, public, session, engine):
    unlinked = {k: v for k, v in LINKED.items() if k != "experiment"}
    pipeline.create(session, parse_survey({**unlinked, "key": "site-nps", "questions": [{"key": "nps", "type": "NPS"}]}))
    session.commit()
    events = [{**ev("survey", f"u{i}", "all", event="shown"), "experiment": "site-nps"} for i in range(5)]
    events += [{**answer(f"u{i}", v, "nps", "NPS", variant="all"), "experiment": "site-nps"}
               for i, v in enumerate((10, 9, 8, 3))]
    assert client.post("/api/v1/events", headers=public, json={"events": events}).get_json()["accepted"] == 9
    report = pipeline.analyze(engine, "site-nps")
    [nps] = [m for m in report.metrics if m.name == "nps"]
    assert nps.variants[0].value == pytest.approx(100 * (2 - 1) / 4) and not nps.comparisons
    assert report.details.response_check["reason"].startswith("not linked")
    assert report.verdict.startswith("4 of 5 visitors asked answered")


def test_forgetting_a_visitor_erases_their_answers(client, public, survey, engine):
    from abtest.store.erasure import forget

    events = [ev("survey", "gone", event="shown"), answer("gone", 2), answer("gone", "my email is x@y", "why", "text"),
              ev("survey", "kept", event="shown"), answer("kept", 5)]
    assert client.post("/api/v1/events", headers=public, json={"events": events}).get_json()["accepted"] == 5
    forget(engine, "gone")
    report = pipeline.analyze(engine, "checkout-csat")
    assert report.units == {"control": 1, "green": 0}
    assert all(not texts for q in report.details.questions for texts in q.get("answers", {}).values())


def test_a_visitor_is_counted_once_in_the_variant_of_their_first_survey_event(client, public, survey, engine):
    """A page that sends another variant later (or a hand-made client) cannot count anyone twice."""
    events = [{**ev("survey", "turncoat", "control", event="shown"), "ts": now_iso(timedelta(seconds=-60))},
              {**answer("turncoat", 5, variant="control"), "ts": now_iso(timedelta(seconds=-50))},
              ev("survey", "turncoat", "green", event="shown"), answer("turncoat", 1, variant="green"),
              answer("turncoat", 2, "nps", "NPS", variant="green")]
    assert client.post("/api/v1/events", headers=public, json={"events": events}).get_json()["accepted"] == 5
    report = pipeline.analyze(engine, "checkout-csat")
    assert report.units == {"control": 1, "green": 0}
    [csat] = [q for q in report.details.questions if q["key"] == "csat"]
    assert csat["counts"] == {"control": [0, 0, 0, 0, 1], "green": [0, 0, 0, 0, 0]}  # the first answer, once
    [nps] = [q for q in report.details.questions if q["key"] == "nps"]
    assert sum(nps["counts"]["control"]) == 1 and sum(nps["counts"]["green"]) == 0


def test_survey_events_need_a_variant(client, public, survey):
    body = client.post("/api/v1/events", headers=public,
                       json={"events": [{k: v for k, v in answer("u1", 4).items() if k != "variant"}]}).get_json()
    assert (body["accepted"], body["rejected"][0]["error"]["field"]) == (0, "variant")


def test_answers_all_alike_keep_their_value_without_an_interval(client, public, survey, engine):
    events = [answer(f"p{i}", 10, "nps", "NPS", variant="green") for i in range(3)]
    assert client.post("/api/v1/events", headers=public, json={"events": events}).get_json()["accepted"] == 3
    [nps] = [m for m in pipeline.analyze(engine, "checkout-csat").metrics if m.name == "nps"]
    green = next(v for v in nps.variants if v.variant == "green")
    assert (green.n, green.value, green.ci) == (3, 100.0, None) and "same group" in green.reason


def test_globs_stay_out_of_the_query_string_and_are_few():
    survey = parse_survey({**LINKED, "pages": ["/*/thanks", "/shop*done"]})
    assert page_matches(survey, "https://h/orders/thanks") and page_matches(survey, "https://h/shop/all/done?x")
    assert not page_matches(survey, "https://h/search?q=a/thanks")
    assert not page_matches(survey, "https://h/shop?next=done")
    assert "at most 3 *" in errors_of({**LINKED, "pages": ["/*a*a*a*a"]})["pages[0]"]
