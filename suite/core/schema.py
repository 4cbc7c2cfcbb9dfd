"""The names every layer shares: run record fields, outcomes, metrics, sample channels.

This module and docs/schema.md own these names (DESIGN.md section 2). Code imports them
from here and never retypes a metric or channel string.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: 2: one naming scheme for llama.cpp (`llama.cpp` = the engine through its benchmark binary,
#: `llama-cpp-python` = in process; suite.store's upgrade step renames version-1 runs)
#: 3: each metric with an interval says how it was computed (`ci_method`; positive quantities on the
#: log scale) and flags few samples (`small_n`); version-2 runs are upgraded to say theirs was the t-interval
#: 4: sustained windows last at least `min_window_s` (version-3 sustained runs get 0: one window per
#: generation) and `stability_pct` holds a percentage (a fraction stored by mistake is fixed on upgrade)
#: 5: memory and paging (`rss_file_bytes/peak`, `rss_anon_bytes/peak`, `major_faults_per_token/decode`,
#: `storage_read_bytes_per_token/decode`, `mem_available_bytes/min`, `swap_delta_bytes`, the storage probe's
#: bandwidths) and the `paging` block (whether decode streamed its weights from storage: `offloaded`);
#: version-4 runs say these were not measured then
SCHEMA_VERSION = 5

#: Top-level keys of run.json, in the order they are written.
RUN_FIELDS = (
    "schema_version",
    "run_id",
    "started_at",
    "ended_at",
    "outcome",
    "errors",
    "origin",
    "host",
    "device",
    "model",
    "runtime",
    "scenario",
    "conditions",
    "roofline",
    "sensors",
    "metrics",
    "unavailable",
)

#: Top-level keys a record may carry beyond RUN_FIELDS (same schema_version: readers ignore
#: what they do not know): `labels` (badges such as "fixture", "synthetic-store"),
#: `provisioning` (what a device run pushed or found cached), `import` (the source file,
#: lines and problems of an imported run), `runner_output` (non-event lines a device-side
#: runner printed), `power_meter` (the external meter log that gave `power_w`), `supersedes`
#: (the run id this run replaces: same measurement, re-derived, e.g. with a meter's log),
#: `lab` (the lab plan, job key and attempt a run belongs to), `throttling` (whether a measured run's
#: prefill or decode ran under a falling frequency ceiling or a thermal status: suite.analysis.throttling),
#: `thermal` (the sustained scenario's windows and evidence), `paging` (what the runtime kept resident and
#: read from storage during decode, and whether it ran offloaded: suite.analysis.paging).
OPTIONAL_RUN_FIELDS = ("labels", "provisioning", "import", "runner_output", "power_meter", "supersedes", "lab",
                       "throttling", "thermal", "paging")


#: how a metric's `ci95` was computed (its `ci_method`): positive quantities on the log scale
CI_LOG_T = "t on the log scale: a 95% interval of the geometric mean, never below 0"
CI_T = "t: a 95% interval of the mean"
#: fewer samples than this: the interval says little (a metric's `small_n`)
SMALL_N = 5


class Outcome(StrEnum):
    """How a run ended. Only `completed` runs carry a full set of metrics."""

    COMPLETED = "completed"
    PARTIAL = "partial"
    OOM = "oom"
    CRASHED = "crashed"
    LOAD_FAILED = "load_failed"
    TIMEOUT = "timeout"
    DISCONNECTED = "disconnected"
    INTERRUPTED = "interrupted"
    #: the run ended but its figures cannot stand (zero turns or tokens, a zero duration, an infinite
    #: rate, or the tool itself said it failed): kept with the reason, never a metric
    FAILED = "failed"


class Origin(StrEnum):
    """Where a run's numbers come from."""

    MEASURED = "measured"  # measured by edgebench itself
    IMPORTED = "imported"  # converted from another tool's output (e.g. llama-bench)


class Phase(StrEnum):
    WARMUP = "warmup"
    PREFILL = "prefill"
    DECODE = "decode"
    IDLE = "idle"
    #: speech recognition of a voice turn (log-mel, encoder, decoder steps): the voice scenario
    ASR = "asr"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str
    higher_is_better: bool
    description: str
    #: a quantity that cannot be below 0 (a throughput, a time, bytes, energy): its interval is taken on
    #: the log scale; False for differences (above idle), temperatures and status levels
    positive: bool = True


