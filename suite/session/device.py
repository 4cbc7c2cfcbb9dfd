"""An attached device as the session's target (a phone over adb, the loopback phone, a board).

`Phone`: identity from the device's snapshot, provisioning (cached by hash), the on-device
sampling loop on the device's realtime clock, start and end conditions. The ways a runtime runs
there: `_RunnerWay` (a Python runtime through the device-side runner, its events read as they
come) and `_NativeWay` (a native runtime's bundle). The record has the same schema as a run on
this host; what differs is where numbers come from (the device clock, the device's sensors, the
SoC catalog or a probe run on the device). The session itself is suite.session.run.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.catalog.socs import load_socs
from suite.core.errors import EdgebenchError
from suite.core.filehash import local_sha256
from suite.core.record import Failure, Part
from suite.core.schema import Outcome
from suite.device import provision, settings
from suite.device.identity import lab_salt
from suite.device.live import host_live, is_simulated, read_live
from suite.models import default_models_dir
from suite.runtimes import is_native
from suite.runtimes.base import INVOCATION_TIMEOUT_S, SIGILL_EXIT, DeviceCall, NativeRun, OwnBundle
from suite.runtimes.build.probes import ensure_probes
from suite.runtimes.build.variants import device_variant
from suite.runtimes.remote import (
    RunnerEvents,
    build_runner,
    find_python,
    runner_command,
)
from suite.sensors import power
from suite.sensors.android import AndroidSampler
from suite.sensors.probe import parse_cache_size
from suite.session.local import (
    Finishing,
    Measured,
    RunRequest,
    measure_idle,
    resolve_model,
    stop_sampler,
)
from suite.transport import DeviceError, quote
from suite.transport.local import LocalTransport

#: getprop key of a device whose native binaries run under emulation (the arm64 loopback phone)
EMULATED_PROP = "ro.edgebench.loopback.emulated"

#: Exit status of a process killed by SIGKILL (the kernel OOM killer, lmkd, a cgroup limit).
KILLED = 137

Status = Callable[[str], None]


@dataclass(frozen=True)
class CatalogBandwidth:
    """The SoC catalog's peak DRAM bandwidth, used when no probe ran on the device."""

    bytes_per_s: float
    method: str
    threads: int | None = None
    samples: tuple[float, ...] = ()
    source: str = "catalog"


@dataclass(frozen=True)
class _NoCompute:
    reason: str
    flops_per_s: None = None


@dataclass(frozen=True)
class DeviceProbe:
    """A bandwidth probe's figure on the device (the runner's, or edgebench-membw), with what the
    SoC catalog claims beside it (`claimed_*`) and, for the native probe, the all-cores figure."""

    bytes_per_s: float
    method: str
    threads: int | None
    samples: tuple[float, ...]
    source: str = "probe"
    all_cores_bytes_per_s: float | None = None
    claimed_bytes_per_s: float | None = None
    claimed_by: str | None = None


def _device_llc(transport) -> int | None:
    """The largest cache of cpu0 as the device's sysfs reports it (None if hidden)."""
    r = transport.shell("cat /sys/devices/system/cpu/cpu0/cache/index*/size 2>/dev/null", timeout_s=15)
    sizes = []
    for line in r.stdout.split():
        try:
            sizes.append(parse_cache_size(line.strip()))
        except ValueError:
            continue
    return max(sizes) if sizes else None


def _battery_conditions(snapshot: dict) -> dict:
    batt = snapshot.get("battery") or {}
    status = (batt.get("status") or "")
    return {
        "level": batt.get("level"),
        "temp_c": batt.get("temp_c"),
        "charging": status.lower() in ("charging", "full") if status else None,
        "status": status or None,
    }


def start_conditions(transport, snap: dict) -> dict:
    """The record's `conditions` at the start of a phone run (the end ones are filled later)."""
    batt = _battery_conditions(snap)
    return {
        "battery_level_start": batt["level"], "battery_level_end": None,
        "battery_temp_c_start": batt["temp_c"], "battery_temp_c_end": None,
        "charging": batt["charging"], "battery_status_start": batt["status"],
        "thermal_status_start": (snap.get("thermal") or {}).get("status"),
        "cooldown_waited_s": 0.0, "power_source": None, "screen": None,
        "prepared": _prepared_state(transport),
    }


