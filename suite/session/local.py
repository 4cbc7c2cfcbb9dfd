"""The session's parts that every run shares, and this host as a target.

The request (`RunRequest`), the model it names (`resolve_model`), what a run knows at its start
(`new_head`), what it measured (`Measured`) and the one store step (`store_run`: samples,
sensors, end conditions, the meter, the scenario's analysis, derivation; the record built once
from those parts; one atomic write, whatever the outcome); `Host` and `_HostWay`: a Python
runtime in this process, sampled by a child process, with the roofline probes measured here.
The session itself is suite.session.run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psutil

from suite.analysis import metrics as analysis
from suite.analysis.affinity import affinity_check
from suite.analysis.derive import POWER_METRICS, POWER_SENSOR, derive, power_part, sensor_gaps
from suite.analysis.paging import paging_part
from suite.analysis.throttling import phase_throttling
from suite.catalog.cards import ModelCard, get_model_card
from suite.core.errors import EdgebenchError
from suite.core.record import Failure, Part, RunHead, build_record, superseding, utc_now
from suite.core.schema import (
    CH_POWER_W,
    CH_RSS_BYTES,
    SAMPLE_COLUMNS,
    Origin,
)
from suite.core.stats import metric
from suite.device.identity import local_device_info
from suite.models import BuiltModel, build_model, default_models_dir
from suite.models.record import model_record
from suite.models.user_file import artefact_from_file
from suite.runtimes import RUNTIMES, BurstParams, Repetition, Runtime, get_runtime, is_native
from suite.sensors import power
from suite.sensors.probe import (
    ComputePeakResult,
    last_level_cache_bytes,
    measure_compute_peak,
    measure_memory_bandwidth,
)
from suite.sensors.process import ProcessSampler
from suite.store import load_run, write_run

log = logging.getLogger(__name__)

#: (message) -> None: the CLI shows these as progress.
Status = Callable[[str], None]


@dataclass
class RunRequest:
    model_id: str
    runtime: str = "ort-genai"
    device: str = "local"
    params: BurstParams = field(default_factory=BurstParams)
    quant: str | None = None  # default per format: int4 (onnx), q4_0 (gguf)
    seed: int = 0
    models_dir: Path | None = None
    results_dir: Path = Path("results")
    sample_rate_hz: float = 10.0
    probe: bool = True
    #: a user's real checkpoint (GGUF, or an ort-genai ONNX folder) instead of a built card
    model_file: Path | None = None
    #: seconds of idle sampling before the model loads: the baseline of `power_w/idle` and the
    #: above-baseline figures (0: none; skipped when the device has no power reading)
    idle_s: float = 0.0
    #: an external power meter's CSV log, read when the run ends and aligned by timestamps
    power_meter: Path | None = None
    #: the meter's clock minus this host's clock (s), when the meter logs on another machine
    meter_offset_s: float = 0.0
    #: a native runtime's bundle (the user's build): a folder with its binary and libraries
    runtime_bundle: Path | None = None
    #: the lab job this run belongs to (plan, plan sha256, job key, attempt, line, controller)
    lab: dict | None = None
    #: other files the runtime needs, by the name it declares (`inputs`): ExecuTorch's tokenizer
    inputs: dict[str, Path] = field(default_factory=dict)
    #: how long one native invocation may run (None: suite.runtimes.base.INVOCATION_TIMEOUT_S); past it the
    #: run is stored with outcome `timeout`
    timeout_s: float | None = None


def resolve_model(req: RunRequest, runtime, say: Status = lambda _m: None):
    """(card, built artefact, what the runtime loads): the user's file, or a card built here."""
    fmt = runtime.formats[0]
    if req.model_file is not None:
        card, built = artefact_from_file(req.model_file)
        if built.format not in runtime.formats:
            raise EdgebenchError(
                f"{req.model_file} is {built.format}; runtime {runtime.name} loads {', '.join(runtime.formats)}",
                hint="GGUF runs on llama.cpp or llama-cpp-python, an ort-genai ONNX folder on ort-genai, a .litertlm "
                     "file on litert-lm(-python), a .pte on executorch, a Genie config on genie", exit_code=2)
        return card, built, (built.path if built.format == "onnx" else built.model_file)
    card = get_model_card(req.model_id)
    say(f"model {card.id}: checking the build")
    built = build_model(card, fmt=fmt, quant=req.quant, seed=req.seed, out_root=req.models_dir or default_models_dir())
    return card, built, built.path


