"""Runtime `llama.cpp` (alias `llama-bench`): the llama.cpp engine driven through its own benchmark
binary, on a phone over adb, a loopback phone, or this host (through the local transport).

The binary is edgebench's own static build (suite.runtimes.build) unless the user gives a bundle: a
folder `DIR/bin/llama-bench` + `DIR/lib/*.so` (docs/llama-cpp.md says how to build one for Android
arm64). A run:

1. reads the device's ABI (`getprop ro.product.cpu.abi`) and refuses a bundle whose ELF machine
   differs (`suite.device.elf.check_bundle_abi`), before anything is pushed;
2. pushes the bundle and the GGUF through `provision.ensure_files` (cached by hash);
3. picks the big cores: the cpufreq policies with the highest hardware max frequency
   (`cpuinfo_max_freq`, else `scaling_max_freq`); threads = their count unless asked; the
   `taskset` mask of those cores is recorded in the run's `runtime.affinity`;
4. runs prefill and decode as SEPARATE llama-bench invocations (`-p N -n 0`, then `-p 0 -n N`,
   `-r reps`, `-o jsonl`), each one shell command that prints the device clock
   (`$EPOCHREALTIME`) before and after, so power and temperature split per phase;
5. parses the output with `suite.runtimes.llama_bench_output.parse_llama_bench`:
   `prefill_tps`/`decode_tps` samples are llama-bench's `samples_ts`.

Everything that builds a command line is a pure function of (paths, params, device profile), tested
without a device; `LlamaBenchRuntime` is what the device session drives (suite.session.device).

Phase placement: llama-bench loads the model, runs one warmup test, then the `-r` repetitions back to
back and prints the result once at the end. The repetitions are placed at the end of the invocation's
window (their durations are `samples_ns`); the rest of the window (process start, model load,
warmup) is the `warmup` phase. llama-bench's process exit after the last repetition takes a few ms.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from suite.core.errors import EdgebenchError, RuntimeFailure
from suite.core.filehash import local_sha256
from suite.core.measure import BurstParams, Repetition
from suite.core.stats import metric
from suite.device.android import snapshot as snap
from suite.device.android.cpu import parse_cpufreq
from suite.device.elf import ElfError, bundle_elf_files, check_bundle_abi
from suite.runtimes.base import KILLED_EXIT, NATIVE, SIGILL_EXIT, DeviceCall, NativeRun, OwnBundle
from suite.runtimes.build import llama_cpp as own_build
from suite.runtimes.build.variants import Choice, cpu_features, device_variant, get_variant
from suite.runtimes.llama_bench_output import parse_llama_bench
from suite.runtimes.native import marked_command, read_markers
from suite.transport import quote

NAME = "llama.cpp"
#: the benchmark binary inside a bundle
BINARY = "bin/llama-bench"
#: how to build a bundle for the device's ABI (the ABI check's hint)
BUILD_HINT = ("build llama.cpp for {abi} (for Android arm64: the NDK cmake toolchain with -DANDROID_ABI=arm64-v8a, "
              "docs/llama-cpp.md) and point --runtime-bundle at it")
#: the remote folder of the bundle, relative to provision.WORK_DIR
REMOTE_BUNDLE = "llama-bench"


# --- the device's CPU ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BigCores:
    """The cores llama-bench is pinned to: every policy at the highest max frequency."""

    cpus: tuple[int, ...]
    max_khz: int | None
    policies: tuple[str, ...]

    @property
    def mask(self) -> str:
        """taskset's hex mask (cpu n -> bit n)."""
        return affinity_mask(self.cpus)

    def to_dict(self) -> dict:
        return {"cpus": list(self.cpus), "mask": self.mask, "max_khz": self.max_khz, "policies": list(self.policies),
                "method": "taskset; cpufreq policies with the highest cpuinfo_max_freq"}


def affinity_mask(cpus: Sequence[int]) -> str:
    if not cpus:
        raise ValueError("no cpus for an affinity mask")
    return format(sum(1 << c for c in set(cpus)), "x")


