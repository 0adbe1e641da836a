"""Usability-study definitions (DESIGN §4.2, last paragraph): designs, tasks, questionnaires.

A study composes the shared :class:`~abtest.definitions.Core` (key, name, lifecycle, and its
designs as the core's variants, split by the same hash as experiments) with what only studies
have: each design's URL, the tasks and how their success is judged, the design mode and the
end-of-session questionnaires.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from abtest.checks import NAME_PATTERN, NAME_WORDS, VARIANT_PATTERN, VARIANT_WORDS, Checker, root_table
from abtest.definitions import Core, HasCore, VariantDef, parse_identity
from abtest.errors import Conflict
from abtest.studies.ia import MAX_TARGETS, METHODS, NOUNS, Rect, Screen, Tree, TreeError, parse_tree

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
              "questionnaires", "comment", "completion_code", "consent", "method", "seq"}
_DESIGN_FIELDS = {"key", "name", "url", "weight", "tree"}
_TASK_FIELDS = {"key", "prompt", "start_url", "success", "success_url", "time_limit", "correct", "screens", "image",
                "width", "height",
                "targets"}
# What each method's designs and tasks carry (the rest are refused by name).
_METHOD_DESIGN = {"usability": "url", "tree-test": "tree", "first-click": None}
_USABILITY_TASK = ("start_url", "success", "success_url")


@dataclass(frozen=True, slots=True)
class TaskDef:
    key: str
    prompt: str
    start_url: str | None = None
    success_url: str | None = None  # None: success is the participant's own report
    time_limit: int | None = None  # seconds
    # Tree test: the right answers per design (node numbers of that design's tree).
    correct: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # First-click test: the screen per design.
    screens: tuple[tuple[str, Screen], ...] = ()

    @property
    def success(self) -> str:
        return "self-report" if self.success_url is None else "url"

    def correct_for(self, design: str) -> frozenset[int]:
        return frozenset(dict(self.correct).get(design, ()))

    def screen_for(self, design: str) -> Screen | None:
        return dict(self.screens).get(design)


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
    method: str = "usability"  # | tree-test | first-click (abtest.studies.ia.METHODS)
    seq: bool = True  # the SEQ after each task
    trees: tuple[tuple[str, Tree], ...] = ()  # tree test: each design's tree

    analysis: ClassVar[str] = "fixed"  # small-sample comparisons, read when the study is done
    alpha: ClassVar[float] = 0.05

    def url_of(self, design: str) -> str:
        return dict(self.design_urls).get(design, "")

    def task(self, key: str) -> TaskDef:
        return next(t for t in self.tasks if t.key == key)

    def tree_of(self, design: str) -> Tree:
        return dict(self.trees)[design]

    @property
    def noun(self) -> str:
        return NOUNS[self.method]

    def to_dict(self) -> dict[str, Any]:
        """The study in its TOML shape (round-trips through :func:`parse_study`; seed is the key)."""
        out: dict[str, Any] = {
            "kind": self.kind, "key": self.key, "name": self.name, "hypothesis": self.hypothesis,
            "status": self.status, "method": self.method, "within_subjects": self.within_subjects,
            "seq": self.seq, "questionnaires": list(self.questionnaires), "comment": self.comment,
        }
        if self.completion_code is not None:
            out["completion_code"] = self.completion_code
        out["consent"] = self.consent
        trees = dict(self.trees)
        out["designs"] = [{k: v for k, v in (("key", d.key), ("name", d.name), ("url", self.url_of(d.key)),
                                             ("tree", trees[d.key].to_text() if d.key in trees else ""),
                                             ("weight", d.weight)) if v != ""} for d in self.variants]
        out["tasks"] = [self._task_dict(t) for t in self.tasks]
        return out

    def _task_dict(self, t: TaskDef) -> dict[str, Any]:
        out = {k: v for k, v in (("key", t.key), ("prompt", t.prompt), ("start_url", t.start_url),
                                 ("success_url", t.success_url), ("time_limit", t.time_limit)) if v is not None}
        if self.method == "usability":
            return out | ({} if t.success_url else {"success": "self-report"})
        if self.method == "tree-test":
            out["correct"] = {d: [self.tree_of(d).path(n) for n in nodes] for d, nodes in t.correct}
        else:
            out["screens"] = {d: screen.to_dict() for d, screen in t.screens}
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
    method = c.text(raw, "method", "method", default="usability") or "usability"
    c.choice(method, METHODS, "method")
    if method not in METHODS:
        method = "usability"
    within = c.boolean(raw, "within_subjects", "within_subjects")
    if within and method != "usability":
        c.fail("within_subjects", f"a {method} compares designs between subjects: each participant sees one "
                                  "(seeing a second tree or screen after the first would teach them the answers)")
    seq = c.boolean(raw, "seq", "seq", default=method == "usability")
    comment = c.boolean(raw, "comment", "comment")
    code = c.text(raw, "completion_code", "completion_code")
    c.length(code, "completion_code", 100)
    if code is not None and not code.strip():
        c.fail("completion_code", "must not be empty (leave it out instead)")
    consent = c.text(raw, "consent", "consent", default="")
    c.length(consent, "consent", 5000)
    designs, urls, trees = _parse_designs(c, raw.get("designs"), method)
    tasks = _parse_tasks(c, raw.get("tasks"), method, [d.key for d in designs], dict(trees))
    _unique_metric_names(c, tasks, method, seq)
    questionnaires = _parse_questionnaires(c, raw.get("questionnaires", []))
    c.raise_if_failed(source)
    return StudyDef(
        core=Core(key, name, designs, hypothesis, status, seed=key), within_subjects=within, tasks=tasks,
        questionnaires=questionnaires, comment=comment, completion_code=code, consent=consent or "",
        design_urls=urls, method=method, seq=seq, trees=trees,
    )


def _parse_designs(c: Checker, given: Any, method: str = "usability"
                   ) -> tuple[tuple[VariantDef, ...], tuple[tuple[str, str], ...], tuple[tuple[str, Tree], ...]]:
    carries = _METHOD_DESIGN[method]
    contents = f"key and {carries}" if carries else "key"
    raw = c.tables(given, "designs", contents, required=f"at least one [[designs]] with {contents}")
    if raw is None:
        return (), (), ()
    if not 1 <= len(raw) <= MAX_DESIGNS:
        c.fail("designs", f"needs 1 to {MAX_DESIGNS} designs, got {len(raw)}")
        return (), (), ()
    if method != "usability" and len(raw) > 2:
        c.fail("designs", f"a {method} compares at most 2 designs (a current and a proposed one), got {len(raw)}")
    keys, names, urls, weights = [], [], [], []
    trees: list[tuple[str, Tree]] = []
    for where, item, dkey in c.keyed(raw, "designs", _DESIGN_FIELDS, "key", VARIANT_PATTERN, VARIANT_WORDS,
                                     "design"):
        dname = c.text(item, "name", f"{where}.name", default="")
        c.length(dname, f"{where}.name", 200)
        for other in ("url", "tree"):
            if other != carries and other in item:
                c.fail(f"{where}.{other}", f"a {method} design has no {other}"
                       + (f" (it has a {carries})" if carries else " (its screens are on the tasks)"))
        url = c.text(item, "url", f"{where}.url", required=True) if carries == "url" else None
        _url(c, url, f"{where}.url")
        if carries == "tree":
            if "tree" not in item:
                c.fail(f"{where}.tree", "is required: the menu as indented labels (2 spaces per level) or nested tables")
            else:
                try:
                    trees.append((dkey or "", parse_tree(item["tree"])))
                except TreeError as exc:
                    c.fail(f"{where}.tree", str(exc))
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
    return variants, tuple(zip(keys, urls, strict=True)), tuple(trees)


def _url(c: Checker, url: str | None, where: str) -> None:
    c.length(url, where, 2000)
    if url is not None and not URL_PATTERN.fullmatch(url):
        c.fail(where, f"{url!r} must be an http(s):// URL or a path starting with /")


def _parse_tasks(c: Checker, given: Any, method: str = "usability", designs: list[str] | None = None,
                 trees: Mapping[str, Tree] | None = None) -> tuple[TaskDef, ...]:
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
        correct: tuple[tuple[str, tuple[int, ...]], ...] = ()
        screens: tuple[tuple[str, Screen], ...] = ()
        own = {"tree-test": ("correct",), "first-click": ("screens", "image", "width", "height", "targets")}.get(method, ())
        foreign = [f for f in ("correct", "screens", "image", "width", "height", "targets") if f not in own]
        foreign += list(_USABILITY_TASK) if method != "usability" else []
        for name in foreign:
            if name in item:
                c.fail(f"{where}.{name}", f"a {method} task has no {name}")
        if method == "tree-test":
            correct = _parse_correct(c, item, where, designs or [], trees or {})
        elif method == "first-click":
            screens = _parse_screens(c, item, where, designs or [])
        tasks.append(TaskDef(tkey or "", prompt or "", start_url, success_url, limit, correct, screens))
    return tuple(tasks)


def _unique_metric_names(c: Checker, tasks: tuple[TaskDef, ...], method: str, seq: bool) -> None:
    """Each task's results are named ``<task>-<metric>``; two keys must not make one name (task
    ``a``'s direct success and task ``a-direct``'s success would both be ``a-direct-success``)."""
    suffixes = {"tree-test": ["success", "directness", "direct-success", "time"],
                "first-click": ["success", "time"]}.get(method, ["success", "time"]) + (["SEQ"] if seq else [])
    owner: dict[str, str] = {}
    for i, task in enumerate(tasks):
        for suffix in suffixes:
            name = f"{task.key}-{suffix}"
            if owner.get(name, task.key) != task.key:
                c.fail(f"tasks[{i}].key", f"{task.key!r} would name a result {name!r}, as task {owner[name]!r} "
                                          "does: choose another key")
                break
            owner[name] = task.key


def _per_design(c: Checker, value: Any, where: str, designs: list[str], keyed_only: bool = False
                ) -> list[tuple[str, Any]]:
    """A per-design value: a table keyed by design key, or (with one design, unless
    ``keyed_only``) the value itself."""
    if isinstance(value, Mapping):
        for name in sorted(set(value) - set(designs)):
            c.fail(f"{where}.{name}", f"{name!r} is not a design of this study ({', '.join(designs)})")
        missing = [d for d in designs if d not in value]
        if missing:
            c.fail(where, f"give one for every design; missing: {', '.join(missing)}")
        return [(d, value[d]) for d in designs if d in value]
    if len(designs) == 1 and not keyed_only:
        return [(designs[0], value)]
    c.fail(where, f"must be a table with one entry per design ({', '.join(designs)})")
    return []


def _parse_correct(c: Checker, item: Mapping[str, Any], where: str, designs: list[str],
                   trees: Mapping[str, Tree]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    if "correct" not in item:
        c.fail(f"{where}.correct", "is required: the node(s) where the answer is, e.g. \"Help > Returns\"")
        return ()
    out = []
    for design, paths in _per_design(c, item["correct"], f"{where}.correct", designs):
        at = f"{where}.correct" + (f".{design}" if len(designs) > 1 else "")
        paths = [paths] if isinstance(paths, str) else paths
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            c.fail(at, "must be one or more node paths like \"Help > Returns\"")
            continue
        tree = trees.get(design)
        if tree is None:  # its tree is broken: reported there
            continue
        nodes = []
        for path in paths:
            node = tree.find(path)
            if node is None:
                c.fail(at, f"{path!r} is not a node of the {design} tree (name it by its labels from the top, "
                           "joined by \" > \")")
            elif node in nodes:
                c.fail(at, f"{path!r} is listed twice")
            else:
                nodes.append(node)
        out.append((design, tuple(nodes)))
    return tuple(out)


def _parse_screens(c: Checker, item: Mapping[str, Any], where: str, designs: list[str]
                   ) -> tuple[tuple[str, Screen], ...]:
    if "screens" in item:
        if "image" in item or "targets" in item:
            c.fail(f"{where}.screens", "give screens, or image and targets (one design), not both")
        given = _per_design(c, item["screens"], f"{where}.screens", designs, keyed_only=True)
        prefix = f"{where}.screens"
    elif "image" in item or len(designs) == 1:
        given = [(designs[0], {k: item[k] for k in ("image", "width", "height", "targets") if k in item})] \
            if len(designs) == 1 else []
        prefix = where
        if len(designs) > 1:
            c.fail(f"{where}.screens", f"with {len(designs)} designs, give screens = {{ design = {{ image, targets }} }}")
    else:
        c.fail(f"{where}.screens", "is required: the image and target(s) of each design")
        return ()
    out = []
    for design, screen in given:
        at = f"{prefix}.{design}" if prefix.endswith("screens") else prefix
        parsed = _parse_screen(c, screen, at)
        if parsed is not None:
            out.append((design, parsed))
    return tuple(out)


def _parse_screen(c: Checker, raw: Any, where: str) -> Screen | None:
    """One screen. ``width``/``height`` are the stored image's, filled in by whoever resolved
    ``image`` against the image store (sync, the form, the API) before parsing."""
    if not isinstance(raw, Mapping):
        c.fail(where, "must be a table with image and targets")
        return None
    c.unknown(raw, {"image", "width", "height", "targets"}, f"{where}.")
    image = c.text(raw, "image", f"{where}.image", required=True)
    width = c.whole(raw, "width", f"{where}.width", 1, 100_000, "pixels") if "width" in raw else None
    height = c.whole(raw, "height", f"{where}.height", 1, 100_000, "pixels") if "height" in raw else None
    if image is not None and (width is None or height is None):
        c.fail(f"{where}.image", f"{image!r} is not a stored image (upload it first, or name a file next to the "
                                 "definition)")
    targets_raw = raw.get("targets")
    if not isinstance(targets_raw, list) or not targets_raw:
        c.fail(f"{where}.targets", "is required: one or more rectangles [x, y, width, height] in image pixels")
        return None
    if len(targets_raw) > MAX_TARGETS:
        c.fail(f"{where}.targets", f"at most {MAX_TARGETS} targets, got {len(targets_raw)}")
    targets = []
    for i, t in enumerate(targets_raw):
        at = f"{where}.targets[{i}]"
        if (not isinstance(t, list) or len(t) != 4
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in t)):
            c.fail(at, "must be [x, y, width, height]: four numbers in image pixels")
            continue
        if any(not (isinstance(v, int) and abs(v) <= 10**6 or isinstance(v, float) and math.isfinite(v)) for v in t):
            c.fail(at, "must be four finite numbers in image pixels")
            continue
        rect = Rect(*(float(v) for v in t))
        if rect.width <= 0 or rect.height <= 0:
            c.fail(at, "width and height must be positive")
        elif width is not None and height is not None and (
                rect.x < 0 or rect.y < 0 or rect.x + rect.width > width or rect.y + rect.height > height):
            c.fail(at, f"lies outside the {width} × {height} px image")
        else:
            targets.append(rect)
    if image is None or width is None or height is None or len(targets) != len(targets_raw):
        return None
    return Screen(image, width, height, tuple(targets))


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
    if old.method != new.method:
        raise Conflict("the method of a launched study cannot change", field="method")
    if old.within_subjects != new.within_subjects:
        raise Conflict("within_subjects of a launched study cannot change", field="within_subjects")
    if old.seq != new.seq:
        raise Conflict("whether the SEQ is asked cannot change once participants have answered", field="seq")
    if old.trees != new.trees:  # stored paths name nodes by number
        raise Conflict("the trees of a launched tree test cannot change: stored paths name their nodes",
                       field="designs")
    if [t.key for t in old.tasks] != [t.key for t in new.tasks]:
        raise Conflict("the tasks of a launched study cannot be added, removed or reordered", field="tasks")
    for i, (before, after) in enumerate(zip(old.tasks, new.tasks, strict=True)):
        if before.success_url != after.success_url:
            raise Conflict("how success is judged cannot change once participants have done the task",
                           field=f"tasks[{i}].success_url")
        if before.correct != after.correct or before.screens != after.screens:
            raise Conflict("the right answers (correct nodes, images and targets) cannot change once participants "
                           "have done the task", field=f"tasks[{i}]")
        if before.time_limit != after.time_limit:
            raise Conflict("the time limit decides success, so it cannot change once participants have done "
                           "the task", field=f"tasks[{i}].time_limit")
    if old.questionnaires != new.questionnaires or old.comment != new.comment:
        raise Conflict("the questionnaires of a launched study cannot change", field="questionnaires")


def url_table(raw: Mapping[str, str], designs: tuple[VariantDef, ...]) -> tuple[tuple[str, str], ...]:
    """Stored design URLs in design order."""
    return tuple((d.key, raw.get(d.key, "")) for d in designs)
