"""Information-architecture studies' own shapes: a tree test's menu tree and a first-click test's
screens, and what one participant's attempt at a task was (issue 19).

Pure: no Flask, no database. A tree is kept as parallel tuples in preorder (node 0 is the
invisible root, whose children are the top level), so a node is a small integer that a stored
path can name, and the tree a participant saw can be rebuilt exactly from its definition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

METHODS = ("usability", "tree-test", "first-click")
NOUNS = {"usability": "usability study", "tree-test": "tree test", "first-click": "first-click test"}
MAX_NODES = 500
MAX_DEPTH = 8
MAX_LABEL = 200
SEPARATOR = " > "  # how a node is named in a definition: its labels from the top level down
MAX_TARGETS = 10
MAX_MOVES = 200  # nodes a participant may open in one tree-test task (then: choose or skip)
INDENT = 2  # spaces per level in the indented text form of a tree


class TreeError(ValueError):
    """A tree that cannot be read; ``line`` is the 1-based line of the text form, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Tree:
    """A menu tree in preorder: ``labels[0]`` is the root (""), ``parents[0]`` is -1."""

    labels: tuple[str, ...]
    parents: tuple[int, ...]

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        kids: list[list[int]] = [[] for _ in self.labels]
        for node, parent in enumerate(self.parents):
            if parent >= 0:
                kids[parent].append(node)
        return tuple(tuple(k) for k in kids)

    @property
    def size(self) -> int:
        """Nodes a participant can see (the root is not one)."""
        return len(self.labels) - 1

    def has(self, node: int | None) -> bool:
        """A node a participant can see (not the root, not a number from another tree)."""
        return node is not None and 0 < node < len(self.labels)

    def depth(self, node: int) -> int:
        d = 0
        while node > 0:
            node = self.parents[node]
            d += 1
        return d

    def ancestors(self, node: int) -> list[int]:
        """``node`` and the nodes above it, top level first (the root left out)."""
        out = []
        while node > 0:
            out.append(node)
            node = self.parents[node]
        return out[::-1]

    def path(self, node: int) -> str:
        """The node's name in a definition: ``"Help > Returns"``."""
        return SEPARATOR.join(self.labels[n] for n in self.ancestors(node))

    def top_level(self, node: int) -> int:
        return self.ancestors(node)[0]

    @cached_property
    def _by_path(self) -> dict[str, int]:
        return {self.path(n): n for n in range(1, len(self.labels))}

    def find(self, path: str) -> int | None:
        """The node named ``path`` (labels joined by " > ", surrounding spaces ignored)."""
        parts = [p.strip() for p in path.split(">")]
        return self._by_path.get(SEPARATOR.join(parts))

    def to_text(self) -> str:
        """The indented text form (round-trips through :func:`parse_tree`)."""
        return "\n".join(" " * (INDENT * (self.depth(n) - 1)) + self.labels[n] for n in range(1, len(self.labels)))

    def to_rows(self) -> list[list[Any]]:
        """``[label, parent]`` per node after the root: how the registry stores it."""
        return [[self.labels[n], self.parents[n]] for n in range(1, len(self.labels))]


def tree_from_rows(rows: Sequence[Sequence[Any]]) -> Tree:
    return Tree(("",) + tuple(str(r[0]) for r in rows), (-1,) + tuple(int(r[1]) for r in rows))