def new_head(device: dict, card: ModelCard, built: BuiltModel, runtime: dict, params: BurstParams,
             conditions: dict, *, model: dict | None = None, scenario: dict | None = None, lab: dict | None = None,
             blocks: dict | None = None) -> RunHead:
    """What a measured run knows when it starts. `model`: the model block when it is not a built
    card's (a user's file); `scenario`: the scenario block (default: burst with `params`); `lab`:
    the lab job the run belongs to (plan, job key, attempt...), recorded as the `lab` block."""
    return RunHead(origin=Origin.MEASURED, device=device, model=model or model_record(card, built), runtime=runtime,
                   scenario=scenario or {"name": "burst", "params": params.to_dict()}, conditions=conditions,
                   started_at=utc_now(), lab=lab, blocks=blocks or {})


class Host:
    """This host as the session's target: identity from psutil and procfs, the sampler in a child
    process on this host's monotonic clock, no provisioning (the runtime runs in this process)."""

    transport = None

    def __init__(self, say: Status, native_way: Callable | None = None) -> None:
        """`native_way(runtime, req, device, say, windows=...)`: the way a native runtime runs here
        (suite.session.device.HostNativeWay, given by the session: that module builds on this one)."""
        self.device = local_device_info()
        self.name = "this host"
        self._native_way = native_way

    def way(self, runtime: Runtime, req: RunRequest, say: Status, *, windows: bool = False):
        """A Python runtime in this process (every repetition is reported); a native runtime's binary
        through the local transport, as on a phone (suite.session.device.HostNativeWay)."""
        if is_native(runtime):
            if self._native_way is None:
                raise EdgebenchError(f"the {runtime.name} runtime runs a native binary: this host was given no way "
                                     "to run one")
            return self._native_way(runtime, req, self.device.to_dict(), say, windows=windows)
        return _HostWay(runtime, req, self.device.to_dict(), say)

    def provision(self, files: dict, push_progress):
        return None  # nothing to push: the model is read where it was built

    def start_conditions(self) -> dict:
        return _local_conditions()

    def llc(self) -> int | None:
        return last_level_cache_bytes()

    def sampler(self, req: RunRequest, pid_file: str | None):
        """(sampler, t0, time base): the child-process sampler of this process, t0 on the monotonic
        clock. A native runtime's way names a pid file (its invocations are processes of their own): then
        the realtime clock its invocations stamp their phases with, and the memory of the process it names."""
        if pid_file is not None:
            sampler = ProcessSampler(rate_hz=req.sample_rate_hz, clock=time.time, pid_file=Path(pid_file))
            sampler.t0 = t0 = time.time()
            return sampler, t0, power.clock_block(t0)
        sampler = ProcessSampler(rate_hz=req.sample_rate_hz)
        t0 = time.monotonic()
        sampler.t0 = t0
        return sampler, t0, power.clock_block(time.time() - (time.monotonic() - t0))

    def idle(self, sampler, idle_s: float, t0: float, say: Status):
        return measure_idle(sampler, idle_s, t0, say)

    def end_conditions(self, failures) -> dict:
        return _local_end_conditions()


