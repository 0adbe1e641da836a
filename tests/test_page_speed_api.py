"""Vital events through the public API, and the config telling the snippet which vitals to report."""

from __future__ import annotations

import uuid

from abtest import pipeline
from abtest.accounts import create_token
from abtest.kinds import parse_definition
from tests.test_api import now_iso, stored_events


def _vital(**fields):  # type: ignore[no-untyped-def]
    return {"id": str(uuid.uuid4()), "type": "vital", "experiment": "checkout-button", "unit": "alice",
            "event": "LCP", "value": 1834.5, "attributes": {"path": "/cart", "navigation": "navigate"},
            "ts": now_iso(), **fields}


def test_vital_events_are_stored_and_bad_ones_refused_by_field(client, session, seeded_experiment):
    public = create_token(session, "public", "site").secret
    session.commit()
    bad = [_vital(event="LCD"), _vital(value=-1.0), _vital(value=None), _vital(event=None), _vital(task="checkout"),
           _vital(value="fast")]
    body = client.post("/api/v1/events", headers={"Authorization": f"Bearer {public}"},
                       json={"events": [_vital(), *bad]}).get_json()
    assert body["accepted"] == 1
    assert [r["error"]["field"] for r in body["rejected"]] == ["event", "value", "value", "event", "task", "value"]
    assert "LCP, INP, CLS, FCP, TTFB" in body["rejected"][0]["error"]["message"]
    [stored] = stored_events(session)
    assert (stored.type, stored.event, stored.value, stored.attributes) == (
        "vital", "LCP", 1834.5, {"path": "/cart", "navigation": "navigate"})


def test_the_config_names_the_vitals_an_experiment_measures(client, session):
    public = create_token(session, "public", "site").secret
    raw = {"key": "speed", "status": "running", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
           "metrics": [{"name": "buy", "type": "conversion"}, {"name": "lcp", "type": "quantile", "vital": "LCP"},
                       {"name": "cls", "type": "threshold", "vital": "CLS"}, {"name": "lcp-good", "type": "threshold",
                                                                              "vital": "LCP"}]}
    pipeline.create(session, parse_definition(raw))
    plain = {**raw, "key": "plain", "metrics": raw["metrics"][:1]}
    pipeline.create(session, parse_definition(plain))
    session.commit()
    body = client.get("/api/v1/config", headers={"Authorization": f"Bearer {public}"}).get_json()
    entries = {e["key"]: e for e in body["experiments"]}
    assert entries["speed"]["vitals"] == ["CLS", "LCP"]
    assert "vitals" not in entries["plain"]