class _RunnerWay:
    """A Python runtime on a device: the device's Python runs edgebench's runner (a zip application
    of `suite`), which imports the runtime there and streams its events as JSON lines."""

    def __init__(self, runtime, req: RunRequest, transport, live, device: dict, say: Status) -> None:
        self.runtime, self.req, self.transport, self.device, self.say = runtime, req, transport, device, say
        self.bw = self.compute = None
        self.python = find_python(transport, live.props, runtime.python_module)
        self.pid_file = f"{provision.WORK_DIR}/runner.pid"
        self.events = RunnerEvents()
        self.stream = None
        self.failure: Failure | None = None
        self.output: list[str] | None = None

    def model(self):
        if self.req.model_file is not None:
            raise EdgebenchError(f"--model-file runs on this host, or on a phone with a native runtime; "
                                 f"{self.runtime.name} on a device runs reference cards",
                                 hint="give --model ID, or --runtime llama.cpp (a GGUF file runs there)", exit_code=2)
        return resolve_model(self.req, self.runtime, self.say)[:2]

    def files(self, card, built) -> dict[str, Path]:
        self.say(f"{self.transport.serial}: provisioning {card.id}")
        self.runner = build_runner(default_models_dir().parent / "runner")
        files = {f"models/{card.id}/{built.path.name}/{p.name}": p for p in sorted(built.path.iterdir()) if p.is_file()}
        self.model_name = next(iter(files))
        files["runner/" + self.runner.name] = self.runner
        return files

    def provisioned(self, report: provision.ProvisionReport) -> dict:
        """The record's first runtime block (the runner reports the rest when it is done)."""
        if report.pushed:
            rate = report.throughput_bytes_per_s
            self.say(f"{self.transport.serial}: pushed {report.bytes_pushed / 1e6:.1f} MB"
                     + (f" at {rate / 1e6:.0f} MB/s" if rate else "") + f", {len(report.cached)} file(s) cached")
        self.remote_model = report.remote(self.model_name).rsplit("/", 1)[0]
        self.remote_runner = report.remote("runner/" + self.runner.name)
        return {"name": self.runtime.name, "version": None, "backend": None, "threads": self.req.params.threads,
                "affinity": None}

    def measure_bounds(self) -> None:
        self.bw = _bandwidth(self.transport, self.python, self.remote_runner, self.device, self.req.probe, self.say)
        self.compute = _NoCompute(f"no compute peak for {self.transport.serial}: the SoC catalog has no vendor TOPS "
                                  "figure for its CPU path, and no probe of the runtime's kernels runs on devices yet")

    def before_sampling(self) -> None:
        _kill_stale_runner(self.transport, self.pid_file)

    def execute(self, sampler, t0: float, on_rep) -> Measured:
        p = self.req.params
        args = ["burst", "--runtime", self.runtime.name, "--model", self.remote_model, "--prompt-tokens",
                str(p.prompt_tokens), "--gen-tokens", str(p.gen_tokens), "--reps", str(p.reps), "--warmup",
                str(p.warmup), "--seed", str(p.seed), "--pid-file", self.pid_file]
        if p.threads:
            args += ["--threads", str(p.threads)]
        total = p.warmup + p.reps
        events = self.events
        self.stream = self.transport.stream(runner_command(self.python, self.remote_runner, args))
        for line in self.stream.lines():
            ev = events.feed(line)
            if ev is None:
                continue
            if ev["event"] == "start" and ev.get("pid"):
                sampler.set_pid(ev["pid"])
            elif ev["event"] == "rep" and on_rep:
                on_rep(ev["i"], total, events.reps[-1])
        _let_sampler_pass(sampler, events, t0)
        sampler.stop()
        stream = self.stream
        self.failure = _outcome(events, stream.exit_code, stream.stderr if hasattr(stream, "stderr") else b"")
        if events.noise:
            self.output = events.noise[-20:]
        return self.measured()

    def measured(self) -> Measured:
        ev = self.events
        # the runner's own VmHWM: true on any device, whatever the sampler's shell can see
        part = Part(runtime=ev.info or {}, sensors={"runtime_vm_hwm_bytes": ev.vm_hwm_bytes},
                    blocks={"runner_output": self.output} if self.output else {})
        return Measured.from_reps(ev.reps, self.req.params, ev.load_s, part,
                                  (self.failure,) if self.failure else ())

    def stop(self, sampler, *, kill: bool) -> None:
        _stop_quietly(self.stream, sampler, self.transport if kill else None, self.pid_file)


