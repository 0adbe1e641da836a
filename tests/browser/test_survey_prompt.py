"""In-product surveys in a real browser (issue 17): a visitor of a site on another origin, with the
paste-ready snippet, is asked by abtest-survey.js after the survey's delay, answers, and is not
asked again; a dismissed prompt stays dismissed; a visitor outside the share never sees it; and
the answer appears in the survey's results, in the visitor's variant of the linked experiment.

The API and the snippet files come from the real Flask app on 127.0.0.1 (its own port), the page
from the static site (another origin), the visitor id from a cookie set before the visit so the
test knows who is in the sample (the snippet keeps a cookie id it finds)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from abtest.assignment import bucket
from tests.live_server import app_thread

from .conftest import loader_page, wait_until

pytestmark = pytest.mark.browser

SHARE = 0.5
FILES = {
    "shop": """
key = "shop"
name = "Shorter checkout"
status = "running"
[[variants]]
key = "control"
weight = 0.5
[[variants]]
key = "short"
weight = 0.5
[[metrics]]
name = "purchase"
type = "conversion"
""",
    "shop-csat": f"""
kind = "survey"
key = "shop-csat"
name = "Checkout satisfaction"
status = "running"
experiment = "shop"
pages = ["/survey-*"]
show = "delay"
delay = 1
share = {SHARE}
title = "Quick question"
[[questions]]
key = "csat"
type = "CSAT"
text = "How satisfied are you with checkout?"
[[questions]]
key = "better"
type = "text"
text = "What could we do better?"
""",
    "shop-thanks": """
