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
months can be dropped or moved as a whole, and :func:`rebuild_units` then rebuilds the units they
held); FINAL does not merge across partitions, which only matters for two *racing* copies of one
id stamped in different months.

**The units table.** A report's A/B families need, per unit, its bucket (variant, forced, several
variants), its first exposure (time, attributes), the time of its last event, and its conversions
and timed tries; computed from the events that is a ``GROUP BY unit`` over every event (17-19 s
for a report at 100 M events on 2 cores; 3.7 s from this table). ``<db>.units``
(``AggregatingMergeTree``, one row per test and unit once merged) holds exactly that, fed by the materialised view ``<db>.units_view`` on every
insert into the events, so a report reads one row per unit (read ``FINAL``, which merges what the
background merges have not yet). Its columns are **idempotent** aggregates (min, max, and
*sets* of conversions and tries keyed by a 64-bit hash of the event id), because the view sees
every insert, including the racing duplicates that layer 2 collapses on the events: a row counted
twice changes nothing, so a retried batch or event counts once here too. Two limits: copies of one
id must be identical to collapse (two *different* events sent under one id, racing past the
lookup, count once on the events, first receipt winning, and both here), and two events of one
unit whose ids share a 64-bit hash count once (about one unit in 10¹⁶ at a hundred events each).
What the view cannot see, it is told: an erasure deletes the unit's rows here as well
(:mod:`abtest.clickhouse.erasure`), ``abtest db upgrade`` builds the table from the events stored
before it existed (and marks it built, so an upgrade cut short is finished by the next one), and
:func:`rebuild_units` rebuilds any units from their events after a change by hand. The other
reports (quantiles, surveys, studies) still read the events.

