"""The aggregate seam (DESIGN §8): what analysis may ask of the stored events, and how answers look.

Analysis never sees SQL or events. It names what it needs as small frozen *requests* (the
sufficient statistics of one metric: counts, moments, log-moments, paired differences …) and an
:class:`AggregateSource` answers them per variant, for the whole test and, when asked, per
segment (the value of one attribute on each unit's first exposure). Sources are interchangeable:
SQL rollups on SQLite/PostgreSQL today, a column store later; every source gives the same numbers
for the same events, and tests use a fixture source with no database at all.

The vocabulary, by who asks:

* A/B experiments (per analysable unit, counted from the unit's first exposure):
  :class:`ExposedUnits`, :class:`EventTotals`, :class:`UnitLogTimes`, :class:`Returning`,
  :class:`DailyConversions`, and for values whose distribution matters (page speed) the order
  statistics :class:`Quantiles` and the share :class:`AtOrBelow`.
* Usability studies (per attempt or answer, every participant of a design):
  :class:`Participants`, :class:`Attempts`, :class:`AttemptLogTimes`, :class:`Scores`,
  :class:`Bands`, the within-subjects pairs :class:`PairedAttempts`, :class:`PairedLogTimes`,
  :class:`PairedScores`, the open answers :class:`Texts`, and whole attempts
  (a tree test's paths, a first-click test's clicks) :class:`TaskAnswers`.
* Surveys (each visitor once): :class:`SurveyReach`, :class:`AnswerCounts` and :class:`Texts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from abtest.attributes import NOT_SET, OTHER  # noqa: F401 - the segment labels, re-exported
from abtest.stats.summary import Counts, Moments

MAX_SEGMENTS = 20


class Request:
    """Base of every aggregate request (a frozen dataclass: it is also the key of its answer)."""

    whole_only = False  # True: answered for the whole test only, never per segment


# ---- A/B experiments ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExposedUnits(Request):
    """Analysable units per variant (one variant, never forced), and the excluded ones by reason."""


@dataclass(frozen=True, slots=True)
class UnitCounts:
    units: Mapping[str, int]
    excluded: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class EventTotals(Request):
    """Per variant: units with ≥ 1 ``event`` at or after exposure, and moments of each unit's
    value sums after exposure (the metric) and before it (CUPED's covariate)."""

    event: str


@dataclass(frozen=True, slots=True)
class EventStats:
    """``post`` and ``pre`` are moments around their own shifts (values near the data, against
    cancellation); ``cross`` is Σ (post − post.shift)·(pre − pre.shift) over the units.
    ``before_exposure``: the events stamped before their unit's first exposure, which count in
    no metric (the report says how many were left out)."""

    units: Counts
    post: Moments
    pre: Moments
    cross: float
    before_exposure: int = 0

    def recentred(self, post_shift: float, pre_shift: float) -> EventStats:
        """The same units' sums around other shifts (unchanged when they are equal)."""
        if post_shift == self.post.shift and pre_shift == self.pre.shift:
            return self
        dy, dx = self.post.shift - post_shift, self.pre.shift - pre_shift
        cross = self.cross + dx * self.post.total + dy * self.pre.total + self.post.n * dx * dy
        return EventStats(self.units, self.post.recentred(post_shift), self.pre.recentred(pre_shift), cross,
                          self.before_exposure)


@dataclass(frozen=True, slots=True)
class UnitLogTimes(Request):
    """Per variant: moments of each unit's mean log time (seconds) over its successful attempts."""

    task: str


@dataclass(frozen=True, slots=True)
class Returning(Request):
    """Per variant: units first exposed at least ``days`` days before now, and how many of them
    came back (any event) ``days`` or more days after their first exposure."""

    days: int


@dataclass(frozen=True, slots=True)
class DailyConversions(Request):
    """(variant, UTC day of first exposure, UTC day of first ``event`` or None, units) rows:
    enough to rebuild the cumulative comparison day by day."""

    event: str
    whole_only = True


@dataclass(frozen=True, slots=True)
class Quantiles(Request):
    """Per variant: the order statistics behind the ``q``-quantile of the values of ``event``
    (``kind``: ``"vital"`` page-speed reports or ``"conversion"`` events with a value) at or after
    each analysable unit's first exposure, over every event (``over = "events"``, clustered by
    unit) or over each unit's own median (``"units"``). Answered as
    :class:`~abtest.stats.quantiles.OrderStats` at the ranks :func:`~abtest.stats.quantiles.ranks_needed`
    names, never as the values themselves."""

    kind: str
    event: str
    q: float
    over: str = "events"
    whole_only = True


@dataclass(frozen=True, slots=True)
class AtOrBelow(Request):
    """Per variant: the share of ``event`` values (as in :class:`Quantiles`) at or below
    ``threshold``, with each unit's counts (:class:`~abtest.stats.quantiles.ClusterCounts`)."""

    kind: str
    event: str
    threshold: float
    whole_only = True


# ---- usability studies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Participants(Request):
    """Per design: participants who started it, finished, abandoned (or went silent for
    ``abandon_after_s`` seconds) and are still in progress."""

    abandon_after_s: int


@dataclass(frozen=True, slots=True)
class ParticipantCounts:
    started: int
    finished: int
    abandoned: int
    in_progress: int


@dataclass(frozen=True, slots=True)
class Attempts(Request):
    """Per design: attempts at ``task`` and how many succeeded."""

    task: str


@dataclass(frozen=True, slots=True)
class AttemptLogTimes(Request):
    """Per design: moments of log seconds of the successful attempts at ``task``."""

    task: str


@dataclass(frozen=True, slots=True)
class Scores(Request):
    """Per design: moments of a questionnaire's declared score (:mod:`abtest.questionnaires`), over
    its answers about ``task`` (None: any), or over each participant's mean score when
    ``per_participant`` (so a person counts once however many tasks they rated)."""

    questionnaire: str
    task: str | None = None
    per_participant: bool = False


@dataclass(frozen=True, slots=True)
class Bands(Request):
    """Per design: how many answers fell in each of the questionnaire's bands, in declaration order
    (NPS: promoters, passives, detractors)."""

    questionnaire: str


@dataclass(frozen=True, slots=True)
class PairedAttempts(Request):
    """Within subjects, per other design: (participants who tried both, succeeded only on
    ``baseline``, succeeded only on the other design) for ``task``."""

    task: str
    baseline: str


@dataclass(frozen=True, slots=True)
class PairedLogTimes(Request):
    """Within subjects, per other design: moments of log(t_other) − log(t_baseline) over the
    participants who succeeded on both."""

    task: str
    baseline: str


@dataclass(frozen=True, slots=True)
class PairedScores(Request):
    """Within subjects, per other design: moments of each participant's score on it minus their
    score on ``baseline`` (``codes``: the questionnaire's band codes instead of its score)."""

    questionnaire: str
    baseline: str
    task: str | None = None
    per_participant: bool = False
    codes: bool = False


@dataclass(frozen=True, slots=True)
class TaskAnswers(Request):
    """Per design: every attempt at ``task`` (:class:`AttemptRows`), oldest first. A
    tree test's path and a first-click test's click are whole answers, so their metrics
    (directness, first clicks, destinations, click maps) are computed from the attempts; studies
    are small enough for that."""

    task: str


@dataclass(frozen=True, slots=True)
class AttemptRows:
    """The answer to :class:`TaskAnswers` for one design: (success, duration_ms, answers) per
    attempt. Two slices' rows together are both lists of rows (see abtest.aggregates.combine)."""

    rows: tuple[tuple[bool, float, Any], ...] = ()

    def plus(self, row: tuple[bool, float, Any]) -> AttemptRows:
        return AttemptRows((*self.rows, row))

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True, slots=True)
class Texts(Request):
    """Per design: the free-text answers to ``questionnaire`` (the open comment; a survey's text
    question names its ``task``, the question key), oldest first."""

    questionnaire: str
    task: str | None = None
    whole_only = True


