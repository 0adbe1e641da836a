"""The paste-ready snippet (web/snippet.py, as README.md and the Install page show it), frame by frame.

Every animation frame of each visit is recorded by a requestAnimationFrame loop injected before the
page's own scripts: whether <html> is visible (opacity) and which design the heading shows (its
colour, set by a rule on html[data-abtest-hero=…]). A frame that is visible and shows control to a
visitor assigned to the variant is a flash. Twenty fresh visitors at 0 and 300 ms of config
latency must see none; the bare ``async`` tag the README used to give flashes for the same page.
"""

from __future__ import annotations

import statistics
import time
import uuid
from urllib.parse import quote

import pytest

from abtest.assignment import assign
from abtest.kinds import parse_definition
from web.snippet import paste_snippet

from .conftest import loader_page, snippet_page, wait_until

pytestmark = pytest.mark.browser

HERO = parse_definition({"key": "hero", "status": "running", "variants": [
    {"key": "control", "weight": 0.5}, {"key": "blue", "weight": 0.5}]})
CONFIG = {"experiments": [{"key": "hero", "seed": "hero", "coverage": 1.0,
                           "variants": [{"key": "control", "weight": 0.5}, {"key": "blue", "weight": 0.5}]}]}
CONTROL, BLUE = "rgb(34, 34, 34)", "rgb(21, 101, 192)"
STYLE = "<style>h1{color:rgb(34, 34, 34)} html[data-abtest-hero=blue] h1{color:rgb(21, 101, 192)}</style>"
BODY = "<h1>Spring sale</h1><p>Everything must go.</p>"
# Runs before any script of the page, on every frame the browser renders.
FRAMES = """{
  window.frames_ = [];
  const tick = () => {
    const h1 = document.querySelector('h1');
    frames_.push({t: performance.now(), visible: getComputedStyle(document.documentElement).opacity !== '0',
                  colour: h1 && getComputedStyle(h1).color});
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
VISITORS = 20


def watch(browser, url: str, units: list[str | None]) -> list[dict]:  # type: ignore[no-untyped-def]
    """Visit ``url`` once per unit, each in a fresh profile (None: the snippet makes a new id)."""
    visits = []
    for unit in units:
        context = browser.new_context()
        try:
            if unit is not None:
                context.add_cookies([{"name": "abtest_id", "value": quote(unit), "url": url}])
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.add_init_script(FRAMES)
            page.goto(url)
            page.evaluate("abtest.ready")
            page.wait_for_timeout(100)  # a few frames after the page settled
            variant = page.evaluate("abtest.variant('hero')")
            frames = page.evaluate("frames_")
            assert errors == []
        finally:
            context.close()
        shown = [f for f in frames if f["visible"] and f["colour"]]
        right = BLUE if variant == "blue" else CONTROL
        wrong = [f for f in shown if f["colour"] != right]
        visits.append({
            "variant": variant,
            "frames": len(frames),
            "wrong_frames": len(wrong),
            # From the first wrong frame until the right design replaced it.
            "flash_ms": (next(f["t"] for f in shown if f["colour"] == right) - wrong[0]["t"]) if wrong else 0.0,
            "shown_at": shown[0]["t"] if shown else None,
            "right_at": next((f["t"] for f in shown if f["colour"] == right), None),
        })
        assert shown and shown[-1]["colour"] == right, visits[-1]  # the page ends up showing, as assigned
    return visits


def summary(label: str, visits: list[dict]) -> str:
    variant = [v for v in visits if v["variant"] == "blue"]
    flashed = [v for v in variant if v["wrong_frames"]]
    shown = [v["shown_at"] for v in visits]
    right = [v["right_at"] for v in visits]
    return (f"{label}: {len(flashed)} of {len(visits)} visitors flashed ({len(variant)} in the variant, "
            f"{sum(v['variant'] is None for v in visits)} released as control at the timeout), flashes "
            f"{sorted(round(v['flash_ms']) for v in flashed)} ms; page first shown after median "
            f"{statistics.median(shown):.0f} ms (max {max(shown):.0f}), the visitor's own design after median "
            f"{statistics.median(right):.0f} ms (max {max(right):.0f})")


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_no_frame_shows_the_wrong_variant(browser, site, fake_api, delay):  # type: ignore[no-untyped-def]
    fake_api.config = CONFIG
    fake_api.config_delay = delay
    url = site.page("loader-frames.html", loader_page(f"{site.url}/abtest.js", BODY, STYLE, api=fake_api.url))
    visits = watch(browser, url, [None] * VISITORS)
    print("\n" + summary(f"paste-ready snippet, {delay * 1000:.0f} ms config latency", visits))
    assert all(v["frames"] >= 3 for v in visits)  # the recorder saw the page render
    assert [v for v in visits if v["wrong_frames"]] == []
    assert sum(v["variant"] == "blue" for v in visits) >= 1  # (all 20 in control: p = 1e-6)
    assert max(v["shown_at"] for v in visits) < 800 + 200  # hidden for the timeout at most


def test_the_bare_async_tag_flashes(browser, site, fake_api):  # type: ignore[no-untyped-def]
    """The recorder does see a flash: the tag README.md used to give shows variant visitors control
    first. (Units chosen so that all five are in the variant.)"""
    fake_api.config = CONFIG
    fake_api.config_delay = 0.3
    blue = [u for u in (str(uuid.UUID(int=i * 7919)) for i in range(1, 60))
            if assign(HERO, u).variant == "blue"][:5]
    tag = f"<script src='{site.url}/abtest.js' data-key='pk_test' data-api='{fake_api.url}' async></script>"
    url = site.page("bare-tag-frames.html", f"<!doctype html><html><head>{STYLE}{tag}</head><body>{BODY}</body></html>")
    visits = watch(browser, url, blue)
    print("\n" + summary("bare async tag, 300 ms config latency", visits))
    assert [v["variant"] for v in visits] == ["blue"] * 5
    assert [v for v in visits if v["wrong_frames"]]


def test_calls_before_the_script_arrives_are_replayed(page, site, fake_api):  # type: ignore[no-untyped-def]
    """The page's own code may call abtest at once: the stub queues the calls with their times and
    abtest.js replays them; attributes() queued before the assignment still count for it."""
    fake_api.config = CONFIG
    fake_api.config_delay = 0.2
    early = """<script>
      window.early = {stub: !abtest._hash, variant: abtest.variant('hero'), at: Date.now()};
      abtest.attributes({plan: 'pro'});
      abtest.track('early', 3);
      abtest.task('checkout').start();
      window.kept = {task: abtest.task('search'), track: abtest.track};  // stub functions, used later
      kept.task.start();
      abtest.ready.then(v => { window.readyFromStub = v; });
    </script>"""
    page.goto(site.page("loader-early.html", loader_page(f"{site.url}/abtest.js", BODY, early, api=fake_api.url)))
    assert page.evaluate("early.stub") is True and page.evaluate("early.variant") is None
    assigned = page.evaluate("abtest.ready")
    assert page.evaluate("readyFromStub") == assigned == {"hero": assign(HERO, page.evaluate("abtest.unit"),
                                                                           {"plan": "pro"}).variant}
    assert page.evaluate("abtest._hash") is not None  # the real snippet has taken over
    time.sleep(0.3)
    since_call = page.evaluate("""() => {
        abtest.task('checkout').end(true);
        const since = Date.now() - early.at;
        kept.task.end(false);
        kept.track('late');
        abtest.flush();
        return since;
    }""")
    events = wait_until(lambda: len(fake_api.events) >= 6 and fake_api.events, what="exposure, conversions, tasks")
    by_type = {(e["type"], e.get("event") or e.get("task")): e for e in events}
    exposure = by_type[("exposure", None)]
    assert exposure["attributes"] == {"device": "desktop", "plan": "pro"}
    conversion = by_type[("conversion", "early")]
    assert conversion["value"] == 3 and conversion["variant"] == assigned["hero"]
    assert conversion["ts"] < exposure["ts"]  # recorded at the time of the call, not of the replay
    task = by_type[("task", "checkout")]
    # Timed from the queued start: the 200 ms before the config arrived count too.
    assert since_call - 20 <= task["duration_ms"] <= since_call + 20 and task["duration_ms"] >= 450
    # Calls through stub functions kept from before abtest.js arrived are passed on, not lost.
    assert by_type[("task", "search")]["success"] is False and ("conversion", "late") in by_type
    assert page.errors == []


def test_pasted_twice_or_after_a_plain_tag_runs_once(page, site, fake_api):  # type: ignore[no-untyped-def]
    fake_api.config = CONFIG
    src = f"{site.url}/abtest.js"
    snippet = paste_snippet(src, "pk_test").replace('data-key="pk_test"', f'data-key="pk_test" data-api="{fake_api.url}"')
    page.goto(site.page("loader-twice.html", f"<!doctype html><html><head>{snippet}{snippet}</head><body>{BODY}</body></html>"))
    assigned = page.evaluate("abtest.ready")
    page.evaluate("abtest.flush()")
    wait_until(lambda: fake_api.events, what="the exposure")
    time.sleep(0.3)
    assert [e["type"] for e in fake_api.events if e["type"] == "exposure"] == ["exposure"]
    assert page.evaluate("document.querySelectorAll('script[src]').length") == 1
    assert [r for r in fake_api.requests if r[0] == "GET"] == [("GET", "/api/v1/config?key=pk_test")]

    # A page that already has the plain tag: the snippet leaves the real abtest alone.
    plain = snippet_page(src, BODY, key="pk_test", api=fake_api.url).replace("</head>", snippet + "</head>")
    page.goto(site.page("tag-then-loader.html", plain))
    assert page.evaluate("abtest.ready") == assigned  # same visitor, same variant (config from the cache)
    assert page.evaluate("typeof abtest._hash") == "object"
    assert page.evaluate("document.documentElement.className") == ""
    assert page.errors == []