class _NativeWay:
    """A native runtime's bundle on a device (suite.runtimes.base.NativeRuntime): the bundle's ABI is
    checked before anything is pushed; the runtime plans and runs its invocations on the device's shell.
    Each invocation writes its pid to `pid_file`, which the sampler follows (the runtime's memory)."""

    def __init__(self, runtime, req: RunRequest, transport, live, device: dict, say: Status, *,
                 windows: bool = False) -> None:
        self.pid_file = f"{provision.WORK_DIR}/{runtime.name}.pid"
        self.runtime, self.req, self.transport, self.live, self.device, self.say = runtime, req, transport, live, \
            device, say
        self.windows = windows
        self.abi = (live.props.get("ro.product.cpu.abi")
                    or transport.shell("getprop ro.product.cpu.abi", timeout_s=15).stdout).strip()
        self.own: OwnBundle | None = None
        if req.runtime_bundle is not None:
            self.bundle_dir = Path(req.runtime_bundle)
        else:  # edgebench's own build for this device (built once, cached)
            self.own = runtime.own_bundle(live, say)
            self.bundle_dir = self.own.path
        # before anything is pushed
        self.checked = runtime.check_bundle(self.bundle_dir, self.own.abi if self.own else self.abi)
        self.result: NativeRun | None = None
        self.bw = self.compute = None
        self.events = None
        #: {from, to, why, pushed} after a SIGILL fallback
        self.fallback: dict | None = None
        self.probes, self.probe_reason = None, "not built"

    def model(self):
        return resolve_model(self.req, self.runtime, self.say)[:2]

    def files(self, card, built) -> dict[str, Path]:
        self.say(f"{self.transport.serial}: provisioning {self.runtime.name} and {card.id}")
        digest = built.manifest.get("model_sha256", "")[:12] or built.path.name
        model = {f"models/{card.id}/{digest}/{k}": v for k, v in self._model_files(built).items()}
        self.model_name = next(iter(model))
        self.input_names = {name: f"inputs/{name}/{local_sha256(path)[:12]}/{Path(path).name}"
                            for name, path in self.req.inputs.items()}
        folder = self.runtime.name
        files = {**model, **{key: Path(self.req.inputs[name]) for name, key in self.input_names.items()},
                 **{f"{folder}/{k}": v for k, v in self.runtime.bundle_files(self.bundle_dir).items()}}
        self.probes, self.probe_reason = self._build_probes() if self.req.probe else (None, None)
        if self.probes is not None:
            files |= {f"{PROBES_DIR}/{k}": v for k, v in self.probes.files().items()}
        return files

    def _model_files(self, built) -> dict[str, Path]:
        """Every file of the model to push, the first the one the runtime loads (the runtime's
        `model_files` where it has one: a Genie config and the binaries it names)."""
        hook = getattr(self.runtime, "model_files", None)
        return hook(built, self.req.params) if hook else {built.model_file.name: built.model_file}

    def _build_probes(self):
        """(the native probes for this device's ABI and the runtime's CPU variant, None) or (None, why not)."""
        try:
            if self.own is not None:
                abi, variant = self.own.abi, self.own.record["variant"]
            else:  # a user's bundle: the probes of the variant the device's cpuinfo allows
                abi, _note, choice = device_variant(self.live)
                variant = choice.variant.name
            return ensure_probes(abi, variant), None
        except EdgebenchError as exc:
            return None, exc.message

    # where the files are on the device (a host subclass runs them where they are built)
    def _bundle_remote(self) -> str:
        return f"{provision.WORK_DIR}/{self.runtime.name}"

    def _model_remote(self, report) -> str:
        return report.remote(self.model_name)

    def _inputs_remote(self, report) -> dict[str, str]:
        return {name: report.remote(key) for name, key in self.input_names.items()}

    def _probes_remote(self) -> str:
        return f"{provision.WORK_DIR}/{PROBES_DIR}"

    def _provide(self, files: dict[str, Path]):
        """Push what a fallback needs (the lower variant and its probes); the provisioning report."""
        return provision.ensure_files(self.transport, files)

    def provisioned(self, report: provision.ProvisionReport) -> dict:
        self.call = DeviceCall(transport=self.transport, live=self.live, device=self.device,
                               params=self.req.params, bundle_dir=self.bundle_dir,
                               bundle_remote=self._bundle_remote(),
                               model_remote=self._model_remote(report), say=self.say, windows=self.windows,
                               pid_file=self.pid_file, inputs=self._inputs_remote(report),
                               timeout_s=self.req.timeout_s or INVOCATION_TIMEOUT_S)
        self.plan = self.runtime.prepare(self.call)
        return {**self.plan.runtime, "bundle": self._bundle_block()}

    def _bundle_block(self) -> dict:
        """The record's `runtime.bundle`: where the binary came from, its ABI, and emulation."""
        bundle = {"path": str(self.bundle_dir.resolve()), "abi": self.own.abi if self.own else self.abi,
                  "elf": self.checked}
        emulator = self.live.props.get(EMULATED_PROP)
        if emulator:  # the loopback phone's arm64 binaries run under qemu-user: no timing is the phone's
            bundle["emulated"] = (f"{emulator} user-mode emulation on this host (binfmt_misc): the binary's "
                                  "timings are the emulator's, never a speed claim")
        bundle |= self.own.record if self.own else {"built_by": "user",
                                                    "sha256": self.runtime.binary_sha256(self.bundle_dir)}
        return bundle | ({"fallback": self.fallback} if self.fallback else {})

    def measure_bounds(self) -> None:
        """The native probes on the runtime's cores (and once on all cores); the SoC catalog's peak
        bandwidth beside them as the claimed figure, or as the bound when no probe ran."""
        catalog = _bandwidth(self.transport, None, None, self.device, False, self.say)

        def without(reason: str) -> None:
            self.bw, self.compute = catalog or _NoCompute(reason), _NoCompute(reason)

        if not self.req.probe:
            return without("no probe run (--no-probe)")
        if self.probes is None:
            return without(f"no native probe for this device: {self.probe_reason}")
        try:
            bw, compute = self._run_probes()
        except IllegalInstruction as exc:
            if self.own is None or not self.own.fallback:
                return without(f"the native probe failed: {exc.message}")
            # the variant's instructions are not there, whatever cpuinfo says: fall back now, before any run
            self._fall_back(f"its probe exited 132 (SIGILL): {exc.message}")
            try:
                bw, compute = self._run_probes()
            except (EdgebenchError, DeviceError) as again:
                return without(f"the native probe failed: {again}")
        except (EdgebenchError, DeviceError) as exc:
            self.say(f"{self.transport.serial}: the native probe failed ({exc}); the catalog's bound stands in")
            return without(f"the native probe failed: {exc}")
        if catalog is not None:
            bw = dataclasses.replace(bw, claimed_bytes_per_s=catalog.bytes_per_s, claimed_by=catalog.method)
        self.bw, self.compute = bw, compute

    def _run_probes(self):
        runtime = self.plan.runtime
        aff = runtime.get("affinity") or {}
        logical = (self.device.get("cpu") or {}).get("logical_cores") or 1
        threads = runtime.get("threads") or self.req.params.threads or logical
        return run_probes(self.transport, self._probes_remote(), self.probes.manifest["key"],
                          threads=threads, mask=aff.get("mask") if aff.get("applied") else None, all_cores=logical,
                          say=self.say)

    def before_sampling(self) -> None:
        pass

    def execute(self, sampler, t0: float, on_rep) -> Measured:
        try:
            self.result = self.runtime.execute(self.call, self.plan, on_rep)
            own = self.own
            if self.result.illegal_instruction and own is not None and own.fallback and not self.fallback:
                self._fall_back("it exited 132 (SIGILL)")
                self.result = self.runtime.execute(self.call, self.plan, on_rep)
        finally:
            time.sleep(2.0 / max(self.req.sample_rate_hz, 0.5))  # a sample past the last phase edge
            sampler.stop()
        return self.measured()

    def _fall_back(self, why: str) -> None:
        """The own build's variant died of SIGILL (`why`): the next lower variant, with its probes,
        built, pushed and set up, once."""
        if self.fallback is not None:
            return  # once
        failed = self.own.record.get("variant")
        self.say(f"{self.transport.serial}: the {failed} build was killed by SIGILL ({why}; an instruction this CPU "
                 f"lacks, whatever its /proc/cpuinfo says): trying {self.own.fallback} once")
        self.own = self.runtime.own_bundle(self.live, self.say, variant=self.own.fallback)
        self.bundle_dir = self.own.path
        self.checked = self.runtime.check_bundle(self.bundle_dir, self.own.abi)
        folder = self.runtime.name
        files = {f"{folder}/{k}": v for k, v in self.runtime.bundle_files(self.bundle_dir).items()}
        if self.probes is not None:
            self.probes, self.probe_reason = self._build_probes()
            files |= {f"{PROBES_DIR}/{k}": v for k, v in self.probes.files().items()} if self.probes else {}
        report = self._provide(files)
        self.call = dataclasses.replace(self.call, bundle_dir=self.bundle_dir, bundle_remote=self._bundle_remote())
        self.plan = self.runtime.prepare(self.call)
        self.fallback = {"from": failed, "to": self.own.record.get("variant"), "why": f"{failed}: {why}",
                         "pushed": [f.name for f in report.pushed]}

    def measured(self) -> Measured:
        # a scenario that ended the run early (a raise from on_rep) leaves the plan's partial run
        r = self.result or getattr(getattr(self, "plan", None), "partial", None)
        params = self.runtime.analysis_params(self.req.params)
        if r is not None and r.counted is not None:  # the tool's own token counts, not the asked ones
            params = dataclasses.replace(params, prompt_tokens=r.counted[0], gen_tokens=r.counted[1])
        if r is None:
            return Measured({}, {}, 0, params)
        failures: tuple[Failure, ...] = ()
        blocks = {}
        if r.failure is not None:
            outcome, message = r.failure
            failures = (Failure(Outcome(outcome), "RuntimeFailure", message),)
            blocks["runner_output"] = r.output
        kept = ("version", "backend", "backends", "offload", "engine", "timeline", "tokens",
                "accelerator_loaded", "asr")
        runtime = {k: v for k, v in r.runtime.items() if k in kept}
        if self.fallback is not None:  # the binary that ran is the fallback's
            runtime |= {"bundle": self._bundle_block(), "commands": r.runtime.get("commands")}
        part = Part(runtime=runtime, blocks=blocks, unavailable=r.unavailable)
        return Measured(r.spans, r.metrics, r.n_reps, params, reps=tuple(r.reps), part=part, failures=failures)

    def stop(self, sampler, *, kill: bool) -> None:
        stop_sampler(sampler)
        if kill:  # an invocation the shell call gave up on (a timeout) may still run: the pid file names it
            f, bundle = quote(self.pid_file), quote(self._bundle_remote())
            try:
                self.transport.shell(f"if [ -f {f} ]; then p=$(cat {f}); grep -qF {bundle} /proc/$p/cmdline "
                                     f"2>/dev/null && kill -9 $p; rm -f {f}; fi", timeout_s=15)
            except DeviceError:
                pass


