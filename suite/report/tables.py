"""The report's tables: rows of display text built from upgraded run records.

Every cell is plain text (the template escapes it). A metric that was not measured says
why ("unavailable: <reason>", "not measured: run ended oom"), never 0 or an empty cell.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from statistics import median

from suite.analysis.pooling import PoolKey, pool_key
from suite.catalog.socs import soc_text
from suite.core.schema import METRICS, Outcome

NOT_RECORDED = "not recorded"


def known_metrics(*names: str) -> tuple[str, ...]:
    """Metric names checked against the schema at import time, so a typo fails loudly."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise KeyError(f"report uses metrics the schema does not define: {unknown}")
    return names


#: The metrics the report arranges in sections and charts (names owned by suite/core/schema.py).
PREFILL_TPS, DECODE_TPS, TTFT_S, LOAD_S = known_metrics("prefill_tps", "decode_tps", "ttft_s", "load_s")
LAT_P50, LAT_P90, LAT_P99 = known_metrics(
    "decode_latency_s/p50", "decode_latency_s/p90", "decode_latency_s/p99"
)
PEAK_RSS, PEAK_PSS = known_metrics("peak_rss_bytes", "peak_pss_bytes")
ROOFLINE_DECODE, ROOFLINE_PREFILL = known_metrics("roofline_fraction/decode", "roofline_fraction/prefill")
J_PER_TOK_PREFILL, J_PER_TOK_DECODE, TOKENS_PER_J = known_metrics(
    "j_per_token/prefill", "j_per_token/decode", "tokens_per_j/decode"
)


# --- formatting ------------------------------------------------------------------------


