"""The charts of tree tests and first-click tests: what a path tree shows for a hand-worked task,
that labels cannot break the markup, the row cap, and what a click map draws."""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from abtest.studies.ia import ClickAttempt, Rect, Screen, Tree, TreeAttempt, destinations, first_clicks, parse_tree
from web.click_map import click_map, grid_size
from web.tree_chart import MAX_ROWS, path_tree

SVG = "{http://www.w3.org/2000/svg}"

# 1 Shop, 2 Shop > Laptops, 3 Shop > Phones, 4 Help, 5 Help > Returns, 6 Help > Contact, 7 About
TREE = parse_tree("Shop\n  Laptops\n  Phones\nHelp\n  Returns\n  Contact\nAbout")
RETURNS = frozenset({5})
ATTEMPTS = [
    TreeAttempt((4,), 5, 9000, True),  # straight to Help > Returns
    TreeAttempt((1, 0, 4), 5, 15000, True),  # Shop first, back to the top, then Help > Returns
    TreeAttempt((1,), 3, 7000, False),  # chose Shop > Phones
    TreeAttempt((4,), 6, 8000, False),  # chose Help > Contact
    TreeAttempt((1,), None, 4000, False),  # opened Shop, then skipped
]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on markup that is not well-formed


def node_rows(svg: str) -> list[tuple[str, str]]:
    """(the row's title, all its text) per node row, top to bottom."""
    rows = []
    for g in parse(svg).iter(f"{SVG}g"):
        if g.get("class", "").split()[:1] == ["node"]:
            title = g.find(f"{SVG}title").text  # type: ignore[union-attr]
            rows.append((title, " ".join("".join(t.itertext()) for t in g.iter(f"{SVG}text"))))
    return rows


def rows_by_path(svg: str) -> dict[str, str]:
    return {title.split(":")[0]: text for title, text in node_rows(svg)}


def row_paths(svg: str) -> list[str]:
    return [title.split(":")[0] for title, _ in node_rows(svg)]


# ---- path tree --------------------------------------------------------------------------------------


def test_no_attempts_draws_nothing():
    assert path_tree(TREE, [], RETURNS) is None


def test_rows_are_the_visited_and_chosen_nodes_in_tree_order():
    # Laptops and About: nobody opened or chose them, and they are not correct
    assert row_paths(path_tree(TREE, ATTEMPTS, RETURNS)) == [
        "Shop", "Shop > Phones", "Help", "Help > Returns", "Help > Contact"]


def test_counts_in_words_match_the_hand_worked_task():
    rows = rows_by_path(path_tree(TREE, ATTEMPTS, RETURNS))
    assert "3 passed" in rows["Shop"] and "chose" not in rows["Shop"]  # attempts 2, 3 and 5 opened Shop
    assert "3 passed" in rows["Help"]  # attempts 1, 2 and 4
    assert "2 passed · 2 chose" in rows["Help > Returns"]
    assert "1 passed · 1 chose" in rows["Shop > Phones"]
    assert "1 passed · 1 chose" in rows["Help > Contact"]


def test_correct_answers_get_a_tick_and_wrong_choices_a_cross():
    rows = rows_by_path(path_tree(TREE, ATTEMPTS, RETURNS))
    assert rows["Help > Returns"].startswith("✓")
    assert rows["Shop > Phones"].startswith("✗") and rows["Help > Contact"].startswith("✗")
    assert not rows["Shop"].startswith(("✓", "✗"))  # opened, never chosen


def test_summary_in_words_and_the_skipped_row():
    svg = path_tree(TREE, ATTEMPTS, RETURNS)
    root = parse(svg)
    assert root.get("role") == "img"
    label = root.get("aria-label")
    assert label.startswith("Where 5 participants went for this task: 2 chose a correct answer, "
                            "2 chose a wrong answer, 1 skipped")
    assert "Help > Returns (2)" in label
    skipped = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "skipped")
    assert "Skipped: 1" in "".join(skipped.itertext())


