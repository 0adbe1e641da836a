"""The app factory, health endpoint, designer login, CSRF and security headers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from abtest.config import Settings
from tests.conftest import csrf_token_from
from web import create_app

VENDOR = Path(__file__).resolve().parents[1] / "web" / "static" / "vendor"


def test_health_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["database"] == "ok"


def test_health_answers_503_when_database_is_unreachable(tmp_path):
    settings = Settings("postgresql+psycopg://nobody@127.0.0.1:1/none", "k", tmp_path)
    app = create_app(settings, engine=sa.create_engine(settings.database_url))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_pages_need_a_login(client):
    response = client.get("/experiments/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert client.get("/").headers["Location"] == "/experiments/"


def test_htmx_requests_are_told_to_navigate_to_login(client):
    response = client.get("/experiments/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_login_logout_round_trip(client, designer):
    page = client.get("/login")
    assert page.status_code == 200
    token = csrf_token_from(page.get_data(as_text=True))
    wrong = client.post("/login", data={"email": designer[0], "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401
    assert "do not match" in wrong.get_data(as_text=True)
    ok = client.post("/login?next=/experiments/", data={"email": designer[0].upper(), "password": designer[1],
                                                       "csrf_token": token})
    assert (ok.status_code, ok.headers["Location"]) == (302, "/experiments/")
    listing = client.get("/experiments/")
    assert listing.status_code == 200
    logout = client.post("/logout", data={"csrf_token": csrf_token_from(listing.get_data(as_text=True))})
    assert logout.status_code == 302
    assert client.get("/experiments/").status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_login_never_redirects_off_site(client, designer, target):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(f"/login?next={target}", data={"email": designer[0], "password": designer[1],
                                                          "csrf_token": token})
    assert response.headers["Location"] == "/experiments/"


def test_forms_without_csrf_token_are_refused(client, designer):
    response = client.post("/login", data={"email": designer[0], "password": designer[1]})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    stale = client.post("/login", data={"email": designer[0], "password": designer[1], "csrf_token": "stale"})
    assert stale.status_code == 400


def test_session_cookie_flags(client, designer):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": designer[0], "password": designer[1], "csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = client.post("/login", base_url="https://localhost",
                         data={"email": designer[0], "password": designer[1], "csrf_token": token})
    assert "Secure" in secure.headers["Set-Cookie"]


def test_security_headers_on_pages_and_a_stricter_policy_on_the_api(client):
    page = client.get("/login")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "HX-Request" in page.headers["Vary"]
    for path in ("/api/v1/openapi.json", "/api/v1/config", "/api/v1/nowhere"):  # 200, 401 and 404 alike
        answer = client.get(path)
        assert answer.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'", path
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert "HX-Request" not in answer.headers.get("Vary", ""), path


def test_logged_in_list(logged_in, seeded_experiment):
    page = logged_in.get("/experiments/").get_data(as_text=True)
    assert "Green checkout button" in page and "status-running" in page
    summary = logged_in.get("/experiments/checkout-button/summary", headers={"HX-Request": "true"})
    assert summary.status_code == 200
    assert "No visitors yet" in summary.get_data(as_text=True)


def test_unknown_page_is_an_html_404(logged_in):
    response = logged_in.get("/nothing/here")
    assert response.status_code == 404
    assert b"<html" in response.data
    assert "<title>Not found · abtest</title>" in response.get_data(as_text=True)


def test_unknown_experiment_is_titled_not_found(logged_in):
    """An unknown key is a domain NotFound: the page says "Not found", not "Not possible"."""
    page = logged_in.get("/experiments/no-such-thing").get_data(as_text=True)
    assert "<title>Not found · abtest</title>" in page and "<h1>Not found</h1>" in page
    assert "no experiment with key &#39;no-such-thing&#39;" in page
    assert "Not possible" not in page


def test_vendored_assets_are_unmodified():
    readme = (VENDOR / "README.md").read_text()
    for name in ("htmx-2.0.11.min.js", "pico-2.1.1.min.css"):
        digest = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
        assert f"`{name}` | `{digest}`" in readme