class HostNativeWay(_NativeWay):
    """A native runtime on this host (`suite.session.local.Host`, given this class by the session),
    through the local transport: the same bundle, probes, invocations and fallback as on a phone, run
    where they were built (nothing is pushed), on the host's realtime clock (the invocations'
    `date +%s.%N` markers), its memory followed through the invocations' pid file."""

    def __init__(self, runtime, req: RunRequest, device: dict, say: Status, *, windows: bool = False) -> None:
        transport = LocalTransport()
        super().__init__(runtime, req, transport, host_live(transport), device, say, windows=windows)
        self._pid_dir = tempfile.TemporaryDirectory(prefix="edgebench-pid-")
        self.pid_file = str(Path(self._pid_dir.name) / f"{runtime.name}.pid")

    def files(self, card, built) -> dict[str, Path]:
        model = self._model_files(built)
        if len(model) > 1:
            raise EdgebenchError(f"the {self.runtime.name} runtime runs its model's {len(model)} files on a phone "
                                 "(they are pushed beside each other); not on this host", exit_code=2)
        self.model_file = next(iter(model.values()))
        self.probes, self.probe_reason = self._build_probes() if self.req.probe else (None, None)
        return {}

    def _bundle_remote(self) -> str:
        return str(self.bundle_dir.resolve())

    def _model_remote(self, report) -> str:
        return str(Path(self.model_file).resolve())

    def _inputs_remote(self, report) -> dict[str, str]:
        return {name: str(Path(path).resolve()) for name, path in self.req.inputs.items()}

    def _probes_remote(self) -> str:
        return str(self.probes.path.resolve())

    def _provide(self, files: dict[str, Path]):
        return provision.ProvisionReport(self.transport.serial, "", (), 0.0, 0.0)  # nothing to push

    def execute(self, sampler, t0: float, on_rep) -> Measured:
        try:
            return super().execute(sampler, t0, on_rep)
        finally:
            self._pid_dir.cleanup()


