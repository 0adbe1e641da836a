"""abtest.js against a stand-in API on another origin: assignment as Python decides it, the marks on
<html>, the visitor id, QA overrides, the anti-flicker guard, config caching and the events it sends.

The stand-in (conftest.FakeApi) answers like /api/v1 (DESIGN §4.4) and records every batch, so
these tests run without the Flask app; test_snippet_live.py repeats the essentials against it.
"""

from __future__ import annotations

import functools
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from abtest.assignment import assign
from abtest.definitions import ExperimentDef
from abtest.kinds import parse_definition

from .conftest import loader_page, snippet_page, wait_until

pytestmark = pytest.mark.browser

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
HALVES = [{"key": "control", "weight": 0.5}, {"key": "blue", "weight": 0.5}]
METRICS = [{"name": "purchase", "type": "conversion", "primary": True}]
DEFINITIONS = [
    parse_definition({"key": key, "status": "running", "metrics": METRICS, **extra})
    for key, extra in [
        ("hero", {"variants": HALVES}),
        ("price", {"seed": "price-2024", "coverage": 0.5, "variants": [
            {"key": "control", "weight": 1 / 3}, {"key": "low", "weight": 1 / 3}, {"key": "high", "weight": 1 / 3}]}),
        ("de-beta", {"variants": HALVES, "targeting": {"country": ["DE", "AT"], "beta": [True]}}),
        ("fr-only", {"variants": HALVES, "targeting": {"country": ["FR"]}}),
        ("vip", {"variants": HALVES, "targeting": {"tier": [3]}}),
        ("ns-left", {"variants": HALVES, "namespace": {"name": "checkout", "range": [0.0, 0.5]}}),
        ("ns-right", {"variants": HALVES, "namespace": {"name": "checkout", "range": [0.5, 1.0]}}),
    ]
]
# What the page tells the snippet: one attribute on the tag, the rest (a boolean, a list of
# numbers) from window.abtestAttributes, which wins on conflicts.
TAG_ATTRIBUTES = '{"country": "FR", "tier": 1}'
HEAD = "<script>window.abtestAttributes = {country: 'DE', beta: true, tier: [1, 3]};</script>"
ATTRIBUTES = {"country": "DE", "beta": True, "tier": [1, 3]}
STYLE = """<style>
  body{font:18px system-ui;margin:40px} h1{color:#333}
  html[data-abtest-hero=blue] h1{color:#fff;background:#1565c0;padding:12px}
</style>"""
BODY = "<h1>Spring sale</h1><p>Everything must go.</p>"
MARKS = """() => Object.fromEntries([...document.documentElement.attributes]
  .filter(a => a.name.startsWith('data-abtest-')).map(a => [a.name.slice(12), a.value]))"""


def config_entry(definition: ExperimentDef) -> dict:
    """An experiment as GET /api/v1/config describes it (DESIGN §4.4)."""
    entry: dict = {"key": definition.key, "seed": definition.seed, "coverage": definition.coverage,
                   "variants": [{"key": v.key, "weight": v.weight} for v in definition.variants]}
    if definition.namespace is not None:
        entry["namespace"] = {"name": definition.namespace.name,
                              "range": [definition.namespace.start, definition.namespace.end]}
    if definition.targeting:
        entry["targeting"] = {name: list(values) for name, values in definition.targeting.items()}
    return entry


