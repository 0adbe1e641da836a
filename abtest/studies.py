"""Usability studies (DESIGN §4.2, last paragraph): definitions, storage and participant progress.

A study is stored as an ``experiments`` row with ``kind = "study"`` whose variants are its designs,
so keys, lifecycle and assignment stay shared with experiments; the ``studies`` and
``study_tasks`` tables hold what only studies have. Participants move through a fixed list of
steps (:func:`steps`): per design, each task (start → end → SEQ), the end-of-session
questionnaires and the optional comment. Every answer is written as events through
:func:`abtest.ingest.insert_events` in the same transaction as the progress update, and that
update only succeeds from the step the participant was shown, so a double submit stores nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from abtest import registry
from abtest.assignment import bucket, choose_variant
from abtest.definitions import (
    NAME_PATTERN,
    VARIANT_PATTERN,
    WEIGHT_TOLERANCE,
    ExperimentDef,
    InvalidDefinition,
    VariantDef,
    _Checker,
    parse_identity,
)
from abtest.errors import Conflict, NotFound, ValidationError
from abtest.ingest import MAX_DURATION_MS, exposure_id, insert_events
from abtest.models import Event, Experiment, Study, StudyParticipant, StudyTask, utcnow

QUESTIONNAIRES = ("SUS", "UMUX-Lite", "NPS")
MAX_DESIGNS = 10
MAX_TASKS = 30
MAX_TIME_LIMIT = 4 * 3600  # seconds; a task longer than that is not a usability task
MAX_COMMENT = 4000
PID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}")
URL_PATTERN = re.compile(r"(https?://[^\s]+|/[^\s]*)")
# A participant silent for this long is counted as abandoned (what they finished is kept).
ABANDON_AFTER = timedelta(hours=2)

_TOP_FIELDS = {"key", "name", "kind", "status", "hypothesis", "within_subjects", "designs", "tasks",
               "questionnaires", "comment", "completion_code", "consent"}
_DESIGN_FIELDS = {"key", "name", "url", "weight"}
_TASK_FIELDS = {"key", "prompt", "start_url", "success", "success_url", "time_limit"}

# Standard wordings. SEQ: Sauro & Dumas (2009); SUS: Brooke (1996); UMUX-Lite: Lewis, Utesch &
# Maher (2013); NPS: Reichheld (2003).
SEQ_QUESTION = "Overall, how difficult or easy was the task to complete?"
SEQ_LABELS = ("Very difficult", "Very easy")
SUS_ITEMS = (
    "I think that I would like to use this system frequently.",
    "I found the system unnecessarily complex.",
    "I thought the system was easy to use.",
    "I think that I would need the support of a technical person to be able to use this system.",
    "I found the various functions in this system were well integrated.",
    "I thought there was too much inconsistency in this system.",
    "I would imagine that most people would learn to use this system very quickly.",
    "I found the system very cumbersome to use.",
    "I felt very confident using the system.",
    "I needed to learn a lot of things before I could get going with this system.",
)
UMUX_LITE_ITEMS = ("This system's capabilities meet my requirements.", "This system is easy to use.")
NPS_QUESTION = "How likely is it that you would recommend this website to a friend or colleague?"


@dataclass(frozen=True, slots=True)
class Scale:
    low: int
    high: int
    low_label: str
    high_label: str


SCALES: dict[str, tuple[Scale, tuple[str, ...]]] = {
    "SEQ": (Scale(1, 7, *SEQ_LABELS), (SEQ_QUESTION,)),
    "SUS": (Scale(1, 5, "Strongly disagree", "Strongly agree"), SUS_ITEMS),
    "UMUX-Lite": (Scale(1, 7, "Strongly disagree", "Strongly agree"), UMUX_LITE_ITEMS),
    "NPS": (Scale(0, 10, "Not at all likely", "Extremely likely"), (NPS_QUESTION,)),
}


@dataclass(frozen=True, slots=True)
class TaskDef:
    key: str
    prompt: str
    start_url: str | None = None
    success_url: str | None = None  # None: success is the participant's own report
    time_limit: int | None = None  # seconds

    @property
    def success(self) -> str:
        return "self-report" if self.success_url is None else "url"


@dataclass(frozen=True, slots=True)
class StudyDef(ExperimentDef):
    """An experiment definition (designs as variants) plus the study's own settings."""

    within_subjects: bool = False
    tasks: tuple[TaskDef, ...] = ()
    questionnaires: tuple[str, ...] = ()
    comment: bool = False
    completion_code: str | None = None
    consent: str = ""
    design_urls: tuple[tuple[str, str], ...] = ()

    def url_of(self, design: str) -> str:
        return dict(self.design_urls).get(design, "")

    def task(self, key: str) -> TaskDef:
        return next(t for t in self.tasks if t.key == key)

    def as_experiment(self) -> ExperimentDef:
        return ExperimentDef(key=self.key, name=self.name, variants=self.variants, hypothesis=self.hypothesis,
                             kind="study", status=self.status, seed=self.seed, analysis=self.analysis)

    def to_dict(self) -> dict[str, Any]:
        """The study in its TOML shape (round-trips through :func:`parse_study`; seed is the key)."""
        out: dict[str, Any] = {
            "kind": "study", "key": self.key, "name": self.name, "hypothesis": self.hypothesis,
            "status": self.status, "within_subjects": self.within_subjects,
            "questionnaires": list(self.questionnaires), "comment": self.comment,
        }
        if self.completion_code is not None:
            out["completion_code"] = self.completion_code
        out["consent"] = self.consent
        out["designs"] = [{k: v for k, v in (("key", d.key), ("name", d.name), ("url", self.url_of(d.key)),
                                             ("weight", d.weight)) if v != ""} for d in self.variants]
        out["tasks"] = [{k: v for k, v in (("key", t.key), ("prompt", t.prompt), ("start_url", t.start_url),
                                           ("success_url", t.success_url), ("time_limit", t.time_limit))
                         if v is not None} | ({} if t.success_url else {"success": "self-report"})
                        for t in self.tasks]
        return out


