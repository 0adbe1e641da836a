"""A usability study's results: a pure function of (study, aggregate source, now) → Report.

The same results document as an A/B experiment's (DESIGN §4.5), in study words. Per task: the
completion rate with the adjusted-Wald interval (``<task>-success``), time on task of successful
attempts as a geometric mean (``<task>-time``) and the SEQ (``<task>-SEQ``); then the SEQ over
tasks (each participant's mean) and one metric per end-of-session questionnaire. Designs are
compared with the first one: between subjects by the N−1 / Fisher / z test of proportions
(by table size), Welch on log times and Welch t on scores, NPS by the adjusted-Wald difference;
within subjects (every participant saw every design) by the mid-p McNemar test, paired t-tests
on log times and on scores, and a paired t-test on NPS codes. With more than two designs the
p-values are Holm-adjusted. Sauro & Lewis, *Quantifying the User Experience* (2nd ed.), ch. 3,
5 and 8.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from abtest.aggregates.base import (
    AggregateSource,
    AttemptLogTimes,
    Attempts,
    Bands,
    Failed,
    PairedAttempts,
    PairedLogTimes,
    PairedScores,
    ParticipantCounts,
    Participants,
    Request,
    Scores,
    Slice,
    TaskAnswers,
    Texts,
)
from abtest.comparisons import adjust, comparison, segment_results, variant_row
from abtest.errors import AbtestError, InsufficientData
from abtest.questionnaires import QUESTIONNAIRES, Linear
from abtest.report import (
    Breakdown,
    Comparison,
    MetricResult,
    PowerResult,
    Report,
    SegmentResult,
    SegmentUnits,
    SrmResult,
    VariantResult,
    describe_effect,
    describe_estimate,
)
from abtest.stats import durations, paired, proportions, questionnaires
from abtest.stats.means import mean_interval, welch_test
from abtest.stats.summary import Counts, Effect, Estimate, Moments
from abtest.studies.definition import ABANDON_AFTER, StudyDef
from abtest.studies.ia_analysis import Derived, derive, task_details

ALPHA = 0.05
NO_SRM = SrmResult(None, False, method="not applicable",
                   reason="studies are too small for a sample-ratio check")


@dataclass(frozen=True, slots=True)
class StudyDetails:
    """What only a study's document has: participants per design, score readings, comments."""

    within_subjects: bool
    participants: Mapping[str, ParticipantCounts]
    scores: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    comments: dict[str, list[str]] = field(default_factory=dict)
    method: str = "usability"
    tasks: list[dict[str, Any]] = field(default_factory=list)  # tree / first-click: paths, clicks (ia_analysis)

    @property
    def abandoned(self) -> int:
        counts = [p.abandoned for p in self.participants.values()]
        return max(counts, default=0) if self.within_subjects else sum(counts)

    def to_text(self) -> list[str]:
        """Lines for ``abtest analyze``: who took part, and the open comments."""
        mode = "within subjects" if self.within_subjects else "between subjects"
        out = [f"participants ({mode}): " + "; ".join(
            f"{d} {p.started} started, {p.finished} finished, {p.abandoned} abandoned, {p.in_progress} in progress"
            for d, p in self.participants.items())]
        for task in self.tasks:
            for design, d in task["designs"].items():
                if "destinations" in d:
                    out.append(f"{task['task']} on {design}: {d['attempts']} attempts, {d['skipped']} skipped; "
                               "first clicks " + (", ".join(f"{r['node']} {r['share']:.0%}" for r in d["first_clicks"])
                                                  or "none") + "; chosen " +
                               (", ".join(f"{'✓' if r['correct'] else '✗'} {r['node']} {r['share']:.0%}"
                                          for r in d["destinations"]) or "nothing"))
                else:
                    out.append(f"{task['task']} on {design}: {d['on_target']} of {d['attempts']} first clicks on a "
                               "target")
        for design, texts in self.comments.items():
            out += [f"comments on {design}:", *(f"  - {t}" for t in texts)] if texts else []
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"within_subjects": self.within_subjects,
                "participants": [{"design": d, "started": p.started, "finished": p.finished,
                                  "abandoned": p.abandoned, "in_progress": p.in_progress}
                                 for d, p in self.participants.items()],
                "abandoned": self.abandoned, "scores": self.scores, "comments": self.comments,
                "method": self.method, "tasks": self.tasks}


