"""Study definitions: each rule has a failing example naming its field; storage and sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from abtest.checks import InvalidDefinition
from abtest.kinds import load_toml, parse_definition
from abtest.studies.definition import StudyDef, parse_study
from abtest.studies.runner import design_order, get_study, latin_square, steps
from tests.study_helpers import store_study, study_raw

EXAMPLE = Path(__file__).resolve().parents[1] / "experiments" / "checkout-study.toml"


def test_example_file_parses_through_the_shared_loader():
    study = load_toml(EXAMPLE)
    assert isinstance(study, StudyDef) and study.kind == "study"
    assert study.variant_keys == ("current", "one-page") and study.weights == (0.5, 0.5)
    assert [t.key for t in study.tasks] == ["buy-shoes", "change-address"]
    assert study.tasks[0].time_limit == 300 and study.tasks[0].success == "self-report"
    assert study.questionnaires == ("SUS", "UMUX-Lite", "NPS")


def test_parse_definition_dispatches_studies():
    assert isinstance(parse_definition(study_raw()), StudyDef)


def test_equal_weights_by_default_and_url_success():
    raw = study_raw(designs=[{"key": "a", "url": "/a"}, {"key": "b", "url": "/b"}, {"key": "c", "url": "/c"}],
                    tasks=[{"key": "t", "prompt": "Do it", "success_url": "*/done*"}])
    study = parse_study(raw)
    assert study.weights == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert study.tasks[0].success_url == "*/done*" and study.tasks[0].success == "url"


@pytest.mark.parametrize("changes, field, fragment", [
    ({"key": "Bad Key"}, "key", "lowercase letters, digits and dashes"),
    ({"key": "new"}, "key", "reserved"),
    ({"status": "live"}, "status", "not one of"),
    ({"within_subjects": "yes"}, "within_subjects", "true or false"),
    ({"designs": []}, "designs", "1 to"),
    ({"designs": [{"key": "a", "url": "/a", "weight": 0.5}, {"key": "a", "url": "/b", "weight": 0.5}]},
     "designs[1].key", "duplicate"),
    ({"designs": [{"key": "a", "url": "ftp://x", "weight": 1.0}]}, "designs[0].url", "http"),
    ({"designs": [{"key": "a", "weight": 1.0}]}, "designs[0].url", "required"),
    ({"designs": [{"key": "a", "url": "/a", "weight": 0.6}, {"key": "b", "url": "/b", "weight": 0.6}]},
     "designs", "sum to 1"),
    ({"designs": [{"key": "a", "url": "/a", "weight": 0.5}, {"key": "b", "url": "/b"}]}, "designs", "every design"),
    ({"designs": [{"key": "a", "url": "/a", "colour": "red"}]}, "designs[0].colour", "unknown field"),
    ({"tasks": []}, "tasks", "1 to"),
    ({"tasks": [{"key": "t", "prompt": "  "}]}, "tasks[0].prompt", "empty"),
    ({"tasks": [{"key": "t"}]}, "tasks[0].prompt", "required"),
    ({"tasks": [{"key": "t", "prompt": "p"}, {"key": "t", "prompt": "q"}]}, "tasks[1].key", "duplicate"),
    ({"tasks": [{"key": "t", "prompt": "p"}, {"key": "u", "prompt": "q", "time_limit": -5}]},
     "tasks[1].time_limit", "whole seconds"),
    ({"tasks": [{"key": "t", "prompt": "p", "time_limit": 2.5}]}, "tasks[0].time_limit", "whole seconds"),
    ({"tasks": [{"key": "t", "prompt": "p", "success": "url-reached"}]}, "tasks[0].success", "self-report"),
    ({"tasks": [{"key": "t", "prompt": "p", "success": "self-report", "success_url": "/x"}]},
     "tasks[0].success_url", "not both"),
    ({"tasks": [{"key": "t", "prompt": "p", "start_url": "javascript:alert(1)"}]}, "tasks[0].start_url", "http"),
    ({"questionnaires": ["SUS", "CSAT"]}, "questionnaires[1]", "not one of"),
    ({"questionnaires": ["SUS", "SUS"]}, "questionnaires[1]", "twice"),
    ({"questionnaires": "SUS"}, "questionnaires", "list"),
    ({"comment": 1}, "comment", "true or false"),
    ({"completion_code": ""}, "completion_code", "empty"),
    ({"seed": "x"}, "seed", "unknown field"),
    ({"variants": [{"key": "a", "weight": 1.0}]}, "kind", "[[designs]]"),
])
def test_each_rule_names_its_field(changes, field, fragment):
    with pytest.raises(InvalidDefinition) as caught:
        parse_study(study_raw(**changes))
    problems = {e.field: e.message for e in caught.value.errors}
    assert field in problems, problems
    assert fragment in problems[field]


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidDefinition) as caught:
        parse_study(study_raw(status="live", tasks=[{"key": "t", "prompt": "p", "time_limit": 0}]))
    assert {e.field for e in caught.value.errors} == {"status", "tasks[0].time_limit"}


def test_latin_square_is_balanced():
    for n in (2, 3, 4, 5):
        rows = latin_square(n)
        assert len(rows) == (n if n % 2 == 0 else 2 * n)
        for position in range(n):  # every design equally often in every position
            column = [row[position] for row in rows]
            assert sorted(column) == sorted(list(range(n)) * (len(rows) // n))
    assert latin_square(2) == [[0, 1], [1, 0]]


def test_design_order_uses_the_experiment_hash_and_the_latin_square():
    from abtest.assignment import bucket, choose_variant

    between = parse_study(study_raw())
    for pid in ("alice", "bob", "用户", "p-17"):
        expected = between.variant_keys[choose_variant(bucket("checkout-study", pid), [0.5, 0.5])]
        assert design_order(between, pid, 0) == [expected]
    within = parse_study(study_raw(within_subjects=True))
    assert design_order(within, "x", 0) == ["current", "new"]
    assert design_order(within, "x", 1) == ["new", "current"]
    path = steps(within, ["new", "current"])
    assert [(s.kind, s.design, s.item) for s in path][:4] == [
        ("task", "new", "buy"), ("task", "new", "address"), ("questionnaire", "new", "SUS"), ("comment", "new", "comment")]
    assert len(path) == 8


def test_stored_study_round_trips(session):
    definition = store_study(session)
    row, loaded = get_study(session, "checkout-study")
    assert row.kind == "study"
    assert loaded == definition


def test_sync_accepts_study_files_and_freezes_launched_tasks(cli_env, session, tmp_path):
    from web.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["sync", str(EXAMPLE)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "created   checkout-study (running)" in result.output
    _row, study = get_study(session, "checkout-study")
    assert [t.key for t in study.tasks] == ["buy-shoes", "change-address"]
    assert study.completion_code == "CHK-7731"

    changed = tmp_path / "checkout-study.toml"
    changed.write_text(EXAMPLE.read_text().replace('key = "change-address"', 'key = "track-order"'))
    refused = runner.invoke(main, ["sync", str(changed)])
    assert refused.exit_code == 1
    assert "tasks of a launched study cannot" in refused.output
    session.expire_all()
    assert [t.key for t in get_study(session, "checkout-study")[1].tasks] == ["buy-shoes", "change-address"]

    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace("time_limit = 300", "time_limit = -1"))
    invalid = runner.invoke(main, ["sync", str(bad)])
    assert invalid.exit_code == 1
    assert f"{bad}: tasks[0].time_limit: whole seconds" in invalid.output


def test_resyncing_an_unchanged_study_says_unchanged(cli_env, session, tmp_path):
    from web.cli import main

    runner = CliRunner()
    assert runner.invoke(main, ["sync", str(EXAMPLE)], catch_exceptions=False).exit_code == 0
    again = runner.invoke(main, ["sync", str(EXAMPLE)], catch_exceptions=False)
    assert again.exit_code == 0 and "unchanged checkout-study (running)" in again.output
    reworded = tmp_path / "checkout-study.toml"
    reworded.write_text(EXAMPLE.read_text().replace("in size 42", "in size 43"))
    changed = runner.invoke(main, ["sync", str(reworded)], catch_exceptions=False)
    assert changed.exit_code == 0 and "updated   checkout-study (running)" in changed.output
    assert "size 43" in get_study(session, "checkout-study")[1].tasks[0].prompt


def test_to_dict_round_trips_through_the_parser():
    study = load_toml(EXAMPLE)
    assert isinstance(study, StudyDef)
    assert parse_study(study.to_dict()) == study
    url_task = parse_study(study_raw(tasks=[{"key": "buy", "prompt": "Buy", "success_url": "*/done"}]))
    assert url_task.to_dict()["tasks"] == [{"key": "buy", "prompt": "Buy", "success_url": "*/done"}]
