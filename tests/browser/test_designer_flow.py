"""A designer's first session, in headless Chromium against `abtest serve --demo` on 127.0.0.1.

Log in, create an experiment (first with mistakes, shown beside their fields, then fixed), launch
it, open its install page, and read a demo result with its verdict and charts. Screenshots land
in tests/browser/artifacts/ for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from abtest.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.live_server import LiveServer, abtest_env, live_server

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(abtest_env(tmp_path_factory.mktemp("designer")), "--demo", workers=1) as server:
        yield server


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"designer-{name}.png"), full_page=True)


def test_designer_creates_launches_and_reads_results(page, demo):  # type: ignore[no-untyped-def]
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(demo.url + "/experiments/")
    assert "/login" in page.url  # every designer page is behind the login
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/experiments/")
    page.wait_for_selector("#row-checkout-button progress")  # numbers arrive per row through htmx
    shot(page, "1-list")

    page.click("text=New experiment")
    page.fill("#key", "Hero Banner")
    page.fill("#name", "Hero banner copy")
    page.fill("#variants-0-key", "control")
    page.fill("#variants-0-weight", "0.6")
    page.fill("#variants-1-key", "bold")
    page.fill("#variants-1-weight", "0.6")
    page.fill("#metrics-0-name", "signup")
    page.click("button:has-text('Create draft')")
    assert "must match" in page.inner_text("#key-error")
    assert "sum to 1.2" in page.inner_text("#variants-error")
    assert page.get_attribute("#key", "aria-invalid") == "true"
    shot(page, "2-form-errors")

    page.fill("#key", "hero-banner")
    page.fill("#variants-0-weight", "0.5")
    page.fill("#variants-1-weight", "0.5")
    page.click("button:has-text('Create draft')")
    page.wait_for_url("**/experiments/hero-banner")
    assert page.inner_text(".status").lower() == "draft"

    page.click("a:has-text('Launch')")
    page.click("button:has-text('now')")
    page.wait_for_url("**/experiments/hero-banner")
    assert page.inner_text(".status").lower() == "running"

    page.click("a:has-text('Install')")
    page.click("button:has-text('public key')")
    snippet = page.inner_text("main")
    assert "abtest.js" in snippet and "pk_" in snippet and "?abtest_hero-banner=bold" in snippet
    shot(page, "3-install")

    page.goto(demo.url + "/experiments/onboarding-copy/results")
    verdict = page.inner_text(".verdict")
    assert verdict.startswith("short raises signup by") and verdict.endswith("significant.")
    assert page.locator("svg[role=img]").count() >= 2  # forest plot and cumulative chart
    shot(page, "4-results")

    page.set_viewport_size({"width": 400, "height": 800})
    page.goto(demo.url + "/experiments/checkout-button/results")
    assert "always-valid" in page.inner_text("main")
    shot(page, "5-results-phone")
    # The invalid form answers 422 by design; anything else in the console is a fault.
    assert [e for e in console_errors if "status of 422" not in e] == []
    assert page.errors == []
