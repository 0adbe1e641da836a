"""Shared helpers of the usability-study tests: a small study stored in the registry."""

from __future__ import annotations

import re
from typing import Any

STUDY = {
    "kind": "study", "key": "checkout-study", "name": "Checkout study", "status": "running",
    "within_subjects": False, "questionnaires": ["SUS"], "comment": True, "completion_code": "CODE-42",
    "consent": "We record task times and answers.",
    "designs": [{"key": "current", "url": "https://example.com/a", "weight": 0.5},
                {"key": "new", "url": "https://example.com/b", "weight": 0.5}],
    "tasks": [{"key": "buy", "prompt": "Buy the shoes", "time_limit": 300},
              {"key": "address", "prompt": "Change the address"}],
}


def study_raw(**changes: Any) -> dict[str, Any]:
    raw = {**STUDY, **changes}
    return raw


def store_study(session, **changes: Any):  # type: ignore[no-untyped-def]
    from abtest import pipeline
    from abtest.studies.definition import parse_study

    definition = parse_study(study_raw(**changes))
    pipeline.create(session, definition)
    session.commit()
    return definition


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def step_number(html: str) -> str:
    match = re.search(r'name="step" value="(\d+)"', html)
    assert match, "no step in the page"
    return match.group(1)
