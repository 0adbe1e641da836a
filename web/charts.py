"""Server-rendered SVG charts of a results report, drawn with matplotlib.

Charts draw numbers the report already holds; they compute nothing statistical. Each chart is
returned as inline SVG markup (no XML prolog, ``role="img"``, a ``<title>`` and an
``aria-label`` that say in words what the chart shows), so pages need no JavaScript to show
them and screen readers get the same facts. Text stays text (``svg.fonttype = "none"``), so
the labels are searchable, selectable and testable. Nothing relies on colour alone: significant
comparisons get a filled square and the word "significant", others a hollow circle.

When there is nothing to draw (a metric without comparisons, an empty or all-missing series)
the chart functions return ``None`` and the page shows no figure.

This module also owns how the numbers of a metric read in words ("+1.8 pts", "0.85×",
"63.9 s"), so that the tables and the charts always agree.

matplotlib is imported inside the functions: importing it costs a few hundred milliseconds that
the CLI, the API and worker start-up should not pay.
"""

from __future__ import annotations

import html
import io
import math
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from abtest.report import Comparison, MetricResult, Report, SeriesPoint

MINUS = "\u2212"
TIMES = "\u00d7"

# matplotlib's global state (rcParams, font cache) is not thread-safe and the production server
# runs threads; charts are small (tens of ms), so they are drawn one at a time.
_LOCK = threading.Lock()
_RC = {
    "svg.fonttype": "none",  # text stays <text>, not glyph paths
    "svg.hashsalt": None,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # one family: font fallback lists slow text layout down
    "font.size": 10,
    "axes.edgecolor": "#555555",
    "axes.labelcolor": "#222222",
    "xtick.color": "#444444",
    "ytick.color": "#222222",
    "text.color": "#222222",
    "axes.unicode_minus": True,
}
INK = "#222222"
SIGNIFICANT = "#1a7f37"  # the same green as app.css's --abtest-good; shape and words carry the meaning
NEUTRAL = "#4a4a4a"
REFERENCE = "#777777"
SERIES_STYLES = (("#1f5fa8", "-", "o"), ("#b5531a", "--", "s"), ("#6b3fa0", ":", "^"), ("#2d7d6f", "-.", "D"))


# ---- numbers in words -----------------------------------------------------------------------------

def _decimals(width: float | None, base: int) -> int:
    """Enough decimals to show an interval of this width with about ``base + 1`` digits."""
    if width is None or not math.isfinite(width) or width <= 0:
        return base
    return max(0, min(6, base - math.floor(math.log10(width))))


def _signed(value: float, decimals: int) -> str:
    text = f"{abs(value):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return text
    return ("+" if value > 0 else MINUS) + text


