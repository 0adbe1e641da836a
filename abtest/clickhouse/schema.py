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

On a cluster (``ABTEST_CLICKHOUSE_CLUSTER``) the same definition is created ``ON CLUSTER``
twice over: ``<db>.events_local`` on every shard (``ReplicatedReplacingMergeTree``, replicas
kept in step through ZooKeeper/Keeper under ``/clickhouse/tables/{shard}/<db>/events_local``
with the servers' ``{shard}`` and ``{replica}`` macros), and ``<db>.events`` as a ``Distributed``
table over them, sharded by ``cityHash64(experiment_id, unit)``. Everything else keeps naming
``<db>.events``, so writes and reads go through the Distributed table unchanged. Why that
sharding key: it is a function of a prefix of the sorting key, so every row that FINAL could
collapse with another (same experiment, unit and event id) lands on the same shard, and every
event of one unit in one test too. ``FINAL`` through a Distributed table is applied by each shard
to its own rows, so per shard is exactly as on one server: each id counted once. The per-unit
``GROUP BY`` of every report then has each unit's rows on one shard; ClickHouse still merges the
shards' partial per-unit states on the node asked (its default two-stage aggregation, correct
with any sharding). Having the shards finish it (``optimize_skip_unused_shards`` with
``optimize_distributed_group_by_sharding_key``) would need the queries to group by
``experiment_id, unit`` and promises every row went in by this key; the defaults are left alone,
and ``distributed_group_by_no_merge`` is not used (it would return each shard's variants unmerged).
What must differ on a cluster, and does:

- writes: an insert into a Distributed table is by default queued on the node that took it and
  sent on later, which would answer 202 for rows no shard holds yet and let a retry slip past the
  id lookup; the HTTP client inserts with ``insert_distributed_sync=1`` (also known as
  ``distributed_foreground_insert``), so the insert returns once every shard wrote its rows.
  The id lookup then reads every shard (an id is unique in all tests, as on SQL);
- erasure: a ``DELETE`` on a Distributed table is refused; it runs ``ON CLUSTER`` against
  ``events_local`` (:mod:`abtest.clickhouse.erasure`, which reads which from :func:`shards_of`);
- ``TRUNCATE`` of a Distributed table only drops its queue of pending inserts: emptying the
  events (tests) is ``TRUNCATE TABLE <db>.events_local ON CLUSTER … SYNC``.

``abtest db clickhouse-sql [--cluster NAME]`` prints the statements (:func:`statements`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from abtest.clickhouse.client import ClickHouseClient
from abtest.errors import AbtestError, ValidationError

COLUMNS = ("event_id", "type", "experiment_id", "variant", "unit", "event", "value", "task", "success",
           "duration_ms", "questionnaire", "answers", "attributes", "forced", "ts", "received_at")

LOCAL = "events_local"  # the table on each shard, with a cluster
SHARDING_KEY = "cityHash64(experiment_id, unit)"
ZOOKEEPER_PATH = "/clickhouse/tables/{{shard}}/{database}/" + LOCAL  # {shard}: the servers' macro

# Timestamps are stored to the microsecond in UTC, like the registry. ``answers`` keeps the JSON
# text; attributes (canonical strings, abtest.attributes) are a Map so a segment is a key lookup.
# One definition for one server (engine ReplacingMergeTree) and for each shard of a cluster.
_TABLE = """
CREATE TABLE IF NOT EXISTS {table}{on_cluster} (
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
) ENGINE = {engine}
PARTITION BY toYYYYMM(ts)
ORDER BY (experiment_id, unit, event_id)
"""

# A cluster's name as <remote_servers> spells it (an XML element name), a database's as an identifier.
_CLUSTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def table(client: ClickHouseClient) -> str:
    return f"{client.database}.events"


def check_cluster(cluster: str) -> str:
    if not _CLUSTER_NAME.fullmatch(cluster):
        raise ValidationError(f"{cluster!r} is not a cluster name (letters, digits, _ . -, as in remote_servers)",
                              field="ABTEST_CLICKHOUSE_CLUSTER")
    return cluster


def on_cluster(cluster: str | None) -> str:
    """`` ON CLUSTER name`` (quoted when it is not a plain identifier), or nothing."""
    if not cluster:
        return ""
    check_cluster(cluster)
    return f" ON CLUSTER {cluster if cluster.isidentifier() else f'`{cluster}`'}"


def statements(database: str, cluster: str | None = None) -> list[str]:
    """What ``abtest db upgrade`` runs for the events, in order: on one server (no ``cluster``),
    the database and ``<db>.events``; on a cluster, each ``ON CLUSTER``: the database,
    ``<db>.events_local`` on every shard and ``<db>.events`` distributed over them."""
    if not _DATABASE_NAME.fullmatch(database):
        raise ValidationError(f"{database!r} is not a ClickHouse database name for abtest (letters, digits, _)",
                              field="ABTEST_EVENTS_URL")
    if not cluster:
        return [f"CREATE DATABASE IF NOT EXISTS {database}",
                _TABLE.format(table=f"{database}.events", on_cluster="", engine="ReplacingMergeTree(version)")]
    on = on_cluster(cluster)
    replicated = f"ReplicatedReplacingMergeTree('{ZOOKEEPER_PATH.format(database=database)}', '{{replica}}', version)"
    return [f"CREATE DATABASE IF NOT EXISTS {database}{on}",
            _TABLE.format(table=f"{database}.{LOCAL}", on_cluster=on, engine=replicated),
            f"CREATE TABLE IF NOT EXISTS {database}.events{on} AS {database}.{LOCAL}\n"
            f"ENGINE = Distributed('{cluster}', '{database}', '{LOCAL}', {SHARDING_KEY})\n"]


def script(database: str, cluster: str | None = None) -> str:
    """The statements as one script (``abtest db clickhouse-sql``): each ends with ``;``."""
    return "\n\n".join(statement.strip() + ";" for statement in statements(database, cluster)) + "\n"


def create_schema(client: ClickHouseClient, cluster: str | None = None) -> None:
    """Create the database and the events table(s) if they are missing (``abtest db upgrade``)."""
    if cluster:
        found = _events_engine(client)
        if found is not None and found[0] != "Distributed":  # IF NOT EXISTS would keep it: half a cluster
            raise AbtestError(f"{table(client)} exists as a {found[0]} table, made for one server; create the "
                              f"tables for cluster {cluster} in a new database and copy the events into it "
                              "(INSERT INTO new.events SELECT * FROM old.events) rather than converting this one "
                              "in place", field="ABTEST_CLICKHOUSE_CLUSTER")
    for statement in statements(client.database, cluster):
        client.command(statement)


@dataclass(frozen=True, slots=True)
class Shards:
    """Where a Distributed events table keeps its rows: the cluster and each shard's table."""

    cluster: str
    local: str  # database.table on every shard


_DISTRIBUTED = re.compile(r"Distributed\(\s*'([^']+)'\s*,\s*'([^']*)'\s*,\s*'([^']+)'")


def parse_distributed(engine_full: str, database: str) -> Shards | None:
    """The cluster and shard table of a ``Distributed(...)`` engine as ``system.tables`` shows it
    (ClickHouse stores the arguments as quoted strings)."""
    found = _DISTRIBUTED.match(engine_full.strip())
    if found is None:
        return None
    cluster, remote_database, remote_table = found.groups()
    return Shards(cluster, f"{remote_database or database}.{remote_table}")


def _events_engine(client: ClickHouseClient) -> tuple[str, str] | None:
    """``<db>.events``'s engine and its full clause, or None when there is no such table."""
    rows = client.query("SELECT engine, engine_full FROM system.tables WHERE database = {d:String} AND name = 'events'",
                        {"d": client.database})
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def shards_of(client: ClickHouseClient) -> Shards | None:
    """The cluster behind ``<db>.events`` when it is a Distributed table, else None (one server).
    Read from the server, so erasure follows the schema that exists whatever the settings say."""
    found = _events_engine(client)
    return parse_distributed(found[1], client.database) if found and found[0] == "Distributed" else None


def truncate_statement(client: ClickHouseClient) -> str:
    """The statement emptying the events (tests): the shards' tables on a cluster."""
    shards = shards_of(client)
    if shards is None:
        return f"TRUNCATE TABLE {table(client)}"
    return f"TRUNCATE TABLE {shards.local}{on_cluster(shards.cluster)} SYNC"
