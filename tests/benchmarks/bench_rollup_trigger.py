"""Benchmark: what the rollup trigger on ``events`` costs each ingested batch.

Run (not part of the default test run)::

    /work/venv/bin/python tests/benchmarks/bench_rollup_trigger.py            # PostgreSQL + SQLite
    ... bench_rollup_trigger.py --batches 400 --backends sqlite

For each backend, a fresh migrated database with ``experiments/checkout-button.toml`` takes
batches of 25 events (exposures, purchases, checkout timings for 10 visitors each) through
``abtest.store.events.write_events``, one transaction per batch as the API does, with the trigger in
place and with it dropped, in alternating rounds of ``--batches`` each, so both see the same
machine load. It prints milliseconds per batch and the ratio with / without the trigger.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_analysis import DEFAULT_PG, migrated_with_experiment, pg_database  # noqa: E402


def batch(experiment_id: int, round_: int, i: int) -> list[dict]:
    ts = datetime.now(UTC)
    rows = []
    for v in range(10):
        unit = f"visitor-{round_}-{i}-{v}"
        kinds = [("exposure", {"variant": "control" if v % 2 else "green"})]
        kinds.append(("conversion", {"event": "purchase", "value": 20.0}) if v < 8 else
                     ("task", {"task": "checkout", "success": True, "duration_ms": 25_000.0}))
        if v < 5:
            kinds.append(("conversion", {"event": "pageview"}))
        for type_, fields in kinds:
            row = {"event_id": uuid.uuid4().hex, "type": type_, "experiment_id": experiment_id, "variant": None,
                   "unit": unit, "event": None, "value": None, "task": None, "success": None, "duration_ms": None,
                   "questionnaire": None, "answers": None, "forced": False, "ts": ts, "received_at": ts}
            row.update(fields)
            rows.append(row)
    return rows[:25]


def trigger_sql(engine) -> list[str]:  # type: ignore[no-untyped-def]
    """The statements that re-create the trigger, as the migration made them."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return [conn.exec_driver_sql("SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                                         "WHERE tgname = 'events_mark_rollup_dirty'").scalar_one()]
        return [conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                                     "AND name = 'events_mark_rollup_dirty'").scalar_one()]


def run(url: str, batches: int, rounds: int) -> dict[str, float]:
    from abtest.store.events import write_events

    engine, experiment_id = migrated_with_experiment(url)
    create = trigger_sql(engine)
    drop = "DROP TRIGGER events_mark_rollup_dirty" + (" ON events" if engine.dialect.name == "postgresql" else "")
    times: dict[str, list[float]] = {"with trigger": [], "without trigger": []}
    for round_ in range(rounds):
        for label in (("with trigger", "without trigger") if round_ % 2 == 0 else ("without trigger", "with trigger")):
            if label == "without trigger":
                with engine.begin() as conn:
                    conn.exec_driver_sql(drop)
            for i in range(batches):
                rows = batch(experiment_id, round_ * 2 + (label == "with trigger"), i)
                t0 = time.perf_counter()
                with engine.begin() as conn:
                    write_events(conn, rows)
                times[label].append(time.perf_counter() - t0)
            if label == "without trigger":
                with engine.begin() as conn:
                    for statement in create:
                        conn.exec_driver_sql(statement)
    engine.dispose()
    return {label: statistics.median(values) * 1000 for label, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--batches", type=int, default=300, help="batches per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--postgres-url", default=os.environ.get("ABTEST_TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args()
    print(f"insert_events, batches of 25 in one transaction each, median ms per batch "
          f"({args.rounds} alternating rounds of {args.batches} batches)")
    with tempfile.TemporaryDirectory(prefix="abtest-bench-trigger-") as tmp:
        for backend in args.backends.split(","):
            name = f"abtest_bench_trigger_{os.getpid()}"
            url = pg_database(args.postgres_url, name, create=True) if backend == "postgresql" \
                else f"sqlite:///{Path(tmp) / (name + '.db')}"
            try:
                ms = run(url, args.batches, args.rounds)
            finally:
                if backend == "postgresql":
                    pg_database(args.postgres_url, name, create=False)
            ratio = ms["with trigger"] / ms["without trigger"]
            print(f"{backend:11} with trigger {ms['with trigger']:6.2f} ms, without {ms['without trigger']:6.2f} ms, "
                  f"ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
