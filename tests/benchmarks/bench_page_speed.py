"""Benchmark: a report with two quantile metrics at 1 M page views, as a ratio to the same report
without them (issue 16).

Run (not part of the default test run)::

    /tmp/venv/bin/python tests/benchmarks/bench_page_speed.py                    # 1 M page views, PostgreSQL
    ... bench_page_speed.py --views 100000 --backend sqlite                        # quicker
    ... bench_page_speed.py --backend chdb                                         # events in ClickHouse (chdb)

A throwaway database (dropped afterwards) gets two experiments with the same visitors and the same
page views: ``plain`` (a conversion metric) and ``speed`` (the same conversion plus p75 of LCP
over page views and the median of each visitor's LCP). Page views are one
``INSERT … SELECT`` from ``generate_series`` (LCP log-normal from hash arithmetic, ~4 per
visitor). Both reports are run once to build the rollups, then timed best of ``--repeat``; the
ratio speed / plain is what the quantile metrics cost. The order statistics the report reads are
bounded (at most a few thousand values per variant), so the cost is the database's sorts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_analysis import DEFAULT_PG, _h, pg_database  # noqa: E402

VIEWS_PER_VISITOR = 4

PLAIN = {"key": "plain", "status": "running", "analysis": "fixed", "plan": {"units_per_variant": 100000},
         "variants": [{"key": "control", "weight": 0.5}, {"key": "fast", "weight": 0.5}],
         "metrics": [{"name": "purchase", "type": "conversion", "primary": True}]}
SPEED = {**PLAIN, "key": "speed", "metrics": [
    *PLAIN["metrics"], {"name": "lcp", "type": "quantile", "vital": "LCP"},
    {"name": "lcp-visitor", "type": "quantile", "vital": "LCP", "over": "units", "quantile": 0.5}]}


def insert_sql(dialect: str, visitors: int, experiment_id: int) -> str:
    """Exposures, a few purchases and ~4 LCP page views per visitor (``fast``: 10 % quicker)."""
    pg = dialect == "postgresql"
    real = "double precision" if pg else "REAL"
    if pg:
        source, slots, prefix = f"generate_series(1::bigint, {visitors}) AS g(u)", "generate_series(0, 9) AS s(k)", ""
        ts = "(TIMESTAMPTZ '2026-11-20 00:00:00+00' + (u MOD 86400 + k) * INTERVAL '1 second')"
    else:
        prefix = (f"WITH RECURSIVE g(u) AS (SELECT 1 UNION ALL SELECT u + 1 FROM g WHERE u < {visitors}), "
                  "s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < 9) ")
        source, slots = "g", "s"
        ts = ("(strftime('%Y-%m-%d %H:%M:%S', '2026-11-20 00:00:00', printf('%+d seconds', u MOD 86400 + k))"
              " || '.000000')")
    arm = f"(CASE WHEN {_h('u', 48271, real)} < 0.5 THEN 'control' ELSE 'fast' END)"
    # log-normal LCP: exp(7.6 + 0.5·z) ms with z from two uniform hashes (Box–Muller's cosine half)
    z = (f"sqrt(-2 * ln({_h('u * 16 + k', 69621, real)} + 1e-12)) * "
         f"cos(6.283185307 * {_h('u * 16 + k', 16807, real)})")
    lcp = f"exp(7.6 + 0.5 * {z}) * (CASE WHEN {arm} = 'fast' THEN 0.9 ELSE 1.0 END)"
    false = "FALSE" if pg else "0"
    sql = (f"{prefix}INSERT INTO events (event_id, type, experiment_id, variant, unit, event, value, forced, ts, "
           "received_at) "
           f"SELECT 'p{experiment_id}-' || u || '-' || k, "
           "CASE WHEN k = 0 THEN 'exposure' WHEN k = 9 THEN 'conversion' ELSE 'vital' END, "
           f"{experiment_id}, CASE WHEN k = 0 THEN {arm} END, 'visitor-' || u, "
           "CASE WHEN k = 9 THEN 'purchase' WHEN k > 0 THEN 'LCP' END, "
           f"CASE WHEN k BETWEEN 1 AND 8 THEN {lcp} END, {false}, {ts}, {ts} "
           f"FROM {source} CROSS JOIN {slots} "
           f"WHERE k = 0 OR (k = 9 AND {_h('u', 39373, real)} < 0.1) "
           f"OR (k BETWEEN 1 AND 8 AND {_h('u * 16 + k', 62089911, real)} < {VIEWS_PER_VISITOR / 8})")
    return sql.replace(" MOD ", " %% " if pg else " % ")


# The same shape inside ClickHouse (chdb): exposure k = 0, purchase k = 9, LCP page views k = 1..8.
CH_GENERATE = """INSERT INTO {t} (event_id, type, experiment_id, variant, unit, event, value, task, success,
    duration_ms, questionnaire, answers, attributes, forced, ts, received_at)