def parse_tree(given: Any) -> Tree:
    """A tree from its indented text (``INDENT`` spaces per level, one label per line) or from
    nested tables (``{"Shop": {"Laptops": {}}, "Help": {}}``); TreeError says what is wrong."""
    if isinstance(given, str):
        rows = _text_rows(given)
    elif isinstance(given, Mapping):
        rows = []
        _table_rows(given, 0, rows)
    else:
        raise TreeError("must be an indented list of labels (text) or nested tables")
    labels, parents = [""], [-1]
    stack: list[int] = []  # the open node at each depth (top level = depth 0)
    seen: dict[int, set[str]] = {0: set()}  # labels under each parent
    for depth, label, line in rows:
        if not label:
            raise TreeError("a label must not be empty", line)
        if len(label) > MAX_LABEL:
            raise TreeError(f"a label has at most {MAX_LABEL} characters, got {len(label)}", line)
        if ">" in label:
            raise TreeError(f"{label!r}: a label must not contain '>' (it separates levels in task answers)", line)
        if any(ch < " " or ch == "\x7f" for ch in label):
            raise TreeError(f"{label!r}: a label must be one line of text (no line breaks or control characters)", line)
        if label.startswith(("- ", "* ")):  # the text form reads these as list markers
            raise TreeError(f"{label!r}: a label must not start with '- ' or '* '", line)
        if depth > len(stack):
            raise TreeError(f"{label!r} is indented more than one level below the line above", line)
        if depth >= MAX_DEPTH:
            raise TreeError(f"{label!r} is deeper than {MAX_DEPTH} levels", line)
        del stack[depth:]
        parent = stack[-1] if stack else 0
        if label in seen[parent]:
            raise TreeError(f"{label!r} appears twice under the same parent", line)
        seen[parent].add(label)
        labels.append(label)
        parents.append(parent)
        node = len(labels) - 1
        stack.append(node)
        seen[node] = set()
        if node > MAX_NODES:
            raise TreeError(f"a tree has at most {MAX_NODES} nodes", line)
    if len(labels) == 1:
        raise TreeError("the tree is empty: give at least one label")
    return Tree(tuple(labels), tuple(parents))


