"""The experiment aggregates in ClickHouse SQL, one query per request family, straight from the
events (no rollup tables: a column store scans them fast enough).

Every query is one scan of the experiment's events read with ``FINAL`` (each event id once,
see :mod:`abtest.clickhouse.schema`), grouped by unit (the table's sorting key): per unit, its
bucket (variant, or why it is excluded), first exposure time and attributes, plus whatever the
family needs as small arrays (its conversions, its timed attempts), which the outer query then
filters against the first exposure and sums per variant and segment. No joins: a first version
joined the events to a units subquery and was ten times slower. The rules
are those of :mod:`abtest.aggregates.rollup_sql`: a unit's first exposure fixes its variant and
start; conversions count at or after it, the earlier ones apart (``k_pre``).

Moments come back as (n, mean, population variance[, covariance]) from ClickHouse's stable
(Welford) aggregates, i.e. sums around the mean: no cancellation however large the values.
"""

from __future__ import annotations

from abtest.attributes import NOT_SET, OTHER

EXCLUDED = "('forced', 'multiple_variants')"
VALUE = f"if(mapContains(attrs, {{by:String}}), attrs[{{by:String}}], '{NOT_SET}')"


def label(segmented: bool) -> str:
    """A unit's segment label from its first exposure's ``attrs`` (``''``: the whole test)."""
    return f"if(has({{top:Array(String)}}, {VALUE}), {VALUE}, '{OTHER}')" if segmented else "''"


