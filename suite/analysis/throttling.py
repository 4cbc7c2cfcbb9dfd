"""Thermal analysis of sampled runs: throttling evidence and the sustained scenario summary.

Pure functions of samples ((t_s, channel, value) rows or a DataFrame with SAMPLE_COLUMNS)
and per-window throughput. Definitions (DESIGN.md section 3, issue 6):

- throttled: a CPU frequency cap (`scaling_max_freq`) that DROPS during the run below the
  hardware maximum (`cpuinfo_max_freq`, or the highest cap seen), a thermal status above 0
  (NONE), and/or decode throughput falling under 90% of the initial window. A cap that is
  already below the hardware maximum at the start is a vendor cap: reported, not counted.
- stability_pct = worst window / best window x 100.
- time_to_throttle_s = the time of the first window of the first run of PERSIST_WINDOWS
  consecutive windows whose throughput is under 90% of the initial throughput (the median of the
  first INITIAL_WINDOWS windows), else None: one slow window is scheduler noise, a drop that
  persists is throttling (issue 15: 80 ms windows on a busy host reported 0.196 s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from suite.analysis.metrics import intervals_from_samples, samples_frame
from suite.core.schema import CH_DECODE_TPS_WINDOW, CH_THERMAL_STATUS, THERMAL_STATUS

THROTTLE_FRACTION = 0.9
CPUFREQ_MAX_PREFIX = "cpufreq_max_khz/"
TEMP_PREFIX = "temp_c/"


@dataclass(frozen=True)
class ThrottleEvidence:
    throttled: bool
    evidence: list[str] = field(default_factory=list)
    #: facts that are not throttling (static vendor caps, throughput drop without other signs)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"throttled": self.throttled, "evidence": list(self.evidence), "notes": list(self.notes)}


#: The initial throughput is the median of this many first windows: one noisy first window
#: (a busy host, a cold cache) must not move the 90% line the whole run is judged against.
INITIAL_WINDOWS = 3


def initial_tps(window_tps: Sequence[tuple[float, float]]) -> float:
    first = sorted(v for _, v in window_tps[:INITIAL_WINDOWS])
    return first[len(first) // 2]


#: A drop counts when this many consecutive windows are all under the line.
PERSIST_WINDOWS = 3


def throttle_drop(window_tps: Sequence[tuple[float, float]], fraction: float,
                persist: int = PERSIST_WINDOWS) -> tuple[float, float] | None:
    """(time, tok/s) of the first window that starts a run of `persist` consecutive windows under
    `fraction` of the initial throughput (the first window is the reference, never a drop)."""
    if not window_tps:
        return None
    line = fraction * initial_tps(window_tps)
    run = 0
    for i in range(1, len(window_tps)):
        run = run + 1 if window_tps[i][1] < line else 0
        if run >= persist:
            return window_tps[i - persist + 1]
    return None


def detect_throttling(samples, *, cpuinfo_max_khz: dict[str, int] | None = None,
                      window_tps: Sequence[tuple[float, float]] | None = None,
                      fraction: float = THROTTLE_FRACTION) -> ThrottleEvidence:
    """Throttling from frequency caps, thermal status and/or a throughput drop (see module doc)."""
    df = samples_frame(samples)
    evidence: list[str] = []
    notes: list[str] = []
    caps = df[df["channel"].str.startswith(CPUFREQ_MAX_PREFIX)].sort_values("t_s", kind="stable")
    for ch, g in caps.groupby("channel", sort=True):
        policy = ch[len(CPUFREQ_MAX_PREFIX):]
        first, low = float(g["value"].iloc[0]), float(g["value"].min())
        hw = float((cpuinfo_max_khz or {}).get(policy, g["value"].max()))
        t_low = float(g.loc[g["value"].idxmin(), "t_s"])
        if first < hw:
            notes.append(f"{policy}: scaling_max_freq {first:.0f} kHz at the start, below the hardware "
                         f"maximum {hw:.0f} kHz (a vendor cap, not counted)")
        if low < first:
            evidence.append(f"{policy}: scaling_max_freq fell from {first:.0f} to {low:.0f} kHz "
                            f"({100 * low / hw:.0f}% of {hw:.0f} kHz) at t={t_low:.1f} s")
    st = df[df["channel"] == CH_THERMAL_STATUS].sort_values("t_s", kind="stable")
    if not st.empty and float(st["value"].max()) > 0:
        mx = int(st["value"].max())
        t_first = float(st[st["value"] > 0]["t_s"].iloc[0])
        evidence.append(f"thermal status reached {mx} ({THERMAL_STATUS.get(mx, '?')}); first above 0 "
                        f"(NONE) at t={t_first:.1f} s")
    device_evidence = bool(evidence)
    if window_tps:
        drop = throttle_drop(window_tps, fraction)
        if drop is not None:
            t, tps = drop
            text = (f"decode throughput {tps:.3g} tok/s at t={t:.1f} s is under {fraction:.0%} of the initial "
                    f"{initial_tps(window_tps):.3g} tok/s for {PERSIST_WINDOWS} windows or more")
            if device_evidence:
                evidence.append(text)
            else:
                # a slow window with no frequency cap and no thermal status is noise or
                # contention, not throttling: say so, do not call the device throttled
                notes.append(text + " (no frequency cap or thermal status seen: not counted as throttling)")
    return ThrottleEvidence(device_evidence, evidence, notes)


#: a frequency ceiling that falls by more than this share of its value at the start of the measured
#: phases marks any run `throttled` (issue 16: a 5% wobble of a governor is not throttling)
PHASE_CAP_FALL = 0.15
MEASURED_PHASES = ("prefill", "decode")


def phase_throttling(samples, *, cpuinfo_max_khz: dict[str, int] | None = None,
                     fall: float = PHASE_CAP_FALL) -> dict:
    """Whether a run's measured phases ran throttled, from its samples (phase markers included).

    Throttled: a CPU frequency ceiling (`scaling_max_freq`) that falls during a measured phase
    (prefill or decode) by more than `fall` of its value when the first measured phase began, or a
    thermal status above 0 (NONE) during one. A ceiling already below the hardware maximum when the
    first measured phase began (a charging or thermal cap held from before) is not throttling: it is
    listed in `caps_below_max_at_start`, a condition the run was measured under.

    Returns the record's `throttling` block: {throttled, evidence, caps_below_max_at_start, rule}."""
    df = samples_frame(samples)
    spans = sorted(s for ph in MEASURED_PHASES for s in intervals_from_samples(df, ph))
    block: dict = {"throttled": False, "evidence": [], "caps_below_max_at_start": {},
                   "rule": (f"a scaling_max_freq falling more than {fall:.0%} during prefill or decode, "
                            "or a thermal status above NONE in them")}
    if not spans:
        block["throttled"] = None
        block["evidence"] = ["no measured phase: nothing to judge"]
        return block
    start = spans[0][0]

    def inside(t):
        """Which of the times `t` fall in a measured phase."""
        return np.logical_or.reduce([(t >= a) & (t <= b) for a, b in spans])

    caps = df[df["channel"].str.startswith(CPUFREQ_MAX_PREFIX)].sort_values("t_s", kind="stable")
    for ch, g in caps.groupby("channel", sort=True):
        policy = ch[len(CPUFREQ_MAX_PREFIX):]
        before = g[g["t_s"] <= start]
        ref = float((before if not before.empty else g)["value"].iloc[-1 if not before.empty else 0])
        hw = (cpuinfo_max_khz or {}).get(policy)
        if hw and ref < hw:
            block["caps_below_max_at_start"][policy] = {"cap_khz": int(ref), "hardware_max_khz": int(hw)}
        during = g[inside(g["t_s"])]
        if during.empty or ref <= 0:
            continue
        low = float(during["value"].min())
        if low < (1 - fall) * ref:
            t_low = float(during.loc[during["value"].idxmin(), "t_s"])
            block["evidence"].append(f"{policy}: scaling_max_freq fell from {ref:.0f} to {low:.0f} kHz "
                                     f"(-{100 * (1 - low / ref):.0f}%) during a measured phase, at t={t_low:.1f} s")
    st = df[df["channel"] == CH_THERMAL_STATUS]
    st = st[inside(st["t_s"])] if not st.empty else st
    if not st.empty and float(st["value"].max()) > 0:
        mx = int(st["value"].max())
        block["evidence"].append(f"thermal status {mx} ({THERMAL_STATUS.get(mx, '?')}) during a measured phase")
    block["throttled"] = bool(block["evidence"])
    return block


