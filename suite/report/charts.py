"""The report's charts: matplotlib Figures (object API, no pyplot) as inline SVG.

SVGs are deterministic: a fixed `svg.hashsalt` per chart (which also keeps element ids
unique across the charts of one page), no date metadata, text kept as text so the page
stays searchable. Colours are the Okabe-Ito palette, paired with marker shapes so series
stay apart in greyscale and for colour-blind readers.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib
import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from suite.analysis.throttling import PERSIST_WINDOWS, THROTTLE_FRACTION, initial_tps, throttle_drop
from suite.core.schema import (
    CH_CPU_UTIL_PCT,
    CH_CURRENT_A,
    CH_DECODE_TPS_WINDOW,
    CH_PHASE_PREFIX,
    CH_POWER_W,
    CH_RSS_BYTES,
    CH_TEMP_BATTERY,
    CH_THERMAL_STATUS,
    CH_VOLTAGE_V,
    Outcome,
    Phase,
    ch_cpufreq_cur,
    ch_cpufreq_max,
    ch_temp_hal,
    ch_temp_tz,
)
from suite.report import svg
from suite.report.tables import (
    DECODE_TPS,
    J_PER_TOK_DECODE,
    J_PER_TOK_PREFILL,
    LAT_P50,
    LAT_P90,
    LAT_P99,
    PEAK_RSS,
    PREFILL_TPS,
    ROOFLINE_DECODE,
    ROOFLINE_PREFILL,
    TOKENS_PER_J,
    TTFT_S,
    fmt_params,
    metric_value,
    model_label,
    series_key,
    series_labels,
)

#: Okabe-Ito, the colour-blind-safe palette (yellow last: weak on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PHASE_COLOURS = {
    Phase.WARMUP.value: "#BBBBBB",
    Phase.PREFILL.value: "#E69F00",
    Phase.DECODE.value: "#56B4E9",
    Phase.IDLE.value: "#009E73",
    Phase.ASR.value: "#CC79A7",
}
_RC = {
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
MAX_POINTS = 800  # per timeline line; longer series are reduced to a min/max envelope


def text(label: object) -> str:
    """A device string made safe for matplotlib: no mathtext, no '_'-hidden legend entries."""
    s = str(label).replace("$", r"\$")
    return " " + s if s.startswith("_") else s


@contextmanager
def _style(salt: str = "") -> Iterator[None]:
    """The charts' rcParams; `salt` (the chart's name) matters when saving, for the SVG's ids."""
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"edgebench-{salt}"}):
        yield


def to_svg(fig: Figure, name: str) -> Markup:
    """Inline SVG markup. matplotlib escapes every text it writes, so marking it safe is sound.

    Every element id gets the chart's name as prefix: matplotlib numbers ids per figure
    (figure_1, patch_1...), and ids must be unique across the charts of one page.
    """
    buf = io.StringIO()
    with _style(name):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML declaration and DOCTYPE
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    return Markup(svg)


# --- metric vs model size --------------------------------------------------------------


