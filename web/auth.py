"""Who may do what: API tokens for ``/api/v1`` and designer logins for the pages.

API: ``Authorization: Bearer <token>``, or ``?key=pk_…`` for the public key. Secret tokens
(``sk_…``) reach the whole API; public keys (``pk_…``) only the snippet's routes. Missing or
unknown token: 401. A public key on an admin route: 403.

Pages: a session login (Argon2id passwords, see ``abtest.accounts``); every designer page is
behind :func:`login_required`, and every form carries a CSRF token (Flask-WTF, set up in
``web.create_app``). A session ends when its user logs out or gets a new password (the cookie
carries the user's session version), after ``ABTEST_SESSION_IDLE_MINUTES`` without activity,
and 14 days after its login whatever happens. Failed logins are throttled per account and per
client address (:mod:`abtest.login_throttle`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from sqlmodel import Session, select

from abtest import login_throttle
from abtest.accounts import authenticate, end_sessions, find_token, token_digest
from abtest.errors import Forbidden, Unauthorized
from abtest.models import ApiToken, User
from abtest.store.freshness import cache_for, current_version
from web.extensions import get_engine

F = TypeVar("F", bound=Callable[..., Any])


def _presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("use the header 'Authorization: Bearer <token>'", field="Authorization")
        return value.strip()
    key = request.args.get("key")
    if key is not None and not key.startswith("pk_"):
        raise Unauthorized("only a public key (pk_…) may travel in the URL; send secret tokens in the "
                           "Authorization header", field="key")
    return key


def lookup_token(raw: str) -> ApiToken | None:
    """The live token ``raw`` names, looked up once per request (the public routes' CORS check
    and :func:`token_required` both need it), and read from the database only when the registry
    changed since this process last read it (:mod:`abtest.store.freshness`): a revoked key stops
    working at once in every worker."""
    per_request = g.setdefault("_tokens", {})
    if raw not in per_request:
        engine = get_engine()
        g.registry_version = current_version(engine)  # the events route's ingest reuses it

        def read() -> ApiToken | None:  # a connection and a Session only on a miss: most requests hit the cache
            # Autocommit: one read needs no transaction, and BEGIN and ROLLBACK are a round trip each.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn, \
                    Session(bind=conn) as session:
                return find_token(session, raw)

        per_request[raw] = cache_for(engine, "auth.tokens").get(g.registry_version, token_digest(raw), read)
    return per_request[raw]


def token_required(public: bool = False) -> Callable[[F], F]:
    """Guard a view: any live token when ``public``, else a secret token only."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            raw = _presented_token()
            if not raw:
                raise Unauthorized("an API token is required (Authorization: Bearer sk_… or ?key=pk_…)",
                                   field="Authorization")
            token = lookup_token(raw)
            if token is None:
                raise Unauthorized("unknown or revoked API token", field="Authorization")
            if token.kind != "secret" and not public:
                raise Forbidden("a public key cannot use this route; it needs a secret token (sk_…)",
                                field="Authorization")
            g.token_kind = token.kind
            g.token_label = f"API token {token.prefix}…" + (f" ({token.name})" if token.name else "")
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


# ---- designer login (sessions) -------------------------------------------------------------------

designer = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

# What the session cookie holds for a designer; anything else in it (a study participant's
# progress) is left alone when a designer session ends.
_KEYS = ("user_id", "email", "session_version", "login_at", "seen")
_ENDED = "login_ended"  # why the last session ended, shown once on the login page
# Requests that refresh a page by themselves (the results page's 60 s poll) send this header, so
# an unattended open tab does not keep its session alive.
POLL_HEADER = "X-Abtest-Poll"
# Last activity is written back at most this often, so a burst of requests re-signs the cookie once.
_SEEN_RESOLUTION = 60


def _now() -> float:
    """Seconds since the epoch (one seam, so tests can move the clock)."""
    return time.time()


def _idle_seconds() -> int:
    return 60 * int(current_app.extensions["abtest.settings"].session_idle_minutes)


def _end_session(reason: str | None) -> None:
    for key in _KEYS:
        session.pop(key, None)
    if reason:
        session[_ENDED] = reason


def _session_user() -> User | None:
    """The user this session belongs to, if it is still live (else its designer keys are dropped)."""
    user_id = session.get("user_id")
    if user_id is None:
        return None
    now = _now()
    if "login_at" not in session or "seen" not in session:  # from before sessions carried their times
        _end_session(None)
        return None
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    if now - float(session["login_at"]) > lifetime:
        _end_session("lifetime")
        return None
    if now - float(session["seen"]) > _idle_seconds():
        _end_session("idle")
        return None
    with Session(get_engine()) as db:
        user = db.get(User, user_id)
    # The email guards against a deleted user's id being given to a new one (SQLite reuses ids).
    if user is None or user.session_version != session.get("session_version") or user.email != session.get("email"):
        _end_session(None)
        return None
    if now - float(session["seen"]) >= _SEEN_RESOLUTION and not request.headers.get(POLL_HEADER):
        session["seen"] = int(now)
    return user


