"""The demo usability study (``abtest serve --demo``): simulated participants with a known
difference between the two checkout designs, so the study results page has something true to show."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from abtest import pipeline
from abtest.models import StudyParticipant, utcnow
from abtest.store.events import exposure_id, write_events
from abtest.studies.definition import parse_study
from abtest.studies.runner import design_order, step_event_id, steps, study_event

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
        row = pipeline.create(session, study, "demo")
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
            device = {"device": "mobile" if number % 3 == 0 else "desktop"}
            events += [study_event(row.id, exposure_id(study.key, d, pid, False), "exposure", d, pid, clock,
                                   attributes=device) for d in designs]
            done = 0
            for step in path[:quits_at]:
                quality = 0.8 if step.design == "one-page" else 0.0
                if step.kind == "task":
                    rate, seconds = _DEMO_TRUTH[step.design][step.item]
                    took = math.exp(rng.gauss(math.log(seconds), 0.45))
                    clock += timedelta(seconds=took + 5)
                    success = rng.random() < rate and took <= study.task(step.item).time_limit  # type: ignore[operator]
                    events.append(study_event(row.id, step_event_id(study.key, pid, step, "task"), "task", step.design, pid,
                                             clock, task=step.item, success=success, duration_ms=round(took * 1000)))
                    seq = max(1, min(7, round(rng.gauss(5.6 if success else 3.2, 1.0) + quality * 0.5)))
                    events.append(study_event(row.id, step_event_id(study.key, pid, step, "SEQ"), "response", step.design,
                                             pid, clock, questionnaire="SEQ", task=step.item, answers=[seq]))
                elif step.item == "SUS":
                    lean = rng.gauss(0.7 + quality, 0.6)
                    answers = [max(1, min(5, round(3 + (lean if i % 2 == 0 else -lean) + rng.gauss(0, 0.7))))
                               for i in range(10)]
                    events.append(study_event(row.id, step_event_id(study.key, pid, step, "SUS"), "response", step.design,
                                             pid, clock, questionnaire="SUS", answers=answers))
                elif step.item == "UMUX-Lite":
                    answers = [max(1, min(7, round(rng.gauss(5 + quality, 1.1)))) for _ in range(2)]
                    events.append(study_event(row.id, step_event_id(study.key, pid, step, "UMUX-Lite"), "response",
                                             step.design, pid, clock, questionnaire="UMUX-Lite", answers=answers))
                elif step.item == "NPS":
                    events.append(study_event(row.id, step_event_id(study.key, pid, step, "NPS"), "response", step.design,
                                             pid, clock, questionnaire="NPS",
                                             answers=[max(0, min(10, round(rng.gauss(6.5 + 2 * quality, 2))))]))
                elif rng.random() < 0.5:
                    events.append(study_event(row.id, step_event_id(study.key, pid, step, "comment"), "response",
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
        write_events(session.connection(), events)
        session.commit()
    return f"demo: {study.key} (usability study) with {participants} simulated participants: /s/{study.key}"