SELECT concat('p', toString({e:UInt64}), '-', toString(u), '-', toString(k)),
       multiIf(k = 0, 'exposure', k = 9, 'conversion', 'vital'), {e:UInt64},
       if(k = 0, if(h % 2 = 0, 'control', 'fast'), NULL), concat('visitor-', toString(u)),
       multiIf(k = 9, 'purchase', k > 0, 'LCP', NULL),
       if(k BETWEEN 1 AND 8, exp(7.6 + 0.5 * sqrt(-2 * log((cityHash64(u, k, 1) % 1000000 + 1) / 1000001))
                                 * cos(6.283185307 * (cityHash64(u, k, 2) % 1000000) / 1000000))
                              * if(h % 2 = 0, 1.0, 0.9), NULL),
       NULL, NULL, NULL, NULL, NULL, map(), false,
       toDateTime64('2026-11-20 00:00:00', 6, 'UTC') + toIntervalSecond(u % 86400 + k) AS ts, ts
FROM (SELECT intDiv(number, 10) AS u, number % 10 AS k, cityHash64(intDiv(number, 10)) AS h FROM numbers({n:UInt64}))
WHERE k = 0 OR (k = 9 AND h % 10 = 0) OR (k BETWEEN 1 AND 8 AND cityHash64(u, k) % 2 = 0)"""


def run(url: str, views: int, repeat: int, chdb: str | None = None) -> dict[str, float]:
    import sqlalchemy as sa

    from abtest import pipeline
    from abtest.db import make_engine, session_scope, upgrade
    from abtest.kinds import parse_definition

    engine = make_engine(url)
    upgrade(engine)
    visitors = views // VIEWS_PER_VISITOR
    ids = {}
    with session_scope(engine) as session:
        for raw in (PLAIN, SPEED):
            ids[raw["key"]] = pipeline.create(session, parse_definition(raw)).id
    t0 = time.perf_counter()
    if chdb is not None:
        from abtest.clickhouse.client import connect
        from abtest.clickhouse.schema import create_schema, table
        from abtest.store.target import attach

        client = connect(chdb)
        create_schema(client)
        attach(engine, chdb)
        for experiment_id in ids.values():
            client.command(CH_GENERATE.replace("{t}", table(client)), {"e": experiment_id, "n": visitors * 10})
        client.command(f"OPTIMIZE TABLE {table(client)} FINAL")
    for key, experiment_id in ids.items():
        if chdb is not None:
            break
        with engine.begin() as conn:
            conn.exec_driver_sql(insert_sql(engine.dialect.name, visitors, experiment_id))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE events")
    load_s = time.perf_counter() - t0
    if chdb is not None:
        page_views = int(client.query(f"SELECT count() FROM {table(client)} WHERE type = 'vital' "
                                      f"AND experiment_id = {ids['speed']}")[0][0])
    else:
        with engine.connect() as conn:
            page_views = int(conn.execute(sa.text(
                f"SELECT count(*) FROM events WHERE type = 'vital' AND experiment_id = {ids['speed']}")).scalar_one())
    times = {}
    for key in ("plain", "speed"):
        pipeline.analyze(engine, key)  # builds the rollups: the timed runs read them
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            report = pipeline.analyze(engine, key)
            best = min(best, time.perf_counter() - t)
        times[key] = best
    lcp = next(m for m in report.metrics if m.name == "lcp")
    engine.dispose()
    return {"page_views": page_views, "load_s": load_s, "plain_s": times["plain"], "speed_s": times["speed"],
            "p75": [v.value for v in lcp.variants], "ci": [v.ci for v in lcp.variants]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "chdb"), default="postgresql")
    parser.add_argument("--views", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()
    name = f"abtest_bench_speed_{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        url = (pg_database(args.postgres_url, name, create=True) if args.backend == "postgresql"
               else f"sqlite:///{Path(tmp) / 'speed.db'}")
        chdb = f"chdb://{Path(tmp) / 'chdb'}" if args.backend == "chdb" else None
        try:
            result = run(url, args.views, args.repeat, chdb)
        finally:
            if args.backend == "postgresql":
                pg_database(args.postgres_url, name, create=False)
    print(f"{args.backend}: {result['page_views']:,} page views per experiment (loaded in {result['load_s']:.1f} s)")
    print(f"  report without quantile metrics: {result['plain_s']:.2f} s")
    print(f"  report with two quantile metrics: {result['speed_s']:.2f} s  "
          f"(ratio {result['speed_s'] / result['plain_s']:.2f}×)")
    print(f"  p75 LCP per variant: {', '.join(f'{v:,.0f} ms' for v in result['p75'])}; "
          f"95% CI {', '.join(f'{lo:,.0f}–{hi:,.0f}' for lo, hi in result['ci'])}")


if __name__ == "__main__":
    main()