On a cluster (``ABTEST_CLICKHOUSE_CLUSTER``) the same definition is created ``ON CLUSTER``
for the events: ``<db>.events_local`` on every shard (``ReplicatedReplacingMergeTree``, replicas
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
The units table is built the same way: ``<db>.units_local`` on every shard
(``ReplicatedAggregatingMergeTree``, under ``…/<db>/units_local``), each shard's view reading its
own ``events_local`` inserts into its own ``units_local`` (so a unit's row is on the shard of its
events), and ``<db>.units`` distributed over them by the same key.
What must differ on a cluster, and does:

- writes: an insert into a Distributed table is by default queued on the node that took it and
  sent on later, which would answer 202 for rows no shard holds yet and let a retry slip past the
  id lookup; the HTTP client inserts with ``insert_distributed_sync=1`` (also known as
  ``distributed_foreground_insert``), so the insert returns once every shard wrote its rows.
  The id lookup then reads every shard (an id is unique in all tests, as on SQL);
- erasure: a ``DELETE`` on a Distributed table is refused; it runs ``ON CLUSTER`` against
  ``units_local`` and ``events_local`` (:mod:`abtest.clickhouse.erasure`, which reads which from
  :func:`shards_of`);
- ``TRUNCATE`` of a Distributed table only drops its queue of pending inserts: emptying the
  events (tests) is ``TRUNCATE TABLE <db>.events_local ON CLUSTER … SYNC``, and the same for
  ``units_local``.

``abtest db clickhouse-sql [--cluster NAME]`` prints the statements (:func:`statements`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from abtest.clickhouse.client import ClickHouseClient
from abtest.errors import AbtestError, ValidationError

COLUMNS = ("event_id", "type", "experiment_id", "variant", "unit", "event", "value", "task", "success",
           "duration_ms", "questionnaire", "answers", "attributes", "forced", "ts", "received_at")

LOCAL = "events_local"  # the table on each shard, with a cluster
SHARDING_KEY = "cityHash64(experiment_id, unit)"
ZOOKEEPER_PATH = "/clickhouse/tables/{{shard}}/{database}/{local}"  # {shard}: the servers' macro

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


# Per unit and test, what every A/B report needs of its events, kept by a materialised view as the
# events arrive (see "The units table" above). Every column is an idempotent aggregate: min, max,
# and sets of (id hash, name, time, number); so a row added twice changes nothing. The first
# exposure's attributes are the last element of the smallest (time, arrival, id, attributes as
# JSON) of the unit's exposures (other events weigh in as ``NEVER``, after any real time): a plain
# column, which a breakdown reads 3x faster than an argMin state of the JSON, and that 3x faster
# than one of the Map (4 M events: 0.07, 0.21 and 0.63 s).
UNITS = "units"
UNITS_LOCAL = "units_local"  # on each shard, with a cluster
UNITS_VIEW = "units_view"
_TS = "DateTime64(6, 'UTC')"
_UNITS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {{table}}{{on_cluster}} (
    experiment_id UInt64,
    unit String,
    forced SimpleAggregateFunction(max, Bool),
    variant_min SimpleAggregateFunction(min, LowCardinality(Nullable(String))),
    variant_max SimpleAggregateFunction(max, LowCardinality(Nullable(String))),
    first_exposure SimpleAggregateFunction(min, Nullable({_TS})),
    last_event SimpleAggregateFunction(max, Nullable({_TS})),
    first_attributes SimpleAggregateFunction(min, Tuple({_TS}, {_TS}, String, String)),
    conversions SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(UInt64, String, {_TS}, Float64))),
    tasks SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(UInt64, String, {_TS}, Float64)))
) ENGINE = {{engine}}
ORDER BY (experiment_id, unit)
"""
_LAST = "toDateTime64('2299-12-31 23:59:59.999999', 6, 'UTC')"
NEVER = f"({_LAST}, {_LAST}, '', '')"
# What the view (and the backfill of events stored before it existed) adds per batch of events.
UNITS_SELECT = f"""SELECT experiment_id, unit,
    maxIf(forced, type = 'exposure') AS forced,
    minIf(variant, type = 'exposure') AS variant_min,
    maxIf(variant, type = 'exposure') AS variant_max,
    minIf(toNullable(ts), type = 'exposure') AS first_exposure,
    maxIf(toNullable(ts), type IN ('exposure', 'conversion', 'task', 'response', 'vital')) AS last_event,
    min(if(type = 'exposure', (ts, received_at, event_id, toJSONString(attributes)), {NEVER})) AS first_attributes,
    groupUniqArrayIf((cityHash64(event_id), CAST(ifNull(event, '') AS String), ts, ifNull(value, 0)),
                     type = 'conversion') AS conversions,
    groupUniqArrayIf((cityHash64(event_id), CAST(ifNull(task, '') AS String), ts, assumeNotNull(log(duration_ms / 1000))),
                     type = 'task' AND success AND duration_ms > 0) AS tasks
