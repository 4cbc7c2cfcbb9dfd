"""Memory by kind and paging (issue 17): what the runtime kept resident, what it read from storage while it
decoded, and whether it ran *offloaded* (its weights streamed from storage, a model larger than memory).

From the sampler's channels (suite.core.schema): the runtime's `rss_file_bytes` and `rss_anon_bytes`
(/proc/PID/status RssFile, RssAnon), its cumulative `major_faults` (/proc/PID/stat majflt) and
`storage_read_bytes` (/proc/PID/io read_bytes), and the device's `mem_available_bytes` and
`swap_used_bytes` (/proc/meminfo).

- `rss_file_bytes/peak`, `rss_anon_bytes/peak`: over the measured phases (prefill and decode);
  `rss_file_bytes/decode_peak` over decode alone.
- `major_faults_per_token/decode`, `storage_read_bytes_per_token/decode`: the counters' rate over the pairs
  of consecutive readings inside the decode spans, times the decode time, over the decode tokens (a counter
  dies with its process, so a span's edges are not always read; a fall between two readings is a new
  process, skipped). Unavailable when decode is too short for two readings inside it.
- `mem_available_bytes/min`: the lowest reading of the run; `swap_delta_bytes`: swap in use at the last
  reading minus the first (a phone's zram: how much the run pushed out). Swap already in use at the first
  reading is a condition of the run (`conditions.swap_used_at_start_bytes`): it changes what is measured.

**Offloaded** (`paging.offloaded`): the decode read its weights from storage as it went: file-backed
resident bytes below the model's bytes throughout decode, and at least `OFFLOAD_FAULTS_PER_TOKEN` major
faults per generated token. A model that fits is read once at load: after that its decode takes no major
faults. False as soon as the whole model's bytes are seen resident; unknown (None, with the reason) without
the runtime's RssFile and fault readings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from suite.analysis.metrics import intervals_from_samples
from suite.core.measure import BurstParams
from suite.core.record import Part
from suite.core.schema import (
    CH_MAJOR_FAULTS,
    CH_MEM_AVAILABLE_BYTES,
    CH_RSS_ANON_BYTES,
    CH_RSS_FILE_BYTES,
    CH_STORAGE_READ_BYTES,
    CH_SWAP_USED_BYTES,
)
from suite.core.stats import metric

#: at least this many major faults per generated token: the decode streams weights from storage
OFFLOAD_FAULTS_PER_TOKEN = 1.0
PAGING_METRICS = ("rss_file_bytes/peak", "rss_anon_bytes/peak", "rss_file_bytes/decode_peak",
                  "major_faults_per_token/decode", "storage_read_bytes_per_token/decode", "mem_available_bytes/min",
                  "swap_delta_bytes")


def _series(frame: pd.DataFrame, channel: str) -> tuple[list[float], list[float]]:
    s = frame[frame["channel"] == channel].sort_values("t_s")
    return [float(x) for x in s["t_s"]], [float(x) for x in s["value"]]


def _inside(t: Sequence[float], v: Sequence[float], spans: Sequence[tuple[float, float]]) -> list[float]:
    return [y for x, y in zip(t, v, strict=True) if any(a <= x <= b for a, b in spans)]


def counter_rate(t: Sequence[float], v: Sequence[float], spans: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(the counter's increase, the time it was read over) from consecutive readings that both lie in one
    span. A fall between two readings is a new process (the next invocation): that pair is skipped."""
    grown = seconds = 0.0
    for a, b in spans:
        for i in range(1, len(t)):
            if a <= t[i - 1] and t[i] <= b and v[i] >= v[i - 1]:
                grown += v[i] - v[i - 1]
                seconds += t[i] - t[i - 1]
    return grown, seconds


def per_token(frame: pd.DataFrame, channel: str, spans: Sequence[tuple[float, float]],
              tokens: int) -> tuple[float | None, str | None]:
    """(the counter's increase per token, None) or (None, why not): its rate over the readings inside the
    decode spans, times the decode time, over the decode tokens (a rate from readings, as power is
    averaged from samples: the process's counters die with it, so the edges of a span are not read)."""
    t, v = _series(frame, channel)
    if not t:
        return None, f"no {channel} reading of the runtime process"
    grown, seconds = counter_rate(t, v, spans)
    if seconds <= 0:
        return None, (f"decode too short for two {channel} readings inside it (the sampler reads the runtime at "
                      "its fast rate)")
    decode_s = sum(b - a for a, b in spans)
    return grown / seconds * decode_s / tokens, None


