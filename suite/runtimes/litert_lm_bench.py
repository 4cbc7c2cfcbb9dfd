"""Runtime `litert-lm`: Google's LiteRT-LM engine through its own benchmark binary on a phone's shell,
from the user's bundle (issue 16). edgebench cannot build it (its GPU and NPU paths link the phone's
vendor libraries): the official `litert_lm_advanced_main` (or `litert_lm_main`) for Android arm64, with
the shared libraries it ships beside it, is pushed and pinned by sha256 like any bundle.

**Bundle**: `DIR/litert_lm_advanced_main` (or `DIR/litert_lm_main`) and the `*.so` files beside it or in
`DIR/lib/`; every ELF is checked against the phone's ABI before anything is pushed. **Model**: the user's
`.litertlm` (`--model-file`, or a reference card built as `litertlm` on this host).

**A run** is ONE invocation between device-clock markers (so power and temperature split per phase):

    LD_LIBRARY_PATH=DIR litert_lm_advanced_main --model_path=M --backend=cpu|gpu|npu --benchmark=true
        --benchmark_prefill_tokens=P --benchmark_decode_tokens=D --max_num_tokens=P+D
        --num_iterations=W+R --num_cpu_threads=T --async=false --report_peak_memory_footprint=true

(`litert_lm_main` has no `--num_iterations`: one invocation per repetition instead). The engine
initialises once and prints one `BenchmarkInfo` block per iteration; they are parsed by
`suite.runtimes.outputs.litert_lm` (the importer's parser: one reading of the tool's text), the first W
are warmups. Each measured iteration's prefill and decode turn durations are placed at the end of the
invocation's window, in order (the engine times them; the rest of the window is process start and init,
the `warmup` phase). An iteration whose figures cannot stand (zero turns, tokens or rates:
`suite.runtimes.outputs.invalid_reason`) fails the run with the reason.

Everything that builds a command line is a pure function, tested without a device. Verified here only on
captured outputs: no LiteRT-LM binary for a phone can run on this machine (docs/engines.md).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from suite.core.errors import EdgebenchError
from suite.core.measure import BurstParams, Repetition
from suite.core.stats import metric
from suite.runtimes.base import NATIVE, DeviceCall, NativeRun
from suite.runtimes.native import VendorBundle, marked_command, read_markers
from suite.runtimes.outputs import TOOL_PARSERS, ToolRun, invalid_reason
from suite.transport import quote

NAME = "litert-lm"
#: the benchmark binaries of an official LiteRT-LM build, the first found is run
BINARIES = ("litert_lm_advanced_main", "litert_lm_main")
#: --backend -> LiteRT-LM's own --backend value
BACKEND_FLAG = {"cpu": "cpu", "gpu": "gpu", "npu": "npu"}


#: LiteRT-LM's accelerator registry lines (`gpu_registry.cc`, `npu_registry.cc`): loaded, or not
_LOADED = {"gpu": re.compile(r"GPU accelerator\(.*\) registered|RegisterAccelerator:.*name=LiteRT GPU", re.I),
           "npu": re.compile(r"NPU accelerator\(.*\) registered|RegisterAccelerator:.*name=.*NPU", re.I)}
_NOT_LOADED = {"gpu": re.compile(r"GPU accelerator could not be loaded[^\n]*", re.I),
               "npu": re.compile(r"NPU accelerator could not be loaded[^\n]*", re.I)}


def accelerator_check(log: str, backend: str) -> tuple[bool | None, str | None]:
    """(whether the engine's log says the accelerator of `backend` loaded: None when it says nothing,
    why the run cannot stand: the log says it could not load it and never that it did)."""
    if backend not in _LOADED:
        return None, None
    if _LOADED[backend].search(log):
        return True, None
    failed = _NOT_LOADED[backend].search(log)
    if failed:
        return False, f"asked for the {backend.upper()}, but LiteRT-LM says: {failed.group(0).strip()}"
    return None, None


def litert_argv(binary: str, model: str, params: BurstParams, *, iterations: int, threads: int | None,
                advanced: bool) -> list[str]:
    """The benchmark command line (see the module doc); `iterations` only for litert_lm_advanced_main."""
    argv = [binary, f"--model_path={model}", f"--backend={BACKEND_FLAG[params.backend]}", "--benchmark=true",
            f"--benchmark_prefill_tokens={params.prompt_tokens}", f"--benchmark_decode_tokens={params.gen_tokens}",
            f"--max_num_tokens={params.prompt_tokens + params.gen_tokens}", "--async=false",
            "--report_peak_memory_footprint=true"]
    if advanced:
        argv.append(f"--num_iterations={iterations}")
    if threads:
        argv.append(f"--num_cpu_threads={threads}")
    return argv


@dataclass(frozen=True)
class Invocation:
    argv: tuple[str, ...]
    command: str
    nonce: str
    iterations: int


def invocations(bundle_remote: str, binary: str, model_remote: str, params: BurstParams, *,
                pid_file: str | None = None, threads: int | None = None) -> list[Invocation]:
    """One invocation of warmup + reps iterations (litert_lm_advanced_main), else one per repetition."""
    advanced = binary == BINARIES[0]
    total = params.warmup + params.reps
    counts = [total] if advanced else [1] * total
    out = []
    for n in counts:
        argv = litert_argv(f"{bundle_remote}/{binary}", model_remote, params, iterations=n, threads=threads,
                           advanced=advanced)
        command, nonce = marked_command(argv, VendorBundle.lib_env(bundle_remote), pid_file=pid_file)
        out.append(Invocation(tuple(argv), command, nonce, n))
    return out


def iteration_spans(runs: Sequence[ToolRun], t_end: float, t_start: float) -> list[tuple[float, float, float]]:
    """(start, prefill end, end) of each iteration on the device clock: the engine's own prefill and
    decode durations, packed in order at the end of the invocation's window (what precedes them is
    process start and init)."""
    spans = []
    end = t_end
    for r in reversed(runs):
        pre = r.values.get("prefill_s") or 0.0
        dec = r.values.get("decode_s") or 0.0
        start = max(t_start, end - pre - dec)
        spans.append((start, min(end, start + pre), end))
        end = start
    return list(reversed(spans))


def repetition(run: ToolRun, span: tuple[float, float, float], warmup: bool) -> Repetition:
    """A Repetition from the engine's timing: prefill end, then its decoded tokens evenly over the decode
    time (LiteRT-LM times the decode as a whole: its rate is exact, no per-token latency is claimed)."""
    a, pre_end, b = span
    n = max(1, int(run.counts.get("gen_tokens") or 1))
    return Repetition(warmup, a, pre_end, pre_end, [pre_end + (b - pre_end) * (k + 1) / n for k in range(n)])


@dataclass
class Plan:
    runtime: dict
    invocations: list[Invocation] = field(default_factory=list)
    partial: NativeRun | None = None


class LiteRtLmBenchRuntime(VendorBundle):
    """LiteRT-LM's benchmark binary, from a user's bundle, on a device's shell."""

    name = NAME
    kind = NATIVE
    formats = ("litertlm",)
    compute_probed = False
    backends = ("cpu", "gpu", "npu")
    binaries = BINARIES
    bundle_hint = ("LiteRT-LM's official Android arm64 build (litert_lm_advanced_main and its .so files in one "
                   "folder): docs/engines.md")
    bundle_layout = "litert_lm_advanced_main (or litert_lm_main) and its .so files"

    def prepare(self, call: DeviceCall) -> Plan:
        binary = self.bundle_binary(call.bundle_dir)
        call.transport.shell(f"chmod 755 {quote(call.bundle_remote + '/' + binary)}"
                             + (f" && rm -f {quote(call.pid_file)}" if call.pid_file else ""), timeout_s=15,
                             check=True)
        invs = invocations(call.bundle_remote, binary, call.model_remote, call.params, pid_file=call.pid_file,
                           threads=call.params.threads)
        runtime = {"name": NAME, "version": None, "backend": call.params.backend.upper(),
                   "backend_requested": call.params.backend, "threads": call.params.threads, "affinity": None,
                   "binary": binary, "commands": {f"invocation_{i + 1}": inv.command for i, inv in enumerate(invs)}}
        return Plan(runtime, invs)

    def execute(self, call: DeviceCall, plan: Plan, on_rep=None) -> NativeRun:
        if call.windows:
            raise EdgebenchError("runtime litert-lm runs burst and fit only", exit_code=2)
        p = call.params
        parser = TOOL_PARSERS.get("litert-lm")
        run = plan.partial = NativeRun(runtime=dict(plan.runtime), spans={"prefill": [], "decode": [], "warmup": []})
        samples: dict[str, list[float]] = {"prefill_tps": [], "decode_tps": [], "ttft_s": []}
        load: list[float] = []  # the engine initialises once per process: its init total, once per invocation
        i = 0
        for inv in plan.invocations:
            call.say(f"litert-lm on {call.transport.serial}: {' '.join(inv.argv[1:])}")
            r = call.transport.shell(inv.command, timeout_s=call.timeout_s)
            out = read_markers(r.stdout, inv.nonce)
            log = out.text + "\n" + (r.stderr or "")
            runs = [x for x in parser.parse(log) if x.form == "BenchmarkInfo"]
            if out.exit_code or len(runs) < inv.iterations or out.t_start is None or out.t_end is None:
                why = (f"exit status {out.exit_code}" if out.exit_code else
                       f"{len(runs)} of {inv.iterations} BenchmarkInfo blocks printed")
                run.failure = ("crashed" if run.n_reps else "load_failed", f"litert-lm gave no result ({why})")
                run.output = log.splitlines()[-20:]
                break
            runs = runs[-inv.iterations:]
            loaded, why = accelerator_check(log, p.backend)
            run.runtime["accelerator_loaded"] = loaded
            if why:
                run.failure = ("failed", why)
                run.metrics, run.unavailable = {}, {m: f"run failed: {why}" for m in samples}
                run.output = log.splitlines()[-20:]
                return run
            if runs[0].values.get("load_s"):
                load.append(runs[0].values["load_s"])
            first_start = None
            for tool_run, span in zip(runs, iteration_spans(runs, out.t_end, out.t_start), strict=True):
                warm = i < p.warmup
                reason = invalid_reason(tool_run)
                if reason:
                    run.failure = ("failed", f"litert-lm iteration {i + 1}: {reason}")
                    run.metrics, run.unavailable = {}, {m: f"run failed: {reason}" for m in samples}
                    return run
                rep = repetition(tool_run, span, warm)
                run.reps.append(rep)
                first_start = span[0] if first_start is None else first_start
                if warm:
                    run.spans["warmup"].append((span[0], span[2]))
                else:
                    run.spans["prefill"].append((span[0], span[1]))
                    run.spans["decode"].append((span[1], span[2]))
                    run.n_reps += 1
                    for name in samples:
                        if tool_run.values.get(name):
                            samples[name].append(tool_run.values[name])
                if on_rep is not None:
                    on_rep(i, p.warmup + p.reps, rep)
                i += 1
            if first_start is not None and first_start > out.t_start:
                run.spans["warmup"].append((out.t_start, first_start))  # process start and init
            run.runtime["engine"] = {k: v for k, v in runs[-1].identity.items()}
        run.metrics = {name: metric(name, vals) for name, vals in samples.items() if vals}
        if load:
            run.metrics["load_s"] = metric("load_s", load)
        return run

    def analysis_params(self, params: BurstParams) -> BurstParams:
        """The decode turn times all gen_tokens tokens after the prefill (as llama-bench's tg test)."""
        return dataclasses.replace(params, gen_tokens=params.gen_tokens + 1)


__all__ = ["BINARIES", "LiteRtLmBenchRuntime", "accelerator_check", "invocations", "iteration_spans", "litert_argv",
           "repetition"]
