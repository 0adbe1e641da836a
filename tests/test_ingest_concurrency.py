"""Many clients posting overlapping batches at a real server: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import random
import threading
import urllib.request
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from abtest.accounts import create_token
from abtest.models import Event
from tests.live_server import abtest_env, live_server

THREADS = 8
BATCHES_PER_THREAD = 12
BATCH_SIZE = 50
DISTINCT = 1000


def test_overlapping_batches_from_many_threads(engine, session, seeded_experiment, database_url, tmp_path):
    key = create_token(session, "public", "load").secret
    session.commit()
    ts = datetime.now(UTC).isoformat()
    pool = [{"id": str(uuid.uuid4()), "type": "exposure", "experiment": "checkout-button",
             "variant": random.Random(i).choice(["control", "green"]), "unit": f"unit-{i}", "ts": ts}
            for i in range(DISTINCT)]
    answers: list[dict[str, int]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(seed: int, url: str) -> None:
        rng = random.Random(seed)
        # Every thread walks the whole pool once, in its own order, plus random repeats.
        order = rng.sample(pool, len(pool))
        batches = [order[i:i + BATCH_SIZE] for i in range(0, len(order), BATCH_SIZE)]
        batches += [rng.sample(pool, BATCH_SIZE) for _ in range(BATCHES_PER_THREAD - len(batches) % BATCHES_PER_THREAD)]
        for batch in batches:
            request = urllib.request.Request(f"{url}/api/v1/events?key={key}", method="POST",
                                             data=json.dumps({"events": batch}).encode(),
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    body = json.load(response)
                    with lock:
                        answers.append({"sent": len(batch), **{k: body[k] for k in ("accepted", "duplicates")}})
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                with lock:
                    errors.append(repr(exc))

    with live_server(abtest_env(tmp_path, database_url), workers=2) as server:
        threads = [threading.Thread(target=client, args=(seed, server.url)) for seed in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    sent = sum(a["sent"] for a in answers)
    assert sent > THREADS * DISTINCT  # every id was sent by every thread, some more often
    assert sum(a["accepted"] for a in answers) == DISTINCT  # each id accepted exactly once
    assert sum(a["accepted"] + a["duplicates"] for a in answers) == sent  # and every copy accounted for
    with engine.connect() as conn:
        table = Event.__table__
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == DISTINCT
        assert conn.execute(sa.select(sa.func.count(sa.distinct(table.c.event_id)))).scalar_one() == DISTINCT