def python_variants(unit: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    decided = (assign(d, unit, ATTRIBUTES, overrides) for d in DEFINITIONS)
    return {a.experiment: a.variant for a in decided if a.in_experiment}


@pytest.fixture
def shop(site, fake_api):  # type: ignore[no-untyped-def]
    """URL of a shop page embedding the snippet, its API the stand-in serving DEFINITIONS."""
    fake_api.config = {"experiments": [config_entry(d) for d in DEFINITIONS]}
    return site.page("shop.html", snippet_page("abtest.js", BODY, HEAD + STYLE, key="pk_test", api=fake_api.url,
                                               attributes=TAG_ATTRIBUTES))


def test_assignment_matches_python_and_marks_html(context, page, shop, fake_api, site):  # type: ignore[no-untyped-def]
    units = ["alice", "bob", "visitor-00017", "Zoë😀x", "用户42", "0"] + [str(uuid.UUID(int=i * 7919)) for i in range(4)]
    seen: set[str] = set()
    for unit in units:
        context.clear_cookies()
        # A server (or an earlier visit) set the cookie; the snippet must adopt it as is.
        context.add_cookies([{"name": "abtest_id", "value": quote(unit), "url": site.url}])
        page.goto(shop)
        expected = python_variants(unit)
        assert page.evaluate("abtest.unit") == unit
        assert page.evaluate("abtest.ready") == expected, unit
        assert page.evaluate(MARKS) == expected, unit
        for d in DEFINITIONS:
            assert page.evaluate("k => abtest.variant(k)", d.key) == expected.get(d.key)
        assert "fr-only" not in expected and not {"ns-left", "ns-right"} <= expected.keys()
        seen.update(expected)
    # The units exercise every rule: targeting in and out, both namespace halves, coverage.
    assert {"hero", "price", "de-beta", "vip", "ns-left", "ns-right"} <= seen
    assert [r for r in fake_api.requests if r[0] == "GET"] == [("GET", "/api/v1/config?key=pk_test")]  # cached
    assert page.errors == []


def test_events_have_the_api_shape(page, shop, fake_api):  # type: ignore[no-untyped-def]
    page.goto(shop)
    unit = page.evaluate("abtest.unit")
    assigned = page.evaluate("abtest.ready")
    assert assigned == python_variants(unit)
    before = datetime.now(UTC)
    page.evaluate("""async () => {
        abtest.track('purchase', 12.5);
        abtest.track('signup');
        abtest.track('bad-value', 'NaN');
        abtest.task('checkout').start();
        await new Promise(r => setTimeout(r, 60));
        abtest.task('checkout').end(true);  // a second task() call finds the same start
        await abtest.flush();
    }""")
    assert page.evaluate("abtest.flush()") is None  # flushing an empty queue is fine
    events = wait_until(lambda: len(fake_api.events) >= 6 * len(assigned) and fake_api.events, what="events")
    assert {path for method, path in fake_api.requests if method == "POST"} == {"/api/v1/events?key=pk_test"}
    assert len({e["id"] for e in events}) == len(events)
    by_kind: dict[tuple, list[dict]] = {}
    for event in events:
        assert UUID4.match(event["id"])
        assert event["unit"] == unit
        assert event["variant"] == assigned[event["experiment"]]
        assert "forced" not in event
        ts = datetime.fromisoformat(event["ts"])
        assert event["ts"].endswith("Z") and before - timedelta(seconds=5) <= ts <= datetime.now(UTC)
        by_kind.setdefault((event["type"], event.get("event") or event.get("task")), []).append(event)
    # Each kind reaches every experiment the visitor is in, once.
    assert {k: sorted(e["experiment"] for e in v) for k, v in by_kind.items()} == {
        k: sorted(assigned) for k in [("exposure", None), ("conversion", "purchase"), ("conversion", "signup"),
                                      ("conversion", "bad-value"), ("task", "checkout"), ("task", "page-load")]}
    purchase = by_kind[("conversion", "purchase")][0]
    assert set(purchase) == {"id", "type", "experiment", "variant", "unit", "event", "value", "ts"}
    assert purchase["value"] == 12.5
    assert "value" not in by_kind[("conversion", "signup")][0]
    assert "value" not in by_kind[("conversion", "bad-value")][0]
    checkout = by_kind[("task", "checkout")][0]
    assert checkout["success"] is True and 55 <= checkout["duration_ms"] < 2000
    load = by_kind[("task", "page-load")][0]
    assert load["success"] is True and 0 < load["duration_ms"] < 10_000
    exposure = by_kind[("exposure", None)][0]
    assert set(exposure) == {"id", "type", "experiment", "variant", "unit", "attributes", "ts"}
    # The segments of the page: window.abtestAttributes over the tag's JSON, lists left out.
    assert exposure["attributes"] == {"device": "desktop", "country": "DE", "beta": "true"}
    assert page.errors == []


def test_batches_of_twenty_then_idle_flush(page, site, fake_api):  # type: ignore[no-untyped-def]
    fake_api.config = {"experiments": [config_entry(DEFINITIONS[0])]}
    page.goto(site.page("batch.html", snippet_page("abtest.js", BODY, key="pk_test", api=fake_api.url)))
    page.evaluate("abtest.ready")
    time.sleep(0.1)  # let the page-load task join the queue: exposure + page-load + 25 = 27 events
    started = time.monotonic()
    page.evaluate("() => { for (let i = 0; i < 25; i++) abtest.track('click', i); }")
    wait_until(lambda: fake_api.batches, timeout=1.5, what="the full batch, sent without waiting")
    assert len(fake_api.batches[0]) == 20
    wait_until(lambda: len(fake_api.batches) >= 2, timeout=4, what="the idle flush")
    assert time.monotonic() - started >= 1.5  # the rest waited for ~2 s of quiet
    assert [len(b) for b in fake_api.batches] == [20, 7]
    assert sorted(e["value"] for e in fake_api.events if e["type"] == "conversion") == list(range(25))


def test_pagehide_sends_a_beacon(context, page, site, fake_api):  # type: ignore[no-untyped-def]
    fake_api.config = {"experiments": [config_entry(DEFINITIONS[0])]}
    # Count sendBeacon calls where they survive the page: in the origin's localStorage.
    page.add_init_script("""{
        const send = navigator.sendBeacon.bind(navigator);
        navigator.sendBeacon = (url, body) => {
            localStorage.setItem('beacons', +(localStorage.getItem('beacons') || 0) + 1);
            return send(url, body);
        };
    }""")
    url = site.page("beacon.html", snippet_page("abtest.js", BODY, key="pk_test", api=fake_api.url))
    page.goto(url)
    page.evaluate("abtest.ready")
    page.evaluate("abtest.track('purchase', 3)")
    page.goto("about:blank")  # leaving the page: no timer will ever fire again
    wait_until(lambda: any(e["type"] == "conversion" for e in fake_api.events), what="the beacon")
    assert fake_api.batches[0][0]["type"] == "exposure"
    page.goto(url)
    assert page.evaluate("localStorage.getItem('beacons')") == "1"


def test_qa_override_forces_and_is_flagged(context, page, shop, fake_api, artifacts):  # type: ignore[no-untyped-def]
    page.goto(shop)
    unit = page.evaluate("abtest.unit")
    natural = python_variants(unit)
    other = "blue" if natural["hero"] == "control" else "control"
    page.goto(f"{shop}?abtest_hero={other}&abtest_price=nonexistent&utm_source=x")
    assert page.evaluate("abtest.variant('hero')") == other
    assert page.evaluate(MARKS) == python_variants(unit, {"hero": other})  # price: unknown variant ignored
    page.screenshot(path=str(artifacts / f"forced-hero-{other}.png"))
    page.goto(shop)  # the override lasts for the tab's session, so QA can click through
    assert page.evaluate("abtest.variant('hero')") == other
    page.evaluate("abtest.track('purchase')")
    page.goto(f"{shop}?abtest_hero=off")  # a variant that does not exist ends the override
    assert page.evaluate("abtest.variant('hero')") == natural["hero"]
    page.evaluate("abtest.flush()")
    def hero_events() -> list[dict]:
        return [e for e in fake_api.events if e["experiment"] == "hero" and e["type"] in ("exposure", "conversion")]

    def delivered() -> list[dict] | None:
        # What this test checks is the flags, not delivery speed: on a loaded machine a page's
        # beacon can miss its unload and wait in storage for a retry (2 s, then 4 s), so send again.
        if len(hero_events()) < 5:
            page.evaluate("abtest.flush()")
            return None
        return hero_events()

    hero = wait_until(delivered, timeout=15.0, what="hero events")
    flags = [(e["type"], e["variant"], e.get("forced")) for e in hero]
    assert flags.count(("exposure", natural["hero"], None)) == 2
    assert flags.count(("exposure", other, True)) == 2
    assert ("conversion", other, True) in flags
    assert all(e.get("forced") is None for e in fake_api.events if e["experiment"] != "hero")
    assert page.errors == []


def test_visitor_id_cookie_and_local_storage(browser, site, fake_api):  # type: ignore[no-untyped-def]
    url = site.page("id.html", snippet_page("abtest.js", BODY, key="pk_test", api=fake_api.url))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url)
        unit = page.evaluate("abtest.unit")
        assert UUID4.match(unit)
        (cookie,) = context.cookies()
        assert (cookie["name"], cookie["value"], cookie["path"], cookie["sameSite"]) == ("abtest_id", unit, "/", "Lax")
        assert cookie["secure"] is False  # plain http here; https pages get Secure
        assert abs(cookie["expires"] - (time.time() + 365 * 86400)) < 3600
        assert page.evaluate("localStorage.getItem('abtest_id')") == unit
        page.reload()
        assert page.evaluate("abtest.unit") == unit
        context.clear_cookies()  # cookie gone (e.g. a cookie cleaner): localStorage brings it back
        page.reload()
        assert page.evaluate("abtest.unit") == unit
        assert context.cookies()[0]["value"] == unit
        context.clear_cookies()
        page.evaluate("localStorage.clear()")
        page.reload()
        assert page.evaluate("abtest.unit") != unit
    finally:
        context.close()