class _HostWay:
    """A Python runtime in this process: the roofline probes run here before and after it (the
    best of both), and the kernel's peak-RSS mark is reset before it loads."""

    pid_file = None
    events = None

    def __init__(self, runtime: Runtime, req: RunRequest, device: dict, say: Status) -> None:
        self.runtime, self.req, self.device, self.say = runtime, req, device, say
        self.done: list[Repetition] = []
        self.load_s: float | None = None
        self.probes: Probes | None = None
        self.bw = self.compute = None
        self.info: dict | None = None
        self.peak_rss_reset: str | None = None

    def model(self):
        card, built, self.artefact = resolve_model(self.req, self.runtime, self.say)
        self.card = card
        return card, built

    def files(self, card, built) -> dict:
        return {}

    def provisioned(self, report) -> dict:
        return {"name": self.runtime.name, "version": self.runtime.version(), "backend": None,
                "threads": self.req.params.threads, "affinity": None}

    def measure_bounds(self) -> None:
        threads = self.req.params.threads or self.device["cpu"].get("logical_cores") or 1
        self.probes = Probes(self.card, self.req.params, threads, self.runtime) if self.req.probe else None
        if self.probes:
            self.say("probing memory bandwidth and int4 compute peak")
            self.probes.measure()

    def before_sampling(self) -> None:
        # The probes' buffers must not count as the runtime's memory: reset the kernel's
        # peak-RSS mark (VmHWM) of this process before the runtime loads.
        self.peak_rss_reset = _reset_peak_rss()

    def execute(self, sampler, t0: float, on_rep) -> Measured:
        def keep(i: int, total: int, rep: Repetition) -> None:
            self.done.append(rep)
            if on_rep:
                on_rep(i, total, rep)

        try:
            result = self.runtime.run_burst(self.artefact, self.req.params, on_rep=keep)
        finally:
            sampler.stop()
        self.load_s = result.load_s
        self.info = result.info
        if self.probes:
            # Probing again after the run and keeping the best of both makes the peak
            # estimate robust to a busy moment during either probe.
            self.say("probing again")
            self.probes.measure()
            self.bw, self.compute = self.probes.best()
        return self.measured()

    def measured(self) -> Measured:
        return Measured.from_reps(self.done, self.req.params, self.load_s,
                                  Part(runtime=self.info or {}, sensors={"peak_rss_reset": self.peak_rss_reset}))

    def stop(self, sampler, *, kill: bool) -> None:
        stop_sampler(sampler)


def stop_sampler(sampler) -> None:
    """Stop a sampler that may not have started (a failure before it did)."""
    try:
        sampler.stop()
    except RuntimeError:  # not started
        pass


@dataclass(frozen=True)
class Measured:
    """What a run measured, as the session derives and stores it: phase spans (absolute, on the
    clock of t0), throughput metrics, the number of measured repetitions, the burst parameters as
    the analysis must count them, the repetitions themselves (a scenario's own analysis reads
    them), what the way found beside them (`part`: the runtime block as the runtime reported it,
    sensor notes, the runner's output) and why the runtime failed, if it did."""

    spans: dict[str, list[tuple[float, float]]]
    metrics: dict
    n_reps: int
    params: BurstParams
    reps: tuple[Repetition, ...] = ()
    part: Part = Part()
    failures: tuple[Failure, ...] = ()

    @classmethod
    def from_reps(cls, reps: list[Repetition], params: BurstParams, load_s: float | None, part: Part = Part(),
                  failures: tuple[Failure, ...] = ()) -> Measured:
        """An in-process runtime's (or the device runner's) repetitions."""
        return cls(analysis.phase_intervals(reps), analysis.burst_metrics(reps, params, load_s),
                   sum(1 for r in reps if not r.warmup), params, tuple(reps), part, failures)


@dataclass(frozen=True)
class Stored:
    """A stored run: its folder and its record (as written)."""

    path: Path
    record: dict


@dataclass(frozen=True)
class Finishing:
    """What a scenario's `finish` sees of a run about to be stored: the sampler's rows (t_s
    relative to t0), the runtime's repetitions, t0, and the sensors block (what was sampled)."""

    rows: list
    reps: tuple[Repetition, ...]
    t0: float
    sensors: dict


