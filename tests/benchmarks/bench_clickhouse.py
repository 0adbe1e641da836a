"""Benchmark: reports and ingestion with the events in ClickHouse (chdb, in-process).

Run (not part of the default test run)::

    /tmp/venv/bin/python tests/benchmarks/bench_clickhouse.py                       # 1 M and 10 M events
    ... bench_clickhouse.py --sizes 1000000 --ingest 50000 --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Reports: ``pipeline.analyze()`` (conversion, mean with CUPED, duration and retention metrics;
then broken down by a 3-valued attribute) over N events generated inside ClickHouse (2 exposures,
2 conversions and 1 timed task per unit, N/5 units, a week of timestamps), quoted as a ratio to
``SELECT count() FROM events``, to ``count() … FINAL`` and to one per-unit ``GROUP BY`` (the floor of
any per-unit analysis) over the same table in the same run.

Ingestion: events/s through the one write path (``write_events``, batches of 1,000, id lookup and
synchronous insert included) into chdb, against the same rows into PostgreSQL in the same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from sqlmodel import Session  # noqa: E402

from abtest import pipeline  # noqa: E402
from abtest.clickhouse.client import connect  # noqa: E402
from abtest.clickhouse.schema import create_schema, table, truncate_statements, units_table  # noqa: E402
from abtest.db import make_engine, upgrade  # noqa: E402
from abtest.kinds import parse_definition  # noqa: E402
from abtest.store.events import event_row, write_events  # noqa: E402
from abtest.store.target import attach, detach  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DEFINITION = {"key": "bench", "status": "running", "cuped": True,
              "variants": [{"key": "control", "weight": 0.5}, {"key": "green", "weight": 0.5}],
              "metrics": [{"name": "purchase", "type": "conversion", "primary": True},
                          {"name": "revenue", "type": "mean", "event": "purchase"},
                          {"name": "checkout-time", "type": "duration", "task": "checkout"},
                          {"name": "back", "type": "retention", "days": 3}]}

GENERATE = """INSERT INTO {t} (event_id, type, experiment_id, variant, unit, event, value, task, success,
    duration_ms, questionnaire, answers, attributes, forced, ts, received_at)
SELECT concat('g', toString(number)) AS id, multiIf(k < 2, 'exposure', k < 4, 'conversion', 'task'),
       {e:UInt64}, if(k < 2, if(h % 2 = 0, 'control', 'green'), NULL), concat('u', toString(u)),
       if(k BETWEEN 2 AND 3, 'purchase', NULL), if(k BETWEEN 2 AND 3, toFloat64(cityHash64(number) % 100), NULL),
       if(k = 4, 'checkout', NULL), if(k = 4, true, NULL), if(k = 4, 1000 + cityHash64(number) % 60000, NULL),
       NULL, NULL, if(k < 2, map('device', ['desktop', 'mobile', 'tablet'][h % 3 + 1]), map()), false,
       toDateTime64('2026-11-01 00:00:00', 6, 'UTC') + toIntervalSecond(cityHash64(number, 1) % 604800) AS ts, ts
FROM (SELECT number, number % {units:UInt64} AS u, intDiv(number, {units:UInt64}) AS k, cityHash64(u) AS h
      FROM numbers({n:UInt64}))"""


def best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def registry(folder: Path, name: str) -> sa.Engine:
    engine = make_engine(f"sqlite:///{folder / name}")
    upgrade(engine)
    with Session(engine) as session:
        pipeline.create(session, parse_definition(DEFINITION))
        session.commit()
    return engine


def reports(folder: Path, chdb_url: str, sizes: list[int]) -> None:
    engine = registry(folder, "reports.db")
    attach(engine, chdb_url)
    client = connect(chdb_url)
    t = table(client)
    now = T0 + timedelta(days=8)
    for n in sizes:
        for statement in truncate_statements(client):
            client.command(statement)
        start = time.perf_counter()
        client.command(GENERATE.replace("{t}", t), {"e": 1, "units": n // 5, "n": n})  # the view fills the units
        load = time.perf_counter() - start
        for merged in (t, units_table(client)):  # steady state: merged parts, as after background merges
            client.command(f"OPTIMIZE TABLE {merged} FINAL")
        count = best(lambda: client.query(f"SELECT count() FROM {t}"))
        count_final = best(lambda: client.query(f"SELECT count() FROM {t} FINAL WHERE experiment_id = 1"))
        # The floor of any per-unit analysis (both count() figures are metadata or key reads).
        units = best(lambda: client.query(
            f"SELECT count() FROM (SELECT unit FROM {t} FINAL WHERE experiment_id = 1 GROUP BY unit)"), 2)
        report = best(lambda: pipeline.analyze(engine, "bench", now=now), 2)
        by = best(lambda: pipeline.analyze(engine, "bench", by="device", now=now), 2)
        print(f"{n:>11,} events (load {load:.1f} s): count() {count * 1000:.0f} ms, count() FINAL "
              f"{count_final * 1000:.0f} ms, per-unit GROUP BY {units:.2f} s; report {report:.2f} s = "
              f"{report / count:.0f}x count(), {report / count_final:.1f}x count() FINAL, {report / units:.1f}x the "
              f"GROUP BY; by device {by:.2f} s = {by / units:.1f}x the GROUP BY, {by / report:.1f}x the report",
              flush=True)
    detach(engine)


def ingestion(folder: Path, chdb_url: str, postgres_url: str | None, total: int) -> None:
    rng = random.Random(1)
    rows = [event_row(1, str(uuid.uuid4()), "conversion", f"i{rng.randrange(total // 4)}",
                      T0 + timedelta(seconds=rng.randrange(86400)), event="purchase", value=float(rng.randrange(50)))
            for _ in range(total)]
    targets = {}
    chdb_engine = registry(folder, "ingest.db")
    attach(chdb_engine, chdb_url + "?db=ingest")
    create_schema(connect(chdb_url + "?db=ingest"))
    targets["chdb"] = chdb_engine
    if postgres_url:
        admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        name = f"bench_ch_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        pg = make_engine(sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False))
        upgrade(pg)
        with Session(pg) as session:
            pipeline.create(session, parse_definition(DEFINITION))
            session.commit()
        targets["postgresql"] = pg
    rates = {}
    for label, engine in targets.items():
        per_batch = []
        start = time.perf_counter()
        for i in range(0, total, 1000):
            t = time.perf_counter()
            with engine.begin() as conn:
                assert write_events(conn, rows[i:i + 1000]) == len(rows[i:i + 1000])
            per_batch.append(time.perf_counter() - t)
        rates[label] = total / (time.perf_counter() - start)
        print(f"ingest {label}: {rates[label]:,.0f} events/s (batches of 1,000; median batch "
              f"{statistics.median(per_batch) * 1000:.0f} ms)", flush=True)
    if "postgresql" in rates:
        print(f"ingest chdb / postgresql: {rates['chdb'] / rates['postgresql']:.2f}x")
        targets["postgresql"].dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    detach(chdb_engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--ingest", type=int, default=50_000, help="events per ingestion run (0: skip)")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"chdb://{folder / 'chdb'}"
        create_schema(connect(url))
        if args.ingest:
            ingestion(folder, url, args.postgres_url or None, args.ingest)
        reports(folder, url, [int(s) for s in args.sizes.split(",") if s])


if __name__ == "__main__":
    main()