def _plain(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    return text.replace("-", MINUS)


def is_rate(metric: MetricResult) -> bool:
    return metric.unit == "rate"


def is_seconds(metric: MetricResult) -> bool:
    return metric.unit.startswith("seconds")


def is_ms(metric: MetricResult) -> bool:
    return metric.unit.startswith("ms")


def format_value(metric: MetricResult, value: float | None, ci: tuple[float, float] | None = None) -> str:
    """A variant's value as it reads: rates in %, times in seconds or ms, other values plain."""
    if value is None:
        return "–"
    width = (ci[1] - ci[0]) if ci else None
    if is_rate(metric):
        return f"{_plain(value * 100, _decimals(width and width * 100, 1))}%"
    if is_seconds(metric):
        return f"{_plain(value, _decimals(width, 1))} s"
    if is_ms(metric):
        return f"{_plain(value, min(_decimals(width, 1), 1))} ms"
    return _plain(value, _decimals(width, 2))


def format_value_ci(metric: MetricResult, ci: tuple[float, float] | None) -> str:
    if ci is None:
        return "–"
    width = ci[1] - ci[0]
    if is_rate(metric):
        d = _decimals(width * 100, 1)
        return f"{_plain(ci[0] * 100, d)}% to {_plain(ci[1] * 100, d)}%"
    if is_seconds(metric):
        d = _decimals(width, 1)
        return f"{_plain(ci[0], d)} to {_plain(ci[1], d)} s"
    if is_ms(metric):
        d = min(_decimals(width, 1), 1)
        return f"{_plain(ci[0], d)} to {_plain(ci[1], d)} ms"
    d = _decimals(width, 2)
    return f"{_plain(ci[0], d)} to {_plain(ci[1], d)}"


def effect_scale(metric: MetricResult, comparison: Comparison) -> float:
    """Factor from the report's effect to the number drawn: rate differences in points."""
    return 100.0 if comparison.effect_kind == "difference" and is_rate(metric) else 1.0


def effect_axis_label(metric: MetricResult, comparison: Comparison) -> str:
    if comparison.effect_kind == "ratio":
        return f"time ratio {comparison.variant} / {comparison.baseline} (below 1 = faster)"
    if is_rate(metric):
        return "difference in percentage points"
    return f"difference in {metric.unit or metric.name}"


def format_effect(metric: MetricResult, comparison: Comparison) -> str:
    """'+1.8 pts', '0.85× (15% faster)', '+0.81'; '–' when there is no estimate."""
    if comparison.effect is None:
        return "–"
    width = (comparison.ci[1] - comparison.ci[0]) if comparison.ci else None
    if comparison.effect_kind == "ratio":
        d = max(2, _decimals(width, 1))
        return f"{comparison.effect:.{d}f}{TIMES}"
    if is_rate(metric):
        return f"{_signed(comparison.effect * 100, _decimals(width and width * 100, 1))} pts"
    if is_ms(metric):
        return f"{_signed(comparison.effect, min(_decimals(width, 1), 1))} ms"
    return _signed(comparison.effect, _decimals(width, 2))


def format_effect_ci(metric: MetricResult, comparison: Comparison) -> str:
    if comparison.ci is None:
        return "–"
    low, high = comparison.ci
    width = high - low
    if comparison.effect_kind == "ratio":
        d = max(2, _decimals(width, 1))
        return f"{low:.{d}f}{TIMES} to {high:.{d}f}{TIMES}"
    if is_rate(metric):
        d = _decimals(width * 100, 1)
        return f"{_signed(low * 100, d)} to {_signed(high * 100, d)} pts"
    if is_ms(metric):
        d = min(_decimals(width, 1), 1)
        return f"{_signed(low, d)} to {_signed(high, d)} ms"
    d = _decimals(width, 2)
    return f"{_signed(low, d)} to {_signed(high, d)}"


def format_relative(comparison: Comparison) -> str:
    """Relative lift (+16.5%) or, for task times, how much faster or slower (15.0% faster)."""
    if comparison.relative is None:
        return "–"
    if comparison.effect_kind == "ratio":
        if comparison.relative == 0:
            return "same time"
        return f"{abs(comparison.relative):.1%} {'faster' if comparison.relative < 0 else 'slower'}"
    return _signed(comparison.relative * 100, 1) + "%"


def format_p(p: float | None) -> str:
    if p is None:
        return "–"
    if p < 0.0001:
        return "< 0.0001"
    return f"{p:.4f}" if p < 0.001 else f"{p:.3f}"


def format_chance(chance: float | None) -> str:
    if chance is None:
        return "–"
    if chance > 0.999:
        return "> 99.9%"
    if chance < 0.001:
        return "< 0.1%"
    return f"{chance:.1%}"


# ---- SVG plumbing -----------------------------------------------------------------------------------

# Charts are drawn narrow (a phone's column is about 360 CSS px) and scale to their column: the
# SVG's width follows the container down to a phone, where a 10-point label still reads at about
# 9 px, and up to MAX_SCALE times its drawn size on a desktop, where labels stop growing.
CHART_WIDTH = 5.2  # inches
MAX_SCALE = 1.5
TIGHT_PAD = 0.06  # inches of white around the tight bounding box


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), facecolor="white")  # no pyplot: no global figure state


