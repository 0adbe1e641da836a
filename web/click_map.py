"""Where a first-click test's participants clicked first for one task on one design: a heat map
over the screen's image, each click as a mark and each target outlined.

Inline SVG in the image's own pixels (``viewBox="0 0 width height"``), so clicks and targets,
stored in image pixels, are drawn where they were without any conversion, and the whole scales
to its column. The density is a Gaussian kernel density on a coarse grid (numpy), coloured
with a matplotlib colormap into a small PNG that the SVG stretches over the image; the browser
smooths the upscaling. Like every chart of :mod:`web.charts` it carries ``role="img"`` and an
``aria-label`` that says what it shows; hits and misses differ by shape (a dot, a cross), not
only by colour.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from abtest.studies.ia import ClickAttempt, Rect, Screen
from web.charts import _LOCK

GRID = 200  # cells on the density grid's long side: enough for a smooth blur, a few kB of PNG
BANDWIDTH = 0.025  # of the image's diagonal
LOW = 0.08  # density (of the peak) below which the overlay is fully transparent
MAX_ALPHA = 0.8
COLOUR_FROM = 0.3  # where on the colormap the lowest visible density starts (its palest end is lost on white)
COLORMAP = "YlOrRd"  # light to dark red: "hotter" reads as more clicks, and it is ordered in lightness
HIT = "#1a7f37"  # app.css --abtest-good
MISS = "#b42318"  # app.css --abtest-bad
TARGET = "#111111"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def grid_size(width: int, height: int) -> tuple[int, int]:
    """The density grid's (columns, rows): the image's proportions, at most GRID on the long
    side and never finer than the image."""
    scale = min(1.0, GRID / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def density(width: int, height: int, points: Sequence[tuple[float, float]]) -> Any:
    """Gaussian kernel density of ``points`` at the centre of each grid cell, scaled so the peak
    is 1 (rows top to bottom); the kernel is separable, so it is two small matrix products."""
    import numpy as np

    columns, rows = grid_size(width, height)
    xs = np.array([p[0] for p in points], dtype=float)
    ys = np.array([p[1] for p in points], dtype=float)
    h = BANDWIDTH * math.hypot(width, height) or 1.0
    cx = (np.arange(columns) + 0.5) * (width / columns)
    cy = (np.arange(rows) + 0.5) * (height / rows)
    kx = np.exp(-0.5 * ((cx[:, None] - xs[None, :]) / h) ** 2)  # columns × clicks
    ky = np.exp(-0.5 * ((cy[:, None] - ys[None, :]) / h) ** 2)  # rows × clicks
    grid = ky @ kx.T
    peak = grid.max()
    return grid / peak if peak > 0 else grid


@lru_cache(maxsize=1)
def _lut() -> Any:
    """The colormap as a 256 × 4 table, read once (matplotlib's state is shared, hence the lock)."""
    import numpy as np

    with _LOCK:
        import matplotlib

        return np.asarray(matplotlib.colormaps[COLORMAP](np.linspace(0.0, 1.0, 256)))


def _overlay_png(grid: Any) -> bytes:
    """The density as an RGBA PNG: colour from the colormap, transparent where it is low."""
    import numpy as np
    from PIL import Image

    level = np.clip((grid - LOW) / (1 - LOW), 0.0, 1.0)
    rgba = _lut()[np.round((COLOUR_FROM + (1 - COLOUR_FROM) * level) * 255).astype(int)]
    rgba[..., 3] = level ** 0.6 * MAX_ALPHA
    buffer = io.BytesIO()
    Image.fromarray((rgba * 255).round().astype(np.uint8), "RGBA").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _cross(x: float, y: float, r: float) -> str:
    """The points of an × centred on (x, y): a plus sign of arm ``1.15 r`` turned 45°."""
    arm, half = 1.15 * r, 0.38 * r
    plus = [(-half, -arm), (half, -arm), (half, -half), (arm, -half), (arm, half), (half, half), (half, arm),
            (-half, arm), (-half, half), (-arm, half), (-arm, -half), (-half, -half)]
    root = math.sqrt(0.5)
    return " ".join(f"{x + (px - py) * root:.1f},{y + (px + py) * root:.1f}" for px, py in plus)


def click_map(image_url: str, screen: Screen, clicks: Sequence[ClickAttempt]) -> str:
    """The heat map of one task's first clicks on one design's screen (see :func:`_click_map`);
    ``image_url`` is where the page serves the screen's image. Drawn once per distinct input."""
    return _click_map(json.dumps({"url": image_url, "screen": screen.to_dict(),
                                  "clicks": [[c.x, c.y, c.duration_ms, c.success] for c in clicks]}))


@lru_cache(maxsize=32)
def _click_map(encoded: str) -> str:
    """The image, the click density over it (when anyone clicked), each target as a dashed
    outline, and each click on top: a green dot with a white outline on a target, a red ×
    elsewhere, with its position and time in a tooltip."""
    data: dict[str, Any] = json.loads(encoded)
    width, height = int(data["screen"]["width"]), int(data["screen"]["height"])
    targets = [Rect(*map(float, t)) for t in data["screen"]["targets"]]
    clicks = [ClickAttempt(float(x), float(y), float(ms), bool(ok)) for x, y, ms, ok in data["clicks"]]
    diagonal = math.hypot(width, height)
    hits = sum(1 for c in clicks if c.success)
    areas = f"{len(targets)} target area{'' if len(targets) == 1 else 's'} outlined"
    if clicks:
        who = f"{len(clicks)} participant{'' if len(clicks) == 1 else 's'}"
        label = f"First clicks of {who}: {hits} on a target ({hits / len(clicks):.0%}); {areas}."
    else:
        label = f"No first clicks yet; {areas}."
    parts = [(f'<image href="{_esc(data["url"])}" x="0" y="0" width="{width}" height="{height}" '
              f'preserveAspectRatio="none"/>')]
    if clicks:
        png = _overlay_png(density(width, height, [(c.x, c.y) for c in clicks]))
        parts.append(f'<image class="density" href="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" '
                     f'x="0" y="0" width="{width}" height="{height}" preserveAspectRatio="none"/>')
    line = max(1.0, 0.003 * diagonal)
    for t in targets:
        parts.append(f'<rect class="target" x="{t.x:g}" y="{t.y:g}" width="{t.width:g}" height="{t.height:g}" '
                     f'fill="none" stroke="{TARGET}" stroke-width="{line:.1f}" '
                     f'stroke-dasharray="{line * 4:.1f} {line * 2.5:.1f}"/>')
    r = max(2.0, 0.0075 * diagonal)
    outline = f'stroke="white" stroke-width="{max(0.6, r * 0.3):.1f}"'
    for c in clicks:
        tip = (f"{'on a target' if c.success else 'missed'} at ({c.x:.0f}, {c.y:.0f}) after "
               f"{c.duration_ms / 1000:.1f} s")
        if c.success:
            parts.append(f'<circle class="click hit" cx="{c.x:.1f}" cy="{c.y:.1f}" r="{r:.1f}" fill="{HIT}" {outline}>'
                         f'<title>{_esc(tip)}</title></circle>')
        else:
            parts.append(f'<polygon class="click miss" points="{_cross(c.x, c.y, r)}" fill="{MISS}" {outline}>'
                         f'<title>{_esc(tip)}</title></polygon>')
    text = _esc(label)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart click-map" role="img" aria-label="{text}" '
            f'viewBox="0 0 {width} {height}" width="100%" style="max-width: {width}px">'
            f'<title>{text}</title>{"".join(parts)}</svg>')
