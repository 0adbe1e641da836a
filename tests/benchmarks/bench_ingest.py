"""Benchmark: events ingested per second through ``POST /api/v1/events``, as a ratio to a bare WSGI app.

Run (not part of the default test run; needs ``wrk``, e.g. ``apt-get install -y wrk``)::

    /work/venv/bin/python tests/benchmarks/bench_ingest.py            # SQLite, PostgreSQL, baseline
    ... bench_ingest.py --only sqlite,baseline --duration 10           # a subset, shorter
    ... bench_ingest.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

What runs: ``abtest serve --workers 2`` (gunicorn, gthread, the production configuration) on a
fresh SQLite file and on a throwaway PostgreSQL database (created from ``--postgres-url``'s server
and dropped afterwards), with ``experiments/checkout-button.toml`` synced and a public key. ``wrk``
(one thread, 32 connections, a Lua script) posts batches of 25 events, every event with a new
uuid-shaped ``id`` and the current ``ts``, and reads ``accepted`` from every answer. The baseline
is a plain WSGI app (read the body, ``json.loads`` it, answer ``202 {"accepted": n}``) served by
the very same gunicorn configuration (``abtest.server._gunicorn`` with its app swapped) and hit by
the same load in the same run; figures are quoted as ratios to it because absolutes on a small
shared machine are noisy. A second reference, the "naive endpoint" (:func:`naive_app`: Flask,
one SQLAlchemy Core executemany of the 25 rows per request, nothing else) runs under the same
gunicorn configuration on its own throwaway PostgreSQL database. Only 127.0.0.1 is used. Takes about 2.5 minutes with the defaults.

After each abtest run the server is stopped and the ``events`` rows are counted: they must equal
the events the server acknowledged (25 x the 202 lines in gunicorn's access log); the
events the *client* saw acknowledged can be a little lower, by the requests still in flight when
wrk's clock ran out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.live_server import ABTEST, abtest_env, free_port, run_abtest

EXPERIMENT_FILE = ROOT / "experiments" / "checkout-button.toml"
EXPERIMENT = "checkout-button"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# wrk script: unique ids per event (run nonce, thread, counter), current ts, a realistic mix of
# exposures, purchases and task timings. response() sums the server's "accepted" counts.
WRK_LUA = r"""
local token = "@TOKEN@"
local nonce = @NONCE@
local batch = @BATCH@
local path = "/api/v1/events"
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
local threads = {}
counter, accepted, short, non202 = 0, 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(nonce + tid)
end

function request()
  counter = counter + 1
  local ts = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local parts = {}
  for i = 1, batch do
    local id = string.format("%08x-%04x-4%03x-%04x-%012x", nonce, tid, math.random(0, 4095),
                             math.random(0, 65535), counter * batch + i)
    local unit = string.format("visitor-%d-%07d", tid, math.random(1, 2000000))
    local k = i % 5
    if k == 0 then
      parts[i] = string.format('{"id":"%s","type":"conversion","experiment":"checkout-button","unit":"%s",' ..
        '"event":"purchase","value":%d.25,"ts":"%s"}', id, unit, math.random(5, 200), ts)
    elseif k == 1 then
      parts[i] = string.format('{"id":"%s","type":"task","experiment":"checkout-button","unit":"%s",' ..
        '"task":"checkout","success":true,"duration_ms":%d,"ts":"%s"}', id, unit, math.random(5000, 90000), ts)
    else
      local variant = (math.random(0, 1) == 0) and "control" or "green"
      parts[i] = string.format('{"id":"%s","type":"exposure","experiment":"checkout-button","unit":"%s",' ..
        '"variant":"%s","ts":"%s"}', id, unit, variant, ts)
    end
  end
  return wrk.format("POST", path, headers, '{"events":[' .. table.concat(parts, ",") .. ']}')
end

function response(status, headers, body)
  if status == 202 then
    local n = tonumber(body:match('"accepted"%s*:%s*(%d+)'))
    if n then accepted = accepted + n end
    if n ~= batch then short = short + 1 end
  else
    non202 = non202 + 1
  end