def fmt_bytes(n: float) -> str:
    """Binary units, as memory is counted: 194000000 -> '185.0 MiB'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def fmt_params(n: float) -> str:
    """134515008 -> '135M', 1.24e9 -> '1.24B'."""
    for suffix, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.0f}"


def fmt_number(v: float) -> str:
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.4g}"
    return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.3e}"


def fmt_value(value: object, unit: str | None) -> str:
    """A number with its unit, formatted for reading; None says it was not recorded."""
    if value is None:
        return NOT_RECORDED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if unit == "bytes":
        return fmt_bytes(v)
    if unit == "bytes/s":
        return f"{v / 1e9:.2f} GB/s"
    if unit == "s" and abs(v) < 1:
        return f"{v * 1e3:.3g} ms"
    if unit == "tok/s":
        return f"{v:,.1f} tok/s"
    if unit == "degC":
        return f"{fmt_number(v)} °C"
    if unit == "fraction":
        return f"{v:.3f}"
    if unit in (None, "", "status"):
        return fmt_number(v)
    return f"{fmt_number(v)} {unit}"


# --- labels ----------------------------------------------------------------------------


def device_label(device: dict) -> str:
    """Manufacturer and model; a host without them is named by its CPU (never its serial)."""
    parts = [device.get("manufacturer"), device.get("model")]
    label = " ".join(str(p) for p in parts if p)
    if label:
        return label
    cpu = (device.get("cpu") or {}).get("model")
    if cpu:
        return f"{cpu} {device.get('transport') or ''} host ({str(device.get('device_id') or '')[:6]})".replace("  ", " ")
    return str(device.get("device_id") or "unknown device")


def runtime_label(runtime: dict) -> str:
    """The engine, its version and what it ran on (`llama.cpp 0c1e57098 · HTP0`): every number says which."""
    parts = [runtime.get("name"), runtime.get("version")]
    text = " ".join(str(p) for p in parts if p) or "unknown runtime"
    return f"{text} · {runtime['backend']}" if runtime.get("backend") else text


def model_label(model: dict) -> str:
    return str(model.get("id") or model.get("name") or "unknown model")


def series_key(record: dict) -> tuple:
    """Runs that share a device and a runtime build form one chart series."""
    dev, rt = record.get("device") or {}, record.get("runtime") or {}
    return (dev.get("device_id"), rt.get("name"), rt.get("version"), rt.get("backend"))


def series_labels(records: list[dict]) -> dict[tuple, str]:
    """Readable series names; where two read alike, device id and backend tell them apart."""
    labels: dict[tuple, str] = {}
    for r in records:
        dev = r.get("device") or {}
        text = f"{device_label(dev)} · {runtime_label(r.get('runtime') or {})}"
        if dev.get("simulated"):
            text += " (simulated)"
        labels.setdefault(series_key(r), text)
    seen: dict[str, int] = {}
    for text in labels.values():
        seen[text] = seen.get(text, 0) + 1
    return {k: (f"{t} [{k[0]}, {k[3]}]" if seen[t] > 1 else t) for k, t in labels.items()}


# --- metric cells ----------------------------------------------------------------------


@dataclass(frozen=True)
class MetricCell:
    """One metric of one run as the page shows it: the median, then its spread in `detail`."""

    text: str
    state: str = "value"  # value | unavailable | missing
    detail: tuple[str, ...] = ()  # ("95% CI 403.8–414.0 tok/s", "n=5 · CV 1.0%") or ("single value",)
    unstable: bool = False


def metric_value(record: dict, name: str) -> float | None:
    """The median (or single value) of a metric, None when the run has none."""
    m = (record.get("metrics") or {}).get(name)
    if not m:
        return None
    v = m.get("median", m.get("value"))
    return None if v is None else float(v)


def fmt_range(lo: float, hi: float, unit: str | None) -> str:
    """'403.8–414.0 tok/s': the unit once when both ends share it."""
    a, b = fmt_value(lo, unit), fmt_value(hi, unit)
    (a_num, _, a_unit), (b_num, _, b_unit) = a.rpartition(" "), b.rpartition(" ")
    if a_num and a_unit == b_unit:
        return f"{a_num}–{b_num} {a_unit}"
    return f"{a}–{b}"


def metric_cell(record: dict, name: str) -> MetricCell:
    m = (record.get("metrics") or {}).get(name)
    if m and m.get("median", m.get("value")) is not None:
        unit = m.get("unit") or (METRICS[name].unit if name in METRICS else None)
        n = int(m.get("n", 1))
        spread = [(f"n={n}" + (" (few)" if m.get("small_n") else "")) if n > 1 else "single value"]
        if m.get("cv") is not None and n > 1:
            spread.append(f"CV {100 * m['cv']:.1f}%")
        ci = (f"95% CI {fmt_range(*m['ci95'], unit)}",) if m.get("ci95") else ()
        if m.get("statistic"):  # the value is not the median (the bandwidth bound: the best sample)
            return MetricCell(
                text=f"{fmt_value(m.get('value'), unit)} ({m['statistic']})",
                detail=(f"median {fmt_value(m.get('median'), unit)}", *ci, " · ".join(spread)),
                unstable=bool(m.get("unstable", False)),
            )
        return MetricCell(
            text=fmt_value(m.get("median", m.get("value")), unit),
            detail=(*ci, " · ".join(spread)),
            unstable=bool(m.get("unstable", False)),
        )
    reason = (record.get("unavailable") or {}).get(name)
    if reason is not None:
        return MetricCell(f"unavailable: {reason}", state="unavailable")
    outcome = record.get("outcome")
    if outcome != Outcome.COMPLETED:
        return MetricCell(f"not measured: run ended {outcome}", state="missing")
    return MetricCell("not measured", state="missing")


def has_any(record: dict, names: tuple[str, ...]) -> bool:
    metrics, unavailable = record.get("metrics") or {}, record.get("unavailable") or {}
    return any(n in metrics or n in unavailable for n in names)


def metric_rows(records: list[dict], names: tuple[str, ...]) -> list[dict]:
    """One row per run, one cell per metric: completed runs and any run with one of `names`."""
    return [
        {**run_ref(r), "cells": [metric_cell(r, n) for n in names]}
        for r in records
        if r.get("outcome") == Outcome.COMPLETED or has_any(r, names)
    ]


# --- runs, devices, models -------------------------------------------------------------


def slug(text: object) -> str:
    """A file name from any string: safe characters kept, a short hash when anything changed."""
    raw = str(text)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", raw)[:60].lstrip(".") or "x"
    if safe != raw:
        safe += "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return safe


def run_href(r: dict) -> str:
    return f"runs/{slug(r['run_id'])}.html"


def device_key(r: dict) -> str:
    return str((r.get("device") or {}).get("device_id") or "unknown")


def device_href(r: dict) -> str:
    return f"devices/{slug(device_key(r))}.html"


def model_key(r: dict) -> str:
    return model_label(r.get("model") or {})


def model_href(r: dict) -> str:
    return f"models/{slug(model_key(r))}.html"


def labels_of(r: dict) -> tuple[str, ...]:
    """Provenance badges beyond simulated/synthetic: `origin` when not measured, and `labels`."""
    out = []
    origin = r.get("origin")
    if origin and origin != "measured":
        out.append(str(origin))
    out += [str(x) for x in r.get("labels") or ()]
    return tuple(out)


def run_ref(r: dict) -> dict:
    """The columns that say which run a row is about."""
    dev, mod = r.get("device") or {}, r.get("model") or {}
    return {
        "run_id": r["run_id"],
        "run_ref": f"…{r['run_id'][-6:]}",
        "run_href": run_href(r),
        "device": device_label(dev),
        "device_href": device_href(r),
        "simulated": bool(dev.get("simulated")),
        "labels": labels_of(r),
        "model": model_label(mod),
        "model_href": model_href(r),
        "synthetic": bool(mod.get("synthetic_weights")),
        "runtime": runtime_label(r.get("runtime") or {}),
    }


def scenario_params(scenario: dict) -> str:
    params = scenario.get("params") or {}
    return " ".join(f"{k}={v}" for k, v in params.items()) or "no parameters"


def run_rows(records: list[dict]) -> list[dict]:
    rows = []
    for r in records:
        host, rt = r.get("host") or {}, r.get("runtime") or {}
        extras = [rt.get("backend"), f"{rt['threads']} threads" if rt.get("threads") else None]
        rows.append(
            {
                **run_ref(r),
                "started_at": (r.get("started_at") or NOT_RECORDED).replace("T", " "),
                "runtime_detail": ", ".join(str(e) for e in extras if e),
                "scenario": (r.get("scenario") or {}).get("name") or "unknown",
                "scenario_params": scenario_params(r.get("scenario") or {}),
                "outcome": r.get("outcome") or "unknown",
                "origin": r.get("origin") or "",
                "host": str(host.get("hostname") or NOT_RECORDED),
                "host_version": f"edgebench {host.get('edgebench_version') or NOT_RECORDED}",
            }
        )
    return rows


def error_text(error: object) -> str:
    """An entry of `errors[]` ({type, message, [traceback], ...} or a string), message first."""
    if not isinstance(error, dict):
        return str(error)
    head = ": ".join(str(error[k]) for k in ("type", "message") if error.get(k) is not None)
    rest = [f"{k}: {v}" for k, v in error.items() if k not in ("type", "message", "traceback")]
    tail = [str(error["traceback"])] if error.get("traceback") else []
    return "\n".join([head, *rest, *tail] if head else [*rest, *tail])


def failed_rows(records: list[dict]) -> list[dict]:
    return [
        {
            **run_ref(r),
            "outcome": r.get("outcome") or "unknown",
            "errors": [error_text(e) for e in r.get("errors") or []] or ["no error recorded"],
        }
        for r in records
        if r.get("outcome") != Outcome.COMPLETED
    ]


def _os_text(os_info: dict) -> str:
    if os_info.get("android_release"):
        text = f"Android {os_info['android_release']}"
        if os_info.get("sdk"):
            text += f" (SDK {os_info['sdk']})"
    else:
        text = " ".join(str(os_info[k]) for k in ("name", "release") if os_info.get(k))
    if os_info.get("kernel"):
        text += f", kernel {os_info['kernel']}"
    return text or NOT_RECORDED


def _cluster_text(cluster: object) -> str:
    """{policy, cpus, max_khz, governor} -> 'policy4: cpus 4,5,6 · max 2.40 GHz · schedutil'."""
    if not isinstance(cluster, dict):
        return str(cluster)
    c = dict(cluster)
    parts = []
    if (cpus := c.pop("cpus", None)) is not None:
        parts.append("cpus " + (",".join(map(str, cpus)) if isinstance(cpus, list) else str(cpus)))
    if (max_khz := c.pop("max_khz", None)) is not None:
        parts.append(f"max {max_khz / 1e6:.2f} GHz")
    if (governor := c.pop("governor", None)) is not None:
        parts.append(str(governor))
    parts += [f"{k} {v}" for k, v in c.items() if k != "policy"]
    return f"{c.get('policy', 'cluster')}: {' · '.join(parts)}"


def device_rows(records: list[dict]) -> list[dict]:
    """One row per device_id, in first-run order."""
    rows: dict[str, dict] = {}
    for r in records:
        dev = r.get("device") or {}
        key = str(dev.get("device_id"))
        if key in rows:
            continue
        cpu = dev.get("cpu") or {}
        cores = [
            f"{cpu[k]} {label}"
            for k, label in (("physical_cores", "physical"), ("logical_cores", "logical"))
            if cpu.get(k) is not None
        ]
        soc = dev.get("soc_name") or soc_text(dev.get("soc_vendor"), dev.get("soc_model"))
        rows[key] = {
            "device_id": key,
            "device": device_label(dev),
            "soc": soc or NOT_RECORDED,
            "cpu": str(cpu.get("model") or NOT_RECORDED),
            "cores": " / ".join(cores) or NOT_RECORDED,
            "clusters": [_cluster_text(c) for c in cpu.get("clusters") or []],
            "ram": fmt_value(dev.get("ram_bytes"), "bytes"),
            "os": _os_text(dev.get("os") or {}),
            "fingerprint": (dev.get("os") or {}).get("fingerprint") or "",
            "abi": dev.get("abi") or NOT_RECORDED,
            "tier": dev.get("tier") or NOT_RECORDED,
            "transport": dev.get("transport") or NOT_RECORDED,
            "simulated": bool(dev.get("simulated")),
            "unavailable": [f"{k}: {v}" for k, v in (dev.get("unavailable") or {}).items()],
        }
    return list(rows.values())


def model_rows(records: list[dict]) -> list[dict]:
    """One row per model artefact (card id + sha256)."""
    rows: dict[tuple, dict] = {}
    for r in records:
        mod = r.get("model") or {}
        key = (mod.get("id"), mod.get("sha256"))
        if key in rows:
            continue
        rows[key] = {
            "id": model_label(mod),
            "name": mod.get("name") or "",
            "architecture": mod.get("architecture") or NOT_RECORDED,
            "params": fmt_params(mod["params"]) if mod.get("params") else NOT_RECORDED,
            "params_exact": f"{mod['params']:,}" if mod.get("params") else "",
            "quant": mod.get("quant") or NOT_RECORDED,
            "format": mod.get("format") or NOT_RECORDED,
            "bytes": fmt_value(mod.get("bytes"), "bytes"),
            "sha256": str(mod.get("sha256") or NOT_RECORDED),
            "synthetic": bool(mod.get("synthetic_weights")),
        }
    return list(rows.values())


def _condition_text(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return fmt_value(value, None)


def conditions_table(records: list[dict]) -> dict:
    """Per-run conditions; keys no run recorded are named once instead of as empty columns."""
    keys: list[str] = []
    for r in records:
        keys += [k for k in (r.get("conditions") or {}) if k not in keys]
    recorded = [k for k in keys if any((r.get("conditions") or {}).get(k) is not None for r in records)]
    rows = [
        {**run_ref(r), "values": [_condition_text((r.get("conditions") or {}).get(k)) for k in recorded]}
        for r in records
    ]
    # a zero-width space after each '_' lets long key names wrap in narrow columns
    headers = [k.replace("_", "_\u200b") for k in recorded]
    return {"columns": headers, "rows": rows, "never_recorded": [k for k in keys if k not in recorded]}


# --- roofline and sensors --------------------------------------------------------------



def _fraction_cell(record: dict, fraction: str, throughput: str) -> MetricCell:
    """The fraction reached, with the measured throughput it was computed from."""
    cell, measured = metric_cell(record, fraction), metric_cell(record, throughput)
    if cell.state == "value" and measured.state == "value":
        return replace(cell, detail=(f"measured {measured.text}",))
    return cell


def roofline_rows(records: list[dict]) -> list[dict]:
    """Per run: the bandwidth used and where it came from, each bound, and the fraction reached."""
    rows = []
    for r in records:
        roof = r.get("roofline")
        if not roof and not has_any(r, (ROOFLINE_DECODE, ROOFLINE_PREFILL)):
            continue
        roof = roof or {}
        source = roof.get("bandwidth_source") or NOT_RECORDED
        if roof.get("bandwidth_method"):
            source += f": {roof['bandwidth_method']}"
        compute = roof.get("compute_flops_per_s")
        rows.append(
            {
                **run_ref(r),
                "bandwidth": fmt_value(roof.get("bandwidth_bytes_per_s"), "bytes/s"),
                "bandwidth_source": source,
                "decode_bound": fmt_value(roof.get("decode_bound_tps"), "tok/s"),
                "decode_bytes": f"{fmt_value(roof.get('decode_bytes_per_token'), 'bytes')} / token",
                "decode_fraction": _fraction_cell(r, ROOFLINE_DECODE, DECODE_TPS),
                "prefill_bound": fmt_value(roof.get("prefill_bound_tps"), "tok/s"),
                "compute": (
                    f"peak {compute / 1e9:,.1f} GFLOP/s ({roof.get('compute_method') or 'method?'})"
                    if compute else "no compute peak"
                ),
                "prefill_fraction": _fraction_cell(r, ROOFLINE_PREFILL, PREFILL_TPS),
            }
        )
    return rows


def sensor_summary(record: dict) -> dict:
    s = record.get("sensors") or {}
    rate = fmt_value(s.get("rate_hz"), "Hz")
    if s.get("achieved_rate_hz") is not None:
        rate += f" asked, {fmt_value(s['achieved_rate_hz'], 'Hz')} achieved"
    return {
        "rate": rate,
        "samples": fmt_value(s.get("samples"), None),
        "sampler_cpu": fmt_value(s.get("sampler_cpu_s"), "s"),
        "available": ", ".join(map(str, s.get("available") or [])) or NOT_RECORDED,
        "unavailable": [f"{k}: {v}" for k, v in (s.get("unavailable") or {}).items()],
    }


# --- the site: tiers, conditions, fit matrix, rankings ---------------------------------

TIER_ORDER = ("flagship", "mid", "entry", "host", "unknown")


def tier_of(r: dict) -> str:
    return str((r.get("device") or {}).get("tier") or "unknown")


def tier_sort_key(tier: str) -> tuple:
    return (TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER), tier)


def is_simulated(r: dict) -> bool:
    return bool((r.get("device") or {}).get("simulated"))


def conditions_brief(r: dict) -> str:
    """The conditions a number was measured under, in one line (what was recorded only)."""
    c = r.get("conditions") or {}
    parts = []
    t0, t1 = c.get("battery_temp_c_start"), c.get("battery_temp_c_end")
    if t0 is not None or t1 is not None:
        parts.append(f"battery {fmt_value(t0, 'degC')} → {fmt_value(t1, 'degC')}".replace("not recorded", "?"))
    if c.get("charging") is not None:
        parts.append("charging" if c["charging"] else "not charging")
    if c.get("power_source"):
        parts.append(f"power: {c['power_source']}")
    if c.get("thermal_status_start") is not None:
        parts.append(f"thermal status {c['thermal_status_start']} at start")
    if c.get("cooldown_waited_s"):
        parts.append(f"cooldown {fmt_value(c['cooldown_waited_s'], 's')}")
    if (r.get("throttling") or {}).get("throttled"):
        parts.append("THROTTLED during the measured phases")
    if c.get("cold"):
        parts.append("cold: first run after a push")
    if c.get("freq_caps_below_max_at_start"):
        parts.append("CPU cap below maximum at start: " + ", ".join(sorted(c["freq_caps_below_max_at_start"])))
    if c.get("affinity_spans_clusters"):
        parts.append("cores across clusters")
    return " · ".join(parts) or "conditions not recorded"


def engine_label(r: dict) -> str:
    """The engine and where it ran, e.g. `llama.cpp · HTP0`, `litert-lm · gpu`, `ort-genai · cpu`."""
    rt = r.get("runtime") or {}
    backend = rt.get("backend") or (r.get("import") or {}).get("identity", {}).get("backend")
    return f"{rt.get('name') or '?'} · {backend}" if backend else str(rt.get("name") or "?")


def model_sort_key(r: dict) -> tuple:
    mod = r.get("model") or {}
    return (mod.get("params") or 0, model_label(mod))


def _fit_cell(runs: list[dict]) -> dict:
    if not runs:
        return {"state": "untried", "text": "not tried", "detail": ""}
    peaks = [v for r in runs if (v := metric_value(r, PEAK_RSS)) is not None]
    peak = f"peak {fmt_bytes(max(peaks))}" if peaks else "peak memory not recorded"
    outcomes = Counter(str(r.get("outcome")) for r in runs)
    done = outcomes.pop(Outcome.COMPLETED, 0)
    others = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
    offloaded = [r for r in runs if r.get("outcome") == Outcome.COMPLETED and (r.get("paging") or {}).get("offloaded")]
    if offloaded and len(offloaded) == done:  # ran only with its weights streamed from storage
        tps = [v for r in offloaded if (v := metric_value(r, "decode_tps")) is not None]
        text = f"runs offloaded, at {fmt_value(median(tps), 'tok/s')}" if tps else "runs offloaded"
        state = "offloaded"
        detail = (f"weights read from storage as it decodes ({done} run{'s' if done > 1 else ''}); {peak}"
                  + (f"; also {others}" if others else ""))
    elif done:
        text = f"runs ({done})"
        state = "fits"
        detail = peak + (f"; also {others}" if others else "")
    elif outcomes.get(Outcome.OOM):
        text, state, detail = "OOM", "oom", f"{peak}; {others}"
    else:
        text, state, detail = others, "failed", peak
    return {"state": state, "text": text, "detail": detail}


def fit_matrix(records: list[dict]) -> dict:
    """Model x device: runs / OOM / not tried, with the peak memory seen."""
    devices: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: (tier_sort_key(tier_of(r)), device_label(r.get("device") or {}))):
        dev = r.get("device") or {}
        devices.setdefault(device_key(r), {
            **run_ref(r), "tier": tier_of(r), "ram": fmt_value(dev.get("ram_bytes"), "bytes"),
        })
    models: dict[str, dict] = {}
    for r in sorted(records, key=model_sort_key):
        mod = r.get("model") or {}
        models.setdefault(model_key(r), {
            **run_ref(r), "params": fmt_params(mod["params"]) if mod.get("params") else NOT_RECORDED,
        })
    by_cell: dict[tuple, list[dict]] = {}
    for r in records:
        by_cell.setdefault((model_key(r), device_key(r)), []).append(r)
    rows = [
        {"model": m, "cells": [_fit_cell(by_cell.get((mk, dk), [])) for dk in devices]}
        for mk, m in models.items()
    ]
    return {"devices": list(devices.values()), "rows": rows}


VOICE_TEXT = {"conversational": "conversational", "marginal": "marginal", "not": "not conversational"}


def _voice_cell(runs: list[dict]) -> dict:
    """One device's voice runs of one (speech model, LLM) pair: the verdict of its latest completed run, with
    the median latency and energy per turn; an outcome when none completed."""
    if not runs:
        return {"state": "untried", "text": "not tried", "detail": ""}
    done = [r for r in runs if r.get("outcome") == Outcome.COMPLETED]
    if not done:
        outcomes = Counter(str(r.get("outcome")) for r in runs)
        text = "OOM" if outcomes.get(Outcome.OOM) else ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
        return {"state": "oom" if outcomes.get(Outcome.OOM) else "failed", "text": text, "detail": ""}
    r = max(done, key=lambda x: str(x.get("ended_at") or ""))
    voice = r.get("voice") or {}
    said = voice.get("verdict")
    parts = [f"first reply token {metric_cell(r, 'turn_latency_s').text} after speech",
             f"ASR RTF {fmt_number(rtf) if (rtf := metric_value(r, 'asr_rtf')) is not None else NOT_RECORDED}", f"{metric_cell(r, 'energy_j/turn').text} per turn"]
    if (r.get("paging") or {}).get("offloaded"):
        parts.append("LLM offloaded (weights read from storage)")
    return {"state": said or "unjudged", "text": VOICE_TEXT.get(said, "not judged"),
            "detail": " · ".join(parts), "why": voice.get("verdict_reason") or ""}


def voice_matrix(records: list[dict]) -> list[dict]:
    """Per tier, (speech model x LLM) x device: the voice scenario's verdict with latency and energy per turn."""
    voice = [r for r in records if (r.get("scenario") or {}).get("name") == "voice"]
    out = []
    real = [r for r in voice if not is_simulated(r)]
    groups = [(tier, [r for r in real if tier_of(r) == tier])
              for tier in sorted({tier_of(r) for r in real}, key=tier_sort_key)]
    sim = [r for r in voice if is_simulated(r)]  # never beside real phones: a group of their own
    for tier, recs in groups + ([("simulated", sim)] if sim else []):
        devices: dict[str, dict] = {}
        for r in sorted(recs, key=lambda r: device_label(r.get("device") or {})):
            dev = r.get("device") or {}
            devices.setdefault(device_key(r), {**run_ref(r), "ram": fmt_value(dev.get("ram_bytes"), "bytes")})
        pairs: dict[tuple, dict] = {}
        for r in sorted(recs, key=model_sort_key):
            asr = ((r.get("scenario") or {}).get("params") or {}).get("asr_model") or "?"
            pairs.setdefault((asr, model_key(r)), {"asr": asr, "model": run_ref(r)})
        by_cell: dict[tuple, list[dict]] = {}
        for r in recs:
            asr = ((r.get("scenario") or {}).get("params") or {}).get("asr_model") or "?"
            by_cell.setdefault((asr, model_key(r), device_key(r)), []).append(r)
        rows = [{**pair, "cells": [_voice_cell(by_cell.get((*key, dk), [])) for dk in devices]}
                for key, pair in sorted(pairs.items(), key=lambda kv: kv[0][0])]
        out.append({"tier": tier, "id": slug(tier), "devices": list(devices.values()), "rows": rows,
                    "simulated": recs is sim})
    return out


