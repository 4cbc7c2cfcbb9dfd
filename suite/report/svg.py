"""Line panels on a shared x axis, written as SVG text straight from numpy arrays.

Every run page carries a sensor timeline. Drawn through matplotlib it cost ~0.3 s a page
(figure, constrained layout, savefig): most of a cold render of a large store. The same
picture (stacked panels, phase bands, ticks, grid, legends) written here costs a few ms.
Deterministic: coordinates are rounded to 0.01 pt, nothing depends on time or process.
Text is escaped (channel names come from devices) and kept as text, so pages stay
searchable. No element ids, so charts never clash on a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape
from matplotlib.ticker import MaxNLocator

WIDTH = 662.4  # pt, as the matplotlib charts (9.2 in)
PANEL_H = 100.0
GAP = 12.0
FONT = 9.0
SMALL = 7.0
CHAR_W = 0.58  # mean glyph width in em (DejaVu Sans), to reserve room for labels
GRID = 'stroke="#b0b0b0" stroke-opacity="0.3" stroke-width="0.8"'
FAMILY = "DejaVu Sans, Verdana, sans-serif"


@dataclass(frozen=True)
class Line:
    x: np.ndarray
    y: np.ndarray
    color: str
    label: str
    dashed: bool = False


@dataclass(frozen=True)
class Panel:
    ylabel: str
    lines: Sequence[Line]
    legend: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded span of x across every panel (a run phase)."""

    label: str
    start: float
    end: float
    color: str


def _w(s: str, size: float = FONT) -> float:
    return len(s) * size * CHAR_W


