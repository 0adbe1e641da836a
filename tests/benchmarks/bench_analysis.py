"""Benchmark: time to build a results report, as a ratio to a bare ``SELECT count(*)`` of the same table.

Run (not part of the default test run)::

    /work/venv/bin/python tests/benchmarks/bench_analysis.py                 # PostgreSQL + SQLite
    ... bench_analysis.py --pg-sizes 100000,1000000 --sqlite-sizes 100000     # quicker
    ... bench_analysis.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

For each backend and size, a fresh database (a throwaway PostgreSQL database next to
``--postgres-url``, dropped afterwards; a temporary SQLite file) gets the schema from the
migrations, ``experiments/checkout-button.toml`` through ``abtest.pipeline``, and N generated events
in one ``INSERT … SELECT`` (``generate_series`` on PostgreSQL, a recursive CTE on SQLite; the
secondary indexes are dropped for the load and rebuilt, then ``ANALYZE events`` runs on
PostgreSQL). Shape: ~1/3 exposures (each unit exposed once or twice, always to the same variant),
~10 % of units buying (``purchase`` with a value; a few before exposure), ~30 % timing the
``checkout`` task, and the rest ``pageview`` conversions that no metric reads. The data are
deterministic (hash arithmetic, no random()), identical on both backends.

A fresh process per database then times ``SELECT count(*) FROM events`` and
``abtest.analysis.analyze(engine, "checkout-button")`` (best of ``--repeat``; one run at 10 M),
records every statement's time through ``before/after_cursor_execute``, and reads its own peak RSS
(``resource.getrusage``) before and after: memory must not grow with the event count. For the
slowest statement of the largest run on each backend it prints the plan (``EXPLAIN ANALYZE`` on
PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite). The 10 M PostgreSQL run is skipped, and says so,
when the 1 M figures predict it would push the whole run past ``--budget`` seconds (default 540).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

EXPERIMENT_FILE = ROOT / "experiments" / "checkout-button.toml"
KEY = "checkout-button"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EVENTS_PER_UNIT = 4.505  # expected events per unit in the shape below
TARGETS_S = {1_000_000: 1.0, 10_000_000: 10.0}  # PostgreSQL targets from the issue
M = 2147483647  # 2^31 - 1
REGIONS = 10  # values of the attribute the breakdown is timed on


# ---- data ------------------------------------------------------------------------------------------

def _h(x: str, a: int, real: str) -> str:
    """A deterministic pseudo-random number in [0, 1) from integer expression ``x`` (no random():
    SQLite's cannot be seeded). Squaring makes streams with different multipliers uncorrelated.
    ``MOD`` is replaced by the dialect's modulo operator (psycopg needs ``%%``)."""
    r = f"(({x}) * {a}) MOD {M}"
    return f"CAST((({r}) * ({r}) + ({x})) MOD {M} AS {real}) / {M}.0"


def insert_sql(dialect: str, units: int, experiment_id: int) -> str:
    pg = dialect == "postgresql"
    real = "double precision" if pg else "REAL"
    if pg:
        source = f"generate_series(1::bigint, {units}) AS g(u)"
        slots = "generate_series(0, 9) AS s(k)"
        prefix = ""
    else:
        prefix = (f"WITH RECURSIVE g(u) AS (SELECT 1 UNION ALL SELECT u + 1 FROM g WHERE u < {units}), "
                  "s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < 9) ")
        source, slots = "g", "s"

    def at(offset: str) -> str:
        if pg:
            return f"(TIMESTAMPTZ '2026-11-09 00:00:00+00' + ({offset}) * INTERVAL '1 second')"
        return (f"(strftime('%Y-%m-%d %H:%M:%S', '2026-11-09 00:00:00', printf('%+d seconds', {offset}))"
                " || '.000000')")

    true, false = ("TRUE", "FALSE") if pg else ("1", "0")
    per_unit = (f"SELECT u, {_h('u', 48271, real)} AS h0, {_h('u', 69621, real)} AS h1, "
                f"{_h('u', 16807, real)} AS h2, {_h('u', 39373, real)} AS h3, {_h('u', 62089911, real)} AS h5, "
                f"{_h('u', 1103515245, real)} AS h6, {_h('u', 397204094, real)} AS h7, "
                f"{_h('u', 950706376, real)} AS h8 FROM {source}")
    start = "CAST(h5 * 14 * 86400 AS INTEGER)"
    purchase_p = "(CASE WHEN h0 < 0.5 THEN 0.10 ELSE 0.11 END)"
    offset = (f"{start} + CASE WHEN k = 1 THEN 3600 WHEN k = 2 THEN (CASE WHEN h7 < 0.05 THEN -600 ELSE 600 END) "
              "WHEN k = 3 THEN 7200 WHEN k = 4 THEN 300 ELSE 60 * k END")
    # Exposures carry a 10-valued attribute (what ?by=region breaks the report down by).
    region = f"'r' || CAST(CAST(h7 * {REGIONS} AS INTEGER) AS TEXT)"
    attributes = f"json_build_object('region', {region})" if pg else f"json_object('region', {region})"
    sql = (
        f"{prefix}INSERT INTO events (event_id, type, experiment_id, variant, unit, event, value, task, success, "
        "duration_ms, questionnaire, answers, attributes, forced, ts, received_at) "
        f"SELECT 'b' || u || '-' || k, "
        "CASE WHEN k < 2 THEN 'exposure' WHEN k = 4 THEN 'task' ELSE 'conversion' END, "
        f"{experiment_id}, "
        "CASE WHEN k < 2 THEN (CASE WHEN h0 < 0.5 THEN 'control' ELSE 'green' END) END, "
        "'visitor-' || u, "
        "CASE WHEN k IN (2, 3) THEN 'purchase' WHEN k >= 5 THEN 'pageview' END, "
        "CASE WHEN k IN (2, 3) THEN round(CAST(20 + 80 * h8 AS NUMERIC), 2) END, "
        "CASE WHEN k = 4 THEN 'checkout' END, "
        f"CASE WHEN k = 4 THEN (CASE WHEN h6 < 0.9 THEN {true} ELSE {false} END) END, "
        "CASE WHEN k = 4 THEN 20000 + 60000 * h8 * h8 END, "
        f"NULL, NULL, CASE WHEN k < 2 THEN {attributes} END, {false}, {at(offset)}, {at(offset)} "
        f"FROM ({per_unit}) AS pu CROSS JOIN {slots} "
        f"WHERE k = 0 OR (k = 1 AND h1 < 0.5) OR (k = 2 AND h2 < {purchase_p}) OR (k = 3 AND h2 < 0.02) "
        f"OR (k = 4 AND h3 < 0.3) OR (k >= 5 AND {_h('u * 16 + k', 2654435, real)} < 0.516)"
    )
    return sql.replace(" MOD ", " %% " if pg else " % ")


def migrated_with_experiment(url: str):  # type: ignore[no-untyped-def]
    """An engine on a freshly migrated database holding the checkout-button experiment, and its id."""
    from abtest import pipeline
    from abtest.db import make_engine, session_scope, upgrade
    from abtest.kinds import load_toml

    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as session:
        pipeline.sync(session, [load_toml(EXPERIMENT_FILE)])
    with session_scope(engine) as session:
        experiment_id = pipeline.load(session, KEY)[0].id
    return engine, experiment_id


def prepare(url: str, events: int) -> dict[str, float]:
    """Schema, experiment and ~``events`` rows; returns the row count and load timings."""
    import sqlalchemy as sa

    engine, experiment_id = migrated_with_experiment(url)
    pg = engine.dialect.name == "postgresql"
    t0 = time.perf_counter()
    with engine.begin() as conn:
        if pg:
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
            indexes = [r[0] for r in conn.exec_driver_sql(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = "
                "i.indexrelid WHERE i.indrelid = 'events'::regclass AND c.oid IS NULL")]
            constraints = [(r[0], r[1]) for r in conn.exec_driver_sql(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'events'::regclass "
                "AND contype = 'u'")]
            for name, _definition in constraints:
                conn.exec_driver_sql(f'ALTER TABLE events DROP CONSTRAINT "{name}"')
            index_names = [r[0] for r in conn.exec_driver_sql(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid LEFT JOIN pg_constraint k "
                "ON k.conindid = i.indexrelid WHERE i.indrelid = 'events'::regclass AND k.oid IS NULL")]
            for name in index_names:
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
        else:
            indexes = [r[1] for r in conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL")]
            for (name,) in conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"):
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
            constraints = []
        conn.exec_driver_sql(insert_sql(engine.dialect.name, round(events / EVENTS_PER_UNIT), experiment_id))
    t1 = time.perf_counter()
    with engine.begin() as conn:
        if pg:
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        for name, definition in constraints:
            conn.exec_driver_sql(f'ALTER TABLE events ADD CONSTRAINT "{name}" {definition}')
        for definition in indexes:
            conn.exec_driver_sql(definition)
    t2 = time.perf_counter()
    if pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE events")
    t3 = time.perf_counter()
    with engine.connect() as conn:
        rows = int(conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one())
    engine.dispose()
    return {"rows": rows, "insert_s": t1 - t0, "index_s": t2 - t1, "analyze_table_s": t3 - t2}


# ---- measuring (in a fresh process, so its peak RSS is the analysis's own) -------------------------

def rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def measure(url: str, repeat: int, explain: bool) -> dict:
    import sqlalchemy as sa

    from abtest.pipeline import analyze
    from abtest.db import make_engine
    from abtest.store.events import write_events

    engine = make_engine(url)
    import importlib
    import pkgutil

    import abtest.stats

    # analyze() imports the statistics stack lazily: load it before the RSS baseline, so that the
    # growth measured below is the analysis's own.
    for module in pkgutil.iter_modules(abtest.stats.__path__):
        importlib.import_module(f"abtest.stats.{module.name}")
    for module in ("scipy.stats", "scipy.optimize", "scipy.special", "statsmodels.stats.proportion",
                   "statsmodels.stats.power", "statsmodels.stats.contingency_tables"):
        importlib.import_module(module)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    rss_start = rss_mb()

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one())

    def per_unit() -> None:  # the floor of any per-unit analysis: one GROUP BY unit over the table
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT count(*) FROM (SELECT unit FROM events GROUP BY unit) AS u")).scalar_one()

    count()  # warm the cache for all contenders alike
    count_s = best_of(count, repeat)
    group_s = best_of(per_unit, repeat)
    statements: list[dict] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append({"seconds": time.perf_counter() - conn.info["bench_t0"].pop(), "sql": statement,
                           "parameters": parameters})

    report = None

    def run() -> None:
        nonlocal report
        statements.clear()
        report = analyze(engine, KEY)

    # The first report after the bulk load builds the per-unit rollups from every event (one
    # set-based pass); later reports find them fresh, or recompute only the units a new batch
    # touched. All three are timed: the first is what a migrated deployment pays once.
    build_s = best_of(run, 1)
    build_statements = list(statements)
    analyze_s = best_of(run, repeat)
    fresh_statements = list(statements)
    increments: list[float] = []
    for round_ in range(repeat):
        with engine.begin() as conn:
            write_events(conn, new_batch(conn, round_))
        increments.append(best_of(run, 1))
    incremental_s = min(increments)
    breakdown: dict = {}

    def run_breakdown() -> None:
        breakdown["report"] = analyze(engine, KEY, by="region")

    run_breakdown()  # fresh rollups again before timing
    breakdown_s = best_of(run_breakdown, repeat)
    segments = len(breakdown["report"].breakdown.segments)
    rss_peak = rss_mb()
    sa.event.remove(engine, "before_cursor_execute", _before)
    sa.event.remove(engine, "after_cursor_execute", _after)
    assert report is not None
    # EXPLAIN ANALYZE runs its statement: only a read of the fresh report can be run again.
    slowest = max(fresh_statements, key=lambda s: s["seconds"])
    result = {
        "count_s": count_s, "group_s": group_s, "build_s": build_s, "analyze_s": analyze_s,
        "incremental_s": incremental_s, "batch_events": NEW_BATCH, "breakdown_s": breakdown_s,
        "segments": segments,
        "slowest_s": slowest["seconds"], "rss_start_mb": rss_start, "rss_peak_mb": rss_peak,
        "units": report.units,
        "statements": [{"seconds": s["seconds"], "sql": _first_words(s["sql"])} for s in build_statements],
        "fresh_statements": [{"seconds": s["seconds"], "sql": _first_words(s["sql"])} for s in fresh_statements],
        "slowest_sql": slowest["sql"], "slowest_parameters": repr(slowest["parameters"]),
    }
    if explain:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"], slowest["parameters"])
                result["plan"] = [r[0] for r in plan]
            else:
                plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + slowest["sql"], slowest["parameters"])
                result["plan"] = [str(r[-1]) for r in plan]
    engine.dispose()
    return result