end

function done(summary, latency, requests)
  local acc, sh, bad = 0, 0, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    sh = sh + t:get("short")
    bad = bad + t:get("non202")
  end
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"accepted":%d,"short":%d,"non202":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%d}\n',
    summary.requests, summary.duration, acc, sh, bad, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


# ---- the baseline server ------------------------------------------------------------------------

def baseline_app(environ, start_response):  # type: ignore[no-untyped-def]
    """The least a JSON ingestion endpoint can do: read, parse, count, answer 202."""
    if environ["REQUEST_METHOD"] != "POST":
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length))
    out = json.dumps({"accepted": len(body["events"]), "duplicates": 0, "rejected": []}).encode()
    start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


def serve_baseline(port: int) -> None:
    """abtest's own gunicorn configuration, with the Flask app swapped for :func:`baseline_app`."""
    from types import SimpleNamespace

    from web.server import _gunicorn

    # The settings feed load() (replaced below) and the access-log switch, on as for abtest.
    app = _gunicorn(SimpleNamespace(access_log=True), "127.0.0.1", port, 2)  # type: ignore[arg-type]
    app.load = lambda: baseline_app  # gunicorn calls self.load() in each worker
    app.run()


def naive_app(database_url: str):  # type: ignore[no-untyped-def]
    """The issue's "naive endpoint": Flask, the body's events inserted as they come with one
    SQLAlchemy Core executemany in one transaction; no validation, no idempotency, no rollups,
    no auth. What a hand-rolled endpoint costs, to quote abtest against."""
    import sqlalchemy as sa
    from flask import Flask, jsonify, request

    from abtest.store.events import EVENTS

    engine = sa.create_engine(database_url, pool_size=8)
    with engine.connect() as conn:
        experiment_id = conn.execute(sa.text("SELECT id FROM experiments WHERE key = :k"), {"k": EXPERIMENT}).scalar_one()
    app = Flask("naive")

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return {}

    @app.post("/api/v1/events")
    def events():  # type: ignore[no-untyped-def]
        now = datetime.now(UTC)
        rows = [{"event_id": e["id"], "type": e["type"], "experiment_id": experiment_id, "variant": e.get("variant"),
                 "unit": e["unit"], "event": e.get("event"), "value": e.get("value"), "task": e.get("task"),
                 "success": e.get("success"), "duration_ms": e.get("duration_ms"), "forced": False,
                 "ts": datetime.fromisoformat(e["ts"]), "received_at": now} for e in request.get_json()["events"]]
        with engine.begin() as conn:
            conn.execute(EVENTS.insert(), rows)
        return jsonify(accepted=len(rows), duplicates=0, rejected=[]), 202

    return app


def serve_naive(port: int, database_url: str) -> None:
    from types import SimpleNamespace

    from web.server import _gunicorn

    app = _gunicorn(SimpleNamespace(access_log=True), "127.0.0.1", port, 2)  # type: ignore[arg-type]
    app.load = lambda: naive_app(database_url)
    app.run()


# ---- helpers ------------------------------------------------------------------------------------

