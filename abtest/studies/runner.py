"""The participant runner's rules: who sees which designs in which order, the steps of a session,
and each step's answer stored exactly once.

Participants move through a fixed list of steps (:func:`steps`): per design, each task
(start → end → SEQ), the end-of-session questionnaires and the optional comment. Every answer is
written as events through :func:`abtest.store.events.write_events` in the same transaction as the
progress update, and that update only succeeds from the step the participant was shown, so a
double submit stores nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from abtest import pipeline
from abtest.assignment import bucket, choose_variant
from abtest.errors import Conflict, Forbidden, NotFound, ValidationError
from abtest.models import Experiment, StudyParticipant, utcnow
from abtest.questionnaires import QUESTIONNAIRES
from abtest.store.events import MAX_DURATION_MS, event_row, exposure_id, write_events
from abtest.studies.definition import StudyDef
from abtest.studies.tokens import ReachToken

MAX_COMMENT = 4000
PID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}")


def get_study(session: Session, key: str) -> tuple[Experiment, StudyDef]:
    """The stored row and study; NotFound for unknown keys and for tests of another kind."""
    try:
        row, definition = pipeline.load(session, key)
    except NotFound:
        row, definition = None, None
    if not isinstance(definition, StudyDef):
        raise NotFound(f"no study with key {key!r}", field="study")
    assert row is not None
    return row, definition


def latin_square(n: int) -> list[list[int]]:
    """Rows of a balanced (Williams) Latin square: each design appears in each position equally
    often and, for even n, follows every other design equally often. Odd n needs 2n rows (each
    row and its mirror)."""
    first = [0]
    low, high = 1, n - 1
    for j in range(1, n):
        if j % 2 == 1:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    rows = [[(x + r) % n for x in first] for r in range(n)]
    if n % 2 == 1:
        rows += [list(reversed(row)) for row in rows]
    return rows


def design_order(study: StudyDef, pid: str, number: int) -> list[str]:
    """Between subjects: one design by the experiments' hash (seed = key). Within subjects: every
    design, in the Latin-square row picked by the participant's arrival number."""
    keys = list(study.variant_keys)
    if study.within_subjects:
        rows = latin_square(len(keys))
        return [keys[i] for i in rows[number % len(rows)]]
    index = choose_variant(bucket(study.seed, pid), study.weights)
    return [keys[index if index is not None else 0]]


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # task | questionnaire | comment
    design: str
    item: str  # the task key or the questionnaire name ("comment" for the comment)
    number: int


def steps(study: StudyDef, designs: Sequence[str]) -> list[Step]:
    """The participant's path: per design its tasks, then the questionnaires, then the comment."""
    out: list[Step] = []
    for design in designs:
        for task in study.tasks:
            out.append(Step("task", design, task.key, len(out)))
        for name in study.questionnaires:
            out.append(Step("questionnaire", design, name, len(out)))
        if study.comment:
            out.append(Step("comment", design, "comment", len(out)))
    return out


def current_step(study: StudyDef, participant: StudyParticipant) -> Step | None:
    path = steps(study, participant.designs)
    return path[participant.step] if participant.step < len(path) else None


# --- participants -------------------------------------------------------------------------------


class StepConflict(Conflict):
    """The step was already recorded (double submit, back button, a second tab)."""


class ParticipantTaken(Forbidden):
    """The participant id is enrolled, and this request did not come from their browser."""


def check_pid(pid: str) -> str:
    if not PID_PATTERN.fullmatch(pid):
        raise ValidationError("a participant id is 1-200 letters, digits and . _ : @ -", field="pid")
    return pid


def get_participant(session: Session, row: Experiment, pid: str) -> StudyParticipant | None:
    return session.exec(select(StudyParticipant).where(StudyParticipant.experiment_id == row.id,
                                                       StudyParticipant.pid == pid)).first()