def store_run(req, head: RunHead, sampler, measured: Measured, failures: list[Failure], *, card, bw, compute,
              t0: float, llc: int | None, end_conditions: dict, idle: tuple[float, float] | None = None,
              finish=None, time_base: dict | None = None, storage: dict | None = None) -> Stored:
    """The one store step, whatever the outcome: samples, sensors, the external meter, the
    scenario's own analysis, derivation; the record built once from its parts; one atomic write.

    `llc`: the device's last-level cache in bytes (None: unknown); `end_conditions`: the
    end-of-run conditions; `idle`: the idle-baseline window (absolute times on the clock of t0),
    if one was measured; `finish(Finishing) -> (Part, rows)`: a scenario's analysis and its own
    sample rows (t_s relative to t0); `storage`: the device's storage read bandwidths (the storage probe,
    suite.session.storage), the bound of an offloaded decode.
    """
    ended_at = utc_now()
    failures = [*measured.failures, *failures]
    spans = dict(measured.spans)
    if idle is not None:
        spans["idle"] = [idle]
    rows = analysis.phase_rows(spans, t0)
    sampled = list(sampler.rows)
    rows.extend(sampled)
    avail = sampler.availability()
    sensors = {**({"time_base": time_base} if time_base is not None else {}), **measured.part.sensors,
               **sampler.notes, "available": sorted(k for k, v in avail.items() if v is None),
               "unavailable": {k: v for k, v in avail.items() if v is not None}}
    power_source = sampler.power_source or None
    scenario = Part()
    if finish is not None:
        scenario, extra_rows = finish(Finishing(sampled, measured.reps, t0, sensors))
        rows.extend(extra_rows)
    meter, errors = {}, []
    if req.power_meter is not None:
        try:
            applied = power.apply_meter(rows, power.load_meter_csv(req.power_meter), sensors=sensors,
                                        power_source=power_source, offset_s=req.meter_offset_s)
        except (OSError, ValueError) as exc:  # the run keeps its own power
            errors.append({"type": "PowerMeterError", "message": f"{req.power_meter}: {exc}"})
        else:
            rows, sensors, power_source, meter = applied.rows, applied.sensors, applied.power_source, applied.block
            avail = {**avail, CH_POWER_W: None}
    found = _sensors_part(sampler, avail, sensors, power_source, meter, errors)
    frame = _frame(rows)
    throttling = phase_throttling(frame, cpuinfo_max_khz=sensors.get("cpuinfo_max_khz"))
    held = throttling["caps_below_max_at_start"]
    conditions = {"freq_caps_below_max_at_start": held} if held else {}
    affinity = measured.part.runtime.get("affinity") or head.runtime.get("affinity")
    allowed = affinity_check(sensors.get("runtime_cpus_allowed"), (affinity or {}).get("cpus"),
                             (head.device.get("cpu") or {}).get("clusters"))
    if allowed.get("spans_clusters"):
        conditions["affinity_spans_clusters"] = allowed["spans_clusters"]
    throttle_part = Part(blocks={"throttling": throttling}, conditions=conditions,
                         runtime={"affinity": {**(affinity or {}), **allowed}} if allowed else {})
    paging = paging_part(frame, measured.params, measured.n_reps, model_bytes=head.model.get("bytes"),
                         reasons=avail) if measured.n_reps else Part()
    if storage:
        paging = dataclasses.replace(paging, metrics={**paging.metrics, **{
            k: metric(k, float(storage[k])) | {"method": storage.get("method")}
            for k in ("storage_read_bw_bytes_per_s/seq", "storage_read_bw_bytes_per_s/rand4k") if storage.get(k)}})
    derived = derive(frame, measured.params, measured.n_reps, model=head.model,
                     metrics={**measured.metrics, **found.metrics, **paging.metrics}, sensors=sensors, card=card,
                     bw=bw, compute=compute, llc=llc, emulated=(head.runtime.get("bundle") or {}).get("emulated"),
                     storage=storage, paging=paging.blocks.get("paging"))
    record = build_record(head, Part(metrics=measured.metrics), measured.part, found,
                          Part(conditions=end_conditions), throttle_part, paging, scenario, derived, failures=failures,
                          ended_at=ended_at, completed_reps=measured.n_reps)
    return Stored(write_run(req.results_dir, record, frame), record)


def _sensors_part(sampler, avail: dict, sensors: dict, power_source: str | None, meter: dict,
                  errors: list) -> Part:
    """The sensors block, peak RSS, the metrics a missing sensor makes impossible, the power source."""
    peak = max((p for p in (sampler.peak_rss_bytes, sensors.get("runtime_vm_hwm_bytes")) if p), default=None)
    metrics, unavailable = {}, {}
    if peak:
        metrics["peak_rss_bytes"] = metric("peak_rss_bytes", float(peak))
    else:
        unavailable["peak_rss_bytes"] = avail.get(CH_RSS_BYTES) or "no RSS reading of the runtime process"
    return Part(metrics=metrics, unavailable=unavailable, gaps=sensor_gaps(avail), sensors=sensors,
                conditions={"power_source": power_source} if power_source else {}, errors=tuple(errors),
                blocks={"power_meter": meter} if meter else {})


