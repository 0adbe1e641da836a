"""Who may do what: API tokens for ``/api/v1`` and designer logins for the pages.

API: ``Authorization: Bearer <token>``, or ``?key=pk_…`` for the public key. Secret tokens
(``sk_…``) reach the whole API; public keys (``pk_…``) only the snippet's routes. Missing or
unknown token: 401. A public key on an admin route: 403.

Pages: a session login (Argon2id passwords, see ``abtest.accounts``); every designer page is
behind :func:`login_required`, and every form carries a CSRF token (Flask-WTF, set up in
``web.create_app``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from sqlmodel import Session

from abtest.accounts import authenticate, find_token
from abtest.errors import Forbidden, Unauthorized
from abtest.models import User
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


def token_required(public: bool = False) -> Callable[[F], F]:
    """Guard a view: any live token when ``public``, else a secret token only."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            raw = _presented_token()
            if not raw:
                raise Unauthorized("an API token is required (Authorization: Bearer sk_… or ?key=pk_…)",
                                   field="Authorization")
            with Session(get_engine()) as session:
                token = find_token(session, raw)
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


def current_user() -> User | None:
    if "user" not in g:
        user_id = session.get("user_id")
        g.user = None
        if user_id is not None:
            with Session(get_engine()) as db:
                g.user = db.get(User, user_id)
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


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after login would be a phishing tool, and a CR/LF in a
    Location header is no redirect at all (the server refuses to send it)."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(ch < " " or ch == "\x7f" for ch in target)):
        return target
    return url_for("experiments.index")


@designer.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    error = None
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "").strip()
        password = request.form.get("password", "")
        with Session(get_engine(), expire_on_commit=False) as db:
            user = authenticate(db, email, password)
            db.commit()  # a rehashed password (stronger parameters) is kept
        if user is None:
            error = "That email and password do not match a designer login."
        else:
            session.clear()
            session["user_id"] = user.id
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")))
    status = 401 if error else 200
    return render_template("login.html", error=error, email=email), status


@designer.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    session.clear()
    return redirect(url_for("auth.login"))
