"""Tree tests and first-click tests (issue 19): definitions with field errors, storage, the
runner's click-by-click rules, and the metrics against hand-computed cases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from abtest import pipeline
from abtest.aggregates.sql import SqlSource
from abtest.checks import InvalidDefinition
from abtest.models import utcnow
from abtest.studies import ia_runner, runner
from abtest.studies.definition import check_launched, parse_study
from abtest.studies.ia import TreeError, parse_tree, tree_answers, tree_attempt
from abtest.studies.runner import StepConflict
from abtest.errors import Conflict, ValidationError

CURRENT = """
Shop
  Laptops
    Gaming
  Phones
Help
  Returns
  Contact
"""
PROPOSED = {"Products": {"Laptops": {}, "Phones": {}}, "Support": {"Returns and refunds": {}, "Contact us": {}}}


def tree_study(**changes: Any) -> dict[str, Any]:
    raw = {"kind": "study", "key": "nav-tree", "name": "Navigation", "status": "running", "method": "tree-test",
           "designs": [{"key": "current", "tree": CURRENT}, {"key": "proposed", "tree": PROPOSED}],
           "tasks": [{"key": "returns", "prompt": "Send back a laptop",
                      "correct": {"current": ["Help > Returns"], "proposed": ["Support > Returns and refunds"]}},
                     {"key": "gaming", "prompt": "Find a gaming laptop",
                      "correct": {"current": "Shop > Laptops > Gaming", "proposed": ["Products > Laptops"]}}]}
    raw.update(changes)
    return raw


def click_study(**changes: Any) -> dict[str, Any]:
    raw = {"kind": "study", "key": "home-click", "name": "Home page", "status": "running", "method": "first-click",
           "designs": [{"key": "a"}, {"key": "b"}],
           "tasks": [{"key": "pricing", "prompt": "Where would you see the prices?",
                      "screens": {"a": {"image": "0" * 32 + ".png", "width": 800, "height": 600,
                                        "targets": [[600, 0, 200, 80]]},
                                  "b": {"image": "1" * 32 + ".png", "width": 400, "height": 900,
                                        "targets": [[0, 100, 400, 60], [0, 800, 100, 100]]}}}]}
    raw.update(changes)
    return raw


def errors_of(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidDefinition) as caught:
        parse_study(raw)
    return {e.field or "": e.message for e in caught.value.errors}


# ---- trees ------------------------------------------------------------------------------------------


def test_indented_text_and_nested_tables_give_the_same_tree():
    text = parse_tree("Products\n  Laptops\n  Phones\nSupport\n  Returns and refunds\n  Contact us\n")
    assert text == parse_tree(PROPOSED)
    assert text.path(4) == "Support" and text.find("Support >Returns and refunds") == 5
    assert text.children[0] == (1, 4) and text.size == 6
    assert parse_tree(text.to_text()) == text


@pytest.mark.parametrize("given, fragment", [
    ("A\n    B", "more than one level"),
    ("A\n B", "multiples of 2"),
    ("A\n\tB", "tabs"),
    ("A\nA", "twice"),
    ("A > B", "must not contain '>'"),
    ("", "empty"),
    ({"A": "leaf"}, "table of its children"),
    (42, "indented list"),
])
def test_bad_trees_say_what_is_wrong(given, fragment):
    with pytest.raises(TreeError, match=fragment):
        parse_tree(given)


def test_a_tree_of_more_than_500_nodes_is_refused():
    parse_tree("\n".join(f"item {i}" for i in range(500)))
    with pytest.raises(TreeError, match="at most 500"):
        parse_tree("\n".join(f"item {i}" for i in range(501)))


def test_directness_and_first_click_from_a_stored_path():
    tree = parse_tree(CURRENT)  # 1 Shop, 2 Laptops, 3 Gaming, 4 Phones, 5 Help, 6 Returns, 7 Contact
    straight = tree_attempt(tree_answers([(5, 900.0), (6, 1500.0)], 6, 2000.0), 2000.0, True)
    assert straight is not None and straight.direct(tree) and straight.first_click(tree) == 5
    wandered = tree_attempt(tree_answers([(1, 500.0), (0, 800.0), (5, 1000.0), (6, 1200.0)], 6, 1300.0), 1300.0, True)
    assert wandered is not None and not wandered.direct(tree) and wandered.first_click(tree) == 1
    skipped = tree_attempt(tree_answers([(1, 500.0)], None, 900.0), 900.0, False)
    assert skipped is not None and skipped.skipped and skipped.direct(tree)  # skipped without going back
    back_and_skip = tree_attempt(tree_answers([(1, 500.0), (0, 700.0)], None, 900.0), 900.0, False)
    assert back_and_skip is not None and not back_and_skip.direct(tree)


# ---- definitions ---------------------------------------------------------------------------------------


def test_a_tree_test_round_trips_through_its_toml_shape():
    study = parse_study(tree_study())
    assert study.method == "tree-test" and study.noun == "tree test" and study.seq is False
    assert study.task("returns").correct_for("current") == {6}
    assert study.task("gaming").correct_for("proposed") == {2}
    assert parse_study(study.to_dict()) == study


def test_tree_test_field_errors_name_the_field():
    raw = tree_study()
    raw["tasks"] = [{"key": "returns", "prompt": "p", "correct": {"current": ["Help > Refunds"]},
                     "success_url": "*/done"}]
    raw["designs"] = [{"key": "current", "tree": CURRENT, "url": "/x"}, {"key": "proposed", "tree": "A\n    B"}]
    errors = errors_of(raw)
    assert "not a node of the current tree" in errors["tasks[0].correct.current"]
    assert "missing: proposed" in errors["tasks[0].correct"]
    assert "has no success_url" in errors["tasks[0].success_url"]
    assert "has no url" in errors["designs[0].url"]
    assert "line 2" in errors["designs[1].tree"]


def test_tree_tests_compare_at_most_two_trees_between_subjects():
    raw = tree_study(within_subjects=True)
    raw["designs"] = [*raw["designs"], {"key": "third", "tree": "A"}]
    errors = errors_of(raw)
    assert "between subjects" in errors["within_subjects"] and "at most 2" in errors["designs"]


def test_a_first_click_target_outside_the_image_is_a_field_error():
    raw = click_study()
    raw["tasks"][0]["screens"]["b"]["targets"] = [[350, 100, 100, 60]]
    errors = errors_of(raw)
    assert "outside the 400 × 900 px image" in errors["tasks[0].screens.b.targets[0]"]
    assert list(errors) == ["tasks[0].screens.b.targets[0]"]


def test_a_first_click_image_that_was_never_stored_is_refused():
    raw = click_study()
    del raw["tasks"][0]["screens"]["a"]["width"]
    assert "not a stored image" in errors_of(raw)["tasks[0].screens.a.image"]


def test_a_launched_tree_tests_trees_and_answers_are_frozen():
    old = parse_study(tree_study())
    moved = tree_study()
    moved["designs"] = [{"key": "current", "tree": CURRENT + "About\n"}, moved["designs"][1]]
    with pytest.raises(Conflict, match="trees"):
        check_launched(old, parse_study(moved))
    other = tree_study()
    other["tasks"][0]["correct"] = {"current": ["Help > Contact"], "proposed": ["Support > Contact us"]}
    with pytest.raises(Conflict) as caught:
        check_launched(old, parse_study(other))
    assert caught.value.field == "tasks[0]"


# ---- storage and the runner ---------------------------------------------------------------------------------


def _store(session: Session, raw: dict[str, Any]):  # type: ignore[no-untyped-def]
    study = parse_study(raw)
    pipeline.create(session, study)
    session.commit()
    return study


def test_both_kinds_are_stored_and_loaded_unchanged(session):
    for raw in (tree_study(), click_study()):
        study = _store(session, raw)
        assert runner.get_study(session, study.key)[1] == study


def _participant_on(engine, key: str, design: str) -> str:  # type: ignore[no-untyped-def]
    """A participant id that the hash puts on ``design``."""
    with Session(engine) as session:
        _row, study = runner.get_study(session, key)
    pid = next(f"p{i}" for i in range(1000) if runner.design_order(study, f"p{i}", 0) == [design])
    runner.join(engine, key, pid)
    return pid


def test_a_tree_participant_goes_down_back_and_chooses(engine, session):
    _store(session, tree_study())
    pid = _participant_on(engine, "nav-tree", "current")
    runner.start_task(engine, "nav-tree", pid, 0)
    start = utcnow()
    assert ia_runner.open_node(engine, "nav-tree", pid, 0, 0, 1, now=start + timedelta(seconds=2)) == 1  # Shop
    with pytest.raises(StepConflict):  # the same click again (a double click, a second tab)
        ia_runner.open_node(engine, "nav-tree", pid, 0, 0, 1)
    with pytest.raises(ValidationError) as caught:  # Returns is not under Shop
        ia_runner.open_node(engine, "nav-tree", pid, 0, 1, 6)
    assert caught.value.field == "node"
    ia_runner.open_node(engine, "nav-tree", pid, 0, 1, 0, now=start + timedelta(seconds=3))  # back to the top
    ia_runner.open_node(engine, "nav-tree", pid, 0, 2, 5, now=start + timedelta(seconds=4))  # Help
    ia_runner.open_node(engine, "nav-tree", pid, 0, 3, 6, now=start + timedelta(seconds=5))  # Returns
    success, _ms = ia_runner.choose_node(engine, "nav-tree", pid, 0, 4, skip=False, now=start + timedelta(seconds=6))
    assert success
    with pytest.raises(StepConflict):  # replayed: nothing stored twice
        ia_runner.choose_node(engine, "nav-tree", pid, 0, 4, skip=False)
    runner.start_task(engine, "nav-tree", pid, 1)
    assert ia_runner.choose_node(engine, "nav-tree", pid, 1, 0, skip=True)[0] is False
    with Session(engine) as s:
        row, study = runner.get_study(s, "nav-tree")
        assert runner.get_participant(s, row, pid).finished_at is not None  # no SEQ asked: done
    answers = _answers(engine, study)
    [(ok, _d, stored)] = answers["returns"]["current"]
    attempt = tree_attempt(stored, _d, ok)
    assert attempt is not None and attempt.visits == (1, 0, 5, 6) and attempt.chosen == 6
    assert [t for _n, t in stored[:4]] == pytest.approx([2000, 3000, 4000, 5000], abs=50)
    assert not attempt.direct(study.tree_of("current"))
    [(ok2, _d2, stored2)] = answers["gaming"]["current"]
    assert ok2 is False and stored2 == [[-1, pytest.approx(stored2[0][1])]]


def _answers(engine, study):  # type: ignore[no-untyped-def]
    from abtest.aggregates.base import TaskAnswers

    fetched = SqlSource(engine).fetch(study.key, study.variant_keys,
                                               [TaskAnswers(t.key) for t in study.tasks], utcnow())
    return {t.key: fetched.whole[TaskAnswers(t.key)] for t in study.tasks}


def test_choosing_before_opening_anything_is_refused(engine, session):
    _store(session, tree_study())
    pid = _participant_on(engine, "nav-tree", "proposed")
    runner.start_task(engine, "nav-tree", pid, 0)
    with pytest.raises(ValidationError, match="open a node"):
        ia_runner.choose_node(engine, "nav-tree", pid, 0, 0, skip=False)
    with pytest.raises(ValidationError):  # "I'm done" belongs to usability studies
        runner.end_task(engine, "nav-tree", pid, 0, gave_up=False)


def test_a_first_click_on_and_off_target(engine, session):
    _store(session, click_study())
    on = _participant_on(engine, "home-click", "b")
    runner.start_task(engine, "home-click", on, 0)
    with pytest.raises(ValidationError) as caught:
        ia_runner.first_click(engine, "home-click", on, 0, 401, 10)
    assert caught.value.field == "click"
    assert ia_runner.first_click(engine, "home-click", on, 0, 50, 850)[0] is True  # the second target
    with pytest.raises(StepConflict):
        ia_runner.first_click(engine, "home-click", on, 0, 50, 850)
    off = _participant_on(engine, "home-click", "a")
    runner.start_task(engine, "home-click", off, 0)
    assert ia_runner.first_click(engine, "home-click", off, 0, 100.44, 300)[0] is False
    with Session(engine) as s:
        study = runner.get_study(s, "home-click")[1]
    answers = _answers(engine, study)["pricing"]
    assert [a for _s, _d, a in answers["a"]] == [[100.4, 300.0]]
    assert [(s_, a) for s_, _d, a in answers["b"]] == [(True, [50.0, 850.0])]


def test_a_tree_test_breaks_down_by_device(engine, session):
    _store(session, tree_study())
    for design, device, chosen in (("current", "mobile", 6), ("current", "desktop", 7), ("proposed", "mobile", 5)):
        with Session(engine) as s:
            study = runner.get_study(s, "nav-tree")[1]
        pid = next(f"{device}{i}" for i in range(1000) if runner.design_order(study, f"{device}{i}", 0) == [design])
        runner.join(engine, "nav-tree", pid, attributes={"device": device})
        runner.start_task(engine, "nav-tree", pid, 0)
        tree = study.tree_of(design)
        for seen, node in enumerate(tree.ancestors(chosen)):
            ia_runner.open_node(engine, "nav-tree", pid, 0, seen, node)
        ia_runner.choose_node(engine, "nav-tree", pid, 0, len(tree.ancestors(chosen)), skip=False)
    report = pipeline.analyze(engine, "nav-tree", by="device")
    success = next(m for m in report.metrics if m.name == "returns-success")
    by_segment = {s.segment: {v.variant: (v.n, v.value) for v in s.variants} for s in success.segments}
    assert by_segment["mobile"] == {"current": (1, 1.0), "proposed": (1, 1.0)}
    assert by_segment["desktop"]["current"] == (1, 0.0)
    direct = next(m for m in report.metrics if m.name == "returns-directness")
    assert {s.segment: [v.n for v in s.variants] for s in direct.segments}["mobile"] == [1, 1]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 10**400])
def test_a_target_must_be_finite_numbers(bad):
    raw = click_study()
    raw["tasks"][0]["screens"]["a"]["targets"] = [[bad, 0, 10, 10]]
    assert "finite" in errors_of(raw)["tasks[0].screens.a.targets[0]"]


def test_table_labels_that_would_not_survive_the_text_form_are_refused():
    with pytest.raises(TreeError, match="must not start"):
        parse_tree({"- Shop": {}})
    with pytest.raises(TreeError, match="one line"):
        parse_tree({"Shop\nDeals": {}})
    assert parse_tree("- Shop\n  - Laptops").labels == ("", "Shop", "Laptops")  # a Markdown list reads the same


def test_task_keys_that_would_name_two_results_alike_are_refused():
    raw = tree_study()
    raw["tasks"] = [{"key": "a", "prompt": "p", "correct": {"current": "Help", "proposed": "Support"}},
                    {"key": "a-direct", "prompt": "p", "correct": {"current": "Help", "proposed": "Support"}}]
    assert "'a-direct-success'" in errors_of(raw)["tasks[1].key"]


def test_a_tree_participant_has_a_move_limit(engine, session, monkeypatch):
    monkeypatch.setattr(ia_runner, "MAX_MOVES", 4)
    _store(session, tree_study())
    pid = _participant_on(engine, "nav-tree", "current")
    runner.start_task(engine, "nav-tree", pid, 0)
    for seen, node in enumerate([1, 0, 1, 0]):
        ia_runner.open_node(engine, "nav-tree", pid, 0, seen, node)
    with pytest.raises(ValidationError, match="after 4 moves"):
        ia_runner.open_node(engine, "nav-tree", pid, 0, 4, 1)
    assert ia_runner.choose_node(engine, "nav-tree", pid, 0, 4, skip=True)[0] is False  # skipping still works
