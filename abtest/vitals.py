"""Core Web Vitals: the names the snippet reports and the published thresholds for "good".

One table, read by event validation, the page-speed metric types, the form and the results page.
Thresholds are Google's published Web Vitals ratings (web.dev/articles/vitals, 2024): a page view
is *good* at or below ``good`` and *poor* above ``poor``; LCP, INP, FCP and TTFB are
milliseconds, CLS a unitless layout-shift score.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vital:
    name: str
    title: str
    unit: str  # "ms" or "" (CLS)
    good: float
    poor: float


VITALS_TABLE: dict[str, Vital] = {v.name: v for v in (
    Vital("LCP", "Largest Contentful Paint", "ms", 2500.0, 4000.0),
    Vital("INP", "Interaction to Next Paint", "ms", 200.0, 500.0),
    Vital("CLS", "Cumulative Layout Shift", "", 0.1, 0.25),
    Vital("FCP", "First Contentful Paint", "ms", 1800.0, 3000.0),
    Vital("TTFB", "Time to First Byte", "ms", 800.0, 1800.0),
)}
VITALS: tuple[str, ...] = tuple(VITALS_TABLE)
