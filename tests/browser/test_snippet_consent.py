"""Consent in abtest.js: `data-consent="required"` and Global Privacy Control keep the snippet from
storing, requesting or sending anything until `abtest.consent(true)`; `abtest.consent(false)`
deletes the visitor id and stops sending. Against the stand-in API on another origin (conftest)."""

from __future__ import annotations

import pytest

from abtest.assignment import assign
from abtest.kinds import parse_definition

from .conftest import loader_page, snippet_page, wait_until

pytestmark = pytest.mark.browser

HERO = parse_definition({"key": "hero", "status": "running", "variants": [
    {"key": "control", "weight": 0.5}, {"key": "blue", "weight": 0.5}]})
CONFIG = {"experiments": [{"key": "hero", "seed": "hero", "coverage": 1.0,
                           "variants": [{"key": "control", "weight": 0.5}, {"key": "blue", "weight": 0.5}]}]}
# Navigator.globalPrivacyControl as a browser with the setting on defines it, before any page script.
GPC = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true, configurable: true})"
STORED = """() => ({cookie: document.cookie, local: {...localStorage}, session: {...sessionStorage},
  marks: [...document.documentElement.attributes].map(a => a.name).filter(n => n.startsWith('data-abtest-')),
  hidden: document.documentElement.classList.contains('abtest-loading')})"""
# A conversion and a task the page records while the visitor has not consented.
ACTIVITY = "abtest.track('purchase', 5); abtest.task('checkout').start(); abtest.task('checkout').end(true);"


def _page(site, fake_api, name: str, tag: str = "loader", head: str = "", **data: str) -> str:  # type: ignore[no-untyped-def]
    fake_api.config = CONFIG
    make = loader_page if tag == "loader" else snippet_page
    src = "abtest.js"
    return site.page(name, make(src, "<h1>Spring sale</h1>", head, key="pk_test", api=fake_api.url, **data))


def _leave(page) -> None:  # type: ignore[no-untyped-def]
    """Hide and unload the page, when the snippet sends whatever it still holds (sendBeacon)."""
    page.goto("about:blank")
    page.wait_for_timeout(300)


def _nothing_kept_or_sent(page, fake_api) -> None:  # type: ignore[no-untyped-def]
    state = page.evaluate(STORED)
    assert "abtest_id" not in state["cookie"]
    assert state["local"] == {} and state["session"] == {}
    assert state["marks"] == [] and not state["hidden"]  # the page shows, as control
    assert page.evaluate("abtest.variant('hero')") is None and page.evaluate("abtest.unit") is None
    page.evaluate(ACTIVITY)
    page.evaluate("abtest.flush()")
    page.wait_for_timeout(2500)  # past the snippet's 2 s send timer
    _leave(page)
    assert fake_api.requests == []  # not even the config: the API's server never hears of the visitor


@pytest.mark.parametrize("tag", ["loader", "bare"])
def test_consent_required_keeps_nothing_and_sends_nothing(context, page, site, fake_api, tag):  # type: ignore[no-untyped-def]
    page.goto(_page(site, fake_api, f"required-{tag}.html", tag, consent="required"))
    assert page.evaluate("abtest.ready") == {}
    _nothing_kept_or_sent(page, fake_api)
    assert context.cookies() == []


def test_consent_through_the_stub_before_abtest_js_arrives(context, page, site, fake_api):  # type: ignore[no-untyped-def]
    # The site's consent manager knows the visitor's choice early and tells the stub; calls queued
    # before the consent (attributes) still count, since consent is replayed first.
    head = "<script>abtest.attributes({plan: 'pro'}); abtest.consent(true); abtest.track('purchase', 12.5)</script>"
    page.goto(_page(site, fake_api, "granted.html", head=head, consent="required"))
    variants = page.evaluate("abtest.ready")
    unit = page.evaluate("abtest.unit")
    assert variants == {"hero": assign(HERO, unit).variant}
    state = page.evaluate(STORED)
    assert f"abtest_id={unit}" in state["cookie"] and state["local"]["abtest_id"] == unit
    assert state["marks"] == ["data-abtest-hero"]
    page.evaluate("abtest.flush()")
    events = wait_until(lambda: len(fake_api.events) >= 2 and fake_api.events, what="exposure and conversion")
    assert [e["type"] for e in events[:2]] == ["exposure", "conversion"]
    assert {e["unit"] for e in events} == {unit} and events[0]["attributes"]["plan"] == "pro"
    assert ("GET", "/api/v1/config?key=pk_test") in fake_api.requests


