"""The experiment aggregates in ClickHouse SQL, straight from the events (no rollup tables: a
column store scans them fast enough).

A report's A/B families (unit counts, event totals, log times, returning, daily conversions) are
one query (:func:`experiment`), the order statistics and surveys one each. Every query is one
scan of the experiment's events read with ``FINAL`` (each event id once, see
:mod:`abtest.clickhouse.schema`), grouped by unit (the table's sorting key): per unit, its bucket
(variant, or why it is excluded), first exposure time (and attributes, or the one a breakdown
asks for), plus whatever the families need as small arrays (its conversions, its timed
attempts), which the outer query then filters against the first exposure and sums. No joins: a
first version joined the events to a units subquery and was ten times slower. The rules are those
of :mod:`abtest.aggregates.rollup_sql`: a unit's first exposure fixes its variant and start;
conversions count at or after it, the earlier ones apart (``k_pre``).

Moments come back as (n, mean, population variance[, covariance]) from ClickHouse's stable
(Welford) aggregates, i.e. sums around the mean: no cancellation however large the values.
"""

from __future__ import annotations

from collections.abc import Sequence

from abtest.attributes import NOT_SET, OTHER

EXCLUDED = "('forced', 'multiple_variants')"
FIRST = "(ts, received_at, event_id)"  # which of a unit's events came first: time, arrival, id
VALUE = f"if(mapContains(attrs, {{by:String}}), attrs[{{by:String}}], '{NOT_SET}')"


def label(segmented: bool, value: str = VALUE) -> str:
    """A unit's segment label from ``value``, the value of ``{by}`` on its first exposure (by
    default read from its ``attrs``); ``''``: the whole test."""
    return f"if(has({{top:Array(String)}}, {value}), {value}, '{OTHER}')" if segmented else "''"


def per_unit(table: str, extra: str = "", where: str = "", attrs: bool = True) -> str:
    """One row per exposed unit of experiment ``{e}``, with the ``extra`` aggregates (and the
    first exposure's attributes when ``attrs``: the costliest aggregate, skipped when unused)."""
    first_attrs = (f"argMinIf(attributes, {FIRST}, type = 'exposure')" if attrs
                   else "map()")
    return f"""SELECT unit,
       multiIf(countIf(type = 'exposure' AND forced) > 0, 'forced',
               minIf(variant, type = 'exposure') != maxIf(variant, type = 'exposure'), 'multiple_variants',
               minIf(variant, type = 'exposure')) AS bucket,
       minIf(ts, type = 'exposure') AS first_ts,
       {first_attrs} AS attrs{extra}
FROM {table} FINAL
WHERE experiment_id = {{e:UInt64}}{where}
GROUP BY unit HAVING countIf(type = 'exposure') > 0"""


def _analysable(table: str, extra: str = "", where: str = "") -> str:
    """The exposed units that every metric counts (one variant, never forced), whole test."""
    return f"""(SELECT * FROM ({per_unit(table, extra, where, False)})
 WHERE bucket IS NOT NULL AND bucket NOT IN {EXCLUDED})"""


# The value of ``{by}`` on a unit's first exposure, taken alone: argMinIf of the whole attributes
# map (as ``per_unit`` keeps it) is the dearest per-unit aggregate, one string costs less.
FIRST_VALUE = (f",\n       argMinIf(if(mapContains(attributes, {{by:String}}), attributes[{{by:String}}], '{NOT_SET}'), "
               f"{FIRST}, type = 'exposure') AS by_value")


def sizes(table: str) -> str:
    """Analysable units per raw value of ``{by}``, largest first."""
    return f"""SELECT by_value, count() AS n FROM ({per_unit(table, FIRST_VALUE, " AND type = 'exposure'", False)})
WHERE bucket IS NOT NULL AND bucket NOT IN {EXCLUDED}
GROUP BY by_value ORDER BY n DESC, by_value LIMIT {{limit:UInt32}}"""


