"""`abtest serve` spreads kept-alive connections over its workers (web.gunicorn_worker): a busy
worker leaves new connections to an idle one. Stock gthread was seen holding 29 of 32 benchmark
connections in one worker while the other core idled. Real server, real sockets (Linux /proc)."""

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

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts sockets through Linux /proc")

CONNECTIONS = 12


def _batch(size: int) -> bytes:
    ts = datetime.now(UTC).isoformat()
    return json.dumps({"events": [{"id": str(uuid.uuid4()), "type": "exposure", "experiment": "checkout-button",
                                   "variant": "control", "unit": f"u{i}", "ts": ts} for i in range(size)]}).encode()


def test_connections_opened_at_once_are_shared_by_both_workers(tmp_path):
    _database, env, key = synced_instance(tmp_path, {"checkout-button": CHECKOUT_TOML}, "balance")
    with live_server(env, workers=2) as server:
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
