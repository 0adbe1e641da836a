"""Designer logins and API tokens: creation, verification, revocation.

Passwords are hashed with Argon2id (argon2-cffi). Tokens are 256-bit random strings, so a
single SHA-256 is enough to store them safely and lets a request find its token by index.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from abtest.errors import Conflict, NotFound, ValidationError
from abtest.models import ApiToken, User, utcnow
from abtest.origins import normalize_origins

TOKEN_PREFIXES = {"secret": "sk_", "public": "pk_"}
MIN_PASSWORD_LENGTH = 8
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_hasher = PasswordHasher()


def token_digest(raw: str) -> str:
    """What is stored of a token (its SHA-256), and what caches and counters are keyed by."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create_token(session: Session, kind: str = "secret", name: str = "",
                 origins: list[str] | tuple[str, ...] = ()) -> NewToken:
    """A new secret (``sk_…``, admin API) or public (``pk_…``, snippet) token.

    ``origins`` restricts a public key to pages of those web origins (CORS); none: any origin.
    A secret token has no origins: it is never meant to be in a web page.
    """
    if kind not in TOKEN_PREFIXES:
        raise ValidationError(f"{kind!r} is not a token kind; use secret or public", field="kind")
    if origins and kind != "public":
        raise ValidationError("only a public key can be limited to origins; secret tokens are never "
                              "sent from web pages", field="origin")
    raw = TOKEN_PREFIXES[kind] + secrets.token_urlsafe(32)
    row = ApiToken(name=name, kind=kind, prefix=raw[:10], token_hash=token_digest(raw),
                   origins=normalize_origins(origins) or None)
    session.add(row)
    session.flush()
    return NewToken(row, raw)


def find_token(session: Session, raw: str) -> ApiToken | None:
    """The live token matching ``raw``, or None (unknown and revoked look the same to a caller)."""
    if not raw or raw[:3] not in TOKEN_PREFIXES.values():
        return None
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_digest(raw))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(col(ApiToken.id))).all())


def revoke_token(session: Session, prefix: str) -> ApiToken:
    """Revoke the token whose shown prefix (first 10 characters) is ``prefix``."""
    rows = session.exec(select(ApiToken).where(ApiToken.prefix == prefix[:10])).all()
    if not rows:
        raise NotFound(f"no token starts with {prefix!r}", field="token")
    row = rows[0]
    row.revoked_at = row.revoked_at or utcnow()
    session.add(row)
    return row


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"use at least {MIN_PASSWORD_LENGTH} characters", field="password")


def create_user(session: Session, email: str, password: str) -> User:
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise ValidationError(f"{email!r} is not an email address", field="email")
    _check_password(password)
    if session.exec(select(User).where(User.email == email)).first() is not None:
        raise Conflict(f"a user {email} already exists", field="email")
    user = User(email=email, password_hash=_hasher.hash(password))
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        _hasher.hash(password)  # same work either way, so timing does not reveal which emails exist
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.add(user)
    return user


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.id))).all())


def get_user(session: Session, email: str) -> User:
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise NotFound(f"no designer login {email.strip().lower()}", field="email")
    return user


def end_sessions(session: Session, user: User) -> None:
    """Invalidate every session of ``user``: cookies carry the version they were issued with."""
    # Incremented in SQL, so two workers ending sessions at once cannot both write the same number.
    user.session_version = col(User.session_version) + 1  # type: ignore[assignment]
    session.add(user)
    session.flush()


def set_password(session: Session, email: str, password: str) -> User:
    """A new password for ``email``; every session logged in with the old one ends."""
    _check_password(password)
    user = get_user(session, email)
    user.password_hash = _hasher.hash(password)
    end_sessions(session, user)
    return user


def delete_user(session: Session, email: str) -> User:
    """Remove a designer login (the audit log keeps the email as text, so history stays readable)."""
    user = get_user(session, email)
    session.delete(user)
    session.flush()
    return user
