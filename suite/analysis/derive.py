"""From a stored run's samples and the bounds measured beside it to its derived metrics: the hottest
temperature, energy and power per phase (with the idle baseline and the charge-counter check), the
roofline and the fraction of it each throughput reaches, and which metrics a missing sensor makes
impossible (with the sensor's reason). One step for every run kind (host, device, imported meter).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from suite.analysis.energy import IDLE_METRICS, charge_counter_summary, idle_metrics
from suite.analysis.metrics import energy_metrics, temperature_metrics
from suite.analysis.roofline import (
    decode_bound_tps,
    decode_bytes_per_token,
    mean_decode_context,
    prefill_bound_tps,
    roofline_fraction,
)
from suite.core.errors import RooflineError
from suite.core.measure import BurstParams
from suite.core.record import Part
from suite.core.schema import CH_CURRENT_A
from suite.core.stats import metric

#: Metrics a run measures only when the device has a power sensor.
POWER_METRICS = ("power_w/avg", "power_w/peak", "energy_j/prefill", "energy_j/decode",
                 "j_per_token/prefill", "j_per_token/decode", "tokens_per_j/decode", *IDLE_METRICS)
POWER_SENSOR = "power_w"

def derive(frame: pd.DataFrame, params: BurstParams, n_reps: int, *, model: Mapping, metrics: Mapping,
           sensors: Mapping, card, bw, compute, llc: int | None, emulated: str | None = None,
           storage: Mapping | None = None, paging: Mapping | None = None) -> Part:
    """What the samples and bounds give: hottest temperature, energy and power, roofline.

    `model`: the record's model block (bytes per token); `metrics`: the run's metrics so far (its
    throughput); `sensors`: its sensors block (availability, the battery at start and end);
    `emulated`: how the runtime ran under emulation, if it did (suite.analysis.derive.roofline_part)."""
    temps = Part(metrics=temperature_metrics(frame))
    if not n_reps:
        return temps
    energy = power_part(frame, params, n_reps, metrics=metrics, sensors=sensors)
    roof = roofline_part(model, {**metrics, **energy.metrics}, card, params, bw, compute, llc, emulated=emulated,
                         storage=storage, paging=paging)
    return Part(metrics={**temps.metrics, **energy.metrics, **roof.metrics}, gaps=energy.gaps,
                unavailable=roof.unavailable, sensors=energy.sensors, roofline=roof.roofline, errors=roof.errors)


def power_part(frame: pd.DataFrame, params: BurstParams, n_reps: int, *, metrics: Mapping,
               sensors: Mapping) -> Part:
    """Energy per phase, the idle baseline and the above-idle figures, the charge-counter check.

    A missing power sensor's reason (e.g. `charging: ...`) stays: the energy step gives its own
    reasons only when the device had power samples to integrate.
    """
    energy, missing = energy_metrics(frame, params, n_reps)
    tokens = {"prefill": params.prompt_tokens * n_reps, "decode": (params.gen_tokens - 1) * n_reps}
    idle, idle_missing = idle_metrics(frame, {**metrics, **energy}, tokens)
    found = {**energy, **idle}
    gaps = {}
    if POWER_SENSOR not in sensors.get("unavailable", {}):
        gaps = {name: reason for name, reason in {**missing, **idle_missing}.items() if name not in found}
    check = _charge_counter(sensors, frame)
    return Part(metrics=found, gaps=gaps, sensors={"charge_counter_check": check} if check is not None else {})


def _charge_counter(sensors: Mapping, frame: pd.DataFrame) -> dict | None:
    """The fuel gauge's coulomb counter against the integrated current (suite.sensors.power)."""
    start, end = sensors.get("battery_start"), sensors.get("battery_end")
    if not start or not end:
        return None
    cur = frame[frame["channel"] == CH_CURRENT_A]["t_s"]
    duration = float(cur.max() - cur.min()) if len(cur) > 1 else 0.0
    return charge_counter_summary(frame, start, end, duration)


