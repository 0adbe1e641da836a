"""The experiment aggregates in ClickHouse SQL.

A report's A/B families (unit counts, event totals, log times, returning, daily conversions) are
one query (:func:`experiment`) over the units table, one row per unit and test that a
materialised view keeps as the events arrive (:mod:`abtest.clickhouse.schema`): its bucket
(variant, or why it is excluded), first exposure (time, attributes) and the sets of its
conversions and timed tries, which the query filters against the first exposure and sums. A
breakdown's segment sizes and the attribute names read it too. The order statistics and surveys
are one query each over the events, read with ``FINAL`` (each event id once) and grouped by unit
(the table's sorting key, :func:`per_unit`), with what they need as small per-unit arrays. No
joins: a first version joined the events to a units subquery and was ten times slower. The rules
are those of :mod:`abtest.aggregates.rollup_sql`: a unit's first exposure fixes its variant and
start; conversions count at or after it, the earlier ones apart (``k_pre``).

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


def per_unit(table: str, extra: str = "", where: str = "") -> str:
    """One row per exposed unit of experiment ``{e}`` from the events, with the ``extra`` aggregates."""
    return f"""SELECT unit,
       multiIf(countIf(type = 'exposure' AND forced) > 0, 'forced',
               minIf(variant, type = 'exposure') != maxIf(variant, type = 'exposure'), 'multiple_variants',
               minIf(variant, type = 'exposure')) AS bucket,
       minIf(ts, type = 'exposure') AS first_ts{extra}
FROM {table} FINAL
WHERE experiment_id = {{e:UInt64}}{where}
GROUP BY unit HAVING countIf(type = 'exposure') > 0"""


def _analysable(table: str, extra: str = "", where: str = "") -> str:
    """The exposed units that every metric counts (one variant, never forced), whole test."""
    return f"""(SELECT * FROM ({per_unit(table, extra, where)})
 WHERE bucket IS NOT NULL AND bucket NOT IN {EXCLUDED})"""


# ---- from the units table (one row per unit and test, kept by a view: abtest.clickhouse.schema) ----
# A unit's bucket and start as per_unit computes them from the events; ``first_exposure`` is NULL
# for a unit with no exposure (conversions only), which no report counts.
UNIT_BUCKET = "multiIf(forced, 'forced', variant_min != variant_max, 'multiple_variants', variant_min)"
FIRST_ATTRIBUTES = "first_attributes.4"  # the first exposure's attributes as JSON text


def units_of(units: str, columns: str) -> str:
    """One row per exposed unit of test ``{e}`` from the units table ``units`` (read ``FINAL``: rows
    of one unit not merged yet are merged here), with its ``bucket``, ``first_ts`` and ``columns``."""
    return f"""SELECT unit, {UNIT_BUCKET} AS bucket, assumeNotNull(first_exposure) AS first_ts{columns}
FROM {units} FINAL
WHERE experiment_id = {{e:UInt64}} AND first_exposure IS NOT NULL"""


# The value of ``{by}`` on a unit's first exposure, as the column ``by_value``.
BY_VALUE = f",\n       ifNull(JSONExtract({FIRST_ATTRIBUTES}, {{by:String}}, 'Nullable(String)'), '{NOT_SET}') AS by_value"


def sizes(units: str) -> str:
    """Analysable units per raw value of ``{by}``, largest first."""
    return f"""SELECT by_value, count() AS n FROM ({units_of(units, BY_VALUE)})
WHERE bucket IS NOT NULL AND bucket NOT IN {EXCLUDED}
GROUP BY by_value ORDER BY n DESC, by_value LIMIT {{limit:UInt32}}"""


def attribute_names(units: str) -> str:
    """Attribute names on the newest units' first exposures."""
    return f"""SELECT DISTINCT arrayJoin(JSONExtractKeys(attrs)) AS name FROM (
    SELECT attrs FROM ({units_of(units, f", {FIRST_ATTRIBUTES} AS attrs")}) ORDER BY first_ts DESC LIMIT {{sample:UInt32}})
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
# One read of the units table (a row per unit: bucket, first exposure, its conversions and timed
# tries), summed by segment, bucket and day of first exposure: every family's statistics per day,
# which the caller adds up (counts add, moments add around a common shift:
# abtest.aggregates.combine). A bucket is a variant or an exclusion, so the families' columns of an
# excluded bucket are simply not read. Each event and task gets its own per-unit array of (time,
# number) pairs (``c0``, ``t0`` …, after the parameters ``{c0}``, ``{t0}`` … naming them), filtered
# out of the unit's set by name. Read from the events (a per-unit GROUP BY over every event, 20 M
# units at 100 M events) the same pass took 1.2-1.6 s at 10 M events; from the units table 0.33 s
# (tests/benchmarks/README.md).


def experiment(units: str, segmented: bool, names: Sequence[str], tasks: Sequence[str], days: Sequence[int],
               daily: Sequence[str]) -> tuple[str, dict[str, object]]:
    """SQL and its parameters (``{now}`` too, when ``days``) for one row per (segment, bucket,
    day of first exposure as days since 1970-01-01): units, then per event in ``names``
    (converted, mean and population variance of the value after and before exposure, their
    covariance, conversions before exposure), per task (units with a timed try, mean and
    variance of their mean log seconds), per number of days (units exposed that long before
    now, those of them seen again after it) and per event in ``daily`` (units by day of first
    conversion, -1 for none: an array of days and one of counts), from one read of the units
    table ``units``."""
    events = sorted({*names, *daily})
    params: dict[str, object] = {f"c{i}": name for i, name in enumerate(events)}
    params.update({f"t{i}": task for i, task in enumerate(tasks)})
    params.update({f"d{i}": d for i, d in enumerate(days)})
    column = {name: f"c{i}" for i, name in enumerate(events)}
    extra = "".join(f",\n       arrayMap(x -> (x.3, x.4), arrayFilter(x -> x.2 = {{{c}:String}}, conversions)) AS {c}"
                    for c in column.values())
    extra += "".join(f",\n       arrayMap(x -> (x.3, x.4), arrayFilter(x -> x.2 = {{t{i}:String}}, tasks)) AS t{i}"
                     for i in range(len(tasks)))
    if days:
        extra += ",\n       assumeNotNull(last_event) AS last_ts"
    if segmented:
        extra += BY_VALUE
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
      FROM (SELECT *, {label(segmented, "by_value")} AS seg FROM ({units_of(units, extra)})
            WHERE bucket IS NOT NULL))
GROUP BY seg, b, day""", params