def test_uuid_without_random_uuid(browser, site, fake_api):  # type: ignore[no-untyped-def]
    """crypto.randomUUID exists only in secure contexts; plain-http sites get getRandomValues."""
    fake_api.config = {"experiments": [config_entry(DEFINITIONS[0])]}
    context = browser.new_context()
    try:
        context.add_init_script("delete Crypto.prototype.randomUUID;")
        page = context.new_page()
        page.goto(site.page("nouuid.html", snippet_page("abtest.js", BODY, key="pk_test", api=fake_api.url)))
        assert page.evaluate("typeof crypto.randomUUID") == "undefined"
        ids = [page.evaluate("abtest.unit")]
        page.evaluate("abtest.ready.then(() => abtest.flush())")
        ids += [e["id"] for e in wait_until(lambda: fake_api.events, what="exposure")]
        assert all(UUID4.match(i) for i in ids), ids
    finally:
        context.close()


def test_guard_while_config_loads_and_late_config(page, site, fake_api):  # type: ignore[no-untyped-def]
    fake_api.config = {"experiments": [config_entry(DEFINITIONS[0])]}
    guard = "<script>window.guardSeen = document.documentElement.classList.contains('abtest-loading')</script>"
    fake_api.config_delay = 0.2
    page.goto(site.page("slow.html", snippet_page("abtest.js", BODY + guard, key="pk_test", api=fake_api.url,
                                                  timeout="2000")))
    assert page.evaluate("window.guardSeen") is True
    hero = page.evaluate("abtest.ready")["hero"]
    assert page.evaluate(MARKS) == {"hero": hero}
    assert page.evaluate("document.documentElement.className") == ""

    # Slower than the timeout: the page shows as control at once and reports no exposure;
    # the config that arrives later is kept for the next page view.
    page.evaluate("sessionStorage.clear()")
    fake_api.config_delay = 0.4
    page.goto(site.page("late.html", snippet_page("abtest.js", BODY + guard, key="pk_test", api=fake_api.url,
                                                  timeout="100")))
    released = page.evaluate("abtest.ready.then(() => performance.now())")
    assert released < 400
    assert page.evaluate("abtest.variant('hero')") is None and page.evaluate(MARKS) == {}
    time.sleep(0.45)
    fake_api.config_delay = 0
    gets = len([r for r in fake_api.requests if r[0] == "GET"])
    page.reload()
    assert page.evaluate("abtest.ready") == {"hero": hero}
    assert page.evaluate("window.guardSeen") is False  # cached config: nothing to wait for
    assert len([r for r in fake_api.requests if r[0] == "GET"]) == gets
    page.evaluate("abtest.flush()")
    wait_until(lambda: len([e for e in fake_api.events if e["type"] == "exposure"]) >= 2, what="exposures")
    time.sleep(0.2)
    # The slow page view and the cached one; none for the late one (its visitor saw control).
    assert len([e for e in fake_api.events if e["type"] == "exposure"]) == 2
    assert page.errors == []


