"""Web origins a public key may be used from (CORS): parsed once, compared whole.

An origin is ``scheme://host[:port]`` and nothing else. Both sides of a comparison go through
:func:`normalize_origin`, so ``HTTPS://Shop.Example:443`` and ``https://shop.example`` are the
same origin, while ``https://shop.example.evil.com`` is not ``https://shop.example``: origins are
compared as whole strings, never by prefix.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from abtest.errors import ValidationError

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(text: str, field: str = "origin") -> str:
    """``scheme://host[:port]`` in lower case without a default port, or a ValidationError."""
    raw = text.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not an origin: {exc}", field=field) from exc
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS:
        raise ValidationError(f"{text!r} is not an origin: write it as https://host or http://host[:port]",
                              field=field)
    if not host or parts.username is not None or parts.password is not None:
        raise ValidationError(f"{text!r} is not an origin: it needs a host and no user name", field=field)
    if parts.path not in ("", "/") or parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise ValidationError(f"{text!r} is not an origin: an origin has no path, query or fragment "
                              f"(e.g. {scheme}://{host})", field=field)
    if ":" in host:  # IPv6 literal: urlsplit drops its brackets
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else "")


def normalize_origins(texts: list[str] | tuple[str, ...], field: str = "origin") -> list[str]:
    """Each origin normalised, duplicates dropped, in the order given."""
    return list(dict.fromkeys(normalize_origin(t, field) for t in texts))


def origin_allowed(origin: str, allowed: list[str] | None) -> bool:
    """Whether a request's ``Origin`` header matches one of ``allowed`` (None or empty: any origin).

    ``null`` (sandboxed frames, file: pages) never matches a list: it names no site.
    """
    if not allowed:
        return True
    try:
        return normalize_origin(origin) in allowed
    except ValidationError:
        return False