def join(engine: sa.Engine, key: str, pid: str | None = None,
         attributes: Mapping[str, str] | None = None, may_resume: bool = False) -> StudyParticipant:
    """The participant ``pid`` (a new random one if None), enrolled with their design order and
    exposures recorded (with ``attributes``, e.g. their device, which define their segments).

    A known ``pid`` is resumed only when ``may_resume`` (the caller has proved this is the
    browser that consented); otherwise :class:`ParticipantTaken`, as anyone who read the id off
    a link could take the participant's place. Arrival numbers are unique per study; two people
    arriving at once retry instead of sharing a Latin-square row."""
    pid = check_pid(pid) if pid else str(uuid.uuid4())
    for _attempt in range(5):
        with Session(engine, expire_on_commit=False) as session:
            row, study = get_study(session, key)
            if row.status != "running":
                raise Conflict(f"the study {key!r} is not open for participants (it is {row.status})", field="study")
            found = get_participant(session, row, pid)
            if found is not None:
                if not may_resume:
                    raise ParticipantTaken("this participant id is already taking part in another browser",
                                           field="pid")
                return found
            number = (session.exec(select(sa.func.max(StudyParticipant.number))
                                   .where(StudyParticipant.experiment_id == row.id)).one() or 0) + 1
            designs = design_order(study, pid, number - 1)
            participant = StudyParticipant(experiment_id=row.id, pid=pid, number=number, designs=designs)
            session.add(participant)
            try:
                session.flush()
                now = utcnow()
                write_events(session.connection(), [
                    event_row(row.id, exposure_id(key, d, pid, False), "exposure", pid, now, variant=d,
                              attributes=attributes) for d in designs])
                session.commit()
            except sa.exc.IntegrityError:
                session.rollback()
                continue
            return participant
    raise Conflict("too many participants are joining at once; reload the page", field="pid")


def study_event(experiment_id: int, event_id: str, type_: str, design: str, pid: str, now: datetime,
                **fields: Any) -> dict[str, Any]:
    """A participant's answer as an event row (through the one row builder)."""
    return event_row(experiment_id, event_id, type_, pid, now, variant=design, **fields)


def step_event_id(key: str, pid: str, step: Step, what: str) -> str:
    digest = hashlib.sha256(f"{key}\x00{pid}\x00{step.number}\x00{step.design}\x00{step.item}\x00{what}".encode())
    return "study_" + digest.hexdigest()[:40]


def advance(conn: sa.Connection, participant: StudyParticipant, expected_step: int, expected_phase: str,
             expect_updated: datetime | None = None, **values: Any) -> None:
    """Move the participant on, only from the step and phase they were shown (else StepConflict);
    with ``expect_updated``, only if nothing else moved them since they were read (a tree test's
    clicks within one step)."""
    table = StudyParticipant.__table__  # type: ignore[attr-defined]
    conditions = [table.c.id == participant.id, table.c.step == expected_step, table.c.phase == expected_phase,
                  table.c.finished_at.is_(None), table.c.abandoned_at.is_(None)]
    now = utcnow()
    if expect_updated is not None:
        conditions.append(table.c.updated_at == expect_updated)
        now = max(now, expect_updated + timedelta(microseconds=1))  # so the next click sees a change
    result = conn.execute(table.update().where(*conditions).values(updated_at=now, **values))
    if result.rowcount != 1:
        raise StepConflict("this step was already recorded (the form was sent twice, or from another tab); "
                           "continue from where you are", field="step")


def load_participant(session: Session, key: str, pid: str) -> tuple[Experiment, StudyDef, StudyParticipant]:
    row, study = get_study(session, key)
    participant = get_participant(session, row, pid)
    if participant is None:
        raise NotFound("no such participant in this study; start from the study link", field="pid")
    return row, study, participant


def _next_values(study: StudyDef, participant: StudyParticipant, now: datetime) -> dict[str, Any]:
    nxt = participant.step + 1
    done = nxt >= len(steps(study, participant.designs))
    return {"step": nxt, "phase": "ready", "task_started_at": None, **({"finished_at": now} if done else {})}


def start_task(engine: sa.Engine, key: str, pid: str, step_number: int) -> None:
    """'Start task': the server's clock starts the timer."""
    with Session(engine) as session, session.begin():
        _row, study, participant = load_participant(session, key, pid)
        step = current_step(study, participant)
        if step is None or step.kind != "task" or step_number != participant.step:
            raise StepConflict("this task was already started or finished; continue from where you are", field="step")
        advance(session.connection(), participant, step_number, "ready", phase="running", task_started_at=utcnow(),
                 trail=[] if study.method == "tree-test" else None)


