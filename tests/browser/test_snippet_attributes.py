"""The segments abtest.js reports: the page's attributes and the visitor's device on every exposure.

Results break down by the attributes of a unit's first exposure (DESIGN §8), so what the snippet
puts there decides what a designer can compare: the tag's ``data-attributes``, then
``window.abtestAttributes``, then ``abtest.attributes({...})`` (kept for the tab), plus ``device``
read the way abtest.attributes.device_of reads a User-Agent. Bad values are dropped one by one,
never the exposure, and nothing throws into the page.
"""

from __future__ import annotations

import json

import pytest

from abtest.attributes import MAX_ATTRIBUTES, clean_attributes, device_of

from .conftest import snippet_page, wait_until

pytestmark = pytest.mark.browser

CONFIG = {"experiments": [
    {"key": "hero", "seed": "hero", "coverage": 1,
     "variants": [{"key": "control", "weight": 0.5}, {"key": "blue", "weight": 0.5}]},
    {"key": "pro-only", "seed": "pro-only", "coverage": 1, "targeting": {"plan": ["pro"]},
     "variants": [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.5}]},
]}


def exposures(fake_api, page, count: int = 1) -> list[dict]:  # type: ignore[no-untyped-def]
    page.evaluate("abtest.ready.then(() => abtest.flush())")
    found = wait_until(lambda: len([e for e in fake_api.events if e["type"] == "exposure"]) >= count
                       and fake_api.events, what=f"{count} exposure(s)")
    return [e for e in found if e["type"] == "exposure"]


@pytest.fixture
def api(fake_api):  # type: ignore[no-untyped-def]
    fake_api.config = CONFIG
    return fake_api


def test_every_source_reaches_the_exposure_and_later_ones_win(page, site, api):  # type: ignore[no-untyped-def]
    head = "<script>window.abtestAttributes = {country: 'DE', logged_in: true, visits: 3.0};</script>"
    url = site.page("sources.html", snippet_page("abtest.js", head=head, key="pk", api=api.url,
                                                 attributes='{"country": "FR", "lang": "fr"}'))
    page.goto(url)
    (exposure,) = exposures(api, page)
    assert exposure["experiment"] == "hero"
    assert exposure["attributes"] == {"device": "desktop", "country": "DE", "lang": "fr",
                                      "logged_in": "true", "visits": "3"}
    # What the server would store from it is exactly what was sent: nothing for it to refuse.
    assert clean_attributes(exposure["attributes"]) == exposure["attributes"]
    assert page.errors == []


def test_attributes_call_holds_for_the_next_page_views(page, site, api):  # type: ignore[no-untyped-def]
    url = site.page("login.html", snippet_page("abtest.js", key="pk", api=api.url))
    page.goto(url)
    assert page.evaluate("abtest.ready").keys() == {"hero"}  # not "pro" yet: pro-only targets plan=pro
    page.evaluate("abtest.attributes({plan: 'pro'}); abtest.attributes({seats: 5})")
    page.reload()
    assert page.evaluate("abtest.ready").keys() == {"hero", "pro-only"}
    sent = exposures(api, page, count=3)
    assert [e["attributes"] for e in sent] == [
        {"device": "desktop"},
        {"device": "desktop", "plan": "pro", "seats": "5"},
        {"device": "desktop", "plan": "pro", "seats": "5"},
    ]
    assert page.errors == []


# Playwright's descriptors: a phone, a tablet and a desktop of each engine's User-Agent family.
DEVICES = {"iPhone 13": "mobile", "Pixel 5": "mobile", "iPad Mini": "tablet", "Galaxy Tab S4": "tablet",
           "Desktop Chrome": "desktop", "Desktop Firefox": "desktop"}


@pytest.mark.parametrize("name", DEVICES)
def test_device_agrees_with_python(browser, devices, site, api, name):  # type: ignore[no-untyped-def]
    descriptor = {k: v for k, v in devices[name].items() if k != "default_browser_type"}
    context = browser.new_context(**descriptor)
    try:
        page = context.new_page()
        page.goto(site.page("device.html", snippet_page("abtest.js", key="pk", api=api.url)))
        (exposure,) = exposures(api, page)
        user_agent = page.evaluate("navigator.userAgent")
        assert exposure["attributes"]["device"] == DEVICES[name] == device_of(user_agent)
    finally:
        context.close()


def test_the_page_may_name_its_own_device(page, site, api):  # type: ignore[no-untyped-def]
    head = "<script>window.abtestAttributes = {device: 'kiosk'};</script>"
    page.goto(site.page("kiosk.html", snippet_page("abtest.js", head=head, key="pk", api=api.url)))
    assert exposures(api, page)[0]["attributes"] == {"device": "kiosk"}


def test_bad_attributes_are_dropped_one_by_one(page, site, api):  # type: ignore[no-untyped-def]
    many = {f"k{i:02d}": i for i in range(30)}
    junk = {"bad name": "x", "1st": "x", "": "x", "nested": {"a": 1}, "nan": float("nan"), "nul": "a\u0000b",
            "long": "x" * 201, "edge": "y" * 200, "nothing": None, "list": [1, 2], "ok": "kept",
            "half": "cut \ud83d", "pooled": "(other)", "unset": "(not set)"}
    head = ("<script>window.abtestAttributes = Object.assign(" + json.dumps(junk)
            + ", " + json.dumps(many) + ");</script>")
    url = site.page("junk.html", snippet_page("abtest.js", head=head, key="pk", api=api.url,
                                              attributes="{not json"))
    page.goto(url)
    page.evaluate("""() => { abtest.attributes(null); abtest.attributes('plan'); abtest.attributes(7);
                             abtest.attributes({toString: 1}); }""")
    (exposure,) = exposures(api, page)
    sent = exposure["attributes"]
    assert len(sent) == MAX_ATTRIBUTES
    assert sent["device"] == "desktop" and sent["ok"] == "kept" and sent["edge"] == "y" * 200
    assert not {"bad name", "1st", "", "nested", "nan", "nul", "long", "nothing", "list", "half", "pooled",
                "unset"} & sent.keys()
    assert clean_attributes(sent) == sent  # the server takes the whole exposure
    assert page.errors == []