class Phone:
    """An attached device as the session's target: its shell, its identity, its clock and sensors."""

    def __init__(self, ref, say: Status) -> None:
        self.ref = ref
        self.transport = ref.transport()
        self.name = self.transport.serial
        say(f"{self.name}: reading identity")
        self.live = ref.live()
        self.device = self.live.device_info(lab_salt())

    def way(self, runtime, req: RunRequest, say: Status, *, windows: bool = False):
        """A Python runtime through the device-side runner; a native runtime from its bundle (in
        windows mode for a scenario that watches every repetition)."""
        if is_native(runtime):
            return _NativeWay(runtime, req, self.transport, self.live, self.device.to_dict(), say, windows=windows)
        return _RunnerWay(runtime, req, self.transport, self.live, self.device.to_dict(), say)

    def provision(self, files: dict, push_progress) -> provision.ProvisionReport:
        return provision.ensure_files(self.transport, files, progress=push_progress)

    def start_conditions(self) -> dict:
        return start_conditions(self.transport, self.live.snapshot)

    def llc(self) -> int | None:
        return _device_llc(self.transport)

    def sampler(self, req: RunRequest, pid_file: str | None):
        """(sampler, t0, time base): the on-device loop, t0 on the device's realtime clock."""
        static = ("the loopback phone's /proc/meminfo is its profile's capture, not a reading"
                  if is_simulated(self.live.props) else None)
        sampler = AndroidSampler(self.transport, rate_hz=req.sample_rate_hz, pid_file=pid_file, meminfo_static=static)
        t0, host_minus_device = device_clock(self.transport)
        sampler.set_t0_device(t0)
        return sampler, t0, power.clock_block(t0, host_minus_device)

    def idle(self, sampler, idle_s: float, t0: float, say: Status):
        return measure_idle(sampler, idle_s, t0, say, live_rows=lambda: sampler.rows)

    def end_conditions(self, failures) -> dict:
        """The battery at the end (nothing from a phone that went away)."""
        if failures and failures[-1].outcome == Outcome.DISCONNECTED:
            return {}
        try:
            snap = read_live(self.ref.transport()).snapshot
        except (DeviceError, EdgebenchError):
            return {}
        batt = _battery_conditions(snap)
        return {"battery_level_end": batt["level"], "battery_temp_c_end": batt["temp_c"]}


