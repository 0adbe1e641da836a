"""SVG charts drawn from report objects (web.charts): valid XML, labelled, accessible, small, fast.

Reports are built by hand here, so the charts are tested without a database. Contract for
"nothing to draw": the chart functions return ``None`` (a metric without comparisons, a series
that is empty or has no estimate on any day).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from abtest.report import Comparison, MetricResult, PowerResult, Report, SeriesPoint, SrmResult, VariantResult
from web import charts

SVG = "{http://www.w3.org/2000/svg}"


def comparison(variant: str, effect: float | None, ci: tuple[float, float] | None, significant: bool = False,
               kind: str = "difference", reason: str | None = None) -> Comparison:
    relative = None if effect is None else (effect - 1 if kind == "ratio" else effect / 0.10)
    return Comparison(variant, "control", effect, kind, relative, ci, None if effect is None else 0.01,
                      None if effect is None else 0.02, significant, "two-proportion z-test", 0.97, 0.001, reason)


def conversion(*comparisons: Comparison) -> MetricResult:
    variants = (VariantResult("control", 1000, 0.10, (0.08, 0.12)),
                *(VariantResult(c.variant, 1000, 0.12, (0.10, 0.14)) for c in comparisons))
    return MetricResult("purchase", "conversion", True, "Wilson score interval", variants, comparisons,
                        "Holm" if len(comparisons) > 1 else None, unit="rate")


def durations(*comparisons: Comparison) -> MetricResult:
    variants = (VariantResult("control", 300, 64.0, (62.0, 66.0)), VariantResult("fast", 300, 54.0, (52.0, 56.0)))
    return MetricResult("checkout-time", "duration", False, "geometric mean", variants, comparisons,
                        unit="seconds (geometric mean)")


def report(metric: MetricResult, series: tuple[SeriesPoint, ...]) -> Report:
    return Report("checkout-button", "running", "sequential", 0.05, {"control": 1000, "green": 1000},
                  SrmResult(0.7, False), (metric,), PowerResult(3841, 0.26), "…", {}, series)


def series(variants: tuple[str, ...] = ("green",), days: int = 14) -> tuple[SeriesPoint, ...]:
    points = []
    for day in range(days):
        width = 0.3 / (day + 1) ** 0.5
        for index, variant in enumerate(variants):
            effect = 0.02 * (index + 1) + 0.01 * (-1) ** day / (day + 1)
            points.append(SeriesPoint((date(2026, 10, 1) + timedelta(days=day)).isoformat(), variant, 300 * (day + 1), effect,
                                      (effect - width, effect + width)))
    return tuple(points)


def parse(svg: str) -> ET.Element:
    assert not svg.lstrip().startswith("<?xml") and "<!DOCTYPE" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img" and root.get("aria-label")
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == root.get("aria-label")
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def dashed_lines(root: ET.Element) -> list[tuple[float, float, float, float]]:
    """Straight dashed segments (x1, y1, x2, y2): the reference lines."""
    lines = []
    for path in root.iter(f"{SVG}path"):
        if "stroke-dasharray" not in (path.get("style") or ""):
            continue
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
        if len(numbers) == 4:
            lines.append((numbers[0], numbers[1], numbers[2], numbers[3]))
    return lines


def tick_position(root: ET.Element, value: float, axis: str) -> float:
    """Where the tick for ``value`` sits on the x (or y) axis, read from its label's text element."""
    for text in root.iter(f"{SVG}text"):
        words = "".join(text.itertext()).strip().replace("\u2212", "-")
        if re.fullmatch(r"-?\d+(\.\d+)?", words) and float(words) == value:
            return float(text.get(axis))  # type: ignore[arg-type]
    raise AssertionError(f"no tick labelled {value}; texts: {texts(root)}")


# ---- forest plot ------------------------------------------------------------------------------------