FROM {{source}}{{where}}
GROUP BY experiment_id, unit"""


def _units(database: str, on: str, engine: str, units: str, events: str) -> list[str]:
    """The units table ``units`` and the view feeding it from ``events``."""
    return [_UNITS_TABLE.format(table=f"{database}.{units}", on_cluster=on, engine=engine),
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{UNITS_VIEW}{on} TO {database}.{units} AS\n"
            + UNITS_SELECT.format(source=f"{database}.{events}", where="") + "\n"]


def table(client: ClickHouseClient) -> str:
    return f"{client.database}.events"


def units_table(client: ClickHouseClient) -> str:
    return f"{client.database}.{UNITS}"


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
    the database, ``<db>.events``, ``<db>.units`` and the view feeding it; on a cluster, each
    ``ON CLUSTER``: the database, ``<db>.events_local`` on every shard, ``<db>.events``
    distributed over them, the same two for the units (each shard's view feeding its own
    ``units_local``)."""
    if not _DATABASE_NAME.fullmatch(database):
        raise ValidationError(f"{database!r} is not a ClickHouse database name for abtest (letters, digits, _)",
                              field="ABTEST_EVENTS_URL")
    if not cluster:
        return [f"CREATE DATABASE IF NOT EXISTS {database}",
                _TABLE.format(table=f"{database}.events", on_cluster="", engine="ReplacingMergeTree(version)"),
                *_units(database, "", "AggregatingMergeTree", UNITS, "events")]
    on = on_cluster(cluster)
    path = {local: ZOOKEEPER_PATH.format(database=database, local=local) for local in (LOCAL, UNITS_LOCAL)}
    replicated = f"ReplicatedReplacingMergeTree('{path[LOCAL]}', '{{replica}}', version)"
    replicated_units = f"ReplicatedAggregatingMergeTree('{path[UNITS_LOCAL]}', '{{replica}}')"
    return [f"CREATE DATABASE IF NOT EXISTS {database}{on}",
            _TABLE.format(table=f"{database}.{LOCAL}", on_cluster=on, engine=replicated),
            _distributed(database, on, cluster, "events", LOCAL),
            # The view reads each shard's own inserts, so a unit's rows stay on the shard of its events.
            *_units(database, on, replicated_units, UNITS_LOCAL, LOCAL),
            _distributed(database, on, cluster, UNITS, UNITS_LOCAL)]


def _distributed(database: str, on: str, cluster: str, name: str, local: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {database}.{name}{on} AS {database}.{local}\n"
            f"ENGINE = Distributed('{cluster}', '{database}', '{local}', {SHARDING_KEY})\n")


def script(database: str, cluster: str | None = None) -> str:
    """The statements as one script (``abtest db clickhouse-sql``): each ends with ``;``."""
    return "\n\n".join(statement.strip() + ";" for statement in statements(database, cluster)) + "\n"


BUILT = "abtest: built from the events"  # the units table's comment once its backfill is done
LATE_INSERTS = timedelta(hours=1)  # how far before the view's creation the second backfill pass reads


def create_schema(client: ClickHouseClient, cluster: str | None = None) -> None:
    """Create the database, the events table(s) and the units table(s) and view if they are missing
    (``abtest db upgrade``). Until the units table carries the comment :data:`BUILT` it is built
    from the events already stored (an upgrade; an upgrade cut short is resumed by the next one):
    the view only sees what arrives after it, and the table's aggregates are idempotent, so events
    counted by both the view and the backfill are counted once. An insert already under way when
    the view was made reaches no view, and may land after the backfill read the table: a second
    pass reads again what was received since :data:`LATE_INSERTS` before."""
    found = _engine(client, "events")
    if cluster and found is not None and found[0] != "Distributed":  # IF NOT EXISTS would keep it: half a cluster
        raise AbtestError(f"{table(client)} exists as a {found[0]} table, made for one server; create the "
                          f"tables for cluster {cluster} in a new database and copy the events into it "
                          "(INSERT INTO new.events SELECT * FROM old.events) rather than converting this one "
                          "in place", field="ABTEST_CLICKHOUSE_CLUSTER")
    holding = f"{client.database}.{UNITS_LOCAL if cluster else UNITS}"  # the table holding the rows
    built = _comment(client, holding) == BUILT
    started = datetime.now(UTC)
    for statement in statements(client.database, cluster):
        client.command(statement)
    if built:
        return
    if found is not None:
        shards = shards_of(client, UNITS)
        _fill(client, shards)
        _fill(client, shards, "received_at >= {since:DateTime64(6, 'UTC')}", {"since": started - LATE_INSERTS})
    client.command(f"ALTER TABLE {holding}{on_cluster(cluster)} MODIFY COMMENT '{BUILT}'")


