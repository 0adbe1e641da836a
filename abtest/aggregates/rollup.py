"""Per-unit rollups: one row per exposed unit, and per unit and measure, kept fresh from the events.

Why: a report that scans every event grows with traffic (about 5 s per million events on
PostgreSQL here); one that reads a row per unit grows only with the units, and keeping those rows
fresh costs work in proportion to the units whose events changed since the last report.

How the rows stay exact (they are derived data, never the source of truth):

- A trigger on ``events`` (migration 0004) marks ``(experiment, unit)`` dirty in the inserting
  transaction and bumps the mark's version, so no writer can forget it.
- :func:`refresh` copies the marks it sees into a temporary claim table, recomputes those units
  from *all* of their events (so a late event, or an earlier exposure arriving out of order, is
  handled exactly as a full scan would), and deletes only the marks whose version it claimed: a
  mark bumped meanwhile by a concurrent batch stays, and that unit is recomputed next time.
- Refreshes of one experiment take turns: each starts by writing the experiment's
  ``rollup_state`` row (a row lock on PostgreSQL, the database write lock on SQLite).
- The measures the rollups hold follow from the experiment's metrics; when that set changes, only
  the new measures are built. On PostgreSQL an experiment never rolled up, or one with most units
  dirty, is rebuilt in one set-based pass; SQLite always goes in short chunks of units.
- On PostgreSQL the tables are UNLOGGED (migration 0015): a crash empties all of them, state rows
  included, so every experiment counts as never rolled up and is rebuilt from its events.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from abtest.aggregates.base import EventTotals, Request, Returning, UnitLogTimes
from abtest.db import dialect_insert
from abtest.models import Event, RollupDirty, RollupMeasure, RollupState, RollupUnit, utcnow

EVENTS = Event.__table__  # type: ignore[attr-defined]
UNITS = RollupUnit.__table__  # type: ignore[attr-defined]
MEASURES = RollupMeasure.__table__  # type: ignore[attr-defined]
DIRTY = RollupDirty.__table__  # type: ignore[attr-defined]
STATE = RollupState.__table__  # type: ignore[attr-defined]

# Every event type, spelled out so the (experiment_id, type, unit) index serves the per-unit
# lookups of an incremental refresh (any event after N days, an exposure too, counts as a return).
EVENT_TYPES = ("exposure", "conversion", "task", "response", "vital", "survey")
SQLITE_CHUNK = 5_000  # units per refresh transaction on SQLite, so the write lock is held briefly
SQLITE_PAUSE_S = 0.05  # between them: a writer waiting in SQLite's busy handler polls, it is not queued
# Above this share of dirty units a full rebuild (hash joins over the experiment) beats recomputing
# unit by unit through the index.
FULL_REBUILD_SHARE = 0.2
BUILD_WORK_MEM = "64MB"  # per sort or hash of a PostgreSQL refresh (a plan has a handful)

Scope = Callable[[sa.ColumnElement[str]], sa.ColumnElement[bool]]  # which units: a filter on a unit column



def _claim_table(keyed: bool) -> sa.Table:
    return sa.Table(
        "rollup_claim", sa.MetaData(),
        sa.Column("unit", sa.String(200), primary_key=keyed),
        sa.Column("version", sa.Integer, nullable=False),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",  # gone with the transaction, also when it fails
    )


# The marks a refresh claims. SQLite probes it by unit in its chunked refreshes, so it gets a key;
# PostgreSQL joins it by hash, and filling a keyed one cost 9× as much (2.7 s for a million events).
_CLAIMS = {"sqlite": _claim_table(keyed=True), "postgresql": _claim_table(keyed=False)}


class elapsed_days(FunctionElement[float]):  # noqa: N801 - reads as a SQL function
    """Days from ``earlier`` to ``later`` as a float: the one date sum that needs dialect SQL."""

    type = sa.Float()
    inherit_cache = True
    name = "elapsed_days"


@compiles(elapsed_days, "sqlite")
def _elapsed_days_sqlite(element, compiler, **kw):  # type: ignore[no-untyped-def]
    later, earlier = list(element.clauses)
    return f"(julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)}))"


@compiles(elapsed_days, "postgresql")
def _elapsed_days_postgresql(element, compiler, **kw):  # type: ignore[no-untyped-def]
    later, earlier = list(element.clauses)
    return f"(EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})) / 86400.0)"


@dataclass(frozen=True, slots=True)
class Measures:
    """What the rollups of one experiment count per unit, derived from its metrics."""

    events: tuple[str, ...] = ()  # conversion and mean metrics: count, value sums, first time
    tasks: tuple[str, ...] = ()  # duration metrics: log times of successful attempts
    retention_days: tuple[int, ...] = ()  # retention metrics: came back after N days

    @classmethod
    def of(cls, requests: Iterable[Request]) -> Measures:
        """The measures that answer these aggregate requests (the metric types ask for them)."""
        requests = list(requests)
        return cls(tuple(sorted({r.event for r in requests if isinstance(r, EventTotals)})),
                   tuple(sorted({r.task for r in requests if isinstance(r, UnitLogTimes)})),
                   tuple(sorted({r.days for r in requests if isinstance(r, Returning)})))

    def keys(self) -> list[tuple[str, str]]:
        """(kind, name) of every measure, as stored in rollup_measures."""
        return ([("event", e) for e in self.events] + [("task", t) for t in self.tasks]
                + [("retention", str(d)) for d in self.retention_days])

    def fingerprint(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_fingerprint(cls, text: str) -> Measures:
        return cls(**{name: tuple(values) for name, values in json.loads(text).items()})

    def minus(self, other: Measures) -> Measures:
        """The measures held here and not in ``other``."""
        return Measures(*(tuple(x for x in mine if x not in theirs)
                          for mine, theirs in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)))


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What one :func:`refresh` did: how many units it recomputed, and whether it rebuilt all."""

    units: int
    full: bool


