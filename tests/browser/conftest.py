"""Headless Chromium for the snippet tests, and tiny HTTP servers for their pages.

The browser tests need the Debian Chromium at /usr/bin/chromium and the playwright package (its
own browser downloads are not used). Without them the tests skip with the reason, unless
ABTEST_REQUIRE_BROWSER=1, in which case they fail: CI must never pass without having run them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
REQUIRE_BROWSER = os.environ.get("ABTEST_REQUIRE_BROWSER") == "1"
ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "web" / "static" / "abtest.js"
ARTIFACTS = Path(__file__).with_name("artifacts")


def free_port() -> int:
    """A port nobody listens on right now (also what the offline tests point the snippet at)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def end_headers(self) -> None:
        # Every test page load must see the current abtest.js, never a cached copy.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class StaticSite:
    """A directory served over HTTP on 127.0.0.1 (one origin per instance), with abtest.js in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copyfile(SNIPPET, root / "abtest.js")
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def page(self, name: str, html: str) -> str:
        """Write a page and return its URL."""
        (self.root / name).write_text(html, encoding="utf-8")
        return f"{self.url}/{name}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _FakeApiHandler(BaseHTTPRequestHandler):
    server: _FakeApiServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _cors(self) -> None:
        # What the real API must answer for its public endpoints: a sendBeacon POST carries
        # credentials mode "include", so "*" is refused; the origin has to be echoed.
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
        self.send_header("Access-Control-Allow-Credentials", "true")
        self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Vary", "Origin")

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_OPTIONS(self) -> None:  # noqa: N802 - stdlib naming
        self.server.requests.append(("OPTIONS", self.path))
        self._answer(204)

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(("GET", self.path))
        time.sleep(self.server.config_delay)
        config = self.server.config
        self._answer(200, config if isinstance(config, bytes) else json.dumps(config).encode())

    def do_POST(self) -> None:  # noqa: N802
        self.server.requests.append(("POST", self.path))
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.batches.append(body["events"])
        self._answer(202, json.dumps({"accepted": len(body["events"]), "duplicates": 0, "rejected": []}).encode())


class _FakeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    config: dict | bytes
    config_delay: float
    requests: list[tuple[str, str]]
    batches: list[list[dict]]


class FakeApi:
    """A stand-in for /api/v1 (config + events) on its own origin: set ``config``, read ``events``.

    It lets the snippet's behaviour be tested without the Flask app; tests/browser/test_snippet_live.py
    runs the same snippet against the real server.
    """

    def __init__(self) -> None:
        self._server = _FakeApiServer(("127.0.0.1", 0), _FakeApiHandler)
        self._server.config = {"experiments": []}
        self._server.config_delay = 0.0
        self._server.requests = []
        self._server.batches = []
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    config = property(lambda self: self._server.config, lambda self, v: setattr(self._server, "config", v))
    config_delay = property(lambda self: self._server.config_delay,
                            lambda self, v: setattr(self._server, "config_delay", v))
    requests = property(lambda self: self._server.requests)
    batches = property(lambda self: self._server.batches)

    @property
    def events(self) -> list[dict]:
        return [event for batch in self.batches for event in batch]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_until(condition: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> object:
    """Poll ``condition`` until it is truthy (and return it), failing the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def snippet_page(src: str, body: str = "<h1>Shop</h1>", head: str = "", **data: str) -> str:
    """A minimal page embedding the snippet; ``data`` become data-* attributes of its tag."""
    attrs = "".join(f" data-{name}='{value}'" for name, value in data.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>abtest snippet</title>{head}"
            f"<script src='{src}'{attrs}></script></head><body>{body}</body></html>")


def loader_page(src: str, body: str = "<h1>Shop</h1>", head: str = "", key: str = "pk_test", **data: str) -> str:
    """A page with the paste-ready snippet (web.snippet, as README.md shows it) at the top of its
    head, loading abtest.js from ``src``; ``data`` become further data-* attributes of its tag."""
    from web.snippet import paste_snippet

    attrs = "".join(f" data-{name}='{value}'" for name, value in data.items())
    snippet = paste_snippet(src, key).replace(f'<script data-key="{key}">', f'<script data-key="{key}"{attrs}>', 1)
    return (f"<!doctype html><html><head><meta charset='utf-8'>{snippet}<title>abtest loader</title>{head}"
            f"</head><body>{body}</body></html>")


@pytest.fixture(scope="session")
def playwright() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        reason = f"playwright is not installed ({exc})"
    else:
        reason = None if CHROMIUM.exists() else f"{CHROMIUM} is missing (apt-get install chromium)"
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(reason + " (ABTEST_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright):  # type: ignore[no-untyped-def]
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def devices(playwright) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """Playwright's phone, tablet and desktop descriptors (user agent, viewport, touch)."""
    return playwright.devices


@pytest.fixture
def context(browser):  # type: ignore[no-untyped-def]
    """A fresh browser profile: no cookies, no storage, so each test is a new visitor."""
    ctx = browser.new_context()
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):  # type: ignore[no-untyped-def]
    """A page whose uncaught script errors are collected in ``page.errors``."""
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))  # type: ignore[attr-defined]
    return pg


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticSite]:
    served = StaticSite(tmp_path_factory.mktemp("site"))
    yield served
    served.close()


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    yield api
    api.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots land here for a human to look at (the folder is not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