def _svg(figure: Any, label: str) -> str:
    """The figure as inline SVG: no prolog or metadata, with role, aria-label and title.

    Saved with a tight bounding box, so every label (tick, axis, annotation) lies inside the
    viewBox whatever its length; the SVG then scales to its column (``width="100%"``, height from
    the viewBox's proportions) up to ``MAX_SCALE`` times its drawn size.
    """
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=TIGHT_PAD,
                   metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    markup = buffer.getvalue()
    markup = markup[markup.index("<svg"):]
    markup = re.sub(r"<metadata>.*?</metadata>\s*", "", markup, count=1, flags=re.DOTALL)
    # Group ids ("figure_1", "text_3") repeat in every chart and nothing refers to them; several
    # charts on one page would otherwise carry duplicate ids. Definitions (markers, clip paths)
    # keep theirs: matplotlib salts those randomly per chart.
    markup = re.sub(r'<g id="[^"]*"', "<g", markup)
    view_width = float(re.search(r'viewBox="0 0 ([\d.]+) ', markup).group(1))  # type: ignore[union-attr]
    markup = re.sub(r'^<svg([^>]*?) width="[^"]*" height="[^"]*"',
                    rf'<svg\1 width="100%" style="max-width: {view_width * MAX_SCALE:.0f}pt"', markup, count=1)
    text = html.escape(label, quote=True)
    head_end = markup.index(">")
    return (f'{markup[:4]} class="chart" role="img" aria-label="{text}"{markup[4:head_end]}>'
            f"<title>{text}</title>{markup[head_end + 1:]}")


def _style_ticks(axes: Any) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(length=3)


# ---- forest plot ------------------------------------------------------------------------------------

def _ci_label(comparison: Comparison, level: str) -> str:
    """"95% CI", or "Holm-adj. 95% CI" where the interval matches an adjusted decision."""
    return f"Holm-adj. {level} CI" if comparison.ci_adjustment == "Holm" else f"{level} CI"


def _comparison_words(metric: MetricResult, comparison: Comparison, level: str) -> str:
    who = f"{comparison.variant} vs {comparison.baseline}"
    if comparison.effect is None or comparison.ci is None:
        return f"{who}: no estimate ({comparison.reason or 'not enough data'})"
    verdict = "significant" if comparison.significant else "not significant"
    return (f"{who}: {format_effect(metric, comparison)} ({_ci_label(comparison, level)} "
            f"{format_effect_ci(metric, comparison)}), {verdict}")


def forest_plot(metric: MetricResult, alpha: float = 0.05) -> str | None:
    """Forest plot of one metric's comparisons (see :func:`_forest_plot`); the records are
    immutable, so a chart of unchanged numbers (a stopped test, a poll with no new data) is
    drawn once and reused."""
    return _forest_plot(metric, alpha)


