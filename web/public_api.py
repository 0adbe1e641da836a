"""What the snippet's public routes (config, assign, events) need beyond a token: CORS that
honours each public key's allowed origins, and rate limits per client address and per key.

CORS. A key with origins (``abtest token create --public --origin https://shop.example``) is
usable only from pages of those origins: the preflight answers with CORS headers for them alone,
and a request from any other ``Origin`` is refused with 403 before the view runs, which also
stops the requests a browser sends without a preflight (a ``text/plain`` beacon, a form). A key
without origins works from any page. The page's origin is echoed with
``Access-Control-Allow-Credentials: true`` because ``navigator.sendBeacon`` always sends in
credentials mode "include", and Chromium silently drops a beacon whose preflight (a JSON beacon
has one) lacks it. Safe here: these routes authenticate by token, never by cookie. ``Origin: null`` (sandboxed frames, file: pages) gets
``*`` and never credentials: "null" names no site, and echoing it with credentials would let
any sandboxed page in.

Rate limits. Public keys are copied from web pages by anyone, so requests with one are counted
per client address (ABTEST_RATELIMIT_ADDRESS) and per key over all addresses
(ABTEST_RATELIMIT_KEY), for both routes together; over the limit the answer is 429 JSON with
Retry-After. Secret tokens are trusted server credentials and not limited. The counters live in
:data:`web.extensions.limiter`'s storage, set up here (``init_app``) once per app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from flask_limiter.util import get_remote_address
from limits import parse_many

from abtest.accounts import token_digest
from abtest.errors import AbtestError, Forbidden, ValidationError
from abtest.origins import origin_allowed
from web.auth import lookup_token
from web.extensions import limiter

F = TypeVar("F", bound=Callable[..., Any])

PUBLIC_ENDPOINTS = frozenset({"api.config", "api.assign_unit", "api.events"})


def _presented_token() -> str:
    """The raw token of the request (``?key=`` or the bearer header), or ""; auth checks it later."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return request.args.get("key") or (value.strip() if scheme.lower() == "bearer" else "")


def _allowed_origins() -> list[str] | None:
    """The presented key's origins; None (any) when the request names no live key: a preflight
    cannot carry the Authorization header, and an unknown key is answered 401 by the route."""
    raw = _presented_token()
    if not raw:
        return None
    token = lookup_token(raw)
    return token.origins if token is not None else None


def _check_origin() -> Response | None:
    if request.endpoint not in PUBLIC_ENDPOINTS:
        return None
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser's cross-origin request: nothing to allow
        return None
    allowed = origin_allowed(origin, _allowed_origins())
    g.cors_origin = origin if allowed else None
    if request.method == "OPTIONS":
        return current_app.response_class(status=204)
    if not allowed:
        raise Forbidden(f"this public key may not be used from {origin}; add the origin to the key's "
                        f"allowed origins (abtest token create --public --origin …)", field="Origin")
    return None


def _public_headers(response: Response) -> Response:
    if request.endpoint not in PUBLIC_ENDPOINTS:
        return response
    if response.status_code == 429 and g.get("retry_after"):
        response.headers["Retry-After"] = str(g.retry_after)
    response.vary.add("Origin")  # the answer depends on it: caches must not mix origins
    origin = g.get("cors_origin")
    if not origin:
        return response
    if origin == "null":
        response.headers["Access-Control-Allow-Origin"] = "*"
    else:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
    return response


# ---- rate limits -----------------------------------------------------------------------------

class RateLimited(AbtestError):
    status = 429
    code = "too_many_requests"


def _settings() -> Any:
    return current_app.extensions["abtest.settings"]


def _per_key() -> str:
    # A digest, so the counters' store (perhaps a shared Redis) never holds a key.
    return token_digest(_presented_token())[:32]


def _enforce(scope: str, limits: str, who: str, what: str) -> None:
    """Count this request against ``limits`` for ``who``; over any of them: 429 with Retry-After."""
    strategy = limiter.limiter  # the storage ABTEST_RATELIMIT_URL names (Flask-Limiter's init_app)
    for item in parse_many(limits):
        if not strategy.hit(item, "abtest-public", scope, who):
            reset = strategy.get_window_stats(item, "abtest-public", scope, who).reset_time
            g.retry_after = max(1, int(reset - time.time()))
            raise RateLimited(f"too many requests {what} (at most {limits}); retry after {g.retry_after} s",
                              field=None)


def public_limits(view: F) -> F:
    """Rate-limit a public route (place it under ``@token_required``, which tells a secret token).

    The address is counted first and a request it refuses is not counted against the key, so one
    busy address cannot use up a whole site's allowance.
    """

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        if limiter.enabled and g.get("token_kind") != "secret":
            settings = _settings()
            _enforce("address", settings.ratelimit_address, get_remote_address(), "from this address")
            _enforce("key", settings.ratelimit_key, _per_key(), "with this public key")
        return view(*args, **kwargs)

    return limited  # type: ignore[return-value]


def _check_limit_setting(name: str, value: str) -> None:
    try:
        if not parse_many(value):
            raise ValueError("empty")
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not a rate limit; write it like 600/minute or 10/second",
                              field=name) from exc


def init_public_api(app: Flask) -> None:
    """Wire CORS and the rate limiter for the public routes into ``app``."""
    settings = app.extensions["abtest.settings"]
    _check_limit_setting("ABTEST_RATELIMIT_ADDRESS", settings.ratelimit_address)
    _check_limit_setting("ABTEST_RATELIMIT_KEY", settings.ratelimit_key)
    app.config["RATELIMIT_STORAGE_URI"] = settings.ratelimit_url
    try:
        limiter.init_app(app)
    except Exception as exc:  # limits' ConfigurationError: unknown scheme, missing driver
        raise ValidationError(f"cannot use {settings.ratelimit_url!r} for rate limits: {exc}",
                              field="ABTEST_RATELIMIT_URL") from exc
    app.before_request(_check_origin)
    app.after_request(_public_headers)