def big_cores(cpufreq_text: str, n_cpus: int | None = None) -> BigCores:
    """The big cluster(s) from `grep . /sys/devices/system/cpu/cpufreq/policy*/*` output.

    Several policies sharing the top frequency all count (e.g. two prime cores in two policies).
    With no readable policy, every cpu (0..n_cpus-1) is used and `max_khz` is None."""
    pols = [p for p in parse_cpufreq(cpufreq_text).policies if (p.cpuinfo_max_khz or p.max_khz)]
    if not pols:
        if not n_cpus:
            raise EdgebenchError("the device's cpufreq policies are unreadable and its core count unknown: "
                                 "cannot pick the big cores", hint="pass --threads")
        return BigCores(tuple(range(n_cpus)), None, ())
    top = max(p.cpuinfo_max_khz or p.max_khz for p in pols)
    chosen = [p for p in pols if (p.cpuinfo_max_khz or p.max_khz) == top]
    cpus = sorted({c for p in chosen for c in (p.related_cpus or p.affected_cpus or ())})
    if not cpus:  # no related_cpus listed: a policy is named after its first cpu
        cpus = [p.index for p in chosen]
    return BigCores(tuple(cpus), top, tuple(p.name for p in chosen))


# --- the bundle ----------------------------------------------------------------------------------


def bundle_files(bundle_dir: Path, prefix: str = REMOTE_BUNDLE) -> dict[str, Path]:
    """Remote name (relative to the work dir, under `prefix`) -> local file for `provision.ensure_files`.

    Symbolic links (a host build's `libllama.so -> libllama.so.0 -> libllama.so.0.5.0`) are not
    pushed as copies: `bundle_links` lists them and `prepare_command` recreates them on the device."""
    root = Path(bundle_dir)
    return {f"{prefix}/{f.relative_to(root).as_posix()}".lstrip("/"): f for f in bundle_elf_files(root, BINARY)
            if f.is_file() and not f.is_symlink()}


def bundle_links(bundle_dir: Path) -> dict[str, str]:
    """`lib/` symlinks of a bundle: relative link path -> target name (inside lib/)."""
    lib = Path(bundle_dir) / "lib"
    out = {}
    if lib.is_dir():
        for f in sorted(lib.iterdir()):
            if f.is_symlink():
                target = f.resolve()
                if target.parent != lib.resolve() or not target.is_file():
                    raise ElfError(f"{f} links outside the bundle's lib/ ({target})",
                                   hint="copy the library into lib/ instead of linking to it")
                out[f"lib/{f.name}"] = target.name
    return out


# --- command lines -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """One llama-bench process: which phase, its argv and the full shell command."""

    phase: str  # "prefill" | "decode"
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    affinity_mask: str | None
    command: str
    nonce: str


def llama_bench_argv(binary: str, model: str, phase: str, tokens: int, *, reps: int, threads: int,
                     extra: Sequence[str] = ()) -> list[str]:
    """`-m MODEL -p N -n 0` (prefill) or `-p 0 -n N` (decode), `-r`, `-t`, `-o jsonl`."""
    if phase not in ("prefill", "decode"):
        raise ValueError(f"phase {phase!r}")
    if tokens < 1 or reps < 1 or threads < 1:
        raise ValueError("tokens, reps and threads must be >= 1")
    p, n = (tokens, 0) if phase == "prefill" else (0, tokens)
    return [binary, "-m", model, "-p", str(p), "-n", str(n), "-r", str(reps), "-t", str(threads),
            "-o", "jsonl", *extra]


