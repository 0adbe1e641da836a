"""Usability-study definitions (DESIGN §4.2, last paragraph): designs, tasks, questionnaires.

A study composes the shared :class:`~abtest.definitions.Core` (key, name, lifecycle, and its
designs as the core's variants, split by the same hash as experiments) with what only studies
have: each design's URL, the tasks and how their success is judged, the design mode and the
end-of-session questionnaires.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from abtest.checks import NAME_PATTERN, NAME_WORDS, VARIANT_PATTERN, VARIANT_WORDS, Checker, root_table
from abtest.definitions import Core, HasCore, VariantDef, parse_identity
from abtest.errors import Conflict

# The end-of-session questionnaires a study may ask (the SEQ is asked after every task anyway);
# each is declared in abtest.questionnaires.
END_OF_SESSION = ("SUS", "UMUX-Lite", "NPS")
MAX_DESIGNS = 10
MAX_TASKS = 30
MAX_TIME_LIMIT = 4 * 3600  # seconds; a task longer than that is not a usability task
# A participant silent for this long is counted as abandoned (what they finished is kept).
ABANDON_AFTER = timedelta(hours=2)
URL_PATTERN = re.compile(r"(https?://[^\s]+|/[^\s]*)")

TOP_FIELDS = {"key", "name", "kind", "status", "hypothesis", "within_subjects", "designs", "tasks",
              "questionnaires", "comment", "completion_code", "consent"}
_DESIGN_FIELDS = {"key", "name", "url", "weight"}
_TASK_FIELDS = {"key", "prompt", "start_url", "success", "success_url", "time_limit"}


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
class StudyDef(HasCore):
    kind: ClassVar[str] = "study"

    core: Core  # its variants are the designs; the seed is the key
    within_subjects: bool = False
    tasks: tuple[TaskDef, ...] = ()
    questionnaires: tuple[str, ...] = ()
    comment: bool = False
    completion_code: str | None = None
    consent: str = ""
    design_urls: tuple[tuple[str, str], ...] = ()

    analysis: ClassVar[str] = "fixed"  # small-sample comparisons, read when the study is done
    alpha: ClassVar[float] = 0.05

    def url_of(self, design: str) -> str:
        return dict(self.design_urls).get(design, "")

    def task(self, key: str) -> TaskDef:
        return next(t for t in self.tasks if t.key == key)

    def to_dict(self) -> dict[str, Any]:
        """The study in its TOML shape (round-trips through :func:`parse_study`; seed is the key)."""
        out: dict[str, Any] = {
            "kind": self.kind, "key": self.key, "name": self.name, "hypothesis": self.hypothesis,
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


def parse_study(raw: Any, source: str | None = None) -> StudyDef:
    """Validate a ``kind = "study"`` table; raise InvalidDefinition listing every problem."""
    raw = root_table(raw, source)
    c = Checker()
    if "variants" in raw or "metrics" in raw:
        c.fail("kind", "kind = \"study\" with experiment [[variants]] or [[metrics]] is not supported: a study "
                       "lists [[designs]] and [[tasks]] (see experiments/checkout-study.toml)")
    c.unknown(raw, TOP_FIELDS, "")
    key, name, hypothesis, status = parse_identity(c, raw)
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
    c.raise_if_failed(source)
    return StudyDef(
        core=Core(key, name, designs, hypothesis, status, seed=key), within_subjects=within, tasks=tasks,
        questionnaires=questionnaires, comment=comment, completion_code=code, consent=consent or "",
        design_urls=urls,
    )


def _parse_designs(c: Checker, given: Any) -> tuple[tuple[VariantDef, ...], tuple[tuple[str, str], ...]]:
    raw = c.tables(given, "designs", "key and url", required="at least one [[designs]] with key and url")
    if raw is None:
        return (), ()
    if not 1 <= len(raw) <= MAX_DESIGNS:
        c.fail("designs", f"needs 1 to {MAX_DESIGNS} designs, got {len(raw)}")
        return (), ()
    keys, names, urls, weights = [], [], [], []
    for where, item, dkey in c.keyed(raw, "designs", _DESIGN_FIELDS, "key", VARIANT_PATTERN, VARIANT_WORDS,
                                     "design"):
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
    given_weights = [w for w in weights if w is not None]
    if given_weights and len(given_weights) != len(weights):
        c.fail("designs", "give every design a weight, or none (equal split)")
    else:
        c.weights_sum_to_one(given_weights, "designs", at_least=1)
    final = [w if w is not None else 1.0 / len(raw) for w in weights]
    variants = tuple(VariantDef(k, w, n) for k, w, n in zip(keys, final, names, strict=True))
    return variants, tuple(zip(keys, urls, strict=True))


def _url(c: Checker, url: str | None, where: str) -> None:
    c.length(url, where, 2000)
    if url is not None and not URL_PATTERN.fullmatch(url):
        c.fail(where, f"{url!r} must be an http(s):// URL or a path starting with /")


def _parse_tasks(c: Checker, given: Any) -> tuple[TaskDef, ...]:
    raw = c.tables(given, "tasks", "key and prompt", required="at least one [[tasks]] with key and prompt")
    if raw is None:
        return ()
    if not 1 <= len(raw) <= MAX_TASKS:
        c.fail("tasks", f"needs 1 to {MAX_TASKS} tasks, got {len(raw)}")
        return ()
    tasks = []
    for where, item, tkey in c.keyed(raw, "tasks", _TASK_FIELDS, "key", NAME_PATTERN, NAME_WORDS, "task"):
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
        limit = c.whole(item, "time_limit", f"{where}.time_limit", 1, MAX_TIME_LIMIT, "whole seconds")
        tasks.append(TaskDef(tkey or "", prompt or "", start_url, success_url, limit))
    return tuple(tasks)


def _parse_questionnaires(c: Checker, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(q, str) for q in raw):
        c.fail("questionnaires", f"must be a list drawn from {', '.join(END_OF_SESSION)}")
        return ()
    for i, name in enumerate(raw):
        if name not in END_OF_SESSION:
            c.fail(f"questionnaires[{i}]", f"{name!r} is not one of {', '.join(END_OF_SESSION)} "
                                           "(the SEQ is asked after every task anyway)")
        elif name in raw[:i]:
            c.fail(f"questionnaires[{i}]", f"{name!r} is listed twice")
    return tuple(q for q in END_OF_SESSION if q in raw)


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


def url_table(raw: Mapping[str, str], designs: tuple[VariantDef, ...]) -> tuple[tuple[str, str], ...]:
    """Stored design URLs in design order."""
    return tuple((d.key, raw.get(d.key, "")) for d in designs)
