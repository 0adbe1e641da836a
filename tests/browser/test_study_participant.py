"""A usability-study participant in headless Chromium against a real `abtest serve`.

The study is set up the way a researcher would: a TOML file synced with `abtest sync`, designs that
are pages of another site (the static server's origin) carrying the paste-ready snippet with a
public key. That site also runs an ordinary A/B test, which must not count the participant.
The participant consents, finishes task 1 by reaching the success URL on the tested site (reported
by abtest-study.js with the signed token the design link carried; the runner moves on by itself),
reports task 2 done, answers both SEQs and the SUS, and gets the completion code. Meanwhile an
attacker who knows the participant id gets nowhere: another browser with the same link is
refused, and a forged or replayed token posted from the tested site's origin stores nothing. The
study results must hold exactly the participant's answers and times.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.live_server import ABTEST, abtest_env, live_server, run_abtest

from .conftest import loader_page, wait_until

pytestmark = pytest.mark.browser

STUDY = """
kind = "study"
key = "shop-study"
name = "Shop usability study"
status = "running"
questionnaires = ["SUS"]
completion_code = "SHOP-2026"
consent = "We record task times, whether you reached the goal, and your answers."

[[designs]]
key = "classic"
name = "Classic shop"
url = "{site}/design-classic.html?lang=en"

[[designs]]
key = "modern"
name = "Modern shop"
url = "{site}/design-modern.html?lang=en"

[[tasks]]
key = "order"
prompt = "Order the blue mug."
success_url = "*/confirmation.html*"
time_limit = 600

