"""Study results against the stats functions on known answers, on SQLite, PostgreSQL and with the
events in ClickHouse (chdb): the same numbers from every store."""

from __future__ import annotations

import math

import pytest

from abtest.models import StudyParticipant, utcnow
from abtest.pipeline import analyze
from abtest.questionnaires import SUS, UMUX_LITE
from abtest.stats import durations, means, paired, proportions, questionnaires
from abtest.stats.summary import Counts, Moments
from abtest.store.events import write_events
from abtest.studies.runner import get_study, study_event
from tests.conftest import BACKENDS_WITH_CHDB, backend_engine
from tests.study_helpers import store_study


@pytest.fixture(params=BACKENDS_WITH_CHDB)
def engine(request):  # type: ignore[no-untyped-def]
    """Every test here also runs with the events in ClickHouse (chdb): the same numbers."""
    yield from backend_engine(request)

SUS_A = [[4, 2, 5, 1, 4, 2, 4, 2, 5, 1], [3, 3, 3, 3, 3, 3, 3, 3, 3, 3], [5, 1, 5, 1, 5, 1, 5, 1, 5, 1]]
SUS_B = [[2, 4, 2, 4, 3, 3, 2, 4, 2, 4], [3, 2, 4, 2, 3, 2, 4, 2, 3, 2]]
NPS_A = [10, 9, 8, 6, 3]  # 2 promoters, 1 passive, 2 detractors
NPS_B = [6, 10, 10, 9]  # 3 promoters, 1 detractor; within subjects a0..a3 change by -2, 0, +1, +2 codes


def _seed(session, engine, within=False):  # type: ignore[no-untyped-def]
    store_study(session, within_subjects=within, questionnaires=["SUS", "UMUX-Lite", "NPS"])
    row, _study = get_study(session, "checkout-study")
    now = utcnow()
    events, n = [], 0

    def add(type_, design, unit, **fields):  # type: ignore[no-untyped-def]
        nonlocal n
        n += 1
        events.append(study_event(row.id, f"ev-{n:06d}", type_, design, unit, now, **fields))

    # design "current": 10 participants, 8 succeed on "buy"; "new": 10 participants, 4 succeed.
    times_a = [30, 45, 60, 52, 38, 41, 70, 33]
    times_b = [80, 95, 60, 120]
    for i in range(10):
        add("task", "current", f"a{i}", task="buy", success=i < 8, duration_ms=1000.0 * (times_a[i] if i < 8 else 200))
        add("task", "new", f"b{i}" if not within else f"a{i}", task="buy", success=i < 4,
            duration_ms=1000.0 * (times_b[i] if i < 4 else 300))
        add("response", "current", f"a{i}", questionnaire="SEQ", task="buy", answers=[7 - i % 3])
    for i, answers in enumerate(SUS_A):
        add("response", "current", f"a{i}", questionnaire="SUS", answers=answers)
    for i, answers in enumerate(SUS_B):
        add("response", "new", f"b{i}" if not within else f"a{i}", questionnaire="SUS", answers=answers)
    for i, answers in enumerate([[6, 7], [5, 5], [7, 7]]):
        add("response", "current", f"a{i}", questionnaire="UMUX-Lite", answers=answers)
    for i, score in enumerate(NPS_A):
        add("response", "current", f"a{i}", questionnaire="NPS", answers=[score])
    for i, score in enumerate(NPS_B):
        add("response", "new", f"b{i}" if not within else f"a{i}", questionnaire="NPS", answers=[score])
    add("response", "new", "b0", questionnaire="comment", answers=["Too slow"])
    with engine.begin() as conn:
        write_events(conn, events)
    session.add_all(StudyParticipant(experiment_id=row.id, pid=f"a{i}", number=i + 1, designs=["current"],
                                     finished_at=now if i else None, abandoned_at=None if i else now)
                    for i in range(10))
    session.commit()
    return times_a, times_b


def _metric(report, name):  # type: ignore[no-untyped-def]
    return next(m for m in report.metrics if m.name == name)


