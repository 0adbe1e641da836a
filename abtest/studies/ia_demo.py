"""The demo tree test and first-click test (``abtest serve --demo``): simulated participants who
find their way better in the proposed menu and click the right place more often on the redesigned
home page, so both results pages have something true to show.

The tree walk is a simple model of a person looking for something: at each level they open the
child on the way to a right answer with a probability that depends on how clear the labels are,
otherwise a plausible wrong one; at a wrong leaf they go back or settle for it.
"""

from __future__ import annotations

import io
import math
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from abtest import pipeline
from abtest.models import StudyParticipant, utcnow
from abtest.store.events import exposure_id, write_events
from abtest.studies.definition import StudyDef, parse_study
from abtest.studies.ia import Screen, Tree, tree_answers
from abtest.studies.runner import design_order, step_event_id, steps, study_event

CURRENT_MENU = """
Shop
  Laptops
  Phones
  Accessories
    Chargers
    Cases
Deals
Help
  Orders
    Track an order
    Cancel an order
  Returns
  Warranty
Company
  About us
  Careers
  Contact
"""
PROPOSED_MENU = """
Products
  Laptops
  Phones
  Chargers and cases
Deals
My orders
  Track an order
  Cancel an order
  Return or exchange
Support
  Warranty and repairs
  Contact us
About us
  Careers
"""
DEMO_TREE = {
    "kind": "study", "key": "menu-tree-test", "name": "Main menu: tree test", "status": "running",
    "method": "tree-test", "hypothesis": "Grouping everything about an order under \"My orders\" helps people "
                                         "find returns and tracking.",
    "designs": [{"key": "current", "name": "Current menu", "tree": CURRENT_MENU},
                {"key": "proposed", "name": "Proposed menu", "tree": PROPOSED_MENU}],
    "tasks": [
        {"key": "return-laptop", "prompt": "Your new laptop is faulty. Where would you go to send it back?",
         "correct": {"current": ["Help > Returns"], "proposed": ["My orders > Return or exchange"]}},
        {"key": "track-order", "prompt": "You ordered a phone yesterday. Where would you check when it arrives?",
         "correct": {"current": ["Help > Orders > Track an order"], "proposed": ["My orders > Track an order"]}},
        {"key": "buy-charger", "prompt": "You lost your laptop charger. Where would you buy a new one?",
         "correct": {"current": ["Shop > Accessories > Chargers"], "proposed": ["Products > Chargers and cases"]}},
    ],
    "seq": True,
}
# How likely a participant opens the right child at each level, per design and task.
_CLARITY = {"current": {"return-laptop": 0.55, "track-order": 0.5, "buy-charger": 0.75},
            "proposed": {"return-laptop": 0.85, "track-order": 0.85, "buy-charger": 0.72}}

DEMO_CLICK_KEY = "home-first-click"
_PRICING_TASK = "find-pricing"
_SIGNUP_TASK = "start-trial"


def _walk(rng: random.Random, tree: Tree, correct: frozenset[int], clarity: float
          ) -> tuple[list[tuple[int, float]], int | None, float]:
    """One simulated attempt: (nodes opened with ms, node chosen or None, total ms)."""
    on_way = {a for n in correct for a in tree.ancestors(n)}
    here, clock, visits = 0, 0.0, []
    for _ in range(14):
        clock += math.exp(rng.gauss(math.log(2600), 0.45))
        if here in correct and rng.random() < 0.93:
            return visits, here, clock
        kids = tree.children[here]
        if not kids or (here not in on_way and rng.random() < 0.35):
            if here != 0 and rng.random() < (0.3 if kids else 0.6):
                return visits, here, clock  # settles for a wrong answer
            here = tree.parents[here] if here > 0 else 0  # goes back
            visits.append((here, clock))
            continue
        right = [k for k in kids if k in on_way]
        child = rng.choice(right) if right and rng.random() < clarity else rng.choice(kids)
        here = child
        visits.append((here, clock))
    return visits, None, clock + 4000  # gives up: skip