def phase_command(bundle_remote: str, model_remote: str, phase: str, tokens: int, *, reps: int, threads: int,
                  mask: str | None, nonce: str | None = None, extra: Sequence[str] = (),
                  pid_file: str | None = None, accelerated: bool = False) -> Invocation:
    """One shell command: device time, the pinned llama-bench, device time, its exit status.

    Markers are `EDGEBENCH <nonce> T0|T1|RC value` lines on stdout; llama-bench's JSON lines sit
    between them; its log goes to stderr. `$EPOCHREALTIME` is mksh's (Android's sh); `date +%s.%N`
    is the fallback for other shells. With `pid_file`, llama-bench's pid is written there as it
    starts (a `sh -c` that execs it, so it stays in the foreground and dies with the shell).
    `accelerated` (a GPU or NPU backend): ADSP_LIBRARY_PATH names the bundle's lib/ too, where the
    Hexagon DSP looks for its skeleton libraries (libggml-htp-v*.so)."""
    binary = f"{bundle_remote}/{BINARY}"
    argv = llama_bench_argv(binary, model_remote, phase, tokens, reps=reps, threads=threads, extra=extra)
    env = (("LD_LIBRARY_PATH", f"{bundle_remote}/lib"),)
    if accelerated:
        env += (("ADSP_LIBRARY_PATH", f"{bundle_remote}/lib"),)
    command, nonce = marked_command(argv, env, mask=mask, pid_file=pid_file, nonce=nonce)
    return Invocation(phase, tuple(argv), env, mask, command, nonce)


def prepare_command(bundle_remote: str, links: Mapping[str, str] | None = None, pid_file: str | None = None) -> str:
    """Pushed files are 0644: make the binary executable (libraries need only read); recreate the
    bundle's library symlinks (`bundle_links`); remove a pid file left by an earlier run (its pid
    may be another process's by now)."""
    parts = [f"chmod 755 {quote(bundle_remote + '/' + BINARY)}"]
    if pid_file:
        parts.append(f"rm -f {quote(pid_file)}")
    for link, target in sorted((links or {}).items()):
        parts.append(f"ln -sf {quote(target)} {quote(bundle_remote + '/' + link)}")
    return " && ".join(parts)


def affinity_check_command(mask: str) -> str:
    return f"taskset {quote(mask)} true"


def check_affinity(transport, cores: BigCores) -> tuple[str | None, str | None]:
    """(mask to use, None) when `taskset MASK` works on the device; else (None, why): the cores are
    offline (hotplug) or absent (the loopback phone's sandbox has fewer cpus than its profile), and
    llama-bench runs unpinned, which the record says."""
    r = transport.shell(affinity_check_command(cores.mask), timeout_s=15)
    if r.exit_code == 0:
        return cores.mask, None
    return None, f"taskset {cores.mask} failed on the device: {(r.stderr or r.stdout).strip()[-200:]}"


def device_abi_command() -> str:
    return "getprop ro.product.cpu.abi"


# --- backends: the CPU, or a GPU / NPU device of the user's bundle ----------------------------------

#: llama.cpp device names of NPUs (Hexagon's HTP0, HTP1..., Ascend's CANN0...) and of GPUs (OpenCL's
#: GPUOpenCL, Vulkan0, Metal, CUDA0, ROCm0, SYCL0, MUSA0); anything else (BLAS, RPC...) is neither
_NPU_NAME = re.compile(r"^(HTP|NPU|QNN|CANN)\d*$", re.IGNORECASE)
_GPU_NAME = re.compile(r"^(GPUOpenCL|OpenCL\d*|Vulkan\d*|Metal\d*|CUDA\d*|ROCm\d*|HIP\d*|SYCL\d*|MUSA\d*)$",
                       re.IGNORECASE)
_DEVICE_LINE = re.compile(r"^\s+(?P<name>[^\s:][^:]*?)\s*:\s*(?P<desc>.*?)\s*(?:\((?P<total>\d+) MiB, (?P<free>\d+) MiB free\))?\s*$")


@dataclass(frozen=True)
class Accelerator:
    """A device llama-bench can offload to, as `--list-devices` names it."""

    name: str  # e.g. HTP0, GPUOpenCL, Vulkan0: what -dev takes
    description: str
    kind: str  # "gpu" | "npu" | "other"

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "kind": self.kind}


def list_devices_command(bundle_remote: str) -> str:
    """llama-bench --list-devices with the bundle's libraries (and the Hexagon skeletons' path)."""
    lib = quote(f"{bundle_remote}/lib")
    return f"LD_LIBRARY_PATH={lib} ADSP_LIBRARY_PATH={lib} {quote(bundle_remote + '/' + BINARY)} --list-devices"


