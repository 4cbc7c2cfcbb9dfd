"""Energy beyond the per-phase integral: the idle baseline and what a run adds above it, and the
fuel gauge's coulomb counter as a cross-check of the integrated current.

Pure functions of samples ((t_s, channel, value) rows or a DataFrame with SAMPLE_COLUMNS);
`current_a` and `power_w` are positive while the device draws from its battery (docs/schema.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from suite.analysis.metrics import energy_j, integrate, intervals_from_samples, samples_frame
from suite.core.schema import CH_CURRENT_A, CH_POWER_W
from suite.core.stats import metric

# --- charge counter cross-check ------------------------------------------------------------


def charge_counter_check(samples, start_uah: float, end_uah: float,
                         window: tuple[float, float] | None = None) -> dict[str, float | None]:
    """The fuel gauge's own coulomb count against the integral of the sampled current.

    `current_a` is positive while discharging, so the charge drawn is +integral(I dt); the
    counter (`charge_counter`, uAh) falls by the same amount. ratio = integrated / counted;
    far from 1 over a long run means a wrong unit or a current that misses part of the draw.
    Over a short run the counter's resolution (often 1 mAh) dominates: use runs of minutes.
    """
    df = samples_frame(samples)
    c = df[df["channel"] == CH_CURRENT_A].sort_values("t_s")
    counted_uah = float(start_uah) - float(end_uah)
    if len(c) < 2:
        return {"integrated_uah": None, "counted_uah": counted_uah, "ratio": None}
    a, b = window if window else (float(c["t_s"].iloc[0]), float(c["t_s"].iloc[-1]))
    q = integrate(c["t_s"].to_numpy(), c["value"].to_numpy(), a, b)
    integrated = q * 1e6 / 3600.0 if q is not None else None
    ratio = integrated / counted_uah if integrated is not None and counted_uah else None
    return {"integrated_uah": integrated, "counted_uah": counted_uah, "ratio": ratio}


# --- idle baseline ------------------------------------------------------------------------


@dataclass(frozen=True)
class IdleBaseline:
    power_w: float  # time-weighted mean over the window
    window: tuple[float, float]
    n: int
    min_w: float
    max_w: float

    def to_dict(self) -> dict[str, object]:
        return {"power_w": self.power_w, "window_s": list(self.window), "n": self.n,
                "min_w": self.min_w, "max_w": self.max_w}


def idle_baseline(samples, window: tuple[float, float]) -> IdleBaseline | None:
    """Mean power over `window` (t_s on the samples' axis): the trapezoid integral divided by
    the duration when samples cover it, else the plain mean of the samples inside; None when
    there is no power sample in the window."""
    df = samples_frame(samples)
    a, b = window
    p = df[df["channel"] == CH_POWER_W].sort_values("t_s")
    inside = p[(p["t_s"] >= a) & (p["t_s"] <= b)]
    if inside.empty:
        return None
    e = integrate(p["t_s"].to_numpy(), p["value"].to_numpy(), a, b)
    mean = e / (b - a) if e is not None and b > a else float(inside["value"].mean())
    return IdleBaseline(float(mean), (float(a), float(b)), len(inside), float(inside["value"].min()),
                        float(inside["value"].max()))


def above_baseline(samples, baseline_w: float) -> pd.DataFrame:
    """The samples with `power_w` minus the idle baseline (other channels unchanged)."""
    df = samples_frame(samples).copy()
    m = df["channel"] == CH_POWER_W
    df.loc[m, "value"] = df.loc[m, "value"] - baseline_w
    return df


def power_summary(samples, intervals: Sequence[tuple[float, float]],
                  baseline: IdleBaseline | None = None) -> dict[str, float | int | None]:
    """Energy, average power and the above-baseline part over the given intervals."""
    df = samples_frame(samples)
    intervals = list(intervals)
    e = energy_j(df, intervals)
    dur = sum(b - a for a, b in intervals)
    p = df[df["channel"] == CH_POWER_W]
    out: dict[str, float | int | None] = {
        "energy_j": e, "duration_s": dur, "avg_w": e / dur if e is not None and dur > 0 else None,
        "peak_w": float(p["value"].max()) if not p.empty else None, "n_samples": int(len(p)),
        "idle_w": baseline.power_w if baseline else None,
    }
    if baseline is not None and e is not None:
        out["energy_above_idle_j"] = e - baseline.power_w * dur
        out["avg_above_idle_w"] = (e / dur - baseline.power_w) if dur > 0 else None
    return out


# --- idle baseline in a run ------------------------------------------------------------------

#: Metrics that need an idle baseline (the above-baseline ones) besides `power_w/idle`.
ABOVE_IDLE_METRICS = ("power_w/avg_above_idle", "energy_j/prefill_above_idle", "energy_j/decode_above_idle",
                      "j_per_token/prefill_above_idle", "j_per_token/decode_above_idle")
IDLE_METRICS = ("power_w/idle", *ABOVE_IDLE_METRICS)
#: Reason used when a run was asked for no baseline.
NO_IDLE_REASON = "no idle baseline measured (--idle 0)"


def idle_window(samples) -> tuple[float, float] | None:
    """The idle phase of a run (phase/idle markers), or None when it has none."""
    spans = intervals_from_samples(samples_frame(samples), "idle")
    return spans[0] if spans else None


def idle_metrics(samples, metrics: dict[str, dict], tokens: dict[str, int]) -> tuple[dict[str, dict], dict[str, str]]:
    """`power_w/idle` and the above-baseline figures from a run's idle phase.

    `metrics`: the run's energy metrics so far (energy_j/prefill, energy_j/decode, power_w/avg);
    `tokens`: {"prefill": n, "decode": n} over the measured repetitions. Above-baseline energy of
    a phase = its energy - idle W x its duration: what running the model added to an idle phone.
    Returns (metrics, reasons for the ones that cannot be computed).
    """
    df = samples_frame(samples)
    window = idle_window(df)
    if window is None:
        return {}, dict.fromkeys(IDLE_METRICS, NO_IDLE_REASON)
    base = idle_baseline(df, window)
    if base is None:
        why = f"no power sample inside the idle window ({window[1] - window[0]:.1f} s)"
        return {}, dict.fromkeys(IDLE_METRICS, why)
    out = {"power_w/idle": metric("power_w/idle", base.power_w)}
    missing: dict[str, str] = {}
    durations = {ph: sum(b - a for a, b in intervals_from_samples(df, ph)) for ph in ("prefill", "decode")}
    for ph, dur in durations.items():
        e = (metrics.get(f"energy_j/{ph}") or {}).get("value")
        if e is None or dur <= 0:
            missing[f"energy_j/{ph}_above_idle"] = missing[f"j_per_token/{ph}_above_idle"] = (
                f"no {ph} energy to subtract the baseline from")
            continue
        above = e - base.power_w * dur
        out[f"energy_j/{ph}_above_idle"] = metric(f"energy_j/{ph}_above_idle", above)
        if tokens.get(ph):
            out[f"j_per_token/{ph}_above_idle"] = metric(f"j_per_token/{ph}_above_idle", above / tokens[ph])
    avg = (metrics.get("power_w/avg") or {}).get("value")
    if avg is not None:
        out["power_w/avg_above_idle"] = metric("power_w/avg_above_idle", avg - base.power_w)
    else:
        missing["power_w/avg_above_idle"] = "no average power over the measured phases"
    return out, missing


def charge_counter_summary(samples, battery_start: dict, battery_end: dict, duration_s: float, *,
                           min_counted_uah: float = 5000.0) -> dict[str, object] | None:
    """The fuel gauge's coulomb counter against the integrated current over a run.

    None when the device has no counter. Below `min_counted_uah` (5 mAh) the counter's
    resolution (often 1 mAh) dominates: the ratio is withheld with that reason.
    """
    a, b = battery_start.get("charge_counter"), battery_end.get("charge_counter")
    if a is None or b is None:
        return None
    check = charge_counter_check(samples, a, b)
    out: dict[str, object] = {**check, "duration_s": duration_s}
    counted = check["counted_uah"] or 0.0
    if abs(counted) < min_counted_uah:
        out["ratio"] = None
        out["note"] = (f"the counter moved {counted:.0f} uAh in {duration_s:.0f} s; under {min_counted_uah:.0f} uAh "
                       "its resolution dominates: a cross-check needs a longer run (minutes)")
    elif check["ratio"] is not None and not 0.8 <= check["ratio"] <= 1.25:
        out["note"] = ("integrated current and the coulomb counter disagree by more than 20%: a wrong current "
                       "unit or a draw the current reading misses")
    return out
