"""The participant pages of tree tests and first-click tests (issue 19) with the Flask test
client, on SQLite and PostgreSQL: what each page shows, the click-by-click forms, and that a
replayed or foreign post stores nothing."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image

from abtest import pipeline
from abtest.models import Event, StudyParticipant
from abtest.studies.definition import parse_study
from abtest.studies.ia import tree_attempt
from abtest.studies.images import store_for
from tests.study_helpers import csrf, step_number

# 1 Shop, 2 Laptops, 3 Gaming, 4 Phones, 5 Help, 6 Returns and refunds, 7 Contact
TREE = """
Shop
  Laptops
    Gaming
  Phones
Help
  Returns and refunds
  Contact
"""


def tree_raw(**changes: Any) -> dict[str, Any]:
    raw = {"kind": "study", "key": "nav-tree", "name": "Navigation", "status": "running", "method": "tree-test",
           "designs": [{"key": "current", "tree": TREE}],
           "tasks": [{"key": "returns", "prompt": "Send back a laptop", "correct": ["Help > Returns and refunds"]},
                     {"key": "gaming", "prompt": "Find a gaming laptop", "correct": "Shop > Laptops > Gaming"}]}
    return raw | changes


def _store(session, raw: dict[str, Any]):  # type: ignore[no-untyped-def]
    study = parse_study(raw)
    pipeline.create(session, study)
    session.commit()
    return study


def _join(client, key: str, pid: str = "p-1") -> None:  # type: ignore[no-untyped-def]
    page = client.get(f"/s/{key}?pid={pid}")
    assert page.status_code == 200
    joined = client.post(f"/s/{key}", data={"csrf_token": csrf(page.get_data(as_text=True)), "pid": pid})
    assert joined.status_code == 302


def _page(client, key: str) -> str:  # type: ignore[no-untyped-def]
    response = client.get(f"/s/{key}/step")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def _start(client, key: str) -> str:  # type: ignore[no-untyped-def]
    html = _page(client, key)
    assert "Start task" in html
    started = client.post(f"/s/{key}/task/start", data={"csrf_token": csrf(html), "step": step_number(html)})
    assert started.status_code == 302
    return _page(client, key)


def _task_events(engine) -> list[Any]:  # type: ignore[no-untyped-def]
    table = Event.__table__
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).where(table.c.type == "task").order_by(table.c.id)).mappings())


def _participant(engine, pid: str = "p-1"):  # type: ignore[no-untyped-def]
    table = StudyParticipant.__table__
    with engine.connect() as conn:
        return conn.execute(sa.select(table).where(table.c.pid == pid)).mappings().one()


def _seen(html: str) -> str:
    match = re.search(r'name="seen" value="(\d+)"', html)
    assert match, "no seen in the page"
    return match.group(1)


def _menu(html: str) -> list[str]:
    """The labels of the menu buttons, in order."""
    nav = re.search(r'<nav class="ia-run-menu".*?</nav>', html, re.S)
    return re.findall(r'<button type="submit" name="node" value="\d+"[^>]*>([^<]*)</button>', nav.group(0)) \
        if nav else []


def _crumbs(html: str) -> list[str]:
    nav = re.search(r'<nav class="ia-run-where".*?</nav>', html, re.S)
    assert nav, "no breadcrumb"
    return [re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<li[^>]*>(.*?)</li>", nav.group(0), re.S)]


def _open(client, key: str, html: str, node: int, seen: str | None = None):  # type: ignore[no-untyped-def]
    return client.post(f"/s/{key}/tree/open", data={"csrf_token": csrf(html), "step": step_number(html),
                                                   "seen": seen if seen is not None else _seen(html),
                                                   "node": str(node)})


def _choose(client, key: str, html: str, outcome: str = "here"):  # type: ignore[no-untyped-def]
    return client.post(f"/s/{key}/tree/choose", data={"csrf_token": csrf(html), "step": step_number(html),
                                                     "seen": _seen(html), "outcome": outcome})


# ---- tree tests -------------------------------------------------------------------------------------


def test_the_ready_page_explains_a_tree_test(client, session):
    _store(session, tree_raw())
    _join(client, "nav-tree")
    html = _page(client, "nav-tree")
    assert "You will see a menu of the website, without its design. Find where you would look for the answer." in html
    assert "Send back a laptop" in html and "new tab" not in html and "ia-runner.css" in html
    assert "Shop" not in html  # the menu only shows once the clock runs


def test_a_tree_participant_goes_down_back_and_chooses(client, engine, session):
    study = _store(session, tree_raw())
    _join(client, "nav-tree")
    html = _start(client, "nav-tree")
    # The top: the two top-level labels as buttons, no Back and no "I'd find it here", only Skip.
    assert _menu(html) == ["Shop", "Help"] and _crumbs(html) == ["Menu"]
    assert 'aria-label="Where you are in the menu"' in html and "<ol>" in html
    assert ">Back<" not in html and "I'd find it here" not in html and "Skip this task" in html
    assert _seen(html) == "0"
    assert _open(client, "nav-tree", html, 1).status_code == 302  # Shop
    html = _page(client, "nav-tree")
    assert _menu(html) == ["Laptops", "Phones"] and _crumbs(html) == ["Menu", "Shop"]
    assert ">Back<" in html and "I'd find it here" in html and _seen(html) == "1"
    assert 'aria-label="Menu: Shop"' in html
    back = re.search(r'class="ia-run-back">(.*?)</form>', html, re.S)
    assert back and 'name="node" value="0"' in back.group(1)  # Back opens the parent: the top
    assert _open(client, "nav-tree", html, 0).status_code == 302
    html = _page(client, "nav-tree")
    assert _menu(html) == ["Shop", "Help"] and ">Back<" not in html
    _open(client, "nav-tree", html, 5)  # Help
    html = _page(client, "nav-tree")
    _open(client, "nav-tree", html, 6)  # Returns and refunds: a leaf
    html = _page(client, "nav-tree")
    assert _menu(html) == [] and _crumbs(html) == ["Menu", "Help", "Returns and refunds"]
    assert "nothing more under “Returns and refunds”" in html
    assert 'aria-current="location"' in html and 'correct' not in html.lower()
    assert _choose(client, "nav-tree", html).status_code == 302
    # No SEQ in a tree test unless asked: the next task's ready page.
    html = _page(client, "nav-tree")
    assert "Find a gaming laptop" in html and "Start task" in html
    [event] = _task_events(engine)
    attempt = tree_attempt(event["answers"], event["duration_ms"], event["success"])
    assert attempt is not None and attempt.visits == (1, 0, 5, 6) and attempt.chosen == 6
    assert event["success"] and not attempt.direct(study.tree_of("current"))


def test_a_replayed_tree_click_is_409_and_stores_nothing_twice(client, engine, session):
    _store(session, tree_raw())
    _join(client, "nav-tree")
    top = _start(client, "nav-tree")
    assert _open(client, "nav-tree", top, 1).status_code == 302
    # The same page's form again (a double click, the browser's back button): refused.
    again = _open(client, "nav-tree", top, 1)
    assert again.status_code == 409
    assert "Already recorded" in again.get_data(as_text=True) and "Continue the study" in again.get_data(as_text=True)
    assert _open(client, "nav-tree", top, 5).status_code == 409  # another node from the old page: the same
    assert len(_participant(engine)["trail"]) == 1
    html = _page(client, "nav-tree")
    _open(client, "nav-tree", html, 2)
    html = _page(client, "nav-tree")
    assert _choose(client, "nav-tree", html).status_code == 302
    replay = _choose(client, "nav-tree", html)
    assert replay.status_code == 409 and "Already recorded" in replay.get_data(as_text=True)
    assert _choose(client, "nav-tree", html, "skip").status_code == 409
    [event] = _task_events(engine)
    assert event["task"] == "returns" and event["success"] is False  # Laptops is not where returns are
    assert [n for n, _t in event["answers"]] == [1, 2, 2]


def test_a_node_that_cannot_be_opened_from_here_is_400(client, engine, session):
    _store(session, tree_raw())
    _join(client, "nav-tree")
    html = _start(client, "nav-tree")
    for node in (6, 99, -1):  # not under the top, not in the tree at all
        refused = _open(client, "nav-tree", html, node)
        assert refused.status_code == 400, node
        assert "not a node you can open from here" in refused.get_data(as_text=True)
    broken = client.post("/s/nav-tree/tree/open", data={"csrf_token": csrf(html), "step": step_number(html),
                                                       "node": "1"})  # no seen
    assert broken.status_code == 400
    assert _participant(engine)["trail"] == [] and _task_events(engine) == []
    # "I'd find it here" at the top (a forged form: the page has no such button there) is refused too.
    assert _choose(client, "nav-tree", html).status_code == 400
    assert _task_events(engine) == []


def test_skipping_a_task_and_the_seq_after_it(client, engine, session):
    _store(session, tree_raw(seq=True))
    _join(client, "nav-tree")
    html = _start(client, "nav-tree")
    _open(client, "nav-tree", html, 1)
    html = _page(client, "nav-tree")
    assert _choose(client, "nav-tree", html, "skip").status_code == 302
    html = _page(client, "nav-tree")
    assert "How was that task?" in html  # the study asks the SEQ: it follows the task
    assert client.post("/s/nav-tree/answer", data={"csrf_token": csrf(html), "step": step_number(html),
                                                   "SEQ-1": "3"}).status_code == 302
    assert "Find a gaming laptop" in _page(client, "nav-tree")
    [event] = _task_events(engine)
    attempt = tree_attempt(event["answers"], event["duration_ms"], event["success"])
    assert attempt is not None and attempt.skipped and attempt.visits == (1,) and event["success"] is False


def test_im_done_is_not_a_tree_test_answer(client, engine, session):
    _store(session, tree_raw())
    _join(client, "nav-tree")
    html = _start(client, "nav-tree")
    assert "I'm done" not in html and "task-link" not in html
    done = client.post("/s/nav-tree/task/end", data={"csrf_token": csrf(html), "step": step_number(html),
                                                     "outcome": "done"})
    assert done.status_code == 422 and _task_events(engine) == []


# ---- first-click tests ---------------------------------------------------------------------------------


@pytest.fixture
def click_study(session, settings):  # type: ignore[no-untyped-def]
    """A one-task first-click test on a stored 800 × 500 PNG; the target is its top-right corner."""
    buffer = io.BytesIO()
    Image.new("RGB", (800, 500), (240, 240, 240)).save(buffer, "PNG")
    stored = store_for(settings.instance_path).save(buffer.getvalue())
    raw = {"kind": "study", "key": "home-click", "name": "Home page", "status": "running", "method": "first-click",
           "designs": [{"key": "a"}],
           "tasks": [{"key": "pricing", "prompt": "Where would you see the prices?", "image": stored.name,
                      "width": stored.width, "height": stored.height, "targets": [[600, 0, 200, 80]]}]}
    _store(session, raw)
    return stored


def _click(client, html: str, **fields: str):  # type: ignore[no-untyped-def]
    return client.post("/s/home-click/click", data={"csrf_token": csrf(html), "step": step_number(html), **fields})


def test_the_click_page_shows_the_screen_at_a_known_size(client, click_study):
    _join(client, "home-click")
    html = _page(client, "home-click")
    assert "Click where you would click first to do this task. Only your first click counts." in html
    assert "<input type=\"image\"" not in html  # the screen only shows once the clock runs
    html = _start(client, "home-click")
    assert f'src="/study-images/{click_study.name}"' in html
    assert 'type="image" name="click"' in html and 'width="800" height="500"' in html
    assert "max-width: 800px" in html and 'name="shown_width" value=""' in html
    assert "ia-first-click.js" in html and "<noscript>" in html
    assert client.get(f"/study-images/{click_study.name}").status_code == 200


def test_a_click_is_scaled_from_the_width_it_was_shown_at(client, engine, click_study):
    _join(client, "home-click")
    html = _start(client, "home-click")
    # Shown at 400 px wide: (310, 20) on the page is (620, 40) in the image, on the target.
    assert _click(client, html, **{"click.x": "310", "click.y": "20", "shown_width": "400"}).status_code == 302
    assert client.get("/s/home-click/step").location.endswith("/s/home-click/thanks")
    [event] = _task_events(engine)
    assert event["answers"] == [620.0, 40.0] and event["success"] is True and event["task"] == "pricing"


def test_without_shown_width_the_click_is_in_image_pixels(client, engine, click_study):
    _join(client, "home-click")
    html = _start(client, "home-click")
    assert _click(client, html, **{"click.x": "310", "click.y": "20"}).status_code == 302  # no script: natural size
    [event] = _task_events(engine)
    assert event["answers"] == [310.0, 20.0] and event["success"] is False


def test_a_click_outside_the_image_is_400_and_a_replay_409(client, engine, click_study):
    _join(client, "home-click")
    html = _start(client, "home-click")
    for fields in ({"click.x": "500", "click.y": "20", "shown_width": "400"},  # 1000 px: past the right edge
                   {"click.x": "810", "click.y": "20"}, {"click.x": "10", "click.y": "-40"}):
        refused = _click(client, html, **fields)
        assert refused.status_code == 400, fields
        assert "outside the 800 × 500 image" in refused.get_data(as_text=True)
    for fields in ({"click.x": "10"}, {"click.x": "a", "click.y": "1"}, {"click.x": "10", "click.y": "1",
                                                                          "shown_width": "0"},
                   {"click.x": "10", "click.y": "1", "shown_width": "nan"}):
        assert _click(client, html, **fields).status_code == 400, fields
    assert _task_events(engine) == []
    # On the last pixel, rounded by the browser just past the edge: still the edge.
    assert _click(client, html, **{"click.x": "400", "click.y": "250.4", "shown_width": "399.6"}).status_code == 302
    replay = _click(client, html, **{"click.x": "310", "click.y": "20", "shown_width": "400"})
    assert replay.status_code == 409 and "Already recorded" in replay.get_data(as_text=True)
    [event] = _task_events(engine)
    assert event["answers"] == [800.0, 500.0]


def test_a_click_for_a_step_that_is_not_a_task_is_409(client, engine, click_study):
    _join(client, "home-click")
    html = _start(client, "home-click")
    assert client.post("/s/home-click/click", data={"csrf_token": csrf(html), "step": "7", "click.x": "1",
                                                    "click.y": "1"}).status_code == 409
    assert _task_events(engine) == []