def _outcome(events: RunnerEvents, exit_code: int | None, stderr: bytes) -> Failure | None:
    """Why the runner did not finish (None: it did)."""
    tail = stderr.decode("utf-8", "replace").strip()[-300:] if stderr else ""
    if exit_code == KILLED or (events.error or {}).get("type") == "MemoryError":
        return Failure(Outcome.OOM, "Killed", "the runtime was killed (exit 137): the model does not fit in the "
                       "device's memory" + (f"; {tail}" if tail else ""))
    outcome = Outcome.CRASHED if events.reps else Outcome.LOAD_FAILED
    if events.error:
        return Failure(outcome, events.error.get("type", "Error"), events.error.get("message", ""))
    if not events.done:
        return Failure(outcome, "RunnerExit", f"the runner exited with status {exit_code} before finishing"
                       + (f": {tail}" if tail else ""))
    return None


def _let_sampler_pass(sampler, events: RunnerEvents, t0: float, timeout_s: float = 3.0) -> None:
    """Wait until the sampler has a row past the runner's last timestamp, so the samples
    cover every phase (energy is integrated, never extrapolated, over the phase edges)."""
    if not events.reps:
        return
    end = events.reps[-1].t_end - t0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not sampler.disconnected:
        rows = sampler.rows
        if rows and max(t for t, _, _ in rows) > end:
            return
        time.sleep(0.05)


