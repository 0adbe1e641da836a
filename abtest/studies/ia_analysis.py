"""Tree tests' and first-click tests' metrics, computed from whole attempts (:class:`TaskAnswers`).

Per task and design:

* tree test — success (a correct node chosen), directness (no backtracking, whatever the
  answer: Treejack's definition, so a skip without going back is direct) and direct success (a
  correct node reached directly), each with the adjusted-Wald interval; time to answer as a
  geometric mean (t interval on log seconds, skips left out); first clicks (the top-level node
  opened first) and destinations (the node chosen), with shares, and the paths themselves.
* first-click test — the share of first clicks on a target (adjusted Wald) and the time to the
  first click (geometric mean), and the clicks for the click map.

Two designs are compared by the N−1 two-proportion test (Fisher's exact test below an
expected count of 1) for the rates, as Sauro & Lewis recommend at every sample size, and
Welch's t-test on log times; the p-values of each metric are Holm-adjusted across the tasks
(*Quantifying the User Experience*, 2nd ed., ch. 3, 5, 9).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from abtest.aggregates.base import Failed, Request, Slice, TaskAnswers
from abtest.stats.summary import Counts, Moments
from abtest.studies.definition import StudyDef
from abtest.studies.ia import (
    ClickAttempt,
    TreeAttempt,
    click_attempt,
    destinations,
    first_clicks,
    tree_attempt,
)

Attempt = TreeAttempt | ClickAttempt


@dataclass(frozen=True, slots=True)
class Derived(Request):
    """A statistic computed here from a task's attempts (never sent to a source)."""

    task: str
    what: str  # direct | direct-success | log-times


def attempts_of(study: StudyDef, design: str, rows: Iterable[tuple[bool, float, Any]]) -> list[Attempt]:
    """The stored rows of one design's attempts as tree or click attempts (malformed rows skipped)."""
    read = tree_attempt if study.method == "tree-test" else click_attempt
    out = []
    for success, duration, answers in rows:
        attempt = read(answers, duration, success) if isinstance(answers, list) else None
        if attempt is not None:
            out.append(attempt)
    return out


def _log_moments(attempts: Sequence[Attempt]) -> Moments:
    """Moments of log seconds of the answered attempts (a skipped tree task has no answer time)."""
    logs = [math.log(max(a.duration_ms, 1.0) / 1000.0) for a in attempts
            if not (isinstance(a, TreeAttempt) and a.skipped)]
    return Moments.from_values(logs)


def derive(study: StudyDef, answers: Slice) -> Slice:
    """``answers`` with the :class:`Derived` statistics of every task added."""
    values: dict[Request, Any] = dict(answers.values)
    for task in study.tasks:
        rows = answers.get(TaskAnswers(task.key), {})
        if isinstance(rows, Failed):
            for what in ("direct", "direct-success", "log-times"):
                values[Derived(task.key, what)] = rows
            continue
        per = {d: attempts_of(study, d, rows.get(d, ())) for d in study.variant_keys}
        if study.method == "tree-test":
            direct = {d: [a.direct(study.tree_of(d)) for a in per[d]] for d in per}  # type: ignore[union-attr]
            values[Derived(task.key, "direct")] = {d: Counts(len(f), sum(f)) for d, f in direct.items()}
            values[Derived(task.key, "direct-success")] = {
                d: Counts(len(per[d]), sum(f and a.success for f, a in zip(direct[d], per[d], strict=True)))
                for d in per}
        values[Derived(task.key, "log-times")] = {d: _log_moments(a) for d, a in per.items()}
    return Slice(values)


def task_details(study: StudyDef, answers: Slice) -> list[dict[str, Any]]:
    """Per task and design, what the charts and tables show beyond the metrics (JSON-ready)."""
    out = []
    for task in study.tasks:
        rows = answers.get(TaskAnswers(task.key), {})
        if isinstance(rows, Failed):
            rows = {}
        designs: dict[str, Any] = {}
        for d in study.variant_keys:
            attempts = attempts_of(study, d, rows.get(d, ()))
            if study.method == "tree-test":
                designs[d] = _tree_details(study, task.key, d, attempts)  # type: ignore[arg-type]
            else:
                screen = task.screen_for(d)
                assert screen is not None
                designs[d] = {"attempts": len(attempts), "on_target": sum(a.success for a in attempts),
                              "screen": screen.to_dict(),
                              "clicks": [[a.x, a.y, a.success] for a in attempts]}  # type: ignore[union-attr]
        out.append({"task": task.key, "designs": designs})
    return out


def _tree_details(study: StudyDef, task: str, design: str, attempts: Sequence[TreeAttempt]) -> dict[str, Any]:
    tree = study.tree_of(design)
    correct = study.task(task).correct_for(design)
    return {
        "attempts": len(attempts),
        "skipped": sum(a.skipped for a in attempts),
        "correct": [tree.path(n) for n in sorted(correct)],
        "first_clicks": [{"node": label, "count": n, "share": share} for label, n, share in first_clicks(tree, attempts)],
        "destinations": [{"node": path, "count": n, "share": share, "correct": ok}
                         for path, n, share, ok in destinations(tree, attempts, correct)],
        "paths": [{"visits": list(a.visits), "chosen": a.chosen, "success": a.success,
                   "seconds": round(a.duration_ms / 1000, 1)} for a in attempts],
    }


def tree_attempts_from(document_paths: Sequence[Mapping[str, Any]]) -> list[TreeAttempt]:
    """Attempts back from a document's ``paths`` (for drawing the path tree)."""
    return [TreeAttempt(tuple(p["visits"]), p["chosen"], p["seconds"] * 1000, p["success"]) for p in document_paths]