def parse_list_devices(text: str) -> list[Accelerator]:
    """The devices of `llama-bench --list-devices` ("Available devices:" then `  NAME: DESC (T MiB, F MiB
    free)` lines, or `  (none)`); CPU devices are never listed."""
    out: list[Accelerator] = []
    listing = False
    for line in text.splitlines():
        if line.strip().startswith("Available devices"):
            listing = True
            continue
        if not listing or line.strip() in ("", "(none)"):
            continue
        m = _DEVICE_LINE.match(line)
        if m:
            name = m["name"].strip()
            kind = "npu" if _NPU_NAME.match(name) else "gpu" if _GPU_NAME.match(name) else "other"
            out.append(Accelerator(name, m["desc"], kind))
    return out


def choose_device(backend: str, devices: Sequence[Accelerator], listing: str = "") -> Accelerator:
    """The first listed device of the kind `backend` asks for; a clear error when the bundle has none."""
    for d in devices:
        if d.kind == backend:
            return d
    shown = ", ".join(f"{d.name} ({d.kind}: {d.description})" for d in devices) or "none"
    raise EdgebenchError(
        f"--backend {backend}: this llama-bench lists no {backend.upper()} device (its --list-devices: {shown})",
        hint=("an official Android/Snapdragon build of llama.cpp (CPU + OpenCL + Hexagon, docs/engines.md) lists "
              "GPUOpenCL and HTP0; edgebench's own static build is CPU only" if backend != "cpu" else ""),
        exit_code=2)


def load_args(params: BurstParams) -> tuple[str, ...]:
    """How llama-bench loads the weights when the run says (nothing: its defaults): `-lm mmap` maps the
    file (pages can be evicted and read again), `-lm none` reads it into memory; `--repack 0` keeps the
    weights in the mapped file instead of copying Q4_0/Q8_0 into anonymous "repack" buffers (arm64 builds
    with dotprod/i8mm), which cannot page."""
    out: tuple[str, ...] = ()
    if params.mmap is not None:
        out += ("-lm", "mmap" if params.mmap else "none")
    if params.repack is not None:
        out += ("--repack", "1" if params.repack else "0")
    return out


def backend_args(backend: str, device: Accelerator | None) -> tuple[str, ...]:
    """llama-bench's device selection and offload flags: the CPU alone (`-ngl 0 -dev none`), or every
    layer on the chosen device (`-ngl 99 -dev NAME`) with its loader log (`-v`), which says where
    the layers went."""
    if backend == "cpu" or device is None:
        return ("-ngl", "0", "-dev", "none")
    return ("-ngl", "99", "-dev", device.name, "-v")


_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
_ASSIGNED = re.compile(r"layer\s+\d+ assigned to device ([^,\s]+)")
_BUFFER = re.compile(r"(\S+) model buffer size =\s*([\d.]+) MiB")


def offload_evidence(log: str) -> dict:
    """What llama.cpp's loader log says about where the model went: `offloaded N/M layers`, the
    device each layer was assigned to (counted), the model buffers per buffer type (MiB)."""
    ev: dict = {}
    for m in _OFFLOADED.finditer(log):
        ev["layers_offloaded"] = [int(m[1]), int(m[2])]
    layers: dict[str, int] = {}
    for m in _ASSIGNED.finditer(log):
        layers[m[1]] = layers.get(m[1], 0) + 1
    if layers:
        ev["layers_on"] = layers
    buffers = {m[1]: float(m[2]) for m in _BUFFER.finditer(log)}
    if buffers:
        ev["model_buffers_mib"] = buffers
    return ev


def backend_failure(backend: str, device: Accelerator | None, row, evidence: Mapping) -> str | None:
    """Why a run that asked for `backend` did not run there (None: it did, as far as llama-bench says)."""
    devices = getattr(row, "devices", None)
    if backend == "cpu" or device is None:
        if devices not in (None, "", "none"):
            return f"asked for the CPU but llama-bench used devices {devices}"
        return None
    what = f"asked for {backend} ({device.name})"
    if devices not in (None, "") and device.name not in str(devices).split("/"):
        return f"{what} but llama-bench used devices {devices}"
    if getattr(row, "ngl", None) == 0:
        return f"{what} but llama-bench ran with 0 GPU layers"
    off = evidence.get("layers_offloaded")
    if off is not None and off[0] == 0:
        return f"{what} but llama.cpp offloaded 0/{off[1]} layers: it ran on the CPU"
    layers = evidence.get("layers_on")
    if layers is not None and not any(k.startswith(device.name) for k in layers):
        return f"{what} but every layer was assigned to {', '.join(sorted(layers))}: it ran on the CPU"
    if off is None and layers is None:
        return (f"{what} but llama-bench's log (-v) does not say where the layers went: nothing shows the model "
                f"ran on {device.name}")
    return None


