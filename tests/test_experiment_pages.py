"""Designer experiment pages: the definition form, validation as you type, the sample-size
helper, lifecycle moves and the install page (Flask test client, CSRF on, both databases)."""

from __future__ import annotations

import html
import re
import tomllib
from html.parser import HTMLParser

import pytest
from sqlmodel import Session, select

from abtest import pipeline
from abtest.kinds import parse_definition
from abtest.models import ApiToken, Experiment
from tests.conftest import csrf_token_from
from web.snippet import paste_snippet

HTMX = {"HX-Request": "true"}

VALID_FORM = {
    "key": "hero-copy", "name": "Hero copy", "hypothesis": "Shorter copy raises sign-ups",
    "analysis": "fixed", "alpha": "0.05", "coverage": "0.8",
    "variants-0-key": "control", "variants-0-name": "Control", "variants-0-weight": "0.5",
    "variants-1-key": "short", "variants-1-name": "Short copy", "variants-1-weight": "0.5",
    "metrics-0-name": "signup", "metrics-0-type": "conversion", "metrics-0-event": "",
    "metrics-0-task": "", "metrics-0-days": "",
    "metrics-1-name": "revenue", "metrics-1-type": "mean", "metrics-1-event": "purchase",
    "metrics-1-task": "", "metrics-1-days": "",
    "primary": "0",
    "targeting-0-attribute": "country", "targeting-0-values": "DE, AT",
    "namespace-name": "home", "namespace-start": "0", "namespace-end": "0.5",
    "plan-units_per_variant": "", "plan-baseline": "0.1", "plan-mde": "0.02", "plan-power": "",
}

RICH_TOML = """\
key = "rich"
name = "Everything set"
hypothesis = "Blue wins"
coverage = 0.5
analysis = "fixed"
alpha = 0.1
cuped = true
namespace = { name = "shop", range = [0.25, 0.75] }
targeting = { country = ["DE", "AT"], plan = ["pro"] }
plan = { baseline = 0.1, mde = 0.02, power = 0.9 }
[[variants]]
key = "control"
weight = 0.25
description = "today's page"
[[variants]]
key = "blue"
name = "Blue"
weight = 0.75
[[metrics]]
name = "purchase"
type = "conversion"
[[metrics]]
name = "revenue"
type = "mean"
event = "purchase"
primary = true
[[metrics]]
name = "checkout-time"
type = "duration"
task = "checkout"
[[metrics]]
name = "came-back"
type = "retention"
days = 7
"""


# ---- helpers -------------------------------------------------------------------------------------


