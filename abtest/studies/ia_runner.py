"""The participant runner's steps for tree tests and first-click tests (issue 19).

A tree test is answered click by click: each node the participant opens is appended to their
trail on the server, timed by the server's clock from the task's start, and each request names
how long the trail was when the page was drawn, so a replayed or out-of-order click (a double
click, the back button, a second tab) is refused with :class:`~abtest.studies.runner.StepConflict`
and changes nothing. Choosing a node (or skipping) ends the task with one ``task`` event whose
``answers`` hold the whole path (:func:`abtest.studies.ia.tree_answers`).

A first-click test records one click in image pixels; the task event's ``answers`` are
``[x, y]`` and its success is whether the click fell on a target.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from abtest.errors import ValidationError
from abtest.models import StudyParticipant, utcnow
from abtest.studies.ia import MAX_MOVES, Tree, tree_answers
from abtest.studies.runner import StepConflict, advance, load_participant, record_task, running_task


def current_node(participant: StudyParticipant) -> int:
    """Where a tree-test participant is now: the last node opened (0, the top level, at first)."""
    trail = participant.trail or []
    return int(trail[-1][0]) if trail else 0


def _tree_step(session: Session, key: str, pid: str, step_number: int, seen: int
               ) -> tuple[Any, Any, StudyParticipant, Any, Tree]:
    row, study, participant = load_participant(session, key, pid)
    if study.method != "tree-test":
        raise ValidationError(f"{key!r} is not a tree test", field="study")
    step = running_task(study, participant, step_number)
    if seen != len(participant.trail or []):
        raise StepConflict("this click was already recorded (or came from an older page); continue from where "
                           "you are", field="step")
    return row, study, participant, step, study.tree_of(step.design)


def open_node(engine: sa.Engine, key: str, pid: str, step_number: int, seen: int, node: int,
              now: datetime | None = None) -> int:
    """The participant opens ``node`` (a child of where they are, or its parent: "back"); returns
    the new trail length. ``seen`` is the trail length the page was drawn with."""
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        _row, _study, participant, _step, tree = _tree_step(session, key, pid, step_number, seen)
        here = current_node(participant)
        if len(participant.trail or []) >= MAX_MOVES:
            raise ValidationError(f"after {MAX_MOVES} moves, choose where you are or skip the task", field="node")
        back = here > 0 and node == tree.parents[here]
        if not back and not (0 < node < len(tree.labels) and tree.parents[node] == here):
            raise ValidationError("that is not a node you can open from here", field="node")
        assert participant.task_started_at is not None
        at = max(0.0, (now - participant.task_started_at).total_seconds() * 1000)
        trail = [*(participant.trail or []), [node, round(at, 1)]]
        advance(session.connection(), participant, step_number, "running", expect_updated=participant.updated_at,
                 trail=trail)
        return len(trail)


def choose_node(engine: sa.Engine, key: str, pid: str, step_number: int, seen: int, skip: bool,
                now: datetime | None = None) -> tuple[bool, float]:
    """"I'd find it here" on the node the participant is at (or skip the task): ends the task.
    Success is a correct node of the task for this design; returns (success, duration in ms)."""
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        row, study, participant, step, _tree = _tree_step(session, key, pid, step_number, seen)
        here = current_node(participant)
        if not skip and here == 0:
            raise ValidationError("open a node before choosing it, or skip the task", field="node")
        chosen = None if skip else here
        visits = [(int(n), float(t)) for n, t in participant.trail or []]

        def judge(task: Any, duration: float) -> tuple[bool, dict[str, Any]]:
            success = chosen is not None and chosen in task.correct_for(step.design)
            return success, {"answers": tree_answers(visits, chosen, duration)}

        return record_task(session, row, study, participant, step, now, judge, expect_updated=participant.updated_at)


def first_click(engine: sa.Engine, key: str, pid: str, step_number: int, x: float, y: float,
                now: datetime | None = None) -> tuple[bool, float]:
    """The participant's first click on the task's image, at (``x``, ``y``) image pixels: ends the
    task, a success when it lands on a target. Returns (success, time to the click in ms)."""
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        row, study, participant = load_participant(session, key, pid)
        if study.method != "first-click":
            raise ValidationError(f"{key!r} is not a first-click test", field="study")
        step = running_task(study, participant, step_number)
        screen = study.task(step.item).screen_for(step.design)
        assert screen is not None
        if not (0 <= x <= screen.width and 0 <= y <= screen.height):
            raise ValidationError(f"the click ({x:g}, {y:g}) lies outside the {screen.width} × {screen.height} image",
                                  field="click")
        x, y = round(x, 1), round(y, 1)  # judged on the point stored, so the click map agrees
        return record_task(session, row, study, participant, step, now,
                           lambda task, duration: (screen.on_target(x, y), {"answers": [x, y]}))