def test_consent_given_after_the_page_showed_counts_from_the_next_page(context, page, site, fake_api):  # type: ignore[no-untyped-def]
    url = _page(site, fake_api, "late.html", consent="required")
    page.goto(url)
    assert page.evaluate("abtest.ready") == {}
    page.evaluate("abtest.consent(true)")  # the visitor clicks "accept" in the banner
    unit = page.evaluate("abtest.unit")
    assert unit and f"abtest_id={unit}" in page.evaluate("document.cookie")
    assert page.evaluate("localStorage.abtest_id") == unit
    # This page view was shown as control: a variant now would flash, so nothing is assigned or sent.
    assert page.evaluate("abtest.variant('hero')") is None
    page.evaluate("abtest.flush()")
    assert fake_api.requests == []
    # The next page view (the consent manager tells the stub again) keeps the same visitor.
    page.goto(_page(site, fake_api, "late-next.html", head="<script>abtest.consent(true)</script>", consent="required"))
    assert page.evaluate("abtest.ready") == {"hero": assign(HERO, unit).variant}
    assert page.evaluate("abtest.unit") == unit


def test_withdrawn_consent_deletes_the_id_and_sends_nothing_more(context, page, site, fake_api):  # type: ignore[no-untyped-def]
    page.goto(_page(site, fake_api, "withdraw.html"))  # a site that needs no consent: runs at once
    unit = page.evaluate("abtest.ready.then(() => abtest.unit)")
    assert page.evaluate("localStorage.abtest_id") == unit and "abtest_id=" in page.evaluate("document.cookie")
    page.evaluate("abtest.track('purchase')")  # queued with the exposure, not sent yet (2 s timer)
    page.evaluate("abtest.consent(false)")
    state = page.evaluate(STORED)
    assert "abtest_id" not in state["cookie"] and "abtest_id" not in state["local"]
    assert page.evaluate("abtest.unit") is None
    page.evaluate(ACTIVITY)
    page.evaluate("abtest.flush()")
    page.wait_for_timeout(2500)
    _leave(page)
    assert fake_api.events == []  # the queued exposure and conversion were dropped
    assert "abtest_id" not in str(context.cookies())


def test_consent_false_through_the_stub_stores_nothing(context, page, site, fake_api):  # type: ignore[no-untyped-def]
    page.goto(_page(site, fake_api, "refused.html", head="<script>abtest.consent(false)</script>"))
    assert page.evaluate("abtest.ready") == {}
    _nothing_kept_or_sent(page, fake_api)


def test_global_privacy_control_counts_as_no_consent(context, page, site, fake_api):  # type: ignore[no-untyped-def]
    context.add_init_script(GPC)
    page.goto(_page(site, fake_api, "gpc.html"))
    assert page.evaluate("navigator.globalPrivacyControl") is True
    assert page.evaluate("abtest.ready") == {}
    _nothing_kept_or_sent(page, fake_api)


def test_global_privacy_control_and_an_explicit_consent(context, page, site, fake_api):  # type: ignore[no-untyped-def]
    context.add_init_script(GPC)
    page.goto(_page(site, fake_api, "gpc-yes.html", head="<script>abtest.consent(true)</script>"))
    unit = page.evaluate("abtest.ready.then(() => abtest.unit)")
    assert page.evaluate("abtest.variant('hero')") == assign(HERO, unit).variant
    page.evaluate("abtest.flush()")
    wait_until(lambda: fake_api.events, what="the exposure")


def test_strictly_necessary_tests_run_despite_global_privacy_control(context, page, site, fake_api):  # type: ignore[no-untyped-def]
    context.add_init_script(GPC)
    page.goto(_page(site, fake_api, "necessary.html", consent="necessary"))
    unit = page.evaluate("abtest.ready.then(() => abtest.unit)")
    assert page.evaluate("abtest.variant('hero')") == assign(HERO, unit).variant
    assert page.evaluate("localStorage.abtest_id") == unit
    page.evaluate("abtest.flush()")
    assert wait_until(lambda: fake_api.events, what="the exposure")[0]["unit"] == unit
    # The visitor can still say no.
    page.evaluate("abtest.consent(false)")
    assert page.evaluate("localStorage.abtest_id") is None