def measure_idle(sampler, idle_s: float, t0: float, say: Status, *,
                 live_rows: Callable[[], list] | None = None) -> tuple[float, float] | None:
    """Sample an idle device for `idle_s` seconds before the model loads: the window
    (absolute, on the clock of t0) or None when there is nothing to measure (no power reading,
    or idle_s = 0). `live_rows`: the sampler's rows so far (t_s relative to t0), for a sampler
    on another clock (a phone): the window's edges are then its own first and last rows, on the
    device clock whatever the host's clock does. Without it, t0 is this host's monotonic clock."""
    if idle_s <= 0 or sampler.availability().get(POWER_SENSOR) is not None:
        return None
    say(f"idle baseline: {idle_s:g} s")
    if live_rows is None:
        a = time.monotonic()
        time.sleep(idle_s)
        return (a, time.monotonic())
    deadline = time.monotonic() + idle_s + 10.0
    first = last = None
    while time.monotonic() < deadline:
        ts = [t for t, _, _ in live_rows()]
        if ts:
            first = min(ts) if first is None else first
            last = max(ts)
            if last >= first + idle_s:
                break
        time.sleep(0.05)
    return (t0 + first, t0 + last) if first is not None and last > first else None


class StopRun(BaseException):  # noqa: N818 (a signal, like KeyboardInterrupt, not an error)
    """Raised by a scenario from the repetition callback to end a run where it stands (sustained's
    duration): the session stops the runtime and stores the run as completed. A BaseException,
    so that no runtime's `except Exception` takes it for the runtime's own failure."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; carries the folder where the interrupted run was recorded."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def _reset_peak_rss() -> str | None:
    """Reset VmHWM (Linux >= 4.0: write 5 to /proc/self/clear_refs); None or why not."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return None
    except OSError as exc:
        return f"could not reset the peak-RSS mark ({exc.strerror}); peak_rss_bytes includes the probes"


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS)).sort_values("t_s", kind="stable")


def _local_conditions() -> dict:
    """The local host has no battery gating; record what is knowable, unknown stays null."""
    try:
        batt = psutil.sensors_battery()
    except (AttributeError, OSError):
        batt = None
    return {
        "battery_level_start": batt.percent if batt else None,
        "battery_level_end": None,
        "battery_temp_c_start": None,
        "battery_temp_c_end": None,
        "charging": batt.power_plugged if batt else None,
        "thermal_status_start": None,
        "cooldown_waited_s": 0.0,
        "power_source": None,
        "screen": None,
        "prepared": None,
    }


def _local_end_conditions() -> dict:
    try:
        b = psutil.sensors_battery()
        return {"battery_level_end": b.percent if b else None}
    except (AttributeError, OSError):
        return {}


#: Rows of the compute probe's matmul at the least (see Probes.measure).
PROBE_MIN_M = 256