def _participants(session: Session, row_id: int, study: StudyDef, count: int, rng: random.Random,
                  attempt: Any) -> list[dict[str, Any]]:
    """Simulated participants who all finish; ``attempt(step, clock)`` gives (event fields, seconds)."""
    start = utcnow() - timedelta(days=2)
    events: list[dict[str, Any]] = []
    for number in range(1, count + 1):
        pid = f"demo-{study.key}-{number:02d}"
        designs = design_order(study, pid, number - 1)
        clock = start + timedelta(minutes=rng.uniform(0, 2 * 24 * 60 - 60))
        joined = clock
        device = {"device": "mobile" if number % 3 == 0 else "desktop"}
        events += [study_event(row_id, exposure_id(study.key, d, pid, False), "exposure", d, pid, clock,
                               attributes=device) for d in designs]
        path = steps(study, designs)
        for step in path:
            fields, seconds = attempt(step)
            clock += timedelta(seconds=seconds + rng.uniform(3, 9))
            events.append(study_event(row_id, step_event_id(study.key, pid, step, "task"), "task", step.design, pid,
                                      clock, task=step.item, **fields))
            if study.seq:
                seq = max(1, min(7, round(rng.gauss(5.8 if fields["success"] else 3.4, 0.9))))
                events.append(study_event(row_id, step_event_id(study.key, pid, step, "SEQ"), "response",
                                          step.design, pid, clock, questionnaire="SEQ", task=step.item, answers=[seq]))
        session.add(StudyParticipant(experiment_id=row_id, pid=pid, number=number, designs=designs, step=len(path),
                                     phase="ready", started_at=joined, updated_at=clock, finished_at=clock))
    return events


def _store(engine: sa.Engine, study: StudyDef, participants: int, rng: random.Random, attempt: Any) -> None:
    """Store ``study`` with its simulated participants and their events, in one transaction."""
    with Session(engine, expire_on_commit=False) as session:
        row = pipeline.create(session, study, "demo")
        assert row.id is not None
        events = _participants(session, row.id, study, participants, rng, attempt)
        session.flush()
        write_events(session.connection(), events)
        session.commit()


def seed_demo_tree_test(engine: sa.Engine, rng: random.Random, participants: int = 40) -> str:
    study = parse_study(DEMO_TREE)

    def attempt(step: Any) -> tuple[dict[str, Any], float]:
        tree, correct = study.tree_of(step.design), study.task(step.item).correct_for(step.design)
        visits, chosen, total = _walk(rng, tree, correct, _CLARITY[step.design][step.item])
        return {"success": chosen in correct, "duration_ms": round(total, 1),
                "answers": tree_answers(visits, chosen, total)}, total / 1000

    _store(engine, study, participants, rng, attempt)
    return f"demo: {study.key} (tree test) with {participants} simulated participants: /s/{study.key}"


# ---- first click ------------------------------------------------------------------------------------------------


