"""The study form's tree-test and first-click parts in headless Chromium against a real
`abtest serve --demo`: a screen is stored as soon as it is chosen, a rectangle dragged on it
becomes image-pixel numbers in the Targets field (whatever size the image is shown at), the
saved study has that target, and the form fits a phone. Screenshots land in /tmp/shots."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from abtest.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.live_server import LiveServer, abtest_env, live_server

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")
# htmx sends through XMLHttpRequest (the upload uses fetch): note for each body whether it held a file.
SPY_ON_HTMX = """
window.htmxBodies = [];
const send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function (body) {
  window.htmxBodies.push(body instanceof FormData && [...body.values()].some((v) => v instanceof File));
  return send.call(this, body);
};
"""
TREE = "Shop\n  Laptops\n  Phones\nHelp\n  Returns\n  Contact"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(abtest_env(tmp_path_factory.mktemp("ia-form")), "--demo", workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def screen_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1600 × 1000 mock page: wider than the form's column, so it is shown scaled down."""
    image = Image.new("RGB", (1600, 1000), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1599, 90), fill=(30, 60, 120))
    draw.rectangle((1300, 20, 1560, 70), fill=(250, 200, 40))
    draw.rectangle((100, 200, 900, 700), outline=(0, 0, 0), width=6)
    path = tmp_path_factory.mktemp("screens") / "home.png"
    out = io.BytesIO()
    image.save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return path


def log_in(page, demo: LiveServer) -> None:  # type: ignore[no-untyped-def]
    page.goto(demo.url + "/login")
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/experiments/")


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"ia-form-{name}.png"), full_page=True)


def fill_first_click(page, screen_file: Path) -> None:  # type: ignore[no-untyped-def]
    page.check("#method-first-click")
    page.fill("#key", "home-click")
    page.fill("#name", "Home page first click")
    page.fill("#designs-0-key", "today")
    page.click("#remove-design-1")  # one design
    page.wait_for_function("() => !document.getElementById('designs-1')")
    page.fill("#tasks-0-key", "pricing")
    page.fill("#tasks-0-prompt", "Where would you look for the prices?")
    page.set_input_files("#tasks-0-file_0", str(screen_file))
    page.wait_for_function("() => document.getElementById('tasks-0-image_0').value.endsWith('.png')")
    page.wait_for_selector("fieldset.screen-editor.slot-0 .screen-picture img[src^='/study-images/']")
    page.wait_for_function("() => document.querySelector('fieldset.screen-editor.slot-0 img').complete")


