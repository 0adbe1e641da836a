"""Page speed from real page views: abtest-vitals.js (Google's web-vitals) reports LCP, FCP, TTFB and
CLS of an exposed visitor as `vital` events that reach the database (issue 16, "Collection").

The customer page is on the static server's origin with the paste-ready snippet (web/snippet.py);
abtest.js, abtest-vitals.js and the API come from the real Flask app on another origin, run in this
process so the config can name the experiment's vitals.

`speed` measures page speed the way a designer defines it (a quantile metric per vital, a
threshold metric on LCP), so the config names its vitals, and the page views reported appear in
its results.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live_server import app_thread

from .conftest import loader_page, wait_until

pytestmark = pytest.mark.browser

EXPERIMENTS = {
    "speed": """
key = "speed"
name = "Lighter hero image"
status = "running"
targeting = { country = ["DE"] }
[[variants]]
key = "control"
weight = 0.5
[[variants]]
key = "light"
weight = 0.5
[[metrics]]
name = "purchase"
type = "conversion"
[[metrics]]
name = "lcp"
type = "quantile"
vital = "LCP"
[[metrics]]
name = "good-lcp"
type = "threshold"
vital = "LCP"
[[metrics]]
name = "fcp"
type = "quantile"
vital = "FCP"
[[metrics]]
name = "ttfb"
type = "quantile"
vital = "TTFB"
[[metrics]]
name = "cls"
type = "quantile"
vital = "CLS"
[[metrics]]
name = "inp"
type = "quantile"
vital = "INP"
""",
    "copy": """
key = "copy"
name = "Shorter headline"
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
}
VITALS = ["CLS", "FCP", "INP", "LCP", "TTFB"]
# A contentful paint, and a late banner pushing the text down.
BODY = """<h1>Spring sale</h1><p id="p">Everything must go.</p>
<script>setTimeout(() => document.getElementById('p').insertAdjacentHTML('beforebegin',
  '<div style="height:200px;background:#eee">Late banner</div>'), 700)</script>"""


@dataclass
class Server:
    url: str
    key: str
    database: Path

    def vitals(self, unit: str) -> list[dict]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("""SELECT x.key AS experiment, e.variant, e.event, e.value, e.attributes, e.forced
                                 FROM events e JOIN experiments x ON x.id = e.experiment_id
                                 WHERE e.unit = ? AND e.type = 'vital' ORDER BY e.id""", (unit,)).fetchall()
        return [dict(row, attributes=json.loads(row["attributes"])) for row in rows]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with app_thread(tmp_path_factory.mktemp("vitals"), EXPERIMENTS, "vitals-tests") as (url, key, database):
        yield Server(url, key, database)


def _visit(page, site, server, country: str) -> tuple[str, dict, list[str]]:  # type: ignore[no-untyped-def]
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    url = site.page(f"vitals-{country}.html", loader_page(f"{server.url}/static/abtest.js", BODY, key=server.key,
                                                          attributes=json.dumps({"country": country})))
    page.goto(url + "?utm_source=mail&x=1")
    assigned = page.evaluate("abtest.ready")
    unit = page.evaluate("abtest.unit")
    page.wait_for_timeout(1200)  # the late banner shifts the layout
    page.goto("about:blank")  # page hide: web-vitals reports LCP and CLS, the queue leaves by beacon
    return unit, assigned, requested


def test_vitals_of_an_exposed_visitor_reach_the_database(page, site, server):  # type: ignore[no-untyped-def]
    unit, assigned, requested = _visit(page, site, server, "DE")
    assert assigned.keys() == {"speed", "copy"}
    assert f"{server.url}/static/abtest-vitals.js" in requested
    wanted = {"LCP", "FCP", "TTFB", "CLS"}

    def arrived() -> list[dict]:
        rows = server.vitals(unit)
        return rows if {r["event"] for r in rows} >= wanted else []

    rows = wait_until(arrived, timeout=8, what="the LCP, FCP, TTFB and CLS events in the database")
    # Only the experiment that asks for vitals gets them, once per vital for this page view.
    assert {r["experiment"] for r in rows} == {"speed"}
    assert sorted(r["event"] for r in rows if r["event"] in wanted) == sorted(wanted)
    for row in rows:
        assert row["variant"] == assigned["speed"] and not row["forced"]
        assert row["attributes"] == {"path": "/vitals-DE.html", "navigation": "navigate"}
        assert row["value"] >= 0
    values = {r["event"]: r["value"] for r in rows}
    assert 0 < values["FCP"] <= values["LCP"] < 10_000 and values["TTFB"] <= values["FCP"]
    assert 0 <= values["CLS"] < 1  # (headless Chromium reported no layout-shift entry for the late banner)
    assert page.errors == []
    # ... and they are what the results count. A second visitor of the same variant, with half
    # this page view's values, sent through the API: the p75 of two page views (R type 1: the
    # second of two) is then the browser's own value.
    import urllib.request
    import uuid
    from datetime import UTC, datetime

    from abtest.db import make_engine
    from abtest.pipeline import analyze

    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    second = [{"id": str(uuid.uuid4()), "type": "exposure", "experiment": "speed", "unit": "second-visitor",
               "variant": assigned["speed"], "ts": now}]
    second += [{"id": str(uuid.uuid4()), "type": "vital", "experiment": "speed", "unit": "second-visitor",
                "event": vital, "value": values[vital] / 2, "ts": now} for vital in ("LCP", "FCP", "TTFB", "CLS")]
    request = urllib.request.Request(f"{server.url}/api/v1/events?key={server.key}", method="POST",
                                     data=json.dumps({"events": second}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.load(answer)["accepted"] == len(second)

    engine = make_engine(f"sqlite:///{server.database}")
    try:
        report = analyze(engine, "speed")
    finally:
        engine.dispose()
    by_name = {m.name: m for m in report.metrics}
    for name, vital in (("lcp", "LCP"), ("fcp", "FCP"), ("ttfb", "TTFB"), ("cls", "CLS")):
        mine = next(v for v in by_name[name].variants if v.variant == assigned["speed"])
        assert mine.n == 2 and mine.value == pytest.approx(values[vital]), (name, mine)


def test_a_visitor_without_vitals_never_loads_the_module(page, site, server):  # type: ignore[no-untyped-def]
    unit, assigned, requested = _visit(page, site, server, "FR")
    assert assigned.keys() == {"copy"}  # `speed` targets DE only
    assert f"{server.url}/static/abtest.js" in requested
    assert not [u for u in requested if "abtest-vitals" in u]
    assert server.vitals(unit) == []
    assert page.errors == []


def test_a_forced_visitor_sends_no_vitals(page, site, server):  # type: ignore[no-untyped-def]
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    url = site.page("vitals-forced.html", loader_page(f"{server.url}/static/abtest.js", BODY, key=server.key,
                                                      attributes=json.dumps({"country": "DE"})))
    page.goto(url + "?abtest_speed=light")
    assert page.evaluate("abtest.ready")["speed"] == "light"
    assert not [u for u in requested if "abtest-vitals" in u]