def _home_page(proposed: bool) -> tuple[bytes, dict[str, tuple[int, int, int, int]]]:
    """A plain drawing of a software company's home page (1200 × 800), and where its parts are."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 1200, 800
    image = Image.new("RGB", (width, height), "#f7f7f9")
    draw = ImageDraw.Draw(image)

    def font(size: int) -> Any:
        try:
            return ImageFont.load_default(size=size)
        except TypeError:  # Pillow without FreeType sizes
            return ImageFont.load_default()

    boxes: dict[str, tuple[int, int, int, int]] = {}
    draw.rectangle((0, 0, width, 90), fill="#1f2a44")
    draw.text((40, 28), "Cloudnote", fill="white", font=font(34))
    nav = ["Product", "Solutions", "Customers", "Pricing", "Blog"] if not proposed else \
        ["Product", "Pricing", "Customers", "Blog"]
    x = 430 if not proposed else 470
    for item in nav:
        w = int(draw.textlength(item, font=font(22))) + 28
        draw.text((x + 14, 32), item, fill="#dfe6f5", font=font(22))
        boxes[item] = (x, 18, w, 54)
        x += w + 8
    draw.rounded_rectangle((1040, 22, 1170, 68), radius=8, outline="#dfe6f5", width=2)
    draw.text((1062, 32), "Sign in", fill="white", font=font(22))
    boxes["Sign in"] = (1040, 22, 130, 46)
    draw.text((80, 190), "Notes your whole team" if not proposed else "Team notes that", fill="#1f2a44", font=font(58))
    draw.text((80, 262), "can actually find." if not proposed else "find themselves.", fill="#1f2a44", font=font(58))
    draw.text((80, 360), "Search, share and organise everything your team writes.", fill="#4a5468", font=font(26))
    if proposed:
        draw.rounded_rectangle((80, 440, 420, 510), radius=10, fill="#2f6fed")
        draw.text((112, 458), "Start free trial", fill="white", font=font(28))
        boxes["Start free trial"] = (80, 440, 340, 70)
        draw.rounded_rectangle((450, 440, 790, 510), radius=10, outline="#2f6fed", width=3)
        draw.text((482, 458), "See plans & prices", fill="#2f6fed", font=font(28))
        boxes["See plans & prices"] = (450, 440, 340, 70)
    else:
        draw.rounded_rectangle((80, 440, 340, 500), radius=10, fill="#8a93a8")
        draw.text((108, 455), "Learn more", fill="white", font=font(26))
        boxes["Learn more"] = (80, 440, 260, 60)
        draw.text((80, 530), "Try it free for 30 days", fill="#2f6fed", font=font(22))
        boxes["Try it free"] = (80, 526, 250, 34)
    draw.rectangle((820, 170, 1140, 620), fill="#e3e8f3")
    for i in range(7):
        draw.rectangle((850, 200 + i * 56, 1110 - (i % 3) * 50, 224 + i * 56), fill="#c7d0e2")
    draw.rectangle((0, 700, width, height), fill="#eceef3")
    draw.text((80, 735), "Features  ·  Security  ·  Pricing  ·  Careers", fill="#6b7386", font=font(20))
    boxes["footer"] = (80, 730, 540, 36)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue(), boxes


def _near(rng: random.Random, box: tuple[int, int, int, int]) -> tuple[float, float]:
    x, y, w, h = box
    return (min(1199.0, max(0.0, rng.gauss(x + w / 2, w / 5))), min(799.0, max(0.0, rng.gauss(y + h / 2, h / 4))))


def seed_demo_first_click(engine: sa.Engine, rng: random.Random, instance_path: Path, participants: int = 36) -> str:
    """The first-click demo; its two screens are drawn here and stored in the instance's image store."""
    from abtest.studies.images import store_for

    store = store_for(instance_path)
    shots: dict[str, tuple[Any, dict[str, tuple[int, int, int, int]]]] = {}
    for design, proposed in (("current", False), ("redesign", True)):
        content, boxes = _home_page(proposed)
        shots[design] = (store.save(content), boxes)

    def screen(design: str, targets: list[str]) -> dict[str, Any]:
        stored, boxes = shots[design]
        return {"image": stored.name, "width": stored.width, "height": stored.height,
                "targets": [list(boxes[t]) for t in targets if t in boxes]}

    raw = {"kind": "study", "key": DEMO_CLICK_KEY, "name": "Home page: first-click test", "status": "running",
           "method": "first-click", "hypothesis": "A visible pricing button gets people to prices at the first click.",
           "designs": [{"key": "current", "name": "Current home page"},
                       {"key": "redesign", "name": "Redesigned home page"}],
           "tasks": [{"key": _PRICING_TASK, "prompt": "You want to know how much Cloudnote costs for a team of ten. "
                                                      "Where would you click first?",
                      "screens": {"current": screen("current", ["Pricing"]),
                                  "redesign": screen("redesign", ["Pricing", "See plans & prices"])}},
                     {"key": _SIGNUP_TASK, "prompt": "You want to try Cloudnote yourself. Where would you click first?",
                      "screens": {"current": screen("current", ["Try it free"]),
                                  "redesign": screen("redesign", ["Start free trial"])}}]}
    study = parse_study(raw)
    # Where people click first, per design and task: (part of the page, weight).
    habits = {("current", _PRICING_TASK): [("Pricing", 0.55), ("Product", 0.15), ("footer", 0.12), ("Learn more", 0.18)],
              ("redesign", _PRICING_TASK): [("See plans & prices", 0.55), ("Pricing", 0.3), ("Product", 0.15)],
              ("current", _SIGNUP_TASK): [("Learn more", 0.45), ("Try it free", 0.3), ("Sign in", 0.25)],
              ("redesign", _SIGNUP_TASK): [("Start free trial", 0.8), ("Sign in", 0.2)]}

    def attempt(step: Any) -> tuple[dict[str, Any], float]:
        parts, weights = zip(*habits[(step.design, step.item)], strict=True)
        part = rng.choices(parts, weights)[0]
        x, y = _near(rng, shots[step.design][1][part])
        shown: Screen = study.task(step.item).screen_for(step.design)  # type: ignore[assignment]
        seconds = math.exp(rng.gauss(math.log(4.5 if part in ("Pricing", "See plans & prices", "Start free trial")
                                              else 7.0), 0.4))
        return {"success": shown.on_target(x, y), "duration_ms": round(seconds * 1000, 1),
                "answers": [round(x, 1), round(y, 1)]}, seconds

    _store(engine, study, participants, rng, attempt)
    return f"demo: {study.key} (first-click test) with {participants} simulated participants: /s/{study.key}"