def test_between_subjects_numbers_match_the_stats_functions(session, engine):
    times_a, times_b = _seed(session, engine)
    results = analyze(engine, "checkout-study")
    success = _metric(results, "buy-success")
    assert success.type == "conversion" and success.primary
    current, new = success.variants
    expected = proportions.adjusted_wald_interval(Counts(10, 8))
    assert (current.n, current.value) == (10, 0.8)
    assert current.ci == pytest.approx(expected.ci.as_tuple())
    assert new.ci == pytest.approx(proportions.adjusted_wald_interval(Counts(10, 4)).ci.as_tuple())
    [comparison] = success.comparisons
    reference = proportions.compare_proportions(Counts(10, 8), Counts(10, 4))
    assert comparison.p_value == pytest.approx(reference.p_value) and comparison.method == reference.method
    assert comparison.effect == pytest.approx(-0.4)

    time = _metric(results, "buy-time")
    assert time.type == "duration"
    geo = durations.geometric_mean(durations.log_moments(times_a))
    assert time.variants[0].value == pytest.approx(geo.value) and time.variants[0].n == 8
    assert time.variants[0].value == pytest.approx(math.exp(sum(map(math.log, times_a)) / 8))
    ratio = durations.compare_durations(durations.log_moments(times_a), durations.log_moments(times_b))
    assert time.comparisons[0].effect == pytest.approx(ratio.effect)
    assert time.comparisons[0].p_value == pytest.approx(ratio.p_value)

    seq = _metric(results, "buy-SEQ")
    answers = [7 - i % 3 for i in range(10)]
    assert seq.variants[0].value == pytest.approx(sum(answers) / 10)
    assert seq.variants[0].ci == pytest.approx(means.mean_interval(Moments.from_values(answers)).ci.as_tuple())

    sus = _metric(results, "SUS")
    scores_a = [SUS.score(a) for a in SUS_A]
    scores_b = [SUS.score(a) for a in SUS_B]
    assert sus.variants[0].value == pytest.approx(sum(scores_a) / 3)
    welch = means.welch_test(Moments.from_values(scores_a), Moments.from_values(scores_b))
    assert sus.comparisons[0].p_value == pytest.approx(welch.p_value)
    grade = results.details.scores["SUS"]["current"]
    assert grade["grade"] == questionnaires.sus_grade(sum(scores_a) / 3)
    assert grade["percentile"] == pytest.approx(questionnaires.sus_percentile(sum(scores_a) / 3))

    umux = _metric(results, "UMUX-Lite")
    raws = [UMUX_LITE.score(a) for a in ([6, 7], [5, 5], [7, 7])]
    assert umux.variants[0].value == pytest.approx(sum(raws) / 3)
    assert results.details.scores["UMUX-Lite"]["current"]["sus_adjusted"] == pytest.approx(0.65 * sum(raws) / 3 + 22.9)

    nps = _metric(results, "NPS")
    reference_nps = questionnaires.nps(2, 1, 2)
    assert nps.variants[0].value == pytest.approx(reference_nps.value)
    assert nps.variants[0].ci == pytest.approx(reference_nps.ci.as_tuple())
    [nps_comparison] = nps.comparisons
    expected_nps = questionnaires.nps_difference(questionnaires.NpsCounts(2, 1, 2), questionnaires.NpsCounts(3, 0, 1))
    assert nps_comparison.effect == pytest.approx(expected_nps.effect) == pytest.approx(50.0 - 0.0)
    assert nps_comparison.ci == pytest.approx(expected_nps.ci.as_tuple())
    assert nps_comparison.p_value == pytest.approx(expected_nps.p_value)
    assert "independent" in nps_comparison.method

    assert results.details.comments == {"current": [], "new": ["Too slow"]}
    current_p = results.details.participants["current"]
    assert (current_p.started, current_p.finished, current_p.abandoned) == (10, 9, 1)
    document = results.to_dict()
    assert document["abandoned"] == 1 and document["kind"] == "study"
    assert {m["name"] for m in document["metrics"]} >= {"buy-success", "buy-time", "SEQ", "SUS", "UMUX-Lite", "NPS"}


