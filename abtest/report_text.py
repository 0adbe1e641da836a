"""The results document as plain text for a terminal (``abtest analyze``), every line within
``WIDTH`` columns: aligned tables, each comparison table with its method below it, sentences
wrapped. The numbers are the document's (:mod:`abtest.report`); nothing is computed here.
"""

from __future__ import annotations

import textwrap

from abtest.report import Comparison, MetricResult, Report


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "rate":
        return f"{value * 100:.2f}%"
    if unit == "points":  # a difference of two rates, in percentage points
        return f"{value * 100:+.2f} pts"
    if unit == "ratio":
        return f"{value:.3f}x"
    return f"{value:,.4g}"


def _chance(value: float | None) -> str:
    if value is None:
        return "–"
    return ">99.9%" if value > 0.999 else "<0.1%" if value < 0.001 else f"{value:.1%}"


def _fmt_ci(ci: tuple[float, float] | None, unit: str) -> str:
    if ci is None:
        return "–"
    return f"[{_fmt(ci[0], unit)}, {_fmt(ci[1], unit)}]"


WIDTH = 100  # ``to_text`` keeps every line within this many columns


def _wrap(text: str, indent: str = "", hanging: str | None = None) -> list[str]:
    """One paragraph wrapped to ``WIDTH``; continuation lines indented by ``hanging``."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  " if hanging is None
                         else hanging, break_on_hyphens=False) or [indent.rstrip()]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return [line(cells).rstrip() for cells in [header, ["-" * w for w in widths], *rows]]


def _widest(lines: list[str]) -> int:
    return max((len(line) for line in lines), default=0)


def _fit_table(header: list[str], rows: list[list[str]], text_column: int | None = None, *,
               below: bool = False, shared: bool = True) -> list[str]:
    """``_table`` within ``WIDTH``. The text column (method, note) moves below the table when
    ``below`` or when the table is too wide: as one line ``method: …`` if every row shares it (and
    ``shared`` allows), else as numbered notes ``[1] …`` the rows point to. A table still too wide
    loses the columns that hold no number in any row (``–`` throughout), then puts each row's name
    on a line of its own."""
    lines = _table(header, rows)
    if _widest(lines) <= WIDTH and not below:
        return lines
    notes: list[str] = []
    if text_column is not None and rows:
        texts = [r[text_column] for r in rows]
        distinct = list(dict.fromkeys(t for t in texts if t))
        if shared and len(distinct) == 1 and all(texts):
            notes = _wrap(f"{header[text_column]}: {distinct[0]}")
            header = [c for i, c in enumerate(header) if i != text_column]
            rows = [[c for i, c in enumerate(r) if i != text_column] for r in rows]
        elif distinct:
            marks = {text: f"[{i}]" for i, text in enumerate(distinct, 1)}
            notes = [line for text, mark in marks.items()
                     for line in _wrap(f"{mark} {text}", hanging=" " * (len(mark) + 1))]
            rows = [[marks.get(c, "") if i == text_column else c for i, c in enumerate(r)] for r in rows]
        lines = _table(header, rows)
    if _widest(lines) > WIDTH:  # columns with no number in any row say nothing: drop them
        keep = [i for i in range(len(header)) if i == 0 or any(r[i] != "–" for r in rows)]
        header, rows = [header[i] for i in keep], [[r[i] for i in keep] for r in rows]
        lines = _table(header, rows)
    if _widest(lines) > WIDTH:
        lines = _stacked(header, rows) or lines
    return lines + notes


def _stacked(header: list[str], rows: list[list[str]]) -> list[str] | None:
    """When the first column (long variant or segment names) is what makes a table too wide:
    each row's name on a line of its own, its cells indented below it (None if they do not fit)."""
    rest = _table(header[1:], [r[1:] for r in rows])
    if _widest(rest) + 2 > WIDTH:
        return None
    out = [header[0], *("  " + line for line in rest[:2])]
    for row, cells in zip(rows, rest[2:]):
        out += [*_wrap(row[0], hanging="    "), "  " + cells]
    return out


def _comparison_rows(metric: MetricResult, comparisons: tuple[Comparison, ...], prefix: str = "") -> list[list[str]]:
    rows = []
    for c in comparisons:
        effect_unit = "ratio" if c.effect_kind == "ratio" else "points" if metric.unit == "rate" else ""
        rows.append([f"{prefix}{c.variant} vs {c.baseline}", _fmt(c.effect, effect_unit), _fmt_ci(c.ci, effect_unit),
                     "–" if c.p_value is None else f"{c.p_value:.3g}",
                     "–" if c.p_adjusted is None else f"{c.p_adjusted:.3g}",
                     _chance(c.chance_to_beat), "yes" if c.significant else "no", c.reason or c.method])
    return rows


