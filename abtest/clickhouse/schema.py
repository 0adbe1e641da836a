"""The events table in ClickHouse, and why it is shaped so.

Idempotency (the same event id counted once in every report) is kept in two layers:

1. **Writes skip ids already stored** (:mod:`abtest.clickhouse.sink` looks the batch's ids up
   through a bloom-filter index first). That is what makes a retried batch, or a server exposure
   sent again days later under its deterministic id, store nothing new, as ``ON CONFLICT DO
   NOTHING`` does on SQL, and it gives the API its ``duplicates`` count.
2. **Reads use ``FINAL``** on a ``ReplacingMergeTree`` whose sorting key ends with the event id,
   for the duplicates the lookup cannot see: two batches carrying the same ids racing each other.
   FINAL collapses rows of one key at read time, before any background merge did, so a report
   never double-counts; the version column makes the *first* receipt win (as on SQL).

Why not ClickHouse's insert-side deduplication (block hashes, ``insert_deduplication_token``):
it drops a retried *block* only when it is byte-identical and within a window, while clients
resend single events in other batches; it cannot keep the per-event promise on its own.

Why the key is ``(experiment_id, unit, event_id)`` and not ``(…, ts, …)``: the sorting key is
what ReplacingMergeTree deduplicates on; a server exposure re-sent under the same id carries a
later ``ts``, and with ``ts`` in the key the two rows would never collapse. Every report groups
per unit within one experiment, which this key serves. Partitions are months of ``ts`` (old
months can be dropped or moved as a whole); FINAL does not merge across partitions, which only
matters for two *racing* copies of one id stamped in different months.

Erasure (``abtest units forget``, issue 13) would be a mutation here:
``ALTER TABLE events DELETE WHERE experiment_id = … AND unit = …`` (or a lightweight ``DELETE
FROM``); not implemented yet.
"""

from __future__ import annotations

from abtest.clickhouse.client import ClickHouseClient

COLUMNS = ("event_id", "type", "experiment_id", "variant", "unit", "event", "value", "task", "success",
           "duration_ms", "questionnaire", "answers", "attributes", "forced", "ts", "received_at")

# Timestamps are stored to the microsecond in UTC, like the registry. ``answers`` keeps the JSON
# text; attributes (canonical strings, abtest.attributes) are a Map so a segment is a key lookup.
_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    event_id String,
    type LowCardinality(String),
    experiment_id UInt64,
    variant LowCardinality(Nullable(String)),
    unit String,
    event LowCardinality(Nullable(String)),
    value Nullable(Float64),
    task LowCardinality(Nullable(String)),
    success Nullable(Bool),
    duration_ms Nullable(Float64),
    questionnaire LowCardinality(Nullable(String)),
    answers Nullable(String),
    attributes Map(LowCardinality(String), String),
    forced Bool,
    ts DateTime64(6, 'UTC'),
    received_at DateTime64(6, 'UTC'),
    -- Larger for earlier receipts: ReplacingMergeTree keeps the largest, so the first write wins.
    version UInt64 MATERIALIZED toUInt64(4102444800000000) - toUInt64(toUnixTimestamp64Micro(received_at)),
    INDEX event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (experiment_id, unit, event_id)
"""


def table(client: ClickHouseClient) -> str:
    return f"{client.database}.events"


def create_schema(client: ClickHouseClient) -> None:
    """Create the database and the events table if they are missing (``abtest db upgrade``)."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {client.database}")
    client.command(_TABLE.format(table=table(client)))
