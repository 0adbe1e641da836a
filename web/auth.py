"""API authentication: ``Authorization: Bearer <token>``, or ``?key=pk_…`` for the public key.

Secret tokens (``sk_…``) reach the whole API; public keys (``pk_…``) only the snippet's routes.
Missing or unknown token: 401. A public key on an admin route: 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from sqlmodel import Session

from abtest.accounts import find_token
from abtest.errors import Forbidden, Unauthorized
from web import get_engine

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
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate
