"""Survey definitions: one to three questions, the pages they show on, when, and to whom.

A survey composes the shared :class:`~abtest.definitions.Core` (key, name, lifecycle) with what
only surveys have. Its core has one variant, ``all``: a survey splits nobody; the share of
visitors asked is :attr:`SurveyDef.share`, drawn with the experiments' hash so the snippet and
the server agree on who is in the sample. Linked to an A/B experiment (``experiment = "key"``),
it is shown only to that experiment's assigned visitors and each answer carries their variant,
so the experiment's results can compare the answers per variant.

The questions are the declared questionnaires (:mod:`abtest.questionnaires`: CSAT 1–5, NPS 0–10,
CES 1–7), a single choice (2–10 options) or a free text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from abtest.checks import KEY_PATTERN, KEY_WORDS, NAME_PATTERN, NAME_WORDS, Checker, root_table
from abtest.definitions import Core, HasCore, VariantDef, parse_identity
from abtest.errors import Conflict
from abtest.questionnaires import QUESTIONNAIRES

SCALED = ("CSAT", "NPS", "CES")
QUESTION_TYPES = (*SCALED, "choice", "text")
SHOW = ("delay", "exit-intent", "event")
ALL = "all"  # the one variant of an unlinked survey (and what its answers carry)
MAX_QUESTIONS = 3
MAX_CHOICES = 10
MAX_PAGES = 20
# Each * is a loop the browser's regular-expression engine may backtrack through on every page
# view of every visitor; a few are all a page pattern needs.
MAX_STARS = 3
MAX_DELAY = 600  # seconds: a prompt later than ten minutes is shown to nobody who is still there
DEFAULT_TITLE = "Quick question"

TOP_FIELDS = {"key", "name", "kind", "status", "hypothesis", "experiment", "pages", "show", "delay", "event",
              "share", "title", "questions"}
_QUESTION_FIELDS = {"key", "type", "text", "choices"}


@dataclass(frozen=True, slots=True)
class QuestionDef:
    key: str
    type: str  # CSAT | NPS | CES | choice | text
    text: str
    choices: tuple[str, ...] = ()

    @property
    def scale(self) -> tuple[int, int] | None:
        """(low, high) of the answers a question takes as numbers (a choice: its option indices)."""
        if self.type in SCALED:
            s = QUESTIONNAIRES[self.type].scale
            return s.low, s.high
        if self.type == "choice":
            return 0, len(self.choices) - 1
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "type": self.type, "text": self.text}
        if self.choices:
            out["choices"] = list(self.choices)
        return out


@dataclass(frozen=True, slots=True)
class SurveyDef(HasCore):
    kind: ClassVar[str] = "survey"

    core: Core  # one variant, "all"; the seed is the key
    questions: tuple[QuestionDef, ...] = ()
    pages: tuple[str, ...] = ("*",)
    show: str = "delay"
    delay: int = 5
    event: str | None = None
    share: float = 1.0
    title: str = DEFAULT_TITLE
    experiment: str | None = None  # the linked A/B experiment's key
    # The linked experiment's variants, read from the registry when the survey is loaded: what
    # its answers are grouped by. Not part of the definition (a file does not repeat them).
    linked_variants: tuple[str, ...] = field(default=(), compare=False)

    analysis: ClassVar[str] = "fixed"
    alpha: ClassVar[float] = 0.05

    @property
    def groups(self) -> tuple[str, ...]:
        """What the answers are counted by: the linked experiment's variants, or ``all``."""
        return self.linked_variants if self.experiment else (ALL,)

    @property
    def match(self) -> str:
        """One regular expression (JavaScript and Python read it alike) for the page globs."""
        return pages_regex(self.pages)

    def question(self, key: str) -> QuestionDef:
        return next(q for q in self.questions if q.key == key)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "key": self.key, "name": self.name, "hypothesis": self.hypothesis,
                               "status": self.status}
        if self.experiment:
            out["experiment"] = self.experiment
        out |= {"pages": list(self.pages), "show": self.show, "delay": self.delay}
        if self.event:
            out["event"] = self.event
        out |= {"share": self.share, "title": self.title, "questions": [q.to_dict() for q in self.questions]}
        return out


# ---- page globs -----------------------------------------------------------------------------------

_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}/]")


def _glob(pattern: str) -> str:
    """``*`` is any run of characters short of a query string or fragment; everything else stands
    for itself."""
    return "[^?#]*".join(_SPECIAL.sub(lambda m: "\\" + m.group(0), part) for part in pattern.split("*"))


def pages_regex(pages: tuple[str, ...]) -> str:
    """A glob starting with ``/`` is a path on any host; ``http(s)://…`` a whole address; ``*``
    every page. The query string and the fragment are never part of the match."""
    alternatives = []
    for page in pages:
        if page == "*":
            return "^[^?#]*(?:[?#].*)?$"
        prefix = "https?:\\/\\/[^\\/?#]+" if page.startswith("/") else ""
        alternatives.append(prefix + _glob(page))
    return "^(?:" + "|".join(alternatives) + ")(?:[?#].*)?$"


def page_matches(survey: SurveyDef, url: str) -> bool:
    """Whether the snippet would show ``survey`` on ``url`` (the same regular expression)."""
    return re.match(survey.match, url) is not None


# ---- parsing ------------------------------------------------------------------------------------------


def parse_survey(raw: Any, source: str | None = None) -> SurveyDef:
    """Validate a ``kind = "survey"`` table; raise InvalidDefinition listing every problem."""
    raw = root_table(raw, source)
    c = Checker()
    c.unknown(raw, TOP_FIELDS, "")
    key, name, hypothesis, status = parse_identity(c, raw)
    experiment = c.text(raw, "experiment", "experiment")
    c.pattern(experiment, "experiment", KEY_PATTERN, KEY_WORDS)
    pages = _parse_pages(c, raw.get("pages", ["*"]))
    show = c.text(raw, "show", "show", default="delay")
    c.choice(show, SHOW, "show")
    delay = c.whole(raw, "delay", "delay", 0, MAX_DELAY, "whole seconds")
    event = c.text(raw, "event", "event")
    c.pattern(event, "event", NAME_PATTERN, NAME_WORDS)
    if show == "event" and event is None:
        c.fail("event", "is required when show = \"event\": the abtest.track() event after which to ask, "
                        "e.g. purchase")
    if show != "event" and event is not None:
        c.fail("event", f"only a survey with show = \"event\" waits for an event (this one has show = {show!r})")
    share = c.number(raw, "share", "share", default=1.0)
    if share is not None and not 0 < share <= 1:
        c.fail("share", f"{share} must be above 0 and at most 1 (the share of visitors asked)")
    title = c.text(raw, "title", "title", default=DEFAULT_TITLE)
    c.length(title, "title", 100)
    if title is not None and not title.strip():
        c.fail("title", "must not be empty: it heads the prompt")
    questions = _parse_questions(c, raw.get("questions"))
    c.raise_if_failed(source)
    return SurveyDef(
        core=Core(key, name, (VariantDef(ALL, 1.0),), hypothesis, status, seed=key), questions=questions,
        pages=pages, show=show or "delay", delay=delay if delay is not None else (0 if show == "event" else 5),
        event=event, share=share or 1.0, title=(title or DEFAULT_TITLE).strip(), experiment=experiment,
    )


def _parse_pages(c: Checker, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) for p in raw):
        c.fail("pages", "must list at least one page: a path glob such as \"/checkout*\", a whole address "
                        "such as \"https://shop.example/thanks\", or \"*\" for every page")
        return ("*",)
    if len(raw) > MAX_PAGES:
        c.fail("pages", f"at most {MAX_PAGES} page globs, got {len(raw)}")
    for i, page in enumerate(raw):
        where = f"pages[{i}]"
        if page != "*" and not re.fullmatch(r"(/|https?://[^/\s]+)\S*", page):
            c.fail(where, f"{page!r} must be a path starting with / (any host), an http(s):// address, or *")
        c.length(page, where, 2000)
        if page.count("*") > MAX_STARS:
            c.fail(where, f"at most {MAX_STARS} * per page glob (each one costs every page view time), "
                          f"got {page.count('*')}")
    return tuple(raw)