def test_a_rectangle_drawn_on_the_screen_fills_targets_in_image_pixels(  # type: ignore[no-untyped-def]
        page, demo, screen_file):
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.add_init_script(SPY_ON_HTMX)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, demo)
    page.goto(demo.url + "/studies/new")
    fill_first_click(page, screen_file)
    sent = page.evaluate("() => window.htmxBodies")
    assert len(sent) >= 2 and not any(sent)  # live validation ran after the choice, without the file
    assert page.is_hidden("#designs-0-url") and page.is_hidden("#tasks-0-correct_0")  # other methods' fields
    assert not page.is_checked("#seq")  # the SEQ follows the method's default

    image = page.locator("fieldset.screen-editor.slot-0 .screen-picture img")
    image.scroll_into_view_if_needed()
    box = image.bounding_box()  # in the viewport, where the mouse moves
    assert box is not None and box["width"] < 1600  # shown scaled down
    scale = 1600 / box["width"]
    start = (box["x"] + 0.8 * box["width"], box["y"] + 0.01 * box["height"])
    end = (box["x"] + 0.98 * box["width"], box["y"] + 0.08 * box["height"])
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=4)
    page.mouse.move(*end, steps=4)
    page.mouse.up()

    drawn = [int(v) for v in page.input_value("#tasks-0-targets_0").split(", ")]
    expected = [(start[0] - box["x"]) * scale, (start[1] - box["y"]) * scale,
                (end[0] - start[0]) * scale, (end[1] - start[1]) * scale]
    assert all(abs(a - b) <= 3 for a, b in zip(drawn, expected, strict=True)), (drawn, expected)
    assert drawn[0] + drawn[2] <= 1600 and drawn[1] + drawn[3] <= 1000
    assert page.locator("fieldset.screen-editor.slot-0 .target").count() == 1

    # A drag that runs past the image stops at its edge; typing a rectangle draws it too.
    page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.5 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] + 200, box["y"] + box["height"] + 200, steps=5)
    page.mouse.up()
    second = [int(v) for v in page.input_value("#tasks-0-targets_0").splitlines()[1].split(", ")]
    assert second[0] + second[2] == 1600 and second[1] + second[3] == 1000
    page.click("fieldset.screen-editor.slot-0 .target-remove[aria-label='Remove rectangle 2']")
    assert page.input_value("#tasks-0-targets_0").count("\n") == 0
    shot(page, "first-click-1280")

    # Live validation: a rectangle outside the image is reported beside Targets as you type.
    page.fill("#tasks-0-targets_0", page.input_value("#tasks-0-targets_0") + "\n1500, 900, 200, 200")
    page.wait_for_function("() => document.getElementById('tasks-0-targets_0-error').textContent.includes('outside')")
    assert "rectangle 2: lies outside the 1600 × 1000 px image" in page.inner_text("#tasks-0-targets_0-error")
    assert page.locator("fieldset.screen-editor.slot-0 .target").count() == 2
    page.fill("#tasks-0-targets_0", ", ".join(map(str, drawn)))
    page.wait_for_function("() => document.getElementById('tasks-0-targets_0-error').textContent === ''")

    page.click("button:has-text('Create draft study')")
    page.wait_for_url("**/experiments/home-click/results")
    page.goto(demo.url + "/studies/home-click/edit")
    assert page.input_value("#tasks-0-targets_0") == ", ".join(map(str, drawn))
    assert page.locator("fieldset.screen-editor.slot-0 .target").count() == 1
    assert [e for e in console_errors if "status of 422" not in e] == []
    assert page.errors == []


def test_a_file_that_is_no_image_is_refused_beside_it(page, demo, tmp_path):  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, demo)
    page.goto(demo.url + "/studies/new")
    page.check("#method-first-click")
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    page.set_input_files("#tasks-0-file_0", str(notes))
    page.wait_for_function("() => document.getElementById('tasks-0-file_0-error').textContent.includes('PNG or JPEG')")
    page.fill("#tasks-0-prompt", "Anything")  # live validation does not wipe the upload's error
    page.wait_for_timeout(1500)
    assert "“notes.png” is not a PNG or JPEG image" in page.inner_text("#tasks-0-file_0-error")
    assert page.get_attribute("#tasks-0-file_0", "aria-invalid") == "true"
    assert page.errors == []


@pytest.mark.parametrize("width", [390, 768, 1280])
def test_the_form_fits_the_screen_for_both_methods(page, demo, screen_file, width):  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, demo)
    page.goto(demo.url + "/studies/new")
    page.check("#method-tree-test")
    page.fill("#designs-0-key", "current")
    page.fill("#designs-0-tree", TREE)
    page.fill("#designs-1-key", "proposed")
    page.fill("#designs-1-tree", "Products\n  Laptops\nSupport\n  Returns and refunds")
    page.fill("#tasks-0-correct_0", "Help > Returns")
    page.fill("#tasks-0-correct_1", "Support > Refunds")
    page.wait_for_function("() => document.getElementById('tasks-0-correct_1-error').textContent"
                           ".includes('not a node')")
    assert page.is_visible("#tasks-0-correct_1") and page.is_hidden("#tasks-0-file_0")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"tree-test-{width}")

    page.goto(demo.url + "/studies/new")
    fill_first_click(page, screen_file)
    page.fill("#tasks-0-targets_0", "1300, 20, 260, 50")
    assert page.locator("fieldset.screen-editor.slot-0 .target").count() == 1
    page.wait_for_function("() => document.getElementById('tasks-0-targets_0-error').textContent === ''")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    image = page.locator("fieldset.screen-editor.slot-0 .screen-picture img").bounding_box()
    assert image is not None and image["x"] + image["width"] <= width
    shot(page, f"first-click-{width}")
