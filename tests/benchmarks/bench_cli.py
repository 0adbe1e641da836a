"""Benchmark: wall time of CLI commands as typed, against a bare interpreter start in the same run.

Run: ``python tests/benchmarks/bench_cli.py [--repeat 7] [--postgres-url URL]`` (not part of the
default test run). Each command is a fresh process of the ``abtest`` console script next to this
interpreter (this checkout first on ``PYTHONPATH``), timed best of ``--repeat`` with the median
beside it; the baseline is ``python -c pass``. Data: a temporary SQLite file seeded with the demo
(4,000 visitors in checkout-button, 24 study participants), and with ``--postgres-url`` (or
``ABTEST_TEST_POSTGRES_URL``) the same in a throwaway PostgreSQL database dropped afterwards.
Targets (issue 12): ``--help`` and ``assign`` < 0.3 s, ``power`` < 0.5 s, ``analyze`` < 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SCRIPT = str(Path(sys.executable).with_name("abtest"))
COMMANDS: list[tuple[str, list[str], float | None]] = [  # label, argv, target s
    ("python -c pass (baseline)", [sys.executable, "-c", "pass"], None),
    ("abtest --help", [SCRIPT, "--help"], 0.3),
    ("abtest assign", [SCRIPT, "assign", "checkout-button", "visitor-1"], 0.3),
    ("abtest assign (a study)", [SCRIPT, "assign", "checkout-study", "visitor-1"], None),
    ("abtest power --baseline", [SCRIPT, "power", "--baseline", "0.1", "--mde", "0.02"], 0.5),
    ("abtest power --sd", [SCRIPT, "power", "--sd", "3", "--mde", "0.5"], None),
    ("abtest list", [SCRIPT, "list"], None),
    ("abtest analyze", [SCRIPT, "analyze", "checkout-button"], 1.5),
    ("abtest analyze (a study)", [SCRIPT, "analyze", "checkout-study"], None),
]


def seed(url: str) -> None:
    from abtest.db import make_engine, upgrade
    from abtest.demo import seed_demo

    engine = make_engine(url)
    upgrade(engine)
    for _line in seed_demo(engine):
        pass
    engine.dispose()


def times(argv: list[str], env: dict[str, str], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat + 1):  # the first run warms the page cache and writes .pyc files
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        out.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return out[1:]


def run(backend: str, url: str, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as instance:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ABTEST_DATABASE_URL": url,
               "ABTEST_INSTANCE_PATH": instance, "ABTEST_SECRET_KEY": "bench"}
        print(f"\n{backend}  (best of {repeat}; x = best / baseline's best)")
        print(f"{'command':28} {'best s':>7} {'median s':>9} {'x base':>7}  target")
        base = None
        for label, argv, target in COMMANDS:
            measured = times(argv, env, repeat)
            best = min(measured)
            base = base or best
            verdict = "" if target is None else f"< {target} s: {'met' if best < target else 'NOT met'}"
            print(f"{label:28} {best:7.3f} {statistics.median(measured):9.3f} {best / base:7.1f}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--postgres-url", default=os.environ.get("ABTEST_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {sys.executable}")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        seed(url)
        run("SQLite", url, args.repeat)
    if args.postgres_url:
        import sqlalchemy as sa

        admin = sa.create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        name = f"abtest_bench_cli_{uuid.uuid4().hex[:8]}"
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except sa.exc.OperationalError as exc:
            print(f"\nPostgreSQL skipped: not reachable at {args.postgres_url}: {str(exc.orig).strip()}")
            return
        try:
            url = sa.engine.make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)
            seed(url)
            run("PostgreSQL", url, args.repeat)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