class Probes:
    """The device's bandwidth and compute peak, measured in this session (best of all probes).

    The compute probe runs onnxruntime's int4 MatMulNBits kernel at the model's own largest
    matmul shape (M = prompt tokens, at least 256; K = hidden, N = intermediate): the kernel
    prefill uses.
    """

    def __init__(self, card: ModelCard, params: BurstParams, threads: int, runtime: Runtime) -> None:
        """`runtime.compute_probed`: whether the probe runs that runtime's prefill kernel; another
        runtime's kernels (llama.cpp's Q4_0 dot products) can be faster than onnxruntime's: no honest bound."""
        self.card, self.params, self.threads, self.runtime = card, params, threads, runtime
        self.bandwidth: list = []
        self.compute: list = []

    def measure(self) -> None:
        self.bandwidth.append(measure_memory_bandwidth(threads=self.threads))
        if not self.runtime.compute_probed:
            reason = (f"no compute probe for {self.runtime.name}'s kernels (the probe runs onnxruntime's int4 "
                      "MatMulNBits, which is no bound for another runtime)")
            self.compute.append(ComputePeakResult(None, self.threads, 0, 0, 0, (), "none", reason))
            return
        c = self.card
        if not (c.hidden_size and c.intermediate_size):
            self.compute.append(ComputePeakResult(None, self.threads, 0, 0, 0, (), "none",
                                                  "the model file does not say its matmul shapes"))
            return
        k = c.hidden_size - c.hidden_size % 32 or 32
        self.compute.append(
            # M at least 256: a small prompt's single matmul under-fills the kernel, and a bound
            # must be an upper bound (a 16-token probe once measured below the real prefill)
            measure_compute_peak(threads=self.threads, m=max(self.params.prompt_tokens, PROBE_MIN_M), k=k,
                                 n=c.intermediate_size)
        )

    def best(self):
        bw = max(self.bandwidth, key=lambda b: b.bytes_per_s) if self.bandwidth else None
        ok = [c for c in self.compute if c.flops_per_s is not None]
        compute = max(ok, key=lambda c: c.flops_per_s) if ok else (self.compute[-1] if self.compute else None)
        return bw, compute


def attach_meter(run_dir: Path, meter_csv: Path, *, offset_s: float = 0.0, results_dir: Path | None = None) -> Path:
    """Re-derive a stored burst run with an external meter's log as its power: a NEW run that
    `supersedes` the original (results are append-only; loaders then show only the new one).

    The energy, power and idle figures are recomputed from the meter's samples; everything else
    is the original measurement. Sustained runs take the meter during the run only
    (`edgebench run --power-meter`): their per-window energy is computed as they are stored.
    """
    run_dir = Path(run_dir)
    record = load_run(run_dir)
    scenario = (record.get("scenario") or {}).get("name")
    if scenario != "burst":
        raise EdgebenchError(f"run {record['run_id']} is a {scenario} run: a meter log is attached to burst runs "
                             "after the fact", hint="pass --power-meter CSV to `edgebench run` while it runs",
                             exit_code=2)
    if record.get("origin") != Origin.MEASURED.value:
        raise EdgebenchError(f"run {record['run_id']} was imported, not measured: it has no clock to align to",
                             exit_code=2)
    frame = pd.read_parquet(run_dir / "samples.parquet")
    rows = list(frame.itertuples(index=False, name=None))
    conditions = record.get("conditions") or {}
    try:
        applied = power.apply_meter(rows, power.load_meter_csv(meter_csv), sensors=record.get("sensors") or {},
                                    power_source=conditions.get("power_source"), offset_s=offset_s)
    except (OSError, ValueError) as exc:
        raise EdgebenchError(f"cannot attach {meter_csv} to run {record['run_id']}: {exc}", exit_code=2) from None
    frame = _frame(applied.rows)
    params = BurstParams(**{k: v for k, v in record["scenario"]["params"].items()
                            if k in BurstParams.__dataclass_fields__})
    n_reps = int((record["metrics"].get("decode_tps") or {}).get("n") or 0)
    name = (record.get("runtime") or {}).get("name")
    if name in RUNTIMES and is_native(runtime := get_runtime(name)):
        params = runtime.analysis_params(params)  # e.g. llama-bench times all n_gen decode steps
    kept = {k: v for k, v in record["metrics"].items() if k not in POWER_METRICS}
    found = power_part(frame, params, n_reps, metrics=kept, sensors=applied.sensors) if n_reps else Part()
    metrics = {**kept, **found.metrics}
    unavailable = {k: v for k, v in record.get("unavailable", {}).items()
                   if not k.startswith(power.POWER_METRIC_PREFIXES)}
    for k, reason in found.gaps.items():
        unavailable.setdefault(k, reason)
    new = superseding(record, sensors={**applied.sensors, **found.sensors}, metrics=metrics,
                      unavailable={k: v for k, v in unavailable.items() if k not in metrics},
                      conditions={**conditions, "power_source": applied.power_source}, power_meter=applied.block)
    return write_run(results_dir or run_dir.parent, new, frame)