def _questionnaire_requests(study: StudyDef, base: str) -> list[Request]:
    out: list[Request] = []
    for name in study.questionnaires:
        linear = isinstance(QUESTIONNAIRES[name].scoring, Linear)
        out.append(Scores(name) if linear else Bands(name))
        if study.within_subjects:
            out.append(PairedScores(name, base, codes=not linear))
    return out


def requests(study: StudyDef) -> list[Request]:
    base, within = study.variant_keys[0], study.within_subjects
    out: list[Request] = [Participants(int(ABANDON_AFTER.total_seconds()))]
    for task in study.tasks:
        out += [Attempts(task.key), AttemptLogTimes(task.key) if study.method == "usability" else TaskAnswers(task.key)]
        out += [Scores("SEQ", task.key)] if study.seq else []
        if within:
            out += [PairedAttempts(task.key, base), PairedLogTimes(task.key, base)]
            out += [PairedScores("SEQ", base, task=task.key)] if study.seq else []
    if study.seq:
        out.append(Scores("SEQ", per_participant=True))
    if within and study.seq:
        out.append(PairedScores("SEQ", base, per_participant=True))
    out += _questionnaire_requests(study, base)
    if study.comment:
        out.append(Texts("comment"))
    return out


# ---- one slice (the whole study, or one segment) -----------------------------------------------------


@dataclass(frozen=True)
class _Metric:
    """How one study metric is computed: the per-design statistic and the comparison."""

    name: str
    type: str
    label: str
    method: str
    unit: str
    effect_kind: str
    estimate: Callable[[Any], Any]
    n: Callable[[Any], int]
    between: Callable[[Any, Any, float], Any] | None  # (baseline, design, α) → Effect
    within: Callable[[Any, float], Any] | None  # (pairs, α) → Effect
    stats: Request
    pairs: Request | None
    family: str | None = None  # tree / first-click: the metric Holm-adjusts across tasks with ("directness" …)


def _paired(compute: Callable[[Any, float], Any], what: str) -> Callable[[Any, float], Any]:
    def run(pair: Any, alpha: float) -> Any:
        if pair is None:
            raise InsufficientData(f"no participant {what} for both designs")
        return compute(pair, alpha)
    return run


def _metrics(study: StudyDef) -> list[_Metric]:
    base, within = study.variant_keys[0], study.within_subjects
    out = []
    score_unit = QUESTIONNAIRES["SEQ"].unit
    seq = QUESTIONNAIRES["SEQ"].scoring
    assert isinstance(seq, Linear)
    for task in study.tasks:
        t = task.key
        if study.method != "usability":
            out += _ia_metrics(study, t)
        else:
            out.append(_rate(f"{t}-success", f"{t}: success", "adjusted Wald (Agresti-Coull) interval", Attempts(t),
                             PairedAttempts(t, base) if within else None))
            out.append(_time(f"{t}-time", f"{t}: time", "geometric mean of successful task times with t interval "
                             "on log times", AttemptLogTimes(t), PairedLogTimes(t, base) if within else None))
        if study.seq:
            out.append(_score_metric(f"{t}-SEQ", f"{t}: SEQ", score_unit, seq, Scores("SEQ", t),
                                     PairedScores("SEQ", base, task=t) if within else None))
    if study.seq:
        out.append(_score_metric("SEQ", "SEQ over tasks", "SEQ (1–7), mean of each participant's tasks", seq,
                                 Scores("SEQ", per_participant=True),
                                 PairedScores("SEQ", base, per_participant=True) if within else None))
    for name in study.questionnaires:
        questionnaire = QUESTIONNAIRES[name]
        if isinstance(questionnaire.scoring, Linear):
            out.append(_score_metric(name, name, questionnaire.unit, questionnaire.scoring, Scores(name),
                                     PairedScores(name, base) if within else None))
        elif questionnaire is QUESTIONNAIRES["NPS"]:  # banded by promoters, passives and detractors
            out.append(_Metric(
                name, "mean", name, questionnaires.NPS_METHOD, questionnaire.unit, "difference",
                lambda c: questionnaires.nps(*c, alpha=ALPHA), lambda c: sum(c),
                lambda b, c, a: questionnaires.nps_difference(questionnaires.NpsCounts(*b),
                                                              questionnaires.NpsCounts(*c), a),
                _paired(lambda p, a: questionnaires.nps_paired_difference(p, a), "answered the NPS"),
                Bands(name), PairedScores(name, base, codes=True) if within else None))
        else:  # END_OF_SESSION lists what a study may ask; each needs its analysis here
            raise ValueError(f"no study analysis for the {name} questionnaire")
    return out