def test_within_subjects_uses_paired_tests(session, engine):
    times_a, times_b = _seed(session, engine, within=True)
    results = analyze(engine, "checkout-study")
    [comparison] = _metric(results, "buy-success").comparisons
    # pairs: a0..a3 succeed on both; a4..a7 only on current; a8, a9 on neither.
    reference = paired.mcnemar(10, 4, 0)
    assert comparison.p_value == pytest.approx(reference.p_value)
    assert "McNemar" in comparison.method
    [time] = _metric(results, "buy-time").comparisons
    diffs = [math.log(b) - math.log(a) for a, b in zip(times_a[:4], times_b, strict=True)]
    expected = durations.paired_durations(Moments.from_values(diffs))
    assert time.effect == pytest.approx(expected.effect) and time.p_value == pytest.approx(expected.p_value)
    [sus] = _metric(results, "SUS").comparisons
    sus_diffs = [SUS.score(b) - SUS.score(a) for a, b in zip(SUS_A, SUS_B)]
    assert sus.effect == pytest.approx(sum(sus_diffs) / 2) and "paired t" in sus.method
    [nps] = _metric(results, "NPS").comparisons
    expected_nps = questionnaires.nps_paired_difference(Moments.from_values([-2, 0, 1, 2]))
    assert nps.effect == pytest.approx(25.0) == pytest.approx(expected_nps.effect)
    assert nps.ci == pytest.approx(expected_nps.ci.as_tuple()) and "paired" in nps.method


def test_results_page_json_and_csv(logged_in, session, engine):
    _seed(session, engine)
    assert logged_in.get("/experiments/checkout-study/study-results").headers["Location"].endswith(
        "/experiments/checkout-study/results")  # the old address of study results
    page = logged_in.get("/experiments/checkout-study/results")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for text in ("buy-success", "buy-time", "SUS", "UMUX-Lite", "NPS", "Too slow", "Abandoned", "SUS grade",
                 "NPS: each design against current", "difference of two independent NPS"):
        assert text in html
    document = logged_in.get("/experiments/checkout-study/results.json").get_json()
    [nps] = [m for m in document["metrics"] if m["name"] == "NPS"]
    assert nps["comparisons"][0]["effect"] == pytest.approx(50.0)
    assert nps["comparisons"][0]["method"].startswith("difference of two independent NPS")
    assert document["experiment"] == "checkout-study" and document["units"] == {"current": 10, "new": 0}


def test_responses_csv_has_every_timing_and_answer(logged_in, session, engine):
    _seed(session, engine)
    csv_text = logged_in.get("/experiments/checkout-study/responses.csv").get_data(as_text=True)
    lines = csv_text.strip().splitlines()
    assert lines[0] == "participant,design,type,task,success,duration_ms,questionnaire,answers,ts"
    assert len(lines) == 1 + 20 + 10 + 5 + 3 + 5 + 4 + 1
    assert any(line.startswith("a0,current,response,,,,SUS,4;2;5;1;4;2;4;2;5;1,") for line in lines)


def test_study_pages_need_login_and_a_study(client, logged_in, seeded_experiment):
    assert logged_in.get("/experiments/checkout-button/responses.csv").status_code == 404
    assert logged_in.get("/experiments/checkout-button/planner").status_code == 404
    assert logged_in.get("/experiments/nope-nope/results.json").status_code == 404


def test_results_pages_redirect_to_login(client):
    for url in ("/experiments/x1/results", "/experiments/x1/responses.csv", "/experiments/x1/planner"):
        assert client.get(url).status_code == 302


def test_demo_study_is_full(engine):
    import random

    from abtest.studies.demo import seed_demo_study

    line = seed_demo_study(engine, random.Random(7))
    assert "checkout-study" in line
    results = analyze(engine, "checkout-study")
    assert sum(results.units.values()) == 24
    assert results.details.abandoned >= 1
    assert all(v.value is not None for v in _metric(results, "buy-shoes-success").variants)
    assert all(v.value is not None for v in _metric(results, "SUS").variants)
    assert any(results.details.comments.values())