def rebuild_units(client: ClickHouseClient, where: str, params: Mapping[str, Any] | None = None) -> None:
    """Build the units table's rows of the units matching ``where`` (a condition on
    ``experiment_id`` and ``unit``, the columns both tables have and the view's SELECT does not
    alias) again from their stored events, after deleting their old rows. The view keeps the table
    in step with inserts; this is for events changed another way: a ``DELETE`` by hand, or a month
    of events dropped (``ALTER TABLE … DROP PARTITION``: rebuild the units it held)."""
    shards = shards_of(client, UNITS)
    target = units_table(client) if shards is None else shards.target
    client.command(f"DELETE FROM {target} WHERE {where}", params)
    _fill(client, shards, where, params)


def _fill(client: ClickHouseClient, shards: Shards | None, where: str = "",
          params: Mapping[str, Any] | None = None) -> None:
    """Add the units table's rows for the stored events (matching ``where``). Partial rows are
    right: rows of one unit merge into one. On a cluster (``shards``: the units table's, from
    :func:`shards_of`) they go through the Distributed table, sharded as the events, and the
    insert waits for the shards."""
    settings = "" if shards is None else " SETTINGS insert_distributed_sync = 1"
    client.command(f"INSERT INTO {units_table(client)}{settings}\n"
                   + UNITS_SELECT.format(source=table(client), where=f"\nWHERE {where}" if where else ""), params)


@dataclass(frozen=True, slots=True)
class Shards:
    """Where a Distributed table keeps its rows: the cluster and each shard's table."""

    cluster: str
    local: str  # database.table on every shard

    @property
    def target(self) -> str:
        """What a statement changing the rows names: the shards' table, ``ON CLUSTER``."""
        return f"{self.local}{on_cluster(self.cluster)}"


_DISTRIBUTED = re.compile(r"Distributed\(\s*'([^']+)'\s*,\s*'([^']*)'\s*,\s*'([^']+)'")


def parse_distributed(engine_full: str, database: str) -> Shards | None:
    """The cluster and shard table of a ``Distributed(...)`` engine as ``system.tables`` shows it
    (ClickHouse stores the arguments as quoted strings)."""
    found = _DISTRIBUTED.match(engine_full.strip())
    if found is None:
        return None
    cluster, remote_database, remote_table = found.groups()
    return Shards(cluster, f"{remote_database or database}.{remote_table}")


def _system_table(client: ClickHouseClient, database: str, name: str, columns: str) -> tuple[Any, ...] | None:
    """``columns`` of ``database.name`` in ``system.tables``, or None when there is no such table."""
    rows = client.query(f"SELECT {columns} FROM system.tables WHERE database = {{d:String}} AND name = {{n:String}}",
                        {"d": database, "n": name})
    return rows[0] if rows else None


def _comment(client: ClickHouseClient, name: str) -> str | None:
    """The comment of the table ``name`` (database.table), or None when there is no such table."""
    found = _system_table(client, *name.split(".", 1), "comment")
    return None if found is None else str(found[0])


def _engine(client: ClickHouseClient, name: str) -> tuple[str, str] | None:
    """``<db>.<name>``'s engine and its full clause, or None when there is no such table."""
    found = _system_table(client, client.database, name, "engine, engine_full")
    return None if found is None else (str(found[0]), str(found[1]))


def shards_of(client: ClickHouseClient, name: str = "events") -> Shards | None:
    """The cluster behind ``<db>.<name>`` (the events, or the units) when it is a Distributed
    table, else None (one server). Read from the server, so erasure follows the schema that
    exists whatever the settings say."""
    found = _engine(client, name)
    return parse_distributed(found[1], client.database) if found and found[0] == "Distributed" else None


def truncate_statements(client: ClickHouseClient) -> list[str]:
    """The statements emptying the events and the units (tests): the shards' tables on a cluster."""
    out = []
    for name in ("events", UNITS):
        shards = shards_of(client, name)
        out.append(f"TRUNCATE TABLE {client.database}.{name}" if shards is None
                   else f"TRUNCATE TABLE {shards.target} SYNC")
    return out