def pooled(runs: list[dict], name: str) -> dict | None:
    """Median and 95% CI of one configuration's runs (identical pool_key), with n."""
    from suite.core.stats import summarize  # lazy: scipy costs ~0.6 s; export imports this module, never pools

    xs: list[float] = []
    for r in runs:
        m = (r.get("metrics") or {}).get(name) or {}
        if m.get("samples"):
            xs += [float(x) for x in m["samples"]]
        elif metric_value(r, name) is not None:
            xs.append(metric_value(r, name))
    if not xs:
        return None
    if len(runs) == 1:
        m = runs[0]["metrics"][name]
        med = metric_value(runs[0], name)
        ci = m.get("ci95")
        return {"median": med, "ci": tuple(ci) if ci else (med, med), "n": int(m.get("n", len(xs)))}
    s = summarize(xs)
    return {"median": s["median"], "ci": tuple(s["ci95"]) if s["ci95"] else (s["median"],) * 2, "n": s["n"]}


def rankings(records: list[dict], name: str) -> list[dict]:
    """Per model artefact and scenario, configurations ranked on `name` with ties by CI overlap.

    A configuration's rank is 1 + the number of configurations whose whole CI is better
    than its whole CI, so overlapping CIs share a rank and are marked tied. Simulated
    devices, runs that did not complete and throttled runs (the record's `throttling`) are left out:
    kept and shown on their pages, never ranked. No ratios are shown.
    """
    spec = METRICS[name]
    groups: dict[tuple, dict[PoolKey, list[dict]]] = {}
    for r in records:
        if is_simulated(r) or r.get("outcome") != Outcome.COMPLETED or metric_value(r, name) is None:
            continue
        k = pool_key(r)
        if k.condition and "throttled" in k.condition:
            continue
        groups.setdefault((k.model_sha256, k.scenario, k.params), {}).setdefault(k, []).append(r)
    tables_out = []
    for (sha, scenario, params), configs in sorted(groups.items(), key=lambda kv: (
            model_sort_key(next(iter(kv[1].values()))[0]), str(kv[0]))):
        entries = []
        for runs in configs.values():
            p = pooled(runs, name)
            if p is None or p["ci"][0] == p["ci"][1]:
                continue  # a single value has no CI: its place in an order cannot be established
            r0 = runs[0]
            lo, hi = p["ci"]
            entries.append({**run_ref(r0), "p": p, "lo": lo, "hi": hi, "tier": tier_of(r0),
                            "runs": len(runs), "conditions": conditions_brief(r0),
                            "rt_detail": str((r0.get("runtime") or {}).get("backend") or "")})
        if len(entries) < 2:
            continue
        sign = 1 if spec.higher_is_better else -1
        for e in entries:
            if spec.higher_is_better:
                better = [o for o in entries if o["lo"] > e["hi"]]
            else:
                better = [o for o in entries if o["hi"] < e["lo"]]
            overlap = [o for o in entries if o is not e and not (o["lo"] > e["hi"] or o["hi"] < e["lo"])]
            e["rank"] = 1 + len(better)
            e["tied"] = bool(overlap)
            e["value"] = fmt_value(e["p"]["median"], spec.unit)
            e["ci_text"] = (f"95% CI {fmt_range(e['lo'], e['hi'], spec.unit)}" if e["lo"] != e["hi"]
                            else "single value: no CI")
            e["n_text"] = f"n={e['p']['n']} over {e['runs']} run{'s' if e['runs'] > 1 else ''}"
        entries.sort(key=lambda e: (e["rank"], -sign * e["p"]["median"], e["device"]))
        first = entries[0]
        tables_out.append({
            "metric": name, "unit": spec.unit,
            "better": "higher is better" if spec.higher_is_better else "lower is better",
            "model": first["model"], "model_href": first["model_href"], "sha": (sha or "")[:12],
            "scenario": f"{scenario} · {scenario_params({'params': json.loads(params)})}", "entries": entries,
        })
    return tables_out


