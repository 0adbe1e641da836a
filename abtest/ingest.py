"""Validate event batches from the API and store them idempotently (DESIGN §4.4).

Each event is checked on its own: a bad one is rejected with its index and reason while the good
ones of the same batch are kept. Good events are written in one transaction through the one write
path (:func:`abtest.store.events.write_events`), where the database's unique constraint decides
what is a duplicate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from abtest.attributes import BadAttribute, clean_attributes, segment_attributes
from abtest.models import Experiment, Survey, Variant
from abtest.storable import first_unstorable
from abtest.surveys.definition import SURVEY_EVENTS, QuestionDef, event_problem, questions_of
from abtest.vitals import VITALS
from abtest.store.events import MAX_DURATION_MS, event_row, first_exposures, store_new
from abtest.store.freshness import cache_for, registry_version
from abtest.store.group_commit import committer

MAX_BATCH = 1000
MAX_PAST = timedelta(days=30)
MAX_FUTURE = timedelta(minutes=5)
# Values are summed and squared in SQL: an absurd one (anyone can send events with the public key)
# would overflow the sums and break the experiment's results for good, so it is refused here.
MAX_ABS_VALUE = 1e9
MAX_ANSWER_TEXT = 4000  # a free-text answer, as long as the study runner's comment

Name = Annotated[str, Field(min_length=1, max_length=64)]


class FieldProblem(ValueError):
    """A validation problem naming its field, raised inside pydantic validators (see :func:`explain`)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name
        self.message = message


def reject_unstorable(data: Any) -> Any:
    """Refuse, naming the field, what no store can hold anywhere in a JSON body: NUL characters and
    lone surrogates (JSON may escape half an emoji as "\\ud83d"), NaN, infinity and integers
    beyond the float range (see :mod:`abtest.storable`)."""
    found = first_unstorable(data)
    if found is not None:
        raise FieldProblem(*found)
    return data


