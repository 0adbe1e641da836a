"""The experiment aggregates in ClickHouse SQL, one query per request family, straight from the
events (no rollup tables: a column store scans them fast enough).

Every query starts from the same two views of one experiment: ``ev``, its events read with
``FINAL`` (each event id once, see :mod:`abtest.clickhouse.schema`), and ``units``, one row per
exposed unit (bucket: its variant, or why it is excluded; first exposure time; the attributes
of that first exposure). ``a`` are the analysable units with their segment label. The rules
are those of :mod:`abtest.aggregates.rollup_sql`: a unit's first exposure fixes its variant and
start; conversions count at or after it, the earlier ones apart (``k_pre``).

Moments come back as (n, mean, population variance[, covariance]) from ClickHouse's stable
(Welford) aggregates, i.e. sums around the mean: no cancellation however large the values.
"""

from __future__ import annotations

from abtest.attributes import NOT_SET, OTHER

EXCLUDED = "('forced', 'multiple_variants')"


def views(table: str, segmented: bool) -> str:
    """The ``WITH`` clause every query starts with; ``segmented``: label units by ``{by}``
    within ``{top}`` (the rest ``(other)``), else one label ``''``."""
    value = f"if(mapContains(attrs, {{by:String}}), attrs[{{by:String}}], '{NOT_SET}')"
    seg = f"if(has({{top:Array(String)}}, {value}), {value}, '{OTHER}')" if segmented else "''"
    return f"""WITH
ev AS (SELECT * FROM {table} FINAL WHERE experiment_id = {{e:UInt64}}),
units AS (
    SELECT unit,
           multiIf(countIf(forced) > 0, 'forced', min(variant) != max(variant), 'multiple_variants',
                   min(variant)) AS bucket,
           min(ts) AS first_ts,
           argMin(attributes, (ts, received_at, event_id)) AS attrs
    FROM ev WHERE type = 'exposure' GROUP BY unit),
a AS (SELECT unit, assumeNotNull(bucket) AS bucket, first_ts, attrs, {seg} AS seg
      FROM units WHERE bucket IS NOT NULL AND bucket NOT IN {EXCLUDED})
"""


def sizes(table: str) -> str:
    """Analysable units per raw value of ``{by}``, largest first."""
    value = f"if(mapContains(attrs, {{by:String}}), attrs[{{by:String}}], '{NOT_SET}')"
    return views(table, False) + f"""SELECT {value} AS value, count() AS n FROM a
GROUP BY value ORDER BY n DESC, value LIMIT {{limit:UInt32}}"""


def unit_counts(table: str, segmented: bool) -> str:
    """(segment, bucket, UTC day of first exposure, units): unit counts and the daily cohorts."""
    value = f"if(mapContains(attrs, {{by:String}}), attrs[{{by:String}}], '{NOT_SET}')"
    seg = f"if(has({{top:Array(String)}}, {value}), {value}, '{OTHER}')" if segmented else "''"
    return views(table, segmented) + f"""SELECT {seg} AS seg, assumeNotNull(bucket) AS b, toString(toDate(first_ts)) AS day,
       count() FROM units WHERE bucket IS NOT NULL GROUP BY seg, b, day"""


def event_totals(table: str, segmented: bool) -> str:
    """Per (segment, variant, event): units, converters, moments of the value sums after and
    before exposure and their covariance, and conversions stamped before exposure."""
    return views(table, segmented) + """SELECT u.seg, u.bucket, name, count(), countIf(m.k > 0),
       avg(m.post), varPopStable(m.post), avg(m.pre), varPopStable(m.pre), covarPopStable(m.post, m.pre),
       sum(m.k_pre)
FROM a AS u ARRAY JOIN {names:Array(String)} AS name
LEFT JOIN (
    SELECT e.unit AS unit, toString(assumeNotNull(e.event)) AS name,
           countIf(e.ts >= x.first_ts) AS k, countIf(e.ts < x.first_ts) AS k_pre,
           sumIf(ifNull(e.value, 0), e.ts >= x.first_ts) AS post, sumIf(ifNull(e.value, 0), e.ts < x.first_ts) AS pre
    FROM ev AS e INNER JOIN a AS x ON x.unit = e.unit
    WHERE e.type = 'conversion' AND e.event IN {names:Array(String)}
    GROUP BY unit, name) AS m ON m.unit = u.unit AND m.name = name
GROUP BY u.seg, u.bucket, name"""


def unit_log_times(table: str, segmented: bool) -> str:
    """Per (segment, variant, task): moments of each unit's mean log seconds over its successful
    timed attempts at or after exposure."""
    return views(table, segmented) + """SELECT seg, bucket, task, count(), avg(lt), varPopStable(lt) FROM (
    SELECT e.unit, x.seg AS seg, x.bucket AS bucket, toString(assumeNotNull(e.task)) AS task,
           avg(log(e.duration_ms / 1000)) AS lt
    FROM ev AS e INNER JOIN a AS x ON x.unit = e.unit
    WHERE e.type = 'task' AND e.task IN {tasks:Array(String)} AND e.success AND e.duration_ms > 0
          AND e.ts >= x.first_ts
    GROUP BY e.unit, seg, bucket, task)
GROUP BY seg, bucket, task"""


def returning(table: str, segmented: bool) -> str:
    """Per (segment, variant, days): units first exposed ``days`` before ``{now}``, and those with
    any event ``days`` or more after their first exposure."""
    return views(table, segmented) + """SELECT u.seg, u.bucket, d, count(),
       countIf(l.last_ts != toDateTime64(0, 6, 'UTC')
               AND dateDiff('microsecond', u.first_ts, l.last_ts) >= toInt64(d) * 86400000000)
FROM a AS u ARRAY JOIN {days:Array(UInt32)} AS d
LEFT JOIN (SELECT unit, max(ts) AS last_ts FROM ev
           WHERE type IN ('exposure', 'conversion', 'task', 'response') GROUP BY unit) AS l ON l.unit = u.unit
WHERE u.first_ts <= subtractDays({now:DateTime64(6, 'UTC')}, d)
GROUP BY u.seg, u.bucket, d"""


def daily_conversions(table: str) -> str:
    """(variant, UTC day of first exposure, UTC day of first conversion or NULL, units)."""
    return views(table, False) + """SELECT u.bucket, toString(toDate(u.first_ts)) AS day, c.day AS converted, count()
FROM a AS u LEFT JOIN (
    SELECT e.unit AS unit, toString(toDate(min(e.ts))) AS day
    FROM ev AS e INNER JOIN a AS x ON x.unit = e.unit
    WHERE e.type = 'conversion' AND e.event = {event:String} AND e.ts >= x.first_ts
    GROUP BY e.unit) AS c ON c.unit = u.unit
GROUP BY u.bucket, day, converted
SETTINGS join_use_nulls = 1"""


def attribute_names(table: str) -> str:
    """Attribute names on the newest units' first exposures."""
    return views(table, False) + """SELECT DISTINCT arrayJoin(mapKeys(attrs)) AS name FROM (
    SELECT attrs FROM units ORDER BY first_ts DESC LIMIT {sample:UInt32})
ORDER BY name LIMIT {limit:UInt32}"""
