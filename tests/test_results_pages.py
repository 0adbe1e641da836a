"""Result pages (web.results): the HTML report with its charts, its htmx fragment, its JSON twin.

Runs on SQLite and PostgreSQL through the ``engine`` fixture. The demo data give a realistic
running sequential test and a stopped fixed test with a winner; the edge cases (SRM, a fixed
test before its plan, no data) are written as events with known counts.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from abtest import pipeline
from abtest.pipeline import analyze
from abtest.kinds import parse_definition
from abtest.demo import seed_demo
from abtest.store.events import write_events

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def event(experiment_id: int, type_: str, unit: str, variant: str, ts: datetime, **fields):  # type: ignore[no-untyped-def]
    row = {"event_id": str(uuid.uuid4()), "type": type_, "experiment_id": experiment_id, "variant": variant,
           "unit": unit, "event": None, "value": None, "task": None, "success": None, "duration_ms": None,
           "questionnaire": None, "answers": None, "forced": False, "ts": ts, "received_at": ts}
    row.update(fields)
    return row


def create(session, **changes) -> int:  # type: ignore[no-untyped-def]
    raw = {"key": "cta-colour", "name": "CTA colour", "status": "running", "analysis": "fixed",
           "plan": {"units_per_variant": 200},
           "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}],
           "metrics": [{"name": "purchase", "type": "conversion", "primary": True},
                       {"name": "checkout-time", "type": "duration", "task": "checkout"}]}
    raw.update(changes)
    row = pipeline.create(session, parse_definition(raw))
    session.commit()
    assert row.id is not None
    return row.id


def write(engine, experiment_id: int, exposed: dict[str, int], converted: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    """``exposed[v]`` units in variant ``v``, the first ``converted[v]`` of them buying after exposure."""
    rows = []
    for variant, n in exposed.items():
        for i in range(n):
            unit, seen = f"{variant}-{i}", T0 + timedelta(minutes=i)
            rows.append(event(experiment_id, "exposure", unit, variant, seen))
            if i < converted.get(variant, 0):
                rows.append(event(experiment_id, "conversion", unit, variant, seen + timedelta(minutes=2),
                                  event="purchase", value=10.0))
    with engine.begin() as conn:
        write_events(conn, rows)


def page(client, key: str, **headers: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    response = client.get(f"/experiments/{key}/results", headers=headers)
    return response.status_code, response.get_data(as_text=True)


@pytest.fixture
def demo(engine):  # type: ignore[no-untyped-def]
    seed_demo(engine)
    return engine


# ---- access ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/experiments/checkout-button/results", "/experiments/checkout-button/results.json"])
def test_logged_out_is_sent_to_login(client, engine, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", ["/experiments/no-such-test/results", "/experiments/no-such-test/results.json"])
def test_unknown_experiment_is_a_404_page(logged_in, path):
    response = logged_in.get(path)
    assert response.status_code == 404
    assert "no experiment with key" in response.get_data(as_text=True)


# ---- the demo pages -------------------------------------------------------------------------------------

def test_running_sequential_demo_page(logged_in, demo):
    report = analyze(demo, "checkout-button")
    status, body = page(logged_in, "checkout-button")
    assert status == 200 and body.startswith("<!doctype html>")
    verdict = body.index(html.escape(report.verdict))
    # the verdict comes first: before the sample, the tables and the charts
    assert verdict < body.index("<table") and verdict < body.index("<svg") and verdict < body.index("Planned sample")
    assert 'class="verdict"' in body[verdict - 80:verdict]
    # the methods are named: variant intervals, always-valid comparisons, the plan, chance to beat
    for method in ("Wilson score interval", "always-valid mSPRT", "geometric mean of successful task times",
                   report.power.method, "Gaussian posterior under the same N(0, τ²) prior the always-valid test"):
        assert method in body, method
    assert body.count('class="method"') >= 7
    assert ">always-valid p</th>" in body
    # tables: captions and scoped headers; numbers in the metric's units
    # five metrics: variants, comparisons; the linked survey's two metrics (variants, comparisons)
    assert body.count("<table>") == 14 and body.count("<caption>") == 14
    assert '<th scope="col"' in body and '<th scope="row"' in body
    assert "11.0%" in body and " s</td>" in body and "faster" in body and " pts</td>" in body
    # page speed: p75 in ms with the methods named, the good share in %, the distribution drawn
    assert " ms</td>" in body and "Deng, Knoblich &amp; Lu 2018" in body and "Howard &amp; Ramdas 2022" in body
    assert "delta-method interval, clustered by visitor" in body
    # charts: a forest plot per metric, the distribution of LCP and the cumulative chart, inline
    # SVG with text alternatives; and the linked CSAT survey's two forest plots
    assert body.count("<svg") == 9
    assert 'aria-label="Forest plot of purchase' in body and 'aria-label="Cumulative effect on purchase' in body
    assert 'aria-label="Distribution of lcp per variant' in body and "good &lt;= 2500" not in body
    assert body.count('role="img"') == 9
    # a running test polls for fresh numbers; the balanced split shows no alarm
    assert 'hx-trigger="every 60s"' in body
    assert 'class="banner"' not in body


def test_stopped_fixed_demo_with_a_winner(logged_in, demo):
    report = analyze(demo, "onboarding-copy")
    status, body = page(logged_in, "onboarding-copy")
    assert status == 200
    assert html.escape(report.verdict) in body and report.verdict.startswith("Significant: short raises signup by")
    assert ">p</th>" in body and "Holm-adjusted p</th>" in body
    assert "two-proportion z-test" in body and "Holm correction" in body
    assert body.count('class="significant"') == sum(c.significant for c in report.metrics[0].comparisons) == 1
    assert "hx-trigger" not in body.split('id="results"')[1].split(">")[0]  # a stopped test does not poll


def test_json_twin_is_the_api_document(logged_in, demo):
    for key in ("checkout-button", "onboarding-copy", "pricing-layout"):
        response = logged_in.get(f"/experiments/{key}/results.json")
        assert response.status_code == 200 and response.mimetype == "application/json"
        assert response.get_json() == json.loads(json.dumps(analyze(demo, key).to_dict()))


def _cell(value) -> str:  # type: ignore[no-untyped-def]
    return "" if value is None else repr(value)


@pytest.mark.parametrize("key, by", [("checkout-button", None), ("onboarding-copy", None), ("pricing-layout", None),
                                     ("checkout-study", None), ("checkout-button", "device"),
                                     ("checkout-study", "device")])
def test_csv_twin_has_every_metric_and_variant_of_the_json_document(logged_in, demo, key, by):
    query = f"?by={by}" if by else ""
    response = logged_in.get(f"/experiments/{key}/results.csv{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{key}-results{f"-by-{by}" if by else ""}.csv"')
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    document = logged_in.get(f"/experiments/{key}/results.json{query}").get_json()
    expected = []
    for metric in document["metrics"]:
        for segment, part in [("", metric), *((s["segment"], s) for s in metric.get("segments", []))]:
            for v in part["variants"]:
                base = {"metric": metric["name"], "segment": segment, "variant": v["variant"], "unit": metric["unit"],
                        "n": str(v["n"]), "value": _cell(v["value"]), "ci_low": _cell((v["ci"] or [None])[0]),
                        "ci_high": _cell((v["ci"] or [None, None])[1]), "reason": v.get("reason", "")}
                mine = [c for c in part["comparisons"] if c["variant"] == v["variant"]]
                blank = dict.fromkeys(("baseline", "effect_kind", "effect", "effect_ci_low", "effect_ci_high", "p",
                                       "p_adjusted", "significant", "method", "comparison_reason"), "")
                expected += [{**base, **blank}] if not mine else [{
                    **base, "baseline": c["baseline"], "effect_kind": c["effect_kind"], "effect": _cell(c["effect"]),
                    "effect_ci_low": _cell((c["ci"] or [None])[0]), "effect_ci_high": _cell((c["ci"] or [None, None])[1]),
                    "p": _cell(c["p_value"]), "p_adjusted": _cell(c["p_adjusted"]),
                    "significant": "true" if c["significant"] else "false", "method": c["method"],
                    "comparison_reason": c.get("reason", "")} for c in mine]
    assert rows == expected
    assert len(rows) == sum(len(m["variants"]) + sum(len(s["variants"]) for s in m.get("segments", []))
                            for m in document["metrics"])  # one row per metric × variant (× segment)
    numbers = [r for r in rows if r["value"]]
    assert all(float(r["value"]) == next(v["value"] for m in document["metrics"] if m["name"] == r["metric"]
                                         for v in m["variants"] if v["variant"] == r["variant"])
               for r in numbers if not r["segment"])
    if key == "checkout-button" and not by:
        green = next(r for r in rows if (r["metric"], r["variant"]) == ("purchase", "green"))
        assert green["baseline"] == "control" and green["method"].startswith("always-valid")
        assert float(green["effect_ci_low"]) < float(green["effect"]) < float(green["effect_ci_high"])
    if by:
        assert {r["segment"] for r in rows} > {""}


def test_csv_twin_needs_a_login_and_a_known_key(client, logged_in, demo):
    logged_out = client.application.test_client().get("/experiments/checkout-button/results.csv")
    assert logged_out.status_code == 302 and logged_out.headers["Location"].startswith("/login?next=")
    assert logged_in.get("/experiments/no-such-test/results.csv").status_code == 404


def test_results_page_links_the_csv_beside_the_json(logged_in, demo):
    for key in ("checkout-button", "checkout-study"):
        _status, body = page(logged_in, key)
        tools = re.search(r'<p class="results-tools">\s*<a href="/experiments/.*?</p>', body, re.DOTALL)
        assert tools, key  # the #results fragment's tools (a study's page has its own above)
        assert (f'<a href="/experiments/{key}/results.json">JSON</a> · '
                f'<a href="/experiments/{key}/results.csv">CSV</a>') in tools.group(0)
    fragment = logged_in.get("/experiments/checkout-button/results?by=device", headers={"HX-Request": "true"})
    assert "results.csv?by=device" in fragment.get_data(as_text=True)


# ---- htmx --------------------------------------------------------------------------------------------------

@pytest.fixture
def running(engine, session):  # type: ignore[no-untyped-def]
    """A small running fixed test with data: enough for every part of the page."""
    write(engine, create(session), {"control": 200, "green": 200}, {"control": 20, "green": 30})
    return "cta-colour"


def test_htmx_request_gets_the_fragment_only(logged_in, engine, running):
    response = logged_in.get(f"/experiments/{running}/results", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body and "<head" not in body and "<nav" not in body
    assert body.lstrip().startswith('<section id="results"')
    assert html.escape(analyze(engine, running).verdict) in body and "<svg" in body
    assert 'hx-get="/experiments/cta-colour/results" hx-trigger="every 60s" hx-swap="outerHTML"' in body
    assert "HX-Request" in response.headers["Vary"]


def test_full_page_varies_on_hx_request_too(logged_in, running):
    response = logged_in.get(f"/experiments/{running}/results")
    assert "<html" in response.get_data(as_text=True)
    assert "HX-Request" in response.headers["Vary"]


def test_history_restore_gets_the_full_page(logged_in, running):
    status, body = page(logged_in, running, **{"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert status == 200 and "<html" in body and '<section id="results"' in body


# ---- edge cases ----------------------------------------------------------------------------------------------

def test_draft_without_data_says_what_to_do_next(logged_in, session):
    create(session, key="pricing-layout", status="draft")
    status, body = page(logged_in, "pricing-layout")
    assert status == 200
    assert "No data yet" in body and "Install the snippet" in body
    assert 'href="/experiments/pricing-layout/install"' in body
    assert "Launch the experiment" in body
    assert "<svg" not in body and "<table" not in body


def test_sample_ratio_mismatch_shows_the_banner(logged_in, engine, session):
    write(engine, create(session), {"control": 600, "green": 400}, {"control": 60, "green": 48})
    report = analyze(engine, "cta-colour")
    assert report.srm.alarm
    status, body = page(logged_in, "cta-colour")
    assert status == 200
    banner = body[body.index('class="banner"'):]
    banner = banner[:banner.index("</div>")]
    assert "The split is off" in banner and "not trustworthy" in banner
    assert f"p = {report.srm.p_value:.2g}" in banner and "chi-square goodness of fit" in banner
    assert ">600</td>" in banner and ">400</td>" in banner and ">500</td>" in banner  # observed vs expected
    # no task was ever timed: reasons stand where the numbers would be
    assert "No estimate: no units yet in one of the variants" in body
    assert body.count(">no units yet</td>") == 2


def test_fixed_test_before_its_plan_shows_no_significant_badge(logged_in, engine, session):
    experiment = create(session, plan={"units_per_variant": 1000})
    write(engine, experiment, {"control": 300, "green": 300}, {"control": 30, "green": 60})
    comparison = analyze(engine, "cta-colour").metrics[0].comparisons[0]
    assert comparison.p_value < 0.01 and not comparison.significant  # a clear effect, but too early to call
    status, body = page(logged_in, "cta-colour")
    assert status == 200
    assert 'class="significant"' not in body
    assert "not before the planned sample" in body and "Too early to call" in body
    assert "Planned sample: 300 of 1,000 units per variant" in body
    assert '<progress id="progress-plan" value="300" max="1000">' in body



# ---- break down by an attribute -----------------------------------------------------------------------

def test_break_down_control_lists_attributes_and_shows_segments(logged_in, demo):
    status, body = page(logged_in, "checkout-button")
    assert '<select id="by" name="by"' in body and '<option value="device">device</option>' in body
    assert 'id="breakdown"' not in body
    report = analyze(demo, "checkout-button", by="device")
    response = logged_in.get("/experiments/checkout-button/results?by=device", headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and fragment.startswith('<section id="results"')  # the htmx fragment only
    assert 'id="breakdown"' in fragment and '<option value="device" selected>' in fragment
    assert "exploratory" in fragment and "Holm-adjusted across segments" in fragment.replace("\n", " ")
    for segment in report.breakdown.segments:
        assert f'<th scope="row">{segment.segment}</th>' in fragment
        assert f'{segment.units["control"]:,}' in fragment
    purchase = next(m for m in report.metrics if m.name == "purchase")
    from web.charts import format_p

    for segment in purchase.segments:
        assert format_p(segment.comparisons[0].p_adjusted) in fragment
    assert 'results.json?by=device' in fragment  # the JSON twin of what is shown


def test_break_down_by_an_attribute_nobody_sent_says_so_on_the_page(logged_in, demo):
    response = logged_in.get("/experiments/checkout-button/results?by=country")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "No unit&#39;s first exposure has carried the attribute &#39;country&#39; yet" in body


def test_a_bad_break_down_name_is_a_field_error_page(logged_in, demo):
    response = logged_in.get("/experiments/checkout-button/results?by=no%20spaces")
    assert response.status_code == 422 and "not an attribute name" in response.get_data(as_text=True)
