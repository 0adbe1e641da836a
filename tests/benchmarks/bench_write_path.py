"""Benchmark: the PostgreSQL write path (``abtest.store.events.write_events``: one statement per
batch, the rows as one JSON parameter; until 2026-12-08 an ``unnest`` of sixteen arrays) against
SQLAlchemy's own bulk insert of the same rows (the same ``INSERT … ON CONFLICT DO NOTHING
RETURNING`` executed with many parameter sets, "insertmanyvalues"), which
the write path used before. Same rows, same database, rounds alternating; ms per batch (wall and
this process's CPU) and the ratio write_events / insertmanyvalues.

Run (not part of the default test run; < 1 minute)::

    /work/venv/bin/python tests/benchmarks/bench_write_path.py
    ... bench_write_path.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from abtest import pipeline  # noqa: E402
from abtest.db import dialect_insert, make_engine, session_scope, upgrade  # noqa: E402
from abtest.kinds import parse_definition  # noqa: E402
from abtest.store import events  # noqa: E402

Writer = Callable[[sa.Connection, list[dict[str, Any]]], int]


def insertmanyvalues(conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """The baseline: SQLAlchemy's executemany of the cached ON CONFLICT … RETURNING statement."""
    statement = dialect_insert(conn, events.EVENTS).on_conflict_do_nothing(index_elements=["event_id"]).returning(
        events.EVENTS.c.event_id)
    return len(conn.execute(statement, sorted(rows, key=lambda row: row["event_id"])).all())


def batch(experiment_id: int, size: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [events.event_row(experiment_id, str(uuid.uuid4()), "exposure", f"u-{uuid.uuid4().hex[:8]}", now,
                             variant="control", attributes={"device": "mobile"}) for _ in range(size)]


def measure(engine: sa.Engine, experiment_id: int, writer: Writer, size: int, count: int) -> tuple[float, float]:
    batches = [batch(experiment_id, size) for _ in range(count)]
    wall, cpu = time.perf_counter(), time.process_time()
    for rows in batches:
        with engine.begin() as conn:
            assert writer(conn, rows) == size
    return (time.perf_counter() - wall) / count * 1000, (time.process_time() - cpu) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    admin = sa.create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    name = f"abtest_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(sa.engine.make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        definition = tomllib.loads((Path(__file__).resolve().parents[2] / "experiments/checkout-button.toml").read_text())
        with session_scope(engine) as session:
            pipeline.create(session, parse_definition(definition))
        with engine.connect() as conn:
            experiment_id = conn.execute(sa.text("SELECT min(id) FROM experiments")).scalar_one()
        print(f"{'rows':>5} {'writer':<17} {'wall ms':>8} {'cpu ms':>7}   ratio write_events/insertmanyvalues (wall, cpu)")
        for size, count in ((25, 300), (1000, 10)):
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.rounds):
                for label, writer in (("insertmanyvalues", insertmanyvalues), ("write_events", events.write_events)):
                    wall, cpu = measure(engine, experiment_id, writer, size, count)
                    best[label] = min(best.get(label, (wall, cpu)), (wall, cpu))
                    print(f"{size:>5} {label:<17} {wall:8.2f} {cpu:7.2f}")
            (bw, bc), (uw, uc) = best["insertmanyvalues"], best["write_events"]
            print(f"{size:>5} best of {args.rounds}: write_events {uw / bw:.2f}x wall, {uc / bc:.2f}x CPU")
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