_COMPARISON_HEADER = ["comparison", "effect", "CI", "p", "p adj.", "P(beat)", "signif.", "method"]


def _comparison_table(metric: MetricResult, comparisons: tuple[Comparison, ...],
                      prefixes: list[str] | None = None) -> list[str]:
    """The comparisons with their method below the table (why a row has no numbers, as a note)."""
    if not comparisons:
        return []
    rows = [row for i, c in enumerate(comparisons)
            for row in _comparison_rows(metric, (c,), prefixes[i] if prefixes else "")]
    # Intervals widened to match Holm-adjusted decisions say so, as the results page does.
    header = [("Holm CI" if h == "CI" and any(c.ci_adjustment for c in comparisons) else h) for h in _COMPARISON_HEADER]
    return _fit_table(header, rows, text_column=7, below=True, shared=not any(c.reason for c in comparisons))


def to_text(report: Report) -> str:
    """The report as aligned plain-text tables for a terminal (``abtest analyze``), every line
    within ``WIDTH`` columns: sentences wrap, each comparison table names its method below itself,
    and a table still too wide is condensed as ``_fit_table`` says."""
    kind = "" if report.kind == "experiment" else f"{report.kind}, "
    out = [*_wrap(f"{report.experiment}  ({kind}{report.status}, {report.analysis} analysis, alpha {report.alpha})"),
           "", *_wrap(report.verdict, hanging=""), ""]
    units = ", ".join(f"{k} {v:,}" for k, v in report.units.items())
    out += _wrap(f"units: {units}")
    if any(report.excluded.values()):
        out += _wrap("excluded: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report.excluded.items() if v))
    if report.before_exposure:
        out += _wrap("left out, stamped before the unit's first exposure: "
                     + ", ".join(f"{e} {n:,}" for e, n in sorted(report.before_exposure.items())))
    srm = report.srm
    srm_text = srm.reason or f"p = {srm.p_value:.3g}" + ("  ALARM: the split is off the weights" if srm.alarm else "")
    out += _wrap(f"sample ratio ({srm.method}): {srm_text}")
    if report.power.target_n_per_variant:
        out += _wrap(f"planned: {report.power.target_n_per_variant:,} units per variant, "
                     f"{(report.power.progress or 0):.0%} reached")
    if report.breakdown is not None:
        out += ["", *_wrap(f"by {report.breakdown.by} ({report.breakdown.method})", hanging="    ")]
        if report.breakdown.message:
            out += _wrap(report.breakdown.message)
        for segment in report.breakdown.segments:
            alarm = "  ALARM: the split is off the weights" if segment.srm.alarm else ""
            out += _wrap(f"{segment.segment}: " + ", ".join(f"{k} {v:,}" for k, v in segment.units.items()) + alarm,
                         indent="  ", hanging="      ")
    for metric in report.metrics:
        head = f"{metric.name}  [{metric.type}{', primary' if metric.primary else ''}]"
        about = f"value: {metric.unit}; {metric.method}"
        out += ["", f"{head}  {about}"] if len(head) + 2 + len(about) <= WIDTH else ["", *_wrap(head),
                                                                                   *_wrap(about, "  ", "  ")]
        if metric.reason:
            out += _wrap(f"no result: {metric.reason}")
            continue
        out += _fit_table(["variant", "n", "value", "95% CI" if report.alpha == 0.05 else "CI", "note"],
                          [[v.variant, f"{v.n:,}", _fmt(v.value, metric.unit), _fmt_ci(v.ci, metric.unit),
                            v.reason or ""] for v in metric.variants], text_column=4)
        if metric.comparisons:
            out.append("")
            out += _comparison_table(metric, metric.comparisons)
        if metric.segments:
            out += ["", *_wrap(f"by {report.breakdown.by if report.breakdown else 'segment'} (exploratory; p adj.: "
                               "Holm across segments)")]
            out += _comparison_table(metric, tuple(c for s in metric.segments for c in s.comparisons),
                                     [f"{s.segment}: " for s in metric.segments for _c in s.comparisons]) or \
                ["no comparison in any segment"]
    if report.details is not None and hasattr(report.details, "to_text"):
        out.append("")
        for line in report.details.to_text():
            indent = line[:len(line) - len(line.lstrip())]
            out += _wrap(line.strip(), indent) if len(line) > WIDTH else [line]
    return "\n".join(out) + "\n"
