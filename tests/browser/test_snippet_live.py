"""abtest.js on a customer page (one origin) against a real `abtest serve` (another origin).

The server is set up the way a user would: `abtest sync` of a running experiment written in TOML,
`abtest token create --public` for the page's key, the paste-ready snippet (web/snippet.py) loading
abtest.js from the server. The page's variant must be the one Python assigns, stay put across
reloads, and its exposures and conversions must land in the database.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live_server import live_server, run_abtest, synced_instance

from .conftest import loader_page, snippet_page, wait_until

pytestmark = pytest.mark.browser

EXPERIMENTS = {
    "live-hero": """
key = "live-hero"
name = "Blue hero banner"
status = "running"
[[variants]]
key = "control"
weight = 0.5
[[variants]]
key = "blue"
weight = 0.5
[[metrics]]
name = "purchase"
type = "conversion"
primary = true
""",
    "live-de": """
key = "live-de"
name = "German price display"
status = "running"
seed = "live-de-2024"
coverage = 0.9
targeting = { country = ["DE", "AT"] }
[[variants]]
key = "control"
weight = 0.34
[[variants]]
key = "gross"
weight = 0.33
[[variants]]
key = "net"
weight = 0.33
""",
    "live-fr": """
key = "live-fr"
name = "French only"
status = "running"
targeting = { country = ["FR"] }
[[variants]]
key = "control"
weight = 0.5
[[variants]]
key = "b"
weight = 0.5
""",
}
ATTRIBUTES = {"country": "DE"}
STYLE = """<style>
  body{font:18px system-ui;margin:40px} h1{color:#333}
  html[data-abtest-live-hero=blue] h1{color:#fff;background:#1565c0;padding:12px}
</style>"""
BODY = """<h1>Spring sale</h1><p>Everything must go.</p>
<button id="buy" onclick="abtest.track('purchase', 12.5)">Buy</button>"""
MARKS = """() => Object.fromEntries([...document.documentElement.attributes]
  .filter(a => a.name.startsWith('data-abtest-')).map(a => [a.name.slice(12), a.value]))"""
# With the snippet, `abtest` is the loader's stub until abtest.js has arrived: ask once it is ready.
UNIT = "abtest.ready.then(() => abtest.unit)"


@dataclass
class LiveServer:
    url: str
    key: str
    database: Path
    folder: Path
    env: dict[str, str]

    def python_variants(self, unit: str) -> dict[str, str]:
        """What abtest.assignment decides for this unit, from the same TOML files."""
        from abtest.assignment import assign
        from abtest.kinds import load_toml

        decided = (assign(load_toml(self.folder / f"{k}.toml"), unit, ATTRIBUTES) for k in EXPERIMENTS)
        return {a.experiment: a.variant for a in decided if a.in_experiment}

    def api_assign(self, experiment: str, unit: str) -> str | None:
        """What the server's POST /api/v1/assign answers (without recording anything)."""
        body = json.dumps({"experiment": experiment, "unit": unit, "attributes": ATTRIBUTES, "record": False})
        request = urllib.request.Request(f"{self.url}/api/v1/assign?key={self.key}", data=body.encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)["variant"]

    def events(self, unit: str) -> list[dict]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("""SELECT x.key AS experiment, e.type, e.variant, e.unit, e.event, e.value, e.task,
                                        e.success, e.duration_ms, e.forced
                                 FROM events e JOIN experiments x ON x.id = e.experiment_id
                                 WHERE e.unit = ? ORDER BY e.id""", (unit,)).fetchall()
        return [dict(row) for row in rows]


def _cli(env: dict[str, str], *args: str) -> str:
    done = run_abtest(env, *args)
    assert done.returncode == 0, f"abtest {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("live")
    database, env, key = synced_instance(folder, EXPERIMENTS, "browser-tests")
    with live_server(env, workers=1) as server:
        yield LiveServer(server.url, key, database, folder, env)


@pytest.fixture
def shop(site, live):  # type: ignore[no-untyped-def]
    """A customer page on the static server's origin with the paste-ready snippet: abtest.js comes
    from the abtest server, which is also its API (the default: the script's own origin)."""
    return site.page("live-shop.html", loader_page(f"{live.url}/static/abtest.js", BODY, STYLE, key=live.key,
                                                   attributes=json.dumps(ATTRIBUTES)))


def test_variant_matches_python_and_events_reach_the_database(  # type: ignore[no-untyped-def]
        page, shop, live, artifacts):
    page.goto(shop)
    unit = page.evaluate(UNIT)
    assigned = page.evaluate("abtest.ready")
    expected = live.python_variants(unit)
    assert assigned == expected
    assert {"live-hero", "live-fr"} & expected.keys() == {"live-hero"}  # live-fr: targeting says no
    assert page.evaluate(MARKS) == expected
    for experiment in EXPERIMENTS:
        assert live.api_assign(experiment, unit) == expected.get(experiment)
    page.screenshot(path=str(artifacts / f"live-hero-{expected['live-hero']}.png"))
    time.sleep(0.05)  # the page-load timing joins the queue just after the load event
    page.evaluate("abtest.flush()")  # sent now by fetch; the beacon path has its own test below

    page.reload()  # a second page view: same visitor, same variants, config from the tab's cache
    assert page.evaluate(UNIT) == unit
    assert page.evaluate("abtest.ready") == expected
    assert page.evaluate(MARKS) == expected
    page.click("#buy")
    page.evaluate("abtest.ready.then(() => abtest.flush())")

    def stored() -> list[dict]:
        rows = live.events(unit)
        return rows if len([r for r in rows if r["type"] == "conversion"]) == len(expected) else []

    rows = wait_until(stored, timeout=8, what="the conversion events in the database")
    for experiment, variant in expected.items():
        mine = [r for r in rows if r["experiment"] == experiment]
        assert {r["variant"] for r in mine} == {variant}
        assert all(r["forced"] == 0 for r in mine)
        assert len([r for r in mine if r["type"] == "exposure"]) == 2  # one per page view
        (conversion,) = [r for r in mine if r["type"] == "conversion"]
        assert (conversion["event"], conversion["value"]) == ("purchase", 12.5)
        assert any(r["type"] == "task" and r["task"] == "page-load" and r["success"] == 1 and r["duration_ms"] > 0
                   for r in mine)
    assert page.errors == []


def test_beacon_on_page_hide_reaches_the_database(page, shop, live):  # type: ignore[no-untyped-def]
    page.goto(shop)
    unit = page.evaluate(UNIT)
    expected = page.evaluate("abtest.ready")
    page.evaluate("abtest.track('signup')")
    page.goto("about:blank")  # pagehide: the queue leaves with navigator.sendBeacon

    def stored() -> list[dict]:
        rows = live.events(unit)
        return rows if any(r["type"] == "conversion" for r in rows) else []

    # A beacon POST carries credentials mode "include": the server's CORS preflight answer must
    # echo the page's Origin and allow credentials ("*" is refused by the browser).
    rows = wait_until(stored, timeout=4, what="beacon events (check CORS: echo Origin + allow credentials)")
    kinds = {(r["experiment"], r["type"]) for r in rows}
    assert kinds >= {(k, t) for k in expected for t in ("exposure", "conversion")}


def test_forced_variant_is_recorded_as_forced(page, shop, live):  # type: ignore[no-untyped-def]
    page.goto(shop)
    unit = page.evaluate(UNIT)
    natural = live.python_variants(unit)["live-hero"]
    other = "blue" if natural == "control" else "control"
    page.goto(f"{shop}?abtest_live-hero={other}")
    page.evaluate("abtest.ready")  # variant() answers null until the config has loaded
    assert page.evaluate("abtest.variant('live-hero')") == other
    page.evaluate("abtest.flush()")

    def forced_rows() -> list[dict]:
        return [r for r in live.events(unit) if r["forced"]]

    rows = wait_until(forced_rows, timeout=5, what="the forced exposure")
    exposures = [(r["experiment"], r["variant"]) for r in rows if r["type"] == "exposure"]
    assert exposures == [("live-hero", other)]
    assert {r["experiment"] for r in rows} == {"live-hero"}  # only the forced experiment is flagged
    assert page.errors == []


def test_results_break_down_by_what_the_page_sent(context, site, live):  # type: ignore[no-untyped-def]
    """Two visitors from two countries: their exposures carry the page's attributes and device,
    and the results document splits live-hero by country with one unit in each segment."""
    units = {}
    for country in ("DE", "AT"):
        context.clear_cookies()
        page = context.new_page()
        page.goto(site.page(f"live-{country}.html", snippet_page(
            "abtest.js", BODY, key=live.key, api=live.url, attributes=json.dumps({"country": country}))))
        units[country] = page.evaluate("abtest.unit")
        page.evaluate("abtest.ready.then(() => abtest.flush())")
        page.evaluate("() => localStorage.clear()")  # the next visitor is a new one
        page.close()

    def stored() -> dict[str, list]:
        with sqlite3.connect(f"file:{live.database}?mode=ro", uri=True) as db:
            rows = db.execute("""SELECT e.unit, e.attributes FROM events e JOIN experiments x ON x.id = e.experiment_id
                                 WHERE x.key = 'live-hero' AND e.type = 'exposure' AND e.unit IN (?, ?)""",
                              tuple(units.values())).fetchall()
        return rows if len(rows) == 2 else []

    rows = wait_until(stored, timeout=8, what="both exposures in the database")
    by_unit = {unit: json.loads(attributes) for unit, attributes in rows}
    for country, unit in units.items():
        assert by_unit[unit] == {"device": "desktop", "country": country}

    document = json.loads(_cli(live.env, "analyze", "live-hero", "--by", "country", "--format", "json"))
    segments = {s["segment"]: s for s in document["metrics"][0]["segments"]}
    assert {"DE", "AT"} <= segments.keys()
    assert sum(v["n"] for v in segments["AT"]["variants"]) == 1  # the one Austrian visitor
    assert sum(v["n"] for v in segments["DE"]["variants"]) >= 1  # (the other tests' visitors are German too)
    sizes = {s["segment"]: sum(s["units"].values()) for s in document["breakdown"]["segments"]}
    assert sizes["AT"] == 1 and sizes["DE"] >= 1