def sensor_gaps(avail: dict[str, str | None]) -> dict[str, str]:
    """Metrics that cannot exist because their sensor is missing, with the sensor's reason."""
    gaps: dict[str, str] = {}
    power_reason = avail.get(POWER_SENSOR)
    if power_reason:
        for name in POWER_METRICS:
            gaps[name] = power_reason
    temps = {k: v for k, v in avail.items() if k.startswith("temp_c")}
    if not temps or all(temps.values()):
        gaps["temp_c/max"] = "; ".join(str(v) for v in temps.values()) or "no temperature sensor"
    return gaps


def prefill_params_per_token(card, prompt_tokens: int) -> float:
    """Matmul parameters one prompt token passes through: every layer's weights, plus the
    LM head once per prompt (logits are computed for the last position only). The
    embedding lookup is a gather, not a matmul."""
    head = (card.vocab_size or 0) * (card.hidden_size or 0)
    embeddings = head * (1 if card.tie_word_embeddings else 2)
    return card.params() - embeddings + head / prompt_tokens


def roofline_part(model: Mapping, metrics: Mapping, card, params: BurstParams, bw, compute,
                  llc: int | None, *, emulated: str | None = None, storage: Mapping | None = None,
                  paging: Mapping | None = None) -> Part:
    """Bounds, and the fraction of them each throughput reaches.

    An offloaded decode (`paging["offloaded"]`: its weights streamed from storage) is bound by both memories:
    of the bytes a token reads, those it paged in from storage (`storage_read_bytes_per_token/decode`,
    measured) come at the storage's sequential bandwidth (`storage`, the storage probe: the faster of its
    two figures, so the bound stays an upper bound), the rest at DRAM bandwidth:
    `offload_bound_tps = 1 / (resident / dram_bw + streamed / storage_bw)`.

    A fraction above 1.0 means the probe or the byte count is wrong: the fraction is not
    stored, the error is recorded, and the session raises once the run is safely written.
    Except under emulation (`emulated`: how), where timings mean nothing: there the fraction is
    stored with that label (`emulated`), whatever its value, and is never an error.
    """
    roof: dict = {}
    found: dict = {}
    un: dict = {}
    errors: list = []
    decode = metrics.get("decode_tps")
    prefill = metrics.get("prefill_tps")

    def check(name: str, measured: float, bound: float) -> None:
        if emulated:
            found[name] = metric(name, measured / bound) | {"emulated": emulated}
            return
        try:
            frac = roofline_fraction(measured, bound)
        except RooflineError as exc:
            errors.append({"type": "RooflineError", "message": f"{name}: {exc.message}", "hint": exc.hint})
            un[name] = f"roofline check failed: {exc.message}"
            return
        found[name] = metric(name, frac)

    if bw is None or getattr(bw, "bytes_per_s", None) is None:
        un["roofline_fraction/decode"] = getattr(bw, "reason", None) or "bandwidth probe not run (--no-probe)"
    else:
        source = getattr(bw, "source", "probe")
        roof.update(bandwidth_bytes_per_s=bw.bytes_per_s, bandwidth_source=source,
                    bandwidth_method=bw.method, bandwidth_threads=bw.threads)
        if getattr(bw, "all_cores_bytes_per_s", None):
            roof["bandwidth_all_cores_bytes_per_s"] = bw.all_cores_bytes_per_s
        if getattr(bw, "claimed_bytes_per_s", None):  # the catalog's figure, beside the measured bound
            roof.update(bandwidth_claimed_bytes_per_s=bw.claimed_bytes_per_s, bandwidth_claimed_by=bw.claimed_by)
        if source == "probe":
            found["memory_bandwidth_bytes_per_s"] = metric(
                "memory_bandwidth_bytes_per_s", list(bw.samples)) | {
                "value": bw.bytes_per_s,  # the roofline's bound: the best sample, not the median
                "statistic": f"best of {len(bw.samples)}" if bw.samples else "best"}
        ctx = mean_decode_context(params.decode_context_start, params.gen_tokens)
        per_tok = bound = None
        if model.get("weight_bytes_read_per_token") is not None:
            per_tok = decode_bytes_per_token(model["weight_bytes_read_per_token"], model["kv_bytes_per_position"], ctx)
            bound = decode_bound_tps(per_tok, bw.bytes_per_s)
            roof.update(decode_bytes_per_token=per_tok, decode_bound_tps=bound)
        roof["last_level_cache_bytes"] = llc
        if per_tok is None:  # an engine's own artefact (a .litertlm): how many bytes a token reads is not known
            un["roofline_fraction/decode"] = (f"the model file ({model.get('format')}, the engine's own artefact) "
                                              "does not say how many bytes a token reads")
        elif (paging or {}).get("offloaded"):  # weights streamed from storage: both memories bound the decode
            streamed = (metrics.get("storage_read_bytes_per_token/decode") or {}).get("value")
            seq = (storage or {}).get("storage_read_bw_bytes_per_s/seq")
            if not seq or streamed is None:
                un["roofline_fraction/decode"] = (
                    "the decode ran offloaded (weights read from storage), and the "
                    + ("storage's bandwidth was not measured (the storage probe runs with fit --beyond-ram)"
                       if not seq else "bytes it read from storage per token were not measured"))
            else:
                streamed = min(float(streamed), per_tok)
                resident = per_tok - streamed
                offload_bound = offload_bound_tps(resident, bw.bytes_per_s, streamed, seq)
                roof.update(offload_bound_tps=offload_bound, streamed_bytes_per_token=streamed,
                            resident_bytes_per_token=resident, storage_bandwidth_bytes_per_s=seq,
                            storage_method=(storage or {}).get("method"))
                if decode:
                    check("roofline_fraction/decode", decode["value"], offload_bound)
        elif llc and per_tok < CACHE_RESIDENT_MULTIPLE * llc:
            un["roofline_fraction/decode"] = (
                f"the model's {per_tok / 2**20:.1f} MiB read per token is under {CACHE_RESIDENT_MULTIPLE}x the "
                f"{llc / 2**20:.0f} MiB last-level cache: decode runs partly from cache, so DRAM bandwidth does not bound it"
            )
        elif decode:
            check("roofline_fraction/decode", decode["value"], bound)
    if compute is None or compute.flops_per_s is None:
        un["roofline_fraction/prefill"] = getattr(compute, "reason", None) or "compute probe not run (--no-probe)"
    elif card.params() is None:
        un["roofline_fraction/prefill"] = (f"the model file ({model.get('format')}, the engine's own artefact) "
                                           "does not say how many parameters it has")
    else:
        eff = prefill_params_per_token(card, params.prompt_tokens)
        bound = prefill_bound_tps(eff, compute.flops_per_s)
        roof.update(compute_flops_per_s=compute.flops_per_s, compute_method=compute.method,
                    prefill_params_per_token=eff, prefill_bound_tps=bound)
        if getattr(compute, "detail", None):
            roof["compute_detail"] = compute.detail
        if prefill:
            check("roofline_fraction/prefill", prefill["value"], bound)
    return Part(metrics=found, unavailable=un, roofline=roof, errors=tuple(errors))


def offload_bound_tps(resident_bytes: float, dram_bytes_per_s: float, streamed_bytes: float,
                      storage_bytes_per_s: float) -> float:
    """Tokens per second a decode cannot beat when `streamed_bytes` of each token come from storage and
    `resident_bytes` from DRAM: 1 / (resident / dram_bw + streamed / storage_bw)."""
    seconds = resident_bytes / dram_bytes_per_s + streamed_bytes / storage_bytes_per_s
    if seconds <= 0:
        raise ValueError("a token that reads no bytes has no bound")
    return 1.0 / seconds


#: A model reading less than this multiple of the LLC per token is not DRAM-bound.
CACHE_RESIDENT_MULTIPLE = 4
