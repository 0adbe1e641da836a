"""The usability-study aggregates in ClickHouse SQL: the rules of
:mod:`abtest.aggregates.events_sql`, written for the events table here.

Studies are small (tens to hundreds of participants), so these queries read the events as the
SQL source does, per attempt or answer, and join where it does: a breakdown joins each
participant's segment (the attribute on their first exposure; participants never exposed are in
no segment), and the within-subjects pairs join a participant's rows on one design to their rows
on the others. Every read uses ``FINAL`` (each event id once, see :mod:`abtest.clickhouse.schema`).

A family with several requests (scores of several questionnaires, pairs against one baseline …)
is one query: each request is a *branch* tagged with its index ``r``, and the branches are
combined with ``UNION ALL`` before one ``GROUP BY``. Every query's first column is the segment
label (``''`` for the whole study), then ``r`` in a branched one. Moments come back as (n, mean, population variance) from
ClickHouse's stable aggregates, as in :mod:`abtest.clickhouse.queries`.

Questionnaire scores are computed here from each questionnaire's one declaration
(:mod:`abtest.questionnaires`), from ``answers``, the stored JSON text.
"""

from __future__ import annotations

from collections.abc import Sequence

from abtest.clickhouse.queries import FIRST, VALUE, label
from abtest.questionnaires import QUESTIONNAIRES, Banded, Linear

_TASKS = "type = 'task' AND task IN {tasks:Array(String)}"


def _events(table: str, where: str, columns: str = "*") -> str:
    """The study's events matching ``where``, each id once."""
    return f"(SELECT {columns} FROM {table} FINAL WHERE experiment_id = {{e:UInt64}} AND {where})"


def _first_attributes(table: str) -> str:
    return f"""SELECT unit, argMin(attributes, {FIRST}) AS attrs
    FROM {table} FINAL WHERE experiment_id = {{e:UInt64}} AND type = 'exposure' GROUP BY unit"""


def segments(table: str) -> str:
    """(unit, segment label) of every exposed participant: the value of ``{by}`` on their first
    exposure if among ``{top}``, else the pooled label."""
    return f"SELECT unit, {label(True)} AS seg FROM ({_first_attributes(table)})"


def sizes(table: str) -> str:
    """Exposed participants per raw value of ``{by}``, largest first (every participant counts:
    within subjects one sees every design, which an A/B test would exclude)."""
    return f"""SELECT {VALUE} AS value, count() AS n FROM ({_first_attributes(table)})
GROUP BY value ORDER BY n DESC, value LIMIT {{limit:UInt32}}"""


def _scoped(source: str, unit: str, table: str, segmented: bool) -> tuple[str, str]:
    """(segment column, FROM clause): ``source`` alone, or joined to its rows' segments."""
    if not segmented:
        return "''", source
    return "s.seg", f"{source} INNER JOIN ({segments(table)}) AS s ON s.unit = {unit}"


def _branches(branches: Sequence[str]) -> str:
    """Each request's rows (segment first) tagged with its index ``r``, together: (seg, r, …)."""
    return "\nUNION ALL\n".join(f"SELECT seg, {i} AS r, * EXCEPT (seg) FROM ({sql})" for i, sql in enumerate(branches))


def _moments(rows: str, groups: str) -> str:
    """``rows`` selects (groups …, value): per group, (n, mean, population variance)."""
    return f"""SELECT {groups}, count(), avg(value), varPopStable(value) FROM ({rows})
WHERE value IS NOT NULL GROUP BY {groups}"""


def _log_seconds(duration: str) -> str:
    """Log seconds; NULL for a zero time (as SQLite's ``ln`` gives)."""
    return f"if({duration} > 0, log({duration} / 1000), NULL)"


# ---- scores, from the questionnaire's declaration ----------------------------------------------------


def _item(answers: str, i: int) -> str:
    return f"JSONExtract({answers}, {i + 1}, 'Nullable(Float64)')"


def score(name: str, answers: str = "answers", codes: bool = False) -> str:
    """The declared score of a stored response (linear score, or with ``codes`` or for a banded
    questionnaire the band's code), in the order of :func:`abtest.aggregates.events_sql.score_sql`."""
    scoring = QUESTIONNAIRES[name].scoring
    if isinstance(scoring, Linear) and not codes:
        terms = "".join(f" + {w!r} * {_item(answers, i)}" for i, w in enumerate(scoring.weights))
        return f"(({scoring.offset!r}{terms}) * {scoring.factor!r})"
    assert isinstance(scoring, Banded)
    return band(scoring, answers, code=True)