def _parse_questions(c: Checker, given: Any) -> tuple[QuestionDef, ...]:
    raw = c.tables(given, "questions", "key and type", required="one to three [[questions]] with key and type")
    if raw is None:
        return ()
    if not 1 <= len(raw) <= MAX_QUESTIONS:
        c.fail("questions", f"a survey asks 1 to {MAX_QUESTIONS} questions (short prompts get answered), "
                            f"got {len(raw)}")
        return ()
    out = []
    for where, item, qkey in c.keyed(raw, "questions", _QUESTION_FIELDS, "key", NAME_PATTERN, NAME_WORDS,
                                     "question"):
        qtype = c.text(item, "type", f"{where}.type", required=True)
        c.choice(qtype, QUESTION_TYPES, f"{where}.type")
        default = QUESTIONNAIRES[qtype].items[0] if qtype in SCALED else None
        text = c.text(item, "text", f"{where}.text", default=default, required=default is None)
        if text is not None and not text.strip():
            c.fail(f"{where}.text", "must not be empty: it is the question the visitor reads")
        c.length(text, f"{where}.text", 300)
        choices: tuple[str, ...] = ()
        if qtype == "choice":
            choices = _parse_choices(c, item.get("choices"), f"{where}.choices")
        elif "choices" in item:
            c.fail(f"{where}.choices", f"only choice questions have choices (this one is {qtype})")
        out.append(QuestionDef(qkey or "", qtype or "", (text or "").strip(), choices))
    return tuple(out)


def _parse_choices(c: Checker, raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        c.fail(where, f"a choice question lists 2 to {MAX_CHOICES} options as strings")
        return ()
    if not 2 <= len(raw) <= MAX_CHOICES:
        c.fail(where, f"a choice question lists 2 to {MAX_CHOICES} options, got {len(raw)}")
    cleaned = tuple(x.strip() for x in raw)
    for i, text in enumerate(cleaned):
        if not text:
            c.fail(f"{where}[{i}]", "must not be empty")
        elif len(text) > 100:
            c.fail(f"{where}[{i}]", f"at most 100 characters, got {len(text)}")
        elif text in cleaned[:i]:
            c.fail(f"{where}[{i}]", f"{text!r} is listed twice")
    return cleaned


def check_launched(old: SurveyDef, new: SurveyDef) -> None:
    """What a launched survey keeps, so earlier and later answers mean the same and can be pooled:
    its link (answers are grouped by that experiment's variants), and each question's key, type
    and options (stored answers are option numbers). Wording, pages, timing and share may change."""
    if old.experiment != new.experiment:
        raise Conflict("the experiment a launched survey is linked to cannot change (its answers are grouped by "
                       "that experiment's variants); create a new survey instead", field="experiment")
    if [(q.key, q.type) for q in old.questions] != [(q.key, q.type) for q in new.questions]:
        raise Conflict("the questions of a launched survey cannot be added, removed, reordered or change type",
                       field="questions")
    for i, (before, after) in enumerate(zip(old.questions, new.questions, strict=True)):
        if before.choices != after.choices:
            raise Conflict("the options of a launched choice question cannot change (answers are stored as option "
                           "numbers)", field=f"questions[{i}].choices")


# ---- what the snippet may send ---------------------------------------------------------------------

EVENT_TYPES = ("survey", "response")  # shown or dismissed; one answer to one question
SURVEY_EVENTS = ("shown", "dismissed")


def questions_of(stored: list[dict[str, Any]]) -> dict[str, QuestionDef]:
    """The stored questions (the ``surveys.questions`` JSON) by key."""
    return {q["key"]: QuestionDef(q["key"], q["type"], q["text"], tuple(q.get("choices", ()))) for q in stored}


def event_problem(questions: Mapping[str, QuestionDef], type_: str, task: str | None, questionnaire: str | None,
                  answers: list[Any] | None) -> tuple[str, str] | None:
    """(field, message) when an event does not fit the survey it names, else None: only survey and
    response events, each response one answer to one of its questions, on that question's scale."""
    if type_ not in EVENT_TYPES:
        return "type", f"a survey takes only survey and response events, not {type_}"
    if type_ == "survey":
        return None
    if task is None or task not in questions:
        return "task", f"names the question answered: one of {', '.join(questions)}"
    question = questions[task]
    if questionnaire != question.type:
        return "questionnaire", f"question {task!r} is a {question.type} question, not {questionnaire}"
    if answers is None or len(answers) != 1:
        return "answers", "a survey answer is one value"
    value = answers[0]
    if question.type == "text":
        if not isinstance(value, str) or not value.strip():
            return "answers[0]", "a text answer is a non-empty string"
        return None
    low, high = question.scale or (0, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or not low <= value <= high:
        words = "an option number" if question.type == "choice" else "a whole number"
        return "answers[0]", f"must be {words} from {low} to {high}, got {value!r}"
    return None