def end_task(engine: sa.Engine, key: str, pid: str, step_number: int, gave_up: bool,
             now: datetime | None = None) -> tuple[bool, float]:
    """'I'm done' / 'I gave up': records the task event; returns (success, duration in ms).

    Success is the participant's report, and a failure when the time limit was exceeded.
    """
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        row, study, participant = load_participant(session, key, pid)
        return _end_task(session, row, study, participant, step_number, gave_up, now)


def _end_task(session: Session, row: Experiment, study: StudyDef, participant: StudyParticipant, step_number: int,
              gave_up: bool, now: datetime) -> tuple[bool, float]:
    step = running_task(study, participant, step_number)
    if study.method != "usability":
        raise ValidationError(f"a {study.noun} task ends with an answer, not with “I'm done”", field="step")
    return record_task(session, row, study, participant, step, now, lambda task, duration: (not gave_up, {}))


def running_task(study: StudyDef, participant: StudyParticipant, step_number: int) -> Step:
    """The task step ``step_number`` if it is the one running now (else StepConflict)."""
    step = current_step(study, participant)
    if (step is None or step.kind != "task" or step_number != participant.step or participant.phase != "running"
            or participant.task_started_at is None):
        raise StepConflict("this task was already ended (or never started); continue from where you are",
                           field="step")
    return step


def record_task(session: Session, row: Experiment, study: StudyDef, participant: StudyParticipant, step: Step,
                now: datetime, judge: Any, expect_updated: datetime | None = None) -> tuple[bool, float]:
    """End the running task ``step`` at ``now``: ``judge(task, duration_ms)`` says (success, the
    event's other fields); over the time limit is a failure whatever it says. One task event,
    and the participant moves to the task's SEQ (or on, when the study asks none)."""
    key, pid = study.key, participant.pid
    task = study.task(step.item)
    assert participant.task_started_at is not None
    duration = (now - participant.task_started_at).total_seconds() * 1000
    if duration < 0:
        raise ValidationError("the task ended before it started (clock problem); start it again", field="step")
    success, fields = judge(task, duration)
    if task.time_limit is not None and duration > task.time_limit * 1000:
        success = False
    duration = min(duration, MAX_DURATION_MS)
    conn = session.connection()
    after = {"phase": "seq"} if study.seq else _next_values(study, participant, now)
    advance(conn, participant, step.number, "running", expect_updated=expect_updated, trail=None, **after)
    assert row.id is not None
    write_events(conn, [study_event(row.id, step_event_id(key, pid, step, "task"), "task", step.design, pid, now,
                                    task=task.key, success=success, duration_ms=round(duration, 1), **fields)])
    return success, duration


def reached(engine: sa.Engine, key: str, token: ReachToken, url: str, now: datetime | None = None) -> bool:
    """The snippet reports that the participant of ``token`` (already verified: signed, unexpired,
    for study ``key``) loaded ``url`` during the token's task attempt.

    When that attempt is running and ``url`` matches its ``success_url`` (a glob on the full URL,
    :func:`fnmatch.fnmatchcase`), the task ends as a success with the server-measured time, as
    "I'm done" would, and the result is True. A page that does not match, or an attempt not
    started yet, is a harmless no-op (False). Once the attempt has ended, by this token or
    otherwise, the token is spent: :class:`~abtest.errors.Forbidden` and nothing is stored, so a
    replayed report cannot end the task twice or any later task.
    """
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        row, study = get_study(session, key)
        participant = session.get(StudyParticipant, token.participant)
        if participant is None or participant.experiment_id != row.id:
            raise Forbidden("this study token's participant is not in this study", field="token")
        if not token_attempt_running(token, steps(study, participant.designs), participant.step, participant.phase,
                                     closed=participant.finished_at is not None or participant.abandoned_at is not None):
            return False
        if study.method != "usability":
            return False
        pattern = study.task(token.task).success_url
        if pattern is None or not fnmatch.fnmatchcase(url, pattern):
            return False
        try:
            _end_task(session, row, study, participant, participant.step, False, now)
        except StepConflict:  # the runner's "I'm done" or a second report won the race
            raise _spent() from None
        return True