def device_clock(transport) -> tuple[float, float]:
    """(the device's realtime clock now, this host's clock minus the device's): the second
    aligns logs kept on the host (an external power meter) to the device's samples; its
    error is half the shell round trip."""
    h1 = time.time()
    t = _device_now(transport)
    return t, (h1 + time.time()) / 2 - t


def _device_now(transport) -> float:
    """The device's realtime clock, the one the sampler and the runner stamp with."""
    r = transport.shell('echo "$EPOCHREALTIME"', timeout_s=15)
    try:
        return float(r.stdout.strip())
    except ValueError:  # not mksh: date +%s.%N (toybox and coreutils)
        return float(transport.shell(["date", "+%s.%N"], timeout_s=15, check=True).stdout.strip())


def _kill_stale_runner(transport, pid_file: str) -> None:
    """A runner left from a killed session (the host died, not the phone) is stopped first."""
    f = quote(pid_file)
    transport.shell(f"if [ -f {f} ]; then p=$(cat {f}); grep -q edgebench/runner/ /proc/$p/cmdline 2>/dev/null "
                    f"&& kill -9 $p; rm -f {f}; fi", timeout_s=15)


def _stop_quietly(stream, sampler, transport, pid_file: str) -> None:
    if stream is not None:
        stream.close()
    stop_sampler(sampler)
    if transport is not None:
        try:
            _kill_stale_runner(transport, pid_file)
        except DeviceError:
            pass


def _prepared_state(transport):
    try:
        return settings.recorded_state(transport)
    except (DeviceError, EdgebenchError):
        return None


def _bandwidth(transport, python, remote_runner, device: dict, probe: bool, say):
    """Probe the device's bandwidth with the runner when asked; else the catalog's peak."""
    if probe:
        say(f"{transport.serial}: probing memory bandwidth")
        r = transport.shell(runner_command(python, remote_runner, ["probe"]), timeout_s=300)
        ev = RunnerEvents()
        for line in r.stdout.splitlines():
            ev.feed(line)
        if ev.bandwidth:
            b = ev.bandwidth
            return DeviceProbe(b["bytes_per_s"], f"on-device: {b['method']}", b.get("threads"), tuple(b["samples"]))
    # the row the device's identity matched (its soc_name); an ambiguous match names several: none of them
    name = device.get("soc_name")
    for soc in load_socs():
        if name and soc.marketing_name == name and soc.peak_dram_bw_gbps:
            return CatalogBandwidth(soc.peak_dram_bw_gbps * 1e9, f"catalog peak for {soc.marketing_name}")
    return None


# --- native probes on a device (suite.runtimes.build.probes) -------------------------------------------

#: the probes' folder on the device, relative to provision.WORK_DIR
PROBES_DIR = "probes"
#: what one edgebench process has measured per device: (serial, probes key, mask, threads) -> results
_PROBED: dict[tuple, tuple] = {}


@dataclass(frozen=True)
class DevicePeak:
    """The compute peak a native probe measured on the device: int8 multiply-accumulate ops/s of the
    instructions the runtime's build runs (the prefill bound), with the fp32/fp16 FMA figures and
    the all-cores run beside it in `detail`."""

    flops_per_s: float | None
    method: str
    threads: int | None
    detail: dict
    reason: str | None = None