def tier_summary(records: list[dict], names: tuple[str, ...]) -> list[dict]:
    """Per tier (simulated devices excluded) and model: how many devices and configurations
    measured it, and the range of their medians. Ranges, not pooled means: configurations differ."""
    out: dict[tuple, dict] = {}
    for r in sorted(records, key=model_sort_key):
        if is_simulated(r) or r.get("outcome") != Outcome.COMPLETED:
            continue
        # one row per model AND engine (and backend): engines are compared side by side, never mixed
        row = out.setdefault((tier_of(r), model_key(r), engine_label(r)), {
            "tier": tier_of(r), **run_ref(r), "engine": engine_label(r), "devices": set(), "configs": set(),
            "vals": {n: [] for n in names},
        })
        row["devices"].add(device_key(r))
        row["configs"].add(pool_key(r))
        for n in names:
            if (v := metric_value(r, n)) is not None:
                row["vals"][n].append(v)
    rows = []
    for (tier, *_), row in sorted(out.items(), key=lambda kv: (tier_sort_key(kv[0][0]),)):
        cells = []
        for n in names:
            vals, unit = row["vals"][n], METRICS[n].unit
            if not vals:
                cells.append("not measured")
            elif len(vals) == 1:
                cells.append(fmt_value(vals[0], unit))
            else:
                cells.append(f"{fmt_range(min(vals), max(vals), unit)}")
        rows.append({**row, "n_devices": len(row["devices"]), "n_configs": len(row["configs"]), "cells": cells})
    return rows