def token_attempt_running(token: ReachToken, path: Sequence[Step], step: int, phase: str, closed: bool) -> bool:
    """Whether the task attempt a (verified) reach token names is running now, for a participant
    at ``step``/``phase`` on ``path`` (``closed``: finished or left). False while it has not
    started. :class:`~abtest.errors.Forbidden` once it has ended, by any means (the token is
    spent), or when the token names no task attempt of this path."""
    if token.step >= len(path) or path[token.step].kind != "task" or path[token.step].item != token.task:
        raise Forbidden("this study token names no task of this study", field="token")
    if closed or step > token.step or (step == token.step and phase == "seq"):
        raise _spent()
    return step == token.step and phase == "running"


def _spent() -> Forbidden:
    return Forbidden("this study token is spent: its task has already ended", field="token")


def validate_answers(name: str, form: Mapping[str, str]) -> tuple[list[int], dict[int, str]]:
    """Answers of questionnaire ``name`` from form fields ``<name>-1``…: (answers, errors per item)."""
    questionnaire = QUESTIONNAIRES[name]
    scale, items = questionnaire.scale, questionnaire.items
    answers: list[int] = []
    errors: dict[int, str] = {}
    for i in range(1, len(items) + 1):
        raw = (form.get(f"{name}-{i}") or "").strip()
        if raw == "":
            errors[i] = "Please choose an answer."
            continue
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not scale.low <= value <= scale.high:
            errors[i] = f"Choose a whole number from {scale.low} to {scale.high}."
            continue
        answers.append(value)
    return answers, errors


class AnswerErrors(ValidationError):
    def __init__(self, errors: dict[int, str]) -> None:
        super().__init__("some answers are missing or outside the scale", field="answers")
        self.errors = errors


def answer(engine: sa.Engine, key: str, pid: str, step_number: int, form: Mapping[str, str]) -> None:
    """Store the SEQ of the task just ended, a questionnaire, or the comment, and move on.

    Raises :class:`AnswerErrors` (nothing stored) when an item is missing or off its scale.
    """
    now = utcnow()
    with Session(engine) as session, session.begin():
        row, study, participant = load_participant(session, key, pid)
        step = current_step(study, participant)
        assert row.id is not None
        if step is None or step_number != participant.step:
            raise StepConflict("these answers were already recorded; continue from where you are", field="step")
        if step.kind == "task":
            if participant.phase != "seq":
                raise StepConflict("end the task before rating it", field="step")
            answers, errors = validate_answers("SEQ", form)
            if errors:
                raise AnswerErrors(errors)
            event = study_event(row.id, step_event_id(key, pid, step, "SEQ"), "response", step.design, pid, now,
                               questionnaire="SEQ", task=step.item, answers=answers)
            phase = "seq"
        elif step.kind == "questionnaire":
            answers, errors = validate_answers(step.item, form)
            if errors:
                raise AnswerErrors(errors)
            event = study_event(row.id, step_event_id(key, pid, step, step.item), "response", step.design, pid, now,
                               questionnaire=step.item, answers=answers)
            phase = "ready"
        else:
            text = (form.get("comment") or "").replace("\x00", "").strip()
            if len(text) > MAX_COMMENT:
                raise AnswerErrors({1: f"At most {MAX_COMMENT} characters, please ({len(text)} now)."})
            event = study_event(row.id, step_event_id(key, pid, step, "comment"), "response", step.design, pid, now,
                               questionnaire="comment", answers=[text]) if text else None
            phase = "ready"
        conn = session.connection()
        advance(conn, participant, step_number, phase, **_next_values(study, participant, now))
        if event is not None:
            write_events(conn, [event])


def abandon(engine: sa.Engine, key: str, pid: str) -> None:
    """'Leave the study': what was finished is kept, the participant is marked abandoned."""
    with Session(engine) as session, session.begin():
        _row, _study, participant = load_participant(session, key, pid)
        if participant.finished_at is None and participant.abandoned_at is None:
            participant.abandoned_at = utcnow()
            participant.updated_at = utcnow()
            session.add(participant)


