"""The JSON API (DESIGN §4.4): every route, its auth and its errors, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from abtest.accounts import create_token
from abtest.assignment import assign
from abtest.models import Event


@pytest.fixture
def tokens(session):  # type: ignore[no-untyped-def]
    secret = create_token(session, "secret", "test").secret
    public = create_token(session, "public", "site").secret
    session.commit()
    return {"sk": {"Authorization": f"Bearer {secret}"}, "pk": {"Authorization": f"Bearer {public}"},
            "pk_raw": public}


def now_iso(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def exposure(unit: str = "alice", variant: str = "control", **extra):  # type: ignore[no-untyped-def]
    return {"id": str(uuid.uuid4()), "type": "exposure", "experiment": "checkout-button", "variant": variant,
            "unit": unit, "ts": now_iso(), **extra}


def stored_events(session) -> list[Event]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.exec(select(Event)).all())


# ---- auth ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/config"), ("post", "/api/v1/assign"), ("post", "/api/v1/events"),
    ("get", "/api/v1/experiments"), ("post", "/api/v1/experiments"), ("get", "/api/v1/experiments/x1"),
    ("patch", "/api/v1/experiments/x1"), ("post", "/api/v1/experiments/x1/start"),
    ("post", "/api/v1/experiments/x1/stop"),
])
def test_every_route_needs_a_token(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 401
    assert response.get_json()["error"]["field"] == "Authorization"


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/experiments"), ("post", "/api/v1/experiments"), ("get", "/api/v1/experiments/checkout-button"),
    ("patch", "/api/v1/experiments/checkout-button"), ("post", "/api/v1/experiments/checkout-button/stop"),
])
def test_public_key_cannot_reach_admin_routes(client, tokens, seeded_experiment, method, path):
    response = getattr(client, method)(path, headers=tokens["pk"], json={})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_wrong_and_revoked_tokens_are_401(client, tokens, session):
    assert client.get("/api/v1/config", headers={"Authorization": "Bearer sk_nope"}).status_code == 401
    assert client.get("/api/v1/config", headers={"Authorization": "Basic abc"}).status_code == 401
    from abtest.accounts import revoke_token

    revoke_token(session, tokens["pk_raw"][:10])
    session.commit()
    assert client.get("/api/v1/config", headers=tokens["pk"]).status_code == 401


def test_public_key_in_the_url_but_never_a_secret(client, tokens):
    assert client.get(f"/api/v1/config?key={tokens['pk_raw']}").status_code == 200
    secret = tokens["sk"]["Authorization"].split()[1]
    response = client.get(f"/api/v1/config?key={secret}")
    assert response.status_code == 401
    assert response.get_json()["error"]["field"] == "key"


# ---- CORS ------------------------------------------------------------------------------------

def test_cors_preflight_for_public_routes_only(client):
    headers = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    ok = client.options("/api/v1/events", headers=headers)
    assert ok.headers["Access-Control-Allow-Origin"] in ("*", "https://shop.example")
    assert "content-type" in ok.headers["Access-Control-Allow-Headers"].lower()
    admin = client.options("/api/v1/experiments", headers=headers)
    assert "Access-Control-Allow-Origin" not in admin.headers


# ---- config and assign -----------------------------------------------------------------------

def test_config_lists_only_running_experiments(client, tokens, session, seeded_experiment):
    client.post("/api/v1/experiments", headers=tokens["sk"], json={
        "key": "draft-one", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        "namespace": {"name": "ns", "range": [0, 0.5]}})
    body = client.get("/api/v1/config", headers=tokens["pk"]).get_json()
    assert body == {"experiments": [{"key": "checkout-button", "seed": "checkout-button", "coverage": 1.0,
                                     "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}]}],
                    "surveys": []}


def test_assign_records_one_exposure_per_unit(client, tokens, session, seeded_experiment):
    for _ in range(3):
        response = client.post("/api/v1/assign", headers=tokens["pk"],
                               json={"experiment": "checkout-button", "unit": "alice"})
        assert response.status_code == 200
    body = response.get_json()
    assert body["variant"] == assign(seeded_experiment, "alice").variant
    assert (body["in_experiment"], body["reason"], body["forced"]) == (True, "assigned", False)
    events = stored_events(session)
    assert [(e.type, e.unit, e.variant) for e in events] == [("exposure", "alice", body["variant"])]


def test_assign_without_recording_and_forced(client, tokens, session, seeded_experiment):
    client.post("/api/v1/assign", headers=tokens["sk"], json={"experiment": "checkout-button", "unit": "bob",
                                                              "record": False})
    assert stored_events(session) == []
    forced = client.post("/api/v1/assign", headers=tokens["sk"],
                         json={"experiment": "checkout-button", "unit": "bob", "force": "green"}).get_json()
    assert (forced["variant"], forced["forced"]) == ("green", True)
    assert [e.forced for e in stored_events(session)] == [True]


@pytest.mark.parametrize("body, status, field", [
    ({"experiment": "checkout-button"}, 422, "unit"),
    ({"experiment": "checkout-button", "unit": 42}, 422, "unit"),
    ({"experiment": "checkout-button", "unit": "x" * 201}, 422, "unit"),
    ({"experiment": "checkout-button", "unit": "a", "colour": 1}, 422, "colour"),
    ({"experiment": "checkout-button", "unit": "a", "force": "purple"}, 422, "override"),
    ({"experiment": "nope-nope", "unit": "a"}, 404, "experiment"),
])
def test_assign_errors(client, tokens, seeded_experiment, body, status, field):
    response = client.post("/api/v1/assign", headers=tokens["pk"], json=body)
    assert response.status_code == status
    assert response.get_json()["error"]["field"] == field


def test_public_key_cannot_assign_in_a_draft(client, tokens, session):
    client.post("/api/v1/experiments", headers=tokens["sk"], json={
        "key": "draft-one", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}]})
    response = client.post("/api/v1/assign", headers=tokens["pk"], json={"experiment": "draft-one", "unit": "a"})
    assert response.status_code == 404


# ---- events ----------------------------------------------------------------------------------

def test_events_are_stored_once_even_when_retried(client, tokens, session, seeded_experiment):
    batch = {"events": [exposure("u1"), exposure("u2", "green"),
                        {"id": str(uuid.uuid4()), "type": "conversion", "experiment": "checkout-button",
                         "unit": "u1", "event": "purchase", "value": 12.5, "ts": now_iso()}]}
    first = client.post("/api/v1/events", headers=tokens["pk"], json=batch)
    assert (first.status_code, first.get_json()) == (202, {"accepted": 3, "duplicates": 0, "rejected": [], "before_exposure": []})
    retry = client.post("/api/v1/events", headers=tokens["pk"], json=batch)
    assert (retry.status_code, retry.get_json()) == (202, {"accepted": 0, "duplicates": 3, "rejected": [], "before_exposure": []})
    events = stored_events(session)
    assert len(events) == 3
    assert all(e.received_at.tzinfo is not None and e.ts <= e.received_at for e in events)


def test_same_id_twice_in_one_batch_counts_once(client, tokens, session, seeded_experiment):
    event = exposure()
    body = client.post("/api/v1/events", headers=tokens["pk"], json={"events": [event, event]}).get_json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)


def test_bad_events_are_rejected_and_good_ones_kept(client, tokens, session, seeded_experiment):
    good = exposure("kept")
    bad = [
        {**exposure(), "experiment": "unknown-one"},
        {**exposure(), "variant": "purple"},
        {**exposure(), "ts": now_iso(timedelta(days=-31))},
        {**exposure(), "ts": now_iso(timedelta(minutes=10))},
        {**exposure(), "ts": "2026-11-23T10:00:00"},
        {**exposure(), "ts": "yesterday"},
        {"id": str(uuid.uuid4()), "type": "task", "experiment": "checkout-button", "unit": "u", "task": "checkout",
         "success": True, "duration_ms": -5, "ts": now_iso()},
        {"id": str(uuid.uuid4()), "type": "task", "experiment": "checkout-button", "unit": "u", "task": "checkout",
         "success": True, "duration_ms": "1200", "ts": now_iso()},
        {**exposure(), "unit": ""},
        {**exposure(), "unit": "u" * 500},
        {**exposure(), "shoe_size": 44},
        {**exposure(), "type": "click"},
        {key: value for key, value in exposure().items() if key != "variant"},
        {"id": str(uuid.uuid4()), "type": "conversion", "experiment": "checkout-button", "unit": "u", "ts": now_iso()},
        "not an object",
    ]
    fields = ["experiment", "variant", "ts", "ts", "ts", "ts", "duration_ms", "duration_ms", "unit", "unit",
              "shoe_size", "type", "variant", "event", None]
    body = client.post("/api/v1/events", headers=tokens["pk"], json={"events": [good, *bad]}).get_json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == list(range(1, len(bad) + 1))
    assert [r["error"]["field"] for r in body["rejected"]] == fields
    assert all(r["error"]["message"] for r in body["rejected"])
    assert [e.unit for e in stored_events(session)] == ["kept"]


def test_public_key_events_only_for_running_experiments(client, tokens, session, seeded_experiment):
    client.post("/api/v1/experiments/checkout-button/stop", headers=tokens["sk"])
    public = client.post("/api/v1/events", headers=tokens["pk"], json={"events": [exposure()]}).get_json()
    assert public["rejected"][0]["error"]["field"] == "experiment"
    secret = client.post("/api/v1/events", headers=tokens["sk"], json={"events": [exposure()]}).get_json()
    assert secret["accepted"] == 1  # late events of a stopped test can still be backfilled by an admin


@pytest.mark.parametrize("data, content_type, status, field", [
    ("{not json", "application/json", 400, "body"),
    (b"\xff\xfe{}", "application/json", 400, "body"),
    ("[]", "application/json", 400, "body"),
    ('{"events": []}', "text/plain", 415, "Content-Type"),
    ('{"events": "many"}', "application/json", 422, "events"),
    ('{"evts": []}', "application/json", 422, "events"),
])
def test_malformed_bodies(client, tokens, data, content_type, status, field):
    response = client.post("/api/v1/events", headers=tokens["pk"], data=data, content_type=content_type)
    assert response.status_code == status
    assert response.get_json()["error"]["field"] == field


def test_oversized_batches(client, tokens, seeded_experiment):
    too_many = client.post("/api/v1/events", headers=tokens["pk"], json={"events": [exposure()] * 1001})
    assert too_many.status_code == 422
    assert too_many.get_json()["error"]["field"] == "events"
    huge = client.post("/api/v1/events", headers=tokens["pk"], data=json.dumps({"events": ["x" * 3_000_000]}),
                       content_type="application/json")
    assert huge.status_code == 413
    assert huge.get_json()["error"]["code"] == "request_entity_too_large"


def test_database_down_answers_503_and_retry_is_safe(client, tokens, session, seeded_experiment, app, monkeypatch):
    batch = {"events": [exposure("r1"), exposure("r2")]}
    import abtest.ingest

    real = abtest.store.events.store_new

    def failing(conn, rows):  # type: ignore[no-untyped-def]
        raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(abtest.ingest, "store_new", failing)
    down = client.post("/api/v1/events", headers=tokens["pk"], json=batch)
    assert down.status_code == 503 and down.headers["Retry-After"] == "5"
    assert stored_events(session) == []
    monkeypatch.setattr(abtest.ingest, "store_new", real)
    again = client.post("/api/v1/events", headers=tokens["pk"], json=batch)
    assert again.get_json()["accepted"] == 2


# ---- experiments -----------------------------------------------------------------------------

DRAFT = {"key": "new-test", "name": "New", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
         "metrics": [{"name": "signup", "type": "conversion"}]}


def test_experiment_crud_and_lifecycle(client, tokens):
    created = client.post("/api/v1/experiments", headers=tokens["sk"], json=DRAFT)
    assert created.status_code == 201
    assert created.get_json()["status"] == "draft"
    assert [e["key"] for e in client.get("/api/v1/experiments", headers=tokens["sk"]).get_json()["experiments"]] == ["new-test"]
    patched = client.patch("/api/v1/experiments/new-test", headers=tokens["sk"], json={"coverage": 0.5, "name": "Renamed"})
    assert (patched.get_json()["coverage"], patched.get_json()["name"]) == (0.5, "Renamed")
    started = client.post("/api/v1/experiments/new-test/start", headers=tokens["sk"]).get_json()
    assert started["status"] == "running" and started["started_at"]
    frozen = client.patch("/api/v1/experiments/new-test", headers=tokens["sk"],
                          json={"variants": [{"key": "a", "weight": 0.3}, {"key": "b", "weight": 0.7}]})
    assert (frozen.status_code, frozen.get_json()["error"]["field"]) == (409, "variants")
    assert client.post("/api/v1/experiments/new-test/stop", headers=tokens["sk"]).get_json()["status"] == "stopped"
    again = client.post("/api/v1/experiments/new-test/start", headers=tokens["sk"])
    assert (again.status_code, again.get_json()["error"]["field"]) == (409, "status")
    assert client.post("/api/v1/experiments/new-test/archive", headers=tokens["sk"]).get_json()["status"] == "archived"
    fetched = client.get("/api/v1/experiments/new-test", headers=tokens["sk"]).get_json()
    assert fetched["archived_at"] and fetched["name"] == "Renamed"
    # The audit log: every accepted change, newest first, by the token that made it (the refused
    # ones are not there: they changed nothing).
    history = client.get("/api/v1/experiments/new-test/history", headers=tokens["sk"]).get_json()["history"]
    assert [e["action"] for e in history] == ["archived", "stopped", "running", "update", "create"]
    assert all(e["actor"].startswith("API token sk_") for e in history)
    assert history[3]["changes"] == {"coverage": {"from": 1.0, "to": 0.5}, "name": {"from": "New", "to": "Renamed"}}
    assert client.get("/api/v1/experiments/new-test/history", headers=tokens["pk"]).status_code == 403


def test_experiment_validation_is_the_sync_validation(client, tokens):
    bad = {**DRAFT, "key": "Bad Key", "variants": [{"key": "a", "weight": 0.6}, {"key": "b", "weight": 0.6}]}
    response = client.post("/api/v1/experiments", headers=tokens["sk"], json=bad)
    assert response.status_code == 422
    fields = [e["field"] for e in response.get_json()["errors"]]
    assert fields == ["key", "variants"]
    assert "never rescales" in response.get_json()["errors"][1]["message"]


def test_experiment_conflicts_and_missing(client, tokens):
    client.post("/api/v1/experiments", headers=tokens["sk"], json=DRAFT)
    assert client.post("/api/v1/experiments", headers=tokens["sk"], json=DRAFT).status_code == 409
    assert client.get("/api/v1/experiments/missing-one", headers=tokens["sk"]).status_code == 404
    assert client.patch("/api/v1/experiments/new-test", headers=tokens["sk"], json={"key": "other"}).status_code == 422
    assert client.post("/api/v1/experiments/missing-one/start", headers=tokens["sk"]).status_code == 404


def test_unknown_route_and_method_answer_json(client, tokens):
    missing = client.get("/api/v1/nothing-here", headers=tokens["sk"])
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong = client.delete("/api/v1/config", headers=tokens["sk"])
    assert wrong.status_code == 405 and "error" in wrong.get_json()


def test_openapi_describes_every_route(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = set(spec["paths"])
    routed = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule) for r in app.url_map.iter_rules()
              if r.rule.startswith("/api/v1/") and "openapi" not in r.rule}
    assert routed == documented
    assert spec["components"]["schemas"]["EventIn"]["additionalProperties"] is False


def test_results_endpoint(client, tokens, engine):
    from abtest.demo import seed_demo

    seed_demo(engine)
    response = client.get("/api/v1/experiments/onboarding-copy/results", headers=tokens["sk"])
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) >= {"experiment", "status", "analysis", "units", "srm", "metrics", "power", "verdict"}
    assert body["metrics"][0]["comparisons"][0]["method"].startswith("two-proportion z-test")
    assert client.get("/api/v1/experiments/onboarding-copy/results", headers=tokens["pk"]).status_code == 403
    missing = client.get("/api/v1/experiments/nope-nope/results", headers=tokens["sk"])
    assert missing.status_code == 404 and missing.get_json()["error"]["field"] == "experiment"


def test_hostile_values_are_refused_not_crashed(client, tokens, session, seeded_experiment):
    """Found in review: each of these used to answer 500 or poison the results for good."""
    conversion = {"id": str(uuid.uuid4()), "type": "conversion", "experiment": "checkout-button", "unit": "u",
                  "event": "purchase", "ts": now_iso()}
    bad = [{**conversion, "value": 1e200}, {**conversion, "value": 10**400}, {**exposure(), "unit": "a\u0000b"},
           {**exposure(), "id": "id-with-\u0000-nul"}, {**exposure(), "unit": "half an emoji \ud83d"},
           {**conversion, "event": "\udc00"}]
    body = client.post("/api/v1/events", headers=tokens["pk"], json={"events": [exposure("fine"), *bad]}).get_json()
    assert body["accepted"] == 1
    assert [r["error"]["field"] for r in body["rejected"]] == ["value", "value", "unit", "id", "unit", "event"]
    nul = client.post("/api/v1/assign", headers=tokens["pk"], json={"experiment": "checkout-button", "unit": "a\u0000"})
    assert (nul.status_code, nul.get_json()["error"]["field"]) == (422, "unit")
    half = client.post("/api/v1/assign", headers=tokens["pk"], json={"experiment": "checkout-button", "unit": "\ud83d"})
    assert (half.status_code, half.get_json()["error"]["field"]) == (422, "unit")
    deep = client.post("/api/v1/events", headers=tokens["pk"], data="[" * 50_000 + "]" * 50_000,
                       content_type="application/json")
    assert (deep.status_code, deep.get_json()["error"]["field"]) == (400, "body")
    results = client.get("/api/v1/experiments/checkout-button/results", headers=tokens["sk"])
    assert results.status_code == 200


API_STUDY = {"kind": "study", "key": "api-study", "name": "S", "status": "running",
             "designs": [{"key": "a", "url": "https://x.example/a"}, {"key": "b", "url": "https://x.example/b"}],
             "tasks": [{"key": "t1", "prompt": "Do it"}], "questionnaires": ["SUS"]}


def test_the_api_takes_every_kind_and_says_which(client, tokens, seeded_experiment):
    created = client.post("/api/v1/experiments", headers=tokens["sk"], json=API_STUDY)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["kind"] == "study" and created.get_json()["designs"][1]["key"] == "b"
    listed = {d["key"]: d["kind"] for d in client.get("/api/v1/experiments", headers=tokens["sk"]).get_json()["experiments"]}
    assert listed == {"checkout-button": "experiment", "api-study": "study"}
    one = client.get("/api/v1/experiments/api-study", headers=tokens["sk"]).get_json()
    assert one["tasks"] == [{"key": "t1", "prompt": "Do it", "success": "self-report"}]
    renamed = client.patch("/api/v1/experiments/api-study", headers=tokens["sk"], json={"name": "Renamed"})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Renamed"
    frozen = client.patch("/api/v1/experiments/api-study", headers=tokens["sk"], json={"tasks": []})
    assert frozen.status_code == 422  # a study needs at least one task, whatever its state
    moved = client.patch("/api/v1/experiments/api-study", headers=tokens["sk"],
                         json={"tasks": [{"key": "t2", "prompt": "Other"}]})
    assert (moved.status_code, moved.get_json()["error"]["field"]) == (409, "tasks")


def test_an_unknown_kind_is_a_field_error(client, tokens):
    response = client.post("/api/v1/experiments", headers=tokens["sk"], json={**API_STUDY, "kind": "tree-test"})
    assert (response.status_code, response.get_json()["error"]["field"]) == (422, "kind")
    assert "experiment, study, survey" in response.get_json()["error"]["message"]


def test_a_study_cannot_become_an_experiment(client, tokens):
    client.post("/api/v1/experiments", headers=tokens["sk"], json=API_STUDY)
    experiment = {"key": "api-study", "status": "running", "variants": [{"key": "a", "weight": 0.5},
                                                                       {"key": "b", "weight": 0.5}]}
    response = client.patch("/api/v1/experiments/api-study", headers=tokens["sk"], json={"kind": "experiment",
                                                                                        **experiment})
    assert response.status_code == 422  # study fields beside experiment ones: the experiment parser names them


def test_a_study_is_not_reachable_with_a_public_key(client, tokens, session):
    client.post("/api/v1/experiments", headers=tokens["sk"], json=API_STUDY)
    for headers in (tokens["pk"], tokens["sk"]):
        response = client.post("/api/v1/assign", headers=headers, json={"experiment": "api-study", "unit": "u1"})
        assert response.status_code == 404, response.get_json()
        assert response.get_json()["error"]["message"] == "no running experiment with key 'api-study'"
    unknown = client.post("/api/v1/assign", headers=tokens["pk"], json={"experiment": "no-such-one", "unit": "u1"})
    assert unknown.status_code == 404
    assert stored_events(session) == []


def test_a_study_has_its_results_in_the_results_api(client, tokens):
    client.post("/api/v1/experiments", headers=tokens["sk"], json=API_STUDY)
    document = client.get("/api/v1/experiments/api-study/results", headers=tokens["sk"]).get_json()
    assert document["kind"] == "study" and document["units"] == {"a": 0, "b": 0}
    assert [m["name"] for m in document["metrics"]] == ["t1-success", "t1-time", "t1-SEQ", "SEQ", "SUS"]
    assert document["verdict"].startswith("No participants yet")


def test_studies_are_invisible_to_the_snippet(client, tokens, engine):
    from abtest.demo import seed_demo

    seed_demo(engine)  # includes the running usability study checkout-study
    keys = [e["key"] for e in client.get("/api/v1/config", headers=tokens["pk"]).get_json()["experiments"]]
    assert "checkout-button" in keys and "checkout-study" not in keys
    event = {**exposure(), "experiment": "checkout-study", "variant": "current"}
    body = client.post("/api/v1/events", headers=tokens["pk"], json={"events": [event]}).get_json()
    assert body["accepted"] == 0 and body["rejected"][0]["error"]["field"] == "experiment"


def test_events_carry_attributes_in_canonical_form_and_bad_ones_are_refused_by_name(client, tokens, session,
                                                                                   seeded_experiment):
    good = exposure("ann", attributes={"country": "DE", "beta": True, "visits": 3.0, "score": 2.5})
    bad = [exposure("bob", attributes={"country": ["DE"]}), exposure("cid", attributes={"bad key": 1}),
           exposure("dan", attributes={f"a{i}": i for i in range(21)}), exposure("eve", attributes="DE"),
           exposure("fay", attributes={"long": "x" * 201}),
           exposure("gil", attributes={"text": "cut \ud83d"}),  # half an emoji: not storable as UTF-8
           exposure("hal", attributes={"country": "(other)"})]  # would pass for the pooled segment
    body = client.post("/api/v1/events", headers=tokens["pk"], json={"events": [good, *bad]}).get_json()
    assert body["accepted"] == 1
    assert [(r["index"], r["error"]["field"]) for r in body["rejected"]] == [
        (1, "attributes.country"), (2, "attributes.bad key"), (3, "attributes"), (4, "attributes"),
        (5, "attributes.long"), (6, "attributes.text"), (7, "attributes.country")]
    [stored] = stored_events(session)
    assert stored.attributes == {"country": "DE", "beta": "true", "visits": "3", "score": "2.5"}


def test_assign_records_single_valued_attributes_on_the_exposure(client, tokens, session, seeded_experiment):
    response = client.post("/api/v1/assign", headers=tokens["pk"], json={
        "experiment": "checkout-button", "unit": "gus", "attributes": {"device": "mobile", "groups": ["a", "b"]}})
    assert response.status_code == 200
    [stored] = stored_events(session)
    assert stored.attributes == {"device": "mobile"}  # a list is for targeting, not a segment
    refused = client.post("/api/v1/assign", headers=tokens["pk"], json={
        "experiment": "checkout-button", "unit": "gus", "attributes": {"device": {"nested": 1}}})
    assert (refused.status_code, refused.get_json()["error"]["field"]) == (422, "attributes.device")
    in_no_group = client.post("/api/v1/assign", headers=tokens["pk"], json={
        "experiment": "checkout-button", "unit": "ivy", "attributes": {"groups": []}})
    assert in_no_group.status_code == 200  # a visitor in no group is a visitor, not a bad request


def test_a_public_key_cannot_tell_a_draft_or_a_study_from_an_unknown_key(client, tokens, engine):
    from abtest.demo import seed_demo

    seed_demo(engine)  # a draft (pricing-layout) and a running study (checkout-study)
    answers = {}
    for key in ("pricing-layout", "checkout-study", "no-such-test"):
        assign = client.post("/api/v1/assign", headers=tokens["pk"], json={"experiment": key, "unit": "u1"})
        event = client.post("/api/v1/events", headers=tokens["pk"], json={"events": [
            {**exposure(), "experiment": key, "variant": None}]}).get_json()["rejected"][0]["error"]
        answers[key] = (assign.status_code, assign.get_json()["error"]["message"].replace(key, "KEY"),
                        event["field"], event["message"].replace(key, "KEY"))
    assert len(set(answers.values())) == 1, answers
    assert answers["no-such-test"][0] == 404


def test_results_break_down_by_an_attribute(client, tokens, seeded_experiment):
    batch = [exposure(f"u{i}", "control" if i % 2 else "green", attributes={"device": ("mobile", "desktop")[i % 3 == 0]})
             for i in range(30)]
    assert client.post("/api/v1/events", headers=tokens["pk"], json={"events": batch}).get_json()["accepted"] == 30
    document = client.get("/api/v1/experiments/checkout-button/results?by=device", headers=tokens["sk"]).get_json()
    units = {s["segment"]: s["units"] for s in document["breakdown"]["segments"]}
    assert units == {"mobile": {"control": 10, "green": 10}, "desktop": {"control": 5, "green": 5}}
    assert [s["segment"] for s in document["metrics"][0]["segments"]] == ["mobile", "desktop"]
    nobody = client.get("/api/v1/experiments/checkout-button/results?by=country", headers=tokens["sk"]).get_json()
    assert nobody["breakdown"]["segments"] == [] and "country" in nobody["breakdown"]["message"]
    bad = client.get("/api/v1/experiments/checkout-button/results?by=no%20way", headers=tokens["sk"])
    assert (bad.status_code, bad.get_json()["error"]["field"]) == (422, "by")
    plain = client.get("/api/v1/experiments/checkout-button/results", headers=tokens["sk"]).get_json()
    assert "breakdown" not in plain and "segments" not in plain["metrics"][0]


def test_conversions_stamped_before_the_exposure_are_named_in_the_answer(client, tokens, session, seeded_experiment):
    """Issue 15: they used to be answered "accepted" and then count 0, silently."""
    base = datetime.now(UTC) - timedelta(minutes=10)

    def at(minutes: int) -> str:
        return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    def conversion(unit: str, minutes: int) -> dict:
        return {"id": str(uuid.uuid4()), "type": "conversion", "experiment": "checkout-button", "unit": unit,
                "event": "purchase", "ts": at(minutes)}

    batch = [{**exposure("ann"), "ts": at(5)}, conversion("ann", 1), conversion("ann", 6),
             conversion("bob", 2)]  # bob has no exposure yet: it may still arrive, so not flagged
    body = client.post("/api/v1/events", headers=tokens["pk"], json={"events": batch}).get_json()
    assert body["accepted"] == 4 and body["before_exposure"] == [1]
    late = client.post("/api/v1/events", headers=tokens["pk"], json={"events": [
        {**exposure("bob"), "ts": at(3)}, conversion("bob", 0)]}).get_json()
    assert late["before_exposure"] == [1]  # against the exposure stored in the same batch


def test_the_report_counts_the_conversions_it_left_out_for_coming_before_the_exposure(
        client, tokens, logged_in, seeded_experiment):
    """Issue 15: each is named at ingestion and again in the report, per event; the ones after
    the exposure still count, the early ones in no metric."""
    base = datetime.now(UTC) - timedelta(minutes=10)

    def event(kind: str, unit: str, minutes: int, **more: object) -> dict:
        return {"id": str(uuid.uuid4()), "type": kind, "experiment": "checkout-button", "unit": unit,
                "ts": (base + timedelta(minutes=minutes)).isoformat(), **more}

    batch = [event("exposure", "ann", 5, variant="control"), event("exposure", "bob", 5, variant="control"),
             event("conversion", "ann", 1, event="purchase"), event("conversion", "ann", 2, event="purchase"),
             event("conversion", "bob", 6, event="purchase")]
    assert client.post("/api/v1/events", headers=tokens["pk"], json={"events": batch}).status_code == 202
    report = client.get("/api/v1/experiments/checkout-button/results", headers=tokens["sk"]).get_json()
    assert report["before_exposure"] == {"purchase": 2}
    purchase = next(m for m in report["metrics"] if m["name"] == "purchase")
    assert {v["variant"]: v["n"] for v in purchase["variants"]}["control"] == 2
    control = next(v for v in purchase["variants"] if v["variant"] == "control")
    assert control["value"] == 0.5  # bob's conversion counts; ann's two early ones do not
    page = logged_in.get("/experiments/checkout-button/results").get_data(as_text=True)
    line = page.split('id="before-exposure"')[1].split("</p>")[0]
    assert "2 <code>purchase</code> events" in line and "first exposure" in line
