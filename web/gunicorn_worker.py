"""gunicorn's threaded worker, measuring how long each request waited for a thread.

The wait (from the moment a request is handed to the worker's thread pool to the moment a thread
takes it) is what :mod:`web.overload` sheds on: an API request that waited too long is answered
503 at once instead of seconds late.

Connections are spread over the workers by the kernel, not here: ``abtest serve`` sets gunicorn's
``reuse_port``, so each worker listens on its own ``SO_REUSEPORT`` socket and the kernel hashes
new connections across them (:func:`web.server._gunicorn`).
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from web.overload import set_queue_wait


class QueueTimedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` that tells the handling thread how long its request waited for it.

    Written against gunicorn 27's event loop: ``enqueue_req`` runs on the worker's main thread
    whenever a request is handed to the pool (new connection, kept-alive one readable again),
    ``handle`` in the pool thread that serves it.
    """

    def enqueue_req(self, conn: Any) -> None:
        conn.abtest_queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        set_queue_wait(time.monotonic() - conn.abtest_queued_at)
        try:
            return super().handle(conn)
        finally:
            set_queue_wait(0.0)