# --- output --------------------------------------------------------------------------------------


@dataclass
class PhaseOutput:
    phase: str
    t_start: float | None
    t_end: float | None
    exit_code: int | None
    rows: list = field(default_factory=list)  # BenchRow
    problems: list = field(default_factory=list)
    text: str = ""
    stderr: str = ""

    def row(self, depth: int = 0):
        """The one result row of this invocation (RuntimeFailure when missing, or measured at another
        context depth than `depth`)."""
        kind = "pp" if self.phase == "prefill" else "tg"
        rows = [r for r in self.rows if r.kind == kind]
        if not rows:
            why = f"exit status {self.exit_code}" if self.exit_code else "no result line"
            if self.exit_code == SIGILL_EXIT:
                why += ": killed by SIGILL, an instruction this CPU does not have"
            err = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
            tail = "; ".join(err[-3:] or [p.line for p in self.problems[-3:]])
            raise RuntimeFailure(f"llama-bench {self.phase} gave no {kind} result ({why})"
                                 + (f": {tail}" if tail else ""))
        if rows[-1].n_depth != depth:
            raise RuntimeFailure(f"llama-bench {self.phase} measured at context depth {rows[-1].n_depth}, "
                                 f"not the {depth} asked (-d)")
        return rows[-1]


def parse_phase_output(phase: str, stdout: str, nonce: str, stderr: str = "") -> PhaseOutput:
    marked = read_markers(stdout, nonce)
    res = parse_llama_bench(marked.text, source=f"llama-bench {phase}")
    return PhaseOutput(phase, marked.t_start, marked.t_end, marked.exit_code, list(res.rows), list(res.problems),
                       marked.text, stderr or "")


def phase_spans(out: PhaseOutput, row) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(measured spans, warmup spans) on the device clock: repetitions packed at the window's end."""
    if out.t_start is None or out.t_end is None:
        return [], []
    durs = [ns / 1e9 for ns in (row.samples_ns or ())]
    if not durs and row.avg_ns and row.repetitions:
        durs = [row.avg_ns / 1e9] * row.repetitions
    spans = []
    end = out.t_end
    for d in reversed(durs):
        start = max(out.t_start, end - d)
        spans.append((start, end))
        end = start
    spans.reverse()
    warm = [(out.t_start, spans[0][0])] if spans and spans[0][0] > out.t_start else []
    return spans, warm


def throughput_metrics(pp_row, tg_row) -> dict[str, dict]:
    """prefill_tps / decode_tps from llama-bench's per-repetition `samples_ts` (else avg_ts)."""
    out = {}
    for name, row in (("prefill_tps", pp_row), ("decode_tps", tg_row)):
        if row is None:
            continue
        samples = list(row.samples_ts) if row.samples_ts else [row.avg_ts]
        out[name] = metric(name, samples)
    return out


def runtime_record(info: Mapping, threads: int, cores: BigCores | None, rows: Sequence,
                   device: Accelerator | None = None) -> dict:
    """The run's `runtime` block: build, backend (what ran: `CPU`, or the GPU/NPU device's name;
    the backends compiled into the binary are `backends`), threads and the affinity recorded."""
    r = next((x for x in rows if x is not None), None)
    commit = getattr(r, "build_commit", None)
    number = getattr(r, "build_number", None)
    # build 0: llama.cpp's build number was not known where it was built (no git history)
    return {
        "name": NAME,
        "version": commit and (f"{commit} (build {number})" if number else commit),
        "backend": device.name if device is not None else "CPU",
        "backends": list(getattr(r, "backends", ()) or ()) or None,
        "threads": threads,
        "affinity": cores.to_dict() if cores else None,
        **dict(info),
    }