class StrictBody(BaseModel):
    """Base of every public request body: unknown fields, loose types and unstorable values refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return reject_unstorable(data)


class EventIn(StrictBody):
    """One event as a client sends it; which fields are required depends on ``type``."""

    id: Annotated[str, Field(min_length=8, max_length=64, description="client-generated unique id (UUID)")]
    type: Literal["exposure", "conversion", "task", "response", "vital", "survey"]
    experiment: Name
    unit: Annotated[str, Field(min_length=1, max_length=200, description="visitor or participant id")]
    variant: Name | None = None
    event: Name | None = Field(default=None, description=(
        "conversion: the event name, e.g. purchase; vital: the Core Web Vital (LCP, INP, CLS, FCP, TTFB); "
        "survey: shown or dismissed"))
    value: float | None = Field(default=None, ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE,
                                description="conversion: a value to sum, e.g. revenue; vital: its value (ms; CLS unitless)")
    task: Name | None = None
    success: bool | None = None
    duration_ms: float | None = Field(default=None, ge=0, le=MAX_DURATION_MS)
    questionnaire: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    answers: Annotated[list[float | int | str], Field(max_length=100)] | None = None
    forced: bool = False
    attributes: dict[str, Any] | None = Field(default=None, description=(
        "visitor attributes (≤ 20; string, number or boolean values ≤ 200 characters); an exposure's "
        "define the unit's segments"))
    ts: datetime = Field(description="ISO 8601 with Z or an offset; up to 30 days old, 5 minutes ahead")

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return clean_attributes(value)
        except BadAttribute as exc:
            raise FieldProblem(exc.field, exc.message) from None

    @field_validator("answers", mode="before")
    @classmethod
    def _answers(cls, value: Any) -> Any:
        # Scored and averaged later: a number is bounded like ``value``, a text like a comment.
        for i, item in enumerate(value if isinstance(value, list) else []):
            if isinstance(item, (int, float)) and not isinstance(item, bool) and not abs(item) <= MAX_ABS_VALUE:
                raise FieldProblem(f"answers[{i}]", f"must lie between -{MAX_ABS_VALUE:.0e} and {MAX_ABS_VALUE:.0e}")
            if isinstance(item, str) and len(item) > MAX_ANSWER_TEXT:
                raise FieldProblem(f"answers[{i}]", f"at most {MAX_ANSWER_TEXT} characters, got {len(item)}")
        return value

    @field_validator("value", "duration_ms", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        # strict mode refuses "12.5" (good) but also the integer 12 (bad): accept real numbers only.
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise ValueError("must be a finite number") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("ts", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 string such as 2026-11-23T10:00:00Z")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError("must be an ISO 8601 string such as 2026-11-23T10:00:00Z") from exc
        if parsed.tzinfo is None:
            raise ValueError("needs a time zone: end it with Z or an offset like +01:00")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59:59-14:00 is legal ISO 8601 but past year 9999 in UTC
            raise ValueError("must lie between 30 days ago and 5 minutes from now") from None

    @model_validator(mode="after")
    def _fields_for_type(self) -> EventIn:
        needs = {"exposure": ("variant",), "conversion": ("event",), "task": ("task", "duration_ms", "success"),
                 "response": ("questionnaire", "answers"), "vital": ("event", "value"), "survey": ("event",)}[self.type]
        for name in needs:
            if getattr(self, name) is None:
                raise FieldProblem(name, f"is required for {self.type} events")
        allowed = {"exposure": {"forced"}, "conversion": {"event", "value"},
                   "task": {"task", "duration_ms", "success"}, "response": {"questionnaire", "answers", "task"},
                   "vital": {"event", "value"}, "survey": {"event"}}
        for name in ("event", "value", "task", "success", "duration_ms", "questionnaire", "answers"):
            if getattr(self, name) is not None and name not in allowed[self.type]:
                raise FieldProblem(name, f"does not belong to {self.type} events")
        if self.type == "vital":
            if self.event not in VITALS:
                raise FieldProblem("event", f"a vital is one of {', '.join(VITALS)}, not {self.event!r}")
            if self.value is not None and self.value < 0:
                raise FieldProblem("value", "a vital's value cannot be negative")
        if self.type == "survey" and self.event not in SURVEY_EVENTS:
            raise FieldProblem("event", f"a survey event is one of {', '.join(SURVEY_EVENTS)}, not {self.event!r}")
        return self


class EventBatch(BaseModel):
    """The body of ``POST /api/v1/events``: events are validated one by one, not here (so one bad
    event never costs the others); the body itself refuses unknown fields like every other."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[Any], Field(max_length=MAX_BATCH, json_schema_extra={
        "items": {"$ref": "#/components/schemas/EventIn"}})]


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    field: str | None
    message: str

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "error": {"code": "invalid", "field": self.field, "message": self.message}}


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int
    rejected: list[Rejection] = field(default_factory=list)
    # Indices of stored conversions stamped before their unit's first exposure: kept (they are the
    # pre-period CUPED reads) but not counted by any metric, so the client is told rather than
    # finding a silent zero in the report.
    before_exposure: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": [r.to_dict() for r in self.rejected], "before_exposure": self.before_exposure}


def explain(error: ValidationError) -> tuple[str | None, str]:
    """The first problem pydantic found, as (field, message) in our words."""
    first = error.errors()[0]
    ctx_error = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_error, FieldProblem):
        return ctx_error.field_name, ctx_error.message
    loc = [str(part) for part in first["loc"] if not str(part).startswith("function-")]
    name = ".".join(loc) or None
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return name, message


@dataclass(frozen=True, slots=True)
class _Target:
    id: int
    status: str
    variants: frozenset[str]
    questions: Mapping[str, QuestionDef] | None = None  # a survey's: what its events must fit


def _targets(conn: sa.Connection, keys: set[str], kinds: tuple[str, ...],
             version: int | None) -> dict[str, _Target | None]:
    """The batch's experiments (None for a key no experiment of ``kinds`` has), from this
    process's cache while the registry is unchanged (:mod:`abtest.store.freshness`)."""
    cached = cache_for(conn.engine, "ingest.targets").get_many(
        registry_version(conn) if version is None else version, {(kinds, key) for key in keys},
        lambda missing: {(kinds, key): target for key, target in
                         _read_targets(conn, {key for _kinds, key in missing}, kinds).items()})
    return {key: target for (_kinds, key), target in cached.items()}


