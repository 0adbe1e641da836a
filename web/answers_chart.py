"""The answer distribution of one survey question: the share of each variant's visitors giving
each answer, as grouped horizontal bars (the scale's values or the options, top to bottom).

Drawn like every chart of :mod:`web.charts` (inline SVG, words for screen readers, matplotlib
imported only when drawn); this module only adds the figure.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from web.charts import _LOCK, _RC, CHART_WIDTH, SERIES_STYLES, _figure, _style_ticks, _svg


def answers_chart(question: dict[str, Any]) -> str | None:
    """The chart of a question of a survey's document (``details.questions[i]``); ``None`` for
    a text question or when nobody answered yet."""
    if "counts" not in question or not any(sum(c) for c in question["counts"].values()):
        return None
    return _answers_chart(json.dumps({k: question[k] for k in ("key", "type", "labels", "counts")}, sort_keys=True))


@lru_cache(maxsize=32)
def _answers_chart(encoded: str) -> str:
    question = json.loads(encoded)
    labels: list[str] = question["labels"]
    groups = [(variant, counts) for variant, counts in question["counts"].items()]
    shares = [[c / sum(counts) if sum(counts) else 0.0 for c in counts] for _v, counts in groups]
    words = "; ".join(f"{variant} (n = {sum(counts)}): " + ", ".join(f"{label} {share:.0%}" for label, share
                                                                      in zip(labels, row, strict=True))
                      for (variant, counts), row in zip(groups, shares, strict=True))
    label = f"Answers to {question['key']} ({question['type']}), share of visitors per answer: {words}."
    bar = 0.8 / len(groups)
    height = min(6.0, 0.9 + 0.22 * len(labels) * max(1, len(groups)))
    with _LOCK:
        import matplotlib
        from matplotlib.ticker import PercentFormatter

        with matplotlib.rc_context(_RC):
            figure = _figure(CHART_WIDTH, height)
            axes = figure.add_axes((0.2, 0.6 / height, 0.76, 1 - 1.1 / height))
            _style_ticks(axes)
            for i, ((variant, _counts), row) in enumerate(zip(groups, shares, strict=True)):
                colour = SERIES_STYLES[i % len(SERIES_STYLES)][0]
                axes.barh([y + (i - (len(groups) - 1) / 2) * bar for y in range(len(labels))], row, height=bar * 0.92,
                          color=colour, label=variant)
            # parse_math off: an option such as "$10 to $50" is words, not TeX
            axes.set_yticks(range(len(labels)), [t if len(t) <= 18 else t[:17] + "…" for t in labels], fontsize=9,
                            parse_math=False)
            axes.invert_yaxis()  # the scale's low end (or the first option) on top, as the prompt shows it
            axes.set_xlim(0, max(1e-9, max(max(r) for r in shares)) * 1.1)
            axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            axes.set_xlabel("share of visitors", fontsize=9.5)
            if len(groups) > 1:
                # above the bars, so it never covers one
                axes.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(groups), fontsize=9, frameon=False)
            return _svg(figure, label)