def test_forest_plot_labels_rows_and_draws_the_zero_line():
    metric = conversion(comparison("green", 0.025, (0.005, 0.045), significant=True),
                        comparison("blue", -0.004, (-0.024, 0.016)))
    root = parse(charts.forest_plot(metric))
    words = texts(root)
    assert "green vs control" in words and "blue vs control" in words
    assert any("+2.5 pts" in w for w in words) and any("■ significant" in w for w in words)
    assert any("○ not significant" in w for w in words)  # readable without colour: shape and words
    assert "no effect" in words
    (x1, y1, x2, y2), = dashed_lines(root)
    assert x1 == pytest.approx(x2) and y1 != y2  # vertical
    assert x1 == pytest.approx(tick_position(root, 0, "x"), abs=0.01)  # at zero on the axis
    label = root.get("aria-label")
    assert label.startswith("Forest plot of purchase") and "green vs control: +2.5 pts (95% CI +0.5 to +4.5 pts)" in label


def test_forest_plot_of_time_ratios_draws_the_line_at_one():
    metric = durations(comparison("fast", 0.85, (0.80, 0.90), significant=True, kind="ratio"))
    root = parse(charts.forest_plot(metric))
    words = texts(root)
    assert "fast vs control" in words and "same time" in words
    assert any("0.85×" in w for w in words)
    (x1, _y1, x2, _y2), = dashed_lines(root)
    assert x1 == pytest.approx(x2)
    assert x1 == pytest.approx(tick_position(root, 1.0, "x"), abs=0.01)


def test_forest_plot_shows_the_reason_when_there_is_no_estimate():
    metric = conversion(comparison("green", 0.02, (0.0, 0.04)),
                        comparison("blue", None, None, reason="no units yet in one of the variants"))
    root = parse(charts.forest_plot(metric))
    words = texts(root)
    assert "blue vs control" in words
    assert "no estimate: no units yet in one of the variants" in words
    assert "blue vs control: no estimate (no units yet in one of the variants)" in root.get("aria-label")


def test_forest_plot_with_only_missing_estimates_still_draws():
    metric = conversion(comparison("green", None, None, reason="n < 2"))
    root = parse(charts.forest_plot(metric))
    assert "no estimate: n < 2" in texts(root)


def test_forest_plot_of_a_metric_without_comparisons_is_none():
    assert charts.forest_plot(conversion()) is None


# ---- cumulative chart ---------------------------------------------------------------------------------

def test_cumulative_chart_has_a_band_and_label_per_variant_and_a_zero_line():
    metric = conversion(comparison("green", 0.025, (0.005, 0.045)), comparison("blue", 0.04, (0.02, 0.06)))
    root = parse(charts.cumulative_chart(report(metric, series(("green", "blue")))))
    words = texts(root)
    assert any(w.startswith("green vs control") for w in words)
    assert any(w.startswith("blue vs control") for w in words)
    assert "no effect" in words
    horizontal = [line for line in dashed_lines(root) if line[1] == pytest.approx(line[3])]
    assert len(horizontal) == 1
    # the tick label's y is its text baseline, a few points below the tick itself
    assert horizontal[0][1] == pytest.approx(tick_position(root, 0, "y"), abs=4)
    label = root.get("aria-label")
    assert "from 2026-10-01 to 2026-10-14" in label and "green vs control ends at" in label


@pytest.mark.parametrize("points", [(), (SeriesPoint("2026-10-01", "green", 10, None, None),)],
                         ids=["empty", "no-estimates"])
def test_cumulative_chart_without_estimates_is_none(points):
    metric = conversion(comparison("green", 0.02, (0.0, 0.04)))
    assert charts.cumulative_chart(report(metric, points)) is None


def test_cumulative_chart_of_a_single_day():
    metric = conversion(comparison("green", 0.02, (0.0, 0.04)))
    root = parse(charts.cumulative_chart(report(metric, series(days=1))))
    assert any(w.startswith("green vs control") for w in texts(root))


# ---- fit: narrow drawings that scale to their column ----------------------------------------------------

def _long_labels_metric() -> MetricResult:
    return conversion(comparison("a-rather-long-variant-name", 0.02, (-0.0001, 0.04), True),
                      comparison("b", -0.35, (-0.6, -0.1)), comparison("c", None, None, reason="no units yet"))