def sustained_summary(window_tps: Sequence[tuple[float, float]], samples=None, *,
                      fraction: float = THROTTLE_FRACTION) -> dict[str, object]:
    """The sustained scenario's figures from per-window throughput [(t_s, tok/s)] and, when given,
    the run's samples (peak temperature, max thermal status, lowest frequency cap)."""
    windows = [(float(t), float(v)) for t, v in window_tps]
    out: dict[str, object] = {"n_windows": len(windows)}
    if windows:
        vals = [v for _, v in windows]
        best, worst = max(vals), min(vals)
        out.update({
            "initial_tps": initial_tps(windows), "best_tps": best, "worst_tps": worst,
            "stability_pct": 100.0 * worst / best if best > 0 else None,
        })
        drop = throttle_drop(windows, fraction)
        out["time_to_throttle_s"] = drop[0] if drop else None
    else:
        out.update({"initial_tps": None, "best_tps": None, "worst_tps": None, "stability_pct": None,
                    "time_to_throttle_s": None})
    if samples is not None:
        df = samples_frame(samples)
        temps = df[df["channel"].str.startswith(TEMP_PREFIX)]
        out["peak_temp_c"] = float(temps["value"].max()) if not temps.empty else None
        out["peak_temp_channel"] = (str(temps.loc[temps["value"].idxmax(), "channel"])
                                    if not temps.empty else None)
        st = df[df["channel"] == CH_THERMAL_STATUS]
        out["max_thermal_status"] = int(st["value"].max()) if not st.empty else None
        caps = df[df["channel"].str.startswith(CPUFREQ_MAX_PREFIX)]
        out["min_freq_cap_khz"] = {ch[len(CPUFREQ_MAX_PREFIX):]: int(g["value"].min())
                                   for ch, g in caps.groupby("channel", sort=True)} or None
    return out


def window_rows(window_tps: Sequence[tuple[float, float]]) -> list[tuple[float, str, float]]:
    """Per-window throughput as sample rows (channel `decode_tps_window`)."""
    return [(float(t), CH_DECODE_TPS_WINDOW, float(v)) for t, v in window_tps]


def windows_from_samples(samples) -> list[tuple[float, float]]:
    df = samples_frame(samples)
    w = df[df["channel"] == CH_DECODE_TPS_WINDOW].sort_values("t_s", kind="stable")
    return list(zip(w["t_s"].astype(float), w["value"].astype(float), strict=True))


__all__ = ["PERSIST_WINDOWS", "PHASE_CAP_FALL", "THROTTLE_FRACTION", "initial_tps", "phase_throttling", "throttle_drop", "ThrottleEvidence", "detect_throttling", "sustained_summary", "window_rows",
           "windows_from_samples"]
