"""The study's signed values on their own: the reach token the tested site posts and the
participant cookie's value. Pure functions, no Flask, no database."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from abtest.errors import Forbidden
from abtest.studies import tokens
from abtest.studies.runner import Step, token_attempt_running

SECRET = "test-secret"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _forbidden(call, *args):  # type: ignore[no-untyped-def]
    with pytest.raises(Forbidden) as caught:
        call(*args)
    return caught.value


def test_a_reach_token_names_study_participant_step_and_task():
    token = tokens.issue_reach_token(SECRET, "shop-study", 17, 3, "order", NOW)
    claims = tokens.read_reach_token(SECRET, token, "shop-study", NOW + timedelta(minutes=5))
    assert claims == tokens.ReachToken(study="shop-study", participant=17, step=3, task="order",
                                       expires=int((NOW + tokens.DEFAULT_REACH_LIFETIME).timestamp()))
    assert re.fullmatch(r"[A-Za-z0-9_.-]{20,200}", token)  # fits a URL query as is


def test_reach_tokens_expire():
    token = tokens.issue_reach_token(SECRET, "shop-study", 1, 0, "order", NOW, timedelta(minutes=10))
    assert tokens.read_reach_token(SECRET, token, "shop-study", NOW + timedelta(minutes=9, seconds=59)).step == 0
    expired = _forbidden(tokens.read_reach_token, SECRET, token, "shop-study", NOW + timedelta(minutes=10))
    assert expired.field == "token" and "expired" in expired.message and expired.status == 403


def test_lifetime_follows_the_task_time_limit():
    assert tokens.reach_lifetime(None) == timedelta(hours=2)
    assert tokens.reach_lifetime(300) == timedelta(minutes=5) + tokens.REACH_GRACE
    token = tokens.issue_reach_token(SECRET, "s", 1, 0, "t", NOW, tokens.reach_lifetime(60))
    _forbidden(tokens.read_reach_token, SECRET, token, "s", NOW + timedelta(seconds=60) + tokens.REACH_GRACE)


def _tampered(token: str, **changes: object) -> str:
    """The token's payload changed (e.g. another participant) and its signature kept."""
    payload, signature = token.rsplit(".", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{encoded}.{signature}"


@pytest.mark.parametrize("forge", [
    lambda t: _tampered(t, p=18),                  # someone else's participant
    lambda t: _tampered(t, e=2_000_000_000),       # a later expiry
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # a changed signature
    lambda t: tokens.issue_reach_token("another-secret", "shop-study", 17, 3, "order", NOW),
    lambda t: tokens.bind_participant(SECRET, "shop-study", "p-1", NOW),  # the cookie's value
    lambda t: "",
    lambda t: "not-a-token",
])
def test_forged_reach_tokens_are_refused(forge):
    token = tokens.issue_reach_token(SECRET, "shop-study", 17, 3, "order", NOW)
    refused = _forbidden(tokens.read_reach_token, SECRET, forge(token), "shop-study", NOW)
    assert refused.field == "token" and refused.message == "this study token is not valid"


def test_a_reach_token_of_another_study_is_refused():
    token = tokens.issue_reach_token(SECRET, "other-study", 17, 3, "order", NOW)
    refused = _forbidden(tokens.read_reach_token, SECRET, token, "shop-study", NOW)
    assert refused.field == "token" and "another study" in refused.message


def test_the_participant_cookie_binds_one_id_in_one_study():
    value = tokens.bind_participant(SECRET, "shop-study", "panel-7", NOW)
    assert tokens.bound_participant(SECRET, value, "shop-study", NOW + timedelta(days=29)) == "panel-7"
    assert "another study" in _forbidden(tokens.bound_participant, SECRET, value, "other-study", NOW).message
    expired = _forbidden(tokens.bound_participant, SECRET, value, "shop-study", NOW + tokens.PARTICIPANT_LIFETIME)
    assert expired.field == "participant" and "expired" in expired.message
    for forged in (_tampered(value, p="panel-8"),
                   tokens.bind_participant("another-secret", "shop-study", "panel-7", NOW),
                   tokens.issue_reach_token(SECRET, "shop-study", 17, 3, "order", NOW)):
        refused = _forbidden(tokens.bound_participant, SECRET, forged, "shop-study", NOW)
        assert refused.field == "participant" and "not valid" in refused.message


# --- replay: a token's task attempt ends once, and the token with it ----------------------------

PATH = [Step("task", "classic", "order", 0), Step("task", "classic", "contact", 1),
        Step("questionnaire", "classic", "SUS", 2)]
ORDER = tokens.ReachToken(study="shop-study", participant=1, step=0, task="order", expires=0)


def test_a_token_acts_only_while_its_attempt_runs():
    assert token_attempt_running(ORDER, PATH, 0, "running", closed=False) is True
    assert token_attempt_running(ORDER, PATH, 0, "ready", closed=False) is False  # not started: wait
    contact = tokens.ReachToken(study="shop-study", participant=1, step=1, task="contact", expires=0)
    assert token_attempt_running(contact, PATH, 0, "running", closed=False) is False  # not its turn yet


@pytest.mark.parametrize("step, phase, closed", [
    (0, "seq", False),      # ended (reached, "I'm done" or "I gave up"): rating it now
    (1, "ready", False),    # and the participant has moved on to the next task
    (1, "running", False),  # which is running: the old token must not end it
    (0, "running", True),   # left the study
])
def test_a_spent_token_is_refused(step, phase, closed):
    refused = _forbidden(token_attempt_running, ORDER, PATH, step, phase, closed)
    assert refused.field == "token" and "spent" in refused.message


@pytest.mark.parametrize("claims", [
    tokens.ReachToken(study="shop-study", participant=1, step=0, task="contact", expires=0),  # wrong task
    tokens.ReachToken(study="shop-study", participant=1, step=2, task="SUS", expires=0),      # not a task
    tokens.ReachToken(study="shop-study", participant=1, step=9, task="order", expires=0),    # off the path
])
def test_a_token_naming_no_task_attempt_is_refused(claims):
    refused = _forbidden(token_attempt_running, claims, PATH, claims.step if claims.step < 3 else 0, "running", False)
    assert refused.field == "token" and "names no task" in refused.message
