"""Who a study request is from, in HTTP terms: the participant cookie and the reach token.

The rules and the signing are :mod:`abtest.studies.tokens`; this module reads the app's secret,
the cookie's attributes and the 403 page. The cookie is per study (``Path=/s/<key>``, so two
studies in one browser never see each other's), ``HttpOnly`` (no script on any page reads it),
``SameSite=Lax`` (a cross-site form cannot post a step as the participant) and ``Secure`` on
HTTPS; the participant id is only ever taken from it, never from the request.
"""

from __future__ import annotations

from typing import NoReturn

from flask import Response, abort, current_app, make_response, render_template, request, url_for

from abtest.errors import Forbidden
from abtest.models import utcnow
from abtest.studies import tokens
from abtest.studies.definition import StudyDef

COOKIE = "abtest_participant"

TAKEN = ("Already taking part in another browser",
         "This participant link is already in use in another browser. Continue the study in the "
         "browser where you started it; if you cannot, ask the study's organiser for a new link.")
BAD_COOKIE = ("Cannot continue in this browser",
              "This browser's study cookie is not valid (it has expired, was changed, or the server's "
              "key changed). Continue in the browser where you started, or open the study link again "
              "to start over.")
NO_COOKIE = ("Start from the study link",
             "This browser has not joined the study. Open the study link and agree to take part first.")


def _secret() -> str | bytes:
    return current_app.secret_key  # type: ignore[return-value]


def bound_pid(key: str, strict: bool = True) -> str | None:
    """The participant this browser consented as in study ``key``, or None without a cookie.

    A cookie that is forged, expired or another study's answers 403 when ``strict``; the consent
    page is not strict, so a participant can start over there (a new cookie replaces it).
    """
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        return tokens.bound_participant(_secret(), value, key, utcnow())
    except Forbidden:
        if strict:
            refuse(*BAD_COOKIE)
        return None


def required_pid(key: str) -> str:
    """The bound participant, for a step that records something: 403 page without one."""
    return bound_pid(key) or refuse(*NO_COOKIE)


def bind(response: Response, key: str, pid: str) -> Response:
    """Set the cookie that makes this browser participant ``pid`` of study ``key``."""
    value = tokens.bind_participant(_secret(), key, pid, utcnow())
    response.set_cookie(COOKIE, value, max_age=int(tokens.PARTICIPANT_LIFETIME.total_seconds()),
                        path=url_for("studies.consent", key=key), httponly=True, samesite="Lax",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure)
    return response


def refuse(title: str, message: str, study: StudyDef | None = None) -> NoReturn:
    """Stop the request with the runner's 403 page: nothing was recorded."""
    abort(make_response(render_template("studies/message.html", study=study, title=title, message=message,
                                        continue_url=None), 403))


def reach_token(key: str, participant: int, step: int, task: str, time_limit: int | None) -> str:
    """The token the design link carries for this task attempt."""
    return tokens.issue_reach_token(_secret(), key, participant, step, task, utcnow(),
                                    tokens.reach_lifetime(time_limit))


def read_reach_token(key: str, token: str) -> tokens.ReachToken:
    """The verified claims of a token posted to ``/s/<key>/reached`` (Forbidden otherwise)."""
    return tokens.read_reach_token(_secret(), token, key, utcnow())