def _specs(*specs: MetricSpec) -> dict[str, MetricSpec]:
    return {s.name: s for s in specs}


METRICS: dict[str, MetricSpec] = _specs(
    MetricSpec("prefill_tps", "tok/s", True, "prompt tokens processed per second (one batch)"),
    MetricSpec("decode_tps", "tok/s", True, "generated tokens per second, excluding the first"),
    MetricSpec("ttft_s", "s", False, "time to first token: prefill plus first sample"),
    MetricSpec("decode_latency_s/p50", "s", False, "median per-token decode latency"),
    MetricSpec("decode_latency_s/p90", "s", False, "90th percentile per-token decode latency"),
    MetricSpec("decode_latency_s/p99", "s", False, "99th percentile per-token decode latency"),
    MetricSpec("load_s", "s", False, "model load time"),
    MetricSpec("peak_rss_bytes", "bytes", False, "peak resident set size of the runtime process"),
    MetricSpec("peak_pss_bytes", "bytes", False, "peak proportional set size of the runtime process"),
    # memory and paging (schema 5): file-backed pages can be evicted and read again from storage (a
    # memory-mapped model larger than RAM); anonymous ones cannot (they would be swapped, or the process killed)
    MetricSpec("rss_file_bytes/peak", "bytes", False, "peak file-backed resident bytes of the runtime (RssFile)"),
    MetricSpec("rss_anon_bytes/peak", "bytes", False, "peak anonymous resident bytes of the runtime (RssAnon)"),
    MetricSpec("rss_file_bytes/decode_peak", "bytes", False, "peak file-backed resident bytes during decode"),
    MetricSpec("major_faults_per_token/decode", "faults/tok", False,
               "major page faults (pages read from storage) per generated token", positive=False),
    MetricSpec("storage_read_bytes_per_token/decode", "bytes/tok", False,
               "bytes the runtime read from storage per generated token (/proc/PID/io read_bytes)", positive=False),
    MetricSpec("mem_available_bytes/min", "bytes", True, "lowest MemAvailable of the device during the run"),
    MetricSpec("swap_delta_bytes", "bytes", False, "swap (zram) used at the end minus at the start of the run",
               positive=False),
    MetricSpec("storage_read_bw_bytes_per_s/seq", "bytes/s", True, "the device's sequential storage read bandwidth"),
    MetricSpec("storage_read_bw_bytes_per_s/rand4k", "bytes/s", True,
               "the device's random 4 KiB storage read bandwidth (queue depth 1)"),
    MetricSpec("energy_j/prefill", "J", False, "energy integrated over the prefill phases"),
    MetricSpec("energy_j/decode", "J", False, "energy integrated over the decode phases"),
    MetricSpec("j_per_token/prefill", "J/tok", False, "energy per prompt token"),
    MetricSpec("j_per_token/decode", "J/tok", False, "energy per generated token"),
    MetricSpec("tokens_per_j/decode", "tok/J", True, "generated tokens per joule"),
    MetricSpec("power_w/avg", "W", False, "average power over the measured phases"),
    MetricSpec("power_w/peak", "W", False, "peak sampled power"),
    MetricSpec("power_w/idle", "W", False, "idle baseline power before the run"),
    MetricSpec("power_w/avg_above_idle", "W", False, "average power over the measured phases minus the idle baseline", positive=False),
    MetricSpec("energy_j/prefill_above_idle", "J", False, "prefill energy minus idle power x prefill time", positive=False),
    MetricSpec("energy_j/decode_above_idle", "J", False, "decode energy minus idle power x decode time", positive=False),
    MetricSpec("j_per_token/prefill_above_idle", "J/tok", False, "above-idle energy per prompt token", positive=False),
    MetricSpec("j_per_token/decode_above_idle", "J/tok", False, "above-idle energy per generated token", positive=False),
    MetricSpec("temp_c/max", "degC", False, "hottest temperature seen during the run", positive=False),
    MetricSpec("thermal_status/max", "status", False, "highest thermal status (0 NONE .. 6 SHUTDOWN)", positive=False),
    MetricSpec("stability_pct", "%", True, "100 x worst window throughput / best window throughput"),
    MetricSpec("time_to_throttle_s", "s", True,
               "first of 3 consecutive windows under 90% of the initial throughput"),
    MetricSpec("roofline_fraction/decode", "fraction", True, "decode throughput / memory-bandwidth bound"),
    MetricSpec("roofline_fraction/prefill", "fraction", True, "prefill throughput / compute bound"),
    MetricSpec("memory_bandwidth_bytes_per_s", "bytes/s", True, "measured read bandwidth of the device"),
    # speech recognition (whisper.cpp's own timings: load, log-mel spectrogram, encoder, decoder)
    MetricSpec("asr_load_s", "s", False, "speech model load time"),
    MetricSpec("asr_mel_s", "s", False, "log-mel spectrogram of the audio"),
    MetricSpec("asr_encode_s", "s", False, "audio encoder time"),
    MetricSpec("asr_decode_s", "s", False, "text decoder time"),
    MetricSpec("asr_total_s", "s", False, "speech recognition processing: log-mel + encoder + decoder steps"),
    MetricSpec("asr_rtf", "x", False, "speech recognition time / audio duration (under 1: faster than real time)"),
    # a voice turn (the voice scenario)
    MetricSpec("turn_latency_s", "s", False, "end of speech to the first reply token (ASR + reply prefill)"),
    MetricSpec("energy_j/turn", "J", False, "energy of one voice turn: ASR, reply prefill and reply decode"),
    MetricSpec("reply_speech_ratio", "x", True, "reply decode tok/s / the speaking rate in tok/s"),
    MetricSpec("voice_resident_bytes", "bytes", False, "memory of the speech model and the LLM resident together"),
)


