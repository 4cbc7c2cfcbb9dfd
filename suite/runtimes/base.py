"""What a runtime is: how a model runs on a device, and how its timings come back.

Two kinds, one registry (`RUNTIMES`, filled in suite/runtimes/__init__.py):

- **python** runtimes run in process: `run_burst(artefact, params)` loads a model artefact and
  reports raw timings, on this host, or on a device that has a Python through the device-side
  runner (suite.runtimes.runner, which imports `python_module` there).
- **native** runtimes run a binary from a bundle pushed to the device (a user's build):
  `bundle_files` says what to push, `check_bundle` refuses a bundle for another ABI before
  anything is pushed, `prepare` plans the invocations (threads, affinity) and `execute` runs
  them over the device's shell and parses their output into a `NativeRun`.

A runtime measures; it does not summarise. Timings are raw timestamps (the host's monotonic
clock in process, the device's realtime clock on a device) so the session can place phase
markers on the sensor timeline; suite.analysis turns them into metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from suite.core.errors import RuntimeFailure
from suite.core.measure import BurstParams, BurstResult, Repetition
from suite.core.registry import Registry

#: The two kinds of runtime.
PYTHON = "python"
NATIVE = "native"
#: the shell's status of a process killed by SIGILL (128 + 4): a binary built for a CPU feature it lacks
SIGILL_EXIT = 132
#: the shell's status of a process killed by SIGKILL (128 + 9): the kernel's OOM killer, lmkd, a cgroup limit
KILLED_EXIT = 137
#: how long one invocation of a native runtime may run unless the run says (`DeviceCall.timeout_s`)
INVOCATION_TIMEOUT_S = 3600.0


#: Called by a runtime as it moves between phases: (phase name, "start" | "end", t_monotonic).
PhaseCallback = Callable[[str, str, float], None]
#: Called after each repetition with (index, total, the repetition): partial results survive.
RepCallback = Callable[[int, int, "Repetition"], None]


class Runtime(Protocol):
    """What every runtime says about itself."""

    name: str
    #: PYTHON or NATIVE
    kind: str
    #: model formats it loads; a reference card is built in the first
    formats: tuple[str, ...]
    #: whether onnxruntime's int4 MatMulNBits probe bounds its prefill (its own kernels): only then
    #: does a run carry a prefill roofline from the compute probe
    compute_probed: bool


class PythonRuntime(Runtime, Protocol):
    #: the module a device's Python must import to run it through the runner
    python_module: str

    def version(self) -> str: ...

    def run_burst(
        self,
        artefact: Path,
        params: BurstParams,
        *,
        on_phase: PhaseCallback | None = None,
        on_rep: RepCallback | None = None,
    ) -> BurstResult: ...


@dataclass
class DeviceCall:
    """What a native runtime gets to run on a device: the shell, the device, the pushed files."""

    transport: Any
    #: the device's snapshot texts (suite.device.live.LiveState) and its identity block
    live: Any
    device: dict
    params: BurstParams
    bundle_dir: Path
    #: remote paths (absolute on the device) of the pushed bundle folder and model file
    bundle_remote: str
    model_remote: str
    say: Callable[[str], None] = lambda _m: None
    #: one invocation per repetition, each a window the scenario watches as it ends (sustained);
    #: for runtimes with `windows = True`
    windows: bool = False
    #: where each invocation writes its pid as it starts (the sampler follows its memory); None: nowhere
    pid_file: str | None = None
    #: remote paths of the run's other input files, by the name the runtime declares in `inputs`
    #: (ExecuTorch's tokenizer)
    inputs: dict[str, str] = field(default_factory=dict)
    #: how long one invocation may run (the device's shell call gives up and hangs it up past it: the run's
    #: outcome is then `timeout`)
    timeout_s: float = INVOCATION_TIMEOUT_S


@dataclass
class NativeRun:
    """What a native runtime measured: spans on the device clock, throughput, its runtime block.

    `failure` = (outcome, message) when an invocation gave no result; the spans and metrics of
    the invocations that did are kept."""

    runtime: dict
    spans: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)
    n_reps: int = 0
    failure: tuple[str, str] | None = None
    output: list[str] = field(default_factory=list)
    #: the binary was killed by SIGILL (exit 132): built for instructions this CPU lacks
    illegal_instruction: bool = False
    #: in windows mode, one Repetition per window (device clock), as the scenario's analysis reads them
    reps: list = field(default_factory=list)
    #: what a metric cannot be in this mode, and why
    unavailable: dict = field(default_factory=dict)
    #: (prompt tokens, generated tokens) per measured repetition as the tool counted them, when they are not
    #: the asked ones (a runtime given text, whose tokenizer decides; a generation ended early)
    counted: tuple[int, int] | None = None


@dataclass(frozen=True)
class OwnBundle:
    """A bundle edgebench built itself for a device (suite.runtimes.build): its folder, the ABI it
    was built for, and what the run records of it (source, commit, variant and why, toolchain,
    the binary's sha256)."""

    path: Path
    abi: str
    record: dict
    #: the variant to try once when this one dies of an illegal instruction (None: the baseline)
    fallback: str | None = None


class NativeRuntime(Runtime, Protocol):
    """A native binary on a device's shell. A bundle is the user's (`--runtime-bundle DIR`), or,
    for a runtime with `own_bundle(live, say, variant=None) -> OwnBundle` and `own_version(live) -> str`,
    edgebench's own build for the device (its ABI and CPU variant from the device's `live`
    reading), built once and cached."""


    #: where a user learns to build a bundle, and what a bundle holds (error messages)
    bundle_hint: str
    bundle_layout: str

    def bundle_files(self, bundle: Path) -> dict[str, Path]:
        """Remote name (relative to the bundle's folder on the device) -> local file to push."""
        ...

    def check_bundle(self, bundle: Path, device_abi: str) -> dict[str, str]:
        """{relative path: ABI} of the bundle's binaries; an error when one is for another ABI."""
        ...

    def bundle_version(self, bundle: Path) -> str:
        """The bundle's identity for resuming lab plans (a digest of its binary)."""
        ...

    def binary_sha256(self, bundle: Path) -> str | None:
        """The sha256 of the bundle's binary (None when it has none): recorded as
        `runtime.bundle.sha256`, part of the pooling key."""
        ...

    def prepare(self, call: DeviceCall) -> Any:
        """Before sampling starts: set the pushed bundle up and plan the invocations; the plan has
        `.runtime`, the record's runtime block so far."""
        ...

    def execute(self, call: DeviceCall, plan: Any, on_rep: RepCallback | None = None) -> NativeRun:
        """Run the plan. In windows mode every window is reported to `on_rep` as it ends (which may
        raise to end the run: `plan.partial` then holds the NativeRun so far)."""
        ...

    def analysis_params(self, params: BurstParams) -> BurstParams:
        """The burst parameters as the analysis must count them (a tool may time another number
        of decode steps than edgebench's gen_tokens - 1)."""
        ...

    # Optional:
    #   inputs: tuple[str, ...]  -- other files a run needs (`RunRequest.inputs` by name, pushed beside
    #                               the model; their remote paths in `DeviceCall.inputs`)
    #   model_files(built, params) -> dict[str, Path]  -- every file of the model to push, the first the
    #                               one the runtime loads (default: the model file alone)


RUNTIMES: Registry[type[Runtime]] = Registry("runtime")


def is_native(runtime: Runtime) -> bool:
    return runtime.kind == NATIVE


def measures_depth(runtime: Runtime) -> bool:
    """A runtime that measures at a filled context (`BurstParams.depth`: llama-bench's `-d`)."""
    return bool(getattr(runtime, "depth", False))


def artefact_file(artefact: Path, name: str, what: str, fmt: str) -> Path:
    """The model file of an artefact folder (`<folder>/<name>`), or `artefact` itself if it is a file; a
    RuntimeFailure naming `what` (the model kind) and the `fmt` to build when the folder has none."""
    artefact = Path(artefact)
    if artefact.is_file():
        return artefact
    path = artefact / name
    if not path.is_file():
        raise RuntimeFailure(f"{artefact} has no {name}: not a {what} model",
                             hint=f"build one with build_model(card, fmt={fmt!r})")
    return path


def backends(runtime: Runtime) -> tuple[str, ...]:
    """The backends (suite.core.measure.BACKENDS) a runtime can run a model on: its `backends`
    attribute, the CPU alone without one."""
    return tuple(getattr(runtime, "backends", ("cpu",)))


def builds_own(runtime: Runtime) -> bool:
    """A native runtime that edgebench builds itself when no bundle is given."""
    return is_native(runtime) and callable(getattr(runtime, "own_bundle", None))


def run_repetitions(
    params: BurstParams, one: Callable[[bool], Repetition], on_rep: RepCallback | None = None
) -> list[Repetition]:
    """Warmups then measured repetitions, each reported as soon as it ends."""
    total = params.warmup + params.reps
    reps: list[Repetition] = []
    for i in range(total):
        reps.append(one(i < params.warmup))
        if on_rep:
            on_rep(i, total, reps[-1])
    return reps


__all__ = ["INVOCATION_TIMEOUT_S", "KILLED_EXIT", "NATIVE", "PYTHON", "RUNTIMES", "BurstParams", "BurstResult", "DeviceCall", "NativeRun", "NativeRuntime",
           "PhaseCallback", "PythonRuntime", "RepCallback", "Repetition", "Runtime", "artefact_file", "backends", "builds_own",
           "is_native", "measures_depth", "run_repetitions"]
