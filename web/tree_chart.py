"""Where a tree test's participants went for one task on one tree: a "path tree" (an indented
list of the nodes people opened or chose, each with a bar for how many passed through it and a
segment for how many chose it), and the two tables beside it (first clicks, destinations).

The chart is hand-built SVG rather than matplotlib: it is a list of text rows with bars, and
drawn directly its text stays real text at a size set once for a phone's width (390 px), with
no layout engine to guess label widths. Like every chart of :mod:`web.charts` it carries
``role="img"`` and an ``aria-label`` that says the same facts in words, and no meaning rests on
colour alone: correct answers are marked ✓, wrong answers someone chose ✗.

Shares are of all the task's attempts (skips included), so a row's shares and the "Skipped"
row read against the same whole.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from abtest.studies.ia import Tree, TreeAttempt

MAX_ROWS = 80

# Drawing units: the viewBox is WIDTH wide and scales to its column, so at 390 CSS px one unit is
# 390 / WIDTH px and the smallest text (SMALL) still reads at about 12 px.
WIDTH = 480
PAD = 8
FONT = 16
SMALL = 15
CHAR = 0.62  # a generous average glyph width (em) of a sans-serif, for truncating labels
INDENT = 14  # per level below the top
MARK = 18  # room for ✓ / ✗ before a label
ROW = 46
TRACK_W = 270  # the bars' common scale: a full track is every participant
BAR_H = 14
CHOSE_H = 6
MAX_CSS_WIDTH = 600  # px: the chart stops growing here on a wide screen

INK = "#222222"
MUTED = "#555555"
TRACK = "#eeeeee"
PASSED = "#8fb3de"
GOOD = "#1a7f37"  # app.css --abtest-good
BAD = "#b42318"  # app.css --abtest-bad
SKIP = "#9a9a9a"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def path_tree(tree: Tree, attempts: Sequence[TreeAttempt], correct: frozenset[int]) -> str | None:
    """The path tree of one task (see :func:`_path_tree`) as inline SVG; ``None`` when nobody
    attempted it. Drawn once per distinct tree, answers and correct set."""
    if not attempts:
        return None
    encoded = json.dumps({"labels": tree.labels, "parents": tree.parents, "correct": sorted(correct),
                          "attempts": [[list(a.visits), a.chosen] for a in attempts]})
    return _path_tree(encoded)


def _counts(tree: Tree, attempts: Sequence[tuple[Sequence[int], int | None]]) -> tuple[Counter[int], Counter[int]]:
    """Per node: how many participants passed through it (opened it at least once, or chose
    it) and how many chose it."""
    passed: Counter[int] = Counter()
    chose: Counter[int] = Counter()
    for visits, chosen in attempts:
        through = {n for n in visits if tree.has(n)}
        if tree.has(chosen):
            through.add(chosen)  # type: ignore[arg-type]
            chose[chosen] += 1  # type: ignore[index]
        passed.update(through)
    return passed, chose


def _rows(tree: Tree, passed: Counter[int], chose: Counter[int], correct: set[int]) -> tuple[list[int], int]:
    """The nodes drawn, in preorder, and how many more were left out by the cap. A node is
    drawn with its ancestors, so the indentation never lies; when there are too many, correct
    answers and their paths are kept first, then the most travelled nodes."""
    wanted = set(passed) | set(chose) | correct
    candidates = {a for n in wanted for a in tree.ancestors(n)}
    if len(candidates) <= MAX_ROWS:
        return sorted(candidates), 0
    ranked = sorted(candidates, key=lambda n: (n not in correct, -passed[n], -chose[n], n))
    kept: set[int] = set()
    for node in ranked:
        need = [a for a in tree.ancestors(node) if a not in kept]
        if len(kept) + len(need) <= MAX_ROWS:
            kept.update(need)
    return sorted(kept), len(candidates) - len(kept)


def _truncate(text: str, room: float, size: float) -> str:
    fits = max(4, int(room / (size * CHAR)))
    return text if len(text) <= fits else text[: fits - 1].rstrip() + "…"


def _bar(x: float, y: float, share: float, colour: str, height: float) -> str:
    width = max(0.0, min(1.0, share)) * TRACK_W
    if width <= 0:
        return ""
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 2):.1f}" height="{height}" fill="{colour}"/>'


def _track(y: float) -> str:
    return (f'<rect x="{PAD}" y="{y:.1f}" width="{TRACK_W}" height="{BAR_H}" fill="{TRACK}" '
            f'stroke="#aaaaaa" stroke-width="1"/>')


@lru_cache(maxsize=64)
def _path_tree(encoded: str) -> str:
    """One row per node drawn: a ✓ (correct) or ✗ (a wrong answer someone chose), the label
    indented by depth, and beneath it a track as wide as all participants holding a light bar
    (passed through) and a thin dark segment (chose it, green when correct, red when wrong),
    with the counts in words at the right. A key on top; "… n more nodes" when capped; the
    skips last."""
    data: dict[str, Any] = json.loads(encoded)
    tree = Tree(tuple(data["labels"]), tuple(data["parents"]))
    correct = {n for n in data["correct"] if tree.has(n)}
    attempts = [(tuple(v), c) for v, c in data["attempts"]]
    total = len(attempts)
    passed, chose = _counts(tree, attempts)
    rows, hidden = _rows(tree, passed, chose, correct)
    skipped = sum(1 for _v, c in attempts if c is None)
    right = sum(1 for _v, c in attempts if c in correct)
    wrong = total - skipped - right

    picks = sorted(chose, key=lambda n: (-chose[n], n))[:3]
    most = "; most chosen: " + ", ".join(f"{tree.path(n)} ({chose[n]})" for n in picks) if picks else ""
    label = (f"Where {_plural(total, 'participant')} went for this task: {right} chose a correct answer, "
             f"{wrong} chose a wrong answer, {skipped} skipped{most}.")
    if hidden:
        label += f" The chart shows the {len(rows)} most travelled nodes of {len(rows) + hidden}."

    parts: list[str] = []
    y = PAD
    # the key: what the marks and the two bars mean
    parts.append(f'<text x="{PAD}" y="{y + 15}" font-size="{SMALL}" fill="{INK}">'
                 f'{_esc(_plural(total, "participant"))} · <tspan fill="{GOOD}" font-weight="bold">✓</tspan> correct'
                 f' · <tspan fill="{BAD}" font-weight="bold">✗</tspan> chosen, wrong</text>')
    y += 24
    parts.append(f'<rect x="{PAD}" y="{y + 2}" width="26" height="{BAR_H}" fill="{PASSED}"/>'
                 f'<text x="{PAD + 32}" y="{y + 14}" font-size="{SMALL}" fill="{INK}">passed through</text>'
                 f'<rect x="{PAD + 160}" y="{y + 2 + (BAR_H - CHOSE_H) / 2}" width="26" height="{CHOSE_H}" '
                 f'fill="{INK}"/>'
                 f'<text x="{PAD + 192}" y="{y + 14}" font-size="{SMALL}" fill="{INK}">chose as answer</text>')
    y += 30

    for node in rows:
        is_correct = node in correct
        is_wrong = chose[node] > 0 and not is_correct
        x = PAD + INDENT * (tree.depth(node) - 1)
        mark = (f'<text x="{x}" y="{y + 17}" font-size="{FONT}" font-weight="bold" fill="{GOOD}">✓</text>'
                if is_correct else
                f'<text x="{x}" y="{y + 17}" font-size="{FONT}" font-weight="bold" fill="{BAD}">✗</text>'
                if is_wrong else "")
        text_x = x + MARK
        name = _truncate(tree.labels[node], WIDTH - PAD - text_x, FONT)
        colour = GOOD if is_correct else INK
        words = f"{passed[node]} passed" + (f" · {chose[node]} chose" if chose[node] or is_correct else "")
        weight = ' font-weight="bold"' if is_correct else ""
        verdict = "; a correct answer" if is_correct else "; a wrong answer" if is_wrong else ""
        title = (f"{tree.path(node)}: {passed[node]} of {total} passed through ({passed[node] / total:.0%}), "
                 f"{chose[node]} chose it ({chose[node] / total:.0%}){verdict}")
        bar_y = y + 24
        parts.append(
            f'<g class="node{" correct" if is_correct else " wrong" if is_wrong else ""}"><title>{_esc(title)}</title>'
            f'{mark}<text x="{text_x}" y="{y + 17}" font-size="{FONT}" fill="{colour}"'
            f'{weight}>{_esc(name)}</text>'
            f'{_track(bar_y)}{_bar(PAD, bar_y, passed[node] / total, PASSED, BAR_H)}'
            f'{_bar(PAD, bar_y + (BAR_H - CHOSE_H) / 2, chose[node] / total, GOOD if is_correct else BAD, CHOSE_H)}'
            f'<text x="{WIDTH - PAD}" y="{bar_y + 12}" font-size="{SMALL}" fill="{MUTED}" '
            f'text-anchor="end">{_esc(words)}</text></g>')
        y += ROW

    if hidden:
        parts.append(f'<text class="more" x="{PAD}" y="{y + 16}" font-size="{SMALL}" fill="{MUTED}" '
                     f'font-style="italic">… {_plural(hidden, "more node")} (fewer travelled) not shown</text>')
        y += 26
    parts.append(f'<g class="skipped"><text x="{PAD}" y="{y + 17}" font-size="{FONT}" fill="{INK}">Skipped: {skipped}'
                 f'</text>{_track(y + 24)}{_bar(PAD, y + 24, skipped / total, SKIP, BAR_H)}'
                 f'<text x="{WIDTH - PAD}" y="{y + 36}" font-size="{SMALL}" fill="{MUTED}" text-anchor="end">'
                 f'{skipped / total:.0%} of {total}</text></g>')
    y += ROW
    height = y + PAD - 4
    text = _esc(label)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart tree-chart" role="img" aria-label="{text}" '
            f'viewBox="0 0 {WIDTH} {height}" width="100%" style="max-width: {MAX_CSS_WIDTH}px" '
            f'font-family="DejaVu Sans, sans-serif"><title>{text}</title>{"".join(parts)}</svg>')