def attribute_names(table: str) -> str:
    """Attribute names on the newest units' first exposures."""
    return f"""SELECT DISTINCT arrayJoin(mapKeys(attrs)) AS name FROM (
    SELECT attrs FROM ({per_unit(table, where=" AND type = 'exposure'")}) ORDER BY first_ts DESC LIMIT {{sample:UInt32}})
ORDER BY name LIMIT {{limit:UInt32}}"""


# ---- surveys: each visitor once, in the variant of their first survey event, whole survey only ----
# (the rules of abtest.aggregates.survey_sql)

_SURVEY_EVENTS = "FROM {table} FINAL WHERE experiment_id = {{e:UInt64}} AND NOT forced AND variant IS NOT NULL"


def _visitors(table: str, extra: str, where: str = "") -> str:
    """One row per visitor: the variant of their first survey event, and ``extra``."""
    return f"""SELECT unit, argMin(assumeNotNull(variant), {FIRST}) AS first_variant{extra}
      {_SURVEY_EVENTS.format(table=table)}{where}
      GROUP BY unit"""


def survey_reach(table: str) -> str:
    """(variant, shown, answered, dismissed without an answer): any survey event means shown."""
    extra = (", countIf(type = 'response') > 0 AS answered,"
             " countIf(type = 'survey' AND event = 'dismissed') > 0 AS dismissed")
    return f"""SELECT first_variant, count(), countIf(answered), countIf(dismissed AND NOT answered)
FROM ({_visitors(table, extra)})
GROUP BY first_variant"""


def answer_counts(table: str) -> str:
    """(question, variant, answer, visitors): each visitor's first answer to each question."""
    return f"""SELECT a.task, v.first_variant, a.value, count()
FROM (SELECT assumeNotNull(task) AS task, unit,
             argMin(JSONExtractFloat(assumeNotNull(answers), 1), {FIRST}) AS value
      {_SURVEY_EVENTS.format(table=table)} AND type = 'response' AND questionnaire != 'text'
        AND task IN {{tasks:Array(String)}}
      GROUP BY task, unit) AS a
INNER JOIN ({_visitors(table, "")}) AS v ON v.unit = a.unit
GROUP BY a.task, v.first_variant, a.value"""


def answer_texts(table: str) -> str:
    """(variant, text): each visitor's first answer to the text question ``{task}``, oldest first."""
    return f"""SELECT v.first_variant, JSONExtractString(a.first, 1)
FROM (SELECT unit, argMin(assumeNotNull(answers), {FIRST}) AS first, min({FIRST}) AS at
      {_SURVEY_EVENTS.format(table=table)} AND type = 'response' AND questionnaire = 'text' AND task = {{task:String}}
      GROUP BY unit) AS a
INNER JOIN ({_visitors(table, "")}) AS v ON v.unit = a.unit
ORDER BY a.at"""


# ---- every A/B family in one pass --------------------------------------------------------------------
# The per-unit GROUP BY is what a report costs (a hash table of every unit, 20 M at 100 M events);
# a query per family ran it once each (3.3 s at 10 M against 1.2 s here). This one runs it once,
# and sums the units by segment, bucket and day of first exposure: every family's statistics per
# day, which the caller adds up (counts add, moments add around a common shift:
# abtest.aggregates.combine). A bucket is a variant or an exclusion, so the families' columns of an
# excluded bucket are simply not read.
# Each event and task gets its own per-unit array of (time, number) pairs (``c0``, ``t0`` …, after
# the parameters ``{c0}``, ``{t0}`` … naming them): arrays of (name, time, value) tuples, filtered by
# name, cost 3.4x as much at 10 M events (2.30 against 0.67 s: a string per element).


