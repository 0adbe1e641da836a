"""gunicorn's threaded worker, leaving new connections to an idle worker when it is busy.

Why: stock gthread accepts every connection it can (up to ``worker_connections``, 1,000 by
default), and a kept-alive connection stays with the worker that accepted it. Thirty-two
connections opened at once (a proxy's upstream pool; the ingestion benchmark) were seen split
29 / 3 between two workers: one worker, bound by its GIL, served nine requests in ten while the
other core idled. This worker accepts at once while one of its threads is free; while all are
busy it takes at most one new connection per :data:`BUSY_ACCEPT_INTERVAL_S`, so an idle worker
gets the rest and a connection never waits in the kernel's queue for longer than that when every
worker is busy. (Switching accepting off for as long as all threads were busy starved new
connections for seconds behind kept-alive ones: p99 1.1 s.)
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from web.overload import set_queue_wait

BUSY_ACCEPT_INTERVAL_S = 0.05


class BalancedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` whose accepting pauses for a moment after each connection it takes while busy.

    Written against gunicorn 27's event loop: ``accept`` / ``enqueue_req`` / ``finish_request``
    run on the worker's main thread (no lock needed), and ``run`` asks :meth:`set_accept_enabled`
    to switch accepting back on at every turn of its loop.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0  # requests handed to the thread pool and not finished yet
        self.last_accept = 0.0

    def _may_accept(self) -> bool:
        return (self.in_flight < self.cfg.threads
                or time.monotonic() - self.last_accept >= BUSY_ACCEPT_INTERVAL_S)

    def accept(self, listener: Any) -> None:
        super().accept(listener)
        self.last_accept = time.monotonic()
        if not self._may_accept():
            super().set_accept_enabled(False)

    def enqueue_req(self, conn: Any) -> None:
        self.in_flight += 1
        conn.abtest_queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        # Runs in a pool thread: how long the connection waited for one (web.overload sheds on it).
        set_queue_wait(time.monotonic() - conn.abtest_queued_at)
        try:
            return super().handle(conn)
        finally:
            set_queue_wait(0.0)

    def finish_request(self, conn: Any, fs: Any) -> None:
        self.in_flight -= 1
        super().finish_request(conn, fs)

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self._may_accept())
