"""A survey's results: a pure function of (survey, aggregate source, now) → Report.

The same results document as every kind's (DESIGN §4.5). Its groups are the variants of the
linked A/B experiment (answers compared per variant) or one group, ``all``. Metrics:

* ``response-rate``: answered / shown with a Wilson interval; beside it (``details``) the check
  that the rates are equal across variants (Pearson chi-square, :func:`abtest.stats.surveys.equal_rates`).
* CSAT: the top-2-box share (4 or 5 of 1–5) with a Wilson interval; variants compared by the
  difference of shares (N−1 two-proportion test, Fisher exact or z by table size).
* NPS: % promoters − % detractors with the trinomial Wald interval; variants by the adjusted-Wald
  difference (Rocks 2016).
* CES: the mean of 1–7 with a t interval; variants by Welch's t-test. Intervals stay on the scale.

Each visitor counts once per question (their first answer). Choice questions give the share of
each option, text questions the answers themselves (``details``). With more than two variants the
comparisons of each metric are Holm-adjusted. Fixed-sample tests: read them when the experiment
ends, not at every look (the experiment's own metrics are the peek-safe ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from abtest.aggregates.base import AggregateSource, AnswerCounts, Failed, ReachCounts, Request, SurveyReach, Texts
from abtest.comparisons import adjust, comparison
from abtest.errors import AbtestError, InsufficientData
from abtest.questionnaires import QUESTIONNAIRES
from abtest.report import (
    Breakdown,
    Comparison,
    MetricResult,
    PowerResult,
    Report,
    SrmResult,
    VariantResult,
    describe_effect,
)
from abtest.stats import proportions, questionnaires
from abtest.stats.means import mean_interval, welch_test
from abtest.stats.summary import Counts, Effect, Estimate
from abtest.stats.surveys import EQUAL_RATES_METHOD, equal_rates, moments_of
from abtest.surveys.definition import QuestionDef, SurveyDef

ALPHA = 0.05
NO_SRM = SrmResult(None, False, method="not applicable",
                   reason="a survey splits nobody: the linked experiment checks its own sample ratio")


def requests(survey: SurveyDef) -> list[Request]:
    out: list[Request] = [SurveyReach()]
    for q in survey.questions:
        out.append(Texts("text", task=q.key) if q.type == "text" else AnswerCounts(q.key))
    return out


# ---- details: what the metrics do not carry ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SurveyDetails:
    """Reach per variant, the equal-response-rate check, every question's answers."""

    linked: str | None
    reach: Mapping[str, ReachCounts]
    response_check: dict[str, Any]
    questions: list[dict[str, Any]] = field(default_factory=list)

    def to_text(self) -> list[str]:
        out = ["responses: " + "; ".join(f"{v} {r.shown} shown, {r.answered} answered, {r.dismissed} dismissed"
                                         for v, r in self.reach.items())]
        check = self.response_check
        if check.get("p_value") is not None:
            out.append(f"equal response rates: p = {check['p_value']:.3g} ({check['method']})")
        for q in self.questions:
            for variant, texts in q.get("answers", {}).items():
                out += [f"{q['key']} answers ({variant}):", *(f"  - {t}" for t in texts)] if texts else []
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"linked_experiment": self.linked,
                "responses": [{"variant": v, "shown": r.shown, "answered": r.answered, "dismissed": r.dismissed}
                              for v, r in self.reach.items()],
                "response_check": self.response_check, "questions": self.questions}


def _response_check(survey: SurveyDef, reach: Mapping[str, ReachCounts]) -> dict[str, Any]:
    out: dict[str, Any] = {"method": EQUAL_RATES_METHOD, "statistic": None, "df": None, "p_value": None,
                           "differs": False}
    if not survey.experiment:
        return out | {"reason": "not linked to an experiment: nothing to compare"}
    try:
        check = equal_rates([reach[v].answered for v in survey.groups], [reach[v].shown for v in survey.groups])
    except AbtestError as exc:
        return out | {"reason": exc.message}
    return out | {"statistic": check.statistic, "df": check.df, "p_value": check.p_value,
                  "differs": check.p_value < ALPHA}