@pytest.mark.parametrize("draw", [
    lambda: charts.forest_plot(_long_labels_metric()),
    lambda: charts.forest_plot(durations(comparison("fast", 0.85, (0.80, 0.90), significant=True, kind="ratio"))),
    lambda: charts.cumulative_chart(report(_long_labels_metric(), series(("a-rather-long-variant-name", "b")))),
], ids=["forest", "forest-ratio", "cumulative"])
def test_charts_scale_to_their_column_and_keep_their_labels_inside(draw):
    """The SVG follows its column's width (never a minimum width that a phone must scroll) up to
    1.5 times its drawn size; it is drawn narrow enough to read on a phone, and the tight
    bounding box keeps every label inside the viewBox (the browser test measures the rendering)."""
    root = parse(draw())
    assert root.get("width") == "100%" and root.get("height") is None
    style = root.get("style") or ""
    assert "min-width" not in style
    _x, _y, width, height = (float(v) for v in root.get("viewBox").split())
    assert re.fullmatch(rf"max-width: {width * charts.MAX_SCALE:.0f}pt", style)
    assert width <= 6.5 * 72, width  # points: a phone shows it at 80 % or more of its size
    for text in root.iter(f"{SVG}text"):
        x, y = float(text.get("x", 0)), float(text.get("y", 0))
        for parent_transform in [text.get("transform") or ""]:
            found = re.search(r"translate\(([-\d.]+)[ ,]+([-\d.]+)\)", parent_transform)
            if found:
                x, y = x + float(found.group(1)), y + float(found.group(2))
        assert -1 <= x <= width + 1 and -1 <= y <= height + 1, ("".join(text.itertext()), x, y, width, height)


# ---- size, speed, ids -----------------------------------------------------------------------------------

def uncached(draw):  # type: ignore[no-untyped-def]
    charts._forest_plot.cache_clear()
    charts._cumulative_chart.cache_clear()
    return draw()


def test_charts_are_small_and_do_not_share_ids():
    """Drawing time is measured by tests/benchmarks/bench_results_page.py (charts ms), not here."""
    metric = conversion(comparison("a", 0.02, (0.0, 0.04), True), comparison("b", 0.01, (-0.01, 0.03)),
                        comparison("c", -0.01, (-0.03, 0.01)))
    full = report(metric, series(("a", "b", "c"), days=60))
    forest, cumulative = uncached(lambda: charts.forest_plot(metric)), uncached(lambda: charts.cumulative_chart(full))
    assert forest and cumulative
    assert len(forest.encode()) < 60_000 and len(cumulative.encode()) < 60_000
    again = uncached(lambda: charts.forest_plot(metric))
    ids = [set(re.findall(r'\bid="([^"]+)"', svg)) for svg in (forest, cumulative, again)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2])  # several charts can share one page


def test_unchanged_numbers_reuse_the_drawn_chart():
    metric = conversion(comparison("green", 0.02, (0.0, 0.04)))
    first = uncached(lambda: charts.forest_plot(metric))
    assert charts.forest_plot(conversion(comparison("green", 0.02, (0.0, 0.04)))) is first  # equal records
    assert charts.forest_plot(conversion(comparison("green", 0.03, (0.01, 0.05)))) != first


# ---- numbers in words -------------------------------------------------------------------------------------

def test_numbers_read_in_the_metric_units():
    rate = conversion(comparison("green", 0.025, (0.005, 0.045)))
    assert charts.format_value(rate, 0.1234, (0.11, 0.14)) == "12.3%"
    assert charts.format_value_ci(rate, (0.11, 0.14)) == "11.0% to 14.0%"
    assert charts.format_effect(rate, rate.comparisons[0]) == "+2.5 pts"
    assert charts.format_effect_ci(rate, rate.comparisons[0]) == "+0.5 to +4.5 pts"
    assert charts.format_relative(rate.comparisons[0]) == "+25.0%"
    times = durations(comparison("fast", 0.85, (0.80, 0.90), kind="ratio"))
    assert charts.format_value(times, 63.95, (62.1, 65.8)) == "64.0 s"
    assert charts.format_effect(times, times.comparisons[0]) == "0.85×"
    assert charts.format_relative(times.comparisons[0]) == "15.0% faster"
    assert charts.format_p(0.00001) == "< 0.0001" and charts.format_p(0.0123) == "0.012"
    assert charts.format_chance(0.9999) == "> 99.9%" and charts.format_chance(None) == "–"
    assert charts.format_effect(rate, comparison("x", None, None)) == "–"