@lru_cache(maxsize=64)
def _forest_plot(metric: MetricResult, alpha: float) -> str | None:
    """One row per comparison: the effect as a point, its interval as a whisker, and a
    reference line at no effect (0 for differences, 1 for time ratios). Above each whisker, its
    words: the comparison, then the effect, its interval and whether it is significant (a
    comparison without an estimate shows its reason instead of a point). The words sit over the
    plot rather than beside it, so the chart stays narrow enough to read on a phone. ``None``
    when the metric has no comparisons."""
    comparisons = metric.comparisons
    if not comparisons:
        return None
    level = f"{1 - alpha:.0%}"
    ratio = comparisons[0].effect_kind == "ratio"
    reference = 1.0 if ratio else 0.0
    scale = effect_scale(metric, comparisons[0])
    label = f"Forest plot of {metric.name}: " + "; ".join(_comparison_words(metric, c, level) for c in comparisons) + "."
    rows = len(comparisons)
    row_height = 0.78  # inches: two lines of words over a whisker
    spans = [reference]
    for comparison in comparisons:
        if comparison.effect is not None and comparison.ci is not None:
            spans += [comparison.ci[0] * scale, comparison.ci[1] * scale]
    low_end, high_end = min(spans), max(spans)
    pad = (high_end - low_end) * 0.05 or (0.05 if ratio else 1.0)
    plot_height = row_height * rows
    height = plot_height + 0.55  # room for the axis below (the tight box trims what is unused)
    words_box = {"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none"}
    with _LOCK:
        import matplotlib
        from matplotlib.ticker import MaxNLocator

        with matplotlib.rc_context(_RC):
            figure = _figure(CHART_WIDTH, height)
            axes = figure.add_axes((0.03, 0.5 / height, 0.94, plot_height / height))
            _style_ticks(axes)
            axes.set_xlim(low_end - pad, high_end + pad)
            axes.set_ylim(-0.3, rows - 0.3)  # a whisker at each integer, its words in the 0.7 above it
            axes.axvline(reference, color=REFERENCE, linewidth=1, linestyle=(0, (4, 3)), zorder=1)
            axes.annotate("same time" if ratio else "no effect", (reference, 1), xycoords=("data", "axes fraction"),
                          xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=8,
                          color=REFERENCE, annotation_clip=False)
            for row, comparison in enumerate(comparisons):
                y = rows - 1 - row  # first comparison on top, as in the table
                if comparison.effect is None or comparison.ci is None:
                    words = f"no estimate: {comparison.reason or 'not enough data'}"
                    colour = NEUTRAL
                else:
                    significant = comparison.significant
                    colour = SIGNIFICANT if significant else NEUTRAL
                    low, high = (v * scale for v in comparison.ci)
                    axes.hlines(y, low, high, color=colour, linewidth=2, zorder=2)
                    axes.vlines((low, high), y - 0.1, y + 0.1, color=colour, linewidth=2, zorder=2)
                    axes.plot([comparison.effect * scale], [y], marker="s" if significant else "o", markersize=9,
                              markerfacecolor=colour if significant else "white", markeredgecolor=colour,
                              markeredgewidth=2, linestyle="none", zorder=3)
                    words = (f"{format_effect(metric, comparison)} · {_ci_label(comparison, level)} "
                             f"{format_effect_ci(metric, comparison)} · "
                             f"{'■ significant' if significant else '○ not significant'}")
                axes.annotate(f"{comparison.variant} vs {comparison.baseline}", (0, y),
                              xycoords=("axes fraction", "data"), xytext=(0, 25), textcoords="offset points",
                              va="bottom", fontsize=10.5, fontweight="bold", color=INK, bbox=words_box, zorder=4,
                              annotation_clip=False)
                axes.annotate(words, (0, y), xycoords=("axes fraction", "data"), xytext=(0, 9),
                              textcoords="offset points", va="bottom", fontsize=10, color=INK, bbox=words_box,
                              zorder=4, annotation_clip=False,
                              style="italic" if comparison.effect is None or comparison.ci is None else "normal")
            axes.xaxis.set_major_locator(MaxNLocator(nbins=6))  # room for each tick label on a phone
            axes.set_yticks([])
            axes.spines["left"].set_visible(False)
            axes.set_xlabel(f"{effect_axis_label(metric, comparisons[0])}", fontsize=9.5)
            return _svg(figure, label)


# ---- cumulative chart -------------------------------------------------------------------------------

def _day(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text[:10])


def cumulative_chart(report: Report) -> str | None:
    """Cumulative chart of the primary comparison (see :func:`_cumulative_chart`), drawn once
    per distinct series and reused while the numbers stay the same."""
    return _cumulative_chart(report.series, report.primary, report.alpha, report.analysis)