def _rate(name: str, label: str, method: str, stats: Request, pairs: Request | None = None,
          family: str | None = None) -> _Metric:
    """A share of attempts (adjusted-Wald interval), compared by N−1 / Fisher / z (or McNemar);
    a tree or first-click metric (``family``) by N−1 / Fisher only, as the method asks."""
    small = family is not None
    return _Metric(name, "conversion", label, method, "rate", "difference",
                   lambda c: proportions.adjusted_wald_interval(c, ALPHA), lambda c: c.n,
                   lambda b, c, a: proportions.compare_proportions(b, c, a, small_samples=small),
                   _paired(lambda p, a: paired.mcnemar(*p, a, mid_p=True), "tried the task"), stats, pairs, family)


def _time(name: str, label: str, method: str, stats: Request, pairs: Request | None = None,
          family: str | None = None) -> _Metric:
    """A geometric mean of times (t interval on log seconds), compared by Welch on log times."""
    return _Metric(name, "duration", label, method, "seconds (geometric mean)", "ratio",
                   lambda m: durations.geometric_mean(m, ALPHA), lambda m: m.n,
                   lambda b, m, a: durations.compare_durations(b, m, a),
                   _paired(lambda p, a: durations.paired_durations(p, a), "succeeded"), stats, pairs, family)


def _ia_metrics(study: StudyDef, t: str) -> list[_Metric]:
    """A tree-test or first-click task's metrics (abtest.studies.ia_analysis)."""
    wald = "adjusted Wald (Agresti-Coull) interval"
    if study.method == "tree-test":
        return [
            _rate(f"{t}-success", f"{t}: success", f"{wald}; a correct node chosen", Attempts(t), family="success"),
            _rate(f"{t}-directness", f"{t}: directness", f"{wald}; no backtracking (never went back up), whatever "
                  "the answer; a skip without going back counts as direct", Derived(t, "direct"), family="directness"),
            _rate(f"{t}-direct-success", f"{t}: direct success", f"{wald}; a correct node reached without "
                  "backtracking", Derived(t, "direct-success"), family="direct-success"),
            _time(f"{t}-time", f"{t}: time to answer", "geometric mean of the answered attempts' times with t "
                  "interval on log times (skips left out)", Derived(t, "log-times"), family="time"),
        ]
    return [
        _rate(f"{t}-success", f"{t}: first click on target", f"{wald}; the first click inside a target", Attempts(t),
              family="success"),
        _time(f"{t}-time", f"{t}: time to first click", "geometric mean of the times from the screen shown to the "
              "first click, with t interval on log times", Derived(t, "log-times"), family="time"),
    ]


def _score_metric(name: str, label: str, unit: str, scale: Linear, stats: Request, pairs: Request | None) -> _Metric:
    """A questionnaire mean (t interval) and differences of means, each interval kept on the
    score's scale: a SEQ mean of 4.0 from two answers cannot lie outside 1–7."""
    spread = scale.high - scale.low

    def estimate(m: Moments) -> Estimate:
        e = mean_interval(m, ALPHA)
        return replace(e, ci=e.ci.clip(scale.low, scale.high))

    def bounded(effect: Effect) -> Effect:
        return replace(effect, ci=effect.ci.clip(-spread, spread))

    return _Metric(name, "mean", label, "mean with t interval, clipped to the scale", unit, "difference",
                   estimate, lambda m: m.n, lambda b, m, a: bounded(welch_test(b, m, a)),
                   _paired(lambda p, a: bounded(paired.paired_t(p, a)), "answered"), stats, pairs)