def metric_spec(name: str) -> MetricSpec:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


# --- samples.parquet -------------------------------------------------------------------
#: Long format; t_s is seconds on the device clock relative to the run start.
SAMPLE_COLUMNS = ("t_s", "channel", "value")

CH_POWER_W = "power_w"
CH_CURRENT_A = "current_a"
CH_VOLTAGE_V = "voltage_v"
CH_TEMP_BATTERY = "temp_c/battery"
CH_RSS_BYTES = "rss_bytes"
#: the runtime's resident bytes by kind (/proc/PID/status RssAnon, RssFile)
CH_RSS_ANON_BYTES = "rss_anon_bytes"
CH_RSS_FILE_BYTES = "rss_file_bytes"
#: the runtime process's cumulative counters as read (a new process starts again from 0):
#: /proc/PID/stat majflt, /proc/PID/io read_bytes
CH_MAJOR_FAULTS = "major_faults"
CH_STORAGE_READ_BYTES = "storage_read_bytes"
#: the device's /proc/meminfo MemAvailable and swap in use (SwapTotal - SwapFree)
CH_MEM_AVAILABLE_BYTES = "mem_available_bytes"
CH_SWAP_USED_BYTES = "swap_used_bytes"
CH_THERMAL_STATUS = "thermal_status"
#: The values of `thermal_status` (Android ThrottlingSeverity / PowerManager.THERMAL_STATUS_*).
THERMAL_STATUS = {0: "NONE", 1: "LIGHT", 2: "MODERATE", 3: "SEVERE", 4: "CRITICAL", 5: "EMERGENCY", 6: "SHUTDOWN"}
CH_DECODE_TPS_WINDOW = "decode_tps_window"
CH_CPU_UTIL_PCT = "cpu_util_pct"
#: The device's own power reading when an external meter's log gives `power_w`.
CH_POWER_W_DEVICE = "power_w_device"
#: Phase markers: channel "phase/<name>", value 1.0 at the phase start and 0.0 at its end.
CH_PHASE_PREFIX = "phase/"


def ch_temp_hal(name: str) -> str:
    return f"temp_c/hal/{name}"


def ch_temp_tz(zone_type: str) -> str:
    return f"temp_c/tz/{zone_type}"


def ch_cpufreq_cur(policy: str) -> str:
    return f"cpufreq_cur_khz/{policy}"


def ch_cpufreq_max(policy: str) -> str:
    return f"cpufreq_max_khz/{policy}"


def ch_phase(phase: Phase | str) -> str:
    return f"{CH_PHASE_PREFIX}{Phase(phase).value}"


#: Sign convention: current and power are positive while the device draws from its battery.
SIGN_CONVENTION = "positive while discharging"

#: A statistic is flagged unstable when its coefficient of variation exceeds this.
UNSTABLE_CV = 0.05