[[tasks]]
key = "contact"
prompt = "Find the shop's phone number."
success = "self-report"
"""
# The tested site's own A/B test, running while the study does: participants must stay out of it.
SITE_EXPERIMENT = """
key = "site-hero"
name = "Hero banner"
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
"""
EMAIL = "researcher@example.com"
PASSWORD = "correct horse battery"
SEQ_ANSWERS = {"order": 6, "contact": 3}
SUS_ANSWERS = [4, 2, 5, 1, 4, 2, 5, 2, 4, 1]
# Brooke (1996): odd items score - 1, even items 5 - score, sum x 2.5.
SUS_SCORE = 2.5 * sum(a - 1 if i % 2 == 0 else 5 - a for i, a in enumerate(SUS_ANSWERS))
STYLE = "<style>body{font:18px system-ui;margin:40px;max-width:40em} a{font-size:1.2em}</style>"


def _cli(env: dict[str, str], *args: str) -> str:
    done = run_abtest(env, *args)
    assert done.returncode == 0, f"abtest {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _shot(page, artifacts: Path, name: str, full_page: bool = True) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(artifacts / f"study-{name}.png"), full_page=full_page)


# Posts a report the way abtest-study.js does, from the page's own origin; answers the status.
POST_REACHED = """async ([api, token]) => (await fetch(api + '/s/shop-study/reached', {
    method: 'POST', mode: 'cors', credentials: 'omit', headers: {'Content-Type': 'text/plain'},
    body: JSON.stringify({token, url: location.origin + '/confirmation.html?order=17'})})).status"""
# A token made by someone who knows its format but not the server's key: the participant's row,
# the running step and task, a far expiry, and a made-up signature.
FORGED = "btoa(JSON.stringify({s: 'shop-study', p: 1, n: 0, t: 'order', e: 9999999999})).replace(/=+$/, '') + '.forged'"


def _task_rows(database: Path) -> int:
    return len(_rows(database, "SELECT id FROM events WHERE type = 'task'"))


def _rows(database: Path, sql: str, *args: object) -> list[dict]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql, args).fetchall()]


def test_participant_completes_a_study_with_url_success(page, context, site, tmp_path, artifacts):  # type: ignore[no-untyped-def]
    database = tmp_path / "study.db"
    env = abtest_env(tmp_path, f"sqlite:///{database}")
    (tmp_path / "shop-study.toml").write_text(STUDY.format(site=site.url))
    (tmp_path / "site-hero.toml").write_text(SITE_EXPERIMENT)
    _cli(env, "sync", str(tmp_path / "shop-study.toml"), str(tmp_path / "site-hero.toml"))
    key = _cli(env, "token", "create", "--public", "--name", "study-site").strip().splitlines()[-1]
    assert key.startswith("pk_")
    created = subprocess.run([*ABTEST, "user", "create", EMAIL, "--password-stdin"], env=env, cwd=tmp_path,
                             input=PASSWORD + "\n", capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stderr

    with live_server(env, workers=1) as server:
        def tested_page(title: str, body: str) -> str:
            return loader_page(f"{server.url}/static/abtest.js", f"<h1>{title}</h1>{body}",
                               STYLE + "<script>addEventListener('click', () => abtest.track('purchase'))</script>",
                               key=key)

        for design in ("classic", "modern"):
            site.page(f"design-{design}.html", tested_page(
                f"{design.title()} shop", "<p>Blue mug, 9 €.</p><a id='buy' href='confirmation.html?order=17'>"
                "Buy the blue mug</a><p>Call us: 0123 456</p>"))
        site.page("confirmation.html", tested_page("Thank you for your order", "<p>Order 17 confirmed.</p>"))

        page.set_viewport_size({"width": 900, "height": 800})
        page.goto(f"{server.url}/s/shop-study?pid=tester-1")
        assert "What we record" in page.content()
        _shot(page, artifacts, "1-consent")
        page.click("button:has-text('I agree')")
        page.wait_for_url("**/s/shop-study/step")

        # Task 1: success by reaching the confirmation page on the tested site.
        assert "Order the blue mug." in page.inner_text("main")
        page.click("button:has-text('Start task')")
        page.wait_for_selector("#task-link")
        href = page.get_attribute("#task-link", "href")
        assert "lang=en&abtest_study=shop-study&abtest_token=" in href and "tester-1" not in href
        assert "Checking…" in page.inner_text("#checking")
        _shot(page, artifacts, "2-task")
        with context.expect_page() as opened:
            page.click("#task-link")
        design_tab = opened.value
        design_tab.wait_for_load_state()
        wait_until(lambda: design_tab.evaluate("sessionStorage.getItem('abtest_study')"),
                   what="the study kept for the next pages")
        # Not part of the site's A/B test: control, no variant, and (below) no events at all.
        assert design_tab.evaluate("abtest.ready") == {}
        assert design_tab.evaluate("abtest.variant('site-hero')") is None
        assert design_tab.evaluate("document.documentElement.getAttribute('data-abtest-site-hero')") is None
        # A forged token posted from the tested site's origin: refused, nothing stored.
        assert site.url != server.url
        assert design_tab.evaluate(POST_REACHED, [server.url, design_tab.evaluate(FORGED)]) == 403
        assert _task_rows(database) == 0
        # The participant id alone opens nothing in another browser either.
        intruder = context.browser.new_context()
        stranger = intruder.new_page()
        refused = stranger.goto(f"{server.url}/s/shop-study?pid=tester-1")
        assert refused.status == 403 and "Already taking part in another browser" in stranger.inner_text("main")
        _shot(stranger, artifacts, "2b-taken")
        assert stranger.goto(f"{server.url}/s/shop-study/step").url.endswith("/s/shop-study")  # to consent
        intruder.close()
        design_tab.click("#buy")
        design_tab.wait_for_url("**/confirmation.html?order=17")
        assert design_tab.evaluate("abtest.ready") == {}  # a later page, no query: still out
        _shot(design_tab, artifacts, "3-tested-site")
        # The genuine token, replayed once it has ended the task: refused.
        page.wait_for_selector("text=How was that task?", timeout=10_000)
        genuine = design_tab.evaluate("JSON.parse(sessionStorage.getItem('abtest_study')).token")
        assert genuine and genuine in href
        assert design_tab.evaluate(POST_REACHED, [server.url, genuine]) == 403
        assert _task_rows(database) == 1
        # The runner tab polls every 2 s and moves on to the SEQ by itself.
        page.wait_for_selector("text=How was that task?", timeout=10_000)
        design_tab.close()
        page.check("input[name='SEQ-1'][value='6']")
        page.click("button:has-text('Next')")

        # Task 2: self-reported.
        page.wait_for_selector("text=Find the shop's phone number.")
        page.click("button:has-text('Start task')")
        page.wait_for_selector("#task-link")
        assert page.query_selector("#checking") is None  # nothing to detect for a self-reported task
        page.click("button:has-text(\"I'm done\")")
        page.wait_for_selector("text=How was that task?")
        page.check("input[name='SEQ-1'][value='3']")
        page.click("button:has-text('Next')")

        # The SUS: every item required.
        page.wait_for_selector("text=I think that I would like to use this system frequently.")
        page.click("button:has-text('Next')")  # nothing chosen: refused, all ten flagged
        page.wait_for_selector("[role=alert]")
        assert page.locator("fieldset[aria-invalid=true]").count() == 10
        _shot(page, artifacts, "4-sus-missing")
        for i, value in enumerate(SUS_ANSWERS, start=1):
            page.check(f"input[name='SUS-{i}'][value='{value}']")
        _shot(page, artifacts, "4-sus-filled")
        page.click("button:has-text('Next')")
        page.wait_for_url("**/s/shop-study/thanks")
        assert "SHOP-2026" in page.inner_text("main")
        _shot(page, artifacts, "5-thanks")
        assert page.errors == []

        # What the database holds: exactly this participant's answers and times.
        (participant,) = _rows(database, "SELECT * FROM study_participants")
        assert participant["pid"] == "tester-1" and participant["finished_at"] is not None
        design = json.loads(participant["designs"])[0]
        # The snippet on the tested pages sent nothing: no exposure, click or page-load timing
        # of site-hero, although the participant saw its pages and clicked "Buy".
        assert _rows(database, "SELECT e.type FROM events e JOIN experiments x ON x.id = e.experiment_id "
                               "WHERE x.key = 'site-hero'") == []
        tasks = _rows(database, "SELECT unit, variant, task, success, duration_ms FROM events "
                                "WHERE type = 'task' ORDER BY id")
        assert [(t["unit"], t["variant"], t["task"], t["success"]) for t in tasks] == [
            ("tester-1", design, "order", 1), ("tester-1", design, "contact", 1)]
        assert all(0 < t["duration_ms"] < 120_000 for t in tasks)
        responses = _rows(database, "SELECT unit, task, questionnaire, answers FROM events "
                                    "WHERE type = 'response' ORDER BY id")
        assert [(r["unit"], r["task"], r["questionnaire"], json.loads(r["answers"])) for r in responses] == [
            ("tester-1", "order", "SEQ", [6]), ("tester-1", "contact", "SEQ", [3]),
            ("tester-1", None, "SUS", SUS_ANSWERS)]

        # The researcher's view: log in, read the study results (page and JSON).
        page.goto(f"{server.url}/experiments/shop-study/results")
        page.fill("#email", EMAIL)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/experiments/shop-study/results")
        page.set_viewport_size({"width": 1280, "height": 900})
        _shot(page, artifacts, "6-results", full_page=False)  # the page is long; its top
        # The planner answers through htmx, without leaving the page.
        page.fill("#planner input[name=n]", "10")
        page.dispatch_event("#planner input[name=n]", "change")
        page.wait_for_selector("#plan-result >> text=With 10 participants")
        assert "97.6 %" in page.inner_text("#plan-result")
        page.locator("#planner").screenshot(path=str(artifacts / "study-7-planner.png"))
        document = page.request.get(f"{server.url}/experiments/shop-study/results.json").json()
        csv_text = page.request.get(f"{server.url}/experiments/shop-study/responses.csv").text()
    check_results(document, csv_text, design)


def check_results(document: dict, csv_text: str, design: str) -> None:
    """The researcher's results hold exactly this one participant: both tasks successful on their
    design, nothing on the other, one SEQ and SUS each, and the SUS scored as Brooke scores it."""
    import csv
    import io

    from abtest.questionnaires import SUS

    other = ({"classic", "modern"} - {design}).pop()
    assert document["kind"] == "study" and document["units"] == {design: 1, other: 0}
    assert {p["design"]: (p["started"], p["finished"]) for p in document["participants"]} == {
        design: (1, 1), other: (0, 0)}
    metrics = {m["name"]: {v["variant"]: v for v in m["variants"]} for m in document["metrics"]}
    for task in ("order", "contact"):
        assert (metrics[f"{task}-success"][design]["n"], metrics[f"{task}-success"][design]["value"]) == (1, 1.0)
        assert metrics[f"{task}-success"][other]["n"] == 0
        assert metrics[f"{task}-time"][design]["n"] == 1 and metrics[f"{task}-SEQ"][design]["n"] == 1
    assert metrics["SUS"][design]["n"] == 1 and metrics["SUS"][other]["n"] == 0
    # One participant gives no interval, so the values themselves come from the CSV export.
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert {r["participant"] for r in rows} == {"tester-1"}
    assert [(r["type"], r["task"], r["success"], r["questionnaire"], r["answers"]) for r in rows] == [
        ("task", "order", "1", "", ""), ("response", "order", "", "SEQ", "6"),
        ("task", "contact", "1", "", ""), ("response", "contact", "", "SEQ", "3"),
        ("response", "", "", "SUS", ";".join(map(str, SUS_ANSWERS)))]
    assert all(0 < float(r["duration_ms"]) < 120_000 for r in rows if r["type"] == "task")
    sus = [int(a) for a in rows[-1]["answers"].split(";")]
    assert SUS.score(sus) == SUS_SCORE == 85.0