def refresh(engine: sa.Engine, experiment_id: int, measures: Measures) -> Refreshed:
    """Bring one experiment's rollups up to date with its events.

    PostgreSQL: one transaction (writers are not blocked by it: batches only wait, briefly, for
    the marks it deletes at the end). SQLite has one writer at a time, so there the work goes in
    transactions of at most :data:`SQLITE_CHUNK` units, and ingestion gets the lock between them
    instead of timing out behind a long build.
    """
    if _up_to_date(engine, experiment_id, measures):
        return Refreshed(0, False)
    postgres = engine.dialect.name == "postgresql"
    done, stale_statistics = Refreshed(0, False), False
    while True:
        step, more, changed = _refresh_step(engine, experiment_id, measures, None if postgres else SQLITE_CHUNK)
        done = Refreshed(done.units + step.units, done.full or step.full)
        stale_statistics = stale_statistics or changed
        if not more:
            break
        time.sleep(SQLITE_PAUSE_S)
    if postgres and stale_statistics:
        # Fresh statistics for the reports' plans, outside the refresh transaction: ANALYZE
        # holds its table lock until commit, and inside it made refreshes of two experiments
        # wait for each other while holding marks a batch needed (a deadlock, found in review).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE rollup_units, rollup_measures"))
            # The marks just deleted stay as dead rows until autovacuum passes, and every
            # report's "anything dirty?" check would wade through them (0.6 s after a 10 M build).
            conn.execute(sa.text("VACUUM rollup_dirty"))
    return done