def _question_details(q: QuestionDef, groups: tuple[str, ...], answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answer distribution (scaled, choice) or the answers (text) of one question, per variant."""
    out: dict[str, Any] = {"key": q.key, "type": q.type, "text": q.text}
    if q.type == "text":
        return out | {"answers": {g: list(answers.get(g, [])) for g in groups}}
    low, high = q.scale or (0, 0)
    labels = list(q.choices) if q.type == "choice" else [str(v) for v in range(low, high + 1)]
    return out | {"labels": labels,
                  "counts": {g: [answers.get(g, {}).get(v, 0) for v in range(low, high + 1)] for g in groups}}


# ---- metrics -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    name: str
    type: str
    label: str
    method: str
    unit: str
    estimate: Callable[[Any], Estimate]
    n: Callable[[Any], int]
    compare: Callable[[Any, Any, float], Effect]
    empty: Any
    point: Callable[[Any], float]  # the value alone, when its interval cannot be drawn (all answers alike)


def _top_two(counts: Mapping[int, int]) -> Counts:
    low_satisfied = next(b.low for b in QUESTIONNAIRES["CSAT"].scoring.bands if b.code == 1)  # type: ignore[union-attr]
    return Counts(sum(counts.values()), sum(k for v, k in counts.items() if v >= low_satisfied))


def _nps_counts(counts: Mapping[int, int]) -> questionnaires.NpsCounts:
    bands = QUESTIONNAIRES["NPS"].scoring.bands  # type: ignore[union-attr]
    per = {b.name: sum(k for v, k in counts.items() if b.low <= v <= b.high) for b in bands}
    return questionnaires.NpsCounts(per["promoter"], per["passive"], per["detractor"])


def _spec(q: QuestionDef) -> _Spec | None:
    label = f"{q.key}: {q.type}"
    if q.type == "CSAT":
        return _Spec(q.key, "conversion", f"{q.key}: CSAT (top-2-box)", "CSAT top-2-box share, Wilson score interval",
                     "rate", _csat, lambda c: sum(c.values()),
                     lambda b, t, a: proportions.compare_proportions(_top_two(b), _top_two(t), a), {},
                     lambda c: _top_two(c).rate)
    if q.type == "NPS":
        return _Spec(q.key, "mean", label, questionnaires.NPS_METHOD, QUESTIONNAIRES["NPS"].unit,
                     _nps, lambda c: sum(c.values()),
                     lambda b, t, a: questionnaires.nps_difference(_nps_counts(b), _nps_counts(t), a), {},
                     lambda c: 100 * (_nps_counts(c).promoters - _nps_counts(c).detractors) / sum(c.values()))
    if q.type == "CES":
        low, high = q.scale or (1, 7)
        centre = (low + high) / 2

        def estimate(c: Mapping[int, int]) -> Estimate:
            e = mean_interval(moments_of(c, centre), ALPHA)
            return replace(e, ci=e.ci.clip(low, high))

        def compare(b: Mapping[int, int], t: Mapping[int, int], a: float) -> Effect:
            e = welch_test(moments_of(b, centre), moments_of(t, centre), a)
            return replace(e, ci=e.ci.clip(low - high, high - low))

        return _Spec(q.key, "mean", label, "mean with t interval, clipped to the scale", QUESTIONNAIRES["CES"].unit,
                     estimate, lambda c: sum(c.values()), compare, {}, lambda c: moments_of(c).mean)
    return None  # choice and text: their distribution and answers are in the details


def _csat(counts: Mapping[int, int]) -> Estimate:
    top = _top_two(counts)
    return questionnaires.csat_top_two_box(top.x, top.n, ALPHA)


def _nps(counts: Mapping[int, int]) -> Estimate:
    c = _nps_counts(counts)
    return questionnaires.nps(c.promoters, c.passives, c.detractors, ALPHA)


def _response_spec() -> _Spec:
    return _Spec("response-rate", "conversion", "Response rate (answered / shown)", "Wilson score interval", "rate",
                 lambda r: proportions.wilson_interval(Counts(r.shown, r.answered), ALPHA), lambda r: r.shown,
                 lambda b, t, a: proportions.compare_proportions(Counts(b.shown, b.answered),
                                                                 Counts(t.shown, t.answered), a),
                 ReachCounts(0, 0, 0), lambda r: r.answered / r.shown)


def _metric(spec: _Spec, groups: tuple[str, ...], stats: Any, primary: bool) -> MetricResult:
    if isinstance(stats, Failed):
        return MetricResult(spec.name, spec.type, primary, spec.method, (), (), reason=stats.reason, label=spec.label)
    variants = tuple(_row(spec, g, stats.get(g, spec.empty)) for g in groups)
    base = groups[0]
    comparisons: tuple[Comparison, ...] = tuple(
        comparison(g, base, "difference",
                   lambda a, g=g: spec.compare(stats.get(base, spec.empty), stats.get(g, spec.empty), a), ALPHA)
        for g in groups[1:])
    return MetricResult(spec.name, spec.type, primary, spec.method, variants, adjust(comparisons, ALPHA),
                        "Holm" if len(groups) > 2 else None, spec.unit, label=spec.label)


def _row(spec: _Spec, group: str, stats: Any) -> VariantResult:
    """One variant's value and interval; with answers all alike (every one a promoter, say) the
    value stands without an interval, and the reason says why."""
    n = spec.n(stats)
    if not n:
        return VariantResult(group, 0, None, None, "no answers yet")
    try:
        estimate = spec.estimate(stats)
    except AbtestError as exc:
        return VariantResult(group, n, spec.point(stats), None, exc.message)
    return VariantResult(group, n, estimate.value, estimate.ci.as_tuple())


def verdict(survey: SurveyDef, reach: Mapping[str, ReachCounts], metrics: list[MetricResult],
            check: dict[str, Any]) -> str:
    shown = sum(r.shown for r in reach.values())
    answered = sum(r.answered for r in reach.values())
    if shown == 0:
        where = (f"visitors of the experiment {survey.experiment!r}" if survey.experiment else "visitors")
        return f"Nobody has been asked yet: the survey shows to {survey.share:.0%} of {where} on its pages."
    head = f"{answered} of {shown} visitors asked answered ({answered / shown:.0%})."
    if check.get("differs"):
        head += (f" The response rate differs between variants (p = {check['p_value']:.2g}): the answers come from "
                 "different kinds of visitors, so compare them with care.")
    found = [(m, c) for m in metrics[1:] for c in m.comparisons if c.significant and c.effect is not None]
    level = f"{1 - ALPHA:.0%}"
    if found:
        return head + " Significant: " + "; ".join(describe_effect(replace(m, name=m.label), c, level)
                                                  for m, c in found) + "."
    if survey.experiment:
        return head + " No significant difference between the variants' answers yet."
    return head


def analyze(survey: SurveyDef, source: AggregateSource, now: datetime, by: str | None = None) -> Report:
    """The results document of a survey (``by`` is not offered: answers are not broken down)."""
    groups = survey.groups
    if not groups:
        raise InsufficientData(f"the experiment {survey.experiment!r} this survey is linked to has no variants")
    wanted = requests(survey)
    whole = source.fetch(survey.key, groups, wanted, now).whole
    reach_answer = whole.get(SurveyReach(), {})
    reach = {g: (reach_answer.get(g) if isinstance(reach_answer, Mapping) else None) or ReachCounts(0, 0, 0)
             for g in groups}
    metrics = [_metric(_response_spec(), groups, reach_answer if isinstance(reach_answer, Failed) else reach, False)]
    details = []
    for q, request in zip(survey.questions, wanted[1:], strict=True):  # requests() lists them in order
        answers = whole.get(request, {})
        spec = _spec(q)
        if spec is not None:  # the first scored question is what the survey is for
            metrics.append(_metric(spec, groups, answers, len(metrics) == 1))
        details.append(_question_details(q, groups, answers if isinstance(answers, Mapping) else {}))
    check = _response_check(survey, reach)
    return Report(survey.key, survey.status, "fixed", ALPHA, {g: reach[g].shown for g in groups}, NO_SRM,
                  tuple(metrics), PowerResult(None, None), verdict(survey, reach, metrics, check), kind=survey.kind,
                  breakdown=None if by is None else Breakdown(by, (), "survey answers are not broken down by attribute"),
                  details=SurveyDetails(survey.experiment, reach, check, details))
