"""The ``abtest`` command line (DESIGN §4.1): exit codes, output shape, nothing written on error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from abtest import pipeline
from abtest.accounts import authenticate, find_token
from web.cli import main
from abtest.models import Experiment
from tests.conftest import CHECKOUT_TOML

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@pytest.fixture
def run(cli_env):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_command_has_help():
    runner = CliRunner()
    for args in ([], ["serve"], ["sync"], ["assign"], ["token", "create"], ["token", "list"],
                 ["token", "revoke"], ["user", "create"], ["user", "list"], ["user", "passwd"],
                 ["user", "delete"], ["db", "upgrade"], ["db", "rollup"], ["list"],
                 ["start"], ["stop"], ["archive"]):
        result = runner.invoke(main, [*args, "--help"])
        assert result.exit_code == 0, args
        assert "Usage:" in result.output


def test_usage_error_exits_2(run):
    assert run("assign").exit_code == 2
    assert run("assign", "k", "u", "--attr", "novalue").exit_code == 2


def test_sync_examples_then_assign(run, session):
    result = run("sync", str(EXPERIMENTS))
    assert result.exit_code == 0, result.output
    assert "created   checkout-button (running)" in result.output
    assigned = run("assign", "checkout-button", "alice")
    assert assigned.exit_code == 0
    variant, reason = assigned.output.splitlines()
    assert variant in {"control", "green"}
    assert reason.startswith("reason: assigned: bucket ")
    again = run("sync", str(EXPERIMENTS))
    assert "unchanged checkout-button" in again.output


def test_assign_explains_targeting_and_override(run, session):
    run("sync", str(EXPERIMENTS / "search-ranking.toml"))
    draft = run("assign", "search-ranking", "alice")
    assert draft.output.splitlines()[0] == "none"
    assert "not_running" in draft.output
    forced = run("assign", "search-ranking", "alice", "--force", "recency")
    assert forced.output.splitlines() == ["recency", "reason: override: forced to 'recency' by an override"]


def test_assign_targeting_attributes(run, session, tmp_path):
    path = write(tmp_path, "t.toml", CHECKOUT_TOML + '\n')
    text = path.read_text().replace('status = "running"', 'status = "running"\ntargeting = { country = ["DE"] }')
    path.write_text(text)
    assert run("sync", str(path)).exit_code == 0
    assert run("assign", "checkout-button", "bob", "--attr", "country=FR").output.startswith("none\nreason: targeting")
    assert run("assign", "checkout-button", "bob", "--attr", "country=DE").output.split("\n")[0] != "none"


def test_assign_unknown_experiment_is_one_line_exit_1(run, session):
    result = run("assign", "nope-nope", "alice")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: experiment: no experiment with key 'nope-nope'"


def test_sync_invalid_file_writes_nothing(run, session, tmp_path):
    good = write(tmp_path, "a-good.toml", CHECKOUT_TOML)
    bad = write(tmp_path, "b-bad.toml", CHECKOUT_TOML.replace("checkout-button", "other-one")
                .replace("weight = 0.5\n[[variants]]", "weight = 0.7\n[[variants]]"))
    broken = write(tmp_path, "c-broken.toml", "key = \n")
    result = run("sync", str(good), str(bad), str(broken))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert f"{bad}: variants: weights sum to 1.2; they must sum to 1 (abtest never rescales them)" in lines
    assert any(line.startswith(f"{broken}: (file): invalid TOML") for line in lines)
    assert lines[-1] == "nothing written: 2 problem(s) in 3 file(s)"
    assert session.exec(select(Experiment)).all() == []


def test_sync_refuses_illegal_update_and_writes_nothing(run, session, tmp_path):
    assert run("sync", str(write(tmp_path, "c.toml", CHECKOUT_TOML))).exit_code == 0
    draft = write(tmp_path, "c.toml", CHECKOUT_TOML.replace('"running"', '"draft"'))
    extra = write(tmp_path, "d.toml", CHECKOUT_TOML.replace("checkout-button", "another-one"))
    result = run("sync", str(draft), str(extra))
    assert result.exit_code == 1
    assert f"{draft}: status: cannot move from running to draft" in result.stderr
    assert [d.key for d in [d for _r, d in pipeline.list_all(session)]] == ["checkout-button"]


def test_sync_same_key_in_two_files(run, session, tmp_path):
    one = write(tmp_path, "one.toml", CHECKOUT_TOML)
    two = write(tmp_path, "two.toml", CHECKOUT_TOML)
    result = run("sync", str(one), str(two))
    assert result.exit_code == 1
    assert f"{two}: key: 'checkout-button' is also defined in {one}" in result.stderr


def test_sync_empty_folder(run, session, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("sync", str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert "no .toml files" in result.stderr


def test_token_create_prints_token_last_and_stores_only_a_hash(run, session):
    secret = run("token", "create", "--name", "ci")
    public = run("token", "create", "--public", "--name", "site")
    sk, pk = secret.output.splitlines()[-1], public.output.splitlines()[-1]
    assert sk.startswith("sk_") and pk.startswith("pk_")
    assert find_token(session, sk).kind == "secret"
    assert find_token(session, pk).kind == "public"
    listing = run("token", "list").output
    assert sk not in listing and sk[:10] in listing
    assert run("token", "revoke", pk[:10]).exit_code == 0
    session.expire_all()
    assert find_token(session, pk) is None
    assert run("token", "revoke", "pk_nothere").exit_code == 1


def test_user_create(run, session):
    result = run("user", "create", "Ana@Example.com", "--password-stdin", input="correct horse\n")
    assert result.exit_code == 0, result.output
    assert authenticate(session, "ana@example.com", "correct horse") is not None
    assert authenticate(session, "ana@example.com", "wrong") is None
    again = run("user", "create", "ana@example.com", "--password-stdin", input="another one\n")
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    short = run("user", "create", "b@example.com", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "password" in short.stderr


def test_user_create_prompts_twice(run, session):
    result = run("user", "create", "c@example.com", input="long enough pw\nlong enough pw\n")
    assert result.exit_code == 0, result.output


def test_db_upgrade_is_idempotent(run, session):
    assert run("db", "upgrade").exit_code == 0
    assert "up to date" in run("db", "upgrade").output


def test_db_rollup_builds_then_finds_nothing_new(run, engine, session):
    from abtest.demo import seed_demo

    seed_demo(engine)
    first = run("db", "rollup")
    assert first.exit_code == 0
    assert re.search(r"^onboarding-copy: [1-9][0-9]* units rolled up", first.output, re.M)
    assert "checkout-study" not in first.output  # studies keep no rollups
    again = run("db", "rollup", "onboarding-copy")
    assert again.output == "onboarding-copy: up to date\n"
    assert run("db", "rollup", "no-such-test").exit_code == 1


def test_analyze_text_and_json(run, engine, session):
    from abtest.demo import seed_demo

    seed_demo(engine)
    text = run("analyze", "onboarding-copy")
    assert text.exit_code == 0
    lines = text.output.splitlines()
    assert lines[0] == "onboarding-copy  (stopped, fixed analysis, alpha 0.05)"
    assert any(line.startswith("short vs control") for line in lines)
    document = json.loads(run("analyze", "checkout-button", "--format", "json").output)
    assert document["experiment"] == "checkout-button"
    assert document["metrics"][0]["comparisons"][0]["method"].startswith("always-valid")


def test_analyze_a_study_and_a_breakdown(run, engine, session):
    from abtest import pipeline
    from abtest.demo import seed_demo

    seed_demo(engine)
    text = run("analyze", "checkout-study")
    assert text.exit_code == 0, text.output
    assert text.output.startswith("checkout-study  (study, running")
    assert "buy-shoes-success  [conversion, primary]" in text.output and "participants (between subjects)" in text.output
    study = json.loads(run("analyze", "checkout-study", "--format", "json").output)
    assert study["kind"] == "study" and study["participants"][0]["design"] == "current"
    by_device = json.loads(run("analyze", "checkout-button", "--by", "device", "--format", "json").output)
    expected = pipeline.analyze(engine, "checkout-button", by="device").to_dict()
    assert by_device == json.loads(json.dumps(expected))
    assert [s["segment"] for s in by_device["breakdown"]["segments"]] == ["desktop", "mobile", "tablet"]
    lines = run("analyze", "checkout-button", "--by", "device").output.splitlines()
    assert any(line.startswith("desktop: green vs control") for line in lines)
    assert run("analyze", "checkout-button", "--by", "bad name").exit_code == 1


@pytest.mark.parametrize("args", [(), ("--by", "device")])
def test_analyze_text_fits_100_columns(run, engine, session, args):
    from abtest.demo import seed_demo

    seed_demo(engine)
    for key in ("checkout-button", "onboarding-copy", "pricing-layout", "checkout-study"):
        result = run("analyze", key, *args)
        assert result.exit_code == 0, result.output
        too_long = [line for line in result.output.splitlines() if len(line) > 100]
        assert too_long == [], key
        # the information stays: every comparison's method (or why it has no numbers) is printed
        report = pipeline.analyze(engine, key, by=args[1] if args else None)
        flat = " ".join(result.output.split())
        for metric in report.metrics:
            assert " ".join(metric.method.split()) in flat
            for c in (*metric.comparisons, *(c for s in metric.segments for c in s.comparisons)):
                assert " ".join((c.reason or c.method).split()) in flat, (key, metric.name)
        assert " ".join(report.verdict.split()) in flat


def test_analyze_text_fits_100_columns_with_long_names():
    """Long variant keys, segment values and reasons: the tables stack, the notes wrap, nothing is cut."""
    from abtest.report import (Breakdown, Comparison, MetricResult, PowerResult, Report, SegmentResult, SegmentUnits,
                               SrmResult, VariantResult)
    from abtest.report_text import to_text

    long = "a-long-variant-key-" + "x" * 45  # 64 characters, the longest a variant key may be
    segment = "a-segment-value-" + "y" * 60
    variants = (VariantResult("control", 10, 0.1, (0.05, 0.2)),
                VariantResult(long, 12, 0.2, (0.1, 0.3), reason="an unusually long reason " * 5))
    comparisons = (Comparison(long, "control", 0.1, "difference", 1.0, (-0.05, 0.25), 0.2, 0.3, False,
                              "a method with a long name " * 6),)
    segments = (SegmentResult(segment, variants, comparisons),)
    metric = MetricResult("purchase", "conversion", True, "Wilson score interval", variants, comparisons,
                          unit="rate", segments=segments)
    units = {"control": 10, long: 12}
    report = Report("k", "running", "fixed", 0.05, units, SrmResult(0.5, False), (metric,), PowerResult(None, None),
                    "a verdict " * 30, breakdown=Breakdown("device", (SegmentUnits(segment, units, SrmResult(0.5, False)),)))
    text = to_text(report)
    assert max(len(line) for line in text.splitlines()) <= 100
    flat = " ".join(text.split())
    for piece in (f"{long} vs control", f"{segment}: {long} vs control", " ".join(comparisons[0].method.split()),
                  " ".join(variants[1].reason.split()), "+10.00 pts", "[-5.00 pts, +25.00 pts]", "a verdict " * 29):
        assert " ".join(piece.split()) in flat, piece


# ---- list, start, stop, archive -------------------------------------------------------------------------

def test_statuses_and_kinds_offered_are_the_lifecycle_and_the_registry(run):
    from abtest.cli import KIND_NAMES, STATUSES
    from abtest.kinds import KINDS
    from abtest.store.registry import TRANSITIONS

    assert set(STATUSES) == set(TRANSITIONS) and set(KIND_NAMES) == set(KINDS)


def test_list_shows_every_test_and_filters(run, engine, session, tmp_path):
    from abtest.demo import seed_demo

    assert run("list").output.startswith("no tests yet")
    seed_demo(engine, instance_path=tmp_path)
    result = run("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["key", "kind", "status", "started", "name"]
    rows = {line.split()[0]: line.split(maxsplit=4)[1:] for line in lines[1:]}
    assert list(rows) == ["checkout-button", "onboarding-copy", "pricing-layout", "checkout-study",
                          "menu-tree-test", "home-first-click", "checkout-csat"]  # oldest first
    assert rows["pricing-layout"] == ["experiment", "draft", "-", "Pricing table layout"]
    assert rows["checkout-study"][:2] == ["study", "running"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rows["checkout-button"][2])
    assert all(len(line) <= 100 for line in lines)
    running = run("list", "--status", "running").output.splitlines()[1:]
    assert [line.split()[0] for line in running] == ["checkout-button", "checkout-study", "menu-tree-test",
                                                     "home-first-click", "checkout-csat"]
    both = run("list", "--status", "draft", "--status", "stopped").output.splitlines()[1:]
    assert [line.split()[0] for line in both] == ["onboarding-copy", "pricing-layout"]
    studies = run("list", "--kind", "study").output.splitlines()[1:]
    assert [line.split()[0] for line in studies] == ["checkout-study", "menu-tree-test", "home-first-click"]
    assert run("list", "--kind", "study", "--status", "draft").output == "no tests match\n"
    assert run("list", "--status", "paused").exit_code == 2


def test_list_as_json(run, engine, session):
    from abtest.demo import seed_demo

    seed_demo(engine)
    document = json.loads(run("list", "--format", "json").output)
    assert [(t["key"], t["kind"], t["status"]) for t in document] == [
        ("checkout-button", "experiment", "running"), ("onboarding-copy", "experiment", "stopped"),
        ("pricing-layout", "experiment", "draft"), ("checkout-study", "study", "running"),
        ("menu-tree-test", "study", "running"), ("checkout-csat", "survey", "running")]
    by_key = {t["key"]: t for t in document}
    assert by_key["pricing-layout"]["started_at"] is None
    assert by_key["onboarding-copy"]["stopped_at"] is not None
    assert by_key["checkout-button"]["name"] == "Green checkout button"
    assert json.loads(run("list", "--kind", "study", "--status", "draft", "--format", "json").output) == []


def test_list_wraps_long_names_within_100_columns(run, session, tmp_path):
    long_name = "A checkout button " * 10  # 179 characters (names may have 200)
    path = write(tmp_path, "c.toml", CHECKOUT_TOML.replace('name = "Green checkout button"', f'name = "{long_name.strip()}"'))
    assert run("sync", str(path)).exit_code == 0, path.read_text()
    lines = run("list").output.splitlines()
    assert len(lines) > 2 and all(len(line) <= 100 for line in lines)
    assert " ".join(" ".join(lines[1:]).split()[4:]) == long_name.strip()


def test_start_stop_archive_follow_the_lifecycle(run, engine, session):
    from abtest.demo import seed_demo

    seed_demo(engine)
    def status(key: str) -> str:
        session.expire_all()
        return pipeline.load(session, key)[0].status

    started = run("start", "pricing-layout")
    assert (started.exit_code, started.output) == (0, "experiment pricing-layout: draft -> running\n")
    assert status("pricing-layout") == "running"
    again = run("start", "pricing-layout")
    assert again.exit_code == 0 and "already running" in again.output
    refused = run("archive", "checkout-button")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == ("error: status: cannot move from running to archived; "
                                      "from running it can go to stopped")
    assert status("checkout-button") == "running"  # nothing changed
    assert run("stop", "checkout-button").output == "experiment checkout-button: running -> stopped\n"
    assert run("archive", "checkout-button").exit_code == 0
    assert status("checkout-button") == "archived"
    final = run("start", "checkout-button")
    assert final.exit_code == 1 and "from archived it can go to nothing (final state)" in final.stderr
    unknown = run("stop", "nope-nope")
    assert (unknown.exit_code, unknown.stderr.strip()) == (1, "error: experiment: no experiment with key 'nope-nope'")


def test_start_stop_archive_a_study(run, engine, session):
    from abtest.demo import seed_demo

    seed_demo(engine)
    assert run("start", "checkout-study").output == "usability study checkout-study is already running; nothing changed\n"
    assert run("archive", "checkout-study").exit_code == 1
    stopped = run("stop", "checkout-study")
    assert stopped.output == "usability study checkout-study: running -> stopped\n"
    assert run("archive", "checkout-study").exit_code == 0
    listed = json.loads(run("list", "--kind", "study", "--format", "json").output)
    assert listed[0]["status"] == "archived" and listed[0]["archived_at"] is not None


def test_sync_names_an_unknown_kind(run, session, tmp_path):
    bad = write(tmp_path, "tree.toml", 'kind = "tree-test"\nkey = "ask-them"\n')
    result = run("sync", str(bad))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"{bad}: kind: 'tree-test' is not a kind of test; use one of experiment, study, survey"


def test_analyze_unknown_experiment(run, session):
    result = run("analyze", "nope-nope")
    assert (result.exit_code, result.stderr.strip()) == (1, "error: experiment: no experiment with key 'nope-nope'")


def test_power_for_proportions_and_means(run):
    # R: power.prop.test(p1 = 0.10, p2 = 0.12, power = 0.8) -> n = 3840.04, so 3841 per group
    result = run("power", "--baseline", "0.10", "--mde", "0.02")
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "3841 units per variant (7,682 in all)"
    # R: power.t.test(delta = 1, sd = 4, power = 0.8) -> n = 252.1, so 253
    assert run("power", "--sd", "4", "--mde", "1").output.startswith("253 units per variant")


@pytest.mark.parametrize("args, field", [
    (["--baseline", "1.2", "--mde", "0.02"], "baseline"),
    (["--baseline", "0.1", "--mde", "-0.02"], "mde"),
    (["--baseline", "0.1", "--mde", "0.02", "--power", "1.5"], "power"),
])
def test_power_bad_arguments_name_the_argument(run, args, field):
    result = run("power", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {field}: ")


def test_power_needs_baseline_or_sd(run):
    assert run("power", "--mde", "0.02").exit_code == 2


def test_user_list_passwd_delete(run, session):
    from abtest.accounts import create_user

    assert "no designer logins yet" in run("user", "list").output
    create_user(session, "ana@example.com", "correct horse")
    create_user(session, "bo@example.com", "battery staple")
    session.commit()
    listing = run("user", "list")
    assert listing.exit_code == 0
    assert [line.split()[0] for line in listing.output.splitlines()] == ["ana@example.com", "bo@example.com"]
    assert "correct horse" not in listing.output and "$argon2" not in listing.output

    changed = run("user", "passwd", "Ana@Example.com", "--password-stdin", input="a new passphrase\n")
    assert changed.exit_code == 0, changed.output
    session.expire_all()
    assert authenticate(session, "ana@example.com", "correct horse") is None
    assert authenticate(session, "ana@example.com", "a new passphrase") is not None


def test_user_passwd_prompts_twice_hidden_and_ends_sessions(run, session):
    from abtest.accounts import create_user, get_user

    before = create_user(session, "ana@example.com", "correct horse").session_version
    session.commit()
    mismatch = run("user", "passwd", "ana@example.com", input="first try pw\nsecond try pw\n"
                                                          "long enough pw\nlong enough pw\n")
    assert mismatch.exit_code == 0, mismatch.output
    assert "do not match" in mismatch.output and "long enough pw" not in mismatch.output  # never echoed
    session.expire_all()
    assert authenticate(session, "ana@example.com", "long enough pw") is not None
    assert get_user(session, "ana@example.com").session_version == before + 1
    short = run("user", "passwd", "ana@example.com", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "password" in short.stderr
    unknown = run("user", "passwd", "nobody@example.com", input="")  # fails before prompting
    assert unknown.exit_code == 1 and "no designer login nobody@example.com" in unknown.stderr
    assert "Password" not in unknown.output


def test_user_delete_asks_unless_yes(run, session):
    from abtest.accounts import create_user, list_users

    create_user(session, "ana@example.com", "correct horse")
    create_user(session, "bo@example.com", "battery staple")
    session.commit()
    kept = run("user", "delete", "ana@example.com", input="n\n")
    assert kept.exit_code == 1 and "Aborted" in kept.output
    assert len(list_users(session)) == 2
    deleted = run("user", "delete", "ana@example.com", input="y\n")
    assert deleted.exit_code == 0 and "deleted designer login ana@example.com" in deleted.output
    assert run("user", "delete", "bo@example.com", "--yes").exit_code == 0
    session.expire_all()
    assert list_users(session) == []
    again = run("user", "delete", "bo@example.com", "--yes")
    assert again.exit_code == 1 and again.stderr.strip() == "error: email: no designer login bo@example.com"