@pytest.mark.parametrize("embed", ["snippet", "tag"])
def test_study_participants_are_left_out_of_ab_tests(browser, page, site, fake_api, embed):  # type: ignore[no-untyped-def]
    """A usability-study participant sent to the site tests a design, not the site's experiments:
    no config, no assignment (control, variant() null, no marks), no exposures, conversions or
    tasks, also with a QA override, and on later pages of the tab (sessionStorage abtest_study)."""
    fake_api.config = {"experiments": [config_entry(DEFINITIONS[0])]}
    make = loader_page if embed == "snippet" else functools.partial(snippet_page, key="pk_test")
    url = site.page(f"study-shop-{embed}.html", make(f"{site.url}/abtest.js", BODY, STYLE, api=fake_api.url))
    calls = """async () => {
        abtest.track('purchase', 5); abtest.task('order').start(); abtest.task('order').end(true);
        await abtest.flush();
    }"""
    page.goto(f"{url}?abtest_study=shop-study&abtest_token=t0k.sig&abtest_hero=blue")
    assert page.evaluate("abtest.ready") == {}
    assert page.evaluate("abtest.variant('hero')") is None and page.evaluate(MARKS) == {}
    assert page.evaluate("getComputedStyle(document.documentElement).opacity") == "1"
    page.evaluate(calls)
    assert ("GET", "/static/abtest-study.js") in fake_api.requests  # the study reporter is loaded
    # Later pages of the tab: the reporter keeps the study in sessionStorage (here as it would).
    page.evaluate("sessionStorage.setItem('abtest_study', JSON.stringify({key: 'shop-study', token: 't0k.sig'}))")
    page.goto(url)
    assert page.evaluate("abtest.ready") == {} and page.evaluate(MARKS) == {}
    page.evaluate(calls)
    page.goto("about:blank")  # pagehide: anything queued would leave now
    assert not [r for r in fake_api.requests if r[0] == "GET" and r[1].startswith("/api/v1/config")]

    # An ordinary visitor of the same page is in the experiment (the config is not the reason).
    context = browser.new_context()
    try:
        visitor = context.new_page()
        visitor.goto(url)
        assigned = visitor.evaluate("abtest.ready")
        assert assigned == {"hero": assign(DEFINITIONS[0], visitor.evaluate("abtest.unit"), {}).variant}
        visitor.evaluate("abtest.flush()")
    finally:
        context.close()
    events = wait_until(lambda: fake_api.events, what="the ordinary visitor's exposure")
    time.sleep(0.3)
    assert [(e["type"], e["variant"]) for e in fake_api.events if e["type"] != "task"] == [("exposure", assigned["hero"])]
    assert {e["unit"] for e in events} == {events[0]["unit"]}  # the participant sent nothing
    assert page.errors == []