# ---- surveys (each visitor counted once, whole survey only) ------------------------------------------


@dataclass(frozen=True, slots=True)
class SurveyReach(Request):
    """Per variant: visitors the survey was shown to (an answer or a dismissal counts as shown),
    who answered at least one question, and who dismissed it without answering."""

    whole_only = True


@dataclass(frozen=True, slots=True)
class ReachCounts:
    shown: int
    answered: int
    dismissed: int


@dataclass(frozen=True, slots=True)
class AnswerCounts(Request):
    """Per variant: how many visitors gave each answer (``{value: visitors}``) to the survey question
    ``question``, counting each visitor's first answer only."""

    question: str
    whole_only = True


# ---- answers ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failed:
    """The source could not answer one request (say, stored values too large to sum): the metric
    that asked reports ``reason`` and the rest of the report stands."""

    reason: str


@dataclass(frozen=True, slots=True)
class Slice:
    """The answers for one slice of the units: the whole test, or one segment."""

    values: Mapping[Request, Any]

    def __getitem__(self, request: Request) -> Any:
        return self.values[request]

    def get(self, request: Request, default: Any = None) -> Any:
        return self.values.get(request, default)


@dataclass(frozen=True, slots=True)
class Segment:
    value: str
    answers: Slice


@dataclass(frozen=True, slots=True)
class Aggregates:
    """What a source answered: the whole test, and (for a breakdown) its largest segments in
    descending size with the rest pooled as :data:`OTHER`."""

    whole: Slice
    by: str | None = None
    segments: tuple[Segment, ...] = field(default_factory=tuple)


class AggregateSource(Protocol):
    """Where sufficient statistics come from. A source brings itself up to date on its own terms
    (rollups refreshed, a column store scanned) before it answers."""

    def fetch(self, key: str, variants: Sequence[str], requests: Sequence[Request], now: datetime,
              by: str | None = None) -> Aggregates:
        """Answer every request for test ``key`` (whose variants, in order, are ``variants``)."""
        ...
