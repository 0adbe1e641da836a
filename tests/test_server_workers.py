"""`abtest serve`'s workers: connections are spread over them (one SO_REUSEPORT socket per worker;
with one shared socket gthread was seen holding 29 of 32 benchmark connections in one worker while
the other core idled), and an API request that waited too long for a thread is answered 503 at
once (web.gunicorn_worker, web.overload). Real server, real sockets (Linux /proc)."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from tests.conftest import CHECKOUT_TOML
from tests.live_server import connections_per_worker, live_server, synced_instance
from web.overload import set_queue_wait

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts sockets through Linux /proc")

CONNECTIONS = 48  # spread by the kernel's hash: 12 or fewer in one worker is a 1-in-5,000 draw


def _unlimited(env: dict[str, str]) -> dict[str, str]:
    """The rate limits out of the way: these tests load one address with hundreds of requests a
    second (the default 600 a minute per address answered 429 in a CI run), and test the workers."""
    return {**env, "ABTEST_RATELIMIT_ADDRESS": "1000000/minute", "ABTEST_RATELIMIT_KEY": "1000000/minute"}


def _batch(size: int) -> bytes:
    ts = datetime.now(UTC).isoformat()
    return json.dumps({"events": [{"id": str(uuid.uuid4()), "type": "exposure", "experiment": "checkout-button",
                                   "variant": "control", "unit": f"u{i}", "ts": ts} for i in range(size)]}).encode()


@linux_only
def test_connections_opened_at_once_are_shared_by_both_workers(tmp_path):
    _database, env, key = synced_instance(tmp_path, {"checkout-button": CHECKOUT_TOML}, "balance")
    with live_server(_unlimited(env), workers=2) as server:
        port = int(server.url.rsplit(":", 1)[1])
        body = _batch(200)  # ~10-30 ms of work a request, so a worker's 4 threads are busy at once
        stop = time.monotonic() + 4
        errors: list[BaseException] = []
        opened = threading.Barrier(CONNECTIONS + 1)

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            try:
                conn.connect()
                opened.wait()
                while time.monotonic() < stop:  # one kept-alive connection, request after request
                    conn.request("POST", "/api/v1/events", body=body,
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
                    answer = conn.getresponse()
                    answer.read()
                    assert answer.status == 202, answer.status
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        opened.wait()
        time.sleep(2.5)  # every connection has been accepted and is being served
        held = connections_per_worker(server.process.pid, port)
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(held) == 2 and sum(held.values()) == CONNECTIONS, held
    assert min(held.values()) >= CONNECTIONS // 4, f"connections per worker: {held}"


def _until_taken(port: int, key: str, body: bytes) -> tuple[int, dict]:
    """Post until the answer is not 503 overloaded (at most 50 times): (status, body)."""
    for _ in range(50):
        status, _headers, answer = _post(port, key, body)
        if status != 503:
            break
        time.sleep(0.05)
    return status, answer


def _post(port: int, key: str, body: bytes) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/v1/events", body=body,
                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), json.loads(answer.read())
    finally:
        conn.close()


def test_requests_that_waited_too_long_for_a_thread_are_answered_503_and_store_nothing(tmp_path):
    database, env, key = synced_instance(tmp_path, {"checkout-button": CHECKOUT_TOML}, "overload")
    env["ABTEST_QUEUE_TIMEOUT_MS"] = "1"  # 24 requests at once on 4 threads: most wait longer than that
    bodies = [_batch(200) for _ in range(24)]
    with live_server(env, workers=1) as server:
        port = int(server.url.rsplit(":", 1)[1])
        answers: list[tuple[int, dict, dict]] = [None] * len(bodies)  # type: ignore[list-item]
        start = threading.Barrier(len(bodies))

        def send(n: int) -> None:
            start.wait()
            answers[n] = _post(port, key, bodies[n])

        threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        shed = [n for n, (status, _h, _b) in enumerate(answers) if status == 503]
        assert shed and len(shed) < len(bodies), [a[0] for a in answers]
        for n in shed:
            status, headers, body = answers[n]
            assert headers["Retry-After"] == "1" and body["error"]["code"] == "overloaded"
        assert all(answers[n][0] == 202 for n in range(len(bodies)) if n not in shed), [a[0] for a in answers]
        # Retried as a client would, until taken: even one request at a time can wait 1 ms for a
        # thread now and then (the worker's loop hands it over) and be shed again, storing nothing.
        retried = [_until_taken(port, key, bodies[n]) for n in shed]
        assert all(status == 202 and body["accepted"] == 200 for status, body in retried), retried
    import sqlite3

    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (24 * 200, 24 * 200)


def test_only_api_requests_are_shed(app, client):
    set_queue_wait(5.0)  # as if this request had waited 5 s for a thread
    try:
        shed = client.get("/api/v1/config?key=pk_unknown")
        page = client.get("/login")
    finally:
        set_queue_wait(0.0)
    assert shed.status_code == 503 and shed.headers["Retry-After"] == "1"
    assert shed.get_json()["error"]["code"] == "overloaded"
    assert page.status_code == 200
    assert client.get("/api/v1/config?key=pk_unknown").status_code == 401  # not waiting: served
