"""The distribution chart of a quantile metric (page speed): each variant's empirical cumulative
distribution from the percentiles the report holds, with the quantile and the thresholds drawn.

Drawn like every chart of :mod:`web.charts` (inline SVG, words for screen readers, matplotlib
imported only when drawn); this module only adds the figure.
"""

from __future__ import annotations

import re
from functools import lru_cache

from abtest.report import MetricResult
from web.charts import _LOCK, _RC, CHART_WIDTH, REFERENCE, SERIES_STYLES, _figure, _plain, _style_ticks, _svg, is_ms


def distribution_chart(metric: MetricResult) -> str | None:
    """The empirical cumulative distribution of each variant's values (see
    :func:`_distribution_chart`), drawn once per distinct set of numbers."""
    return _distribution_chart(metric)


@lru_cache(maxsize=32)
def _distribution_chart(metric: MetricResult) -> str | None:
    """One step line per variant: the share of values at or below each value, from the
    percentiles the report holds; a horizontal line at the metric's quantile (where the lines
    cross it are the variants' estimates) and vertical lines at the marks (a vital's good and
    poor thresholds). ``None`` when the metric keeps no distribution."""
    if not metric.distribution:
        return None
    unit = " ms" if is_ms(metric) else ""
    match = re.search(r"p([\d.]+)", metric.unit)
    q = float(match.group(1)) / 100 if match else None
    words = []
    for variant, points in metric.distribution:
        at = {round(share, 2): value for value, share in points}
        quartiles = ", ".join(f"p{int(p * 100)} {_plain(at[p], 0 if unit else 2)}{unit}" for p in (0.25, 0.5, 0.75, 0.9)
                              if p in at)
        words.append(f"{variant}: {quartiles}")
    marks = "; ".join(f"{label} at {_plain(value, 0 if unit else 2)}{unit}" for label, value in metric.marks)
    label = (f"Distribution of {metric.label or metric.name} per variant (share of values at or below each value): "
             + "; ".join(words) + (f". Thresholds: {marks}." if marks else "."))
    values = [v for _variant, points in metric.distribution for v, _share in points]
    # The axis ends at the largest 99th percentile (a few very slow loads would squeeze the rest
    # into a corner), or at a threshold just beyond it.
    p99 = max(v for _variant, points in metric.distribution for v, share in points if share <= 0.99)
    high = max([p99] + [m for _l, m in metric.marks if m <= p99 * 1.5])
    low = min(values)
    with _LOCK:
        import matplotlib
        from matplotlib.ticker import MaxNLocator, PercentFormatter

        with matplotlib.rc_context(_RC):
            figure = _figure(CHART_WIDTH, 3.0)
            axes = figure.add_axes((0.1, 0.18, 0.86, 0.68))
            _style_ticks(axes)
            for i, (variant, points) in enumerate(metric.distribution):
                colour, style, _marker = SERIES_STYLES[i % len(SERIES_STYLES)]
                axes.step([v for v, _s in points], [s for _v, s in points], where="post", color=colour,
                          linestyle=style, linewidth=2, label=variant)
            if q is not None:
                axes.axhline(q, color=REFERENCE, linewidth=1, linestyle=(0, (4, 3)))
                axes.annotate(f"p{q * 100:g}", (1, q), xycoords=("axes fraction", "data"), xytext=(2, 0),
                              textcoords="offset points", va="center", fontsize=8, color=REFERENCE,
                              annotation_clip=False)
            for i, (name, value) in enumerate(metric.marks):
                if low <= value <= high:
                    axes.axvline(value, color=REFERENCE, linewidth=1, linestyle=":")
                    # staggered, so labels of nearby thresholds do not overlap
                    axes.annotate(f"{name} {_plain(value, 0 if unit else 2)}{unit}", (value, 0.08 + 0.12 * i),
                                  xycoords=("data", "axes fraction"), xytext=(3, 0), textcoords="offset points",
                                  fontsize=8, color=REFERENCE, annotation_clip=False,
                                  bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"})
            axes.set_ylim(0, 1.02)
            axes.set_xlim(low, high * 1.02 if high > 0 else high)
            axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            axes.xaxis.set_major_locator(MaxNLocator(nbins=5))
            axes.set_xlabel(f"value{' (ms)' if unit else ''}", fontsize=9.5)
            axes.set_ylabel("share at or below", fontsize=9.5)
            axes.legend(loc="lower right", fontsize=9, frameon=False)
            return _svg(figure, label)