# --- definitions --------------------------------------------------------------------------------


def parse_study(raw: Mapping[str, Any], source: str | None = None) -> StudyDef:
    """Validate a ``kind = "study"`` table; raise :class:`InvalidDefinition` listing every problem."""
    if not isinstance(raw, Mapping):
        raise InvalidDefinition([ValidationError("a definition must be a table/object", field="(root)")], source)
    c = _Checker()
    if "variants" in raw or "metrics" in raw:
        c.fail("kind", "kind = \"study\" with experiment [[variants]] or [[metrics]] is not supported: a study "
                       "lists [[designs]] and [[tasks]] (see experiments/checkout-study.toml)")
    c.unknown(raw, _TOP_FIELDS, "")
    key, name, hypothesis, status = parse_identity(c, raw)
    kind = c.text(raw, "kind", "kind", default="study")
    if kind != "study":
        c.fail("kind", f"{kind!r}: a study definition has kind = \"study\"")
    within = c.boolean(raw, "within_subjects", "within_subjects")
    comment = c.boolean(raw, "comment", "comment")
    code = c.text(raw, "completion_code", "completion_code")
    c.length(code, "completion_code", 100)
    if code is not None and not code.strip():
        c.fail("completion_code", "must not be empty (leave it out instead)")
    consent = c.text(raw, "consent", "consent", default="")
    c.length(consent, "consent", 5000)
    designs, urls = _parse_designs(c, raw.get("designs"))
    tasks = _parse_tasks(c, raw.get("tasks"))
    questionnaires = _parse_questionnaires(c, raw.get("questionnaires", []))
    if c.errors:
        raise InvalidDefinition(c.errors, source)
    return StudyDef(
        key=key or "", name=name or "", variants=designs, hypothesis=hypothesis or "", kind="study",
        status=status or "draft", seed=key or "", analysis="fixed",
        within_subjects=within, tasks=tasks, questionnaires=questionnaires, comment=comment,
        completion_code=code, consent=consent or "", design_urls=urls,
    )


