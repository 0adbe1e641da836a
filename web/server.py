"""Production WSGI serving: gunicorn on POSIX, waitress where gunicorn cannot run (Windows)."""

from __future__ import annotations

import re
import sys
from typing import Any

from abtest.config import Settings


def run(settings: Settings, host: str, port: int, workers: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - gunicorn does not run on Windows
        from waitress import serve

        from web.app import create_app

        serve(create_app(settings), host=host, port=port, threads=4 * workers)
        return
    _gunicorn(settings, host, port, workers).run()


# Address, time, method and path (no query string: it carries ?key=pk_…, ?pid=…), status, size,
# duration, user agent. No Referer: the page a visitor came from may name them (seen: an e-mail).
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
# Paths that name a unit: the erasure request must not leave the id it erases in the log.
_UNIT_PATH = re.compile(r"^(/api/v1/units/).+$", re.DOTALL)


def _private_logger() -> Any:
    from gunicorn.glogging import Logger

    class _PrivateAccessLogger(Logger):  # type: ignore[misc]
        """gunicorn's logger with unit ids in paths replaced by ``…``."""

        def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
            found = super().atoms(resp, req, environ, request_time)
            found["U"] = _UNIT_PATH.sub(r"\1…", found.get("U") or "")
            return found

    return _PrivateAccessLogger


def _gunicorn(settings: Settings, host: str, port: int, workers: int) -> Any:
    from gunicorn.app.base import BaseApplication

    PrivateAccessLogger = _private_logger()

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            # gthread that measures each request's wait for a thread (web.overload sheds on it)
            self.cfg.set("worker_class", "web.gunicorn_worker.QueueTimedThreadWorker")
            # One SO_REUSEPORT socket per worker: the kernel spreads new connections over the
            # workers. With one shared socket, 32 connections opened at once went 29 / 3, and the
            # worker holding 29 (one process, one GIL) did nine tenths of the work while a core idled.
            self.cfg.set("reuse_port", True)
            self.cfg.set("threads", 4)
            if settings.access_log:
                self.cfg.set("accesslog", "-")
                self.cfg.set("access_log_format", ACCESS_LOG_FORMAT)
                self.cfg.set("logger_class", PrivateAccessLogger)
            self.cfg.set("graceful_timeout", 5)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25.1
                # Its default path ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl) is shared by every
                # gunicorn of the user: a second one takes it over, and anything running as the
                # user could resize or stop this server through it.
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            from web.app import create_app

            _warm_up()
            return create_app(settings)

    return _App()


def _warm_up() -> None:
    """Import the numerical libraries now (≈1–2 s) so the first results request does not pay it;
    each worker does this as it starts (the CLI and tests import lazily instead)."""
    import scipy.stats  # noqa: F401
    import statsmodels.stats.proportion  # noqa: F401
