"""Copy the registry's events into ClickHouse (``abtest events export --to URL``).

Resumable and idempotent by construction: events go in id order, in chunks, through the same
sink as live writes, which skips ids already stored. An interrupted export re-run copies only
what is missing, and one run twice copies nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from abtest.clickhouse import sink
from abtest.clickhouse.client import ClickHouseClient
from abtest.models import Event

EVENTS = Event.__table__  # type: ignore[attr-defined]
CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class Exported:
    read: int
    copied: int  # new in ClickHouse; read - copied were there already


def export(engine: sa.Engine, client: ClickHouseClient, since: datetime | None = None,
           progress: Callable[[Exported], None] | None = None) -> Exported:
    """Copy every event (stamped at or after ``since``, when given) not yet in ClickHouse."""
    read = copied = 0
    after = 0
    columns = [c for c in EVENTS.c if c.name != "id"]
    while True:
        query = sa.select(EVENTS.c.id, *columns).where(EVENTS.c.id > after)
        if since is not None:
            query = query.where(EVENTS.c.ts >= since)
        with engine.connect() as conn:
            rows = conn.execute(query.order_by(EVENTS.c.id).limit(CHUNK)).mappings().all()
        if not rows:
            return Exported(read, copied)
        after = rows[-1]["id"]
        read += len(rows)
        copied += len(sink.write(client, [dict(row) for row in rows]))
        if progress is not None:
            progress(Exported(read, copied))
