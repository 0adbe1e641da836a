"""The Flask app (a composition root over :mod:`abtest`): pages, forms, the JSON API, the
participant runner and the charts. The app itself is :func:`web.app.create_app`; importing this
package stays cheap (the ``abtest`` command's entry point, :mod:`web.cli`, lives in it)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``web.create_app`` without importing Flask until it is asked for."""
    if name == "create_app":
        from web.app import create_app

        return create_app
    raise AttributeError(f"module 'web' has no attribute {name!r}")
