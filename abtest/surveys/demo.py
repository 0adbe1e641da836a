"""The demo's survey: a CSAT prompt on the demo shop's checkout experiment, with simulated
answers (the green button's visitors a little more satisfied), so its pages are not empty."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import sqlalchemy as sa

from abtest import pipeline
from abtest.assignment import assign, bucket
from abtest.db import session_scope
from abtest.definitions import ExperimentDef
from abtest.models import utcnow
from abtest.store.events import event_row, write_events
from abtest.surveys.definition import parse_survey

SURVEY = {
    "kind": "survey", "key": "checkout-csat", "name": "Checkout satisfaction", "status": "running",
    "hypothesis": "The green button does not make checkout feel worse", "experiment": "checkout-button",
    "pages": ["/checkout*"], "show": "delay", "delay": 5, "share": 0.3, "title": "Quick question",
    "questions": [{"key": "csat", "type": "CSAT", "text": "How satisfied are you with checking out today?"},
                  {"key": "better", "type": "text", "text": "What could we do better?"}],
}
# Share of each CSAT answer 1..5 per variant; the share answering and writing a comment.
_CSAT = {"control": (0.06, 0.09, 0.22, 0.38, 0.25), "green": (0.04, 0.07, 0.19, 0.40, 0.30)}
_ANSWER, _DISMISS, _COMMENT = 0.42, 0.33, 0.15
# The true response rates are equal; a seed whose sample says so too (one in twenty would sound the
# response-rate check by chance, which is no way to meet a demo).
SEED = "checkout-csat-2"
_COMMENTS = ("Shipping costs came too late.", "Fine, quick.", "The coupon field was hard to find.",
             "Please remember my address.", "Great!", "Too many steps.")


def seed_demo_survey(engine: sa.Engine, experiment: ExperimentDef, visitors: int, days: int) -> str:
    """Create the survey and its answers from the experiment's demo visitors (the same ids)."""
    rng = random.Random(SEED)  # its own stream: the experiment's numbers stay as they were
    survey = parse_survey(SURVEY)
    start = utcnow() - timedelta(days=days)
    rows = []
    with session_scope(engine) as session:
        row = pipeline.create(session, survey, "demo")
        assert row.id is not None

        def event(unit: str, variant: str, ts: object, type_: str, **fields: object) -> dict[str, object]:
            return event_row(row.id, str(uuid.UUID(int=rng.getrandbits(128))), type_, unit, ts, variant=variant,
                             **fields)

        for i in range(visitors):
            unit = f"visitor-{experiment.key}-{i:05d}"
            variant = assign(experiment, unit).variant
            if variant is None or bucket(survey.seed, unit) >= survey.share:
                continue
            ts = start + timedelta(seconds=rng.uniform(0, days * 86400 - 3600))
            rows.append(event(unit, variant, ts, "survey", event="shown"))
            draw = rng.random()
            if draw < _ANSWER:
                answer = rng.choices(range(1, 6), weights=_CSAT[variant])[0]
                rows.append(event(unit, variant, ts + timedelta(seconds=9), "response", questionnaire="CSAT",
                                  task="csat", answers=[answer]))
                if rng.random() < _COMMENT:
                    rows.append(event(unit, variant, ts + timedelta(seconds=20), "response", questionnaire="text",
                                      task="better", answers=[rng.choice(_COMMENTS)]))
            elif draw < _ANSWER + _DISMISS:
                rows.append(event(unit, variant, ts + timedelta(seconds=4), "survey", event="dismissed"))
        write_events(session.connection(), rows)
    return f"demo: {survey.key} (CSAT survey on {experiment.key}) with {sum(r['type'] == 'survey' and r['event'] == 'shown' for r in rows)} visitors asked"