def experiment(table: str, segmented: bool, names: Sequence[str], tasks: Sequence[str], days: Sequence[int],
               daily: Sequence[str]) -> tuple[str, dict[str, object]]:
    """SQL and its parameters (``{now}`` too, when ``days``) for one row per (segment, bucket,
    day of first exposure as days since 1970-01-01): units, then per event in ``names``
    (converted, mean and population variance of the value after and before exposure, their
    covariance, conversions before exposure), per task (units with a timed try, mean and
    variance of their mean log seconds), per number of days (units exposed that long before
    now, those of them seen again after it) and per event in ``daily`` (units by day of first
    conversion, -1 for none: an array of days and one of counts), from one scan of the events."""
    events = sorted({*names, *daily})
    params: dict[str, object] = {f"c{i}": name for i, name in enumerate(events)}
    params.update({f"t{i}": task for i, task in enumerate(tasks)})
    params.update({f"d{i}": d for i, d in enumerate(days)})
    column = {name: f"c{i}" for i, name in enumerate(events)}
    extra, kinds = "", ["type = 'exposure'"]
    for c in column.values():
        extra += f",\n       groupArrayIf((ts, ifNull(value, 0)), type = 'conversion' AND event = {{{c}:String}}) AS {c}"
        kinds.append(f"(type = 'conversion' AND event = {{{c}:String}})")
    for i in range(len(tasks)):
        extra += (f",\n       groupArrayIf((ts, assumeNotNull(log(duration_ms / 1000))), type = 'task' "
                  f"AND task = {{t{i}:String}} AND success AND duration_ms > 0) AS t{i}")
        kinds.append(f"(type = 'task' AND task = {{t{i}:String}})")
    if days:
        extra += ",\n       maxIf(ts, type IN ('exposure', 'conversion', 'task', 'response', 'vital')) AS last_ts"
        kinds = []  # any event may be the return
    where = f" AND ({' OR '.join(kinds)})" if kinds else ""
    unit, sums = [], []  # per-unit values, and their sums per group
    for i, name in enumerate(names):
        c = column[name]
        unit += [f"arrayExists(x -> x.1 >= first_ts, {c}) AS k{i}",
                 f"arraySum(x -> if(x.1 >= first_ts, x.2, 0), {c}) AS post{i}",
                 f"arraySum(x -> if(x.1 < first_ts, x.2, 0), {c}) AS pre{i}",
                 f"arrayCount(x -> x.1 < first_ts, {c}) AS early{i}"]
        sums += [f"countIf(k{i})", f"avg(post{i})", f"varPopStable(post{i})", f"avg(pre{i})", f"varPopStable(pre{i})",
                 f"covarPopStable(post{i}, pre{i})", f"sum(early{i})"]
    for i in range(len(tasks)):
        unit += [f"arrayFilter(x -> x.1 >= first_ts, t{i}) AS tried{i}", f"arrayAvg(x -> x.2, tried{i}) AS lt{i}"]
        tried = f"notEmpty(tried{i})"
        sums += [f"countIf({tried})", f"avgIf(lt{i}, {tried})", f"varPopStableIf(lt{i}, {tried})"]
    for i in range(len(days)):
        unit += [f"first_ts <= subtractDays({{now:DateTime64(6, 'UTC')}}, {{d{i}:UInt32}}) AS due{i}",
                 f"dateDiff('microsecond', first_ts, last_ts) >= toInt64({{d{i}:UInt32}}) * 86400000000 AS back{i}"]
        sums += [f"countIf(due{i})", f"countIf(due{i} AND back{i})"]
    for name in daily:
        c = column[name]
        first = f"toInt32(toDate(arrayMin(x -> x.1, arrayFilter(x -> x.1 >= first_ts, {c}))))"
        unit.append(f"if(arrayExists(x -> x.1 >= first_ts, {c}), {first}, -1) AS converted_{c}")
        sums += [f"tupleElement(sumMap([converted_{c}], [toUInt64(1)]) AS by_{c}, 1)", f"tupleElement(by_{c}, 2)"]
    return f"""SELECT seg, assumeNotNull(bucket) AS b, day, count(){''.join(', ' + s for s in sums)}
FROM (SELECT seg, bucket, toUInt32(toDate(first_ts)) AS day{''.join(', ' + u for u in unit)}
      FROM (SELECT *, {label(segmented, "by_value")} AS seg FROM ({per_unit(table, extra + (FIRST_VALUE if segmented else ""), where, False)})
            WHERE bucket IS NOT NULL))
GROUP BY seg, b, day""", params
