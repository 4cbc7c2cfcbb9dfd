"""From raw timings and samples to metrics: statistics, phases, energy integration."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from suite.core.measure import BurstParams, Repetition
from suite.core.schema import CH_PHASE_PREFIX, CH_POWER_W, SAMPLE_COLUMNS, Phase, ch_phase
from suite.core.stats import metric, percentile


def samples_frame(samples) -> pd.DataFrame:
    """Samples as a DataFrame: (t_s, channel, value) rows, or a DataFrame with SAMPLE_COLUMNS as it is."""
    if isinstance(samples, pd.DataFrame):
        return samples
    return pd.DataFrame(list(samples), columns=list(SAMPLE_COLUMNS))


def burst_metrics(
    reps: Sequence[Repetition], params: BurstParams, load_s: float | None = None
) -> dict[str, dict]:
    """Throughput and latency metrics over the measured (non-warmup) repetitions."""
    measured = [r for r in reps if not r.warmup]
    out: dict[str, dict] = {}
    if load_s is not None:
        out["load_s"] = metric("load_s", load_s)
    if not measured:
        return out
    prefill = [params.prompt_tokens / r.prefill_s for r in measured]
    decode = [len(r.decode_latencies_s) / sum(r.decode_latencies_s) for r in measured]
    ttft = [r.ttft_s for r in measured]
    lat = [x for r in measured for x in r.decode_latencies_s]
    out["prefill_tps"] = metric("prefill_tps", prefill)
    out["decode_tps"] = metric("decode_tps", decode)
    out["ttft_s"] = metric("ttft_s", ttft)
    for q in (50, 90, 99):
        name = f"decode_latency_s/p{q}"
        out[name] = metric(name, percentile(lat, q)) | {"n": len(lat)}
    return out


def phase_intervals(reps: Sequence[Repetition]) -> dict[str, list[tuple[float, float]]]:
    """Monotonic (start, end) of each phase over all repetitions (warmups as `warmup`)."""
    spans: dict[str, list[tuple[float, float]]] = {p.value: [] for p in Phase}
    for r in reps:
        if r.warmup:
            spans[Phase.WARMUP].append((r.t_start, r.t_end))
        else:
            spans[Phase.PREFILL].append((r.t_start, r.t_first_token))
            spans[Phase.DECODE].append((r.t_first_token, r.t_end))
    return spans


def phase_rows(spans: dict[str, list[tuple[float, float]]], t0: float) -> list[tuple[float, str, float]]:
    """Phase markers for samples.parquet: 1.0 at a phase start, 0.0 at its end."""
    rows = []
    for phase, intervals in spans.items():
        ch = ch_phase(phase)
        for a, b in intervals:
            rows.append((a - t0, ch, 1.0))
            rows.append((b - t0, ch, 0.0))
    rows.sort()
    return rows


def intervals_from_samples(samples: pd.DataFrame, phase: str) -> list[tuple[float, float]]:
    """Recover (start, end) pairs of a phase from its marker rows."""
    ch = f"{CH_PHASE_PREFIX}{phase}"
    marks = samples[samples["channel"] == ch].sort_values("t_s")
    out, start = [], None
    for t, v in zip(marks["t_s"], marks["value"], strict=True):
        if v == 1.0:
            start = t
        elif start is not None:
            out.append((start, t))
            start = None
    return out


def integrate(t: Sequence[float], y: Sequence[float], a: float, b: float) -> float | None:
    """Trapezoid integral of a sampled signal over [a, b], interpolating at the edges.

    Returns None when [a, b] is not covered by samples: energy is never extrapolated.
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(t) < 2 or b <= a or a < t[0] or b > t[-1]:
        return None
    inside = (t > a) & (t < b)
    ts = np.concatenate(([a], t[inside], [b]))
    ys = np.concatenate(([np.interp(a, t, y)], y[inside], [np.interp(b, t, y)]))
    return float(np.trapezoid(ys, ts))


def energy_j(samples: pd.DataFrame, intervals: Iterable[tuple[float, float]]) -> float | None:
    """Joules over the given intervals from the `power_w` channel; None if not covered."""
    p = samples[samples["channel"] == CH_POWER_W].sort_values("t_s")
    total = 0.0
    intervals = list(intervals)
    if p.empty or not intervals:
        return None
    for a, b in intervals:
        e = integrate(p["t_s"].to_numpy(), p["value"].to_numpy(), a, b)
        if e is None:
            return None
        total += e
    return total


def energy_metrics(
    samples: pd.DataFrame, params: BurstParams, n_reps: int
) -> tuple[dict[str, dict], dict[str, str]]:
    """Energy per phase and per token from sampled power; reasons for what is missing."""
    metrics: dict[str, dict] = {}
    missing: dict[str, str] = {}
    power = samples[samples["channel"] == CH_POWER_W]
    names = ["energy_j/prefill", "energy_j/decode", "j_per_token/prefill", "j_per_token/decode",
             "tokens_per_j/decode", "power_w/avg", "power_w/peak"]
    if power.empty:
        return metrics, {n: "no power samples" for n in names}
    tokens = {"prefill": params.prompt_tokens * n_reps, "decode": (params.gen_tokens - 1) * n_reps}
    spans = {ph: intervals_from_samples(samples, ph) for ph in ("prefill", "decode")}
    for ph, iv in spans.items():
        e = energy_j(samples, iv)
        if e is None:
            reason = f"power samples do not cover the {ph} phases"
            missing[f"energy_j/{ph}"] = missing[f"j_per_token/{ph}"] = reason
            continue
        metrics[f"energy_j/{ph}"] = metric(f"energy_j/{ph}", e)
        metrics[f"j_per_token/{ph}"] = metric(f"j_per_token/{ph}", e / tokens[ph])
        if ph == "decode" and e > 0:
            metrics["tokens_per_j/decode"] = metric("tokens_per_j/decode", tokens[ph] / e)
    measured = [iv for ivs in spans.values() for iv in ivs]
    total_e = energy_j(samples, measured)
    total_t = sum(b - a for a, b in measured)
    if total_e is not None and total_t > 0:
        metrics["power_w/avg"] = metric("power_w/avg", total_e / total_t)
    metrics["power_w/peak"] = metric("power_w/peak", float(power["value"].max()))
    for n in names:
        if n not in metrics:
            missing.setdefault(n, "power samples do not cover the measured phases")
    return metrics, missing


def temperature_metrics(samples: pd.DataFrame) -> dict[str, dict]:
    """Hottest sampled temperature over all `temp_c/...` channels, if any were sampled."""
    temps = samples[samples["channel"].str.startswith("temp_c/")]
    if temps.empty:
        return {}
    return {"temp_c/max": metric("temp_c/max", float(temps["value"].max()))}