def _run_participants(engine, plan):  # type: ignore[no-untyped-def]
    """Each (pid, device, gives_up_on_buy) joins as the runner would and does the first task."""
    from abtest.studies import runner

    for pid, device, gives_up in plan:
        participant = runner.join(engine, "checkout-study", pid, attributes={"device": device})
        runner.start_task(engine, "checkout-study", pid, participant.step)
        runner.end_task(engine, "checkout-study", pid, participant.step, gave_up=gives_up)


def test_a_study_breaks_down_by_the_device_participants_joined_on(session, engine):
    store_study(session)
    plan = [(f"p{i:02d}", "mobile" if i % 3 == 0 else "desktop", i % 4 == 0) for i in range(24)]
    _run_participants(engine, plan)
    report = analyze(engine, "checkout-study", by="device")
    _row, study = get_study(session, "checkout-study")
    from abtest.studies.runner import design_order

    design = {pid: design_order(study, pid, 0)[0] for pid, _d, _g in plan}
    expected = {}
    for pid, device, gives_up in plan:
        tally = expected.setdefault(device, {}).setdefault(design[pid], [0, 0])
        tally[0] += 1
        tally[1] += not gives_up
    assert {s.segment: s.units for s in report.breakdown.segments} == {
        device: {d: per.get(d, [0, 0])[0] for d in study.variant_keys} for device, per in expected.items()}
    success = _metric(report, "buy-success")
    for segment in success.segments:
        assert [(v.n, round(v.value * v.n) if v.value is not None else None) for v in segment.variants] == [
            (expected[segment.segment].get(d, [0, 0])[0], expected[segment.segment].get(d, [0, 0])[1]
             if expected[segment.segment].get(d, [0, 0])[0] else None) for d in study.variant_keys]
    assert report.to_dict()["breakdown"]["segments"][0]["srm"]["method"] == "not applicable"