def _parse_designs(c: _Checker, given: Any) -> tuple[tuple[VariantDef, ...], tuple[tuple[str, str], ...]]:
    raw = c.tables(given, "designs", "key and url", required="at least one [[designs]] with key and url")
    if raw is None:
        return (), ()
    if not 1 <= len(raw) <= MAX_DESIGNS:
        c.fail("designs", f"needs 1 to {MAX_DESIGNS} designs, got {len(raw)}")
        return (), ()
    keys, names, urls, weights = [], [], [], []
    for where, item, dkey in c.keyed(raw, "designs", _DESIGN_FIELDS, "key", VARIANT_PATTERN,
                                     "lowercase letters, digits, dashes, underscores", "design"):
        dname = c.text(item, "name", f"{where}.name", default="")
        c.length(dname, f"{where}.name", 200)
        url = c.text(item, "url", f"{where}.url", required=True)
        _url(c, url, f"{where}.url")
        weight = c.number(item, "weight", f"{where}.weight")
        if weight is not None and weight <= 0:
            c.fail(f"{where}.weight", f"{weight} must be positive")
        keys.append(dkey or "")
        names.append(dname or "")
        urls.append(url or "")
        weights.append(weight)
    given = [w for w in weights if w is not None]
    if given and len(given) != len(weights):
        c.fail("designs", "give every design a weight, or none (equal split)")
    elif given and all(w > 0 for w in given) and abs(math.fsum(given) - 1.0) > WEIGHT_TOLERANCE:
        c.fail("designs", f"weights sum to {math.fsum(given):.10g}; they must sum to 1 (abtest never rescales them)")
    final = [w if w is not None else 1.0 / len(raw) for w in weights]
    variants = tuple(VariantDef(k, w, n) for k, w, n in zip(keys, final, names, strict=True))
    return variants, tuple(zip(keys, urls, strict=True))


def _url(c: _Checker, url: str | None, where: str) -> None:
    c.length(url, where, 2000)
    if url is not None and not URL_PATTERN.fullmatch(url):
        c.fail(where, f"{url!r} must be an http(s):// URL or a path starting with /")