# --- the runtime ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """The invocations of one run, decided before sampling starts; in windows mode `partial` is
    the run so far (what a scenario that ends the run early leaves)."""

    runtime: dict
    invocations: dict[str, Invocation]
    partial: NativeRun | None = None
    #: the GPU/NPU device of a `--backend gpu|npu` run (None: the CPU)
    device: Accelerator | None = None


class LlamaBenchRuntime:
    """llama.cpp's own benchmark binary, from a user's bundle, on a device's shell."""

    name = NAME
    kind = NATIVE
    formats = ("gguf",)
    #: llama.cpp's kernels are not what the int4 compute probe measures
    compute_probed = False
    #: sustained: one decode invocation per window (`DeviceCall.windows`)
    windows = True
    #: measures at a filled context (`BurstParams.depth`: llama-bench's `-d`)
    depth = True
    #: BurstParams.mmap and .repack become llama-bench's -lm and --repack (`load_args`)
    load_options = True
    #: --backend: the CPU (-ngl 0 -dev none), or a GPU/NPU device the bundle's --list-devices shows
    backends = ("cpu", "gpu", "npu")
    bundle_hint = ("without --runtime-bundle edgebench builds llama-bench itself for the phone; "
                   "docs/llama-cpp.md says how to build a bundle of your own")
    bundle_layout = f"{BINARY} and lib/"

    def bundle_files(self, bundle: Path) -> dict[str, Path]:
        return bundle_files(bundle, prefix="")

    def variant_choice(self, live):
        """(ABI, a note on it, the variant choice) for a device's live reading: the variant every
        core it runs on (the big cores) can run."""
        n_cpus = len(cpu_features(live.texts.get(snap.PROC_CPUINFO, ""))) or None
        try:
            cpus = big_cores(live.texts.get(snap.CPUFREQ, ""), n_cpus).cpus or None
        except EdgebenchError:  # no cpufreq and no core count: every core it reports
            cpus = None
        return device_variant(live, cpus)

    def own_version(self, live) -> str:
        """The identity of the build a device would run (for resuming lab plans), without building."""
        abi, _note, choice = self.variant_choice(live)
        return own_build.build_id(abi, choice.variant.name)

    def own_bundle(self, live, say: Callable[[str], None], variant: str | None = None) -> OwnBundle:
        """edgebench's build of llama-bench for the device: its ABI (`native_abi`), the CPU variant
        that the cores it runs on (the big cores) can all run (or `variant`: the fallback after a
        SIGILL), built once and cached."""
        abi, note, choice = self.variant_choice(live)
        if variant is not None:
            why = f"{choice.variant.name} died of an illegal instruction on this CPU: falling back to {variant}"
            choice = Choice(get_variant(abi, variant), why, choice.common_features)
        elif note:
            say(note)
        say(f"llama.cpp for {abi}/{choice.variant.name}: {choice.evidence}")
        shown = [-1]

        def progress(done: int, total: int, _what: str) -> None:
            tenth = done * 10 // max(total, 1)
            if tenth > shown[0]:
                shown[0] = tenth
                say(f"building llama-bench for {abi}/{choice.variant.name}: {done}/{total}")

        built = own_build.ensure_built(abi, choice.variant.name, progress=progress, say=say)
        record = {"built_by": "edgebench", **built.record(), "variant_choice": choice.to_dict()}
        if note:
            record["abi_note"] = note
        return OwnBundle(built.path, abi, record, choice.variant.lower)

    def check_bundle(self, bundle: Path, device_abi: str) -> dict[str, str]:
        return check_bundle_abi(bundle, device_abi, BINARY, build_hint=BUILD_HINT)

    def bundle_version(self, bundle: Path) -> str:
        """The sha256 of the bundle's binary (builds differ, tags lie)."""
        digest = self.binary_sha256(bundle)
        return "sha256:" + digest[:16] if digest else "unknown"

    def binary_sha256(self, bundle: Path) -> str | None:
        exe = Path(bundle) / BINARY
        return local_sha256(exe) if exe.is_file() else None

    def prepare(self, call: DeviceCall) -> Plan:
        """Links and modes of the pushed bundle, the big cores, and the two invocations."""
        t = call.transport
        t.shell(prepare_command(call.bundle_remote, bundle_links(call.bundle_dir), call.pid_file), timeout_s=15,
                check=True)
        cores = big_cores(call.live.texts.get(snap.CPUFREQ, ""), (call.device.get("cpu") or {}).get("logical_cores"))
        mask, why = check_affinity(t, cores)
        p = call.params
        threads = p.threads or len(cores.cpus)
        device = None
        if p.backend != "cpu":  # the bundle's own list of devices: the first of the kind asked for
            listed = t.shell(list_devices_command(call.bundle_remote), timeout_s=60)
            device = choose_device(p.backend, parse_list_devices(listed.stdout))
            call.say(f"llama-bench on {t.serial}: --backend {p.backend} is {device.name} ({device.description})")
        extra = backend_args(p.backend, device)
        extra += ("-d", str(p.depth)) if p.depth else ()  # a filled context before each test
        extra += load_args(p)
        runtime = runtime_record({}, threads, cores, [], device)
        runtime["affinity"] |= {"applied": mask is not None, "not_applied_because": why}
        runtime["backend_requested"] = p.backend
        if device is not None:
            runtime["device"] = device.to_dict()
        if call.windows:  # one decode of gen_tokens per window, -r 1, from an empty context
            invocations = {"window": phase_command(call.bundle_remote, call.model_remote, "decode", p.gen_tokens,
                                                   reps=1, threads=threads, mask=mask, extra=extra,
                                                   pid_file=call.pid_file, accelerated=device is not None)}
        else:
            invocations = {
                phase: phase_command(call.bundle_remote, call.model_remote, phase, tokens, reps=p.reps,
                                     threads=threads, mask=mask, extra=extra, pid_file=call.pid_file,
                                     accelerated=device is not None)
                for phase, tokens in (("prefill", p.prompt_tokens), ("decode", p.gen_tokens))
            }
        runtime["commands"] = {k: v.command for k, v in invocations.items()}
        return Plan(runtime, invocations, device=device)

    def execute(self, call: DeviceCall, plan: Plan, on_rep=None) -> NativeRun:
        """Prefill, then decode, each between device-clock markers; a phase without a result
        stops the run (`failure`), keeping what the other phase measured. In windows mode, one
        decode invocation per repetition (`execute_windows`)."""
        if call.windows:
            return self.execute_windows(call, plan, on_rep)
        outs: dict[str, PhaseOutput] = {}
        rows: dict[str, object] = {}
        failure = None
        try:
            for phase, inv in plan.invocations.items():
                call.say(f"llama-bench {phase} on {call.transport.serial}: {' '.join(inv.argv[1:])}")
                r = call.transport.shell(inv.command, timeout_s=call.timeout_s)
                outs[phase] = parse_phase_output(phase, r.stdout, inv.nonce, r.stderr)
                rows[phase] = outs[phase].row(call.params.depth)
        except RuntimeFailure as exc:
            failure = ("crashed" if rows.get("prefill") else "load_failed", exc.message)
            killed = [ph for ph, o in outs.items() if o.exit_code == KILLED_EXIT]
            if killed:
                failure = ("oom", f"llama-bench {killed[0]} was killed (exit 137): the model does not fit in the "
                                  f"device's memory as loaded ({exc.message})")
        pp, tg = rows.get("prefill"), rows.get("decode")
        runtime = dict(plan.runtime)
        runtime.update({k: v for k, v in runtime_record({}, runtime["threads"], None, [pp, tg], plan.device).items()
                        if k in ("version", "backend", "backends")})
        metrics = throughput_metrics(pp, tg)
        offload = {ph: offload_evidence(outs[ph].stderr) for ph in rows}
        if plan.device is not None:
            runtime["offload"] = offload
        unavailable: dict[str, str] = {}
        for ph, row in rows.items():
            wrong = backend_failure(call.params.backend, plan.device, row, offload[ph])
            if wrong and failure is None:
                # asked for a GPU/NPU and ran elsewhere: a failed run with the reason, never a result
                failure = ("failed", f"llama-bench {ph}: {wrong}")
                unavailable = {m: f"run failed: {wrong}" for m in metrics}
                metrics = {}
        spans: dict[str, list] = {"prefill": [], "decode": [], "warmup": []}
        n_reps = 0
        for phase, row in (("prefill", pp), ("decode", tg)):
            if row is None:
                continue
            measured, warm = phase_spans(outs[phase], row)
            spans[phase] += measured
            spans["warmup"] += warm
            n_reps = len(measured) if phase == "prefill" else min(n_reps, len(measured))
        output = ([ln for o in outs.values() for ln in (o.text + "\n" + o.stderr).splitlines()[-20:]]
                  if failure else [])
        illegal = any(o.exit_code == SIGILL_EXIT for o in outs.values())
        return NativeRun(runtime=runtime, spans=spans, metrics=metrics,
                         n_reps=n_reps if tg is not None else 0, failure=failure, output=output,
                         illegal_instruction=illegal, unavailable=unavailable)

    def execute_windows(self, call: DeviceCall, plan: Plan, on_rep=None) -> NativeRun:
        """warmup + reps decode windows, each one llama-bench process between device-clock markers,
        each reported to `on_rep` as it ends. A window's Repetition spans llama-bench's timed decode
        (its samples_ns) with `gen_tokens` evenly spaced token times: llama-bench times a window as a
        whole, so its throughput is exact and no per-token latency is claimed (the run has none)."""
        p = call.params
        inv = plan.invocations["window"]
        total = p.warmup + p.reps
        run = plan.partial = NativeRun(runtime=dict(plan.runtime), spans={"decode": [], "warmup": []},
                                       unavailable={
                                           "prefill_tps": "sustained windows on llama-bench decode only (-p 0)"})
        samples: list[float] = []
        for i in range(total):
            warm = i < p.warmup
            r = call.transport.shell(inv.command, timeout_s=call.timeout_s)
            out = parse_phase_output("decode", r.stdout, inv.nonce, r.stderr)
            try:
                row = out.row(p.depth)
            except RuntimeFailure as exc:
                run.failure = ("crashed" if run.n_reps else "load_failed", exc.message)
                if out.exit_code == KILLED_EXIT:
                    run.failure = ("oom", f"llama-bench was killed (exit 137): {exc.message}")
                run.illegal_instruction = out.exit_code == SIGILL_EXIT
                run.output = (out.text + "\n" + out.stderr).splitlines()[-20:]
                break
            wrong = backend_failure(p.backend, plan.device, row, offload_evidence(out.stderr))
            if wrong:
                run.failure = ("failed", f"llama-bench window {i + 1}: {wrong}")
                run.metrics, run.unavailable = {}, {**run.unavailable, "decode_tps": f"run failed: {wrong}"}
                break
            measured, before = phase_spans(out, row)
            if not measured:
                continue
            (a, b), n = measured[0], max(1, row.n_gen or p.gen_tokens)
            rep = Repetition(warm, a, a, a, [a + (b - a) * (k + 1) / n for k in range(n)])
            run.reps.append(rep)
            run.spans["warmup"] += before + ([(a, b)] if warm else [])
            if not warm:
                run.spans["decode"].append((a, b))
                run.n_reps += 1
                samples += list(row.samples_ts) if row.samples_ts else [row.avg_ts]
                run.metrics = {"decode_tps": metric("decode_tps", samples)}
                run.runtime.update({k: v for k, v in runtime_record({}, run.runtime["threads"], None, [row],
                                                                    plan.device).items()
                                    if k in ("version", "backend", "backends")})
            if on_rep is not None:
                on_rep(i, total, rep)  # may raise: the scenario ends the run here (plan.partial stays)
        return run

    def analysis_params(self, params: BurstParams) -> BurstParams:
        """analysis counts gen_tokens - 1 decode steps (the first token ends prefill); llama-bench's
        tg test times all n_gen steps, from `depth` (its own test, not after the prompt)."""
        return dataclasses.replace(params, gen_tokens=params.gen_tokens + 1, decode_after_prompt=False)