def _read_targets(conn: sa.Connection, keys: set[str], kinds: tuple[str, ...]) -> dict[str, _Target | None]:
    experiments, variants = Experiment.__table__, Variant.__table__  # type: ignore[attr-defined]
    surveys = Survey.__table__  # type: ignore[attr-defined]
    linked = experiments.alias("linked")
    rows = conn.execute(
        sa.select(experiments.c.key, experiments.c.id, experiments.c.status, variants.c.key, surveys.c.questions)
        # A survey linked to an experiment records that experiment's variants (the visitor's).
        .select_from(experiments.outerjoin(surveys, surveys.c.experiment_id == experiments.c.id)
                     .outerjoin(linked, linked.c.key == surveys.c.linked_key)
                     .join(variants, variants.c.experiment_id == sa.func.coalesce(linked.c.id, experiments.c.id)))
        # Only the kinds the API may write (A/B experiments, surveys): a study's events come from its runner.
        .where(experiments.c.key.in_(keys), experiments.c.kind.in_(kinds))
    ).all()
    found: dict[str, tuple[int, str, set[str], Any]] = {}
    for key, experiment_id, status, variant, questions in rows:
        found.setdefault(key, (experiment_id, status, set(), questions))[2].add(variant)
    targets: dict[str, _Target | None] = dict.fromkeys(keys)
    targets.update({k: _Target(i, s, frozenset(v), None if q is None else questions_of(q))
                    for k, (i, s, v, q) in found.items()})
    return targets


def _misfit(target: _Target, event: EventIn) -> tuple[str, str] | None:
    """Why an event does not belong to its (valid) target's kind of test, or None."""
    if target.questions is not None:
        if event.variant is None:  # an answer no variant would take would be stored and never counted
            return "variant", "a survey event carries the visitor's variant of the linked experiment, or \"all\""
        return event_problem(target.questions, event.type, event.task, event.questionnaire, event.answers)
    if event.type == "survey":
        return "type", "survey events belong to surveys"
    return None


@dataclass(slots=True)
class _Batch:
    """One request's validated events on their way into a group commit."""

    valid: list[tuple[int, EventIn]]
    rejected: list[Rejection]
    kinds: tuple[str, ...]
    statuses: tuple[str, ...]
    now: datetime
    registry_version: int | None


def ingest(engine: sa.Engine, raw_events: Sequence[Any], kinds: tuple[str, ...],
           statuses: tuple[str, ...] = ("running",), now: datetime | None = None,
           registry_version: int | None = None) -> IngestResult:
    """Validate each event, store the good ones, and count duplicates.

    ``kinds`` are the kinds of test the caller may write to (:func:`abtest.kinds.snippet_kinds`),
    ``statuses`` the states that accept events (public keys: running only). Concurrent calls in
    one process share a transaction (:mod:`abtest.store.group_commit`); each returns only after
    that commit, so a 202 built from it means the events are durable, and a failed commit fails
    every call of the group with nothing stored. ``registry_version`` is the registry's version
    as the caller read it for this request (the API's key lookup), which saves reading it again.
    """
    now = now or datetime.now(UTC)
    rejected: list[Rejection] = []
    valid: list[tuple[int, EventIn]] = []
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, Mapping):
            rejected.append(Rejection(index, None, "an event must be a JSON object"))
            continue
        try:
            event = EventIn.model_validate(raw)
        except ValidationError as exc:
            rejected.append(Rejection(index, *explain(exc)))
            continue
        if not now - MAX_PAST <= event.ts <= now + MAX_FUTURE:
            rejected.append(Rejection(index, "ts", "must lie between 30 days ago and 5 minutes from now"))
            continue
        valid.append((index, event))
    if not valid:
        return IngestResult(0, 0, rejected)
    batch = _Batch(valid, rejected, kinds, statuses, now, registry_version)
    return committer(engine, "ingest", _store_group).run(batch)


