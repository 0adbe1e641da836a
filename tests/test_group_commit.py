"""Group commit (abtest.store.group_commit): batches that arrive while another is being written
share the next transaction; each caller is answered after that commit with its own counts; a
failed group fails every caller in it and stores nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from abtest.ingest import IngestResult, _store_group, ingest
from abtest.kinds import snippet_kinds
from abtest.store.group_commit import GroupCommitter, committer
from abtest.store.events import EVENTS

KINDS = snippet_kinds()


def _events(n: int, unit: str, ids: list[str] | None = None) -> list[dict]:
    ts = datetime.now(UTC).isoformat()
    ids = ids or [str(uuid.uuid4()) for _ in range(n)]
    return [{"id": i, "type": "exposure", "experiment": "checkout-button", "variant": "control", "unit": unit, "ts": ts}
            for i in ids]


def _stored(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(EVENTS.c.event_id)).scalars())


def _hold_events_table(engine: sa.Engine) -> sa.Connection:
    """Another connection that keeps writers to ``events`` waiting until it rolls back."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite: the database's write lock
    return conn


def _in_threads(group: GroupCommitter, calls: list, release: Callable[[], None]) -> tuple[list, list[BaseException]]:  # type: ignore[type-arg]
    """Run the first call until its group is being written (and held there), then the others
    until they all wait for the next group, then ``release`` the first: their results in order,
    and what they raised."""
    results: list = [None] * len(calls)  # type: ignore[type-arg]
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            results[n] = calls[n]()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    def until(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 20
        while not condition():
            assert time.monotonic() < deadline, "the group commit never got there"
            time.sleep(0.005)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    threads[0].start()
    until(lambda: group.busy)
    for thread in threads[1:]:
        thread.start()
    until(lambda: group.waiting == len(calls) - 1)
    release()
    for thread in threads:
        thread.join(30)
    return results, errors


def test_batches_arriving_during_a_write_share_the_next_commit(engine, seeded_experiment):
    hold = _hold_events_table(engine)  # the first batch waits for it while four more arrive
    group = committer(engine, "ingest", _store_group)  # the one ingest() uses
    before = group.groups
    results, errors = _in_threads(group, [lambda u=u: ingest(engine, _events(3, f"unit-{u}"), KINDS)
                                          for u in range(5)], hold.rollback)
    hold.close()
    assert errors == []
    assert [(r.accepted, r.duplicates) for r in results] == [(3, 0)] * 5
    assert group.groups - before == 2  # the first batch alone, then the four that queued behind it
    assert len(_stored(engine)) == 15


def test_an_id_sent_by_two_batches_of_one_group_is_stored_once(engine, seeded_experiment):
    shared = str(uuid.uuid4())
    hold = _hold_events_table(engine)
    first = [lambda: ingest(engine, _events(1, "warm-up"), KINDS)]  # writing (waiting) while the two queue
    pair = [lambda u=u: ingest(engine, _events(2, u, [shared, str(uuid.uuid4())]), KINDS) for u in ("a", "b")]
    results, errors = _in_threads(committer(engine, "ingest", _store_group), first + pair, hold.rollback)
    hold.close()
    assert errors == []
    assert sorted((r.accepted, r.duplicates) for r in results[1:]) == [(1, 1), (2, 0)]
    stored = _stored(engine)
    assert stored.count(shared) == 1 and len(stored) == 4


def test_a_failed_group_fails_every_batch_in_it_and_stores_nothing(engine, seeded_experiment):
    from abtest.store.events import event_row, store_new

    gate, written = threading.Event(), []

    def write(conn: sa.Connection, items: list[int]) -> list[IngestResult]:
        experiment_id = conn.exec_driver_sql("SELECT id FROM experiments").scalar_one()
        store_new(conn, [event_row(experiment_id, str(uuid.uuid4()), "exposure", f"u{i}", datetime.now(UTC),
                                   variant="control") for i in items])
        if not written:
            gate.wait(10)  # the first group is being written while the others queue
        written.append(len(items))
        if len(items) > 1:
            raise sa.exc.OperationalError("COMMIT", {}, Exception("disk full"))
        return [IngestResult(1, 0)] * len(items)

    group = GroupCommitter(engine, write)
    results, errors = _in_threads(group, [lambda i=i: group.run(i) for i in range(4)], gate.set)
    assert written == [1, 3]  # the first alone (stored), then the three that queued (refused together)
    assert results[0] == IngestResult(1, 0)
    assert len(errors) == 3 and all(isinstance(e, sa.exc.OperationalError) for e in errors)
    assert len(_stored(engine)) == 1


def test_a_group_never_holds_more_than_its_limit(engine):
    gate, seen = threading.Event(), []

    def write(conn: sa.Connection, items: list[int]) -> list[int]:
        if not seen:
            gate.wait(10)
        seen.append(list(items))
        return [item * 10 for item in items]

    group = GroupCommitter(engine, write, max_group=3)
    results, errors = _in_threads(group, [lambda i=i: group.run(i) for i in range(8)], gate.set)
    assert errors == [] and results == [i * 10 for i in range(8)]
    assert seen[0] == [0] and max(len(g) for g in seen) == 3
    assert sorted(i for g in seen for i in g) == list(range(8))
