"""Overload shedding: an API request that waited too long for a free server thread is answered
503 at once, with Retry-After, instead of being served seconds late (issue 12).

Why: when requests arrive faster than the workers serve them, they queue inside each worker;
served late, every one of them is slow and the queue never drains. The snippet and server-side
clients retry a 503 with the same event ids, so answering at once loses nothing and lets the
queue drain. The wait is measured by the gunicorn worker (:mod:`web.gunicorn_worker`), from the
moment a request was handed to its thread pool to the moment a thread took it; outside gunicorn
(tests, waitress) it is 0 and nothing is shed. Pages are never shed: only ``/api/``.
"""

from __future__ import annotations

import threading

from flask import Flask, current_app, request

from abtest.errors import Overloaded

_waited = threading.local()


def set_queue_wait(seconds: float) -> None:
    """Called by the worker in the thread about to handle a request."""
    _waited.seconds = seconds


def queue_wait() -> float:
    """How long the request this thread handles waited for it, in seconds."""
    return getattr(_waited, "seconds", 0.0)


def _shed() -> None:
    if not request.path.startswith("/api/"):
        return
    limit_ms = current_app.extensions["abtest.settings"].queue_timeout_ms
    waited_ms = queue_wait() * 1000
    if limit_ms and waited_ms > limit_ms:
        current_app.logger.warning("overloaded: %s %s waited %.0f ms for a thread, answered 503",
                                   request.method, request.path, waited_ms)
        raise Overloaded(f"the server is overloaded (this request waited {waited_ms:.0f} ms for it); "
                         "nothing was done: retry in a moment with the same event ids", field=None)


def init_overload(app: Flask) -> None:
    app.before_request(_shed)
