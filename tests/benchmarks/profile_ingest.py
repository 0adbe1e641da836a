"""Where a ``POST /api/v1/events`` request's time goes: cProfile over N requests in one process.

Run (not part of the default test run)::

    PYTHONPATH=. /work/venv/bin/python tests/benchmarks/profile_ingest.py                 # PostgreSQL
    PYTHONPATH=. /work/venv/bin/python tests/benchmarks/profile_ingest.py --backend sqlite --requests 500

The app is the real one (``web.create_app``, rate limits and CORS on) on a throwaway database,
driven through Flask's test client with the same 25-event batches as ``bench_ingest.py``
(exposures, purchases, checkout timings; fresh ids), after ``--preload`` events are stored and
the planner has statistics (a fresh empty table plans the per-unit lookups badly). It prints wall and CPU ms per request, then
the cumulative ms per request of the parts that matter (validation, the registry reads, the
write, the rate limits, Flask), measured under the profiler, and the top functions by own time.
Figures under cProfile are inflated (every call is counted); read them as shares.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_ingest import DEFAULT_PG, EXPERIMENT, EXPERIMENT_FILE, create_pg_database, drop_pg_database

# (label, file fragment, function name): cumulative time of these, per request.
PARTS = [
    ("whole request (Flask test client)", "flask/testing.py", "open"),
    ("auth: public-key lookup", "web/auth.py", "lookup_token"),
    ("rate limits", "web/public_api.py", "_enforce"),
    ("ingest()", "abtest/ingest.py", "ingest"),
    ("  validation (EventIn)", "pydantic/main.py", "model_validate"),
    ("  the group's transaction (one request alone here)", "abtest/store/group_commit.py", "_write_group"),
    ("  registry reads (experiments, variants)", "abtest/ingest.py", "_targets"),
    ("  the insert (store_new)", "abtest/store/events.py", "store_new"),
    ("  conversions before exposure", "abtest/ingest.py", "_first_exposures"),
    ("  commit", "sqlalchemy/engine/base.py", "commit"),
    ("JSON parse of the body", "werkzeug/wrappers/request.py", "get_json"),
]


def batch(rng: random.Random, size: int) -> dict:
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = []
    for i in range(size):
        base = {"id": str(uuid.uuid4()), "experiment": EXPERIMENT, "unit": f"visitor-{rng.randrange(2_000_000)}", "ts": ts}
        if i % 5 == 0:
            events.append(base | {"type": "conversion", "event": "purchase", "value": rng.randrange(5, 200) + 0.25})
        elif i % 5 == 1:
            events.append(base | {"type": "task", "task": "checkout", "success": True,
                                  "duration_ms": rng.randrange(5000, 90000)})
        else:
            events.append(base | {"type": "exposure", "variant": rng.choice(["control", "green"])})
    return {"events": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--preload", type=int, default=50_000,
                        help="events stored (and ANALYZEd on PostgreSQL) before the timing: a table in use, not an empty one")
    args = parser.parse_args()

    import tomllib

    from sqlmodel import Session

    from abtest import pipeline
    from abtest.accounts import create_token
    from abtest.config import load_settings
    from abtest.db import make_engine, upgrade
    from abtest.kinds import parse_definition
    from web import create_app

    workdir = Path(tempfile.mkdtemp(prefix="abtest-profile-"))
    dropped = None
    if args.backend == "postgres":
        dropped, url = create_pg_database(args.postgres_url)
    else:
        url = f"sqlite:///{workdir / 'abtest.db'}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        with Session(engine) as session:
            pipeline.create(session, parse_definition(tomllib.loads(EXPERIMENT_FILE.read_text())))
            key = create_token(session, "public", "profile").secret
            session.commit()
        settings = load_settings({"ABTEST_DATABASE_URL": url, "ABTEST_SECRET_KEY": "profile",
                                  "ABTEST_INSTANCE_PATH": str(workdir / "instance"),
                                  "ABTEST_RATELIMIT_ADDRESS": "1000000/minute", "ABTEST_RATELIMIT_KEY": "1000000/minute"})
        client = create_app(settings, engine=engine).test_client()
        rng = random.Random(1)
        bodies = [batch(rng, args.batch) for _ in range(args.requests + 20)]
        headers = {"Authorization": f"Bearer {key}"}
        for start in range(0, args.preload, 1000):
            events = [event for _ in range(40) for event in batch(rng, 25)["events"]][: args.preload - start]
            assert client.post("/api/v1/events", json={"events": events}, headers=headers).status_code == 202
        if args.backend == "postgres":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        for body in bodies[:20]:  # warm-up: caches, pools, statements
            assert client.post("/api/v1/events", json=body, headers=headers).status_code == 202

        half = args.requests // 2
        statements: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        wall, cpu = time.perf_counter(), time.process_time()
        for body in bodies[20:20 + half]:
            client.post("/api/v1/events", json=body, headers=headers)
        wall, cpu = (time.perf_counter() - wall) / half * 1000, (time.process_time() - cpu) / half * 1000

        profiler = cProfile.Profile()
        profiler.enable()
        for body in bodies[20 + half:]:
            answer = client.post("/api/v1/events", json=body, headers=headers)
            assert answer.status_code == 202, answer.get_json()
        profiler.disable()
        n = args.requests - half
        print(f"{args.backend}: {args.batch}-event batches, unprofiled {wall:.2f} ms wall / {cpu:.2f} ms CPU per request, "
              f"{len(statements) / args.requests:.1f} SQL statements per request")
        shown = sorted({" ".join(text.split())[:90] for text in statements})
        print("   " + "\n   ".join(shown))
        stats = pstats.Stats(profiler)
        for label, fragment, name in PARTS:
            total = sum(cumulative for (path, _line, func), (_cc, _nc, _tt, cumulative, _callers)
                        in stats.stats.items() if func == name and path.endswith(fragment))  # type: ignore[attr-defined]
            print(f"  {label:<44} {total / n * 1000:7.2f} ms")
        stats.sort_stats("tottime").print_stats(args.top)
    finally:
        if dropped:
            drop_pg_database(args.postgres_url, dropped)


if __name__ == "__main__":
    main()
