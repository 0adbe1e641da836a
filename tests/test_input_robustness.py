"""No input answers 500 (issue 13): hostile or absurd values are refused by name, on SQLite and PostgreSQL.

Each test sends one family of input that used to raise somewhere below the validation layer
(an offset that overflows a date, NaN in JSON, half an emoji, a 400-digit integer, a CR/LF in a
redirect target, a nesting too deep for the TOML reader) and checks the answer names the field
and that what was good in the same request was kept.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from sqlmodel import select

from abtest.accounts import create_token
from abtest.errors import ValidationError
from abtest.models import Event, Experiment
from abtest.stats import planning
from abtest.stats.power import sample_size_proportions
from tests.conftest import CHECKOUT_TOML
from tests.study_helpers import store_study
from tests.test_api import exposure, now_iso, stored_events
from tests.test_experiment_pages import VALID_FORM, assert_error_beside, post

BIG = "1" + "0" * 400  # a legal JSON and TOML integer, beyond the float range


@pytest.fixture
def sk(session):  # type: ignore[no-untyped-def]
    secret = create_token(session, "secret", "robustness").secret
    session.commit()
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}


def send(client, path: str, text: str, headers):  # type: ignore[no-untyped-def]
    """Post JSON text as written: escapes like \\ud800 and NaN reach the server untouched."""
    return client.post(path, data=text.encode(), headers=headers)


def definition(**changes) -> dict:  # type: ignore[no-untyped-def]
    return {"key": "robust-one", "name": "Robust", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
            **changes}


def field_of(response) -> str | None:  # type: ignore[no-untyped-def]
    return response.get_json()["error"]["field"]


# ---- events: one bad event never costs the batch ------------------------------------------------------


@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_timestamp_that_overflows_in_utc_is_rejected_by_index(client, sk, session, seeded_experiment, ts):
    good = exposure("alice")
    response = send(client, "/api/v1/events", json.dumps({"events": [good, exposure("bob", ts=ts)]}), sk)
    assert response.status_code == 202
    body = response.get_json()
    assert body["accepted"] == 1
    assert [(r["index"], r["error"]["field"]) for r in body["rejected"]] == [(1, "ts")]
    assert [e.event_id for e in stored_events(session)] == [good["id"]]


@pytest.mark.parametrize("bad, field", [
    ('"answers": [NaN, 3]', "answers[0]"),
    ('"answers": [4, Infinity]', "answers[1]"),
    ('"answers": [-Infinity]', "answers[0]"),
    (f'"answers": [{BIG}]', "answers[0]"),
    ('"answers": [1e10]', "answers[0]"),
    ('"answers": ["' + "x" * 4001 + '"]', "answers[0]"),
    ('"answers": ["\\ud800"]', "answers[0]"),
])
def test_non_finite_or_unstorable_answers_are_rejected_by_field(client, sk, session, seeded_experiment, bad, field):
    response_event = json.dumps({"id": str(uuid.uuid4()), "type": "response", "experiment": "checkout-button",
                                 "unit": "bob", "questionnaire": "SUS", "answers": [], "ts": now_iso()})
    text = json.dumps({"events": [exposure("alice")]})[:-2] + ", " + response_event.replace('"answers": []', bad) + "]}"
    response = send(client, "/api/v1/events", text, sk)
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["accepted"] == 1
    assert [(r["index"], r["error"]["field"]) for r in body["rejected"]] == [(1, field)]
    assert [e.type for e in stored_events(session)] == ["exposure"]


def test_finite_answers_are_kept(client, sk, session, seeded_experiment):
    event = {"id": str(uuid.uuid4()), "type": "response", "experiment": "checkout-button", "unit": "bob",
             "questionnaire": "SUS", "answers": [1, 2.5, "fine"], "ts": now_iso()}
    response = send(client, "/api/v1/events", json.dumps({"events": [event]}), sk)
    assert response.get_json()["accepted"] == 1
    assert stored_events(session)[0].answers == [1, 2.5, "fine"]


def test_events_body_refuses_unknown_top_level_fields(client, sk, session, seeded_experiment):
    response = send(client, "/api/v1/events", json.dumps({"events": [exposure()], "extra": 1}), sk)
    assert response.status_code == 422
    assert field_of(response) == "extra"
    assert stored_events(session) == []


def test_assign_refuses_infinity_in_attributes(client, sk, seeded_experiment):
    text = '{"experiment": "checkout-button", "unit": "alice", "attributes": {"plan": Infinity}}'
    response = send(client, "/api/v1/assign", text, sk)
    assert response.status_code == 422 and field_of(response) == "attributes.plan"


# ---- definitions: every number finite, every text storable and bounded -------------------------------


@pytest.mark.parametrize("change, field", [
    ('"coverage": NaN', "coverage"),
    ('"alpha": Infinity', "alpha"),
    (f'"coverage": {BIG}', "coverage"),
    (f'"alpha": {BIG}', "alpha"),
    (f'"plan": {{"units_per_variant": {BIG}}}', "plan.units_per_variant"),
    (f'"namespace": {{"name": "n", "range": [0, {BIG}]}}', "namespace.range"),
    ('"namespace": {"name": "n", "range": [NaN, 1]}', "namespace.range"),
    ('"name": "cut \\ud83d"', "name"),
    ('"hypothesis": "\\udfff"', "hypothesis"),
    ('"targeting": {"country": ["DE", "\\ud800"]}', "targeting.country"),
    ('"hypothesis": "' + "h" * 5001 + '"', "hypothesis"),
])
def test_definition_numbers_and_texts_are_refused_by_field(client, sk, session, change, field):
    text = json.dumps(definition())[:-1] + ", " + change + "}"
    response = send(client, "/api/v1/experiments", text, sk)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert field_of(response) == field
    assert session.exec(select(Experiment)).all() == []


@pytest.mark.parametrize("variant, field", [
    ('{"key": "a", "weight": NaN}', "variants[0].weight"),
    ('{"key": "a", "weight": ' + BIG + '}', "variants[0].weight"),
    ('{"key": "a", "weight": 0.5, "name": "\\ud800"}', "variants[0].name"),
    ('{"key": "a", "weight": 0.5, "description": "' + "d" * 5001 + '"}', "variants[0].description"),
])
def test_variant_numbers_and_texts_are_refused_by_field(client, sk, variant, field):
    text = json.dumps(definition(variants=["A", {"key": "b", "weight": 0.5}])).replace('"A"', variant)
    response = send(client, "/api/v1/experiments", text, sk)
    assert response.status_code == 422 and field_of(response) == field


def test_study_prompt_with_a_lone_surrogate_is_refused(client, sk):
    study = {"kind": "study", "key": "robust-study", "name": "s", "designs": [{"key": "a", "url": "/a"}],
             "tasks": [{"key": "t", "prompt": "P"}]}
    response = send(client, "/api/v1/experiments", json.dumps(study).replace('"P"', '"\\ud800"'), sk)
    assert response.status_code == 422 and field_of(response) == "tasks[0].prompt"


def test_patch_refuses_nan(client, sk, seeded_experiment):
    response = client.patch("/api/v1/experiments/checkout-button", data='{"coverage": NaN}', headers=sk)
    assert response.status_code == 422 and field_of(response) == "coverage"


def test_an_integer_python_will_not_read_is_a_bad_body(client, sk):
    text = '{"key": "x", "coverage": 1' + "0" * 5000 + "}"
    response = send(client, "/api/v1/experiments", text, sk)
    assert response.status_code == 400 and field_of(response) == "body"
    assert "4300 digits" in response.get_json()["error"]["message"]


def test_length_limits_are_the_same_for_api_form_and_toml(client, sk, logged_in, tmp_path, cli_env):
    from click.testing import CliRunner

    from web.cli import main

    long = "h" * 5001
    api = send(client, "/api/v1/experiments", json.dumps(definition(hypothesis=long)), sk)
    assert api.status_code == 422 and api.get_json()["error"]["message"] == "at most 5000 characters, got 5001"
    page = post(logged_in, "/experiments/new", {**VALID_FORM, "hypothesis": long})
    assert page.status_code == 422
    assert_error_beside(page.get_data(as_text=True), "hypothesis", "at most 5000 characters, got 5001", "hypothesis")
    file = tmp_path / "long.toml"
    file.write_text(CHECKOUT_TOML.replace('status = "running"', f'hypothesis = "{long}"'))
    result = CliRunner().invoke(main, ["sync", str(file)])
    assert result.exit_code == 1
    assert f"{file}: hypothesis: at most 5000 characters, got 5001" in result.stderr.splitlines()
    ok = send(client, "/api/v1/experiments", json.dumps(definition(hypothesis="h" * 5000)), sk)
    assert ok.status_code == 201


# ---- abtest sync: one line per bad file, never a traceback ------------------------------------------------


def test_sync_reports_unreadable_files_in_one_line_each(tmp_path, cli_env, session):
    from click.testing import CliRunner

    from web.cli import main

    files = {
        "deep.toml": "key = \"deep\"\nx = " + "[" * 5000 + "1" + "]" * 5000 + "\n",
        "deep-tables.toml": "key = \"deep-two\"\nx = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
        "big-coverage.toml": CHECKOUT_TOML.replace('status = "running"', f"coverage = {BIG}"),
        "big-weight.toml": CHECKOUT_TOML.replace("checkout-button", "big-weight").replace("weight = 0.5", f"weight = {BIG}", 1),
        "huge-int.toml": "key = \"huge\"\ncoverage = 1" + "0" * 5000 + "\n",
    }
    paths = []
    for name, text in files.items():
        paths.append(tmp_path / name)
        paths[-1].write_text(text)
    (tmp_path / "latin1.toml").write_bytes(b'key = "latin"\nname = "caf\xe9"\n')
    paths.append(tmp_path / "latin1.toml")
    result = CliRunner().invoke(main, ["sync", *map(str, paths)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == f"nothing written: 6 problem(s) in {len(paths)} file(s)"
    expected = {"deep.toml": "(file): invalid TOML: nested too deeply",
                "deep-tables.toml": "(file): invalid TOML: nested too deeply",
                "big-coverage.toml": "coverage: must be a finite number, not an integer of 401 digits",
                "big-weight.toml": "variants[0].weight: must be a finite number, not an integer of 401 digits",
                "huge-int.toml": "(file): invalid TOML: Exceeds the limit (4300 digits)",
                "latin1.toml": "(file): not UTF-8 text (byte 25)"}
    for name, text in expected.items():
        assert [line for line in lines if line.startswith(f"{tmp_path / name}: ")] == [
            next(line for line in lines if line.startswith(f"{tmp_path / name}: {text}"))], (name, lines)
    assert session.exec(select(Experiment)).all() == []


# ---- public study reporter ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, status", [("url", 400), ("token", 403)])
def test_reached_refuses_a_lone_surrogate_by_field(client, session, name, status):
    """The URL is refused as text; a token that is not even text is no token the runner signed."""
    store_study(session)
    body = {"token": "not-a-signed-token", "url": "https://example.com/a"}
    text = json.dumps({**body, name: "X"}).replace('"X"', '"\\ud800"')
    response = client.post("/s/checkout-study/reached", data=text, headers={"Content-Type": "text/plain"})
    assert response.status_code == status
    assert response.get_json()["error"]["field"] == name


# ---- HTTP details -------------------------------------------------------------------------------------------


def test_405_keeps_the_allow_header_in_the_api_and_on_pages(client, sk):
    api = client.get("/api/v1/events", headers=sk)
    assert api.status_code == 405 and api.get_json()["error"]["code"] == "method_not_allowed"
    assert set(api.headers["Allow"].split(", ")) >= {"POST", "OPTIONS"}
    page = client.delete("/login")
    assert page.status_code == 405 and "<html" in page.get_data(as_text=True)
    assert set(page.headers["Allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize("target", ["/experiments/%0d%0aSet-Cookie:%20x=1", "/x%0Ay", "/x%09y", "/x%7Fy"])
def test_login_with_a_control_character_in_next_goes_to_the_default_page(client, designer, target):
    from tests.conftest import csrf_token_from

    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(f"/login?next={target}", data={"email": designer[0], "password": designer[1],
                                                          "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/experiments/"
    assert "x=1" not in str(response.headers)


# ---- planning helpers: extreme numbers are an error beside the field --------------------------


def test_planning_functions_refuse_extreme_numbers_by_field():
    with pytest.raises(ValidationError) as tiny_p:
        planning.participants_for_discovery(1e-300, 0.85)  # looped forever: 1 − p rounds to 1
    assert tiny_p.value.field == "target"
    with pytest.raises(ValidationError) as tiny_margin:
        planning.participants_for_margin(0.8, 1e-300)  # divided by zero
    assert tiny_margin.value.field == "margin"
    with pytest.raises(ValidationError) as big_n:
        planning.discovery_chance(0.3, int(BIG))  # (1 − p)ⁿ overflowed
    assert big_n.value.field == "n"
    for mde in (1e-300, 5e-324):
        with pytest.raises(ValidationError) as tiny_mde:
            sample_size_proportions(0.1, mde)  # overflowed in ** 2, or ceil(inf)
        assert tiny_mde.value.field == "mde"
    with pytest.raises(ValidationError) as many:
        sample_size_proportions(0.1, 0.02, variants=int(BIG))
    assert many.value.field == "variants"
    assert planning.participants_for_discovery(0.31, 0.85) == 6  # ordinary answers unchanged
    assert sample_size_proportions(0.2, 0.05).n_per_variant == 1094


@pytest.mark.parametrize("query, slot, text", [
    ("baseline=0.1&mde=1e-300", "helper-mde", "too small to plan for"),
    ("baseline=0.1&mde=5e-324", "helper-mde", "too small to plan for"),
    ("baseline=1e400&mde=0.01", "helper-baseline", "between 0 and 1"),
    ("baseline=nan&mde=0.01", "helper-baseline", "between 0 and 1"),
    ("baseline=0.1&mde=0.02&daily_traffic=1e-320", "helper-daily_traffic", "more than 36,525 days"),
    ("baseline=0.1&mde=0.02&daily_traffic=1e-300&coverage=1e-300", "helper-daily_traffic", "more than 36,525 days"),
])
def test_sample_size_helper_puts_extreme_numbers_beside_the_field(logged_in, query, slot, text):
    response = logged_in.get(f"/experiments/sample-size?{query}")
    assert response.status_code == 422
    assert_error_beside(response.get_data(as_text=True), slot, text, slot)


def test_study_planner_answers_extreme_numbers_with_field_errors(logged_in, session):
    store_study(session)
    for query, field in ((f"n={BIG}", "n"), ("p=1e-300", "target"), ("margin=1e-300", "margin")):
        started = time.perf_counter()
        response = logged_in.get(f"/experiments/checkout-study/planner?{query}")
        assert response.status_code == 200, query
        assert time.perf_counter() - started < 2, query
        alert = re.search(r'<p role="alert" class="error">(.*?)</p>', response.get_data(as_text=True))
        assert alert and f"{field}: " in alert.group(1), query


def test_no_nan_reaches_sqlite_json(client, sk, engine, seeded_experiment):
    """What was stored before the fix: SQLite kept [NaN] as non-standard JSON nothing else reads."""
    text = ('{"events": [{"id": "%s", "type": "response", "experiment": "checkout-button", "unit": "u",'
            ' "questionnaire": "SUS", "answers": [NaN], "ts": "%s"}]}' % (uuid.uuid4(), now_iso()))
    assert send(client, "/api/v1/events", text, sk).get_json()["accepted"] == 0
    with engine.connect() as conn:
        assert conn.execute(select(Event.answers)).all() == []