def per_unit(table: str, extra: str = "", where: str = "", attrs: bool = True) -> str:
    """One row per exposed unit of experiment ``{e}``, with the ``extra`` aggregates (and the
    first exposure's attributes when ``attrs``: the costliest aggregate, skipped when unused)."""
    first_attrs = ("argMinIf(attributes, (ts, received_at, event_id), type = 'exposure')" if attrs
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


def _analysable(table: str, segmented: bool, extra: str = "", where: str = "") -> str:
    return f"""(SELECT *, {label(segmented)} AS seg FROM ({per_unit(table, extra, where, segmented)})
 WHERE bucket IS NOT NULL AND bucket NOT IN {EXCLUDED})"""


def sizes(table: str) -> str:
    """Analysable units per raw value of ``{by}``, largest first."""
    return f"""SELECT {VALUE} AS value, count() AS n FROM (SELECT * FROM ({per_unit(table, where=" AND type = 'exposure'")})
      WHERE bucket IS NOT NULL AND bucket NOT IN {EXCLUDED})
GROUP BY value ORDER BY n DESC, value LIMIT {{limit:UInt32}}"""


def unit_counts(table: str, segmented: bool) -> str:
    """(segment, bucket, UTC day of first exposure, units): unit counts and the daily cohorts."""
    return f"""SELECT {label(segmented)} AS seg, assumeNotNull(bucket) AS b, toString(toDate(first_ts)) AS day, count()
FROM ({per_unit(table, where=" AND type = 'exposure'", attrs=segmented)}) WHERE bucket IS NOT NULL
GROUP BY seg, b, day"""


def event_totals(table: str, segmented: bool) -> str:
    """Per (segment, variant, event): units, converters, moments of the value sums after and
    before exposure and their covariance, and conversions stamped before exposure."""
    conversions = """,
       groupArrayIf((toString(assumeNotNull(event)), ts, ifNull(value, 0)),
                    type = 'conversion' AND event IN {names:Array(String)}) AS conv"""
    where = " AND (type = 'exposure' OR (type = 'conversion' AND event IN {names:Array(String)}))"
    return f"""SELECT seg, bucket, name, count(), countIf(k > 0), avg(post), varPopStable(post), avg(pre),
       varPopStable(pre), covarPopStable(post, pre), sum(k_pre)
FROM (SELECT seg, bucket, name, arrayFilter(x -> x.1 = name, conv) AS mine,
             length(arrayFilter(x -> x.2 >= first_ts, mine)) AS k, length(mine) - k AS k_pre,
             arraySum(arrayMap(x -> if(x.2 >= first_ts, x.3, 0), mine)) AS post,
             arraySum(arrayMap(x -> if(x.2 < first_ts, x.3, 0), mine)) AS pre
      FROM {_analysable(table, segmented, conversions, where)} ARRAY JOIN {{names:Array(String)}} AS name)
GROUP BY seg, bucket, name"""


def unit_log_times(table: str, segmented: bool) -> str:
    """Per (segment, variant, task): moments of each unit's mean log seconds over its successful
    timed attempts at or after exposure."""
    attempts = """,
       groupArrayIf((toString(assumeNotNull(task)), ts, assumeNotNull(log(duration_ms / 1000))),
                    type = 'task' AND task IN {tasks:Array(String)} AND success AND duration_ms > 0) AS tries"""
    where = " AND (type = 'exposure' OR (type = 'task' AND task IN {tasks:Array(String)}))"
    return f"""SELECT seg, bucket, name, count(), avg(lt), varPopStable(lt)
FROM (SELECT seg, bucket, name, arrayMap(x -> x.3, arrayFilter(x -> x.1 = name AND x.2 >= first_ts, tries)) AS logs,
             arrayAvg(logs) AS lt
      FROM {_analysable(table, segmented, attempts, where)} ARRAY JOIN {{tasks:Array(String)}} AS name
      WHERE length(logs) > 0)
GROUP BY seg, bucket, name"""


def returning(table: str, segmented: bool) -> str:
    """Per (segment, variant, days): units first exposed ``days`` before ``{now}``, and those with
    any event ``days`` or more after their first exposure."""
    last = ",\n       maxIf(ts, type IN ('exposure', 'conversion', 'task', 'response', 'vital')) AS last_ts"
    return f"""SELECT seg, bucket, d, count(),
       countIf(dateDiff('microsecond', first_ts, last_ts) >= toInt64(d) * 86400000000)
FROM {_analysable(table, segmented, last)} ARRAY JOIN {{days:Array(UInt32)}} AS d
WHERE first_ts <= subtractDays({{now:DateTime64(6, 'UTC')}}, d)
GROUP BY seg, bucket, d"""


def daily_conversions(table: str) -> str:
    """(variant, UTC day of first exposure, UTC day of first conversion or NULL, units)."""
    conversions = ",\n       groupArrayIf(ts, type = 'conversion' AND event = {event:String}) AS conv"
    where = " AND (type = 'exposure' OR (type = 'conversion' AND event = {event:String}))"
    return f"""SELECT bucket, toString(toDate(first_ts)) AS day,
       if(empty(after), NULL, toString(toDate(arrayMin(after)))) AS converted, count()
FROM (SELECT bucket, first_ts, arrayFilter(x -> x >= first_ts, conv) AS after
      FROM {_analysable(table, False, conversions, where)})
GROUP BY bucket, day, converted"""


def attribute_names(table: str) -> str:
    """Attribute names on the newest units' first exposures."""
    return f"""SELECT DISTINCT arrayJoin(mapKeys(attrs)) AS name FROM (
    SELECT attrs FROM ({per_unit(table, where=" AND type = 'exposure'")}) ORDER BY first_ts DESC LIMIT {{sample:UInt32}})
ORDER BY name LIMIT {{limit:UInt32}}"""


# ---- surveys: each visitor once, in the variant of their first survey event, whole survey only ----
# (the rules of abtest.aggregates.survey_sql)

_SURVEY_EVENTS = "FROM {table} FINAL WHERE experiment_id = {{e:UInt64}} AND NOT forced AND variant IS NOT NULL"
_FIRST = "(ts, received_at, event_id)"


def _visitors(table: str, extra: str, where: str = "") -> str:
    """One row per visitor: the variant of their first survey event, and ``extra``."""
    return f"""SELECT unit, argMin(assumeNotNull(variant), {_FIRST}) AS first_variant{extra}
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
             argMin(JSONExtractFloat(assumeNotNull(answers), 1), {_FIRST}) AS value
      {_SURVEY_EVENTS.format(table=table)} AND type = 'response' AND questionnaire != 'text'
        AND task IN {{tasks:Array(String)}}
      GROUP BY task, unit) AS a
INNER JOIN ({_visitors(table, "")}) AS v ON v.unit = a.unit
GROUP BY a.task, v.first_variant, a.value"""


def answer_texts(table: str) -> str:
    """(variant, text): each visitor's first answer to the text question ``{task}``, oldest first."""
    return f"""SELECT v.first_variant, JSONExtractString(a.first, 1)
FROM (SELECT unit, argMin(assumeNotNull(answers), {_FIRST}) AS first, min({_FIRST}) AS at
      {_SURVEY_EVENTS.format(table=table)} AND type = 'response' AND questionnaire = 'text' AND task = {{task:String}}
      GROUP BY unit) AS a
INNER JOIN ({_visitors(table, "")}) AS v ON v.unit = a.unit
ORDER BY a.at"""