def band(scoring: Banded, answers: str = "answers", code: bool = False) -> str:
    """The band of a one-item answer: its index in declaration order (or its code); NULL if none."""
    a = _item(answers, 0)
    arms = ", ".join(f"{a} >= {b.low} AND {a} <= {b.high}, {float(b.code) if code else i!r}"
                     for i, b in enumerate(scoring.bands))
    return f"multiIf({arms}, NULL)"


def _responses(i: int) -> str:
    return f"type = 'response' AND questionnaire = {{q{i}:String}}"


# ---- per design ----------------------------------------------------------------------------------------


def attempts(table: str, segmented: bool) -> str:
    """(segment, task, design, attempts, successes) for the tasks ``{tasks}``."""
    seg, source = _scoped(f"{_events(table, _TASKS)} AS x", "x.unit", table, segmented)
    return f"""SELECT {seg} AS seg, x.task, x.variant, count(), countIf(ifNull(x.success, false)) FROM {source}
GROUP BY seg, x.task, x.variant"""


def attempt_log_times(table: str, segmented: bool) -> str:
    """(segment, task, design, moments of log seconds of the successful attempts)."""
    seg, source = _scoped(f"{_events(table, _TASKS + ' AND success')} AS x", "x.unit", table, segmented)
    rows = f"SELECT {seg} AS seg, x.task AS task, x.variant AS variant, {_log_seconds('x.duration_ms')} AS value FROM {source}"
    return _moments(rows, "seg, task, variant")


def task_answers(table: str, segmented: bool) -> str:
    """(segment, task, design, success, duration_ms, answers) of every attempt, oldest first (ties
    by event id)."""
    seg, source = _scoped(f"{_events(table, _TASKS)} AS x", "x.unit", table, segmented)
    return f"""SELECT {seg} AS seg, x.task, x.variant, x.success, x.duration_ms, x.answers FROM {source}
ORDER BY x.ts, x.event_id"""


def scores(table: str, segmented: bool, requests: Sequence[tuple[str, str | None, bool]]) -> str:
    """(segment, r, design, moments of the score) for each (questionnaire ``{q<r>}``, task
    ``{t<r>}`` or None: any, per participant) request: over the answers, or over each
    participant's mean score."""
    branches = []
    for i, (name, task, per_participant) in enumerate(requests):
        where = _responses(i) + (f" AND task = {{t{i}:String}}" if task is not None else "")
        if per_participant:
            means = f"""(SELECT variant, unit, avg({score(name)}) AS score FROM {table} FINAL
                WHERE experiment_id = {{e:UInt64}} AND {where} GROUP BY variant, unit) AS x"""
            seg, source = _scoped(means, "x.unit", table, segmented)
            branches.append(f"SELECT {seg} AS seg, x.variant AS variant, x.score AS value FROM {source}")
        else:
            seg, source = _scoped(f"{_events(table, where)} AS x", "x.unit", table, segmented)
            branches.append(f"SELECT {seg} AS seg, x.variant AS variant, {score(name, 'x.answers')} AS value "
                            f"FROM {source}")
    return _moments(_branches(branches), "seg, r, variant")


def bands(table: str, segmented: bool, names: Sequence[str]) -> str:
    """(segment, r, design, band index or NULL, answers) for each banded questionnaire ``{q<r>}``."""
    branches = []
    for i, name in enumerate(names):
        scoring = QUESTIONNAIRES[name].scoring
        assert isinstance(scoring, Banded)
        seg, source = _scoped(f"{_events(table, _responses(i))} AS x", "x.unit", table, segmented)
        branches.append(f"SELECT {seg} AS seg, x.variant AS variant, {band(scoring, 'x.answers')} AS band "
                        f"FROM {source}")
    return f"SELECT seg, r, variant, band, count() FROM ({_branches(branches)}) GROUP BY seg, r, variant, band"


def texts(table: str) -> str:
    """(design, answers) of the responses to ``{q0}``, oldest first (ties by event id)."""
    return f"""SELECT variant, answers FROM {_events(table, _responses(0))} ORDER BY ts, event_id"""


# ---- within subjects: each participant against themselves ----------------------------------------------