def _compute(study: StudyDef, spec: _Metric, answers: Slice) -> tuple[tuple[VariantResult, ...], tuple[Comparison, ...]]:
    designs = study.variant_keys
    stats: Mapping[str, Any] = answers.get(spec.stats, {})
    if isinstance(stats, Failed):
        raise InsufficientData(stats.reason)
    empty = _empty(spec.stats)
    variants = tuple(variant_row(d, spec.n(stats.get(d, empty)), lambda s=stats.get(d, empty): spec.estimate(s))
                     for d in designs)
    base = designs[0]
    if spec.pairs is not None:
        pairs: Mapping[str, Any] = answers.get(spec.pairs, {})
        comparisons = tuple(comparison(d, base, spec.effect_kind,
                                       lambda a, d=d: spec.within(pairs.get(d), a), ALPHA)  # type: ignore[misc]
                            for d in designs[1:])
    else:
        comparisons = tuple(comparison(d, base, spec.effect_kind, lambda a, d=d: spec.between(  # type: ignore[misc]
            stats.get(base, empty), stats.get(d, empty), a), ALPHA) for d in designs[1:])
    return variants, comparisons


def _empty(request: Request) -> Any:
    if isinstance(request, Attempts) or isinstance(request, Derived) and request.what != "log-times":
        return Counts(0, 0)
    if isinstance(request, Bands):
        return (0,) * len(QUESTIONNAIRES[request.questionnaire].scoring.bands)  # type: ignore[union-attr]
    return Moments(0, 0.0, 0.0)


# ---- the document --------------------------------------------------------------------------------------


