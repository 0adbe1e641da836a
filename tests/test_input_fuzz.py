"""Fuzzing the public inputs (issue 13): random event batches, definitions and study-runner
bodies never get a 5xx, and the good events of a batch are kept whatever sits beside them.

Bounded (a few dozen examples per input, per backend) so the default run stays quick; the values
are chosen to reach the places that used to raise: lone surrogates, NaN and infinity, integers
past the float range, dates at the ends of the calendar, deep nesting and unknown fields.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from abtest.accounts import create_token
from abtest.models import Event
from tests.study_helpers import store_study
from tests.test_api import exposure

FUZZ = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

hostile_text = st.one_of(st.text(max_size=20), st.sampled_from(
    ["\ud800", "a\x00b", "\r\n", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "x" * 5001]))
hostile_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                           st.just(10 ** 400), st.just(-(10 ** 309)))
scalar = st.one_of(st.none(), st.booleans(), hostile_text, hostile_number)
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(hostile_text, inner, max_size=3)), max_leaves=8)
FIELDS = ["id", "type", "experiment", "unit", "variant", "ts", "event", "value", "task", "success",
          "duration_ms", "questionnaire", "answers", "attributes", "forced", "surprise"]


@st.composite
def spoiled_event(draw) -> dict:  # type: ignore[no-untyped-def]
    """A good exposure with one to three fields replaced by hostile values (or added)."""
    event = exposure(unit=f"bad-{uuid.uuid4().hex[:8]}")
    for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)):
        event[name] = draw(value)
    return event


def _dumps(body: object) -> bytes:
    """JSON as a hostile client writes it: NaN and Infinity literals, escaped lone surrogates."""
    return json.dumps(body, allow_nan=True).encode()


def _headers(session, kind: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    token = create_token(session, kind, f"fuzz {kind}").secret
    session.commit()
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_random_batches_never_5xx_and_keep_their_good_events(client, session, seeded_experiment):
    headers = _headers(session, "public")

    @FUZZ
    @given(bad=st.lists(spoiled_event(), max_size=4), good=st.integers(0, 3), extra=st.booleans())
    def run(bad: list[dict], good: int, extra: bool) -> None:
        kept = [exposure(unit=f"good-{uuid.uuid4().hex[:8]}") for _ in range(good)]
        body: dict = {"events": bad + kept}
        if extra:
            body["surprise"] = True  # an unknown top-level field: the whole body is refused, by name
        response = client.post("/api/v1/events", data=_dumps(body), headers=headers)
        assert response.status_code < 500, response.get_data(as_text=True)
        if extra:
            assert response.status_code in (400, 422) and response.get_json()["error"]["field"]
            return
        assert response.status_code == 202, response.get_data(as_text=True)
        session.expire_all()
        ids = {e.event_id for e in session.exec(select(Event).where(
            Event.event_id.in_([e["id"] for e in kept]))).all()}  # type: ignore[attr-defined]
        assert ids == {e["id"] for e in kept}

    run()


def test_random_definitions_never_5xx(client, session):
    headers = _headers(session, "secret")

    @FUZZ
    @given(changes=st.dictionaries(st.sampled_from(
        ["key", "name", "hypothesis", "variants", "coverage", "alpha", "analysis", "metrics", "targeting", "kind",
         "plan", "seed", "unknown"]), value, max_size=3))
    def run(changes: dict) -> None:
        definition = {"key": f"fuzz-{uuid.uuid4().hex[:8]}", "name": "Fuzz",
                      "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}], **changes}
        response = client.post("/api/v1/experiments", data=_dumps(definition), headers=headers)
        assert response.status_code < 500, response.get_data(as_text=True)
        if response.status_code >= 400:
            assert "message" in response.get_json()["error"]

    run()


def test_random_study_runner_bodies_never_5xx(client, session):
    store_study(session)

    @FUZZ
    @given(reached=value, pid=hostile_text)
    def run(reached: object, pid: str) -> None:
        answer = client.post("/s/checkout-study/reached", data=_dumps(reached), headers={"Content-Type": "text/plain"})
        assert answer.status_code < 500, answer.get_data(as_text=True)
        # As a browser sends it: percent-encoded bytes (half an emoji becomes three bytes no UTF-8 reader takes).
        page = client.get("/s/checkout-study?pid=" + quote(pid.encode("utf-8", "surrogatepass")))
        assert page.status_code < 500, page.get_data(as_text=True)

    run()