def _n(v: float) -> str:
    """A coordinate: two decimals, no '-0'."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def ticks(lo: float, hi: float, nbins: int) -> tuple[list[float], list[str]]:
    """Round tick values within [lo, hi] and their labels, all with the same decimals."""
    values = [float(v) for v in MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
              if lo - 1e-9 * abs(hi - lo) <= v <= hi + 1e-9 * abs(hi - lo)]
    if max((abs(v) for v in values), default=0) >= 1e6:
        return values, [f"{v:.3g}" for v in values]
    step = values[1] - values[0] if len(values) > 1 else 1.0
    decimals = next((d for d in range(7) if abs(round(step, d) - step) <= 1e-9 * abs(step)), 6)
    labels = []
    for v in values:
        s = f"{v:.{decimals}f}"
        labels.append(s.lstrip("-") if float(s) == 0 else s)
    return values, labels


def _limits(values: list[np.ndarray]) -> tuple[float, float]:
    """Data range plus a 5% margin each side (matplotlib's default); a flat series gets room."""
    finite = [v[np.isfinite(v)] for v in values]
    finite = [v for v in finite if len(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(float(v.min()) for v in finite), max(float(v.max()) for v in finite)
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1.0):
        pad = abs(lo) * 0.05 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def _polylines(x: np.ndarray, y: np.ndarray) -> list[str]:
    """`points` attributes, one per run of finite values (a gap in the data breaks the line)."""
    ok = np.isfinite(x) & np.isfinite(y)
    out, start = [], None
    for i in range(len(ok) + 1):
        if i < len(ok) and ok[i]:
            start = i if start is None else start
        elif start is not None:
            out.append(" ".join(f"{_n(a)},{_n(b)}" for a, b in zip(x[start:i], y[start:i], strict=True)))
            start = None
    return out


def _text(x: float, y: float, s: str, *, anchor: str = "start", size: float = FONT, baseline: str = "auto",
          extra: str = "") -> str:
    base = f' dominant-baseline="{baseline}"' if baseline != "auto" else ""
    return (f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}"{base}{extra}>'
            f"{escape(s)}</text>")


def stacked_panels(panels: Sequence[Panel], xlabel: str, bands: Sequence[Band] = (), title: str = "") -> Markup:
    """Panels one above the other sharing the x axis, bands shaded behind every panel."""
    x_lo, x_hi = _limits([*(ln.x for p in panels for ln in p.lines),
                          *(np.array([b.start, b.end]) for b in bands)])
    y_info = []
    for p in panels:
        lo, hi = _limits([ln.y for ln in p.lines])
        y_info.append((lo, hi, *ticks(lo, hi, 5)))
    tick_w = max((_w(s) for *_, labels in y_info for s in labels), default=0.0)
    left = 8 + max(_w(p.ylabel) for p in panels) + 8 + tick_w + 6
    right = 14.0
    top = 26.0 if bands else 10.0
    bottom = 38.0
    height = top + len(panels) * PANEL_H + (len(panels) - 1) * GAP + bottom
    plot_w = WIDTH - left - right
    xt, xl = ticks(x_lo, x_hi, 8)

    def sx(v):
        return left + (np.asarray(v, dtype=float) - x_lo) / (x_hi - x_lo) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(WIDTH)}pt" height="{_n(height)}pt" '
        f'viewBox="0 0 {_n(WIDTH)} {_n(height)}" role="img" aria-label="{escape(title)}" '
        f'font-family="{FAMILY}">',
        f'<rect width="{_n(WIDTH)}" height="{_n(height)}" fill="#ffffff"/>',
    ]
    if bands:  # the phase legend, top right: "phases" then a swatch and a name per phase
        names = sorted({(b.label, b.color) for b in bands})
        x = WIDTH - right
        for name, color in reversed(names):
            x -= _w(name)
            out.append(_text(x, 14, name))
            x -= 14
            out.append(f'<rect x="{_n(x)}" y="6" width="10" height="10" fill="{color}" fill-opacity="0.4"/>')
            x -= 10
        out.append(_text(x, 14, "phases", anchor="end", extra=' fill="#444444"'))
    for i, (p, (y_lo, y_hi, yt, yl)) in enumerate(zip(panels, y_info, strict=True)):
        y0 = top + i * (PANEL_H + GAP)  # the panel's top edge

        def sy(v, y0=y0, y_lo=y_lo, y_hi=y_hi):
            return y0 + PANEL_H - (np.asarray(v, dtype=float) - y_lo) / (y_hi - y_lo) * PANEL_H

        out.append("<g>")
        for b in bands:
            x1, x2 = float(sx(max(b.start, x_lo))), float(sx(min(b.end, x_hi)))
            out.append(f'<rect x="{_n(x1)}" y="{_n(y0)}" width="{_n(max(x2 - x1, 0))}" height="{_n(PANEL_H)}" '
                       f'fill="{b.color}" fill-opacity="0.25"/>')
        for v, s in zip(yt, yl, strict=True):
            y = float(sy(v))
            out.append(f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{_n(y)}" y2="{_n(y)}" {GRID}/>')
            out.append(f'<line x1="{_n(left - 3.5)}" x2="{_n(left)}" y1="{_n(y)}" y2="{_n(y)}" stroke="#000000" '
                       'stroke-width="0.8"/>')
            out.append(_text(left - 6, y, s, anchor="end", baseline="central"))
        for v in xt:
            x = float(sx(v))
            out.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{_n(y0)}" y2="{_n(y0 + PANEL_H)}" {GRID}/>')
            out.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{_n(y0 + PANEL_H)}" y2="{_n(y0 + PANEL_H + 3.5)}" '
                       'stroke="#000000" stroke-width="0.8"/>')
        for ln in p.lines:
            dash = ' stroke-dasharray="4.4,1.9"' if ln.dashed else ""
            for pts in _polylines(sx(ln.x), sy(ln.y)):
                out.append(f'<polyline points="{pts}" fill="none" stroke="{ln.color}" stroke-width="1.1" '
                           f'stroke-linejoin="round"{dash}/>')
        out.append(f'<path d="M {_n(left)} {_n(y0)} V {_n(y0 + PANEL_H)} H {_n(left + plot_w)}" fill="none" '
                   'stroke="#000000" stroke-width="0.8"/>')
        out.append(_text(left - 12 - tick_w, y0 + PANEL_H / 2, p.ylabel, anchor="end", baseline="central"))
        if p.legend:  # inside the panel, top left, up to four entries a row
            col_w = max(_w(ln.label, SMALL) for ln in p.lines) + 26
            for k, ln in enumerate(p.lines):
                lx, ly = left + 8 + (k % 4) * col_w, y0 + 9 + (k // 4) * 10
                dash = ' stroke-dasharray="4.4,1.9"' if ln.dashed else ""
                out.append(f'<line x1="{_n(lx)}" x2="{_n(lx + 16)}" y1="{_n(ly)}" y2="{_n(ly)}" stroke="{ln.color}" '
                           f'stroke-width="1.1"{dash}/>')
                out.append(_text(lx + 20, ly, ln.label, size=SMALL, baseline="central"))
        out.append("</g>")
    axis_y = top + len(panels) * PANEL_H + (len(panels) - 1) * GAP
    for v, s in zip(xt, xl, strict=True):
        out.append(_text(float(sx(v)), axis_y + 14, s, anchor="middle"))
    out.append(_text(left + plot_w / 2, axis_y + 31, xlabel, anchor="middle"))
    out.append("</svg>")
    return Markup("\n".join(out))