NEW_BATCH = 1000  # events per incremental round: a busy minute's worth of traffic


def new_batch(conn, round_: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """1,000 new events: 300 known visitors come back (exposure, purchase, timed checkout) and 50
    new ones arrive (exposure, purchase); another slice of visitors each round."""
    from datetime import UTC, datetime, timedelta

    from abtest.aggregates.rollup import UNITS

    import sqlalchemy as sa

    experiment_id = conn.execute(sa.text("SELECT id FROM experiments WHERE key = :k"), {"k": KEY}).scalar_one()
    known = conn.execute(sa.select(UNITS.c.unit, UNITS.c.variant_lo).where(UNITS.c.experiment_id == experiment_id)
                         .order_by(UNITS.c.unit).limit(300).offset(300 * round_)).all()
    ts = datetime(2026, 11, 20, tzinfo=UTC) + timedelta(minutes=round_)
    rows = []

    def add(type_: str, unit: str, **fields) -> None:  # type: ignore[no-untyped-def]
        row = {"event_id": f"inc-{round_}-{len(rows)}", "type": type_, "experiment_id": experiment_id,
               "variant": None, "unit": unit, "event": None, "value": None, "task": None, "success": None,
               "duration_ms": None, "questionnaire": None, "answers": None, "forced": False, "ts": ts,
               "received_at": ts}
        row.update(fields)
        rows.append(row)

    for unit, variant in known:
        add("exposure", unit, variant=variant)
        add("conversion", unit, event="purchase", value=25.0)
        add("task", unit, task="checkout", success=True, duration_ms=30_000.0)
    for i in range(50):
        unit = f"new-{round_}-{i}"
        add("exposure", unit, variant="control" if i % 2 else "green")
        add("conversion", unit, event="purchase", value=30.0)
    return rows


def _first_words(sql: str) -> str:
    text = " ".join(sql.split())
    for table in ("api", "experiments", "variants", "metrics"):
        if f"FROM {table}" in text and "events" not in text and "rollup" not in text:
            return f"registry: {table}"
    for start, label in (("INSERT INTO rollup_units", "rollup build: units"),
                         ("INSERT INTO rollup_measures", "rollup build: measures"),
                         ("DELETE FROM rollup", "rollup: delete"), ("INSERT INTO rollup_claim", "rollup: claim"),
                         ("INSERT INTO rollup_state", "rollup: lock state")):
        if text.startswith(start):
            return label
    if text.startswith("SELECT count(*) AS count_1 FROM rollup"):
        return "rollup: count"
    if text.startswith("ANALYZE"):
        return "rollup: ANALYZE"
    if text.startswith("SELECT rollup_dirty.unit"):
        return "rollup: lock marks"
    if "rollup_units" in text or "rollup_measures" in text:
        if "converted_day" in text:
            return "report: daily series"
        if "log_sum" in text:
            return "report: duration metric"
        if "AS bucket" in text:
            return "report: unit counts"
        if "sum(rollup_measures.post" in text:
            return "report: conversion/value metric"
        return "report: retention metric"
    return text[:60]


def best_of(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure_in_subprocess(url: str, repeat: int, explain: bool) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure", url, "--repeat", str(repeat)]
                         + (["--explain"] if explain else []),
                         capture_output=True, text=True, timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- databases -----------------------------------------------------------------------------------

def pg_database(server_url: str, name: str, create: bool) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if create:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def bench_one(backend: str, events: int, args: argparse.Namespace, tmp: Path, explain: bool) -> dict:
    name = f"abtest_bench_analysis_{os.getpid()}_{events}"
    if backend == "postgresql":
        url = pg_database(args.postgres_url, name, create=True)
    else:
        url = f"sqlite:///{tmp / (name + '.db')}"
    try:
        t0 = time.perf_counter()
        load = prepare(url, events)
        repeat = 1 if events >= 5_000_000 else args.repeat
        result = measure_in_subprocess(url, repeat, explain)
        result.update(load, backend=backend, target_events=events, wall_s=time.perf_counter() - t0)
        return result
    finally:
        if backend == "postgresql":
            pg_database(args.postgres_url, name, create=False)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{tmp / name}.db{suffix}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-sizes", default="100000,1000000,10000000")
    parser.add_argument("--sqlite-sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3, help="best-of for runs under 5 M events")
    parser.add_argument("--budget", type=float, default=540, help="seconds; 10 M is skipped if it would not fit")
    parser.add_argument("--postgres-url", default=os.environ.get("ABTEST_TEST_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--explain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeat, args.explain)))
        return
    started = time.perf_counter()
    plan: list[tuple[str, int]] = []
    plan += [("postgresql", int(n)) for n in args.pg_sizes.split(",") if n]
    plan += [("sqlite", int(n)) for n in args.sqlite_sizes.split(",") if n]
    results: list[dict] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="abtest-bench-analysis-") as tmp:
        # SQLite before the 10 M PostgreSQL run, so the budget check below knows what remains.
        order = sorted(plan, key=lambda p: (p[1] >= 5_000_000, p[0] != "postgresql", p[1]))
        for backend, events in order:
            if events >= 5_000_000:
                done = [r for r in results if r["backend"] == backend]
                if done:
                    ref = max(done, key=lambda r: r["rows"])
                    scale = events / ref["rows"]  # one load, one analyze, one EXPLAIN ANALYZE, two group-bys
                    predicted = scale * (1.2 * (ref["insert_s"] + ref["index_s"]) + ref["build_s"]
                                         + ref["slowest_s"] + 2 * ref["group_s"] + 3 * ref["count_s"])
                    remaining = args.budget - (time.perf_counter() - started)
                    if predicted > remaining:
                        skipped.append(f"{backend} {events:,}: predicted {predicted:.0f} s from the "
                                       f"{ref['rows']:,} run, {remaining:.0f} s of the budget left")
                        print(f"  skip {skipped[-1]}", file=sys.stderr, flush=True)
                        continue
            result = bench_one(backend, events, args, Path(tmp), explain=events >= 1_000_000)
            results.append(result)
            print(f"  {backend} {result['rows']:,}: count {result['count_s']:.3f} s, build {result['build_s']:.3f} s, "
                  f"fresh {result['analyze_s']:.3f} s, +1k {result['incremental_s']:.3f} s, "
                  f"load {result['insert_s'] + result['index_s']:.0f} s", file=sys.stderr, flush=True)
    print_report(results, skipped, time.perf_counter() - started)


def print_report(results: list[dict], skipped: list[str], total_s: float) -> None:
    results = sorted(results, key=lambda r: (r["backend"] != "postgresql", r["rows"]))
    print(f"abtest.pipeline.analyze({KEY!r}) vs SELECT count(*) FROM events (same table, same run)")
    print(f"{'backend':11} {'events':>11} {'count s':>8} {'group s':>8} {'build s':>8} {'x group':>8} "
          f"{'fresh s':>8} {'x count':>8} {'+1k s':>7} {'x count':>8} {'by s':>7} {'x fresh':>8} "
          f"{'RSS start':>9} {'RSS peak':>9} {'load s':>7}")
    for r in results:
        print(f"{r['backend']:11} {r['rows']:11,} {r['count_s']:8.3f} {r['group_s']:8.3f} {r['build_s']:8.3f} "
              f"{r['build_s'] / r['group_s']:8.1f} {r['analyze_s']:8.3f} {r['analyze_s'] / r['count_s']:8.2f} "
              f"{r['incremental_s']:7.3f} {r['incremental_s'] / r['count_s']:8.2f} "
              f"{r['breakdown_s']:7.3f} {r['breakdown_s'] / r['analyze_s']:8.2f} "
              f"{r['rss_start_mb']:8.0f}M {r['rss_peak_mb']:8.0f}M {r['insert_s'] + r['index_s']:7.1f}")
    print("(build = the first report after the bulk load: builds the per-unit rollups from every event.\n"
          " fresh = a report with the rollups up to date; +1k = a report right after a new batch of 1,000\n"
          " events (300 returning visitors, 50 new), which recomputes only the units it touched.\n"
          f" by = a fresh report broken down by a {REGIONS}-valued attribute (?by=region), x fresh its ratio.\n"
          " group = SELECT count(*) FROM (SELECT unit FROM events GROUP BY unit): one per-unit pass over the\n"
          " events, the floor of any analysis that scans them. SQLite answers count(*) from its smallest index,\n"
          " hence its huge 'x count'. PostgreSQL: ANALYZE events ran after loading. RSS = peak resident set of\n"
          " the measuring process, 'start' after imports (statistics modules included) and a first query.)")
    for r in results:
        for title, key in (("build", "statements"), ("fresh", "fresh_statements")):
            per: dict[str, float] = {}
            for s in r[key]:
                per[s["sql"]] = per.get(s["sql"], 0.0) + s["seconds"]
            top = ", ".join(f"{k} {v:.3f} s" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.002)
            print(f"{r['backend']} {r['rows']:,} {title} statements: {top}")
    for r in results:
        target = TARGETS_S.get(r["target_events"])
        if r["backend"] == "postgresql" and target:
            for label, key in (("fresh rollups", "analyze_s"), ("after a new batch", "incremental_s"),
                               ("first report, rollups built from scratch", "build_s")):
                verdict = "met" if r[key] < target else "NOT met"
                print(f"target PostgreSQL {r['target_events']:,} events < {target:.0f} s, {label}: {verdict} "
                      f"({r[key]:.2f} s)")
        if r["backend"] == "postgresql":
            ratio = r["build_s"] / r["group_s"]
            print(f"target PostgreSQL {r['rows']:,} events: rollup build <= 2x one per-unit GROUP BY: "
                  f"{'met' if ratio <= 2 else 'NOT met'} ({ratio:.1f}x)")
    for line in skipped:
        print(f"skipped: {line}")
    for r in results:
        if "plan" in r:
            print(f"\nslowest statement of a fresh report, {r['backend']} {r['rows']:,} events:\n{r['slowest_sql']}\n"
                  f"parameters: {r['slowest_parameters']}\nplan (top):")
            print("\n".join(r["plan"][:40]))
    print(f"\ntotal {total_s:.0f} s")
    print("JSON " + json.dumps([{k: v for k, v in r.items() if k not in ("statements", "fresh_statements")}
                               for r in results]))


if __name__ == "__main__":
    main()