def _series(records: list[dict]) -> dict[tuple, dict]:
    """Colour, marker and label per device+runtime series, in first-run order."""
    labels = series_labels(records)
    return {
        key: {"label": label, "color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)]}
        for i, (key, label) in enumerate(labels.items())
    }


def _points(records: list[dict], name: str, scale: float = 1.0) -> dict[tuple, list[tuple]]:
    """(params, median, err_low, err_high, outcome) per series; CI whiskers clipped at the median."""
    out: dict[tuple, list[tuple]] = {}
    for r in records:
        value, params = metric_value(r, name), (r.get("model") or {}).get("params")
        if value is None or not params:
            continue
        ci = r["metrics"][name].get("ci95") or [value, value]
        lo, hi = max(0.0, value - ci[0]), max(0.0, ci[1] - value)
        point = (params, value * scale, lo * scale, hi * scale, str(r.get("outcome")))
        out.setdefault(series_key(r), []).append(point)
    return {k: sorted(v) for k, v in out.items()}


def _params_axis(ax, params: list[float]) -> None:
    ax.set_xscale("log")
    _log_axis(ax, "x", marks=params, fmt=fmt_params)
    ax.set_xlabel("model parameters (log scale)")


#: Mantissas of the round values a log axis is labelled with, finest set first.
_ROUND_SETS = ((1.0, 2.0, 3.0, 5.0), (1.0, 2.0, 5.0), (1.0,))
_MAX_ROUND_TICKS = 6
_MIN_GAP_DECADES = 0.15  # a round tick this close to a marked value would overlap its label


def _round_values(lo: float, hi: float, mantissas: tuple[float, ...]) -> list[float]:
    """The values m x 10^k (m in `mantissas`) within [lo, hi]."""
    eps = 1e-9
    return [v for k in range(math.floor(math.log10(lo)) - 1, math.floor(math.log10(hi)) + 1)
            for m in mantissas if lo * (1 - eps) <= (v := m * 10.0**k) <= hi * (1 + eps)]


def _plain(v: float) -> str:
    return f"{v:g}"


def _log_axis(ax, which: str, marks: list[float] = (), fmt=_plain) -> None:
    """Label a log axis so it can be read: at least two labelled ticks, as plain numbers.

    matplotlib labels only powers of ten, so data spanning less than a decade (one or two
    runs) showed a bare axis. With two or more `marks` (model sizes) the ticks are the marks;
    with one, round values around it join it; with none, round values (1, 2, 3, 5 x 10^k),
    the limits widened to the enclosing round values when fewer than two fall inside. Call
    it after everything is plotted: it reads the final data limits.
    """
    get_lim, set_lim = getattr(ax, f"get_{which}lim"), getattr(ax, f"set_{which}lim")
    axis = getattr(ax, f"{which}axis")
    marks = sorted(set(marks))
    lo, hi = sorted(get_lim())
    if len(marks) >= 2:
        ticks = marks
    elif marks:
        m = marks[0]
        lo, hi = m / 3, m * 3  # every point sits at m: a band of a decade around it
        set_lim(lo, hi)
        ticks = sorted([m, *(v for v in _round_values(lo, hi, _ROUND_SETS[1])
                             if abs(math.log10(v / m)) >= _MIN_GAP_DECADES)])
    else:
        ticks = next((t for mant in _ROUND_SETS if 2 <= len(t := _round_values(lo, hi, mant)) <= _MAX_ROUND_TICKS),
                     None)
        if ticks is None:
            ticks = _round_values(lo, hi, _ROUND_SETS[-1])
        if len(ticks) < 2:  # widen to the enclosing round values: both become labelled ticks
            around = _round_values(lo / 10, hi * 10, _ROUND_SETS[0])
            lo = max(v for v in around if v <= lo * (1 + 1e-9))
            hi = min(v for v in around if v >= hi * (1 - 1e-9) and v > lo)
            set_lim(lo, hi)
            ticks = _round_values(lo, hi, _ROUND_SETS[0])
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    axis.set_minor_formatter(NullFormatter())
    if marks:
        axis.set_minor_locator(NullLocator())


def _plot_vs_params(ax, series: dict, points: dict, ylabel: str, log_y: bool = False) -> list[float]:
    """Completed runs joined by a line; other outcomes as hollow markers named by outcome."""
    for key, pts in points.items():
        s = series[key]
        done = [p for p in pts if p[4] == Outcome.COMPLETED]
        if done:
            x, y, lo, hi, _ = (list(c) for c in zip(*done, strict=True))
            ax.errorbar(x, y, yerr=[lo, hi], color=s["color"], marker=s["marker"], capsize=3,
                        linewidth=1.2, markersize=5, label=text(s["label"]))
        for x, y, _, _, outcome in (p for p in pts if p[4] != Outcome.COMPLETED):
            ax.plot([x], [y], marker=s["marker"], color=s["color"], markerfacecolor="none", markersize=7)
            ax.annotate(text(outcome), (x, y), xytext=(6, 0), textcoords="offset points", va="center",
                        color=s["color"], fontsize=8)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")  # labelled by _log_axis once everything is plotted
    else:
        ax.set_ylim(bottom=0)
    return [p[0] for pts in points.values() for p in pts]


def _legend(fig: Figure, series: dict, used: set) -> None:
    handles = [
        Line2D([], [], color=s["color"], marker=s["marker"], label=text(s["label"]))
        for key, s in series.items()
        if key in used
    ]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(2, len(handles)), frameon=False)