def _text_rows(text: str) -> list[tuple[int, str, int | None]]:
    rows: list[tuple[int, str, int | None]] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not raw.strip():
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise TreeError(f"indent with spaces ({INDENT} per level), not tabs", number)
        spaces = len(raw) - len(raw.lstrip(" "))
        if spaces % INDENT:
            raise TreeError(f"indent by multiples of {INDENT} spaces (found {spaces})", number)
        label = raw.strip()
        while label.startswith(("- ", "* ")):  # a Markdown-style list reads the same
            label = label[2:].strip()
        rows.append((spaces // INDENT, label, number))
    return rows


def _table_rows(table: Mapping[str, Any], depth: int, rows: list[tuple[int, str, int | None]]) -> None:
    for label, sub in table.items():
        if not isinstance(sub, Mapping):
            raise TreeError(f"{label!r}: each node is a table of its children ({{}} for a leaf)")
        rows.append((depth, str(label).strip(), None))
        _table_rows(sub, depth + 1, rows)


# ---- first-click screens --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rect:
    """A target in image pixels: left, top, width, height."""

    x: float
    y: float
    width: float
    height: float

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px <= self.x + self.width and self.y <= py <= self.y + self.height

    def to_list(self) -> list[float]:
        return [self.x, self.y, self.width, self.height]


@dataclass(frozen=True, slots=True)
class Screen:
    """What a first-click participant sees for one task and design: a stored image (its name in
    the image store, :mod:`abtest.studies.images`) of known size, and where a right click lands."""

    image: str
    width: int
    height: int
    targets: tuple[Rect, ...]

    def on_target(self, x: float, y: float) -> bool:
        return any(t.contains(x, y) for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "width": self.width, "height": self.height,
                "targets": [t.to_list() for t in self.targets]}


def screen_from_dict(d: Mapping[str, Any]) -> Screen:
    return Screen(str(d["image"]), int(d["width"]), int(d["height"]),
                  tuple(Rect(*map(float, t)) for t in d.get("targets", ())))


# ---- attempts -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeAttempt:
    """One participant's answer to one tree-test task: the nodes they opened, in order (going
    back opens the parent again; 0 is the top level), and the node they chose (None: skipped)."""

    visits: tuple[int, ...]
    chosen: int | None
    duration_ms: float
    success: bool

    @property
    def skipped(self) -> bool:
        return self.chosen is None

    def direct(self, tree: Tree) -> bool:
        """No backtracking: every node opened is a child of the one opened before it, whatever
        the answer (Treejack's "directness"; a skip without going back is a direct skip)."""
        previous = 0
        for node in self.visits:
            if node <= 0 or tree.parents[node] != previous:
                return False
            previous = node
        return True

    def first_click(self, tree: Tree) -> int | None:
        """The top-level node opened first (None: skipped without opening anything)."""
        return next((tree.top_level(n) for n in self.visits if n > 0), None)


@dataclass(frozen=True, slots=True)
class ClickAttempt:
    """One participant's first click on a task's screen, in image pixels."""

    x: float
    y: float
    duration_ms: float
    success: bool


def first_clicks(tree: Tree, attempts: Sequence[TreeAttempt]) -> list[tuple[str, int, float]]:
    """``(top-level label, count, share)`` for each top-level node someone opened first, most
    first (ties in tree order); shares are of all attempts, so those who opened nothing leave
    the shares short of 1."""
    total = len(attempts)
    counts: Counter[int] = Counter()
    for attempt in attempts:
        first = next((n for n in attempt.visits if tree.has(n)), None)
        if first is not None:
            counts[tree.top_level(first)] += 1
    order = sorted(counts, key=lambda n: (-counts[n], n))
    return [(tree.labels[n], counts[n], counts[n] / total) for n in order]


def destinations(tree: Tree, attempts: Sequence[TreeAttempt],
                 correct: frozenset[int]) -> list[tuple[str, int, float, bool]]:
    """``(node path, count, share, is_correct)`` for each node chosen as an answer, most first
    (ties in tree order); skips are left out but counted in the shares' whole (all attempts)."""
    total = len(attempts)
    counts = Counter(a.chosen for a in attempts if tree.has(a.chosen))
    order = sorted(counts, key=lambda n: (-counts[n], n))  # type: ignore[operator]
    return [(tree.path(n), counts[n], counts[n] / total, n in correct) for n in order]  # type: ignore[arg-type]


def tree_answers(visits: Sequence[tuple[int, float]], chosen: int | None, total_ms: float) -> list[list[float]]:
    """How a tree-test answer is stored in an event's ``answers``: ``[node, ms]`` per node
    opened, then the outcome ``[chosen node or -1, ms]``."""
    return [[int(n), round(float(t), 1)] for n, t in visits] + [[-1 if chosen is None else int(chosen),
                                                                   round(float(total_ms), 1)]]


def tree_attempt(answers: Sequence[Sequence[float]], duration_ms: float, success: bool) -> TreeAttempt | None:
    """The attempt back from stored ``answers`` (None when they are not a tree-test answer)."""
    try:
        pairs = [(int(a[0]), float(a[1])) for a in answers]
    except (TypeError, ValueError, IndexError):
        return None
    if not pairs:
        return None
    *visits, (outcome, _) = pairs
    return TreeAttempt(tuple(n for n, _ in visits), None if outcome < 0 else outcome, float(duration_ms), bool(success))


def describe_path(tree: Tree, answers: Sequence[Sequence[float]]) -> list[str]:
    """A stored tree-test answer in words, one entry per move: ``"Help (0.9 s)"``, ``"back to the
    top (2.0 s)"``, and last ``"chose Help > Returns (3.1 s)"`` or ``"skipped (4.0 s)"``."""
    out = []
    attempt = tree_attempt(answers, 0.0, False)
    if attempt is None:
        return [str(a) for a in answers]
    *moves, (_, total) = answers
    for node, (_, ms) in zip(attempt.visits, moves, strict=True):
        where = "back to the top" if node == 0 else tree.path(node) if tree.has(node) else f"node {node}"
        out.append(f"{where} ({ms / 1000:.1f} s)")
    outcome = "skipped" if attempt.chosen is None else "chose " + (
        tree.path(attempt.chosen) if tree.has(attempt.chosen) else f"node {attempt.chosen}")
    return [*out, f"{outcome} ({total / 1000:.1f} s)"]


def click_attempt(answers: Sequence[float], duration_ms: float, success: bool) -> ClickAttempt | None:
    try:
        x, y = float(answers[0]), float(answers[1])
    except (TypeError, ValueError, IndexError):
        return None
    return ClickAttempt(x, y, float(duration_ms), bool(success))
