"""Designer logins and sessions: no open redirect after login, throttled guessing, sessions that
end at logout, at a new password, after idle time and after 14 days, and the demo login shown
only in demo mode."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from abtest import login_throttle
from abtest.accounts import create_user, delete_user, set_password
from abtest.config import Settings, load_settings
from abtest.errors import ValidationError
from abtest.models import LoginFailure, utcnow
from tests.conftest import DESIGNER, csrf_token_from
from web import auth, create_app

HOUR = 3600


def log_in(client, email: str = DESIGNER[0], password: str = DESIGNER[1], **kwargs):  # type: ignore[no-untyped-def]
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token}, **kwargs)


def logout(client):  # type: ignore[no-untyped-def]
    page = client.get("/experiments/")
    return client.post("/logout", data={"csrf_token": csrf_token_from(page.get_data(as_text=True))})


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):  # type: ignore[no-untyped-def]
    """Argon2 with its smallest cost: these tests count logins, and the real cost (≈0.5 s a
    login on this machine) would make each throttle test take many seconds."""
    from argon2 import PasswordHasher

    from abtest import accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    """The sessions' clock, moved by hand: ``clock.now += 8 * HOUR``."""

    class Clock:
        now = 1_900_000_000.0

    monkeypatch.setattr(auth, "_now", lambda: Clock.now)
    return Clock