def test_correct_nodes_and_their_path_are_shown_even_when_nobody_went_there():
    nobody = [TreeAttempt((7,), 7, 3000, False)] * 2  # everyone chose About
    rows = rows_by_path(path_tree(TREE, nobody, RETURNS))
    assert list(rows) == ["Help", "Help > Returns", "About"]
    assert "0 passed · 0 chose" in rows["Help > Returns"] and rows["Help > Returns"].startswith("✓")
    assert rows["About"].startswith("✗") and "2 passed · 2 chose" in rows["About"]


def test_a_label_cannot_inject_markup():
    tree = Tree(("", "<b>&", 'say "hi" & <script>x</script>'), (-1, 0, 1))
    svg = path_tree(tree, [TreeAttempt((1,), 2, 1000, True)], frozenset({2}))
    root = parse(svg)
    assert not [e for e in root.iter() if e.tag in (f"{SVG}b", f"{SVG}script", "b", "script")]
    texts = ["".join(e.itertext()) for e in root.iter(f"{SVG}text")]
    assert any("<b>&" in t for t in texts)
    assert "<b>& > say \"hi\" & <script>x</script> (1)" in root.get("aria-label")


def test_long_labels_are_truncated_with_the_full_label_in_the_title():
    long = "Frequently asked questions about deliveries, returns, refunds and exchanges worldwide"
    tree = Tree(("", long), (-1, 0))
    (title, text), = node_rows(path_tree(tree, [TreeAttempt((), 1, 1000, True)], frozenset({1})))
    assert long in title
    assert long not in text and "…" in text


def test_text_reads_at_12px_or_more_on_a_390px_phone():
    root = parse(path_tree(TREE, ATTEMPTS, RETURNS))
    assert root.get("width") == "100%"
    view_width = float(root.get("viewBox").split()[2])
    sizes = [float(e.get("font-size")) for e in root.iter(f"{SVG}text")]
    assert sizes and min(sizes) * 390 / view_width >= 12


def test_rows_are_capped_keeping_correct_and_most_travelled_in_tree_order():
    labels = ("", "Big") + tuple(f"Item {i:03d}" for i in range(100))
    tree = Tree(labels, (-1, 0) + (1,) * 100)
    items = list(range(2, 102))
    attempts = [TreeAttempt((1,), n, 1000, False) for n in items[:-1]]  # everyone but the last item chosen once
    attempts += [TreeAttempt((1,), n, 1000, False) for n in items[40:50] for _ in range(3)]  # some chosen more
    correct = frozenset({items[-1]})  # nobody went there
    svg = path_tree(tree, attempts, correct)
    paths = row_paths(svg)
    assert len(paths) == MAX_ROWS
    assert paths[0] == "Big" and paths[-1] == "Big > Item 099"  # the correct one kept, order preserved
    assert all(f"Big > Item {i:03d}" in paths for i in range(40, 50))  # the most travelled kept
    assert paths == [tree.path(n) for n in sorted(tree.find(p) for p in paths)]
    more = next(e for e in parse(svg).iter(f"{SVG}text") if e.get("class") == "more")
    assert "".join(more.itertext()).startswith(f"… {101 - MAX_ROWS} more nodes")


def test_same_input_gives_the_same_chart():
    assert path_tree(TREE, ATTEMPTS, RETURNS) == path_tree(TREE, list(ATTEMPTS), frozenset({5}))


# ---- tables -----------------------------------------------------------------------------------------


def test_first_clicks_of_the_hand_worked_task():
    assert first_clicks(TREE, ATTEMPTS) == [("Shop", 3, 0.6), ("Help", 2, 0.4)]
    assert first_clicks(TREE, []) == []


def test_destinations_of_the_hand_worked_task():
    assert destinations(TREE, ATTEMPTS, RETURNS) == [
        ("Help > Returns", 2, 0.4, True),
        ("Shop > Phones", 1, 0.2, False),  # ties in tree order
        ("Help > Contact", 1, 0.2, False),
    ]


