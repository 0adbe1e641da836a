"""A designer's first session, in headless Chromium against `abtest serve --demo` on 127.0.0.1.

Log in, create an experiment (first with mistakes, shown beside their fields, then fixed), launch
it, open its install page and paste its snippet into a site page (which then runs the experiment),
and read a demo result with its verdict and charts. Then define a
two-design usability study through its form the same way: a mistake shows beside its field (as
you type, and after Create), the fix saves it, and it appears in the list. Screenshots land in
tests/browser/artifacts/ for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from abtest.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.live_server import LiveServer, abtest_env, live_server
from web.snippet import paste_snippet

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(abtest_env(tmp_path_factory.mktemp("designer")), "--demo", workers=1) as server:
        yield server


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"designer-{name}.png"), full_page=True)


def test_designer_creates_launches_and_reads_results(page, demo, site):  # type: ignore[no-untyped-def]
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
    assert "lowercase letters, digits and dashes" in page.inner_text("#key-error")
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
    # What the designer copies is the README's snippet with this server and the new key, and works
    # when pasted into a page of another site.
    pasted = page.inner_text("#snippet")
    key = page.inner_text("code.key")
    assert pasted == paste_snippet(f"{demo.url}/static/abtest.js", key)
    shop = site.page("pasted.html", f"<!doctype html><html><head>{pasted}</head><body><h1>Hero</h1></body></html>")
    visitor = page.context.new_page()
    visitor.goto(shop)
    assert visitor.evaluate("abtest.ready")["hero-banner"] in {"control", "bold"}
    assert visitor.evaluate("document.documentElement.dataset.abtestHeroBanner") in {"control", "bold"}
    visitor.close()

    page.goto(demo.url + "/experiments/onboarding-copy/results")
    verdict = page.inner_text(".verdict")
    assert verdict.startswith("Significant: short raises signup by")
    assert page.locator("svg[role=img]").count() >= 2  # forest plot and cumulative chart
    shot(page, "4-results")

    page.set_viewport_size({"width": 400, "height": 800})
    page.goto(demo.url + "/experiments/checkout-button/results")
    assert "always-valid" in page.inner_text("main")
    shot(page, "5-results-phone")
    # The invalid form answers 422 by design; anything else in the console is a fault.
    assert [e for e in console_errors if "status of 422" not in e] == []
    assert page.errors == []


def test_designer_creates_a_two_design_study_through_the_form(page, demo):  # type: ignore[no-untyped-def]
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(demo.url + "/login")
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/experiments/")

    page.click("text=New study")
    page.wait_for_url("**/studies/new")
    page.fill("#key", "signup-study")
    page.fill("#name", "Sign-up form study")
    page.fill("#designs-0-key", "long")
    page.fill("#designs-0-url", "https://example.com/signup")
    page.fill("#designs-1-key", "short")
    page.fill("#designs-1-url", "signup-v2")  # neither a full URL nor a path
    page.fill("#tasks-0-key", "sign-up")
    page.fill("#tasks-0-prompt", "Create an account with your work e-mail.")
    page.fill("#tasks-0-time_limit", "240")
    page.check("#questionnaire-NPS")
    # Live validation (htmx) puts the message beside the field while the designer types.
    page.wait_for_function("document.querySelector('#designs-1-url-error').textContent.includes('http')")
    page.click("button:has-text('Create draft study')")
    page.wait_for_selector("#form-problems.problems")
    assert "must be an http(s):// URL or a path starting with /" in page.inner_text("#designs-1-url-error")
    assert page.get_attribute("#designs-1-url", "aria-invalid") == "true"
    assert page.input_value("#tasks-0-prompt") == "Create an account with your work e-mail."  # nothing lost
    assert page.is_checked("#questionnaire-NPS")
    shot(page, "study-1-error")

    page.fill("#designs-1-url", "/signup-v2")
    page.click("button:has-text('Create draft study')")
    page.wait_for_url("**/experiments/signup-study/results")
    assert "Created the study" in page.inner_text("body")
    shot(page, "study-2-created")

    page.goto(demo.url + "/experiments/")
    row = page.inner_text("#row-signup-study")
    assert "Sign-up form study" in row and "usability study" in row and "draft" in row.lower()
    shot(page, "study-3-list")

    # The demo study's results compare NPS between its two designs like every other metric.
    page.goto(demo.url + "/experiments/checkout-study/results")
    nps = page.locator("#metric-NPS")
    assert "one-page vs current" in nps.inner_text() and "difference of two independent NPS" in nps.inner_text()
    nps.screenshot(path=str(ARTIFACTS / "designer-study-4-nps.png"))
    assert [e for e in console_errors if "status of 422" not in e] == []  # the refused Create answers 422


# The forms validate as you type (hx-post on the form) and their row buttons (Remove, + Add) post
# through the same queue. With the form's requests as "queue last", a validation that arrived
# while a Remove waited behind another validation emptied the queue: the click was lost (a
# designer typing and clicking Remove within the 600 ms debounce; CI hit it in the study form).
CLICK_BETWEEN_VALIDATIONS = """() => {
  const form = document.getElementById('definition-form');
  htmx.trigger(form, 'change');              // a validation in flight
  document.getElementById('remove-variant-1').click();   // queued behind it
  htmx.trigger(form, 'change');              // another validation, queued after the click
}"""


def test_a_row_button_clicked_while_the_form_validates_is_not_lost(page, demo):  # type: ignore[no-untyped-def]
    page.goto(demo.url + "/login")
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/experiments/")
    page.goto(demo.url + "/experiments/new")
    page.fill("#variants-1-key", "bold")
    assert page.is_visible("#variants-1-key")
    page.evaluate(CLICK_BETWEEN_VALIDATIONS)
    page.wait_for_function("() => !document.getElementById('variants-1-key')", timeout=10_000)
    assert page.is_visible("#variants-0-key") and page.errors == []