def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not answer within {timeout} s:\n{log.read_text()}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def post_batch(url: str, token: str, batch: int) -> int:
    """One synchronous batch (warm-up): returns the server's ``accepted``."""
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = [{"id": str(uuid.uuid4()), "type": "exposure", "experiment": EXPERIMENT,
               "unit": f"warmup-{uuid.uuid4().hex[:12]}", "variant": "control", "ts": ts} for _ in range(batch)]
    request = urllib.request.Request(url + "/api/v1/events", data=json.dumps({"events": events}).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202, response.status
        return int(json.loads(response.read())["accepted"])


def run_wrk(url: str, token: str, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    script = workdir / "events.lua"
    nonce = random.randrange(1, 2**31)
    script.write_text(WRK_LUA.replace("@TOKEN@", token).replace("@NONCE@", str(nonce))
                      .replace("@BATCH@", str(args.batch)))
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s",
           "--timeout", "10s", "-s", str(script), url + "/api/v1/events"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 120, check=True).stdout
    line = next(row for row in out.splitlines() if row.startswith("BENCH "))
    result = json.loads(line.removeprefix("BENCH "))
    seconds = result["duration_us"] / 1e6
    result["requests_per_s"] = result["requests"] / seconds
    result["events_per_s"] = result["accepted"] / seconds
    return result


def count_202(log: Path) -> int:
    return sum(1 for line in log.read_text(errors="replace").splitlines()
               if '"POST /api/v1/events' in line and '" 202 ' in line)


def event_rows(database_url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one())
    finally:
        engine.dispose()


# ---- one target ---------------------------------------------------------------------------------

def bench_abtest(name: str, database_url: str | None, args: argparse.Namespace, workdir: Path) -> dict:
    instance = workdir / name
    instance.mkdir()
    env = abtest_env(instance, database_url)
    # wrk is one client address with one key: lift the per-address and per-key limits, which
    # would otherwise cap the run at 600 requests a minute (429s) and measure the limiter.
    env.update(ABTEST_RATELIMIT_ADDRESS="10000000/minute", ABTEST_RATELIMIT_KEY="10000000/minute")
    if database_url is not None:
        _check(run_abtest(env, "db", "upgrade"))
    _check(run_abtest(env, "sync", str(EXPERIMENT_FILE)))
    token = _check(run_abtest(env, "token", "create", "--public")).stdout.strip().splitlines()[-1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = instance / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([*ABTEST, "serve", "--port", str(port), "--workers", "2"], env=env, cwd=instance,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, proc, log)
        warmup = sum(post_batch(url, token, args.batch) for _ in range(10))
        assert warmup == 10 * args.batch, f"warm-up: only {warmup} events accepted"
        result = run_wrk(url, token, args, workdir)
        time.sleep(2)  # let requests still in flight when wrk stopped finish and commit
    finally:
        stop(proc)
    url_for_count = database_url or f"sqlite:///{instance / 'abtest.db'}"
    acknowledged = count_202(log) * args.batch  # the log holds the warm-up's 202s too
    result.update(rows=event_rows(url_for_count), acknowledged=acknowledged,
                  client_accepted_total=warmup + result["accepted"])
    return result


def bench_reference(name: str, extra: list[str], args: argparse.Namespace, workdir: Path) -> dict:
    """A reference server (``--serve-<name> PORT *extra``, this script in a child process) under
    the same load; its answers are not checked against a database."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, __file__, f"--serve-{name}", str(port), *extra], cwd=workdir,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, proc, log)
        for _ in range(10):
            post_batch(url, "none", args.batch)
        return run_wrk(url, "none", args, workdir)
    finally:
        stop(proc)


def bench_baseline(args: argparse.Namespace, workdir: Path) -> dict:
    return bench_reference("baseline", [], args, workdir)


def bench_naive(database_url: str, args: argparse.Namespace, workdir: Path) -> dict:
    instance = workdir / "naive"
    instance.mkdir()
    env = abtest_env(instance, database_url)
    _check(run_abtest(env, "db", "upgrade"))
    _check(run_abtest(env, "sync", str(EXPERIMENT_FILE)))
    return bench_reference("naive", [database_url], args, workdir)


def _check(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if done.returncode != 0:
        raise RuntimeError(f"abtest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def create_pg_database(server_url: str) -> tuple[str, str]:
    import sqlalchemy as sa

    name = f"abtest_bench_ingest_{os.getpid()}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(server_url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


# ---- main ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per target")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1 leaves the CPU to the server)")
    parser.add_argument("--batch", type=int, default=25, help="events per request")
    parser.add_argument("--only", default="baseline,naive,sqlite,postgres", help="comma-separated targets")
    parser.add_argument("--postgres-url", default=os.environ.get("ABTEST_TEST_POSTGRES_URL", DEFAULT_PG),
                        help="any database on the PostgreSQL server; a throwaway one is created next to it")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-naive", nargs=2, metavar=("PORT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    if args.serve_naive:
        serve_naive(int(args.serve_naive[0]), args.serve_naive[1])
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (apt-get install -y wrk)")
    targets = args.only.split(",")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="abtest-bench-ingest-") as tmp:
        workdir = Path(tmp)
        # Baseline first and last: the spread between the two says how noisy the machine is.
        if "baseline" in targets:
            results["baseline"] = bench_baseline(args, workdir)
            _progress("baseline", results["baseline"])
        if "sqlite" in targets:
            results["abtest-SQLite"] = bench_abtest("sqlite", None, args, workdir)
            _progress("abtest-SQLite", results["abtest-SQLite"])
        if "naive" in targets:
            name, url = create_pg_database(args.postgres_url)
            try:
                results["naive-PostgreSQL"] = bench_naive(url, args, workdir)
            finally:
                drop_pg_database(args.postgres_url, name)
            _progress("naive-PostgreSQL", results["naive-PostgreSQL"])
        if "postgres" in targets:
            name, url = create_pg_database(args.postgres_url)
            try:
                results["abtest-PostgreSQL"] = bench_abtest("postgres", url, args, workdir)
            finally:
                drop_pg_database(args.postgres_url, name)
            _progress("abtest-PostgreSQL", results["abtest-PostgreSQL"])
        if "baseline" in targets:
            results["baseline (again)"] = bench_baseline(args, workdir)
            _progress("baseline (again)", results["baseline (again)"])
    report(results, args)


def _progress(name: str, result: dict) -> None:
    print(f"  {name}: {result['events_per_s']:,.0f} events/s", file=sys.stderr, flush=True)


def report(results: dict[str, dict], args: argparse.Namespace) -> None:
    baselines = [r["events_per_s"] for k, r in results.items() if k.startswith("baseline")]
    base = sum(baselines) / len(baselines) if baselines else None
    print(f"POST /api/v1/events, batches of {args.batch}, {args.connections} connections, {args.duration} s each, "
          f"gunicorn 2 workers x 4 threads (gthread), wrk -t{args.threads}")
    print(f"{'target':20} {'events/s':>9} {'x base':>7} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'errors':>6}")
    for name, r in results.items():
        errors = r["non202"] + r["connect"] + r["read"] + r["write"] + r["timeout"] + r["short"]
        ratio = f"{r['events_per_s'] / base:7.2f}" if base else "      -"
        print(f"{name:20} {r['events_per_s']:9,.0f} {ratio} {r['requests_per_s']:7,.0f} {r['p50_us'] / 1e3:7.1f} "
              f"{r['p90_us'] / 1e3:7.1f} {r['p99_us'] / 1e3:7.1f} {r['max_us'] / 1e3:7.0f} {errors:6d}")
    if len(baselines) == 2:
        print(f"baseline spread between first and last run: {abs(baselines[0] - baselines[1]) / base:.1%}")
    for name, r in results.items():
        if "rows" in r:
            lost = r["acknowledged"] - r["rows"]
            print(f"{name}: {r['rows']:,} rows stored; server acknowledged {r['acknowledged']:,} (25 x logged "
                  f"202s); client saw {r['client_accepted_total']:,} acknowledged -> "
                  f"{'nothing lost' if lost == 0 else f'MISMATCH {lost:+,}'}")
    pg, naive = results.get("abtest-PostgreSQL"), results.get("naive-PostgreSQL")
    if pg and naive:
        print(f"abtest / naive endpoint on PostgreSQL: {pg['events_per_s'] / naive['events_per_s']:.2f}x events/s")
    if pg:
        print(f"targets (PostgreSQL): >= 5,000 events/s: {'met' if pg['events_per_s'] >= 5000 else 'NOT met'} "
              f"({pg['events_per_s']:,.0f}); p99 < 100 ms at {args.connections} connections: "
              f"{'met' if pg['p99_us'] < 100_000 else 'NOT met'} ({pg['p99_us'] / 1e3:.1f} ms)")
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