def _store_group(conn: sa.Connection, batches: Sequence[_Batch]) -> list[IngestResult]:
    """Store a group of requests' events with one insert, in the group's transaction. An id sent
    by two requests of the group is stored once and counted as a duplicate by the later one, as
    if the two had been written one after the other."""
    versions = [b.registry_version for b in batches]
    version = max(versions) if None not in versions else registry_version(conn)  # type: ignore[type-var]
    by_kinds: dict[tuple[str, ...], set[str]] = {}
    for b in batches:
        by_kinds.setdefault(b.kinds, set()).update(e.experiment for _i, e in b.valid)
    targets = {kinds: _targets(conn, keys, kinds, version) for kinds, keys in by_kinds.items()}
    rows: dict[str, dict[str, Any]] = {}  # the group's rows by event id, the first request's
    owners: list[dict[str, int]] = []  # per request: event id -> its index in the request
    duplicates = [0] * len(batches)  # per request: ids it sent twice or another request sent first
    for n, b in enumerate(batches):
        owned: dict[str, int] = {}
        for index, event in b.valid:
            row = _row(targets[b.kinds].get(event.experiment), event, index, b)
            if row is None:
                continue
            if event.id in rows:
                duplicates[n] += 1
                continue
            rows[event.id] = row
            owned[event.id] = index
        owners.append(owned)
    new = store_new(conn, list(rows.values()))
    first = _first_exposures(conn, [row for row in rows.values() if row["type"] == "conversion"])
    results = []
    for n, (b, owned) in enumerate(zip(batches, owners, strict=True)):
        accepted = sum(1 for event_id in owned if event_id in new)
        early = sorted(index for event_id, index in owned.items()
                       if _before_exposure(rows[event_id], first))
        b.rejected.sort(key=lambda r: r.index)
        results.append(IngestResult(accepted, len(owned) - accepted + duplicates[n], b.rejected, early))
    return results


def _row(target: _Target | None, event: EventIn, index: int, batch: _Batch) -> dict[str, Any] | None:
    """The event's stored row, or None with its rejection added to the batch's."""
    if target is None or target.status not in batch.statuses:
        # One answer for unknown, of another kind and not accepting: a public key learns
        # nothing about drafts or studies from it.
        batch.rejected.append(Rejection(index, "experiment", f"no {' or '.join(batch.statuses)} experiment "
                                        f"with key {event.experiment!r}"))
        return None
    if event.variant is not None and event.variant not in target.variants:
        batch.rejected.append(Rejection(index, "variant", f"{event.variant!r} is not a variant of {event.experiment!r}"))
        return None
    misfit = _misfit(target, event)
    if misfit is not None:
        batch.rejected.append(Rejection(index, *misfit))
        return None
    return event_row(
        target.id, event.id, event.type, event.unit, event.ts, variant=event.variant, forced=event.forced,
        received_at=batch.now, attributes=segment_attributes(event.attributes), event=event.event,
        value=event.value, task=event.task, success=event.success, duration_ms=event.duration_ms,
        questionnaire=event.questionnaire, answers=event.answers)


def _first_exposures(conn: sa.Connection, conversions: list[dict[str, Any]]) -> dict[tuple[int, str], datetime]:
    """The first stored exposure (as stored now, this group included) of each converting unit."""
    units: dict[int, set[str]] = {}
    for row in conversions:
        units.setdefault(row["experiment_id"], set()).add(row["unit"])
    return {(experiment_id, unit): ts for experiment_id, some in units.items()
            for unit, ts in first_exposures(conn, experiment_id, some).items()}


def _before_exposure(row: dict[str, Any], first: dict[tuple[int, str], datetime]) -> bool:
    """A conversion stamped before its unit's first exposure. A unit with no exposure yet is not
    flagged: its exposure may be on the way."""
    exposed = first.get((row["experiment_id"], row["unit"])) if row["type"] == "conversion" else None
    return exposed is not None and row["ts"] < exposed