def current_user() -> User | None:
    """The logged-in designer, or None: no session, or one that ended (logout, new password,
    idle timeout, 14-day lifetime, deleted login)."""
    if "user" not in g:
        g.user = _session_user()
    return g.user


def actor() -> str:
    """Who is making this request, for the audit log: the API token, or the designer's email."""
    if g.get("token_label"):
        return str(g.token_label)
    user = current_user()
    return user.email if user is not None else ""


def login_required(view: F) -> F:
    """Designer pages: anyone not logged in is sent to the login page, and back afterwards."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            if request.headers.get("HX-Request"):
                # htmx would swap the login page into a fragment; tell it to navigate instead.
                return "", 401, {"HX-Redirect": url_for("auth.login", next=request.full_path)}
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


# What a browser does to a URL before it parses it (WHATWG URL standard): strip leading and
# trailing C0 controls and spaces, drop every tab, CR and LF, read "\\" as "/" (http and https).
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def _as_browser_reads(url: str) -> str:
    url = url.strip(_C0_AND_SPACE)
    for invisible in "\t\r\n":
        url = url.replace(invisible, "")
    return url.replace("\\", "/")


def _safe_next(target: str | None) -> str:
    r"""Where to go after logging in: a path on this site, else the experiment list.

    An open redirect after login would be a phishing tool, and browsers are lenient:
    ``/\t/evil.example`` reaches ``//evil.example`` (another host) once the tab is dropped. So a
    target is refused when a browser would read it differently from how it is written (any
    control character, a backslash), and when it names a scheme or a host.
    """
    fallback = url_for("experiments.index")
    if not target or not target.isprintable() or _as_browser_reads(target) != target:
        return fallback
    if not target.startswith("/") or target.startswith("//"):  # "///host" too: urlsplit misses it
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return fallback
    return target


def _ended_notice() -> str | None:
    reason = session.pop(_ENDED, None)
    if reason == "idle":
        minutes = _idle_seconds() // 60
        span = f"{minutes // 60} hours" if minutes % 60 == 0 and minutes >= 120 else f"{minutes} minutes"
        return f"Your session ended after {span} without activity. Log in again."
    if reason == "lifetime":
        return "Your session ended 14 days after you logged in. Log in again."
    return None


def _demo_login() -> tuple[str, str] | None:
    """The demo's email and password, shown only when the app runs with ``--demo`` and the
    demo login exists (a registry with real work never gets one)."""
    if not current_app.extensions["abtest.settings"].demo:
        return None
    from abtest.demo import DEMO_EMAIL, DEMO_PASSWORD

    with Session(get_engine()) as db:
        exists = db.exec(select(User.id).where(User.email == DEMO_EMAIL)).first() is not None
    return (DEMO_EMAIL, DEMO_PASSWORD) if exists else None


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _login_page(status: int, email: str = "", error: str | None = None, **headers: str) -> Any:
    current_user()  # an ended session says why before the page is drawn
    return render_template("login.html", error=error, email=email, notice=_ended_notice(),
                           demo=_demo_login()), status, headers


@designer.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return _login_page(200)
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    address = _client_address()
    with Session(get_engine(), expire_on_commit=False) as db:
        throttled = login_throttle.check(db, email, address)
        if throttled is not None:
            log.warning("login refused for %r from %s: too many failures (%s), retry in %d s",
                        email, address, throttled.scope, throttled.retry_after)
            return _login_page(429, email, throttled.message, **{"Retry-After": str(throttled.retry_after)})
        user = authenticate(db, email, password)
        if user is None:
            login_throttle.record_failure(db, email, address)
        else:
            login_throttle.forget_account(db, email)
        db.commit()  # the failure counted; a rehashed password (stronger parameters) kept
    if user is None:
        log.warning("failed login for %r from %s", email, address)
        return _login_page(401, email, "That email and password do not match a designer login.")
    session.clear()
    now = int(_now())
    session.update(user_id=user.id, email=user.email, session_version=user.session_version,
                   login_at=now, seen=now)
    session.permanent = True
    return redirect(_safe_next(request.args.get("next")))


@designer.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    """End this session and every other one of the same user (a copied cookie dies too)."""
    user = current_user()
    if user is not None:
        with Session(get_engine()) as db:
            row = db.get(User, user.id)
            if row is not None:
                end_sessions(db, row)
                db.commit()
    _end_session(None)
    return redirect(url_for("auth.login"))
