"""The snippet's public routes (config, assign, events): CORS per public key's origins, rate limits
per address and per key, and the CLI that gives a key its origins. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlmodel import select

from abtest.accounts import create_token, find_token
from abtest.errors import ValidationError
from abtest.models import Event
from abtest.origins import normalize_origin, origin_allowed
from web.cli import main

SHOP = "https://shop.example"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


def _event(unit: str = "alice") -> dict:
    return {"id": str(uuid.uuid4()), "type": "exposure", "experiment": "checkout-button", "variant": "control",
            "unit": unit, "ts": datetime.now(UTC).isoformat()}


def _batch(unit: str = "alice") -> dict:
    return {"events": [_event(unit)]}


def _key(session, origins: tuple[str, ...] = ()) -> str:  # type: ignore[no-untyped-def]
    raw = create_token(session, "public", "shop", origins).secret
    session.commit()
    return raw


def _stored(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return len(session.exec(select(Event)).all())


# ---- origins ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, origin", [
    ("https://shop.example", SHOP), ("HTTPS://Shop.Example:443", SHOP), ("https://shop.example/", SHOP),
    ("http://localhost:8080", "http://localhost:8080"), ("http://127.0.0.1:80", "http://127.0.0.1"),
    ("https://[::1]:8443", "https://[::1]:8443"),
])
def test_origins_are_normalised(text, origin):
    assert normalize_origin(text) == origin


@pytest.mark.parametrize("text", ["shop.example", "ftp://shop.example", "https://shop.example/cart",
                                  "https://user@shop.example", "https://shop.example?x=1", "https://", "null",
                                  "https://shop.example:99999"])
def test_what_is_not_an_origin_is_refused_naming_the_field(text):
    with pytest.raises(ValidationError) as caught:
        normalize_origin(text)
    assert caught.value.field == "origin"


def test_origins_match_whole_never_by_prefix():
    allowed = [SHOP]
    assert origin_allowed("https://shop.example", allowed)
    assert origin_allowed("https://SHOP.example:443", allowed)
    for other in ("https://shop.example.evil.com", "https://evil-shop.example", "http://shop.example",
                  "https://shop.example:8443", "https://sub.shop.example", "null", "garbage"):
        assert not origin_allowed(other, allowed), other
    assert origin_allowed("https://anything.example", None) and origin_allowed("null", [])


def test_only_public_keys_take_origins(session):
    with pytest.raises(ValidationError) as caught:
        create_token(session, "secret", "ci", ["https://shop.example"])
    assert caught.value.field == "origin"
    raw = create_token(session, "public", "shop", ["HTTPS://Shop.Example", "https://shop.example/",
                                                   "http://localhost:3000"]).secret
    assert find_token(session, raw).origins == [SHOP, "http://localhost:3000"]
    assert find_token(session, create_token(session, "public").secret).origins is None


def test_cli_token_create_with_origins(cli_env, session):
    runner = CliRunner()
    made = runner.invoke(main, ["token", "create", "--public", "--name", "shop", "--origin", "https://Shop.example",
                                "--origin", "http://localhost:3000"], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    raw = made.output.strip().splitlines()[-1]
    assert find_token(session, raw).origins == [SHOP, "http://localhost:3000"]
    assert f"for {SHOP}, http://localhost:3000" in made.output
    assert f"origins: {SHOP} http://localhost:3000" in runner.invoke(main, ["token", "list"]).output
    bad = runner.invoke(main, ["token", "create", "--public", "--origin", "https://shop.example/cart"])
    assert bad.exit_code == 1 and "origin:" in bad.output and "no path" in bad.output
    secret = runner.invoke(main, ["token", "create", "--origin", SHOP])
    assert secret.exit_code == 1 and "only a public key" in secret.output


# ---- CORS ------------------------------------------------------------------------------------

def test_a_key_without_origins_works_from_any_page(client, session, seeded_experiment):
    key = _key(session)
    for origin in ("https://shop.example", "https://elsewhere.example"):
        pre = client.options(f"/api/v1/events?key={key}", headers={"Origin": origin, **PREFLIGHT})
        assert pre.status_code == 204
        assert pre.headers["Access-Control-Allow-Origin"] == origin
        # sendBeacon sends in credentials mode "include": without this header Chromium drops it.
        assert pre.headers["Access-Control-Allow-Credentials"] == "true"
        assert "content-type" in pre.headers["Access-Control-Allow-Headers"].lower()
        assert "Origin" in pre.headers["Vary"]
        sent = client.post(f"/api/v1/events?key={key}", json=_batch(), headers={"Origin": origin})
        assert sent.status_code == 202 and sent.headers["Access-Control-Allow-Origin"] == origin


def test_a_key_with_origins_answers_only_those(client, session, seeded_experiment):
    key = _key(session, (SHOP,))
    ok = client.options(f"/api/v1/events?key={key}", headers={"Origin": SHOP, **PREFLIGHT})
    assert ok.headers["Access-Control-Allow-Origin"] == SHOP
    for origin in ("https://shop.example.evil.com", "https://evil.example", "http://shop.example"):
        pre = client.options(f"/api/v1/events?key={key}", headers={"Origin": origin, **PREFLIGHT})
        assert "Access-Control-Allow-Origin" not in pre.headers, origin
        assert "Access-Control-Allow-Credentials" not in pre.headers, origin
    assert client.post(f"/api/v1/events?key={key}", json=_batch("a"), headers={"Origin": SHOP}).status_code == 202
    assert client.get(f"/api/v1/config?key={key}", headers={"Origin": SHOP}).status_code == 200
    assert _stored(session) == 1


def test_a_request_from_another_origin_is_refused_and_stores_nothing(client, session, seeded_experiment):
    # A browser sends some requests without a preflight (a text/plain beacon, a form): CORS headers
    # alone would not stop them being stored, so the route refuses them.
    key = _key(session, (SHOP,))
    evil = "https://shop.example.evil.com"
    for answer in (client.post(f"/api/v1/events?key={key}", json=_batch(), headers={"Origin": evil}),
                   client.post("/api/v1/events", json=_batch(), headers={"Origin": evil,
                                                                         "Authorization": f"Bearer {key}"}),
                   client.post(f"/api/v1/assign?key={key}", json={"experiment": "checkout-button", "unit": "bob"},
                               headers={"Origin": evil}),
                   client.get(f"/api/v1/config?key={key}", headers={"Origin": evil})):
        assert answer.status_code == 403
        error = answer.get_json()["error"]
        assert error["field"] == "Origin" and evil in error["message"]
        assert "Access-Control-Allow-Origin" not in answer.headers
    assert _stored(session) == 0
    # Server-to-server calls carry no Origin and are not a browser's to restrict.
    assert client.post(f"/api/v1/events?key={key}", json=_batch()).status_code == 202


def test_origin_null_never_gets_credentials(client, session, seeded_experiment):
    key = _key(session)
    pre = client.options(f"/api/v1/events?key={key}", headers={"Origin": "null", **PREFLIGHT})
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in pre.headers
    got = client.get(f"/api/v1/config?key={key}", headers={"Origin": "null"})
    assert got.status_code == 200 and "Access-Control-Allow-Credentials" not in got.headers
    listed = _key(session, (SHOP,))
    assert client.get(f"/api/v1/config?key={listed}", headers={"Origin": "null"}).status_code == 403


def test_admin_routes_answer_no_cors(client, session):
    secret = create_token(session, "secret").secret
    session.commit()
    answer = client.get("/api/v1/experiments", headers={"Origin": SHOP, "Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200 and "Access-Control-Allow-Origin" not in answer.headers
    pre = client.options("/api/v1/experiments", headers={"Origin": SHOP, **PREFLIGHT})
    assert "Access-Control-Allow-Origin" not in pre.headers


# ---- rate limits -----------------------------------------------------------------------------

@pytest.fixture
def limited(settings, engine):  # type: ignore[no-untyped-def]
    """An app with small limits, so a test can reach them: 3 per address, 5 per key (per minute)."""
    from web import create_app

    def make(**changes):  # type: ignore[no-untyped-def]
        changes = {"ratelimit_address": "3/minute", "ratelimit_key": "5/minute", **changes}
        app = create_app(dataclasses.replace(settings, **changes), engine=engine)
        app.config["TESTING"] = True
        return app.test_client()

    return make


def _post(client, key: str, address: str, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/events?key={key}", json=_batch(), headers=headers,
                       environ_base={"REMOTE_ADDR": address})


def test_too_many_requests_from_one_address_answer_429_with_retry_after(limited, session, seeded_experiment):
    client, key = limited(), _key(session)
    assert [_post(client, key, "203.0.113.7").status_code for _ in range(3)] == [202] * 3
    refused = _post(client, key, "203.0.113.7")
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert error["code"] == "too_many_requests" and "this address" in error["message"] and "3/minute" in error["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Content-Type"] == "application/json"
    # The same address is counted over both routes; another address is not held up.
    assign = client.post(f"/api/v1/assign?key={key}", json={"experiment": "checkout-button", "unit": "u"},
                         environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert assign.status_code == 429
    assert _post(client, key, "198.51.100.1").status_code == 202
    assert _stored(session) == 4


def test_a_public_key_is_limited_over_all_addresses(limited, session, seeded_experiment):
    client, key, other = limited(), _key(session), _key(session)
    answers = [_post(client, key, f"192.0.2.{i}").status_code for i in range(6)]
    assert answers == [202] * 5 + [429]
    assert "this public key" in _post(client, key, "192.0.2.99").get_json()["error"]["message"]
    assert _post(client, other, "192.0.2.99").status_code == 202  # each key has its own count


def test_secret_tokens_are_not_limited(limited, session, seeded_experiment):
    client = limited()
    secret = create_token(session, "secret").secret
    session.commit()
    answers = {_post(client, "", "203.0.113.7", Authorization=f"Bearer {secret}").status_code for _ in range(8)}
    assert answers == {202}


def test_the_client_address_comes_from_trusted_proxies_only(limited, session, seeded_experiment):
    key = _key(session)
    direct = limited()  # no proxy trusted: X-Forwarded-For is whatever the client wrote, ignored
    spoofed = [_post(direct, key, "10.0.0.1", **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(4)]
    assert spoofed[-1] == 429
    proxied = limited(trusted_proxies=1)  # behind one proxy: every visitor has their own count
    answers = [_post(proxied, key, "10.0.0.1", **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code
               for i in range(4)]
    assert answers == [202] * 4


@pytest.mark.parametrize("setting, changes", [
    ("ABTEST_RATELIMIT_ADDRESS", {"ratelimit_address": "lots"}),
    ("ABTEST_RATELIMIT_KEY", {"ratelimit_key": "100 per fortnight"}),
    ("ABTEST_RATELIMIT_URL", {"ratelimit_url": "nosuch://localhost"}),
])
def test_bad_rate_limit_settings_stop_the_app_naming_the_setting(settings, engine, setting, changes):
    from web import create_app

    with pytest.raises(ValidationError) as caught:
        create_app(dataclasses.replace(settings, **changes), engine=engine)
    assert caught.value.field == setting


def test_rate_limit_settings_come_from_the_environment(tmp_path):
    from abtest.config import load_settings

    base = {"ABTEST_INSTANCE_PATH": str(tmp_path), "ABTEST_SECRET_KEY": "k"}
    default = load_settings(base)
    assert (default.ratelimit_address, default.ratelimit_key, default.ratelimit_url, default.trusted_proxies) == \
        ("600/minute", "30000/minute", "memory://", 0)
    chosen = load_settings({**base, "ABTEST_RATELIMIT_ADDRESS": "10/second", "ABTEST_RATELIMIT_KEY": "1000/minute",
                            "ABTEST_RATELIMIT_URL": "redis://cache:6379", "ABTEST_TRUSTED_PROXIES": "2"})
    assert (chosen.ratelimit_address, chosen.ratelimit_key, chosen.ratelimit_url, chosen.trusted_proxies) == \
        ("10/second", "1000/minute", "redis://cache:6379", 2)
    with pytest.raises(ValidationError) as caught:
        load_settings({**base, "ABTEST_TRUSTED_PROXIES": "yes"})
    assert caught.value.field == "ABTEST_TRUSTED_PROXIES"