def probe_command(remote_dir: str, name: str, args: list[str], mask: str | None) -> str:
    binary = f"{remote_dir}/bin/edgebench-{name}"
    prog = " ".join(quote(a) for a in (binary, *args))
    return f"chmod 755 {quote(binary)} && " + (f"taskset {quote(mask)} " if mask else "") + prog


class IllegalInstruction(EdgebenchError):
    """A probe killed by SIGILL: its build uses an instruction the CPU does not have."""


def probe_json(transport, command: str, name: str) -> dict:
    r = transport.shell(command, timeout_s=600)
    if r.exit_code == SIGILL_EXIT:
        raise IllegalInstruction(f"the {name} probe was killed by SIGILL (exit 132)")
    for line in reversed(r.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if data.get("probe") == name:
                return data
    raise EdgebenchError(f"the {name} probe gave no result (exit {r.exit_code}): "
                         f"{(r.stderr or r.stdout).strip()[-300:]}")


def run_probes(transport, remote_dir: str, key: str, *, threads: int, mask: str | None, all_cores: int,
               say: Status) -> tuple:
    """(bandwidth, compute peak) on the runtime's cores (`mask`, `threads`), and once on all cores;
    measured once per device, cores and probe build in this process."""
    cache_key = (transport.serial, key, mask, threads, all_cores)
    if cache_key in _PROBED:
        return _PROBED[cache_key]
    say(f"{transport.serial}: probing memory bandwidth and compute peak ({threads} threads"
        + (f", cpus {mask}" if mask else "") + f"; then all {all_cores} cores)")
    runs = {}
    for label, n, m in (("runtime_cores", threads, mask), ("all_cores", all_cores, None)):
        mib = str(max(32, 256 // max(n, 1)))
        runs[label] = (probe_json(transport, probe_command(remote_dir, "membw", [str(n), mib, "3"], m), "membw"),
                       probe_json(transport, probe_command(remote_dir, "peak", [str(n), "0.3"], m), "peak"))
    (bw, peak), (bw_all, peak_all) = runs["runtime_cores"], runs["all_cores"]
    where = f"{threads} threads" + (f" on cpus {mask}" if mask else "")
    bandwidth = DeviceProbe(float(bw["bytes_per_s"]), f"on-device: edgebench-membw, {where}", threads,
                            tuple(float(x) for x in bw.get("samples", ())),
                            all_cores_bytes_per_s=float(bw_all["bytes_per_s"]))
    i8 = peak.get("int8") or {}
    compute = DevicePeak(float(i8["ops_per_s"]) if i8.get("ops_per_s") else None,
                         f"on-device: edgebench-peak, int8 {i8.get('instr')}, {where}", threads,
                         {"runtime_cores": peak, "all_cores": peak_all})
    _PROBED[cache_key] = (bandwidth, compute)
    return bandwidth, compute


# --- what a scenario adds to a run (suite.scenarios) ------------------------------------------------


@dataclass(frozen=True)
class ScenarioHooks:
    """What a scenario adds to one run (None for an ungated burst run).

    `scenario` is the record's `scenario` block (default: burst with the request's parameters);
    `conditions` are merged into its `conditions` (gating results); `finish(Finishing)` sees the
    sampler's rows (t_s relative to t0, device clock), the runtime's repetitions and the sensors
    block just before the record is built, and returns the scenario's `Part` (its metrics, its
    own blocks) and its extra sample rows.
    """

    scenario: dict | None = None
    conditions: dict | None = None
    finish: Callable[[Finishing], tuple[Part, list]] | None = None
    #: every repetition is a window the scenario watches as it ends (sustained): a native runtime
    #: then runs one invocation per repetition (`windows = True` runtimes only)
    windows: bool = False
    #: the device's storage read bandwidths (the storage probe; fit --beyond-ram measures them once per
    #: device): stored as metrics, and the bound of a decode that ran offloaded
    storage: dict | None = None
    #: the runtime the session drives instead of the request's, made from it (voice: the llama.cpp runtime
    #: with a speech turn in front of each reply, suite.runtimes.voice_turn)
    runtime: Callable[[Any], Any] | None = None
