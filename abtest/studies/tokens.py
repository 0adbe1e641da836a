"""What proves a study request comes from the participant: two signed values, one per purpose.

* The **participant cookie** binds a participant id to the browser that consented, so knowing the
  id (it is on panel links) is not enough to act as that participant in the runner.
* The **reach token** goes to the tested site instead of the participant id and is what
  ``abtest-study.js`` posts to ``/s/<key>/reached``. It names the study, the participant's row, the
  step (which task attempt) and that step's task, and expires. The step is its nonce: each step
  ends at most once (:func:`abtest.studies.runner.reached` refuses a token whose step has ended),
  so a token can end a task once and never again, without a table of spent tokens to keep and
  erase.

Both are signed with the app's secret (itsdangerous, HMAC-SHA1 over the salted key) under their own
salt, so a value made for one purpose is refused for the other. Expiry is checked here against the
``now`` passed in, so the rules are pure and testable without waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from abtest.errors import Forbidden

REACH_SALT = "abtest.study.reach-token"
PARTICIPANT_SALT = "abtest.study.participant-cookie"
# A reach token lives as long as its task may run, plus a margin for the last report in flight;
# a task without a time limit gets two hours.
DEFAULT_REACH_LIFETIME = timedelta(hours=2)
REACH_GRACE = timedelta(minutes=5)
PARTICIPANT_LIFETIME = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ReachToken:
    study: str
    participant: int  # the study_participants row id (the panel's id stays off the tested site)
    step: int
    task: str
    expires: int  # Unix seconds


def reach_lifetime(time_limit: int | None) -> timedelta:
    """How long a reach token stays valid: the task's time limit plus a grace, or two hours."""
    if time_limit is None:
        return DEFAULT_REACH_LIFETIME
    return timedelta(seconds=time_limit) + REACH_GRACE


def issue_reach_token(secret: str | bytes, study: str, participant: int, step: int, task: str,
                      now: datetime, lifetime: timedelta = DEFAULT_REACH_LIFETIME) -> str:
    """A token letting the tested site report pages for this one task attempt until ``now + lifetime``."""
    payload = {"s": study, "p": participant, "n": step, "t": task, "e": int((now + lifetime).timestamp())}
    return _serializer(secret, REACH_SALT).dumps(payload)


def read_reach_token(secret: str | bytes, token: str, study: str, now: datetime) -> ReachToken:
    """The token's claims, if it is ours, unexpired and for ``study``; else Forbidden (field ``token``)."""
    payload = _load(secret, REACH_SALT, token, "token")
    try:
        claims = ReachToken(study=_typed(payload, "s", str), participant=_typed(payload, "p", int),
                            step=_typed(payload, "n", int), task=_typed(payload, "t", str),
                            expires=_typed(payload, "e", int))
    except (KeyError, TypeError):
        raise _invalid("token") from None
    _check(claims.study, claims.expires, study, now, "token",
           "this study token has expired; open the website again from the study tab")
    return claims


def bind_participant(secret: str | bytes, study: str, pid: str, now: datetime,
                     lifetime: timedelta = PARTICIPANT_LIFETIME) -> str:
    """The participant cookie's value: ``pid`` in ``study``, valid until ``now + lifetime``."""
    payload = {"s": study, "p": pid, "e": int((now + lifetime).timestamp())}
    return _serializer(secret, PARTICIPANT_SALT).dumps(payload)


def bound_participant(secret: str | bytes, value: str, study: str, now: datetime) -> str:
    """The participant id a cookie value binds in ``study``; Forbidden (field ``participant``) when
    it was not signed by us, is for another study or has expired."""
    payload = _load(secret, PARTICIPANT_SALT, value, "participant")
    try:
        owner, pid, expires = _typed(payload, "s", str), _typed(payload, "p", str), _typed(payload, "e", int)
    except (KeyError, TypeError):
        raise _invalid("participant") from None
    _check(owner, expires, study, now, "participant", "this browser's study cookie has expired")
    return pid


def _serializer(secret: str | bytes, salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=salt)


def _load(secret: str | bytes, salt: str, value: str, field: str) -> Mapping[str, Any]:
    try:
        payload = _serializer(secret, salt).loads(value)
    except BadSignature:
        raise _invalid(field) from None
    if not isinstance(payload, dict):
        raise _invalid(field)
    return payload


def _invalid(field: str) -> Forbidden:
    """Forged, altered or signed with another secret: the same words, whatever the cause."""
    what = "this study token" if field == "token" else "this browser's study cookie"
    return Forbidden(f"{what} is not valid", field=field)


def _typed(payload: Mapping[str, Any], name: str, kind: type) -> Any:
    value = payload[name]
    # bool is an int in Python; a signed payload never holds one, but be exact anyway.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(name)
    return value


def _check(owner: str, expires: int, study: str, now: datetime, field: str, expired: str) -> None:
    if owner != study:
        raise Forbidden("this was issued for another study", field=field)
    if now.timestamp() >= expires:
        raise Forbidden(expired, field=field)