kind = "survey"
key = "shop-thanks"
name = "After the purchase"
status = "running"
pages = ["/thanks-*"]
show = "event"
event = "purchase"
delay = 0
[[questions]]
key = "nps"
type = "NPS"
""",
}
HOST = 'div[data-abtest-survey="shop-csat"]'


@dataclass
class Server:
    url: str
    key: str
    database: Path

    def events(self, unit: str) -> list[tuple[str, str | None, str | None, str | None, str | None]]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            return db.execute("""SELECT e.type, e.variant, e.event, e.task, e.answers FROM events e
                                 JOIN experiments x ON x.id = e.experiment_id
                                 WHERE e.unit = ? AND x.key = 'shop-csat' ORDER BY e.id""", (unit,)).fetchall()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with app_thread(tmp_path_factory.mktemp("surveys"), FILES, "survey-tests") as (url, key, database):
        yield Server(url, key, database)


def visitor(inside: bool, n: int = 0) -> str:
    """A visitor id inside (or outside) the survey's sample, by the survey's own hash."""
    found = (f"survey-visitor-{i}" for i in range(10_000) if (bucket("shop-csat", f"survey-visitor-{i}") < SHARE) == inside)
    for _ in range(n):
        next(found)
    return next(found)


def open_shop(page, site, server, unit: str, name: str = "survey-checkout.html", head: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    url = site.page(name, loader_page(f"{server.url}/static/abtest.js", "<h1>Checkout</h1><button>Pay</button>",
                                      head=head, key=server.key))
    page.context.add_cookies([{"name": "abtest_id", "value": unit, "url": url}])
    page.goto(url)
    page.evaluate("abtest.ready")
    return requested


def test_a_visitor_is_asked_after_the_delay_answers_and_is_not_asked_again(page, site, server):  # type: ignore[no-untyped-def]
    unit = visitor(inside=True)
    requested = open_shop(page, site, server, unit)
    assert f"{server.url}/static/abtest-survey.js" in requested
    variant = page.evaluate("abtest.variant('shop')")
    assert page.locator(HOST).count() == 0  # not before its one-second delay
    page.wait_for_selector(HOST, state="attached", timeout=5000)
    dialog = page.locator(f"{HOST} [role=dialog]")
    assert dialog.get_attribute("aria-modal") == "false"
    assert "How satisfied are you with checkout?" in dialog.inner_text()
    page.locator(f'{HOST} label:has(input[name="csat"][value="4"])').click()
    page.locator(f"{HOST} textarea").fill("Show the delivery date sooner")
    page.locator(f"{HOST} form button[type=submit]").click()
    assert page.locator(f"{HOST} p.thanks").inner_text() == "Thank you!"

    rows = wait_until(lambda: [r for r in server.events(unit) if r[0] == "response"] if len(
        [r for r in server.events(unit) if r[0] == "response"]) == 2 else [], timeout=8, what="both answers stored")
    assert {(r[3], r[4]) for r in rows} == {("csat", "[4]"), ("better", '["Show the delivery date sooner"]')}
    assert {r[1] for r in server.events(unit)} == {variant}  # recorded with the visitor's variant of `shop`
    assert ("survey", variant, "shown") in [r[:3] for r in server.events(unit)]

    page.reload()
    page.evaluate("abtest.ready")
    page.wait_for_timeout(2000)
    assert page.locator(HOST).count() == 0  # asked once
    assert page.errors == []

    from abtest.db import make_engine
    from abtest.pipeline import analyze

    engine = make_engine(f"sqlite:///{server.database}")
    try:
        report = analyze(engine, "shop-csat")
    finally:
        engine.dispose()
    [csat] = [q for q in report.details.questions if q["key"] == "csat"]
    assert csat["counts"][variant] == [0, 0, 0, 1, 0]
    [better] = [q for q in report.details.questions if q["key"] == "better"]
    assert better["answers"][variant] == ["Show the delivery date sooner"]


def test_a_dismissed_prompt_stays_dismissed(page, site, server):  # type: ignore[no-untyped-def]
    unit = visitor(inside=True, n=1)
    open_shop(page, site, server, unit)
    page.wait_for_selector(HOST, state="attached", timeout=5000)
    page.locator(f'{HOST} button[aria-label="Close survey"]').click()
    assert page.locator(HOST).count() == 0
    wait_until(lambda: any(r[2] == "dismissed" for r in server.events(unit)), timeout=8, what="the dismissal stored")
    page.goto(site.page("survey-other.html", loader_page(f"{server.url}/static/abtest.js", key=server.key)))
    page.evaluate("abtest.ready")
    page.wait_for_timeout(2000)
    assert page.locator(HOST).count() == 0
    assert sorted(r[2] for r in server.events(unit)) == ["dismissed", "shown"]  # in two requests: either first


def test_a_visitor_outside_the_share_never_sees_it(page, site, server):  # type: ignore[no-untyped-def]
    unit = visitor(inside=False)
    open_shop(page, site, server, unit)
    page.wait_for_timeout(2500)
    assert page.locator(HOST).count() == 0
    assert server.events(unit) == []
    assert page.errors == []


def test_a_page_no_survey_names_does_not_load_the_module(page, site, server):  # type: ignore[no-untyped-def]
    requested = open_shop(page, site, server, visitor(inside=True, n=2), name="cart.html")
    page.wait_for_timeout(1500)
    assert not [u for u in requested if "abtest-survey" in u]
    assert page.locator(HOST).count() == 0


def test_an_event_survey_shows_after_a_purchase_tracked_before_the_module_arrived(page, site, server):  # type: ignore[no-untyped-def]
    """The thank-you page tracks the purchase inline, through the loader's stub: the survey module
    arrives later and still sees it (abtest._tracked)."""
    url = site.page("thanks-order.html", loader_page(f"{server.url}/static/abtest.js",
                                                      "<h1>Thanks!</h1><script>abtest.track('purchase', 49.9)</script>",
                                                      key=server.key))
    page.goto(url)
    page.wait_for_selector('div[data-abtest-survey="shop-thanks"]', state="attached", timeout=5000)
    assert page.locator('div[data-abtest-survey="shop-thanks"] input[name="nps"]').count() == 11
    assert page.locator(HOST).count() == 0  # the checkout survey does not name this page
    assert page.errors == []


def test_the_prompt_keeps_its_styles_under_a_strict_content_security_policy(page, site, server):  # type: ignore[no-untyped-def]
    """A site whose CSP forbids inline styles (style-src 'self') still gets a styled, fixed prompt:
    the module's stylesheet is constructed, not a <style> element the policy would drop."""
    open_shop(page, site, server, visitor(inside=True, n=3), name="survey-csp.html",
              head="<meta http-equiv='Content-Security-Policy' content=\"style-src 'self'\">")
    page.wait_for_selector(HOST, state="attached", timeout=5000)
    box = page.locator(f"{HOST} [role=dialog]")
    assert box.evaluate("e => getComputedStyle(e).position") == "fixed"
    assert box.bounding_box()["width"] <= 360
