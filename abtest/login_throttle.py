"""Throttling failed designer logins, per account and per client address.

Failures are rows in ``login_failures`` (the database every worker shares), so the limit holds
across gunicorn workers and restarts, which an in-process counter would not. A throttled login
is refused before its password is checked, so guessing stops, not just the answer.

The per-address limit is higher than the per-account one because many people can share one
address (an office NAT; every client when the app runs behind a proxy that does not forward it).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from abtest.models import LoginFailure, utcnow

WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 10
ADDRESS_LIMIT = 30


@dataclass(frozen=True, slots=True)
class Throttled:
    """Why a login is refused for now, and for how many more seconds."""

    scope: str  # "account" | "address"
    retry_after: int

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        who = "for this account" if self.scope == "account" else "from your network address"
        return (f"Too many failed logins {who}. Wait {minutes} minute{'s' if minutes != 1 else ''} "
                "and try again; if you forgot the password, an administrator can set a new one with "
                "`abtest user passwd EMAIL`.")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _account(email: str) -> str:
    return _digest(email.strip().lower())


def _wait(session: Session, column: sa.ColumnElement[str], value: str, limit: int, now: datetime) -> int:
    """Seconds until fewer than ``limit`` failures of ``value`` remain in the window (0: none)."""
    recent = session.exec(select(LoginFailure.at).where(column == value, col(LoginFailure.at) > now - WINDOW)
                          .order_by(col(LoginFailure.at).desc()).limit(limit)).all()
    if len(recent) < limit:
        return 0
    # The limit-th newest failure is the one whose expiry brings the count under the limit.
    return max(1, math.ceil((recent[-1] + WINDOW - now).total_seconds()))


def check(session: Session, email: str, address: str, now: datetime | None = None) -> Throttled | None:
    """The throttle that refuses this login attempt right now, or None to let it be checked."""
    now = now or utcnow()
    account_wait = _wait(session, col(LoginFailure.account), _account(email), ACCOUNT_LIMIT, now)
    address_wait = _wait(session, col(LoginFailure.address), _digest(address), ADDRESS_LIMIT, now)
    if not (account_wait or address_wait):
        return None
    scope = "account" if account_wait >= address_wait else "address"
    return Throttled(scope, max(account_wait, address_wait))


def record_failure(session: Session, email: str, address: str, now: datetime | None = None) -> None:
    """Count one failed login, and drop failures that have left the window."""
    now = now or utcnow()
    session.connection().execute(sa.delete(LoginFailure).where(col(LoginFailure.at) <= now - WINDOW))
    session.add(LoginFailure(at=now, account=_account(email), address=_digest(address)))


def forget_account(session: Session, email: str) -> None:
    """After a successful login the account's failures no longer count (its address's still do,
    so one valid login cannot be used to reset a guesser's count)."""
    session.connection().execute(sa.delete(LoginFailure).where(col(LoginFailure.account) == _account(email)))
