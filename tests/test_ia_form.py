"""The study form for tree tests and first-click tests (issue 19): the designer picks a method and
gets its fields; trees, correct answers, uploaded screens and targets become the table
`abtest sync` parses, and every parser error lands beside the field it is about (Flask test
client, CSRF on, both databases)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from PIL import Image
from sqlmodel import Session

from abtest.studies.definition import parse_study
from abtest.studies.images import store_for
from abtest.studies.runner import get_study
from tests.test_experiment_pages import HTMX, assert_error_beside, error_beside, experiment_keys, form_fields, token

CURRENT_TREE = "Shop\n  Laptops\n    Gaming\n  Phones\nHelp\n  Returns\n  Contact\n"
PROPOSED_TREE = "Products\n  Laptops\n  Phones\nSupport\n  Returns and refunds\n"

TREE_FORM: dict[str, Any] = {
    "key": "nav-tree", "name": "Navigation", "hypothesis": "", "method": "tree-test", "seq": "false",
    "designs-0-key": "current", "designs-0-name": "Current menu", "designs-0-url": "", "designs-0-weight": "",
    "designs-0-tree": CURRENT_TREE,
    "designs-1-key": "proposed", "designs-1-name": "", "designs-1-url": "", "designs-1-weight": "",
    "designs-1-tree": PROPOSED_TREE,
    "tasks-0-key": "returns", "tasks-0-prompt": "Send back a faulty laptop", "tasks-0-success": "self-report",
    "tasks-0-correct_0": "Help > Returns\n", "tasks-0-correct_1": "Support > Returns and refunds",
    "tasks-1-key": "gaming", "tasks-1-prompt": "Find a gaming laptop", "tasks-1-success": "self-report",
    "tasks-1-time_limit": "120",
    "tasks-1-correct_0": "Shop > Laptops > Gaming\r\nShop > Laptops", "tasks-1-correct_1": " Products > Laptops ",
    "questionnaires": ["SUS"], "consent": "We record your clicks.",
}


def send(client, url: str, data: dict[str, Any], headers: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
         csrf: bool = True):
    body = dict(data)
    if csrf:
        body["csrf_token"] = token(client, "/studies/new")
    multipart = any(isinstance(v, tuple) for v in body.values())
    return client.post(url, data=body, headers=headers or {},
                       content_type="multipart/form-data" if multipart else None)


def stored(engine, key: str):  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return get_study(session, key)[1]


def png(width: int, height: int, noise: bool = False) -> bytes:
    image = Image.frombytes("RGB", (width, height), __import__("os").urandom(width * height * 3)) if noise \
        else Image.new("RGB", (width, height), (40, 120, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def upload(content: bytes, name: str = "home.png") -> tuple[io.BytesIO, str]:
    return io.BytesIO(content), name


def click_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "key": "home-click", "name": "Home page", "method": "first-click", "seq": "false",
        "designs-0-key": "a", "designs-0-name": "Today", "designs-0-weight": "",
        "designs-1-key": "b", "designs-1-name": "Redesign", "designs-1-weight": "",
        "tasks-0-key": "pricing", "tasks-0-prompt": "Where would you see the prices?",
        "tasks-0-targets_0": "600, 0, 200, 80", "tasks-0-targets_1": "0, 100, 400, 60\n[0, 800, 100, 100]\n",
        "questionnaires": ["SUS"],
    }
    form.update(changes)
    return form


def test_the_form_offers_the_three_methods_and_their_fields(logged_in):
    page = logged_in.get("/studies/new").get_data(as_text=True)
    for method in ("usability", "tree-test", "first-click"):
        assert f'id="method-{method}" name="method" value="{method}"' in page
    assert re.search(r'id="method-usability"[^>]*checked', page)
    assert 'enctype="multipart/form-data"' in page
    assert 'id="designs-0-tree" name="designs-0-tree"' in page and "  Laptops" in page  # the hint's example
    assert 'id="tasks-0-correct_1"' in page
    assert re.search(r'<input type="file" id="tasks-0-file_0" name="tasks-0-file_0" '
                     r'accept="image/png,image/jpeg"', page)
    assert 'id="tasks-0-targets_0"' in page and 'type="hidden" id="tasks-0-image_0"' in page
    assert re.search(r'id="seq" name="seq" value="true"[^>]*checked', page)  # on by default (usability)
    assert "/static/ia-form.css" in page and "/static/ia-form.js" in page


def test_a_tree_test_with_two_trees_is_stored_as_the_parser_reads_it(logged_in, engine):
    response = send(logged_in, "/studies/new", TREE_FORM)
    assert response.status_code == 302, response.get_data(as_text=True)
    expected = parse_study({
        "kind": "study", "key": "nav-tree", "name": "Navigation", "method": "tree-test", "seq": False,
        "questionnaires": ["SUS"], "consent": "We record your clicks.",
        "designs": [{"key": "current", "name": "Current menu", "tree": CURRENT_TREE},
                    {"key": "proposed", "tree": PROPOSED_TREE}],
        "tasks": [{"key": "returns", "prompt": "Send back a faulty laptop",
                   "correct": {"current": ["Help > Returns"], "proposed": ["Support > Returns and refunds"]}},
                  {"key": "gaming", "prompt": "Find a gaming laptop", "time_limit": 120,
                   "correct": {"current": ["Shop > Laptops > Gaming", "Shop > Laptops"],
                               "proposed": ["Products > Laptops"]}}]})
    study = stored(engine, "nav-tree")
    assert study == expected
    assert study.method == "tree-test" and not study.seq and study.design_urls == (("current", ""), ("proposed", ""))


def test_one_tree_takes_a_plain_list_of_answers(logged_in, engine):
    form = {k: v for k, v in TREE_FORM.items() if not k.startswith(("designs-1-", "tasks-1-"))}
    assert send(logged_in, "/studies/new", form).status_code == 302
    study = stored(engine, "nav-tree")
    assert [d.key for d in study.variants] == ["current"]
    assert study.tasks[0].correct_for("current") == {study.tree_of("current").find("Help > Returns")}


def test_a_wrong_path_sits_beside_its_designs_answers_and_the_trees_stay_as_typed(logged_in, engine):
    typed = "Shop\r\n  Laptops\r\n    Gaming\r\n\r\n  Phones\r\nHelp\r\n  Returns\r\n  Contact"
    response = send(logged_in, "/studies/new", {**TREE_FORM, "designs-0-tree": typed,
                                                 "tasks-0-correct_1": "Support > Refunds"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "nothing was saved" in page
    assert_error_beside(page, "tasks-0-correct_1", "'Support > Refunds' is not a node of the proposed tree",
                        "tasks-0-correct_1")
    assert error_beside(page, "tasks-0-correct_0") == ""
    kept = form_fields(page)
    assert kept["designs-0-tree"] == typed and kept["designs-1-tree"] == PROPOSED_TREE
    assert kept["tasks-0-correct_1"] == "Support > Refunds" and kept["method"] == "tree-test"
    assert "Task 1 correct answers (proposed)" in page  # the summary names the field
    assert experiment_keys(engine) == []


def test_a_broken_tree_sits_beside_it_and_its_text_survives_a_leading_newline(logged_in):
    typed = "\n  Shop\nHelp"  # the browser drops one newline after <textarea>: the form adds one
    page = send(logged_in, "/studies/new", {**TREE_FORM, "designs-1-tree": typed}).get_data(as_text=True)
    assert_error_beside(page, "designs-1-tree", "line 2: 'Shop' is indented more than one level", "designs-1-tree")
    assert re.search(r'<textarea id="designs-1-tree"[^>]*>\n\n  Shop\nHelp</textarea>', page)
    # Its answers cannot be checked against a broken tree; the other design's still are.
    assert error_beside(page, "tasks-0-correct_1") == ""


@pytest.mark.parametrize(("changes", "slot", "text"), [
    ({"tasks-0-correct_0": "", "tasks-0-correct_1": ""}, "tasks-0-correct_0", "is required"),
    ({"tasks-0-correct_1": ""}, "tasks-0-correct_1", "must be one or more node paths"),
    ({"tasks-1-correct_0": "Shop > Laptops\nShop >Laptops"}, "tasks-1-correct_0", "is listed twice"),
    ({"designs-1-tree": ""}, "designs-1-tree", "is required"),
    ({"designs-2-key": "third", "designs-2-tree": "A"}, "designs", "at most 2 designs"),
    ({"within_subjects": "true", "tasks-0-start_url": "/nope"}, None, None),  # usability fields are not read
])
def test_tree_test_errors_sit_beside_their_fields(logged_in, engine, changes, slot, text):
    response = send(logged_in, "/studies/new", {**TREE_FORM, **changes})
    if slot is None:
        assert response.status_code == 302 and not stored(engine, "nav-tree").within_subjects
        return
    assert response.status_code == 422
    assert_error_beside(response.get_data(as_text=True), slot, text)


def test_live_validation_places_a_wrong_path_out_of_band(logged_in, engine):
    response = send(logged_in, "/studies/validate", {**TREE_FORM, "tasks-1-correct_1": "Products > Tablets"},
                    headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in page
    assert re.search(r'<small id="tasks-1-correct_1-error" class="field-error" hx-swap-oob="true">'
                     r"&#39;Products &gt; Tablets&#39; is not a node", page)
    # The per-design labels follow the design names as they are typed.
    assert '<span id="tasks-0-correct_1-design" class="design-name" hx-swap-oob="true"> — proposed</span>' in page
    assert experiment_keys(engine) == []


def test_removing_a_design_takes_its_answers_along(logged_in):
    fragment = send(logged_in, "/studies/form/designs", {**TREE_FORM, "action": "remove-design-0"}, headers=HTMX)
    page = fragment.get_data(as_text=True)
    assert page.lstrip().startswith('<fieldset id="designs-fieldset"')
    assert '<fieldset id="tasks-fieldset"' in page and 'hx-swap-oob="true"' in page
    fields = form_fields(page)
    assert fields["designs-0-key"] == "proposed" and "designs-1-key" not in fields
    assert fields["tasks-0-correct_0"] == "Support > Returns and refunds" and fields["tasks-0-correct_1"] == ""
    no_js = send(logged_in, "/studies/new", {**TREE_FORM, "action": "remove-design-0"})
    assert form_fields(no_js.get_data(as_text=True))["tasks-1-correct_0"] == " Products > Laptops "


def test_the_edit_page_of_a_tree_test_shows_its_trees_and_answers(logged_in, engine):
    assert send(logged_in, "/studies/new", TREE_FORM).status_code == 302
    page = logged_in.get("/studies/nav-tree/edit").get_data(as_text=True)
    fields = form_fields(page)
    assert fields["method"] == "tree-test" and fields["seq"] == "false"
    assert fields["designs-0-tree"] == CURRENT_TREE.rstrip("\n") and fields["designs-1-tree"] == PROPOSED_TREE.rstrip()
    assert fields["tasks-0-correct_0"] == "Help > Returns"
    assert fields["tasks-1-correct_0"] == "Shop > Laptops > Gaming\nShop > Laptops"
    assert fields["tasks-1-correct_1"] == "Products > Laptops"
    before = stored(engine, "nav-tree")
    assert send(logged_in, "/studies/nav-tree/edit", fields).status_code == 302  # saves unchanged
    assert stored(engine, "nav-tree") == before


def test_a_launched_tree_tests_answers_cannot_change(logged_in, engine):
    assert send(logged_in, "/studies/new", TREE_FORM).status_code == 302
    assert send(logged_in, "/experiments/nav-tree/launch", {}).status_code == 302
    page = logged_in.get("/studies/nav-tree/edit").get_data(as_text=True)
    assert re.search(r'<textarea id="tasks-0-correct_0"[^>]*readonly', page)
    assert re.search(r'id="method-tree-test"[^>]*checked disabled', page)
    fields = form_fields(page)
    moved = send(logged_in, "/studies/nav-tree/edit", {**fields, "tasks-0-correct_0": "Help > Contact"})
    assert moved.status_code == 409
    assert_error_beside(moved.get_data(as_text=True), "tasks-0-correct_0", "cannot change")
    reworded = send(logged_in, "/studies/nav-tree/edit", {**fields, "tasks-0-prompt": "Return a laptop"})
    assert reworded.status_code == 302 and stored(engine, "nav-tree").tasks[0].prompt == "Return a laptop"


# ---- first-click tests -----------------------------------------------------------------------------


def test_a_first_click_test_stores_uploaded_screens_with_their_real_size(logged_in, engine, app):
    form = click_form(**{"tasks-0-file_0": upload(png(800, 600)), "tasks-0-file_1": upload(png(400, 900), "b.png")})
    response = send(logged_in, "/studies/new", form)
    assert response.status_code == 302, response.get_data(as_text=True)
    study = stored(engine, "home-click")
    a, b = study.tasks[0].screen_for("a"), study.tasks[0].screen_for("b")
    assert (a.width, a.height, [t.to_list() for t in a.targets]) == (800, 600, [[600, 0, 200, 80]])
    assert (b.width, b.height, [t.to_list() for t in b.targets]) == (400, 900, [[0, 100, 400, 60], [0, 800, 100, 100]])
    store = store_for(app.extensions["abtest.settings"].instance_path)
    assert store.info(a.image).width == 800 and store.path(b.image) is not None
    assert study.method == "first-click" and not study.seq
    page = logged_in.get("/studies/home-click/edit").get_data(as_text=True)
    fields = form_fields(page)
    assert fields["tasks-0-image_0"] == a.image and fields["tasks-0-targets_1"] == "0, 100, 400, 60\n0, 800, 100, 100"
    assert f'src="/study-images/{a.image}" width="800" height="600"' in page
    assert "Stored: 800 × 600 px" in page
    assert 'style="left: 75.000%; top: 0.000%; width: 25.000%; height: 13.333%"' in page  # target drawn


def test_a_screen_survives_a_re_render_without_being_sent_again(logged_in, engine):
    form = click_form(**{"tasks-0-file_0": upload(png(800, 600)), "tasks-0-file_1": upload(png(400, 900)),
                         "tasks-0-prompt": ""})
    page = send(logged_in, "/studies/new", form).get_data(as_text=True)
    assert_error_beside(page, "tasks-0-prompt", "is required")
    fields = form_fields(page)
    assert re.fullmatch(r"[0-9a-f]{32}\.png", fields["tasks-0-image_0"]) and fields["tasks-0-image_1"]
    assert error_beside(page, "tasks-0-file_0") == ""
    fields.update({"tasks-0-prompt": "Where are the prices?", "questionnaires": ["SUS"]})
    fields.pop("tasks-0-file_0", None)
    fields.pop("tasks-0-file_1", None)
    assert send(logged_in, "/studies/new", fields).status_code == 302
    assert stored(engine, "home-click").tasks[0].screen_for("a").width == 800


def test_a_file_that_is_no_image_is_refused_beside_its_file_field(logged_in, engine):
    form = click_form(**{"tasks-0-file_0": upload(b"just some notes\n", "notes.txt"),
                         "tasks-0-file_1": upload(png(400, 900))})
    response = send(logged_in, "/studies/new", form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert_error_beside(page, "tasks-0-file_0", "“notes.txt” is not a PNG or JPEG image", "tasks-0-file_0")
    assert error_beside(page, "tasks-0-file_1") == "" and form_fields(page)["tasks-0-image_1"]  # the good one is kept
    assert experiment_keys(engine) == []


def test_a_screen_over_2_mb_gets_through_and_one_over_5_mb_is_refused_beside_it(logged_in, engine):
    big = png(1000, 1000, noise=True)  # ~3 MB: over the app's 2 MB body limit, under a screen's 5 MB
    assert 2 * 1024 * 1024 < len(big) < 5 * 1024 * 1024
    response = send(logged_in, "/studies/new", click_form(**{"tasks-0-file_0": upload(big),
                                                             "tasks-0-file_1": upload(png(400, 900))}))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    huge = big + b"\0" * (5 * 1024 * 1024 - len(big) + 10)
    response = send(logged_in, "/studies/home-click/edit", {**form_fields(
        logged_in.get("/studies/home-click/edit").get_data(as_text=True)), "tasks-0-file_0": upload(huge)})
    assert response.status_code == 422
    assert_error_beside(response.get_data(as_text=True), "tasks-0-file_0", "is 5.1 MB; the limit is 5 MB")


def test_a_target_outside_the_image_is_refused_beside_targets(logged_in, engine):
    form = click_form(**{"tasks-0-file_0": upload(png(800, 600)), "tasks-0-file_1": upload(png(400, 900)),
                         "tasks-0-targets_1": "0, 100, 400, 60\n300, 850, 200, 100"})
    response = send(logged_in, "/studies/new", form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert_error_beside(page, "tasks-0-targets_1", "rectangle 2: lies outside the 400 × 900 px image",
                        "tasks-0-targets_1")
    assert error_beside(page, "tasks-0-targets_0") == ""
    assert form_fields(page)["tasks-0-targets_1"] == "0, 100, 400, 60\n300, 850, 200, 100"
    assert experiment_keys(engine) == []


@pytest.mark.parametrize(("changes", "slot", "text"), [
    ({"tasks-0-targets_0": ""}, "tasks-0-targets_0", "is required: one or more rectangles"),
    ({"tasks-0-targets_0": "600, 0, 200"}, "tasks-0-targets_0", "rectangle 1: must be [x, y, width, height]"),
    ({"tasks-0-targets_0": "10, 10, wide, 80"}, "tasks-0-targets_0", "rectangle 1: must be"),
    ({"tasks-0-image_1": "", "tasks-0-file_1": None}, "tasks-0-file_1", "is required"),
    ({"tasks-0-image_1": "f" * 32 + ".png", "tasks-0-file_1": None}, "tasks-0-file_1", "is not a stored image"),
    ({"designs-2-key": "c"}, "designs", "at most 2 designs"),
])
def test_first_click_errors_sit_beside_their_fields(logged_in, changes, slot, text):
    form = click_form(**{"tasks-0-file_0": upload(png(800, 600)), "tasks-0-file_1": upload(png(400, 900))})
    form.update(changes)
    form = {k: v for k, v in form.items() if v is not None}
    response = send(logged_in, "/studies/new", form)
    assert response.status_code == 422
    assert_error_beside(response.get_data(as_text=True), slot, text)


def test_the_upload_route_stores_a_screen_for_the_script(logged_in, app):
    answer = send(logged_in, "/studies/images", {"file": upload(png(320, 240))})
    assert answer.status_code == 201
    body = answer.get_json()
    assert (body["width"], body["height"]) == (320, 240) and body["url"] == f"/study-images/{body['image']}"
    assert store_for(app.extensions["abtest.settings"].instance_path).info(body["image"]).height == 240
    refused = send(logged_in, "/studies/images", {"file": upload(b"%PDF-1.4", "doc.pdf")})
    assert refused.status_code == 400 and refused.get_json()["error"]["message"] == "is not a PNG or JPEG image"
    assert send(logged_in, "/studies/images", {"file": upload(png(2, 2))}, csrf=False).status_code == 400
    # The name the script puts in the form is all a save needs.
    form = click_form(**{"tasks-0-image_0": body["image"], "tasks-0-image_1": body["image"],
                         "tasks-0-targets_0": "0, 0, 320, 240", "tasks-0-targets_1": "10, 10, 20, 20"})
    assert send(logged_in, "/studies/new", form).status_code == 302


def test_the_upload_route_needs_a_login(client, engine):
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/studies/images", data={"file": upload(png(2, 2)), "csrf_token": csrf},
                           content_type="multipart/form-data")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
