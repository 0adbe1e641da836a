"""Production WSGI serving: gunicorn on POSIX, waitress where gunicorn cannot run (Windows)."""

from __future__ import annotations

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


def _gunicorn(settings: Settings, host: str, port: int, workers: int) -> Any:
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 4)
            self.cfg.set("accesslog", "-")
            self.cfg.set("graceful_timeout", 5)

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