# ---- click map --------------------------------------------------------------------------------------

SCREEN = Screen("home.png", 1000, 600, (Rect(100, 100, 200, 80), Rect(600, 400, 100, 100)))
CLUSTER = [ClickAttempt(140 + i % 5 * 4, 130 + i // 5 * 4, 2000 + i, True) for i in range(20)]
STRAYS = [ClickAttempt(500, 300, 4000, False), ClickAttempt(50, 550, 5000, False), ClickAttempt(950, 50, 3000, False)]


def density_image(svg: str) -> Image.Image:
    overlay = [e for e in parse(svg).iter(f"{SVG}image") if e.get("class") == "density"]
    assert len(overlay) == 1
    href = overlay[0].get("href")
    assert href.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(href.split(",", 1)[1])))


def test_click_map_draws_the_image_each_target_and_each_click():
    svg = click_map("/s/study/image/abc123.png", SCREEN, CLUSTER + STRAYS)
    root = parse(svg)
    assert root.get("viewBox") == "0 0 1000 600" and root.get("width") == "100%" and root.get("role") == "img"
    assert root.get("aria-label").startswith("First clicks of 23 participants: 20 on a target (87%)")
    first = root.find(f"{SVG}image")
    assert first.get("href") == "/s/study/image/abc123.png"
    assert (first.get("width"), first.get("height")) == ("1000", "600")
    clicks = [e for e in root.iter() if "click" in e.get("class", "").split()]
    assert len(clicks) == 23
    # hits and misses differ by shape, not only colour
    assert [e.tag for e in clicks if "hit" in e.get("class")] == [f"{SVG}circle"] * 20
    assert [e.tag for e in clicks if "miss" in e.get("class")] == [f"{SVG}polygon"] * 3
    targets = [e for e in root.iter(f"{SVG}rect") if e.get("class") == "target"]
    assert [(t.get("x"), t.get("y"), t.get("width"), t.get("height")) for t in targets] == [
        ("100", "100", "200", "80"), ("600", "400", "100", "100")]
    assert all(t.get("stroke-dasharray") for t in targets)


def test_density_png_is_the_grid_size():
    assert grid_size(1000, 600) == (200, 120)
    assert grid_size(120, 80) == (120, 80)  # never finer than the image
    image = density_image(click_map("a.png", SCREEN, CLUSTER + STRAYS))
    assert image.size == (200, 120) and image.mode == "RGBA"


def test_density_is_highest_at_the_cluster_and_clear_far_away():
    alpha = density_image(click_map("a.png", SCREEN, CLUSTER + STRAYS)).getchannel("A")
    scale = 200 / 1000
    near = alpha.getpixel((int(148 * scale), int(136 * scale)))
    far = alpha.getpixel((int(800 * scale), int(500 * scale)))  # no click anywhere near
    stray = alpha.getpixel((int(500 * scale), int(300 * scale)))  # one lone click
    assert near == alpha.getextrema()[1]
    assert far == 0
    assert near > stray


def test_zero_clicks_shows_the_image_and_targets_only():
    root = parse(click_map("a.png", SCREEN, []))
    assert [e.get("href") for e in root.iter(f"{SVG}image")] == ["a.png"]
    assert not [e for e in root.iter() if "click" in e.get("class", "").split()]
    assert len([e for e in root.iter(f"{SVG}rect") if e.get("class") == "target"]) == 2
    assert root.get("aria-label") == "No first clicks yet; 2 target areas outlined."


@pytest.mark.parametrize("url", ['x.png" onload="alert(1)', "a.png?x=1&y=<2>"])
def test_image_url_is_escaped(url):
    root = parse(click_map(url, SCREEN, CLUSTER[:1]))
    image = root.find(f"{SVG}image")
    assert image.get("href") == url and image.get("onload") is None