def _refresh_step(engine: sa.Engine, experiment_id: int, measures: Measures,
                  limit: int | None) -> tuple[Refreshed, bool, bool]:
    """One transaction of :func:`refresh`: at most ``limit`` dirty units (None: all). Answers what
    it did, whether dirty units remain, and whether the rollups changed enough for new statistics."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Memory for the sorts and hashes over a whole experiment, this transaction only: with
            # the 4 MB default the hashes of 222 k units and marks (1 M events) spilled to disk.
            conn.execute(sa.text(f"SET LOCAL work_mem = '{BUILD_WORK_MEM}'"))
        previous, units = _lock_state(conn, experiment_id)
        claim = _CLAIMS[conn.dialect.name]
        claim.create(conn)  # a failed refresh rolls its creation back with everything else
        marks = sa.select(DIRTY.c.unit, DIRTY.c.version).where(DIRTY.c.experiment_id == experiment_id)
        conn.execute(claim.insert().from_select(
            ["unit", "version"], marks if limit is None else marks.order_by(DIRTY.c.unit).limit(limit)))
        claimed = conn.execute(sa.select(sa.func.count()).select_from(claim)).scalar_one()
        postgres = conn.dialect.name == "postgresql"
        # A set-based rebuild of everything beats per-unit lookups when most units changed; only
        # where one long transaction does not hold up ingestion.
        full = limit is None and (previous is None or claimed > FULL_REBUILD_SHARE * units)
        if full:
            _removed, units = _recompute(conn, experiment_id, measures, None)
        elif previous != measures or claimed:
            if previous is not None and previous != measures:  # metrics changed: build only the new ones
                _delete_measures(conn, experiment_id, previous.minus(measures), None)
                _insert_measures(conn, experiment_id, measures.minus(previous), None)
            if postgres:
                conn.execute(sa.text("ANALYZE rollup_claim"))  # private temp table: row estimates for the plans
            removed, added = _recompute(conn, experiment_id, measures,
                                        lambda unit: unit.in_(sa.select(claim.c.unit)))
            units += added - removed
        _clear_claimed_marks(conn, experiment_id, claim)
        conn.execute(STATE.update().where(STATE.c.experiment_id == experiment_id)
                     .values(fingerprint=measures.fingerprint(), units=units))
        if not postgres:
            claim.drop(conn)
        changed = full or previous != measures or claimed > 0.1 * units
        return (Refreshed(units if full else int(claimed), full), limit is not None and claimed == limit,
                changed)


def _clear_claimed_marks(conn: sa.Connection, experiment_id: int, claim: sa.Table) -> None:
    """Delete the marks whose version is still the one claimed; a mark bumped since stays.

    On PostgreSQL in one statement that skips the marks a batch in flight holds: that batch is
    bumping them, so they must stay anyway (and if it rolls back, the unit is merely recomputed
    once more). Never waiting on a batch's row, a refresh cannot deadlock with one, in whatever
    order its plan visits the marks; and no table lock, which would wait for every batch.
    """
    # A row-value IN, not a correlated EXISTS: SQLite then probes the marks' key per claimed unit
    # instead of testing every mark of the experiment (2.1 s of a 1 M-event build in chunks).
    claimed = sa.tuple_(DIRTY.c.unit, DIRTY.c.version).in_(sa.select(claim.c.unit, claim.c.version))
    mine = DIRTY.c.experiment_id == experiment_id, claimed
    if conn.dialect.name == "postgresql":
        # The free marks' row ids as one array: a TID scan of them, where ``ctid IN (…)`` hashed
        # and re-joined every row (0.69 -> 0.24 s for 222 k marks).
        ctid = sa.literal_column("ctid")
        free = sa.select(ctid).select_from(DIRTY).where(*mine).with_for_update(skip_locked=True)
        conn.execute(DIRTY.delete().where(ctid == sa.func.any(sa.func.array(free.scalar_subquery()))))
    else:
        conn.execute(DIRTY.delete().where(*mine))


def _up_to_date(engine: sa.Engine, experiment_id: int, measures: Measures) -> bool:
    """Read-only check first, so a report on unchanged data writes nothing (on SQLite it would
    otherwise queue for the write lock behind ingestion on every page view)."""
    stored = sa.select(STATE.c.fingerprint).where(STATE.c.experiment_id == experiment_id).scalar_subquery()
    dirty = sa.exists().where(DIRTY.c.experiment_id == experiment_id)
    with engine.connect() as conn:
        fingerprint, any_dirty = conn.execute(sa.select(stored, dirty)).one()
    return fingerprint == measures.fingerprint() and not any_dirty


def _lock_state(conn: sa.Connection, experiment_id: int) -> tuple[Measures | None, int]:
    """Write the experiment's state row first: concurrent refreshes then take turns (a row lock on
    PostgreSQL; on SQLite the transaction starts as the writer). Answers the measures the rollups
    held before (None for an experiment never rolled up) and how many units they hold."""
    now = utcnow()
    fingerprint, units = conn.execute(
        dialect_insert(conn, STATE).values(experiment_id=experiment_id, fingerprint="", units=0, refreshed_at=now)
        .on_conflict_do_update(index_elements=[STATE.c.experiment_id], set_={"refreshed_at": now})
        .returning(STATE.c.fingerprint, STATE.c.units)
    ).one()
    return (Measures.from_fingerprint(fingerprint) if fingerprint else None), int(units)


def hold(conn: sa.Connection, experiment_ids: Iterable[int]) -> dict[int, Measures]:
    """Take the refresh turn of these experiments in the caller's transaction, in ascending order
    (as every taker does), and answer the measures each one's rollups hold.

    Whoever deletes rollup rows takes it first, as :func:`refresh` does: a refresh in flight could
    otherwise write back rows from events it read before they were deleted."""
    held = {}
    for experiment_id in sorted(set(experiment_ids)):
        previous, _units = _lock_state(conn, experiment_id)
        held[experiment_id] = previous or Measures()
    return held


def forget_unit(conn: sa.Connection, experiment_id: int, unit: str, held: Measures) -> dict[str, int]:
    """Delete one unit's rollup rows and dirty mark (after :func:`hold`), in the caller's
    transaction; answers the rows deleted per table. The erasure (:mod:`abtest.store.erasure`)
    deletes the unit's events right after, in the same transaction.

    Why directly and not through a refresh: the trigger marks units on INSERT only, so a unit
    whose events are deleted would never be recomputed. Without its events and its rows the
    rollups are exactly what a rebuild gives (rows are per unit; no other row depends on them).
    The mark goes before the events: a batch for the unit that holds the mark finishes first, and
    its events are then deleted too; one arriving later marks the unit anew and is rolled up from
    its own events. Measure rows are deleted by full key, one held measure at a time (a refresh
    never commits others), so this is a few index lookups, not a scan of the experiment."""
    mark = conn.execute(DIRTY.delete().where(DIRTY.c.experiment_id == experiment_id, DIRTY.c.unit == unit))
    measures = sum(conn.execute(MEASURES.delete().where(
        MEASURES.c.experiment_id == experiment_id, MEASURES.c.kind == kind, MEASURES.c.name == name,
        MEASURES.c.unit == unit)).rowcount for kind, name in held.keys())
    units = conn.execute(UNITS.delete().where(UNITS.c.experiment_id == experiment_id, UNITS.c.unit == unit)).rowcount
    if units:  # the count that sizes the next refresh
        conn.execute(STATE.update().where(STATE.c.experiment_id == experiment_id).values(units=STATE.c.units - units))
    return {"rollup_units": units, "rollup_measures": measures, "rollup_dirty": mark.rowcount}


def analysable(units: sa.Table = UNITS) -> sa.ColumnElement[bool]:
    """A unit every metric counts: exposed to exactly one variant, never forced."""
    return sa.and_(units.c.variant_lo == units.c.variant_hi, units.c.forced == 0)


def utc_day(column: sa.ColumnElement[object]) -> sa.ColumnElement[str]:
    """YYYY-MM-DD of a stored timestamp: both backends render it as text starting with the UTC
    date (PostgreSQL sessions run in UTC, see abtest.db)."""
    return sa.func.substr(sa.cast(column, sa.String), 1, 10)


def _recompute(conn: sa.Connection, experiment_id: int, measures: Measures, scope: Scope | None) -> tuple[int, int]:
    """Replace every rollup row of the units in ``scope`` (all units when None) from their events;
    answers how many unit rows went and came."""
    within = _within(scope)
    in_scope = UNITS.c.experiment_id == experiment_id, within(UNITS.c.unit)

    def unit_rows() -> int:  # counted: SQLAlchemy reports no rowcount for INSERT … SELECT on psycopg
        return int(conn.execute(sa.select(sa.func.count()).select_from(UNITS).where(*in_scope)).scalar_one())

    removed = 0 if scope is None else unit_rows()  # a full rebuild's caller needs only what came
    if scope is None:  # everything, measures no longer held included
        conn.execute(MEASURES.delete().where(MEASURES.c.experiment_id == experiment_id))
    else:
        _delete_measures(conn, experiment_id, measures, scope)
    conn.execute(UNITS.delete().where(*in_scope))
    # One sorted pass over the exposures, one window per unit in time order: its variants and QA
    # overrides (aggregates over the whole frame), and its start and segment values (the first
    # row's time and attributes, kept by row_number). A correlated lookup per unit took 2.8× as
    # long; a second, unordered window for the aggregates another pass (0.36 against 0.31 s at
    # 333 k exposures).
    ev = EVENTS
    def per_unit(aggregate: sa.ColumnElement[object], whole: bool = True) -> sa.ColumnElement[object]:
        return sa.over(aggregate, partition_by=ev.c.unit, order_by=(ev.c.ts, ev.c.id),  # type: ignore[arg-type]
                       rows=(None, None) if whole else None)

    ranked = (sa.select(
        ev.c.experiment_id, ev.c.unit, ev.c.attributes, ev.c.ts.label("first_ts"),
        per_unit(sa.func.min(ev.c.variant)).label("variant_lo"),
        per_unit(sa.func.max(ev.c.variant)).label("variant_hi"),
        per_unit(sa.func.sum(sa.case((ev.c.forced, 1), else_=0))).label("forced"),
        per_unit(sa.func.row_number(), whole=False).label("rank"))
        .where(ev.c.experiment_id == experiment_id, ev.c.type == "exposure", within(ev.c.unit))
        .subquery("ranked"))
    r = ranked.c
    conn.execute(UNITS.insert().from_select(
        ["experiment_id", "unit", "variant_lo", "variant_hi", "forced", "first_ts", "first_day", "attributes"],
        sa.select(r.experiment_id, r.unit, r.variant_lo, r.variant_hi, r.forced, r.first_ts, utc_day(r.first_ts),
                  r.attributes).where(r.rank == 1)))
    added = unit_rows()
    if conn.dialect.name == "postgresql" and scope is None:
        # The measures join the unit rows just written, which the table's statistics do not
        # know yet: planned from them the join runs as nested loops over every unit. Hash it.
        # (Not ANALYZE here: its lock would be held to commit, see refresh().)
        conn.execute(sa.text("SET LOCAL enable_nestloop = off"))
    _insert_measures(conn, experiment_id, measures, scope)
    return removed, added


def _within(scope: Scope | None) -> Scope:
    return (lambda unit: sa.true()) if scope is None else scope


def _delete_measures(conn: sa.Connection, experiment_id: int, measures: Measures, scope: Scope | None) -> None:
    """One measure at a time, so each delete is a lookup on the (experiment, kind, name, unit) key."""
    for kind, name in measures.keys():
        conn.execute(MEASURES.delete().where(MEASURES.c.experiment_id == experiment_id, MEASURES.c.kind == kind,
                                             MEASURES.c.name == name, _within(scope)(MEASURES.c.unit)))


def _insert_measures(conn: sa.Connection, experiment_id: int, measures: Measures, scope: Scope | None) -> None:
    """Measure rows of the units in ``scope`` from their events and their (current) unit rows.

    Only analysable units (one variant, never forced) get rows: the others are left out of every
    metric and only counted, from rollup_units.
    """
    within, ev = _within(scope), EVENTS
    joined = ev.join(UNITS, sa.and_(UNITS.c.experiment_id == ev.c.experiment_id, UNITS.c.unit == ev.c.unit,
                                    analysable()))
    after = ev.c.ts >= UNITS.c.first_ts
    columns = ["experiment_id", "kind", "name", "unit", "variant", "first_ts", "first_day",
               "k", "k_pre", "post", "pre", "converted_day", "log_n", "log_sum"]

    def insert(kind: str, name: sa.ColumnElement[str], where: sa.ColumnElement[bool], k: sa.ColumnElement[int],
               post: sa.ColumnElement[float], pre: sa.ColumnElement[float], converted_day: sa.ColumnElement[object],
               log_n: sa.ColumnElement[int], log_sum: sa.ColumnElement[float],
               k_pre: sa.ColumnElement[int] | None = None) -> None:
        named = [name] if isinstance(name, sa.Column) else []
        conn.execute(MEASURES.insert().from_select(columns, (
            sa.select(ev.c.experiment_id, sa.literal(kind, sa.String), name, ev.c.unit, UNITS.c.variant_lo,
                      UNITS.c.first_ts, UNITS.c.first_day, k, sa.literal(0) if k_pre is None else k_pre,
                      post, pre, converted_day, log_n, log_sum)
            .select_from(joined)
            .where(ev.c.experiment_id == experiment_id, within(ev.c.unit), where)
            .group_by(ev.c.experiment_id, ev.c.unit, *named, UNITS.c.variant_lo, UNITS.c.first_ts,
                      UNITS.c.first_day))))

    zero, zero_f, no_day = sa.literal(0), sa.literal(0.0), sa.null()
    if measures.events:
        value = sa.func.coalesce(ev.c.value, 0.0)
        insert("event", ev.c.event, sa.and_(ev.c.type == "conversion", ev.c.event.in_(measures.events)),
               sa.func.sum(sa.case((after, 1), else_=0)),
               sa.func.sum(sa.case((after, value), else_=0.0)),
               sa.func.sum(sa.case((after, 0.0), else_=value)),
               utc_day(sa.func.min(sa.case((after, ev.c.ts)))), zero, zero_f,
               k_pre=sa.func.sum(sa.case((after, 0), else_=1)))
    if measures.tasks:
        insert("task", ev.c.task,
               sa.and_(ev.c.type == "task", ev.c.task.in_(measures.tasks), ev.c.success.is_(True),
                       ev.c.duration_ms > 0, after),
               zero, zero_f, zero_f, no_day, sa.func.count(), sa.func.sum(sa.func.ln(ev.c.duration_ms / 1000.0)))
    for days in measures.retention_days:
        insert("retention", sa.literal(str(days), sa.String),
               sa.and_(ev.c.type.in_(EVENT_TYPES), elapsed_days(ev.c.ts, UNITS.c.first_ts) >= days),
               sa.literal(1), zero_f, zero_f, no_day, zero, zero_f)
