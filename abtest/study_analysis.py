"""Study results: a usability study's events → the results document (DESIGN §4.5).

Per task and design: completion rate with the adjusted-Wald interval (``<task>-success``,
conversion), time on task of successful attempts as a geometric mean (``<task>-time``,
duration) and the SEQ (``<task>-SEQ``); per design: ``SEQ`` (each participant's mean over the
tasks), ``SUS``, ``UMUX-Lite`` and ``NPS``. Designs are compared against the first one: between
subjects with :func:`~abtest.stats.proportions.compare_proportions` (z, N−1 or Fisher by table
size), Welch on log times and Welch t on scores; within subjects (every participant saw every
design) with the mid-p McNemar test, the paired t-test on log times and the paired t-test on
scores; NPS by the difference of two independent scores with trinomial standard errors, or
within subjects by the paired difference of each participant's promoter/passive/detractor
codes. Sauro & Lewis, *Quantifying the User Experience* (2nd ed.), ch. 3, 5 and 8.

As in :mod:`abtest.analysis`, the database aggregates (``GROUP BY`` to counts, sums and sums of
squares; the SUS score is computed in SQL from the stored answers); only the open comments are
read row by row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from abtest import report as rpt
from abtest.errors import AbtestError
from abtest.models import Event, StudyParticipant, utcnow
from abtest.report import Comparison, MetricResult, PowerResult, Report, SrmResult, VariantResult
from abtest.stats import durations, means, paired, proportions, questionnaires
from abtest.stats.summary import Counts, Effect, Estimate, Interval, Moments, t_two_sided_p
from abtest.studies import ABANDON_AFTER, StudyDef, get_study

ALPHA = 0.05
_EV = Event.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class DesignParticipants:
    design: str
    started: int
    finished: int
    abandoned: int
    in_progress: int

    def to_dict(self) -> dict[str, Any]:
        return {"design": self.design, "started": self.started, "finished": self.finished,
                "abandoned": self.abandoned, "in_progress": self.in_progress}


@dataclass(frozen=True, slots=True)
class StudyResults:
    report: Report
    within_subjects: bool
    participants: tuple[DesignParticipants, ...]
    # questionnaire → design → extra readings (SUS grade and percentile, UMUX-Lite SUS-comparable)
    scores: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    comments: dict[str, list[str]] = field(default_factory=dict)

    @property
    def abandoned(self) -> int:
        return sum(p.abandoned for p in self.participants) if not self.within_subjects else \
            max((p.abandoned for p in self.participants), default=0)

    def to_dict(self) -> dict[str, Any]:
        out = self.report.to_dict()
        out.update(kind="study", within_subjects=self.within_subjects,
                   participants=[p.to_dict() for p in self.participants], abandoned=self.abandoned,
                   scores=self.scores, comments=self.comments)
        return out


# --- SQL pieces ---------------------------------------------------------------------------------


def _answer(i: int) -> sa.ColumnElement[float]:
    return _EV.c.answers[i].as_float()


def _sus_score() -> sa.ColumnElement[float]:
    odd = sum((_answer(i) - 1 for i in range(0, 10, 2)), sa.literal(0.0))
    even = sum((5 - _answer(i) for i in range(1, 10, 2)), sa.literal(0.0))
    return (odd + even) * 2.5


def _umux_raw() -> sa.ColumnElement[float]:
    return (_answer(0) + _answer(1) - 2) / 12.0 * 100.0


def _log_seconds(column: sa.ColumnElement[float]) -> sa.ColumnElement[float]:
    return sa.func.ln(column / 1000.0)


def _moments(rows: Any) -> dict[Any, Moments]:
    """Rows of (group..., n, Σx, Σx²) → Moments per group (the group is a tuple if > 1 column)."""
    out = {}
    for *group, n, total, total_sq in rows:
        out[group[0] if len(group) == 1 else tuple(group)] = Moments(int(n), float(total or 0), float(total_sq or 0))
    return out


def _moment_columns(value: sa.ColumnElement[float]) -> list[sa.ColumnElement[Any]]:
    return [sa.func.count(), sa.func.sum(value), sa.func.sum(value * value)]


def _where(experiment_id: int, *conditions: sa.ColumnElement[bool]) -> list[sa.ColumnElement[bool]]:
    return [_EV.c.experiment_id == experiment_id, *conditions]


def _responses(name: str) -> sa.ColumnElement[bool]:
    return sa.and_(_EV.c.type == "response", _EV.c.questionnaire == name)


def _score_moments(conn: sa.Connection, experiment_id: int, name: str, score: sa.ColumnElement[float]
                   ) -> dict[str, Moments]:
    return _moments(conn.execute(sa.select(_EV.c.variant, *_moment_columns(score))
                                 .where(*_where(experiment_id, _responses(name))).group_by(_EV.c.variant)))


def _paired_scores(conn: sa.Connection, experiment_id: int, name: str, score: Callable[[Any], Any],
                   baseline: str, other: str, task: str | None = None) -> Moments | None:
    """Within subjects: moments of (score on ``other`` − score on ``baseline``) per participant."""
    a, b = _EV.alias("a"), _EV.alias("b")
    conditions = [a.c.experiment_id == experiment_id, a.c.type == "response", a.c.questionnaire == name,
                  a.c.variant == baseline, b.c.variant == other]
    if task is not None:
        conditions.append(a.c.task == task)
    diff = score(b) - score(a)
    row = conn.execute(sa.select(*_moment_columns(diff)).select_from(a.join(b, sa.and_(
        b.c.experiment_id == a.c.experiment_id, b.c.unit == a.c.unit, b.c.type == "response",
        b.c.questionnaire == a.c.questionnaire, sa.or_(a.c.task.is_(None), b.c.task == a.c.task))))
        .where(*conditions)).one()
    return Moments(int(row[0]), float(row[1] or 0), float(row[2] or 0)) if row[0] else None


# --- turning estimates into report records ------------------------------------------------------


def _variant(design: str, n: int, compute: Callable[[], Estimate | tuple[float, Interval]]) -> VariantResult:
    try:
        est = compute()
    except (AbtestError, ZeroDivisionError) as exc:
        return VariantResult(design, n, None, None, reason=str(getattr(exc, "message", exc)))
    if isinstance(est, tuple):
        return VariantResult(design, n, est[0], est[1].as_tuple())
    return VariantResult(design, n, est.value, est.ci.as_tuple())


def _comparison(design: str, baseline: str, compute: Callable[[], Effect]) -> Comparison:
    try:
        effect = compute()
    except (AbtestError, ZeroDivisionError) as exc:
        return Comparison(design, baseline, None, "difference", None, None, None, None, False, "",
                          reason=str(getattr(exc, "message", exc)))
    relative = effect.relative if effect.effect_kind == "difference" else effect.effect - 1
    if relative is not None and not math.isfinite(relative):
        relative = None
    return Comparison(design, baseline, effect.effect, effect.effect_kind, relative, effect.ci.as_tuple(),
                      effect.p_value, effect.p_value, effect.p_value < ALPHA, effect.method)


def _paired_t(diff: Moments | None) -> Effect:
    """Paired t-test of a score from the moments of the per-participant differences."""
    if diff is None:
        raise AbtestError("no participant answered for both designs")
    est = means.mean_interval(diff, ALPHA)
    se = math.sqrt(diff.variance / diff.n)
    stat = est.value / se
    return Effect(est.value, "difference", est.ci, t_two_sided_p(stat, diff.n - 1), se,
                  "paired t-test of the per-participant differences", statistic=stat, df=diff.n - 1)


def _mean_metric(name: str, designs: list[str], stats: dict[str, Moments], within: bool, unit: str,
                 paired_diff: Callable[[str], Moments | None]) -> MetricResult:
    empty = Moments(0, 0.0, 0.0)
    variants = tuple(_variant(d, stats.get(d, empty).n, lambda d=d: means.mean_interval(stats.get(d, empty), ALPHA))
                     for d in designs)
    base = designs[0]
    if within:
        comparisons = tuple(_comparison(d, base, lambda d=d: _paired_t(paired_diff(d))) for d in designs[1:])
    else:
        comparisons = tuple(_comparison(d, base, lambda d=d: means.welch_test(stats.get(base, empty),
                                                                               stats.get(d, empty), ALPHA))
                            for d in designs[1:])
    return MetricResult(name, "mean", False, "mean with t interval", variants, comparisons, unit=unit)


# --- the analysis -------------------------------------------------------------------------------


def _participants(session: Session, experiment_id: int, designs: list[str], now: datetime
                  ) -> tuple[DesignParticipants, ...]:
    table = StudyParticipant.__table__  # type: ignore[attr-defined]
    stale = now - ABANDON_AFTER
    counts = {d: [0, 0, 0, 0] for d in designs}
    rows = session.connection().execute(
        sa.select(table.c.designs, table.c.finished_at, table.c.abandoned_at, table.c.updated_at)
        .where(table.c.experiment_id == experiment_id)).all()
    for order, finished, abandoned, updated in rows:
        state = 1 if finished is not None else 2 if abandoned is not None or updated < stale else 3
        for d in order:
            if d in counts:
                counts[d][0] += 1
                counts[d][state] += 1
    return tuple(DesignParticipants(d, *counts[d]) for d in designs)


def analyze_study(engine: sa.Engine, key: str, now: datetime | None = None) -> StudyResults:
    """The results of study ``key`` (NotFound for unknown keys and for plain experiments)."""
    now = now or utcnow()
    with Session(engine) as session:
        row, study = get_study(session, key)
        assert row.id is not None
        eid = row.id
        designs = list(study.variant_keys)
        participants = _participants(session, eid, designs, now)
        conn = session.connection()
        metrics = _task_metrics(conn, eid, study, designs)
        metrics += _questionnaire_metrics(conn, eid, study, designs)
        scores = _scores(metrics)
        comments: dict[str, list[str]] = {d: [] for d in designs}
        for variant, answers in conn.execute(
                sa.select(_EV.c.variant, _EV.c.answers).where(*_where(eid, _responses("comment")))
                .order_by(_EV.c.ts, _EV.c.id)):
            if variant in comments and answers:
                comments[variant].append(str(answers[0]))
    units = {p.design: p.started for p in participants}
    total = sum(units.values())
    primary = metrics[0] if metrics else None
    power = PowerResult(None, None)
    verdict = ("No participants yet: send the study link (/s/" + key + ") to people." if total == 0 else
               rpt.verdict(primary, "fixed", ALPHA, power, total, True)
               .replace("not significant at the planned sample: no winner", "not significant with these participants"))
    report = Report(
        experiment=key, status=row.status, analysis="fixed", alpha=ALPHA, units=units,
        srm=SrmResult(None, False, method="not applicable",
                      reason="usability studies are too small for a sample-ratio check"),
        metrics=tuple(metrics), power=power, verdict=verdict,
        excluded={"abandoned": max((p.abandoned for p in participants), default=0) if study.within_subjects
                  else sum(p.abandoned for p in participants)},
    )
    return StudyResults(report, study.within_subjects, participants, scores, comments)


def _task_metrics(conn: sa.Connection, eid: int, study: StudyDef, designs: list[str]) -> list[MetricResult]:
    base = designs[0]
    within = study.within_subjects
    is_task = _EV.c.type == "task"
    success_rows = conn.execute(
        sa.select(_EV.c.variant, _EV.c.task, sa.func.count(), sa.func.sum(sa.case((_EV.c.success, 1), else_=0)))
        .where(*_where(eid, is_task)).group_by(_EV.c.variant, _EV.c.task)).all()
    successes = {(v, t): Counts(int(n), int(x or 0)) for v, t, n, x in success_rows}
    log_t = _log_seconds(_EV.c.duration_ms)
    times = _moments(conn.execute(sa.select(_EV.c.variant, _EV.c.task, *_moment_columns(log_t))
                                  .where(*_where(eid, is_task, _EV.c.success == sa.true()))
                                  .group_by(_EV.c.variant, _EV.c.task)))
    seq = _moments(conn.execute(sa.select(_EV.c.variant, _EV.c.task, *_moment_columns(_answer(0)))
                                .where(*_where(eid, _responses("SEQ"))).group_by(_EV.c.variant, _EV.c.task)))
    empty_c, empty_m = Counts(0, 0), Moments(0, 0.0, 0.0)
    metrics: list[MetricResult] = []
    for position, task in enumerate(study.tasks):
        t = task.key
        counts = {d: successes.get((d, t), empty_c) for d in designs}
        variants = tuple(_variant(d, counts[d].n, lambda d=d: proportions.adjusted_wald_interval(counts[d], ALPHA))
                         for d in designs)
        if within:
            comparisons = tuple(_comparison(d, base, lambda d=d: _mcnemar(conn, eid, t, base, d)) for d in designs[1:])
        else:
            comparisons = tuple(_comparison(d, base, lambda d=d: proportions.compare_proportions(
                counts[base], counts[d], ALPHA)) for d in designs[1:])
        metrics.append(MetricResult(f"{t}-success", "conversion", position == 0,
                                    "adjusted Wald (Agresti-Coull) interval", variants, comparisons, unit="rate"))

        logs = {d: times.get((d, t), empty_m) for d in designs}
        variants = tuple(_variant(d, logs[d].n, lambda d=d: durations.geometric_mean(logs[d], ALPHA)) for d in designs)
        if within:
            comparisons = tuple(_comparison(d, base, lambda d=d: durations.paired_durations(
                _paired_log_times(conn, eid, t, base, d), ALPHA)) for d in designs[1:])
        else:
            comparisons = tuple(_comparison(d, base, lambda d=d: durations.compare_durations(logs[base], logs[d], ALPHA))
                                for d in designs[1:])
        metrics.append(MetricResult(f"{t}-time", "duration", False,
                                    "geometric mean of successful task times with t interval on log times",
                                    variants, comparisons, unit="seconds (geometric mean)"))

        seq_t = {d: seq.get((d, t), empty_m) for d in designs}
        metrics.append(_mean_metric(f"{t}-SEQ", designs, seq_t, within, "SEQ (1–7)",
                                    lambda d, t=t: _paired_scores(conn, eid, "SEQ", lambda e: e.c.answers[0].as_float(),
                                                                  base, d, task=t)))
    # SEQ across tasks: each participant's mean, so a person counts once per design.
    per_unit = (sa.select(_EV.c.variant, _EV.c.unit, sa.func.avg(_answer(0)).label("seq"))
                .where(*_where(eid, _responses("SEQ"))).group_by(_EV.c.variant, _EV.c.unit).subquery())
    overall = _moments(conn.execute(sa.select(per_unit.c.variant, *_moment_columns(per_unit.c.seq))
                                    .group_by(per_unit.c.variant)))
    metrics.append(_mean_metric("SEQ", designs, overall, within, "SEQ (1–7), mean of each participant's tasks",
                                lambda d: _paired_seq(conn, eid, base, d)))
    return metrics


def _mcnemar(conn: sa.Connection, eid: int, task: str, baseline: str, other: str) -> Effect:
    a, b = _EV.alias("a"), _EV.alias("b")
    a_ok = sa.case((a.c.success, 1), else_=0)
    b_ok = sa.case((b.c.success, 1), else_=0)
    n, base_only, other_only = conn.execute(
        sa.select(sa.func.count(), sa.func.sum(a_ok * (1 - b_ok)), sa.func.sum((1 - a_ok) * b_ok))
        .select_from(a.join(b, sa.and_(b.c.experiment_id == a.c.experiment_id, b.c.unit == a.c.unit,
                                       b.c.type == "task", b.c.task == a.c.task)))
        .where(a.c.experiment_id == eid, a.c.type == "task", a.c.task == task, a.c.variant == baseline,
               b.c.variant == other)).one()
    return paired.mcnemar(int(n), int(base_only or 0), int(other_only or 0), ALPHA, mid_p=True)


def _paired_log_times(conn: sa.Connection, eid: int, task: str, baseline: str, other: str) -> Moments:
    """Moments of log(t_other) − log(t_baseline) over participants who succeeded on both."""
    a, b = _EV.alias("a"), _EV.alias("b")
    diff = _log_seconds(b.c.duration_ms) - _log_seconds(a.c.duration_ms)
    n, total, total_sq = conn.execute(
        sa.select(*_moment_columns(diff))
        .select_from(a.join(b, sa.and_(b.c.experiment_id == a.c.experiment_id, b.c.unit == a.c.unit,
                                       b.c.type == "task", b.c.task == a.c.task)))
        .where(a.c.experiment_id == eid, a.c.type == "task", a.c.task == task, a.c.variant == baseline,
               b.c.variant == other, a.c.success == sa.true(), b.c.success == sa.true())).one()
    return Moments(int(n), float(total or 0), float(total_sq or 0))


def _paired_seq(conn: sa.Connection, eid: int, baseline: str, other: str) -> Moments | None:
    per_unit = (sa.select(_EV.c.variant, _EV.c.unit, sa.func.avg(_answer(0)).label("seq"))
                .where(*_where(eid, _responses("SEQ"))).group_by(_EV.c.variant, _EV.c.unit).subquery())
    a, b = per_unit.alias("a"), per_unit.alias("b")
    diff = b.c.seq - a.c.seq
    n, total, total_sq = conn.execute(sa.select(*_moment_columns(diff)).select_from(
        a.join(b, b.c.unit == a.c.unit)).where(a.c.variant == baseline, b.c.variant == other)).one()
    return Moments(int(n), float(total or 0), float(total_sq or 0)) if n else None


def _questionnaire_metrics(conn: sa.Connection, eid: int, study: StudyDef, designs: list[str]) -> list[MetricResult]:
    within = study.within_subjects
    base = designs[0]
    metrics: list[MetricResult] = []
    if "SUS" in study.questionnaires:
        stats = _score_moments(conn, eid, "SUS", _sus_score())

        def sus_of(e: Any) -> Any:
            odd = sum((e.c.answers[i].as_float() - 1 for i in range(0, 10, 2)), sa.literal(0.0))
            even = sum((5 - e.c.answers[i].as_float() for i in range(1, 10, 2)), sa.literal(0.0))
            return (odd + even) * 2.5

        metrics.append(_mean_metric("SUS", designs, stats, within, "SUS score (0–100)",
                                    lambda d: _paired_scores(conn, eid, "SUS", sus_of, base, d)))
    if "UMUX-Lite" in study.questionnaires:
        stats = _score_moments(conn, eid, "UMUX-Lite", _umux_raw())

        def umux_of(e: Any) -> Any:
            return (e.c.answers[0].as_float() + e.c.answers[1].as_float() - 2) / 12.0 * 100.0

        metrics.append(_mean_metric("UMUX-Lite", designs, stats, within, "UMUX-Lite raw score (0–100)",
                                    lambda d: _paired_scores(conn, eid, "UMUX-Lite", umux_of, base, d)))
    if "NPS" in study.questionnaires:
        a = _answer(0)
        rows = conn.execute(sa.select(_EV.c.variant, sa.func.sum(sa.case((a >= 9, 1), else_=0)),
                                      sa.func.sum(sa.case((sa.and_(a >= 7, a < 9), 1), else_=0)),
                                      sa.func.sum(sa.case((a < 7, 1), else_=0)))
                            .where(*_where(eid, _responses("NPS"))).group_by(_EV.c.variant)).all()
        groups = {v: questionnaires.NpsCounts(int(p or 0), int(s or 0), int(d or 0)) for v, p, s, d in rows}
        empty = questionnaires.NpsCounts(0, 0, 0)
        variants = tuple(_variant(d, c.n, lambda c=c: questionnaires.nps(c.promoters, c.passives, c.detractors,
                                                                           alpha=ALPHA))
                         for d, c in ((d, groups.get(d, empty)) for d in designs))
        if within:
            comparisons = tuple(_comparison(d, base, lambda d=d: _paired_nps(conn, eid, base, d)) for d in designs[1:])
        else:
            comparisons = tuple(_comparison(d, base, lambda d=d: questionnaires.nps_difference(
                groups.get(base, empty), groups.get(d, empty), ALPHA)) for d in designs[1:])
        metrics.append(MetricResult("NPS", "mean", False, questionnaires.NPS_METHOD, variants, comparisons,
                                    unit="NPS points"))
    return metrics


def _nps_code(e: Any) -> Any:
    """Promoter +1, passive 0, detractor −1: the NPS is the mean of these codes."""
    answer = e.c.answers[0].as_float()
    return sa.case((answer >= 9, 1.0), (answer < 7, -1.0), else_=0.0)


def _paired_nps(conn: sa.Connection, eid: int, baseline: str, other: str) -> Effect:
    """Within subjects: each participant's NPS code on ``other`` minus on ``baseline``."""
    diff = _paired_scores(conn, eid, "NPS", _nps_code, baseline, other)
    if diff is None:
        raise AbtestError("no participant answered the NPS for both designs")
    return questionnaires.nps_paired_difference(diff, ALPHA)


def _scores(metrics: list[MetricResult]) -> dict[str, dict[str, dict[str, Any]]]:
    """Readings beside the means: SUS grade and percentile, UMUX-Lite on the SUS scale."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for metric in metrics:
        if metric.name == "SUS":
            out["SUS"] = {v.variant: {"grade": questionnaires.sus_grade(v.value),
                                      "percentile": questionnaires.sus_percentile(v.value),
                                      "method": "Sauro-Lewis curved grading scale; percentile by normal "
                                                "approximation (mean 68, sd 12.5)"}
                          for v in metric.variants if v.value is not None}
        elif metric.name == "UMUX-Lite":
            out["UMUX-Lite"] = {v.variant: {"sus_adjusted": 0.65 * v.value + 22.9,
                                            "sus_adjusted_ci": None if v.ci is None else
                                            [0.65 * v.ci[0] + 22.9, 0.65 * v.ci[1] + 22.9],
                                            "method": "0.65 × raw + 22.9 (Lewis et al. 2013)"}
                                for v in metric.variants if v.value is not None}
    return out