def _scores(metrics: list[MetricResult]) -> dict[str, dict[str, dict[str, Any]]]:
    """Readings beside the means: SUS grade and percentile, UMUX-Lite on the SUS scale."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for metric in metrics:
        if metric.name == "SUS":
            out["SUS"] = {v.variant: {"grade": questionnaires.sus_grade(v.value),
                                      "percentile": questionnaires.sus_percentile(v.value),
                                      "method": "Sauro-Lewis curved grading scale; percentile from a table of Sauro's "
                                                "published percentiles, linearly interpolated between its rows"}
                          for v in metric.variants if v.value is not None}
        elif metric.name == "UMUX-Lite":
            adjusted = questionnaires.umux_sus_adjusted
            out["UMUX-Lite"] = {v.variant: {"sus_adjusted": adjusted(v.value),
                                            "sus_adjusted_ci": None if v.ci is None else
                                            [adjusted(v.ci[0]), adjusted(v.ci[1])],
                                            "method": "0.65 × raw + 22.9 (Lewis et al. 2013)"}
                                for v in metric.variants if v.value is not None}
    return out


def verdict(study: StudyDef, metrics: list[MetricResult], participants: int) -> str:
    """Every significant difference first, in study words; else what is known so far."""
    if participants == 0:
        return f"No participants yet: send the study link (/s/{study.key}) to people."
    found = [(m, c) for m in metrics for c in m.comparisons if c.significant and c.effect is not None]
    level = f"{1 - ALPHA:.0%}"
    if found:
        parts = [describe_effect(_named(m), c, level) for m, c in found]
        return f"Significant with {participants} participants: " + "; ".join(parts) + "."
    primary = next((m for m in metrics if m.primary), None)
    usable = [c for c in (primary.comparisons if primary else ()) if c.effect is not None and c.ci is not None]
    if primary is None or not usable:
        return (f"{participants} participants so far; not enough data to compare the designs yet "
                "(each needs at least two answers per design).")
    best = min(usable, key=lambda c: (c.p_adjusted if c.p_adjusted is not None else 1.0, -abs(c.effect or 0)))
    return (f"No significant difference between the designs with {participants} participants yet: "
            f"{describe_estimate(_named(primary), best, level)}.")


def _named(metric: MetricResult) -> MetricResult:
    return replace(metric, name=metric.label or metric.name)


def analyze(study: StudyDef, source: AggregateSource, now: datetime, by: str | None = None) -> Report:
    """The results document of a study (the same shape as an experiment's)."""
    aggregates = source.fetch(study.key, study.variant_keys, requests(study), now, by)
    if study.method != "usability":
        aggregates = replace(aggregates, whole=derive(study, aggregates.whole), segments=tuple(
            replace(s, answers=derive(study, s.answers)) for s in aggregates.segments))
    whole = aggregates.whole
    people = whole.get(Participants(int(ABANDON_AFTER.total_seconds())), {})
    participants = {d: people.get(d, ParticipantCounts(0, 0, 0, 0)) for d in study.variant_keys}
    specs = _metrics(study)
    metrics: list[MetricResult] = []
    for i, spec in enumerate(specs):
        try:
            variants, comparisons = _compute(study, spec, whole)
        except AbtestError as exc:
            metrics.append(MetricResult(spec.name, spec.type, i == 0, spec.method, (), (), reason=exc.message,
                                        label=spec.label))
            continue
        segments = _segments(study, spec, aggregates.segments)
        metrics.append(MetricResult(spec.name, spec.type, i == 0, spec.method, variants, adjust(comparisons, ALPHA),
                                    "Holm" if len(study.variants) > 2 else None, spec.unit, segments=segments,
                                    label=spec.label))
    if study.method != "usability" and len(study.tasks) > 1:
        metrics = _holm_across_tasks(specs, metrics)
    comments = {d: [] for d in study.variant_keys} if study.comment else {}
    for design, texts in whole.get(Texts("comment"), {}).items():
        if design in comments:
            comments[design] = list(texts)
    details = StudyDetails(study.within_subjects, participants, _scores(metrics), comments, study.method,
                           task_details(study, whole) if study.method != "usability" else [])
    units = {d: p.started for d, p in participants.items()}
    total = max(units.values(), default=0) if study.within_subjects else sum(units.values())
    return Report(study.key, study.status, "fixed", ALPHA, units, NO_SRM, tuple(metrics), PowerResult(None, None),
                  verdict(study, metrics, total), {"abandoned": details.abandoned}, kind=study.kind,
                  breakdown=_breakdown(study, aggregates), details=details)


def _holm_across_tasks(specs: list[_Metric], metrics: list[MetricResult]) -> list[MetricResult]:
    """Each task metric's comparisons Holm-adjusted together with the same metric of the other
    tasks (its ``family``): a designer reading "success" over ten tasks reads one family of ten
    tests. The SEQ and the questionnaires have no family and stay as they are."""
    out = list(metrics)
    families: dict[str, list[int]] = {}
    for i, (spec, metric) in enumerate(zip(specs, metrics, strict=True)):
        if spec.family is not None and metric.comparisons:
            families.setdefault(spec.family, []).append(i)
    for members in families.values():
        flat = [c for i in members for c in metrics[i].comparisons]
        tested = sum(c.p_value is not None for c in flat)
        adjusted = iter(adjust(flat, ALPHA))
        for i in members:
            out[i] = replace(metrics[i], comparisons=tuple(next(adjusted) for _ in metrics[i].comparisons),
                             adjustment=f"Holm across {tested} tasks" if tested > 1 else None)
    return out


def _segments(study: StudyDef, spec: _Metric, segments: tuple[Any, ...]) -> tuple[SegmentResult, ...]:
    parts = []
    for segment in segments:
        try:
            parts.append((segment.value, *_compute(study, spec, segment.answers)))
        except AbtestError:
            parts.append((segment.value, (), ()))
    return segment_results(parts, ALPHA)


def _breakdown(study: StudyDef, aggregates: Any) -> Breakdown | None:
    if aggregates.by is None:
        return None
    if not aggregates.segments:
        return Breakdown.nothing_carried(aggregates.by)
    request = Participants(int(ABANDON_AFTER.total_seconds()))
    rows = []
    for segment in aggregates.segments:
        people = segment.answers.get(request, {})
        rows.append(SegmentUnits(segment.value, {d: people[d].started if d in people else 0 for d in study.variant_keys},
                                 NO_SRM))
    return Breakdown(aggregates.by, tuple(rows))