@lru_cache(maxsize=32)
def _cumulative_chart(series: tuple[SeriesPoint, ...], metric: MetricResult | None, alpha: float,
                      analysis: str) -> str | None:
    """The primary comparison's effect and interval as they stood at the end of each day
    (``report.series``): one line and shaded band per treatment variant (each with its own line
    style and marker), a zero line, and a key above the plot naming each line with where it
    ends. ``None`` when the series is empty or has no estimate at all."""
    points: Sequence[SeriesPoint] = [p for p in series if p.effect is not None and p.ci is not None]
    if not points:
        return None
    level = f"{1 - alpha:.0%}"
    rate = metric is None or is_rate(metric)
    scale = 100.0 if rate else 1.0
    variants = list(dict.fromkeys(p.variant for p in points))
    baseline = metric.variants[0].variant if metric and metric.variants else "baseline"
    interval = "always-valid" if analysis == "sequential" else "fixed-horizon"

    def number(value: float, unit: bool = True) -> str:
        return _signed(value * scale, 1 if rate else 2) + (" pts" if rate and unit else "")

    by_variant = {v: [p for p in points if p.variant == v] for v in variants}
    summary = []
    for variant, mine in by_variant.items():
        last = mine[-1]
        summary.append(f"{variant} vs {baseline} ends at {number(last.effect)} "  # type: ignore[arg-type]
                       f"({level} {interval} CI {number(last.ci[0], unit=False)} to {number(last.ci[1])}) on {last.day} "  # type: ignore[index]
                       f"with {last.units:,} units")
    days = sorted({p.day for p in points})
    label = (f"Cumulative effect on {metric.name if metric else 'the primary metric'} from {days[0]} to {days[-1]}: "
             + "; ".join(summary) + ".")
    # The first days' intervals are very wide; the axis follows the effects and the later
    # intervals so the recent, informative part is readable (wider bands run off the edge).
    settled = [p for mine in by_variant.values() for p in mine[len(mine) // 4:]]
    span = [0.0] + [p.effect * scale for p in points] + [v * scale for p in settled for v in p.ci]  # type: ignore[operator, union-attr]
    low_end, high_end = min(span), max(span)
    pad = (high_end - low_end) * 0.12 or 1.0
    key_labels = {}
    for variant, mine in by_variant.items():
        ends = f"{variant} vs {baseline} ends at {number(mine[-1].effect)}"  # type: ignore[arg-type]
        interval_words = f"({level} CI {number(mine[-1].ci[0], unit=False)} to {number(mine[-1].ci[1])})"  # type: ignore[index]
        # One line while it fits the narrow drawing, else the interval on a line of its own.
        key_labels[variant] = f"{ends} {interval_words}" if len(ends) + len(interval_words) < 60 else \
            f"{ends}\n{interval_words}"
    with _LOCK:
        import matplotlib
        import matplotlib.dates as mdates
        from matplotlib.lines import Line2D

        with matplotlib.rc_context(_RC):
            figure = _figure(CHART_WIDTH, 3.2)
            axes = figure.add_axes((0.14, 0.16, 0.84, 0.8))
            _style_ticks(axes)
            axes.set_ylim(low_end - pad, high_end + pad)
            axes.axhline(0, color=REFERENCE, linewidth=1, linestyle=(0, (4, 3)), zorder=1)
            axes.annotate("no effect", (0, 0), xycoords=("axes fraction", "data"), xytext=(4, 3),
                          textcoords="offset points", va="bottom", fontsize=8, color=REFERENCE, zorder=4,
                          bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
            keys = []
            for index, (variant, mine) in enumerate(by_variant.items()):
                colour, linestyle, marker = SERIES_STYLES[index % len(SERIES_STYLES)]
                x = [_day(p.day) for p in mine]
                y = [p.effect * scale for p in mine]  # type: ignore[operator]
                low = [p.ci[0] * scale for p in mine]  # type: ignore[index]
                high = [p.ci[1] * scale for p in mine]  # type: ignore[index]
                axes.fill_between(x, low, high, color=colour, alpha=0.13, linewidth=0, zorder=1)
                for edge in (low, high):
                    axes.plot(x, edge, color=colour, linewidth=0.8, linestyle=linestyle, alpha=0.8, zorder=2)
                axes.plot(x, y, color=colour, linewidth=2, linestyle=linestyle, marker=marker, markersize=4.5, zorder=3)
                if len(mine) == 1:
                    axes.vlines(x, low, high, color=colour, linewidth=2)
                keys.append(Line2D([], [], color=colour, linewidth=2, linestyle=linestyle, marker=marker,
                                   markersize=4.5, label=key_labels[variant]))
            # The key above the plot names each line with where it ends (its line style and marker
            # as well as its colour); above rather than beside, so the chart stays phone-narrow.
            axes.legend(handles=keys, loc="lower left", bbox_to_anchor=(0, 1.03), borderaxespad=0, frameon=False,
                        fontsize=9.5, handlelength=2.6, labelcolor="linecolor")
            locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
            axes.xaxis.set_major_locator(locator)
            axes.xaxis.set_major_formatter(mdates.DateFormatter("%b %-d"))
            if len(days) == 1:
                from datetime import timedelta

                only = _day(days[0])
                axes.set_xlim(only - timedelta(days=1), only + timedelta(days=1))
            axes.set_ylabel(f"difference vs {baseline}" + (" (points)" if rate else ""), fontsize=9.5)
            axes.set_xlabel(f"end of day (UTC), all data so far; band: {level} {interval} interval", fontsize=9.5)
            return _svg(figure, label)
