"""Tree-test and first-click metrics on hand-built attempts, on SQLite, PostgreSQL and with the
events in ClickHouse (chdb): the counts behind every rate are written out by hand below, and the
intervals and tests are the stats functions' (each checked against its own reference in
tests/stats)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from abtest.models import utcnow
from abtest.pipeline import analyze
from abtest.stats import durations, proportions
from abtest.stats.multiple import holm
from abtest.stats.summary import Counts
from abtest.store.events import write_events
from abtest.studies.ia import tree_answers
from abtest.studies.runner import get_study, study_event
from tests.conftest import BACKENDS_WITH_CHDB, backend_engine
from tests.test_ia_studies import _store, click_study, tree_study


@pytest.fixture(params=BACKENDS_WITH_CHDB)
def engine(request):  # type: ignore[no-untyped-def]
    """Every test here also runs with the events in ClickHouse (chdb): the same numbers."""
    yield from backend_engine(request)


# The current tree: 1 Shop, 2 Laptops, 3 Gaming, 4 Phones, 5 Help, 6 Returns, 7 Contact.
# Task "returns" (correct: 6). Each attempt: (visits, chosen or None, seconds).
CURRENT_RETURNS = [
    ([5, 6], 6, 8.0),            # direct success
    ([5, 6], 6, 12.0),           # direct success
    ([1, 0, 5, 6], 6, 30.0),     # success after going back: indirect
    ([5, 7], 7, 10.0),           # direct, wrong node
    ([1, 2], None, 20.0),        # skipped, without going back: a direct skip
]
# The proposed tree: 1 Products, 2 Laptops, 3 Phones, 4 Support, 5 Returns and refunds, 6 Contact us.
PROPOSED_RETURNS = [([4, 5], 5, 6.0)] * 4 + [([1, 0, 4, 5], 5, 15.0)]
# Task "gaming": current correct 3 (Shop > Laptops > Gaming), proposed correct 2 (Products > Laptops).
CURRENT_GAMING = [([1, 2, 3], 3, 9.0), ([1, 4], 4, 14.0), ([5], None, 11.0), ([1, 2, 3], 3, 7.0)]
PROPOSED_GAMING = [([1, 2], 2, 5.0), ([1, 2], 2, 6.0), ([1, 3], 3, 9.0), ([1, 2], 2, 4.0)]


def _seed_tree(session, engine):  # type: ignore[no-untyped-def]
    study = _store(session, tree_study())
    row, _ = get_study(session, study.key)
    now, events, n = utcnow(), [], 0
    for task, design, attempts in (("returns", "current", CURRENT_RETURNS), ("returns", "proposed", PROPOSED_RETURNS),
                                   ("gaming", "current", CURRENT_GAMING), ("gaming", "proposed", PROPOSED_GAMING)):
        for i, (visits, chosen, seconds) in enumerate(attempts):
            n += 1
            correct = study.task(task).correct_for(design)
            timed = [(node, 1000.0 * (j + 1)) for j, node in enumerate(visits)]
            events.append(study_event(row.id, f"tree-{n:04d}", "task", design, f"{design}-{i}",
                                      now + timedelta(seconds=n), task=task, success=chosen in correct,
                                      duration_ms=seconds * 1000, answers=tree_answers(timed, chosen, seconds * 1000)))
    write_events(session.connection(), events)
    session.commit()
    return study


def _metric(report, name):  # type: ignore[no-untyped-def]
    return next(m for m in report.metrics if m.name == name)


def test_tree_test_rates_come_from_the_paths(session, engine):
    _seed_tree(session, engine)
    report = analyze(engine, "nav-tree")
    # returns, current: success 3/5, directness 4/5 (only the back-tracker is not: the wrong answer and
    # the skip never went back up), direct success 2/5
    for name, current, proposed in (("returns-success", (5, 3), (5, 5)), ("returns-directness", (5, 4), (5, 4)),
                                    ("returns-direct-success", (5, 2), (5, 4)),
                                    ("gaming-success", (4, 2), (4, 3)), ("gaming-directness", (4, 4), (4, 4))):
        metric = _metric(report, name)
        assert metric.type == "conversion" and "adjusted Wald" in metric.method
        for row, (n, x) in zip(metric.variants, (current, proposed), strict=True):
            assert (row.n, row.value) == (n, pytest.approx(x / n))
            assert row.ci == pytest.approx(proportions.adjusted_wald_interval(Counts(n, x)).ci.as_tuple())


def test_time_to_answer_is_a_geometric_mean_without_the_skips(session, engine):
    _seed_tree(session, engine)
    time = _metric(analyze(engine, "nav-tree"), "returns-time")
    answered = [8.0, 12.0, 30.0, 10.0]  # the 20 s skip is left out
    assert time.variants[0].n == 4
    assert time.variants[0].value == pytest.approx(math.exp(sum(map(math.log, answered)) / 4))
    proposed = [6.0] * 4 + [15.0]
    expected = durations.compare_durations(durations.log_moments(answered), durations.log_moments(proposed))
    assert time.comparisons[0].p_value == pytest.approx(expected.p_value)
    assert time.comparisons[0].effect == pytest.approx(expected.effect)


def test_each_metric_is_holm_adjusted_across_the_tasks(session, engine):
    _seed_tree(session, engine)
    report = analyze(engine, "nav-tree")
    raw = [proportions.compare_proportions(Counts(5, 3), Counts(5, 5), small_samples=True).p_value,
           proportions.compare_proportions(Counts(4, 2), Counts(4, 3), small_samples=True).p_value]
    for name, expected in zip(("returns-success", "gaming-success"), holm(raw), strict=True):
        metric = _metric(report, name)
        assert metric.adjustment == "Holm across 2 tasks"
        assert metric.comparisons[0].p_value == pytest.approx(raw[0] if name.startswith("returns") else raw[1])
        assert metric.comparisons[0].p_adjusted == pytest.approx(expected)
    # by hand: Holm multiplies the smaller p by 2 and keeps the larger at least as big
    low, high = sorted(raw)
    assert sorted(holm(raw)) == pytest.approx(sorted([min(1, 2 * low), min(1, max(2 * low, high))]))


def test_first_clicks_and_destinations_have_shares(session, engine):
    _seed_tree(session, engine)
    details = analyze(engine, "nav-tree").details
    returns = next(t for t in details.tasks if t["task"] == "returns")["designs"]["current"]
    assert returns["attempts"] == 5 and returns["skipped"] == 1
    assert returns["first_clicks"] == [{"node": "Help", "count": 3, "share": 0.6},
                                       {"node": "Shop", "count": 2, "share": 0.4}]
    assert returns["destinations"] == [
        {"node": "Help > Returns", "count": 3, "share": 0.6, "correct": True},
        {"node": "Help > Contact", "count": 1, "share": 0.2, "correct": False}]
    assert returns["correct"] == ["Help > Returns"]
    assert returns["paths"][2] == {"visits": [1, 0, 5, 6], "chosen": 6, "success": True, "seconds": 30.0}
    document = analyze(engine, "nav-tree").to_dict()
    assert document["method"] == "tree-test" and len(document["tasks"]) == 2


def test_first_click_share_on_target_and_time(session, engine):
    study = _store(session, click_study())
    row, _ = get_study(session, study.key)
    now = utcnow()
    clicks = {"a": [(650, 40, 3.0), (700, 10, 5.0), (100, 300, 9.0)],  # 2 of 3 inside [600, 0, 200, 80]
              "b": [(50, 850, 4.0), (200, 120, 2.0), (300, 500, 6.0), (10, 10, 8.0)]}  # 2 of 4 on a target
    events = []
    for design, points in clicks.items():
        screen = study.tasks[0].screen_for(design)
        for i, (x, y, seconds) in enumerate(points):
            events.append(study_event(row.id, f"click-{design}-{i}", "task", design, f"{design}{i}", now,
                                      task="pricing", success=screen.on_target(x, y), duration_ms=seconds * 1000,
                                      answers=[x, y]))
    write_events(session.connection(), events)
    session.commit()
    report = analyze(engine, "home-click")
    success = _metric(report, "pricing-success")
    assert success.label == "pricing: first click on target"
    assert [(v.n, v.value) for v in success.variants] == [(3, pytest.approx(2 / 3)), (4, 0.5)]
    assert success.comparisons[0].p_value == pytest.approx(
        proportions.compare_proportions(Counts(3, 2), Counts(4, 2), small_samples=True).p_value)
    time = _metric(report, "pricing-time")
    assert time.variants[1].value == pytest.approx((4 * 2 * 6 * 8) ** 0.25)
    a = report.details.tasks[0]["designs"]["a"]
    assert a["on_target"] == 2 and a["clicks"] == [[650, 40, True], [700, 10, True], [100, 300, False]]
    assert a["screen"]["width"] == 800


def test_no_attempts_yet_reads_as_no_data(session, engine):
    _store(session, tree_study())
    report = analyze(engine, "nav-tree")
    assert "No participants yet" in report.verdict
    assert all(v.n == 0 for m in report.metrics for v in m.variants)


def _seed_both_methods(engine, now):  # type: ignore[no-untyped-def]
    """The tree test above and a first-click test, each participant exposed with a device first."""
    from sqlmodel import Session

    from abtest.store.events import event_row, exposure_id

    with Session(engine, expire_on_commit=False) as session:
        tree = _store(session, tree_study())
        click = _store(session, click_study())
        rows = {key: get_study(session, key)[0] for key in (tree.key, click.key)}
        events, n = [], 0
        devices = ["desktop", "mobile", "tablet", None]

        def exposed(study, design, unit):  # type: ignore[no-untyped-def]
            device = devices[sum(map(ord, unit)) % 4]
            events.append(event_row(rows[study.key].id, exposure_id(study.key, design, unit, False), "exposure", unit,
                                    now, variant=design, attributes={"device": device} if device else None))

        for task, design, attempts in (("returns", "current", CURRENT_RETURNS), ("returns", "proposed", PROPOSED_RETURNS),
                                       ("gaming", "current", CURRENT_GAMING), ("gaming", "proposed", PROPOSED_GAMING)):
            for i, (visits, chosen, seconds) in enumerate(attempts):
                n += 1
                unit = f"{design}-{i}"
                if task == "returns":
                    exposed(tree, design, unit)
                timed = [(node, 1000.0 * (j + 1)) for j, node in enumerate(visits)]
                events.append(study_event(rows[tree.key].id, f"tree-{n:04d}", "task", design, unit,
                                          now + timedelta(seconds=n), task=task,
                                          success=chosen in tree.task(task).correct_for(design),
                                          duration_ms=seconds * 1000, answers=tree_answers(timed, chosen, seconds * 1000)))
        for design, points in {"a": [(650, 40), (700, 10), (100, 300), (610, 70), (5, 5)],
                               "b": [(50, 850), (200, 120), (300, 500), (10, 10), (20, 820), (399, 159)]}.items():
            screen = click.tasks[0].screen_for(design)
            for i, (x, y) in enumerate(points):
                n += 1
                exposed(click, design, f"{design}{i}")
                events.append(study_event(rows[click.key].id, f"click-{n:04d}", "task", design, f"{design}{i}",
                                          now + timedelta(seconds=n), task="pricing", success=screen.on_target(x, y),
                                          duration_ms=1000.0 * (2 + (x + y) % 7), answers=[x, y]))
        write_events(session.connection(), events)
        session.commit()


def test_tree_and_first_click_results_on_clickhouse_equal_the_sqlite_ones_by_device(sqlite_engine, chdb_engine):
    from tests.conftest import _clear, clear_events_store
    from tests.test_clickhouse import same

    now = utcnow().replace(microsecond=0) - timedelta(minutes=30)
    both = (sqlite_engine, chdb_engine)
    try:
        for engine in both:
            _clear(engine)
            clear_events_store(engine)
            _seed_both_methods(engine, now)
        for key in ("nav-tree", "home-click"):
            for by in (None, "device"):
                on_sqlite, on_chdb = (analyze(e, key, by=by, now=now).to_dict() for e in both)
                assert on_sqlite["metrics"][0]["variants"][0]["n"] >= 5 and on_sqlite["tasks"]
                same(on_chdb, on_sqlite, f"{key} by {by}")
            segments = analyze(chdb_engine, key, by="device", now=now).to_dict()["metrics"][0]["segments"]
            assert {s["segment"] for s in segments} == {"desktop", "mobile", "tablet", "(not set)"}
    finally:
        for engine in both:
            _clear(engine)
            clear_events_store(engine)


def test_rates_are_compared_by_n_minus_1_even_when_the_table_is_large(session, engine):
    """A pooled z-test would be chosen for 40 vs 40 attempts in an A/B test; a tree test keeps
    the N−1 test (Sauro & Lewis), which the page names."""
    study = _store(session, click_study())
    row, _ = get_study(session, study.key)
    now = utcnow()
    events = []
    for design, hits in (("a", 24), ("b", 32)):
        screen = study.tasks[0].screen_for(design)
        target = screen.targets[0]
        for i in range(40):
            x, y = (target.x + 1, target.y + 1) if i < hits else (screen.width - 1.0, screen.height / 2)
            events.append(study_event(row.id, f"big-{design}-{i}", "task", design, f"{design}-{i}", now,
                                      task="pricing", success=screen.on_target(x, y), duration_ms=3000.0 + i,
                                      answers=[x, y]))
    write_events(session.connection(), events)
    session.commit()
    [comparison] = _metric(analyze(engine, "home-click"), "pricing-success").comparisons
    expected = proportions.n_minus_1_test(Counts(40, 24), Counts(40, 32))
    assert comparison.method.startswith("N−1 two-proportion test")
    assert comparison.p_value == pytest.approx(expected.p_value)
