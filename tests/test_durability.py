"""Nothing acknowledged is lost or doubled when a server worker is killed mid-load (issue 12).

Client threads post batches of events with unique ids to a real ``abtest serve`` (gunicorn, 2
workers) and retry each batch with the same ids until it is answered 202, while the test SIGKILLs
worker processes; gunicorn starts new ones. Afterwards every acknowledged id is stored, exactly
once, and nothing else is. On PostgreSQL the same runs across a database crash and restart
(``pg_ctl stop -m immediate``) of a cluster the test starts itself. Bounded: each load run gives up after DEADLINE_S.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from abtest import pipeline
from abtest.accounts import create_token
from abtest.db import make_engine, session_scope, upgrade
from abtest.kinds import parse_definition
from abtest.models import Event
from tests.conftest import CHECKOUT_TOML
from tests.live_server import LiveServer, abtest_env, connections_per_worker, live_server

CLIENTS = 6
BATCHES = 12  # per client
BATCH_SIZE = 20
DEADLINE_S = 50  # per load run: every batch must be acknowledged by then (a loaded CI box respawns workers slowly)


class Load:
    """Client threads, each walking its own batches; a batch is retried (same ids) until a 202."""

    def __init__(self, url: str, key: str, batches: int = BATCHES, batch_size: int = BATCH_SIZE) -> None:
        ts = datetime.now(UTC).isoformat()
        self.batches = [[[{"id": str(uuid.uuid4()), "type": "exposure", "experiment": "checkout-button",
                           "variant": "green" if (c + b + i) % 2 else "control", "unit": f"u-{c}-{b}-{i}", "ts": ts}
                          for i in range(batch_size)] for b in range(batches)] for c in range(CLIENTS)]
        self.total = CLIENTS * batches * batch_size
        self.url, self.key = url, key
        self.acknowledged: set[str] = set()
        self.failures = 0  # refused, reset, timed out or 5xx: each one retried
        self.bad: list[str] = []  # answers that break the contract
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + DEADLINE_S

    def _post(self, batch: list[dict[str, object]]) -> bool:
        request = urllib.request.Request(f"{self.url}/api/v1/events?key={self.key}", method="POST",
                                         data=json.dumps({"events": batch}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                with self.lock:
                    self.bad.append(f"{exc.code}: {exc.read()[:200]!r}")
            return False
        except (OSError, http.client.HTTPException, ValueError):
            # refused, reset or cut short mid-answer by a killed worker (IncompleteRead, half a
            # JSON body), timed out: a failure to retry, never an answer
            return False
        if response.status != 202 or body.get("accepted", 0) + body.get("duplicates", 0) != len(batch):
            with self.lock:
                self.bad.append(f"{response.status}: {body}")
            return False
        return True

    def _client(self, batches: list[list[dict[str, object]]]) -> None:
        for batch in batches:
            while time.monotonic() < self.deadline:
                if self._post(batch):
                    with self.lock:
                        self.acknowledged.update(str(e["id"]) for e in batch)
                    break
                with self.lock:
                    self.failures += 1
                time.sleep(0.05)

    def run(self, disrupt: Callable[[Load], None]) -> None:
        threads = [threading.Thread(target=self._client, args=(b,), daemon=True) for b in self.batches]
        for thread in threads:
            thread.start()
        disrupt(self)
        for thread in threads:
            thread.join(timeout=max(1.0, self.deadline - time.monotonic() + 6))

    def wait_for(self, share: float) -> None:
        """Until this share of all events is acknowledged (the load is well under way)."""
        while len(self.acknowledged) < share * self.total and time.monotonic() < self.deadline:
            time.sleep(0.02)

    @property
    def sent(self) -> set[str]:
        return {str(e["id"]) for client in self.batches for batch in client for e in batch}


def _kill_workers(server: LiveServer, times: int) -> Callable[[Load], None]:
    port = int(server.url.rsplit(":", 1)[1])

    def disrupt(load: Load) -> None:
        # `times` kills, and up to three more while none has cut a request yet (a worker may be
        # killed between two requests, its connections already answered): a fast backend could
        # otherwise finish the load undisturbed and the test would test nothing.
        for round_ in range(times + 3):
            if round_ >= times and (load.failures or len(load.acknowledged) >= load.total):
                break
            load.wait_for(min(0.2 + 0.3 * round_, 0.8) if round_ < times else 0.0)
            # A worker with a request in flight (its connection open): workers share the load, so
            # an arbitrary one may be between requests, and killing it would test nothing.
            held: dict[int, int] = {}
            for _ in range(200):
                held = connections_per_worker(server.process.pid, port)
                if any(held.values()):
                    break
                time.sleep(0.005)
            assert held, "no gunicorn worker found to kill"
            os.kill(max(held, key=lambda pid: held[pid]), signal.SIGKILL)
            time.sleep(0.3)
    return disrupt


def _check(load: Load, engine: sa.Engine) -> None:
    assert load.bad == []
    with engine.connect() as conn:
        stored = [row[0] for row in conn.execute(sa.select(Event.__table__.c.event_id))]
    assert len(stored) == len(set(stored)), "an event id stored twice"
    assert load.acknowledged <= set(stored), f"{len(load.acknowledged - set(stored))} acknowledged ids lost"
    assert set(stored) <= load.sent  # nothing stored that was not sent
    assert load.acknowledged == load.sent, f"{len(load.sent - load.acknowledged)} ids never acknowledged"
    assert load.failures > 0, "the kill disturbed nothing: the test did not test"


def _public_key(engine: sa.Engine) -> str:
    with session_scope(engine) as session:
        if pipeline.registry.find_row(session, "checkout-button") is None:
            pipeline.create(session, parse_definition(tomllib.loads(CHECKOUT_TOML)))
        return create_token(session, "public", "durability").secret


def test_worker_killed_mid_load_loses_and_doubles_nothing(engine, database_url, tmp_path):
    key = _public_key(engine)
    with live_server(abtest_env(tmp_path, database_url), workers=2) as server:
        # PostgreSQL takes a 20-event batch in a few ms: bigger batches, so that a kill finds
        # requests in flight.
        load = Load(server.url, key, batch_size=5 * BATCH_SIZE if engine.dialect.name == "postgresql" else BATCH_SIZE)
        load.run(_kill_workers(server, times=2))
    _check(load, engine)


# --- PostgreSQL across a crash and restart of its own cluster -----------------------------------


@pytest.mark.postgres
def test_postgres_crash_and_restart_mid_load_loses_and_doubles_nothing(own_postgres, tmp_path):
    url, crash_and_restart = own_postgres
    engine = make_engine(url)
    upgrade(engine)
    key = _public_key(engine)
    with live_server(abtest_env(tmp_path, url), workers=2) as server:
        kill = _kill_workers(server, times=1)

        def disrupt(load: Load) -> None:
            kill(load)
            load.wait_for(0.4)
            crash_and_restart()

        # A longer load than the kill test's: PostgreSQL takes a batch in a few ms, and the crash
        # must land while batches are still being sent.
        load = Load(server.url, key, batches=2 * BATCHES, batch_size=5 * BATCH_SIZE)
        load.run(disrupt)
    _check(load, engine)
    engine.dispose()