def is_logged_in(client) -> bool:  # type: ignore[no-untyped-def]
    response = client.get("/experiments/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


# ---- open redirect ------------------------------------------------------------------------------

BYPASSES = [
    "https://evil.example/", "http:evil.example", "https:/evil.example", "//evil.example/x",
    "///evil.example", "////evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
    "\\/evil.example", "/\t/evil.example", "/\r\n/evil.example", "/\n/evil.example", "/\r/evil.example",
    "\t//evil.example", " //evil.example", "\x00//evil.example", "/\x00/evil.example", "/\x7f/evil.example",
    "/\x0b/evil.example", "/\x0c/evil.example", "/\u2028/evil.example", "/\u00a0/evil.example",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>",
    "evil.example", "experiments/", "//evil.example@localhost/", "/ /evil.example ", "",
]


@pytest.fixture(scope="module")
def plain_app(sqlite_engine, tmp_path_factory):  # type: ignore[no-untyped-def]
    """An app for checks that store nothing (run once, not once per database)."""
    return create_app(Settings("sqlite://", "k", tmp_path_factory.mktemp("inst")), engine=sqlite_engine)


@pytest.mark.parametrize("target", BYPASSES)
def test_next_never_leaves_the_site(plain_app, target):
    with plain_app.test_request_context("/login"):
        assert auth._safe_next(target) == "/experiments/"


@pytest.mark.parametrize("target", ["/experiments/", "/experiments/checkout-button/results?by=device",
                                    "/experiments/?q=a%2F%2Fb&status=running", "/experiments/x?next=//evil.example",
                                    "/s/usability-checkout/results"])
def test_next_keeps_paths_on_this_site(plain_app, target):
    with plain_app.test_request_context("/login"):
        assert auth._safe_next(target) == target


def test_login_with_a_tab_in_next_stays_on_the_site(client, designer):
    """The reported bypass: ?next=/%09/evil.example was sent on as /<TAB>/evil.example, which a
    browser reads as //evil.example."""
    response = log_in(client, query_string={"next": "/\t/evil.example"})
    assert (response.status_code, response.headers["Location"]) == (302, "/experiments/")
    crlf = log_in(client, query_string={"next": "/\r\n/evil.example"})  # used to be a 500
    assert (crlf.status_code, crlf.headers["Location"]) == (302, "/experiments/")


# ---- throttling -----------------------------------------------------------------------------------


def test_ten_failures_throttle_the_account_even_for_the_right_password(client, designer, caplog):
    caplog.set_level(logging.WARNING, logger="web.auth")
    for _ in range(login_throttle.ACCOUNT_LIMIT):
        assert log_in(client, password="wrong guess 1").status_code == 401
    refused = log_in(client)  # the right password, but guessing has to stop first
    assert refused.status_code == 429
    retry = int(refused.headers["Retry-After"])
    assert 14 * 60 < retry <= 15 * 60
    page = refused.get_data(as_text=True)
    assert "Too many failed logins for this account" in page and "Wait 15 minutes" in page
    assert not is_logged_in(client)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("failed login for 'designer@example.com'" in w for w in warnings) == login_throttle.ACCOUNT_LIMIT
    assert any("too many failures (account)" in w for w in warnings)
    assert not any("wrong guess" in w or DESIGNER[1] in w for w in warnings)


def test_failures_from_one_address_throttle_every_account(client, designer, session):
    for i in range(login_throttle.ADDRESS_LIMIT):
        login_throttle.record_failure(session, f"guess{i}@example.com", "127.0.0.1")
    session.commit()
    refused = log_in(client)
    assert refused.status_code == 429
    assert "from your network address" in refused.get_data(as_text=True)
    elsewhere = log_in(client, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert elsewhere.status_code == 302


def test_the_count_is_shared_by_every_worker(settings, engine, designer):
    """Two app instances (two gunicorn workers) see one count: it lives in the database."""
    first, second = (create_app(settings, engine=engine).test_client() for _ in range(2))
    for i in range(login_throttle.ACCOUNT_LIMIT):
        assert log_in(first if i % 2 else second, password="wrong").status_code == 401
    assert log_in(first).status_code == 429 and log_in(second).status_code == 429


def test_retry_after_counts_to_when_the_window_frees_a_try(session):
    start = utcnow()
    for minute in range(login_throttle.ACCOUNT_LIMIT):
        login_throttle.record_failure(session, "Ana@example.com", f"10.0.0.{minute}", now=start + timedelta(minutes=minute))
    later = start + timedelta(minutes=10)
    throttled = login_throttle.check(session, "ana@example.com ", "10.1.1.1", now=later)
    assert throttled is not None and throttled.scope == "account"
    assert throttled.retry_after == 5 * 60  # the first failure leaves the 15-minute window then
    assert login_throttle.check(session, "ana@example.com", "10.1.1.1", now=start + timedelta(minutes=15, seconds=1)) is None


def test_success_forgets_the_accounts_failures_and_old_ones_are_pruned(client, designer, session):
    for _ in range(login_throttle.ACCOUNT_LIMIT - 1):
        log_in(client, password="wrong")
    assert log_in(client).status_code == 302
    logout(client)
    assert log_in(client, password="wrong").status_code == 401
    assert log_in(client).status_code == 302  # the count started again at the success
    login_throttle.record_failure(session, "x@example.com", "198.51.100.1", now=utcnow() + 2 * login_throttle.WINDOW)
    session.commit()
    assert len(session.exec(select(LoginFailure)).all()) == 1  # only the row just written is left


def test_stored_failures_hold_no_readable_email_or_address(client, designer, session):
    log_in(client, password="wrong")
    row = session.exec(select(LoginFailure)).one()
    assert "designer" not in row.account and "127.0.0.1" not in row.address
    assert len(row.account) == len(row.address) == 64


# ---- session versions ---------------------------------------------------------------------------


def test_a_copied_cookie_dies_at_logout(app, client, designer):
    assert log_in(client).status_code == 302
    stolen = client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert is_logged_in(thief)
    assert logout(client).status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    response = replay.get("/experiments/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert not is_logged_in(thief)


def test_a_new_password_ends_every_session(client, designer, session):
    log_in(client)
    assert is_logged_in(client)
    set_password(session, DESIGNER[0], "a brand new passphrase")
    session.commit()
    assert not is_logged_in(client)
    assert log_in(client, password="a brand new passphrase").status_code == 302


def test_a_deleted_login_cannot_come_back_through_a_reused_id(app, client, designer, session):
    log_in(client)
    old = client.get_cookie("session").value
    delete_user(session, DESIGNER[0])
    session.commit()
    create_user(session, "newcomer@example.com", "another long passphrase")  # SQLite reuses the id
    session.commit()
    replay = app.test_client()
    replay.set_cookie("session", old)
    assert not is_logged_in(replay)


# ---- idle time and lifetime ---------------------------------------------------------------------


def test_eight_idle_hours_end_a_session(client, designer, clock):
    log_in(client)
    clock.now += 8 * HOUR - 60
    assert is_logged_in(client)  # use keeps it alive …
    clock.now += 8 * HOUR - 60
    assert is_logged_in(client)
    clock.now += 8 * HOUR + 1  # … and 8 hours without use end it
    response = client.get("/experiments/")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session ended after 8 hours without activity" in page
    assert "without activity" not in client.get("/login").get_data(as_text=True)  # said once


def test_the_results_poll_does_not_count_as_use(client, designer, clock):
    log_in(client)
    clock.now += 7 * HOUR
    polled = client.get("/experiments/", headers={auth.POLL_HEADER: "1"})
    assert polled.status_code == 200
    clock.now += 2 * HOUR
    assert not is_logged_in(client)


def test_the_idle_time_is_a_setting(settings, engine, designer, clock):
    client = create_app(replace(settings, session_idle_minutes=30), engine=engine).test_client()
    log_in(client)
    clock.now += 29 * 60
    assert is_logged_in(client)
    clock.now += 31 * 60
    assert not is_logged_in(client)
    assert load_settings({"ABTEST_SESSION_IDLE_MINUTES": "30", "ABTEST_SECRET_KEY": "k",
                          "ABTEST_INSTANCE_PATH": str(settings.instance_path)}).session_idle_minutes == 30
    for bad in ("0", "-5", "eight hours"):
        with pytest.raises(ValidationError) as error:
            load_settings({"ABTEST_SESSION_IDLE_MINUTES": bad, "ABTEST_SECRET_KEY": "k",
                           "ABTEST_INSTANCE_PATH": str(settings.instance_path)})
        assert error.value.field == "ABTEST_SESSION_IDLE_MINUTES"


def test_fourteen_days_end_a_session_however_busy(client, designer, clock):
    log_in(client)
    for _ in range(14 * 24 // 7):  # used every 7 hours for 14 days
        clock.now += 7 * HOUR
        assert is_logged_in(client)
    clock.now += 7 * HOUR
    response = client.get("/experiments/")
    assert response.status_code == 302
    assert "14 days after you logged in" in client.get(response.headers["Location"]).get_data(as_text=True)


# ---- the demo login ------------------------------------------------------------------------------


def demo_page(settings, engine, demo: bool) -> str:  # type: ignore[no-untyped-def]
    client = create_app(replace(settings, demo=demo), engine=engine).test_client()
    return client.get("/login").get_data(as_text=True)


def test_demo_mode_shows_the_demo_login(settings, engine):
    from abtest.demo import DEMO_EMAIL, DEMO_PASSWORD

    assert DEMO_EMAIL not in demo_page(settings, engine, demo=True)  # no demo login in this registry
    with Session(engine) as session:
        create_user(session, DEMO_EMAIL, DEMO_PASSWORD)
        session.commit()
    page = demo_page(settings, engine, demo=True)
    assert DEMO_EMAIL in page and DEMO_PASSWORD in page
    outside = demo_page(settings, engine, demo=False)
    assert DEMO_EMAIL not in outside and DEMO_PASSWORD not in outside


def test_an_ended_session_says_why_on_a_direct_visit_to_the_login_page(client, designer, clock):
    log_in(client)
    clock.now += 9 * HOUR
    assert "ended after 8 hours without activity" in client.get("/login").get_data(as_text=True)


def test_a_cookie_without_session_times_is_not_a_login(app, designer, session):
    """A cookie signed before sessions carried their login and last-use times (or forged with the
    key) holding only a user id does not log anyone in."""
    from abtest.accounts import get_user

    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie.update(user_id=get_user(session, DESIGNER[0]).id, email=DESIGNER[0], session_version=0)
    assert not is_logged_in(client)


def test_the_results_page_marks_its_poll(logged_in, seeded_experiment):
    page = logged_in.get("/experiments/checkout-button/results").get_data(as_text=True)
    assert f"hx-headers='{{\"{auth.POLL_HEADER}\": \"1\"}}' hx-disinherit=\"hx-headers\"" in page  # Refresh is use