def _panel_vs_params(ax, series: dict, records: list[dict], panel: tuple, log_y: bool = False) -> set:
    """One (metric, y label, scale, title) panel; returns the series it drew."""
    name, ylabel, scale, title = panel
    points = _points(records, name, scale)
    ax.set_title(title)
    if not points:
        reasons = sorted({str((r.get("unavailable") or {}).get(name)) for r in records
                          if (r.get("unavailable") or {}).get(name)})
        msg = "not measured in any run"
        if len(reasons) == 1:  # one shared reason says why, wrapped to the panel
            msg = "unavailable:\n" + "\n".join(textwrap.wrap(reasons[0], 42)[:5])
        elif reasons:
            msg = "unavailable in every run\n(each run's reason is in the table)"
        ax.text(0.5, 0.5, text(msg), ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.set_axis_off()
        return set()
    _params_axis(ax, _plot_vs_params(ax, series, points, ylabel, log_y=log_y))
    if log_y:
        _log_axis(ax, "y")
    return set(points)


def _percentiles_vs_params(ax, series: dict, records: list[dict]) -> set:
    """Per-token decode latency: p50 marker, a bar up to p99, ticks at p90 and p99."""
    used, params = set(), []
    for r in records:
        x = (r.get("model") or {}).get("params")
        p50, p90, p99 = (metric_value(r, n) for n in (LAT_P50, LAT_P90, LAT_P99))
        if p50 is None or not x:
            continue
        s = series[series_key(r)]
        ms = [v * 1e3 for v in (p50, p90, p99) if v is not None]
        ax.vlines(x, min(ms), max(ms), color=s["color"], linewidth=1.2)
        ax.plot([x], [p50 * 1e3], marker=s["marker"], color=s["color"], markersize=5)
        for v, marker in ((p90, "_"), (p99, "x")):
            if v is not None:
                ax.plot([x], [v * 1e3], marker=marker, color=s["color"], markersize=8)
        params.append(x)
        used.add(series_key(r))
    ax.set_title("Decode per-token latency: p50 (marker), p90 (–), p99 (×)")
    ax.set_ylabel("per-token latency (ms)")
    ax.set_ylim(bottom=0)
    _params_axis(ax, params)
    return used


def _panels_figure(records: list[dict], panels: list[tuple], log_y: bool = False) -> Figure | None:
    """Side-by-side metric-vs-model-size panels, one line per device+runtime series."""
    if not any(_points(records, p[0]) for p in panels):
        return None
    series = _series(records)
    with _style():
        fig = Figure(figsize=(4.6 * len(panels), 3.6), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        drawn = [_panel_vs_params(ax, series, records, p, log_y) for ax, p in zip(axes, panels, strict=True)]
        used = set().union(*drawn)
        _legend(fig, series, used)
    return fig


def _svg_or_none(fig: Figure | None, name: str) -> Markup | None:
    return None if fig is None else to_svg(fig, name)


def throughput_figure(records: list[dict]) -> Figure | None:
    """Prefill and decode tok/s vs params, both axes log, median with 95% CI whiskers."""
    return _panels_figure(records, [
        (PREFILL_TPS, "prefill throughput (tok/s)", 1.0, "Prefill: median, 95% CI"),
        (DECODE_TPS, "decode throughput (tok/s)", 1.0, "Decode: median, 95% CI"),
    ], log_y=True)


def throughput_chart(records: list[dict], name: str = "throughput") -> Markup | None:
    return _svg_or_none(throughput_figure(records), name)


def energy_chart(records: list[dict], name: str = "energy") -> Markup | None:
    """Tokens per joule and joules per token vs params, where measured."""
    return _svg_or_none(_panels_figure(records, [
        (TOKENS_PER_J, "decode tokens per joule (tok/J)", 1.0, "Decode efficiency (higher is better)"),
        (J_PER_TOK_PREFILL, "prefill energy (J/tok)", 1.0, "Prefill J/token (lower is better)"),
        (J_PER_TOK_DECODE, "decode energy (J/tok)", 1.0, "Decode J/token (lower is better)"),
    ], log_y=True), name)


_TTFT_PANEL = (TTFT_S, "time to first token (s)", 1.0, "TTFT: median, 95% CI")


def latency_chart(records: list[dict]) -> Markup | None:
    """TTFT with its CI; beside it the per-token decode latency percentiles when measured."""
    if not any(metric_value(r, LAT_P50) is not None for r in records):
        return _svg_or_none(_panels_figure(records, [_TTFT_PANEL]), "latency")
    series = _series(records)
    with _style():
        fig = Figure(figsize=(9.2, 3.6), layout="constrained")
        ax_ttft, ax_lat = fig.subplots(1, 2)
        used = _panel_vs_params(ax_ttft, series, records, _TTFT_PANEL)
        used |= _percentiles_vs_params(ax_lat, series, records)
        _legend(fig, series, used)
    return to_svg(fig, "latency")


def memory_chart(records: list[dict], name: str = "memory", ram_lines: bool = False) -> Markup | None:
    return _svg_or_none(memory_figure(records, ram_lines), name)


def memory_figure(records: list[dict], ram_lines: bool = False) -> Figure | None:
    """Peak RSS against model size, with the model file size and (optionally) each device's RAM."""
    mib = 1 / 2**20
    series = _series(records)
    points = _points(records, PEAK_RSS, mib)
    if not points:
        return None
    with _style():
        fig = Figure(figsize=(9.2, 3.8), layout="constrained")
        ax = fig.subplots()
        ax.set_title("Peak RSS vs model size (hollow: run did not complete)")
        params = _plot_vs_params(ax, series, points, "peak RSS (MiB, log scale)", log_y=True)
        files = sorted({(m["params"], m["bytes"]) for r in records
                        if (m := r.get("model") or {}).get("params") and m.get("bytes")})
        if files:
            (line,) = ax.plot([p for p, _ in files], [b * mib for _, b in files], linestyle=":",
                              marker="_", markersize=14, color="#666666", label="model file size")
            ax.legend(handles=[line], loc="upper left", frameon=False)
        if ram_lines:
            rams = {}
            for r in records:
                ram = (r.get("device") or {}).get("ram_bytes")
                if ram and series_key(r) in points:
                    rams.setdefault(ram, series[series_key(r)]["color"])
            for ram, color in sorted(rams.items()):
                ax.axhline(ram * mib, color=color, linestyle="--", linewidth=1)
                ax.annotate(f"device RAM {ram / 2**30:.1f} GiB", (0.99, ram * mib), xycoords=("axes fraction", "data"),
                            va="bottom", ha="right", fontsize=8, color=color)
        _params_axis(ax, params + [p for p, _ in files])
        _log_axis(ax, "y")
        _legend(fig, series, set(points))
    return fig


def roofline_chart(records: list[dict], name: str = "roofline") -> Markup | None:
    """Fraction of the roofline bound reached, one bar per run (decode; prefill when measured)."""
    bars = []
    series = _series(records)
    for r in records:
        for name, phase in ((ROOFLINE_DECODE, "decode"), (ROOFLINE_PREFILL, "prefill")):
            v = metric_value(r, name)
            if v is not None:
                s = series[series_key(r)]
                label = f"{model_label(r.get('model') or {})} {phase} · {s['label']}"
                bars.append((text(label), v, s["color"], phase == "prefill"))
    if not bars:
        return None
    with _style(name):
        fig = Figure(figsize=(9.2, 0.9 + 0.32 * len(bars)), layout="constrained")
        ax = fig.subplots()
        y = np.arange(len(bars))
        ax.barh(y, [b[1] for b in bars], color=[b[2] for b in bars],
                hatch=["//" if b[3] else "" for b in bars], edgecolor="white")
        for yi, b in zip(y, bars, strict=True):
            ax.text(b[1], yi, f" {b[1]:.3f}", va="center")
        ax.set_yticks(y, [b[0] for b in bars])
        ax.invert_yaxis()
        ax.axvline(1.0, color="#000000", linestyle="--", linewidth=1)
        ax.set_xlim(0, max(1.1, max(b[1] for b in bars) * 1.15))
        ax.set_xlabel("fraction of the roofline bound (1.0 = at the bound)")
        ax.grid(axis="y", visible=False)
        return to_svg(fig, name)


def roofline_scatter(records: list[dict], name: str = "roofline-scatter") -> Markup | None:
    """Each run as a fraction of its bounds vs model size: decode (bandwidth), prefill (compute)."""
    panels = [
        (ROOFLINE_DECODE, "fraction of the bandwidth bound", 1.0, "Decode vs memory-bandwidth bound"),
        (ROOFLINE_PREFILL, "fraction of the compute bound", 1.0, "Prefill vs compute bound"),
    ]
    if not any(_points(records, p[0]) for p in panels):
        return None
    series = _series(records)
    with _style(name):
        fig = Figure(figsize=(9.2, 3.6), layout="constrained")
        axes = fig.subplots(1, 2)
        used = set()
        for ax, p in zip(axes, panels, strict=True):
            used |= _panel_vs_params(ax, series, records, p)
            if ax.axison:
                ax.axhline(1.0, color="#000000", linestyle="--", linewidth=1)
                ax.set_ylim(0, max(1.1, ax.get_ylim()[1]))
        _legend(fig, series, used)
        return to_svg(fig, name)


def beyond_ram_points(records: list[dict]) -> dict[tuple, list[dict]]:
    """Per series, the completed runs that carry what the beyond-RAM chart needs: the model's bytes, the
    device's RAM, decode tok/s, and whether the run was offloaded (known or not) with its bounds."""
    out: dict[tuple, list[dict]] = {}
    for r in records:
        model, dev, roof = r.get("model") or {}, r.get("device") or {}, r.get("roofline") or {}
        tps = metric_value(r, "decode_tps")
        if r.get("outcome") != Outcome.COMPLETED or not tps or not model.get("bytes") or not dev.get("ram_bytes") \
                or "paging" not in r:
            continue
        out.setdefault(series_key(r), []).append({
            "x": model["bytes"] / dev["ram_bytes"], "tps": tps, "offloaded": (r.get("paging") or {}).get("offloaded"),
            "dram": roof.get("decode_bound_tps"), "storage": roof.get("offload_bound_tps")})
    return out


def beyond_ram_chart(records: list[dict], name: str = "beyond-ram") -> Markup | None:
    """Decode tok/s against the model's size over the device's RAM (1 = the RAM), each run beside its bounds:
    DRAM bandwidth (the roofline's) and, for a run that streamed its weights from storage, the offload bound.
    Drawn when some run was measured offloaded (fit --beyond-ram)."""
    points = beyond_ram_points(records)
    if not any(p["offloaded"] for pts in points.values() for p in pts):
        return None
    series = _series(records)
    with _style(name):
        fig = Figure(figsize=(9.2, 4.0), layout="constrained")
        ax = fig.subplots()
        used = set()
        for key, pts in points.items():
            s = series[key]
            used.add(key)
            pts = sorted(pts, key=lambda p: p["x"])
            ax.plot([p["x"] for p in pts], [p["tps"] for p in pts], color=s["color"], marker=s["marker"],
                    linewidth=1.2, markersize=5)
            for p in pts:
                if p["offloaded"]:
                    ax.annotate("offloaded", (p["x"], p["tps"]), xytext=(6, -2), textcoords="offset points",
                                fontsize=8, color=s["color"])
            dram = [(p["x"], p["dram"]) for p in pts if p["dram"]]
            if dram:
                ax.plot(*zip(*dram, strict=True), color=s["color"], linestyle=":", marker="_", markersize=9)
            stor = [(p["x"], p["storage"]) for p in pts if p["storage"]]
            if stor:
                ax.plot(*zip(*stor, strict=True), color=s["color"], linestyle="--", marker="v",
                        markerfacecolor="none", markersize=6)
        ax.axvline(1.0, color="#000000", linestyle="-", linewidth=1)
        ax.annotate(" the device's RAM", (1.0, 1.0), xycoords=("data", "axes fraction"), va="top", fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("model file size / device RAM")
        ax.set_ylabel("decode tok/s")
        _log_axis(ax, "x")
        _log_axis(ax, "y")
        handles = [Line2D([], [], color="#555555", linestyle=":", marker="_", label="DRAM bandwidth bound"),
                   Line2D([], [], color="#555555", linestyle="--", marker="v", markerfacecolor="none",
                          label="offload bound (DRAM + storage)")]
        _legend(fig, series, used)
        ax.legend(handles=handles, loc="lower left", fontsize=8)
        return to_svg(fig, name)


def throttle_point(t: np.ndarray, tps: np.ndarray) -> float | None:
    """The run's time to throttle as the record defines it (suite.analysis.throttling): the first of
    PERSIST_WINDOWS consecutive windows under 90% of the initial throughput (the median of the first
    three windows); None when the throughput never dropped for that long."""
    drop = throttle_drop(list(zip(t.tolist(), tps.tolist(), strict=True)), THROTTLE_FRACTION)
    return float(drop[0]) if drop else None


def sustained_chart(samples: pd.DataFrame, salt: str) -> Markup | None:
    """Windowed decode throughput and temperatures over time, the throttle point marked."""
    w = samples[samples["channel"] == CH_DECODE_TPS_WINDOW].sort_values("t_s", kind="stable")
    if len(w) < 2:
        return None
    t, v = w["t_s"].to_numpy(float), w["value"].to_numpy(float)
    temps = sorted(c for c in samples["channel"].unique() if _is_temp(c))
    at = throttle_point(t, v)
    with _style(f"sustained-{salt}"):
        fig = Figure(figsize=(9.2, 4.2), layout="constrained")
        ax_tps, ax_t = fig.subplots(2, 1, sharex=True)
        ax_tps.plot(*_thin(t, v), color=PALETTE[0], linewidth=1.3, label="decode tok/s per window")
        line = THROTTLE_FRACTION * initial_tps(list(zip(t.tolist(), v.tolist(), strict=True)))
        ax_tps.axhline(line, color="#666666", linestyle=":", linewidth=1,
                       label=f"90% of the initial throughput (throttled: {PERSIST_WINDOWS} windows under it)")
        ax_tps.set_ylabel("decode (tok/s)")
        ax_tps.set_ylim(bottom=0)
        ax_tps.set_title("Sustained decode: throughput and temperature")
        for i, ch in enumerate(temps):
            d = samples[samples["channel"] == ch].sort_values("t_s", kind="stable")
            ax_t.plot(*_thin(d["t_s"].to_numpy(float), d["value"].to_numpy(float)),
                      color=PALETTE[(i + 1) % len(PALETTE)], linewidth=1.1, label=text(_short(ch)))
        ax_t.set_ylabel("temperature (°C)")
        ax_t.set_xlabel("time since run start (s, device clock)")
        for ax in (ax_tps, ax_t):
            if at is not None:
                ax.axvline(at, color=PALETTE[5], linestyle="--", linewidth=1.2)
        if at is not None:
            ax_tps.annotate(f"throttles at {at:.0f} s", (at, line), xytext=(6, 10),
                            textcoords="offset points", color=PALETTE[5], fontsize=8)
        ax_tps.legend(loc="lower left", fontsize=7, frameon=False)
        if temps:
            ax_t.legend(loc="upper left", fontsize=7, frameon=False, ncols=min(4, len(temps)))
        else:
            ax_t.text(0.5, 0.5, "no temperature channel recorded", ha="center", va="center", transform=ax_t.transAxes)
        return to_svg(fig, f"sustained-{salt}")


# --- sensor timelines ------------------------------------------------------------------


def _is_temp(ch: str) -> bool:
    return ch == CH_TEMP_BATTERY or ch.startswith((ch_temp_hal(""), ch_temp_tz("")))


def _is_cpufreq(ch: str) -> bool:
    return ch.startswith((ch_cpufreq_cur(""), ch_cpufreq_max("")))


#: (match, y label, scale to the plotted unit), in panel order. Families (several channels
#: per panel) always get a legend: the channel name says which sensor it is.
_FAMILIES = (_is_cpufreq, _is_temp)
_PANELS = (
    (lambda c: c == CH_RSS_BYTES, "RSS (MiB)", 1 / 2**20),
    (lambda c: c == CH_CPU_UTIL_PCT, "CPU utilisation (%)", 1.0),
    (_is_cpufreq, "CPU frequency (MHz)", 1e-3),
    (_is_temp, "temperature (°C)", 1.0),
    (lambda c: c == CH_POWER_W, "power (W)", 1.0),
    (lambda c: c == CH_CURRENT_A, "current (A)", 1.0),
    (lambda c: c == CH_VOLTAGE_V, "voltage (V)", 1.0),
    (lambda c: c == CH_THERMAL_STATUS, "thermal status (0-6)", 1.0),
    (lambda c: c == CH_DECODE_TPS_WINDOW, "decode, windowed (tok/s)", 1.0),
)


def _short(ch: str) -> str:
    """A legend name inside its panel: the family prefix (and its unit) dropped."""
    for prefix, suffix in ((ch_cpufreq_cur(""), " cur"), (ch_cpufreq_max(""), " max")):
        if ch.startswith(prefix):
            return ch[len(prefix):] + suffix
    return ch.split("/", 1)[1] if _is_temp(ch) else ch


def _thin(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most ~MAX_POINTS points: per bucket keep its min and max, in time order."""
    if len(t) <= MAX_POINTS:
        return t, v
    keep = []
    for idx in np.array_split(np.arange(len(t)), MAX_POINTS // 2):
        keep += sorted({idx[np.argmin(v[idx])], idx[np.argmax(v[idx])]})
    return t[keep], v[keep]


def phase_spans(samples: pd.DataFrame) -> list[tuple[str, float, float]]:
    """(phase, start_s, end_s) from `phase/<name>` markers: 1.0 opens, 0.0 closes."""
    spans, open_at = [], {}
    end_of_run = float(samples["t_s"].max()) if len(samples) else 0.0
    marks = samples[samples["channel"].str.startswith(CH_PHASE_PREFIX)].sort_values("t_s", kind="stable")
    for ch, t, v in marks[["channel", "t_s", "value"]].itertuples(index=False):
        name = ch[len(CH_PHASE_PREFIX):]
        if v >= 0.5:
            open_at.setdefault(name, float(t))
        elif name in open_at:
            spans.append((name, open_at.pop(name), float(t)))
    spans += [(name, start, end_of_run) for name, start in open_at.items()]
    return sorted(spans, key=lambda s: (s[1], s[0]))


def by_channel(samples: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(t_s, value) per channel, each in time order (stable: equal times keep stored order)."""
    ch = samples["channel"].to_numpy(dtype=object)
    t, v = samples["t_s"].to_numpy(float), samples["value"].to_numpy(float)
    order = np.lexsort((t, ch))  # by channel, then time; lexsort is stable
    ch, t, v = ch[order], t[order], v[order]
    names, first = np.unique(ch, return_index=True)
    bounds = [*first[1:], len(ch)]
    return {str(n): (t[a:b], v[a:b]) for n, a, b in zip(names, first, bounds, strict=True)}


def timeline_chart(samples: pd.DataFrame, salt: str) -> Markup | None:
    """One panel per channel group on a shared time axis, phases shaded.

    Written as SVG directly (suite/report/svg.py): every run page has one, and matplotlib
    made it the dominant cost of a cold render. `salt` is kept for the callers' symmetry
    with the other charts; the SVG has no ids to salt.
    """
    data = by_channel(samples)
    channels = sorted(c for c in data if not c.startswith(CH_PHASE_PREFIX))
    if not channels:
        return None
    groups: list[tuple[str, float, list[str], bool]] = []
    claimed: set[str] = set()
    for match, ylabel, scale in _PANELS:
        chs = [c for c in channels if match(c)]
        if chs:
            groups.append((ylabel, scale, chs, match in _FAMILIES))
            claimed |= set(chs)
    groups += [(f"{c} (unit not in schema)", 1.0, [c], False) for c in channels if c not in claimed]
    panels = []
    for ylabel, scale, chs, family in groups:
        lines = []
        for i, ch in enumerate(chs):
            t, v = _thin(*data[ch])
            lines.append(svg.Line(t, v * scale, PALETTE[i % len(PALETTE)], _short(ch),
                                  dashed=ch.startswith(ch_cpufreq_max(""))))
        panels.append(svg.Panel(ylabel, lines, legend=family or len(chs) > 1))
    bands = [svg.Band(name, start, end, PHASE_COLOURS.get(name, "#DDDDDD"))
             for name, start, end in phase_spans(samples)]
    return svg.stacked_panels(panels, "time since run start (s, device clock)", bands,
                              title=f"sensor timeline of run {salt}")