def test_the_study_page_shows_the_document_the_api_gives(logged_in, session, engine, tokens=None):
    from abtest.accounts import create_token
    from web.charts import format_p

    _seed(session, engine)
    secret = create_token(session, "secret", "t").secret
    session.commit()
    document = logged_in.get("/api/v1/experiments/checkout-study/results",
                             headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert document == logged_in.get("/experiments/checkout-study/results.json").get_json()
    page = logged_in.get("/experiments/checkout-study/results").get_data(as_text=True)
    import html as html_lib

    text = html_lib.unescape(page)
    assert document["verdict"] in text
    assert document["verdict"].startswith("Significant with 10 participants: new makes buy: time 94% slower")
    for metric in document["metrics"]:
        for c in metric["comparisons"]:
            if c["p_value"] is not None:
                assert format_p(c["p_value"]) in text, (metric["name"], c["p_value"])
    assert "Chance to beat" not in text  # no A/B-only columns on a study's page
    for p in document["participants"]:
        assert f'<td class="num">{p["started"]}</td><td class="num">{p["finished"]}</td>' in page


def test_lopsided_study_results_stay_on_their_scales(session, engine):
    """Issue 14: 8 of 8 against 0 of 8 used to read "95% CI −106.7 to −54.6 points", and a SEQ mean
    of 4.0 from two answers a CI of −21.4 to 29.4 on a 1–7 scale."""
    store_study(session, questionnaires=["NPS"])
    row, _study = get_study(session, "checkout-study")
    now, events = utcnow(), []
    for i in range(8):
        events.append(study_event(row.id, f"a-{i}", "task", "current", f"a{i}", now, task="buy", success=True,
                                  duration_ms=30_000.0 + i))
        events.append(study_event(row.id, f"b-{i}", "task", "new", f"b{i}", now, task="buy", success=False,
                                  duration_ms=60_000.0))
    for i, answer in enumerate([1, 7]):
        events.append(study_event(row.id, f"s-{i}", "response", "new", f"b{i}", now, questionnaire="SEQ", task="buy",
                                  answers=[answer]))
    for i, answer in enumerate([10, 10, 10, 0]):
        events.append(study_event(row.id, f"n-{i}", "response", "current", f"a{i}", now, questionnaire="NPS",
                                  answers=[answer]))
    with engine.begin() as conn:
        write_events(conn, events)
    document = analyze(engine, "checkout-study").to_dict()
    metrics = {m["name"]: m for m in document["metrics"]}
    (success,) = metrics["buy-success"]["comparisons"]
    assert success["effect"] == -1.0 and success["ci"][0] == -1.0 and success["ci"][1] < 0
    assert success["significant"] is True  # Fisher exact: p = 2 / C(16, 8) = 1.55e-4
    assert success["p_value"] == pytest.approx(2 / math.comb(16, 8), rel=1e-9)
    seq_new = {v["variant"]: v for v in metrics["buy-SEQ"]["variants"]}["new"]
    assert seq_new["value"] == 4.0 and seq_new["ci"] == [1.0, 7.0]
    nps_current = {v["variant"]: v for v in metrics["NPS"]["variants"]}["current"]
    assert -100.0 <= nps_current["ci"][0] and nps_current["ci"][1] <= 100.0
    for metric in document["metrics"]:
        for variant in metric["variants"]:
            if metric["unit"] == "rate" and variant["ci"]:
                assert 0.0 <= variant["ci"][0] <= variant["ci"][1] <= 1.0


def test_three_designs_are_holm_adjusted_like_an_experiment(session, engine):
    """Issue 14: studies with more than two designs got no multiple-comparison adjustment."""
    from statsmodels.stats.multitest import multipletests

    designs = [{"key": k, "url": f"https://example.com/{k}", "weight": w}
               for k, w in (("current", 0.34), ("new", 0.33), ("bold", 0.33))]
    store_study(session, designs=designs, questionnaires=[])
    row, _study = get_study(session, "checkout-study")
    now, events = utcnow(), []
    successes = {"current": 3, "new": 9, "bold": 7}
    for design, wins in successes.items():
        for i in range(12):
            events.append(study_event(row.id, f"{design}-{i}", "task", design, f"{design}{i}", now, task="buy",
                                      success=i < wins, duration_ms=40_000.0 + 1000 * i))
    with engine.begin() as conn:
        write_events(conn, events)
    metric = _metric(analyze(engine, "checkout-study"), "buy-success")
    assert metric.adjustment == "Holm"
    raw = [c.p_value for c in metric.comparisons]
    references = [proportions.compare_proportions(Counts(12, 3), Counts(12, successes[d])) for d in ("new", "bold")]
    assert raw == pytest.approx([r.p_value for r in references], rel=1e-12)
    holm = multipletests(raw, method="holm")[1]
    assert [c.p_adjusted for c in metric.comparisons] == pytest.approx(list(holm), rel=1e-12)
    for c in metric.comparisons:
        assert c.ci_adjustment == "Holm" and c.significant == (c.p_adjusted < 0.05)


# ---- the same study, events in SQLite and in ClickHouse: the same document ----------------------------

CITIES = [f"city-{i:02d}" for i in range(25)]  # more than MAX_SEGMENTS values: the rest pooled as (other)


def _simulate(engine, seed: int, within: bool, now):  # type: ignore[no-untyped-def]
    """A three-design study with everything a report reads, the same for the same seed: participants
    finished, abandoned, gone quiet and in progress (some never exposed, some events from units
    with no participant row), repeated attempts, every questionnaire, comments; first exposures
    carrying a device and a city that later exposures contradict; every event at its own time."""
    import random
    from datetime import timedelta

    from sqlmodel import Session

    from abtest.store.events import event_row, exposure_id

    rng = random.Random(seed)
    designs = [{"key": k, "url": f"https://example.com/{k}", "weight": w}
               for k, w in (("current", 0.34), ("new", 0.33), ("bold", 0.33))]
    with Session(engine, expire_on_commit=False) as session:
        store_study(session, within_subjects=within, designs=designs, questionnaires=["SUS", "UMUX-Lite", "NPS"])
        row, study = get_study(session, "checkout-study")
        events, participants = [], []
        clock = iter(now - timedelta(minutes=50) + timedelta(milliseconds=37 * i) for i in range(100_000))

        def add(type_, design, unit, **fields):  # type: ignore[no-untyped-def]
            events.append(study_event(row.id, f"sim-{len(events):06d}", type_, design, unit, next(clock), **fields))

        for i in range(70):
            pid = f"p{i:02d}"
            mine = study.variant_keys if within else [rng.choice(study.variant_keys)]
            exposed = i % 13 != 5  # a few hand-made participants were never exposed
            attributes = {"city": rng.choice(CITIES)}
            if i % 7:
                attributes["device"] = rng.choice(["desktop", "mobile", "tablet"])
            for j, design in enumerate(mine if exposed else []):
                later = {"device": "watch", "city": "nowhere"} if j else attributes  # the first exposure counts
                events.append(event_row(row.id, exposure_id(study.key, design, pid, False), "exposure", pid,
                                        next(clock), variant=design, attributes=later))
            for design in mine:
                for task in ("buy", "address"):
                    for _attempt in range(rng.choice([1, 1, 1, 2])):
                        add("task", design, pid, task=task, success=rng.random() < 0.7,
                            duration_ms=round(rng.lognormvariate(10.5, 0.6), 1))
                    if rng.random() < 0.9:
                        add("response", design, pid, questionnaire="SEQ", task=task, answers=[rng.randint(1, 7)])
                if rng.random() < 0.85:
                    add("response", design, pid, questionnaire="SUS", answers=[rng.randint(1, 5) for _ in range(10)])
                if rng.random() < 0.85:
                    add("response", design, pid, questionnaire="UMUX-Lite", answers=[rng.randint(1, 7) for _ in range(2)])
                if rng.random() < 0.85:
                    add("response", design, pid, questionnaire="NPS", answers=[rng.randint(0, 10)])
                if rng.random() < 0.3:
                    add("response", design, pid, questionnaire="comment", answers=[f"comment {i} on {design}"])
            state = i % 4
            participants.append(StudyParticipant(
                experiment_id=row.id, pid=pid, number=i + 1, designs=mine, started_at=now - timedelta(hours=5),
                updated_at=now - timedelta(hours=3 if state == 2 else 0, minutes=5),
                finished_at=now - timedelta(minutes=1) if state == 0 else None,
                abandoned_at=now - timedelta(minutes=2) if state == 1 else None))
        for k in range(4):  # a unit with answers but no participant row and no exposure
            add("task", "current", "stray", task="buy", success=k % 2 == 0, duration_ms=20_000.0 + k)
            add("response", "new", "stray", questionnaire="SUS", answers=[3] * 10)
        write_events(session.connection(), events)
        session.add_all(participants)
        session.commit()


@pytest.mark.parametrize("within", [False, True])
def test_a_study_on_clickhouse_equals_the_sqlite_one_whole_and_by_segment(sqlite_engine, chdb_engine, within):
    from datetime import timedelta

    from sqlmodel import Session

    from abtest import pipeline
    from tests.conftest import _clear, clear_events_store
    from tests.test_clickhouse import same

    now = utcnow().replace(microsecond=0) - timedelta(hours=1)
    both = (sqlite_engine, chdb_engine)
    try:
        for engine in both:
            _clear(engine)
            clear_events_store(engine)
            _simulate(engine, 3, within, now)
        for by in (None, "device", "city", "nobody-sent-this"):
            on_sqlite, on_chdb = (analyze(e, "checkout-study", by=by, now=now).to_dict() for e in both)
            assert on_sqlite["metrics"][0]["variants"][0]["n"] > 20  # not two empty reports
            same(on_chdb, on_sqlite, f"by {by}")
        device = analyze(chdb_engine, "checkout-study", by="device", now=now).to_dict()["breakdown"]["segments"]
        assert {s["segment"] for s in device} == {"desktop", "mobile", "tablet", "(not set)"}
        city = analyze(chdb_engine, "checkout-study", by="city", now=now).to_dict()["breakdown"]["segments"]
        assert len(city) == 21 and city[-1]["segment"] == "(other)"
        for engine in both:  # what the breakdown control offers
            with Session(engine) as session:
                assert pipeline.attribute_names(engine, pipeline.load(session, "checkout-study")[1]) == ["city", "device"]
    finally:
        for engine in both:
            _clear(engine)
            clear_events_store(engine)