def _parse_tasks(c: _Checker, given: Any) -> tuple[TaskDef, ...]:
    raw = c.tables(given, "tasks", "key and prompt", required="at least one [[tasks]] with key and prompt")
    if raw is None:
        return ()
    if not 1 <= len(raw) <= MAX_TASKS:
        c.fail("tasks", f"needs 1 to {MAX_TASKS} tasks, got {len(raw)}")
        return ()
    tasks = []
    for where, item, tkey in c.keyed(raw, "tasks", _TASK_FIELDS, "key", NAME_PATTERN,
                                     "letters, digits, dots, dashes, underscores", "task"):
        prompt = c.text(item, "prompt", f"{where}.prompt", required=True)
        if prompt is not None and not prompt.strip():
            c.fail(f"{where}.prompt", "must not be empty: it is what the participant is asked to do")
        c.length(prompt, f"{where}.prompt", 2000)
        start_url = c.text(item, "start_url", f"{where}.start_url")
        _url(c, start_url, f"{where}.start_url")
        success = c.text(item, "success", f"{where}.success")
        success_url = c.text(item, "success_url", f"{where}.success_url")
        if success is not None and success != "self-report":
            c.fail(f"{where}.success", f"{success!r}: use success = \"self-report\", or success_url = \"pattern\"")
        if success is not None and success_url is not None:
            c.fail(f"{where}.success_url", "give either success = \"self-report\" or a success_url, not both")
        c.length(success_url, f"{where}.success_url", 2000)
        if success_url is not None and not success_url.strip():
            c.fail(f"{where}.success_url", "must not be empty")
        limit = item.get("time_limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or not 1 <= limit <= MAX_TIME_LIMIT):
            c.fail(f"{where}.time_limit", f"whole seconds between 1 and {MAX_TIME_LIMIT}, not {limit!r}")
            limit = None
        tasks.append(TaskDef(tkey or "", prompt or "", start_url, success_url, limit))
    return tuple(tasks)


def _parse_questionnaires(c: _Checker, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(q, str) for q in raw):
        c.fail("questionnaires", f"must be a list drawn from {', '.join(QUESTIONNAIRES)}")
        return ()
    for i, name in enumerate(raw):
        if name not in QUESTIONNAIRES:
            c.fail(f"questionnaires[{i}]", f"{name!r} is not one of {', '.join(QUESTIONNAIRES)} "
                                           "(the SEQ is asked after every task anyway)")
        elif name in raw[:i]:
            c.fail(f"questionnaires[{i}]", f"{name!r} is listed twice")
    return tuple(q for q in QUESTIONNAIRES if q in raw)


# --- storage ------------------------------------------------------------------------------------


def store_settings(session: Session, definitions: Sequence[ExperimentDef]) -> None:
    """After :func:`abtest.registry.sync`: write the study settings and tasks of every study.

    A launched study's tasks, questionnaires and design mode cannot change (participants are
    midway through that list of steps); wording, time limits and the completion code may.
    """
    for definition in definitions:
        row = registry.get_row(session, definition.key)
        if not isinstance(definition, StudyDef):
            if row.kind == "study":
                raise Conflict(f"{definition.key!r} is a study; its file needs kind = \"study\"", field="kind")
            continue
        if row.kind != "study":
            raise Conflict(f"{definition.key!r} is an existing experiment and cannot become a study", field="kind")
        assert row.id is not None
        settings = session.exec(select(Study).where(Study.experiment_id == row.id)).first()
        if settings is not None and row.status != "draft" and row.started_at is not None:
            check_launched(load_study(session, row), definition)
        settings = settings or Study(experiment_id=row.id)
        settings.within_subjects = definition.within_subjects
        settings.questionnaires = list(definition.questionnaires)
        settings.comment = definition.comment
        settings.completion_code = definition.completion_code
        settings.consent = definition.consent
        settings.design_urls = dict(definition.design_urls)
        session.add(settings)
        session.exec(delete(StudyTask).where(col(StudyTask.experiment_id) == row.id))  # type: ignore[call-overload]
        session.add_all(StudyTask(experiment_id=row.id, position=i, key=t.key, prompt=t.prompt, start_url=t.start_url,
                                  success_url=t.success_url, time_limit=t.time_limit)
                        for i, t in enumerate(definition.tasks))
        session.flush()


def check_launched(old: StudyDef, new: StudyDef) -> None:
    """Refuse what would break a launched study's data: participants are midway through its list of
    steps, so the design mode, the tasks (keys and order) and the questionnaires stay as they are,
    and so does how each task's success is judged (its success URL and time limit): otherwise
    earlier and later participants would be scored by different rules and then pooled.
    Reads nothing, so a form can ask it while the designer types."""
    if old.within_subjects != new.within_subjects:
        raise Conflict("within_subjects of a launched study cannot change", field="within_subjects")
    if [t.key for t in old.tasks] != [t.key for t in new.tasks]:
        raise Conflict("the tasks of a launched study cannot be added, removed or reordered", field="tasks")
    for i, (before, after) in enumerate(zip(old.tasks, new.tasks, strict=True)):
        if before.success_url != after.success_url:
            raise Conflict("how success is judged cannot change once participants have done the task",
                           field=f"tasks[{i}].success_url")
        if before.time_limit != after.time_limit:
            raise Conflict("the time limit decides success, so it cannot change once participants have done "
                           "the task", field=f"tasks[{i}].time_limit")
    if old.questionnaires != new.questionnaires or old.comment != new.comment:
        raise Conflict("the questionnaires of a launched study cannot change", field="questionnaires")


def check_update(old: StudyDef, new: StudyDef) -> None:
    """Every rule an edit of a stored study must pass: the registry's (lifecycle, frozen designs and
    weights, as for experiments' variants) and, once launched, :func:`check_launched`."""
    try:
        registry.check_update(old.as_experiment(), new.as_experiment())
    except Conflict as exc:
        if exc.field != "variants":
            raise
        raise Conflict("the designs and weights of a launched study cannot change (it would move participants "
                       "between designs); stop it and start a new study", field="designs") from exc
    if old.status != "draft":
        check_launched(old, new)


def update_study(session: Session, definition: StudyDef) -> Experiment:
    """Replace a stored study's definition in the caller's transaction (rules of :func:`check_update`)."""
    row = registry.get_row(session, definition.key)
    if row.kind != "study":
        raise Conflict(f"{definition.key!r} is an experiment, not a study", field="kind")
    check_update(load_study(session, row), definition)
    registry.update(session, definition.as_experiment())
    store_settings(session, [definition])
    return row


def sync(session: Session, definitions: Sequence[ExperimentDef]) -> list[registry.SyncResult]:
    """:func:`abtest.registry.sync` for experiments and studies together, in the caller's transaction.

    A study counts as unchanged only when its whole definition (tasks, questionnaires, URLs…) is
    what is stored, not just the registry's part of it.
    """
    before: dict[str, StudyDef | None] = {}
    for definition in definitions:
        if isinstance(definition, StudyDef):
            row = session.exec(select(Experiment).where(Experiment.key == definition.key)).first()
            before[definition.key] = load_study(session, row) if row is not None and row.kind == "study" else None
    results = registry.sync(session, [d.as_experiment() if isinstance(d, StudyDef) else d for d in definitions])
    store_settings(session, definitions)
    out = []
    for result, definition in zip(results, definitions, strict=True):
        if isinstance(definition, StudyDef) and result.action != "created":
            result = registry.SyncResult(result.key, "unchanged" if before[definition.key] == definition else "updated")
        out.append(result)
    return out


def create_study(session: Session, definition: StudyDef) -> Experiment:
    """Store a new study (registry row, designs, settings, tasks) in the caller's transaction."""
    row = registry.create(session, definition.as_experiment())
    store_settings(session, [definition])
    return row


def load_study(session: Session, row: Experiment) -> StudyDef:
    base = registry.load(session, row)
    settings = session.exec(select(Study).where(Study.experiment_id == row.id)).first()
    if row.kind != "study" or settings is None:
        raise NotFound(f"no study with key {row.key!r}", field="study")
    tasks = session.exec(select(StudyTask).where(StudyTask.experiment_id == row.id)
                         .order_by(col(StudyTask.position))).all()
    urls = settings.design_urls or {}
    return StudyDef(
        key=base.key, name=base.name, variants=base.variants, hypothesis=base.hypothesis, kind="study",
        status=base.status, seed=base.seed, analysis=base.analysis,
        within_subjects=settings.within_subjects,
        tasks=tuple(TaskDef(t.key, t.prompt, t.start_url, t.success_url, t.time_limit) for t in tasks),
        questionnaires=tuple(settings.questionnaires or ()), comment=settings.comment,
        completion_code=settings.completion_code, consent=settings.consent,
        design_urls=tuple((v.key, urls.get(v.key, "")) for v in base.variants),
    )


def get_study(session: Session, key: str) -> tuple[Experiment, StudyDef]:
    """The stored row and study definition; NotFound for unknown keys and for plain experiments."""
    row = session.exec(select(Experiment).where(Experiment.key == key)).first()
    if row is None or row.kind != "study":
        raise NotFound(f"no study with key {key!r}", field="study")
    return row, load_study(session, row)


# --- designs and steps --------------------------------------------------------------------------


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


def check_pid(pid: str) -> str:
    if not PID_PATTERN.fullmatch(pid):
        raise ValidationError("a participant id is 1-200 letters, digits and . _ : @ -", field="pid")
    return pid


def get_participant(session: Session, row: Experiment, pid: str) -> StudyParticipant | None:
    return session.exec(select(StudyParticipant).where(StudyParticipant.experiment_id == row.id,
                                                       StudyParticipant.pid == pid)).first()


def join(engine: sa.Engine, key: str, pid: str | None = None) -> StudyParticipant:
    """The participant ``pid`` (a new random one if None): resumed if known, else enrolled with
    their design order and exposures recorded. Arrival numbers are unique per study; two people
    arriving at once retry instead of sharing a Latin-square row."""
    pid = check_pid(pid) if pid else str(uuid.uuid4())
    for _attempt in range(5):
        with Session(engine, expire_on_commit=False) as session:
            row, study = get_study(session, key)
            if row.status != "running":
                raise Conflict(f"the study {key!r} is not open for participants (it is {row.status})", field="study")
            found = get_participant(session, row, pid)
            if found is not None:
                return found
            number = (session.exec(select(sa.func.max(StudyParticipant.number))
                                   .where(StudyParticipant.experiment_id == row.id)).one() or 0) + 1
            designs = design_order(study, pid, number - 1)
            participant = StudyParticipant(experiment_id=row.id, pid=pid, number=number, designs=designs)
            session.add(participant)
            try:
                session.flush()
                now = utcnow()
                insert_events(session.connection(), [
                    _event_row(row.id, exposure_id(key, d, pid, False), "exposure", d, pid, now) for d in designs])
                session.commit()
            except sa.exc.IntegrityError:
                session.rollback()
                continue
            return participant
    raise Conflict("too many participants are joining at once; reload the page", field="pid")


def _event_row(experiment_id: int, event_id: str, type_: str, design: str, pid: str, now: datetime,
               **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "experiment_id": experiment_id, "variant": design, "unit": pid,
            "event": None, "value": None, "task": None, "success": None, "duration_ms": None,
            "questionnaire": None, "answers": None, "forced": False, "ts": now, "received_at": now, **fields}


def _event_id(key: str, pid: str, step: Step, what: str) -> str:
    digest = hashlib.sha256(f"{key}\x00{pid}\x00{step.number}\x00{step.design}\x00{step.item}\x00{what}".encode())
    return "study_" + digest.hexdigest()[:40]


def _advance(conn: sa.Connection, participant: StudyParticipant, expected_step: int, expected_phase: str,
             **values: Any) -> None:
    """Move the participant on, only from the step and phase they were shown (else StepConflict)."""
    table = StudyParticipant.__table__  # type: ignore[attr-defined]
    result = conn.execute(
        table.update()
        .where(table.c.id == participant.id, table.c.step == expected_step, table.c.phase == expected_phase,
               table.c.finished_at.is_(None), table.c.abandoned_at.is_(None))
        .values(updated_at=utcnow(), **values))
    if result.rowcount != 1:
        raise StepConflict("this step was already recorded (the form was sent twice, or from another tab); "
                           "continue from where you are", field="step")


def _load(session: Session, key: str, pid: str) -> tuple[Experiment, StudyDef, StudyParticipant]:
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
        _row, study, participant = _load(session, key, pid)
        step = current_step(study, participant)
        if step is None or step.kind != "task" or step_number != participant.step:
            raise StepConflict("this task was already started or finished; continue from where you are", field="step")
        _advance(session.connection(), participant, step_number, "ready", phase="running", task_started_at=utcnow())


def end_task(engine: sa.Engine, key: str, pid: str, step_number: int, gave_up: bool,
             now: datetime | None = None) -> tuple[bool, float]:
    """'I'm done' / 'I gave up': records the task event; returns (success, duration in ms).

    Success is the participant's report, and a failure when the time limit was exceeded.
    """
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        row, study, participant = _load(session, key, pid)
        return _end_task(session, row, study, participant, step_number, gave_up, now)


def _end_task(session: Session, row: Experiment, study: StudyDef, participant: StudyParticipant, step_number: int,
              gave_up: bool, now: datetime) -> tuple[bool, float]:
    key, pid = study.key, participant.pid
    step = current_step(study, participant)
    if (step is None or step.kind != "task" or step_number != participant.step or participant.phase != "running"
            or participant.task_started_at is None):
        raise StepConflict("this task was already ended (or never started); continue from where you are",
                           field="step")
    task = study.task(step.item)
    duration = (now - participant.task_started_at).total_seconds() * 1000
    if duration < 0:
        raise ValidationError("the task ended before it started (clock problem); start it again", field="step")
    success = not gave_up
    if task.time_limit is not None and duration > task.time_limit * 1000:
        success = False
    duration = min(duration, MAX_DURATION_MS)
    conn = session.connection()
    _advance(conn, participant, step_number, "running", phase="seq")
    assert row.id is not None
    insert_events(conn, [_event_row(row.id, _event_id(key, pid, step, "task"), "task", step.design, pid, now,
                                    task=task.key, success=success, duration_ms=round(duration, 1))])
    return success, duration


def reached(engine: sa.Engine, key: str, pid: str, task_key: str, url: str, now: datetime | None = None) -> bool:
    """The snippet reports that participant ``pid`` loaded ``url`` while doing ``task_key``.

    When that task is running and ``url`` matches its ``success_url`` (a glob on the full URL,
    :func:`fnmatch.fnmatchcase`), the task ends as a success with the server-measured time, as
    "I'm done" would. Returns whether it ended the task; anything else (no match, the task not
    started, already ended, another task current, a report sent twice) is a harmless no-op.
    Unknown study or participant: NotFound.
    """
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        row, study, participant = _load(session, key, pid)
        step = current_step(study, participant)
        if (step is None or step.kind != "task" or step.item != task_key or participant.phase != "running"
                or participant.finished_at is not None or participant.abandoned_at is not None):
            return False
        pattern = study.task(step.item).success_url
        if pattern is None or not fnmatch.fnmatchcase(url, pattern):
            return False
        try:
            _end_task(session, row, study, participant, participant.step, False, now)
        except StepConflict:  # the runner's "I'm done" or a second report won the race
            return False
        return True


def validate_answers(name: str, form: Mapping[str, str]) -> tuple[list[int], dict[int, str]]:
    """Answers of questionnaire ``name`` from form fields ``<name>-1``…: (answers, errors per item)."""
    scale, items = SCALES[name]
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
        row, study, participant = _load(session, key, pid)
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
            event = _event_row(row.id, _event_id(key, pid, step, "SEQ"), "response", step.design, pid, now,
                               questionnaire="SEQ", task=step.item, answers=answers)
            phase = "seq"
        elif step.kind == "questionnaire":
            answers, errors = validate_answers(step.item, form)
            if errors:
                raise AnswerErrors(errors)
            event = _event_row(row.id, _event_id(key, pid, step, step.item), "response", step.design, pid, now,
                               questionnaire=step.item, answers=answers)
            phase = "ready"
        else:
            text = (form.get("comment") or "").replace("\x00", "").strip()
            if len(text) > MAX_COMMENT:
                raise AnswerErrors({1: f"At most {MAX_COMMENT} characters, please ({len(text)} now)."})
            event = _event_row(row.id, _event_id(key, pid, step, "comment"), "response", step.design, pid, now,
                               questionnaire="comment", answers=[text]) if text else None
            phase = "ready"
        conn = session.connection()
        _advance(conn, participant, step_number, phase, **_next_values(study, participant, now))
        if event is not None:
            insert_events(conn, [event])


def abandon(engine: sa.Engine, key: str, pid: str) -> None:
    """'Leave the study': what was finished is kept, the participant is marked abandoned."""
    with Session(engine) as session, session.begin():
        _row, _study, participant = _load(session, key, pid)
        if participant.finished_at is None and participant.abandoned_at is None:
            participant.abandoned_at = utcnow()
            participant.updated_at = utcnow()
            session.add(participant)


def study_events(session: Session, row: Experiment) -> sa.Select[Any]:
    """Every task and response event of a study, oldest first (CSV export).

    Only the study's own tasks: the snippet on a tested page also times its page loads (task
    ``page-load``, under the visitor's random id), which is not a study answer."""
    table = Event.__table__  # type: ignore[attr-defined]
    tasks = [t.key for t in load_study(session, row).tasks]
    return (sa.select(table.c.unit, table.c.variant, table.c.type, table.c.task, table.c.success,
                      table.c.duration_ms, table.c.questionnaire, table.c.answers, table.c.ts)
            .where(table.c.experiment_id == row.id,
                   sa.or_(table.c.type == "response", sa.and_(table.c.type == "task", table.c.task.in_(tasks))))
            .order_by(table.c.unit, table.c.ts, table.c.id))


# --- demo ---------------------------------------------------------------------------------------

DEMO_STUDY = {
    "kind": "study", "key": "checkout-study", "name": "Checkout redesign: usability study", "status": "running",
    "within_subjects": False, "questionnaires": ["SUS", "UMUX-Lite", "NPS"], "comment": True,
    "completion_code": "CHK-7731",
    "designs": [{"key": "current", "name": "Current checkout", "url": "https://example.com/checkout", "weight": 0.5},
                {"key": "one-page", "name": "One-page checkout", "url": "https://example.com/checkout-v2",
                 "weight": 0.5}],
    "tasks": [{"key": "buy-shoes", "prompt": "Buy the blue running shoes in size 42.", "time_limit": 300},
              {"key": "change-address", "prompt": "Change the delivery address of your order.", "time_limit": 180}],
}
# (success rate, geometric-mean seconds) per design and task; the one-page design is better.
_DEMO_TRUTH = {"current": {"buy-shoes": (0.6, 140.0), "change-address": (0.7, 75.0)},
               "one-page": {"buy-shoes": (0.9, 95.0), "change-address": (0.85, 60.0)}}
_DEMO_COMMENTS = {"current": ["The shipping step was confusing.", "Too many pages before paying."],
                  "one-page": ["Quick, everything on one screen.", "I could not find the coupon field."]}


def seed_demo_study(engine: sa.Engine, rng: Any, participants: int = 24) -> str:
    """Seed the demo study with simulated participants (some abandon midway); returns a line to print."""
    import random

    rng = rng or random.Random(2026)
    study = parse_study(DEMO_STUDY)
    with Session(engine, expire_on_commit=False) as session:
        row = create_study(session, study)
        assert row.id is not None
        start = utcnow() - timedelta(days=3)
        events: list[dict[str, Any]] = []
        for number in range(1, participants + 1):
            pid = f"demo-participant-{number:02d}"
            designs = design_order(study, pid, number - 1)
            path = steps(study, designs)
            quits_at = rng.randrange(1, len(path)) if rng.random() < 0.15 else None
            clock = start + timedelta(minutes=rng.uniform(0, 3 * 24 * 60 - 120))
            joined = clock
            events += [_event_row(row.id, exposure_id(study.key, d, pid, False), "exposure", d, pid, clock)
                       for d in designs]
            done = 0
            for step in path[:quits_at]:
                quality = 0.8 if step.design == "one-page" else 0.0
                if step.kind == "task":
                    rate, seconds = _DEMO_TRUTH[step.design][step.item]
                    took = math.exp(rng.gauss(math.log(seconds), 0.45))
                    clock += timedelta(seconds=took + 5)
                    success = rng.random() < rate and took <= study.task(step.item).time_limit  # type: ignore[operator]
                    events.append(_event_row(row.id, _event_id(study.key, pid, step, "task"), "task", step.design, pid,
                                             clock, task=step.item, success=success, duration_ms=round(took * 1000)))
                    seq = max(1, min(7, round(rng.gauss(5.6 if success else 3.2, 1.0) + quality * 0.5)))
                    events.append(_event_row(row.id, _event_id(study.key, pid, step, "SEQ"), "response", step.design,
                                             pid, clock, questionnaire="SEQ", task=step.item, answers=[seq]))
                elif step.item == "SUS":
                    lean = rng.gauss(0.7 + quality, 0.6)
                    answers = [max(1, min(5, round(3 + (lean if i % 2 == 0 else -lean) + rng.gauss(0, 0.7))))
                               for i in range(10)]
                    events.append(_event_row(row.id, _event_id(study.key, pid, step, "SUS"), "response", step.design,
                                             pid, clock, questionnaire="SUS", answers=answers))
                elif step.item == "UMUX-Lite":
                    answers = [max(1, min(7, round(rng.gauss(5 + quality, 1.1)))) for _ in range(2)]
                    events.append(_event_row(row.id, _event_id(study.key, pid, step, "UMUX-Lite"), "response",
                                             step.design, pid, clock, questionnaire="UMUX-Lite", answers=answers))
                elif step.item == "NPS":
                    events.append(_event_row(row.id, _event_id(study.key, pid, step, "NPS"), "response", step.design,
                                             pid, clock, questionnaire="NPS",
                                             answers=[max(0, min(10, round(rng.gauss(6.5 + 2 * quality, 2))))]))
                elif rng.random() < 0.5:
                    events.append(_event_row(row.id, _event_id(study.key, pid, step, "comment"), "response",
                                             step.design, pid, clock, questionnaire="comment",
                                             answers=[rng.choice(_DEMO_COMMENTS[step.design])]))
                clock += timedelta(seconds=rng.uniform(10, 40))
                done += 1
            finished = quits_at is None
            session.add(StudyParticipant(
                experiment_id=row.id, pid=pid, number=number, designs=designs, step=done, phase="ready",
                started_at=joined, updated_at=clock, finished_at=clock if finished else None,
                abandoned_at=None if finished else clock))
        session.flush()
        insert_events(session.connection(), events)
        session.commit()
    return f"demo: {study.key} (usability study) with {participants} simulated participants: /s/{study.key}"