def paging_part(frame: pd.DataFrame, params: BurstParams, n_reps: int, *, model_bytes: int | None,
                reasons: Mapping[str, str | None] | None = None) -> Part:
    """The memory and paging metrics, the `paging` block, and why the metrics that cannot be are not
    (`reasons`: the sampler's own, by channel, where it gave one)."""
    reasons = reasons or {}
    metrics: dict[str, dict] = {}
    unavailable: dict[str, str] = {}
    decode = intervals_from_samples(frame, "decode")
    measured = intervals_from_samples(frame, "prefill") + decode
    tokens = (params.gen_tokens - 1) * n_reps
    for name, channel, spans in (("rss_file_bytes/peak", CH_RSS_FILE_BYTES, measured),
                                 ("rss_anon_bytes/peak", CH_RSS_ANON_BYTES, measured),
                                 ("rss_file_bytes/decode_peak", CH_RSS_FILE_BYTES, decode)):
        vals = _inside(*_series(frame, channel), spans)
        if vals:
            metrics[name] = metric(name, max(vals))
        else:
            unavailable[name] = f"no {channel} reading of the runtime process during the measured phases"
    faults = reads = None
    if decode and tokens > 0:
        faults, why = per_token(frame, CH_MAJOR_FAULTS, decode, tokens)
        if faults is None:
            unavailable["major_faults_per_token/decode"] = why
        else:
            metrics["major_faults_per_token/decode"] = metric("major_faults_per_token/decode", faults)
        reads, why = per_token(frame, CH_STORAGE_READ_BYTES, decode, tokens)
        if reads is None:
            unavailable["storage_read_bytes_per_token/decode"] = why
        else:
            metrics["storage_read_bytes_per_token/decode"] = metric("storage_read_bytes_per_token/decode", reads)
    else:
        for name in ("major_faults_per_token/decode", "storage_read_bytes_per_token/decode"):
            unavailable[name] = "no measured decode"
    _, avail = _series(frame, CH_MEM_AVAILABLE_BYTES)
    if avail:
        metrics["mem_available_bytes/min"] = metric("mem_available_bytes/min", min(avail))
    else:
        unavailable["mem_available_bytes/min"] = (reasons.get(CH_MEM_AVAILABLE_BYTES)
                                                  or "no MemAvailable reading of the device")
    _, swap = _series(frame, CH_SWAP_USED_BYTES)
    if len(swap) >= 2:
        metrics["swap_delta_bytes"] = metric("swap_delta_bytes", swap[-1] - swap[0])
    else:
        unavailable["swap_delta_bytes"] = (reasons.get(CH_SWAP_USED_BYTES)
                                           or "fewer than two swap readings of the device")
    block = offload_block(metrics, model_bytes, faults)
    # a device already swapping when the run starts (zram in use) measures something else: recorded as a condition
    conditions = {"swap_used_at_start_bytes": swap[0]} if swap and swap[0] > 0 else {}
    return Part(metrics=metrics, unavailable=unavailable, blocks={"paging": block}, conditions=conditions)


def offload_block(metrics: dict, model_bytes: int | None, faults_per_token: float | None) -> dict:
    """The record's `paging` block: whether the decode ran offloaded, with the figures it rests on."""
    file_peak = (metrics.get("rss_file_bytes/decode_peak") or {}).get("value")
    anon_peak = (metrics.get("rss_anon_bytes/peak") or {}).get("value")
    block = {"model_bytes": model_bytes, "rss_file_decode_peak_bytes": file_peak, "rss_anon_peak_bytes": anon_peak,
             "major_faults_per_token": faults_per_token, "threshold_faults_per_token": OFFLOAD_FAULTS_PER_TOKEN}
    if file_peak is not None and model_bytes and file_peak >= model_bytes:
        return block | {"offloaded": False, "why": f"{file_peak / 2**20:.0f} MiB file-backed resident: all of the "
                                                   f"model's {model_bytes / 2**20:.0f} MiB stayed in memory"}
    if faults_per_token is None or file_peak is None or not model_bytes:
        missing = [w for w, x in (("major faults", faults_per_token), ("file-backed resident bytes", file_peak),
                                  ("the model's size", model_bytes)) if not x and x != 0.0]
        return block | {"offloaded": None, "why": "unknown: no reading of " + ", ".join(missing or ["decode"])}
    streamed = faults_per_token >= OFFLOAD_FAULTS_PER_TOKEN
    why = (f"{faults_per_token:.1f} major faults per token with {file_peak / 2**20:.0f} MiB of the model's "
           f"{model_bytes / 2**20:.0f} MiB resident: weights read from storage as it decodes" if streamed else
           f"{faults_per_token:.2f} major faults per token: the weights it read stayed in memory")
    return block | {"offloaded": bool(streamed), "why": why}


__all__ = ["OFFLOAD_FAULTS_PER_TOKEN", "PAGING_METRICS", "counter_rate", "offload_block", "paging_part",
           "per_token"]