class _FormFields(HTMLParser):
    """The values a browser would submit from the page's definition form (no button)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name") and a.get("type", "text") not in ("submit", "button"):
            if a.get("type") in ("radio", "checkbox") and "checked" not in a:
                return
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields[a["name"]] = ""
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data


def form_fields(page: str) -> dict[str, str]:
    parser = _FormFields()
    parser.feed(page)
    return parser.fields


def error_beside(page: str, slot: str) -> str:
    """The text of the error slot next to an input (empty when the input is fine)."""
    match = re.search(rf'<small id="{re.escape(slot)}-error" class="field-error"[^>]*>(.*?)</small>', page, re.DOTALL)
    assert match, f"no error slot for {slot}"
    return html.unescape(match.group(1))


def input_tag(page: str, element_id: str) -> str:
    match = re.search(rf'<(?:input|select|textarea)\b[^>]*?\sid="{re.escape(element_id)}"[^>]*>', page, re.DOTALL)
    assert match, f"no input {element_id}"
    return match.group(0)


def assert_error_beside(page: str, slot: str, text: str, input_id: str | None = None) -> None:
    assert text in error_beside(page, slot), (slot, error_beside(page, slot))
    if input_id:
        tag = input_tag(page, input_id)
        assert 'aria-invalid="true"' in tag, tag
        assert f"{slot}-error" in re.search(r'aria-describedby="([^"]*)"', tag).group(1)


def token(client, url: str = "/experiments/new") -> str:  # type: ignore[no-untyped-def]
    return csrf_token_from(client.get(url).get_data(as_text=True))


def post(client, url: str, data: dict[str, str], headers: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
         csrf: bool = True):
    body = dict(data)
    if csrf:
        body["csrf_token"] = token(client)
    return client.post(url, data=body, headers=headers or {})


def experiment_keys(engine) -> list[str]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return list(session.exec(select(Experiment.key)).all())


def store(engine, source: str, status: str | None = None):  # type: ignore[no-untyped-def]
    """Create an experiment from TOML text (optionally moving it to ``status``)."""
    definition = parse_definition(tomllib.loads(source))
    with Session(engine) as session:
        pipeline.create(session, definition)
        if status:
            pipeline.transition(session, definition.key, status)
        session.commit()
        return pipeline.load(session, definition.key)[1]


def stored(engine, key: str):  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return pipeline.load(session, key)[1]


DRAFT_TOML = """\
key = "button-color"
name = "Button colour"
coverage = 0.5
[[variants]]
key = "control"
weight = 0.5
[[variants]]
key = "green"
weight = 0.5
[[metrics]]
name = "purchase"
type = "conversion"
"""


# ---- logged out, unknown keys ----------------------------------------------------------------------


PAGES = ["/experiments/new", "/experiments/button-color", "/experiments/button-color/edit",
         "/experiments/button-color/launch", "/experiments/button-color/stop", "/experiments/button-color/archive",
         "/experiments/button-color/install", "/experiments/button-color.toml",
         "/experiments/button-color/qa-links", "/experiments/sample-size?baseline=0.1&mde=0.02"]
FORMS = ["/experiments/new", "/experiments/button-color/edit", "/experiments/validate", "/experiments/form/variants",
         "/experiments/button-color/launch", "/experiments/button-color/install"]


@pytest.mark.parametrize("url", PAGES)
def test_pages_send_logged_out_visitors_to_login(client, engine, url):
    store(engine, DRAFT_TOML)
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("url", FORMS)
def test_forms_refuse_logged_out_visitors_and_change_nothing(client, engine, url):
    store(engine, DRAFT_TOML)
    csrf = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(url, data={**VALID_FORM, "csrf_token": csrf})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    htmx = client.post(url, data={**VALID_FORM, "csrf_token": csrf}, headers=HTMX)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login")
    assert experiment_keys(engine) == ["button-color"]
    assert stored(engine, "button-color").status == "draft"


@pytest.mark.parametrize("url", [u.replace("button-color", "nope") for u in PAGES if "button-color" in u])
def test_unknown_experiment_is_a_404_page(logged_in, url):
    response = logged_in.get(url)
    assert response.status_code == 404
    assert "no experiment with key" in response.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/experiments/nope/edit", "/experiments/nope/launch", "/experiments/nope/install"])
def test_unknown_experiment_forms_are_404(logged_in, url):
    assert post(logged_in, url, VALID_FORM).status_code == 404


def test_validate_for_an_unknown_edited_experiment_is_404(logged_in):
    response = post(logged_in, "/experiments/validate", {**VALID_FORM, "editing": "nope"}, headers=HTMX)
    assert response.status_code == 404


# ---- the new-experiment form -----------------------------------------------------------------------


def test_new_form_labels_every_input(logged_in):
    response = logged_in.get("/experiments/new")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    ids = re.findall(r'<(?:input|select|textarea)\b[^>]*?\sid="([^"]+)"', page)
    assert {"key", "name", "hypothesis", "analysis-sequential", "analysis-fixed", "alpha", "coverage", "cuped",
            "variants-0-weight", "metrics-0-type", "metrics-0-primary", "targeting-0-values", "namespace-start",
            "plan-baseline", "helper-baseline", "helper-daily_traffic"} <= set(ids)
    for element_id in ids:
        assert f'<label for="{element_id}"' in page, f"input {element_id} has no label"
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert page.count("<legend>") >= 8
    assert "Vary" in response.headers and "HX-Request" in response.headers["Vary"]


def test_valid_create_saves_a_draft_and_redirects(logged_in, engine):
    response = post(logged_in, "/experiments/new", VALID_FORM)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/experiments/hero-copy"
    d = stored(engine, "hero-copy")
    assert (d.status, d.name, d.hypothesis, d.analysis, d.coverage, d.seed) == (
        "draft", "Hero copy", "Shorter copy raises sign-ups", "fixed", 0.8, "hero-copy")
    assert [(v.key, v.name, v.weight) for v in d.variants] == [("control", "Control", 0.5), ("short", "Short copy", 0.5)]
    assert [(m.name, m.type, m.param("event"), m.primary) for m in d.metrics] == [
        ("signup", "conversion", "signup", True), ("revenue", "mean", "purchase", False)]
    assert dict(d.targeting) == {"country": ("DE", "AT")}
    assert (d.namespace.name, d.namespace.start, d.namespace.end) == ("home", 0.0, 0.5)
    assert (d.plan.baseline, d.plan.mde, d.plan.units_per_variant) == (0.1, 0.02, None)
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Created “Hero copy” as a draft" in page
    assert "3,841 units per variant" in page  # the plan's baseline and effect, worked out


def test_blank_rows_are_left_out(logged_in, engine):
    form = {**VALID_FORM, "variants-2-key": "", "variants-2-name": "", "variants-2-weight": "",
            "targeting-1-attribute": "", "targeting-1-values": "", "metrics-2-name": "", "metrics-2-type": "conversion"}
    assert post(logged_in, "/experiments/new", form).status_code == 302
    assert len(stored(engine, "hero-copy").variants) == 2


INVALID = {
    "bad key": ({"key": "Bad Key!"}, [("key", "lowercase letters, digits and dashes", "key")]),
    "weights sum to 1.2": ({"variants-0-weight": "0.6", "variants-1-weight": "0.6"},
                           [("variants", "weights sum to 1.2; they must sum to 1", None)]),
    "unknown metric type": ({"metrics-1-type": "revenue"},
                            [("metrics-1-type", "'revenue' is not one of conversion", "metrics-1-type")]),
    "weight abc": ({"variants-1-weight": "abc"},
                   [("variants-1-weight", "must be a finite number, not 'abc'", "variants-1-weight")]),
    "all at once": ({"key": "Bad Key!", "variants-0-weight": "0.6", "variants-1-weight": "0.6",
                     "metrics-1-type": "revenue", "namespace-end": "2", "plan-baseline": "1.5",
                     "targeting-0-values": "", "alpha": "x"},
                    [("key", "lowercase letters, digits and dashes", "key"), ("variants", "weights sum to 1.2", None),
                     ("metrics-1-type", "is not one of", "metrics-1-type"),
                     ("namespace-range", "0 ≤ start < end ≤ 1", "namespace-end"),
                     ("plan-baseline", "must be a rate between 0 and 1", "plan-baseline"),
                     ("targeting-0-values", "must list at least one value", "targeting-0-values"),
                     ("alpha", "must be a finite number, not 'x'", "alpha")]),
    "values without attribute": ({"targeting-0-attribute": ""},
                                 [("targeting-0-attribute", "name the visitor attribute", "targeting-0-attribute")]),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_create_shows_each_error_beside_its_field_and_saves_nothing(logged_in, engine, case):
    changes, expected = INVALID[case]
    response = post(logged_in, "/experiments/new", {**VALID_FORM, **changes})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "<html" in page  # a normal request gets the full page
    assert "nothing was saved" in page
    for slot, text, input_id in expected:
        assert_error_beside(page, slot, text, input_id)
        anchor = {"namespace-range": "namespace-start"}.get(slot, input_id or f"{slot}-fieldset")
        assert f'href="#{anchor}"' in page  # the summary links to the field
    # Errors sit beside their own fields only.
    assert error_beside(page, "name") == ""
    # What the designer typed comes back as typed.
    kept = form_fields(page)
    for name, value in changes.items():
        assert kept.get(name, "") == value, name
    assert experiment_keys(engine) == []


def test_missing_csrf_token_is_refused_and_nothing_saved(logged_in, engine):
    response = post(logged_in, "/experiments/new", VALID_FORM, csrf=False)
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert experiment_keys(engine) == []


def test_reused_key_is_refused_beside_the_key(logged_in, engine):
    store(engine, DRAFT_TOML)
    response = post(logged_in, "/experiments/new", {**VALID_FORM, "key": "button-color"})
    assert response.status_code == 409
    assert_error_beside(response.get_data(as_text=True), "key", "already used", "key")
    assert stored(engine, "button-color").name == "Button colour"


# ---- as you type (htmx) ------------------------------------------------------------------------------


def test_validate_returns_a_fragment_with_errors_out_of_band(logged_in, engine):
    response = post(logged_in, "/experiments/validate",
                    {**VALID_FORM, "variants-1-weight": "abc", "key": "Bad Key!"}, headers=HTMX)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<html" not in page and page.lstrip().startswith("<form")
    assert "HX-Request" in response.headers["Vary"]
    assert_error_beside(page, "variants-1-weight", "must be a finite number, not 'abc'", "variants-1-weight")
    assert_error_beside(page, "key", "lowercase letters, digits and dashes", "key")
    assert re.search(r'<small id="variants-1-weight-error" class="field-error" hx-swap-oob="true">', page)
    assert re.search(r'<div id="form-problems"[^>]*hx-swap-oob="true"', page)
    assert "autofocus" not in page  # never steal the focus from the field being typed in
    assert experiment_keys(engine) == []


def test_validate_a_valid_form_shows_no_errors_and_writes_nothing(logged_in, engine):
    response = post(logged_in, "/experiments/validate", VALID_FORM, headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "field-error\" hx-swap-oob=\"true\">⚠" not in page
    assert all(error_beside(page, slot) == "" for slot in ("key", "variants", "variants-0-weight", "metrics-0-type"))
    assert 'class="problems"' not in page
    assert experiment_keys(engine) == []


def test_validate_runs_the_registry_checks_without_writing(logged_in, engine):
    store(engine, DRAFT_TOML)
    page = post(logged_in, "/experiments/validate", {**VALID_FORM, "key": "button-color"},
                headers=HTMX).get_data(as_text=True)
    assert "already used" in error_beside(page, "key")
    assert experiment_keys(engine) == ["button-color"]


def test_validate_without_htmx_is_a_full_page(logged_in):
    response = post(logged_in, "/experiments/validate", {**VALID_FORM, "key": "X"})
    assert response.status_code == 200 and "<html" in response.get_data(as_text=True)
    assert "lowercase letters, digits and dashes" in error_beside(response.get_data(as_text=True), "key")


# ---- adding and removing rows ------------------------------------------------------------------------


def test_add_variant_without_javascript_rerenders_the_form(logged_in, engine):
    response = post(logged_in, "/experiments/new", {**VALID_FORM, "action": "add-variant"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<html" in page
    assert 'id="variants-2-key"' in page and "autofocus" in input_tag(page, "variants-2-key")
    assert form_fields(page)["variants-1-name"] == "Short copy"  # the rest is kept
    assert experiment_keys(engine) == []


def test_remove_row_with_htmx_returns_only_its_fieldset(logged_in):
    response = post(logged_in, "/experiments/form/metrics", {**VALID_FORM, "action": "remove-metric-0", "primary": "1"},
                    headers=HTMX)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.lstrip().startswith('<fieldset id="metrics-fieldset"') and "<html" not in page
    fields = form_fields(page)
    assert fields["metrics-0-name"] == "revenue" and "metrics-1-name" not in fields
    assert fields["primary"] == "0"  # the primary choice follows its row
    assert post(logged_in, "/experiments/form/nothing", VALID_FORM, headers=HTMX).status_code == 404


def test_add_targeting_rule_and_variant_fieldsets(logged_in):
    page = post(logged_in, "/experiments/form/targeting", {**VALID_FORM, "action": "add-targeting"},
                headers=HTMX).get_data(as_text=True)
    assert 'id="targeting-1-attribute"' in page and form_fields(page)["targeting-0-values"] == "DE, AT"
    page = post(logged_in, "/experiments/form/variants", {**VALID_FORM, "action": "add-variant"},
                headers=HTMX).get_data(as_text=True)
    assert form_fields(page)["variant_count"] == "3"


# ---- sample-size helper -----------------------------------------------------------------------------------


def test_sample_size_helper_gives_units_and_days(logged_in):
    response = logged_in.get("/experiments/sample-size?baseline=0.10&mde=0.02&daily_traffic=1000", headers=HTMX)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<html" not in page and "HX-Request" in response.headers["Vary"]
    assert "3,841</strong> units per variant" in page
    assert "7,682 across 2 variants" in page
    assert "8 days" in page  # 7,682 / 1,000 a day
    half = logged_in.get("/experiments/sample-size?baseline=0.10&mde=0.02&daily_traffic=1000&coverage=0.5").get_data(
        as_text=True)
    assert "16 days" in half and "50.0% coverage" in half and "<html" in half


def test_sample_size_errors_sit_beside_the_helper_field(logged_in):
    response = logged_in.get("/experiments/sample-size?baseline=1.5&mde=0.02")
    assert response.status_code == 422
    assert_error_beside(response.get_data(as_text=True), "helper-baseline", "between 0 and 1", "helper-baseline")
    fragment = logged_in.get("/experiments/sample-size?baseline=0.1&mde=abc&daily_traffic=-3", headers=HTMX)
    page = fragment.get_data(as_text=True)
    assert re.search(r'<small id="helper-mde-error" class="field-error" hx-swap-oob="true">must be a number', page)
    assert "positive number of visitors" in error_beside(page, "helper-daily_traffic")


def test_sample_size_inside_the_form_without_javascript(logged_in, engine):
    form = {**VALID_FORM, "baseline": "0.10", "mde": "0.02", "daily_traffic": "1000", "coverage": "1"}
    page = post(logged_in, "/experiments/new", {**form, "action": "sample-size"}).get_data(as_text=True)
    assert "3,841</strong> units per variant" in page
    page = post(logged_in, "/experiments/new", {**form, "plan-baseline": "", "plan-mde": "",
                                                "plan-units_per_variant": "100", "action": "plan-from-helper"}
                ).get_data(as_text=True)
    fields = form_fields(page)
    assert (fields["plan-baseline"], fields["plan-mde"], fields["plan-units_per_variant"]) == ("0.10", "0.02", "")
    assert experiment_keys(engine) == []


def test_use_helper_as_plan_with_htmx_returns_the_plan_fieldset(logged_in):
    response = post(logged_in, "/experiments/form/plan",
                    {**VALID_FORM, "baseline": "0.05", "mde": "0.01", "action": "plan-from-helper"}, headers=HTMX)
    page = response.get_data(as_text=True)
    assert page.lstrip().startswith('<fieldset id="plan-fieldset"') and "<html" not in page
    fields = form_fields(page)
    assert (fields["plan-baseline"], fields["plan-mde"]) == ("0.05", "0.01")
    assert "autofocus" in input_tag(page, "plan-baseline")
    assert "8,158</strong> units per variant" in page


# ---- editing -------------------------------------------------------------------------------------------------


def test_edit_form_round_trips_the_whole_definition(logged_in, engine):
    before = store(engine, RICH_TOML)
    page = logged_in.get("/experiments/rich/edit").get_data(as_text=True)
    fields = form_fields(page)
    assert fields["variants-0-description"] == "today's page" and fields["primary"] == "1"
    assert fields["cuped"] == "true" and fields["analysis"] == "fixed"
    response = post(logged_in, "/experiments/rich/edit", fields)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert stored(engine, "rich") == before


def test_edit_changes_a_draft(logged_in, engine):
    store(engine, DRAFT_TOML)
    fields = form_fields(logged_in.get("/experiments/button-color/edit").get_data(as_text=True))
    fields.update({"name": "Green button", "variants-0-weight": "0.3", "variants-1-weight": "0.7", "key": "ignored"})
    assert post(logged_in, "/experiments/button-color/edit", fields).status_code == 302
    d = stored(engine, "button-color")
    assert (d.name, d.weights, d.key) == ("Green button", (0.3, 0.7), "button-color")


def test_edit_of_a_running_experiment_refuses_new_weights_beside_variants(logged_in, engine):
    before = store(engine, DRAFT_TOML, status="running")
    page = logged_in.get("/experiments/button-color/edit").get_data(as_text=True)
    assert "Frozen while the experiment runs" in page
    assert "readonly" in input_tag(page, "variants-0-weight")
    fields = form_fields(page)
    fields.update({"variants-0-weight": "0.4", "variants-1-weight": "0.6"})
    response = post(logged_in, "/experiments/button-color/edit", fields)
    assert response.status_code == 409
    assert_error_beside(response.get_data(as_text=True), "variants",
                        "variants and weights of a launched experiment cannot change")
    assert stored(engine, "button-color") == before
    # The same message while typing.
    typed = post(logged_in, "/experiments/validate", fields, headers=HTMX).get_data(as_text=True)
    assert "cannot change" in error_beside(typed, "variants")


def test_coverage_of_a_running_experiment_may_rise_not_fall(logged_in, engine):
    store(engine, DRAFT_TOML, status="running")
    fields = form_fields(logged_in.get("/experiments/button-color/edit").get_data(as_text=True))
    down = post(logged_in, "/experiments/button-color/edit", {**fields, "coverage": "0.3"})
    assert down.status_code == 409
    assert_error_beside(down.get_data(as_text=True), "coverage", "may only rise", "coverage")
    up = post(logged_in, "/experiments/button-color/edit", {**fields, "coverage": "0.8"})
    assert up.status_code == 302
    d = stored(engine, "button-color")
    assert (d.coverage, d.status) == (0.8, "running")


def test_edit_keeps_status_and_seed_whatever_the_form_says(logged_in, engine):
    store(engine, DRAFT_TOML)
    fields = form_fields(logged_in.get("/experiments/button-color/edit").get_data(as_text=True))
    assert post(logged_in, "/experiments/button-color/edit", {**fields, "status": "running", "seed": "x"}
                ).status_code == 302
    d = stored(engine, "button-color")
    assert (d.status, d.seed) == ("draft", "button-color")


# ---- show and lifecycle ------------------------------------------------------------------------------------


def test_show_page_has_the_history_of_changes(logged_in, engine):
    store(engine, DRAFT_TOML)
    confirm = logged_in.get("/experiments/button-color/launch").get_data(as_text=True)
    logged_in.post("/experiments/button-color/launch", data={"csrf_token": csrf_token_from(confirm)})
    page = logged_in.get("/experiments/button-color").get_data(as_text=True)
    history = page[page.index('id="history-title"'):]
    assert "launched" in history and "created" in history
    assert "designer@example.com" in history  # who launched it: the logged-in designer


def test_show_page_summarises_the_definition(logged_in, engine):
    store(engine, RICH_TOML)
    response = logged_in.get("/experiments/rich")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for text in ("Everything set", "Blue wins", "25%", "75%", "revenue", "primary", "checkout-time",
                 "<code>country</code> is DE or AT", "<code>shop</code>, range 0.25 to 0.75", "power 0.9",
                 'href="/experiments/rich/results"', 'href="/experiments/rich/install"', 'href="/experiments/rich/edit"',
                 'href="/experiments/rich.toml"', 'href="/experiments/rich/launch"', 'href="/experiments/rich/archive"'):
        assert text in page, text
    assert 'href="/experiments/rich/stop"' not in page  # a draft cannot be stopped
    # What each metric counts, in its type's own words, with its parameters filled in.
    for text in ("units with a purchase event", "sum of purchase values per unit", "time of task checkout",
                 "seen again after 7 days"):
        assert text in page, text


def test_lifecycle_draft_running_stopped_archived(logged_in, engine):
    store(engine, DRAFT_TOML)
    confirm = logged_in.get("/experiments/button-color/launch")
    assert confirm.status_code == 200
    assert "Visitors start being assigned" in confirm.get_data(as_text=True)
    assert stored(engine, "button-color").status == "draft"  # a GET changes nothing

    launched = post(logged_in, "/experiments/button-color/launch", {})
    assert launched.status_code == 302 and launched.headers["Location"] == "/experiments/button-color"
    assert stored(engine, "button-color").status == "running"
    page = logged_in.get("/experiments/button-color").get_data(as_text=True)
    assert "launched: visitors are now being assigned" in page
    assert 'href="/experiments/button-color/stop"' in page and 'href="/experiments/button-color/launch"' not in page

    stop_page = logged_in.get("/experiments/button-color/stop").get_data(as_text=True)
    assert "Visitors stop being assigned" in stop_page and "cannot be restarted" in stop_page
    assert post(logged_in, "/experiments/button-color/stop", {}).status_code == 302
    assert stored(engine, "button-color").status == "stopped"

    restart = post(logged_in, "/experiments/button-color/launch", {})
    assert restart.status_code == 409
    assert "cannot move from stopped to running" in restart.get_data(as_text=True)
    assert logged_in.get("/experiments/button-color/launch").status_code == 409
    assert stored(engine, "button-color").status == "stopped"

    assert post(logged_in, "/experiments/button-color/archive", {}).status_code == 302
    assert stored(engine, "button-color").status == "archived"
    assert post(logged_in, "/experiments/button-color/archive", {}).status_code == 409


def test_lifecycle_post_needs_csrf(logged_in, engine):
    store(engine, DRAFT_TOML)
    assert logged_in.post("/experiments/button-color/launch").status_code == 400
    assert stored(engine, "button-color").status == "draft"


def test_draft_can_be_archived_directly_but_not_stopped(logged_in, engine):
    store(engine, DRAFT_TOML)
    assert post(logged_in, "/experiments/button-color/stop", {}).status_code == 409
    assert post(logged_in, "/experiments/button-color/archive", {}).status_code == 302
    assert stored(engine, "button-color").status == "archived"


# ---- install -----------------------------------------------------------------------------------------------


def test_install_page_has_snippet_hooks_qa_links_and_toml(logged_in, engine):
    definition = store(engine, RICH_TOML, status="running")
    response = logged_in.get("/experiments/rich/install")
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    # The paste-ready snippet, exactly as README.md shows it, with this server's URL.
    snippet = re.search(r'<pre class="copy" id="snippet"[^>]*><code>(.*?)</code></pre>',
                        response.get_data(as_text=True), re.DOTALL).group(1)
    assert html.unescape(snippet) == paste_snippet("http://localhost/static/abtest.js", "pk_…")
    assert "<script" not in snippet  # shown as text, not run on the Install page
    assert '"http://localhost/static/abtest.js"' in page and 'setTimeout(f,800)' in page
    assert 'curl -X POST http://localhost/api/v1/assign' in page
    # How to wait for consent, and to keep a key to the site's own pages.
    assert 'data-consent="required"' in page and "abtest.consent(true)" in page and "abtest.consent(false)" in page
    assert 'data-consent="necessary"' in page and "Global Privacy Control" in page
    assert "abtest token create --public --origin https://your-shop.example" in page
    assert '-d \'{"experiment": "rich", "unit": "USER_ID"}\'' in page
    assert 'html[data-abtest-rich="control"]' in page and 'html[data-abtest-rich="blue"]' in page
    assert 'abtest.track("purchase", 12.5)' in page and 'abtest.task("checkout").start()' in page
    assert "?abtest_rich=control" in page and "?abtest_rich=blue" in page
    toml_text = re.search(r'<code id="toml">(.*?)</code>', response.get_data(as_text=True), re.DOTALL).group(1)
    assert parse_definition(tomllib.loads(html.unescape(toml_text))) == definition
    assert 'hypothesis = ""' not in html.unescape(toml_text)


def test_qa_links_use_the_site_url(logged_in, engine):
    store(engine, DRAFT_TOML)
    page = logged_in.get("/experiments/button-color/install?site=https://shop.example/cart?x=1").get_data(as_text=True)
    assert 'href="https://shop.example/cart?x=1&amp;abtest_button-color=control"' in page
    assert 'href="https://shop.example/cart?x=1&amp;abtest_button-color=green"' in page
    fragment = logged_in.get("/experiments/button-color/qa-links?site=https://a.example/", headers=HTMX)
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and 'href="https://a.example/?abtest_button-color=green"' in text
    bad = logged_in.get("/experiments/button-color/install?site=javascript:alert(1)").get_data(as_text=True)
    assert "https://" in error_beside(bad, "site") and "javascript:alert" not in bad.split('id="qa-links"')[1]
    assert logged_in.get("/experiments/button-color/qa-links?site=x").status_code == 302  # no htmx: the page


def test_toml_download(logged_in, engine):
    definition = store(engine, RICH_TOML)
    response = logged_in.get("/experiments/rich.toml")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/toml")
    assert 'filename="rich.toml"' in response.headers["Content-Disposition"]
    assert parse_definition(tomllib.loads(response.get_data(as_text=True))) == definition


def test_create_public_key_shows_it_once_and_it_works(logged_in, engine):
    store(engine, DRAFT_TOML, status="running")
    created = post(logged_in, "/experiments/button-color/install", {})
    assert created.status_code == 302
    page = html.unescape(logged_in.get(created.headers["Location"]).get_data(as_text=True))
    key = re.search(r'data-key="(pk_[A-Za-z0-9_-]+)"', page).group(1)
    assert paste_snippet("http://localhost/static/abtest.js", key) in page
    with Session(engine) as session:
        row = session.exec(select(ApiToken)).one()
    assert (row.kind, row.name) == ("public", "site for button-color")
    config = logged_in.get(f"/api/v1/config?key={key}")
    assert config.status_code == 200
    assert [e["key"] for e in config.get_json()["experiments"]] == ["button-color"]
    again = html.unescape(logged_in.get("/experiments/button-color/install").get_data(as_text=True))
    assert key not in again and 'data-key="pk_…"' in again and row.prefix in again


def test_create_public_key_needs_csrf(logged_in, engine):
    store(engine, DRAFT_TOML)
    assert logged_in.post("/experiments/button-color/install").status_code == 400
    with Session(engine) as session:
        assert session.exec(select(ApiToken)).all() == []


# ---- the list: search, status filter, sorting --------------------------------------------------------------

def listed(logged_in, query: str = "", **headers: str) -> tuple[list[str], str]:  # type: ignore[no-untyped-def]
    response = logged_in.get(f"/experiments/{query}", headers=headers)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    return re.findall(r'<tr id="row-([a-z0-9-]+)"', body), body


def test_list_finds_filters_and_sorts_by_the_url(logged_in, engine):
    from abtest.demo import seed_demo

    seed_demo(engine)
    every, page = listed(logged_in)
    assert every == ["checkout-csat", "menu-tree-test", "checkout-study", "checkout-button", "pricing-layout",
                     "onboarding-copy"]  # running first
    assert '<search aria-label="Find experiments and studies">' in page and 'name="q" value=""' in page
    assert listed(logged_in, "?q=CHECKOUT")[0] == ["checkout-csat", "checkout-study", "checkout-button"]  # keys, any case
    assert listed(logged_in, "?q=table+layout")[0] == ["pricing-layout"]  # names
    assert listed(logged_in, "?q=%25")[0] == [] and listed(logged_in, "?q=_")[0] == []  # no wildcards
    running, page = listed(logged_in, "?status=running")
    assert running == ["checkout-csat", "menu-tree-test", "checkout-study", "checkout-button"]
    assert '<option value="running" selected>' in page and "Showing 4 of 6" in page
    assert listed(logged_in, "?status=paused&sort=colour")[0] == every  # unknown values are ignored
    assert listed(logged_in, "?sort=name")[0] == ["checkout-study", "checkout-csat", "checkout-button", "menu-tree-test",
                                                  "pricing-layout", "onboarding-copy"]  # Checkout r…, s…, Green…, Main…
    assert listed(logged_in, "?sort=status")[0] == ["pricing-layout", "checkout-study", "checkout-csat", "checkout-button",
                                                    "menu-tree-test", "onboarding-copy"]  # draft, running (by name), stopped
    started, page = listed(logged_in, "?sort=started")
    assert started[-1] == "pricing-layout" and set(started) == set(every)  # a draft never started: last
    assert '<option value="started" selected>' in page and 'aria-sort="descending"' in page
    both, page = listed(logged_in, "?q=checkout&status=running&sort=name")
    assert both == ["checkout-study", "checkout-csat", "checkout-button"]
    assert 'value="checkout"' in page and 'href="/experiments/?sort=name">Show all' in page
    nothing, page = listed(logged_in, "?q=no-such-thing")
    assert nothing == [] and "No experiment or study matches" in page and "Showing 0 of 6" in page


def test_list_search_with_htmx_swaps_the_list_and_keeps_its_rows_working(logged_in, engine):
    from abtest.demo import seed_demo

    seed_demo(engine)
    response = logged_in.get("/experiments/?q=checkout&status=running&sort=", headers=HTMX)
    body = response.get_data(as_text=True)
    assert body.startswith('<div id="experiment-list">') and "<html" not in body and "<search" not in body
    assert response.headers["HX-Push-Url"] == "/experiments/?q=checkout&status=running"  # the clean URL
    assert "HX-Request" in response.headers["Vary"]
    assert re.findall(r'<tr id="row-([a-z0-9-]+)"', body) == ["checkout-csat", "checkout-study", "checkout-button"]
    assert 'hx-get="/experiments/checkout-button/summary" hx-trigger="load"' in body
    summary = logged_in.get("/experiments/checkout-button/summary", headers=HTMX)
    assert summary.status_code == 200 and "<progress" in summary.get_data(as_text=True)
    _rows, page = listed(logged_in)
    start = page.index('<form class="list-tools" method="get"')
    form = page[start:page.index("</form>", start)]
    assert 'hx-get="/experiments/"' in form and 'hx-target="#experiment-list"' in form


def test_an_empty_list_has_no_search(logged_in, engine):
    rows, page = listed(logged_in)
    assert rows == [] and "No experiments yet" in page and "<search" not in page