def _pairs(table: str, segmented: bool, where: str, base: str, other: str, i: int, select: str) -> str:
    """``select`` over each participant's rows on baseline ``{b<r>}`` (``a``, columns ``base``)
    joined to their rows on the other designs (``b``, columns ``other``), both matching ``where``."""
    a = _events(table, f"{where} AND variant = {{b{i}:String}}", f"unit, {base}")
    b = _events(table, f"{where} AND variant != {{b{i}:String}}", f"unit, variant, {other}")
    seg, source = _scoped(f"{a} AS a INNER JOIN {b} AS b ON b.unit = a.unit", "a.unit", table, segmented)
    return select.format(seg=seg, source=source)


def paired_attempts(table: str, segmented: bool, count: int) -> str:
    """(segment, r, other design, pairs, succeeded on the baseline only, on the other only) for
    each (task ``{t<r>}``, baseline ``{b<r>}``) request: every pair of one participant's attempts."""
    ok = "ifNull(success, false) AS ok"
    branches = [_pairs(table, segmented, f"type = 'task' AND task = {{t{i}:String}}", ok, ok, i,
                       "SELECT {seg} AS seg, b.variant AS variant, count(), countIf(a.ok AND NOT b.ok), "
                       "countIf(NOT a.ok AND b.ok) FROM {source} GROUP BY seg, variant")
                for i in range(count)]
    return f"SELECT * FROM ({_branches(branches)})"


def paired_log_times(table: str, segmented: bool, count: int) -> str:
    """(segment, r, other design, moments of log(t_other) − log(t_baseline)) over the pairs of
    successful attempts, for each (task ``{t<r>}``, baseline ``{b<r>}``) request."""
    diff = f"{_log_seconds('b.duration_ms')} - {_log_seconds('a.duration_ms')}"
    branches = [_pairs(table, segmented, f"type = 'task' AND task = {{t{i}:String}} AND success", "duration_ms",
                       "duration_ms", i, f"SELECT {{seg}} AS seg, b.variant AS variant, {diff} AS value FROM {{source}}")
                for i in range(count)]
    return _moments(_branches(branches), "seg, r, variant")


def paired_scores(table: str, segmented: bool, requests: Sequence[tuple[str, str | None, bool, bool]]) -> str:
    """(segment, r, other design, moments of score on it − score on the baseline ``{b<r>}``) for
    each (questionnaire ``{q<r>}``, task ``{t<r>}`` or None, per participant, band codes) request:
    per pair of answers (about the same task, when the baseline's answer names one), or per
    participant's mean score on each design."""
    branches = []
    for i, (name, task, per_participant, codes) in enumerate(requests):
        if per_participant:
            means = f"""SELECT variant, unit, avg({score(name, codes=codes)}) AS score FROM {table} FINAL
                WHERE experiment_id = {{e:UInt64}} AND {_responses(i)} GROUP BY variant, unit"""
            a = f"(SELECT unit, score FROM ({means}) WHERE variant = {{b{i}:String}}) AS a"
            b = f"(SELECT unit, variant, score FROM ({means}) WHERE variant != {{b{i}:String}}) AS b"
            seg, source = _scoped(f"{a} INNER JOIN {b} ON b.unit = a.unit", "a.unit", table, segmented)
            branches.append(f"SELECT {seg} AS seg, b.variant AS variant, b.score - a.score AS value FROM {source}")
            continue
        base_where = _responses(i) + (f" AND task = {{t{i}:String}}" if task is not None else "")
        a = _events(table, f"{base_where} AND variant = {{b{i}:String}}", "unit, task, answers")
        b = _events(table, f"{_responses(i)} AND variant != {{b{i}:String}}", "unit, variant, task, answers")
        seg, source = _scoped(f"{a} AS a INNER JOIN {b} AS b ON b.unit = a.unit", "a.unit", table, segmented)
        diff = f"{score(name, 'b.answers', codes)} - {score(name, 'a.answers', codes)}"
        branches.append(f"SELECT {seg} AS seg, b.variant AS variant, {diff} AS value FROM {source} "
                        "WHERE isNull(a.task) OR b.task = a.task")
    return _moments(_branches(branches), "seg, r, variant")


def export(table: str) -> str:
    """Every task and response event of study ``{e}`` (tasks ``{tasks}`` only), as
    :func:`abtest.studies.store.export_rows` reads them from the registry."""
    return f"""SELECT unit, variant, type, task, success, duration_ms, questionnaire, answers, ts
FROM {_events(table, "(type = 'response' OR (type = 'task' AND has({tasks:Array(String)}, task)))")}
ORDER BY unit, ts, event_id"""
