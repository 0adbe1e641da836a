"""Group commit: concurrent writers of one process share one transaction and one commit (issue 12).

Why: every event batch paid for its own transaction (a pooled connection and its ping, BEGIN,
the registry version, the insert, the first-exposure lookup, COMMIT and, on SQLite, a disk flush)
whatever its size. While one group is being written, the requests that arrive queue up; the next
one to find the writer free takes the whole queue and writes it as one group, so a busy worker
writes more requests per commit instead of queueing commits behind each other.

The promise stays exact: :meth:`GroupCommitter.run` returns only after the commit of the group
its item was written in, and if anything in the group fails (a database error, the commit
itself) every caller of the group gets that error and nothing of the group is stored, since it
was one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import sqlalchemy as sa

from abtest.store.per_engine import per_engine

T = TypeVar("T")
R = TypeVar("R")

MAX_GROUP = 32  # requests written together at most (a group's statement stays short)


class _Job(Generic[T, R]):
    __slots__ = ("item", "result", "error", "done")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommitter(Generic[T, R]):
    """Runs ``write(conn, items) -> results`` (one result per item, in order) in one transaction
    of ``engine`` for every group of items that callers of :meth:`run` handed in meanwhile."""

    def __init__(self, engine: sa.Engine, write: Callable[[sa.Connection, Sequence[T]], Sequence[R]],
                 max_group: int = MAX_GROUP) -> None:
        self._engine, self._write, self._max = engine, write, max_group
        self._cond = threading.Condition()
        self._queue: list[_Job[T, R]] = []
        self._busy = False
        self.groups = 0  # groups written, for tests and benchmarks

    @property
    def busy(self) -> bool:
        """A group is being written."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Items queued for the next group."""
        return len(self._queue)

    def run(self, item: T) -> R:
        """Write ``item`` with whatever else is waiting; returns its result after the commit."""
        job: _Job[T, R] = _Job(item)
        with self._cond:
            self._queue.append(job)
        while True:
            with self._cond:
                while self._busy and not job.done:
                    self._cond.wait()
                if job.done:
                    break
                self._busy = True
                group, self._queue = self._queue[:self._max], self._queue[self._max:]
            self._write_group(group)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _write_group(self, group: list[_Job[T, R]]) -> None:
        try:
            with self._engine.begin() as conn:
                results = self._write(conn, [job.item for job in group])
            for job, result in zip(group, results, strict=True):
                job.result = result
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of the group
            for job in group:
                job.error = exc
        finally:
            with self._cond:
                for job in group:
                    job.done = True
                self._busy = False
                self.groups += 1
                self._cond.notify_all()


def committer(engine: sa.Engine, name: str,
              write: Callable[[sa.Connection, Sequence[T]], Sequence[R]]) -> GroupCommitter[T, R]:
    """The process's committer ``name`` for ``engine`` (groups never mix databases)."""
    return per_engine(engine, f"committer:{name}", lambda: GroupCommitter(engine, write))
