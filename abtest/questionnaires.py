"""Standard questionnaires, each declared once: items, answer scale and scoring.

One declaration feeds every place a questionnaire appears: the participant runner shows its
items on its scale and validates the answers (:meth:`Questionnaire.validate`); the aggregate
source scores the stored answers in SQL from the same numbers (:attr:`Questionnaire.scoring`);
the statistics read the score's range and meaning. Scores are either *linear* in the answers
(SUS, UMUX-Lite, SEQ, CES: ``(Σ wᵢ·aᵢ + offset) × factor``) or *banded* (NPS: promoter, passive,
detractor; CSAT: satisfied or not), so SQL and Python compute them the same way.

Wordings and scoring: SEQ, Sauro & Dumas (2009); SUS, Brooke (1996); UMUX-Lite, Lewis, Utesch &
Maher (2013); NPS, Reichheld (2003); CSAT top-2-box and CES (7-point "easy to" wording, Gartner
CES 2.0), as Sauro & Lewis, *Quantifying the User Experience* (2nd ed.), ch. 8 describe them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from abtest.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Scale:
    low: int
    high: int
    low_label: str
    high_label: str


@dataclass(frozen=True, slots=True)
class Linear:
    """score = (Σ weights[i]·answers[i] + offset) × factor."""

    weights: tuple[float, ...]
    offset: float
    factor: float
    low: float  # the score's range, for intervals and axes
    high: float

    def score(self, answers: Sequence[int]) -> float:
        return (math.fsum(w * a for w, a in zip(self.weights, answers, strict=True)) + self.offset) * self.factor


@dataclass(frozen=True, slots=True)
class Band:
    name: str
    low: int
    high: int
    code: int  # NPS: +1 promoter, 0 passive, −1 detractor; CSAT: 1 satisfied, 0 not


@dataclass(frozen=True, slots=True)
class Banded:
    """The answer to a one-item questionnaire falls in one of these bands (highest first)."""

    bands: tuple[Band, ...]

    def band(self, answer: int) -> Band:
        return next(b for b in self.bands if b.low <= answer <= b.high)


@dataclass(frozen=True, slots=True)
class Questionnaire:
    name: str
    items: tuple[str, ...]
    scale: Scale
    scoring: Linear | Banded
    unit: str  # how a score reads on a results page

    def validate(self, answers: Sequence[object]) -> list[int]:
        """Whole answers on the scale, one per item; else ValidationError naming the item (1-based)."""
        if isinstance(answers, (str, bytes)) or len(answers) != len(self.items):
            raise ValidationError(f"{self.name} needs exactly {len(self.items)} answers, got {len(answers)}",
                                  field="answers")
        out = []
        for i, value in enumerate(answers, start=1):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
                raise ValidationError(f"must be a whole number {self.scale.low}–{self.scale.high}, got {value!r}",
                                      field=f"answers[{i}]")
            if not self.scale.low <= value <= self.scale.high:
                raise ValidationError(f"must be between {self.scale.low} and {self.scale.high}, got {value}",
                                      field=f"answers[{i}]")
            out.append(int(value))
        return out

    def score(self, answers: Sequence[object]) -> float:
        """The score of one set of answers (a banded questionnaire: its band's code)."""
        valid = self.validate(answers)
        if isinstance(self.scoring, Linear):
            return self.scoring.score(valid)
        return float(self.scoring.band(valid[0]).code)

    def band(self, answer: object) -> Band:
        """The band of a one-item banded questionnaire's answer (NPS: promoter, passive, detractor)."""
        if not isinstance(self.scoring, Banded):
            raise TypeError(f"{self.name} is scored linearly, not in bands")
        return self.scoring.band(self.validate([answer])[0])


AGREE = ("Strongly disagree", "Strongly agree")

SEQ = Questionnaire(
    "SEQ", ("Overall, how difficult or easy was the task to complete?",),
    Scale(1, 7, "Very difficult", "Very easy"), Linear((1.0,), 0.0, 1.0, 1.0, 7.0), "SEQ (1–7)")

# Odd items score a − 1, even items 5 − a, summed and × 2.5: (Σ odd − Σ even + 20) × 2.5.
SUS = Questionnaire(
    "SUS", (
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
    ),
    Scale(1, 5, *AGREE), Linear((1.0, -1.0) * 5, 20.0, 2.5, 0.0, 100.0), "SUS score (0–100)")

# raw = (a₁ + a₂ − 2) / 12 × 100; the SUS-comparable reading 0.65 × raw + 22.9 is in abtest.stats.
UMUX_LITE = Questionnaire(
    "UMUX-Lite", ("This system's capabilities meet my requirements.", "This system is easy to use."),
    Scale(1, 7, *AGREE), Linear((1.0, 1.0), -2.0, 100.0 / 12.0, 0.0, 100.0), "UMUX-Lite raw score (0–100)")

NPS = Questionnaire(
    "NPS", ("How likely is it that you would recommend this website to a friend or colleague?",),
    Scale(0, 10, "Not at all likely", "Extremely likely"),
    Banded((Band("promoter", 9, 10, 1), Band("passive", 7, 8, 0), Band("detractor", 0, 6, -1))), "NPS points")

CSAT = Questionnaire(
    "CSAT", ("Overall, how satisfied are you with your experience?",),
    Scale(1, 5, "Very dissatisfied", "Very satisfied"),
    Banded((Band("satisfied", 4, 5, 1), Band("not satisfied", 1, 3, 0))), "share satisfied (top-2-box)")

CES = Questionnaire(
    "CES", ("The website made it easy for me to do what I wanted.",),
    Scale(1, 7, *AGREE), Linear((1.0,), 0.0, 1.0, 1.0, 7.0), "CES (1–7)")

QUESTIONNAIRES: dict[str, Questionnaire] = {q.name: q for q in (SEQ, SUS, UMUX_LITE, NPS, CSAT, CES)}
