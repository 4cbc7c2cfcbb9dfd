"""THE run: any registered runtime on any device, this host included.

`check_request` refuses what cannot run before any work is done (a model build, a push). `run`
is the one session: identity -> the model -> provisioning -> start conditions and the record ->
the bounds (roofline probes or the catalog) -> the sampler on the device's clock -> the idle
baseline -> the runtime's execution -> one store step (metrics, end conditions, the external
meter, energy, roofline, one atomic write), also when the run fails, is interrupted or the phone
is unplugged. What differs by device is its target (`local.Host`, `device.Phone`: identity,
conditions, sampler and clock); what differs by runtime is a small strategy the target picks (in
process here, the device-side runner, or a native runtime's bundle). Callers (the CLI, lab
workers, scenarios) name neither.
"""

from __future__ import annotations

import dataclasses
import traceback
from pathlib import Path

from suite.core.errors import EdgebenchError, RooflineError, RuntimeFailure
from suite.core.record import Failure
from suite.core.schema import Outcome
from suite.models.user_file import model_record as file_model_record
from suite.runtimes import RUNTIMES, Runtime, backends, builds_own, get_runtime, is_native, measures_depth
from suite.runtimes.remote import find_python
from suite.session.device import HostNativeWay, Phone, ScenarioHooks
from suite.session.local import Host, Interrupted, Measured, RunRequest, Status, StopRun, Stored, new_head, store_run
from suite.transport import DeviceDisconnected, DeviceTimeout


def on_device(ref) -> bool:
    return ref is not None and getattr(ref, "serial", "local") != "local"


#: the runtime of a run that names none: in process (this host) or through the device's Python
DEFAULT_RUNTIME = "ort-genai"
#: ... and on a device without a Python that imports it (a stock phone): edgebench's own native build
NATIVE_DEFAULT_RUNTIME = "llama.cpp"


def default_runtime(ref) -> tuple[str, str | None]:
    """(the runtime for a run that names none, why when it is not the usual default): ort-genai on
    this host and on devices with a Python that imports it (boards, Termux, the loopback phone);
    llama.cpp through its benchmark binary (edgebench's own static build) on a phone without one."""
    if not on_device(ref):
        return DEFAULT_RUNTIME, None
    module = get_runtime(DEFAULT_RUNTIME).python_module
    transport = ref.transport()
    try:
        find_python(transport, ref.live().props, module)
    except EdgebenchError:
        return NATIVE_DEFAULT_RUNTIME, (f"{transport.serial} has no Python with {module}: running llama.cpp "
                                        f"through llama-bench (edgebench's own native build); --runtime chooses another")
    return DEFAULT_RUNTIME, None


def check_request(req: RunRequest, ref, wrap=None) -> Runtime:
    """The request's runtime (made into `wrap(runtime)` when a scenario drives it so: voice), or a clear error
    when it cannot run as asked (before any work)."""
    runtime = get_runtime(req.runtime)
    if wrap is not None:
        runtime = wrap(runtime)
    if is_native(runtime) and req.runtime_bundle is None and not builds_own(runtime):
        raise EdgebenchError(f"the {runtime.name} runtime runs a bundle of your own: give --runtime-bundle DIR",
                             hint=runtime.bundle_hint, exit_code=2)
    if req.params.depth and not measures_depth(runtime):
        raise EdgebenchError(f"--depth measures at a filled context with llama-bench's -d; {runtime.name} has no "
                             "such mode", hint="--runtime llama.cpp", exit_code=2)
    if req.params.backend not in backends(runtime):
        raise EdgebenchError(f"--backend {req.params.backend}: {runtime.name} runs on {', '.join(backends(runtime))} "
                             "only", hint="--runtime llama.cpp --runtime-bundle DIR (an official Android/Snapdragon "
                             "build) runs on the GPU and NPU; docs/engines.md", exit_code=2)
    if not is_native(runtime) and req.runtime_bundle is not None:
        raise EdgebenchError(f"--runtime-bundle is for native runtimes; {runtime.name} runs in process",
                             exit_code=2)
    if (req.params.mmap is not None or req.params.repack is not None) and not getattr(runtime, "load_options", False):
        raise EdgebenchError(f"--mmap and --repack are llama.cpp's load options; {runtime.name} has none",
                             hint="--runtime llama.cpp", exit_code=2)
    wanted = tuple(getattr(runtime, "inputs", ()))
    for name in wanted:
        if name not in req.inputs:
            flag = "--" + name.replace("_", "-")
            raise EdgebenchError(f"the {runtime.name} runtime needs {flag} FILE", hint=runtime.bundle_hint,
                                 exit_code=2)
        if not Path(req.inputs[name]).is_file():
            raise EdgebenchError(f"no {name.replace('_', ' ')} file at {req.inputs[name]}", exit_code=2)
    for name in req.inputs:
        if name not in wanted:
            takers = [n for n in RUNTIMES.names() if name in getattr(get_runtime(n), "inputs", ())]
            raise EdgebenchError(f"--{name.replace('_', '-')} is for the {' and '.join(takers) or 'no'} runtime; "
                                 f"{runtime.name} takes no such file", exit_code=2)
    return runtime


def artefact_backend(req: RunRequest, runtime: Runtime, built) -> RunRequest:
    """The request with the backend the model itself fixes, for a runtime whose artefact decides where it
    runs (`backend_from_artefact`: an ExecuTorch program's delegates, a Genie config's engine): `--backend`
    other than the default cpu must name it (else refused before anything runs)."""
    own = built.manifest.get("backend") if getattr(runtime, "backend_from_artefact", False) else None
    asked = req.params.backend
    if not own or own == asked:
        return req
    if own not in backends(runtime):
        raise EdgebenchError(f"{built.model_file} runs on {own}, which {runtime.name} does not measure", exit_code=2)
    if asked != "cpu":
        what = ", ".join(built.manifest.get("delegates") or ()) or own
        raise EdgebenchError(f"--backend {asked}: {built.model_file} was built for the {own.upper()} ({what})",
                             hint=f"give --backend {own}, or a model built for the {asked.upper()}", exit_code=2)
    return dataclasses.replace(req, params=dataclasses.replace(req.params, backend=own))


def cold_start(report, runtime_name: str) -> dict:
    """`{"cold": {...}}` when this run pushed its model or its runtime's files: the first run after a fresh
    push builds the engine's caches (LiteRT-LM's weight and program caches, OpenCL kernel caches) and
    reads files the page cache may not hold; such a run never pools with warm ones
    (suite.analysis.pooling.run_condition). `{}` when everything was cached on the device."""
    fresh = [f.name for f in report.pushed if f.name.startswith(("models/", f"{runtime_name}/"))]
    if not fresh:
        return {}
    return {"cold": {"pushed": fresh, "why": "the first run after pushing its model or runtime: engine caches "
                                            "are built in it; never pooled with warm runs"}}


def run(ref, req: RunRequest, *, status: Status | None = None, on_rep=None, push_progress=None,
        hooks: ScenarioHooks | None = None) -> Path:
    """One measured run on `ref` (None or `local`: this host); returns its folder.

    `push_progress(done_bytes, total_bytes)` follows the provisioning pushes. `hooks` (None for
    the burst scenario) lets a scenario name itself, add conditions, and add metrics and sample
    rows before the record is written. Ctrl-C writes the run as `interrupted` and raises
    `Interrupted` (a KeyboardInterrupt carrying the folder) so the CLI can exit 130.
    """
    say = status or (lambda _m: None)
    hooks = hooks or ScenarioHooks()
    runtime = check_request(req, ref, hooks.runtime)
    if is_native(runtime) and hooks.windows and not getattr(runtime, "windows", False):
        raise EdgebenchError(f"runtime {runtime.name} cannot run one invocation per window: burst and fit only",
                             exit_code=2)
    target = Phone(ref, say) if on_device(ref) else Host(say, native_way=HostNativeWay)
    way = target.way(runtime, req, say, windows=hooks.windows)

    card, built = way.model()
    req = way.req = artefact_backend(req, runtime, built)
    files = way.files(card, built)
    report = target.provision(files, push_progress)
    runtime_block = way.provisioned(report)
    blocks = {}
    cold = {}
    if report is not None:
        blocks["provisioning"] = {k: v for k, v in report.to_dict().items() if k != "files"} | {
            "pushed": [f.name for f in report.pushed], "cached": [f.name for f in report.cached]}
        cold = cold_start(report, runtime.name)
    head = new_head(target.device.to_dict(), card, built, runtime_block, req.params,
                    {**target.start_conditions(), **(hooks.conditions or {}), **cold},
                    model=file_model_record(card, built) if req.model_file is not None else None,
                    scenario=hooks.scenario, lab=req.lab, blocks=blocks)

    llc = target.llc()
    way.measure_bounds()
    way.before_sampling()
    sampler, t0, time_base = target.sampler(req, way.pid_file)
    idle = None

    def store(measured: Measured, *failures: Failure) -> Stored:
        return store_run(req, head, sampler, measured, list(failures), card=card, bw=way.bw, compute=way.compute,
                         t0=t0, llc=llc, end_conditions=target.end_conditions([*measured.failures, *failures]),
                         idle=idle, finish=hooks.finish, time_base=time_base, storage=hooks.storage)

    p = req.params
    where = f" on {target.name}" if target.transport is not None else ""
    try:
        say(f"running {card.id} on {runtime.name}{where}: warmup {p.warmup}, reps {p.reps}")
        sampler.start()
        idle = target.idle(sampler, req.idle_s, t0, say)
        measured = way.execute(sampler, t0, on_rep)
    except StopRun:  # the scenario ends the run here (sustained's duration): not a failure
        way.stop(sampler, kill=True)
        return store(way.measured()).path
    except KeyboardInterrupt:
        way.stop(sampler, kill=True)
        stored = store(way.measured(), Failure(Outcome.INTERRUPTED, "KeyboardInterrupt", "interrupted by the user"))
        raise Interrupted(stored.path) from None
    except DeviceDisconnected as exc:
        way.stop(sampler, kill=False)
        path = store(way.measured(), Failure(Outcome.DISCONNECTED, type(exc).__name__, exc.message)).path
        raise EdgebenchError(f"{target.name} disconnected mid-run; the partial run is recorded in {path}",
                             hint="reconnect the phone; nothing keeps running on it (adbd hangs up the runner)",
                             run_dir=path) from exc
    except DeviceTimeout as exc:
        way.stop(sampler, kill=True)
        path = store(way.measured(), Failure(Outcome.TIMEOUT, type(exc).__name__, exc.message)).path
        raise EdgebenchError(f"run timed out: {exc.message} (run recorded at {path})", run_dir=path) from exc
    except RuntimeFailure as exc:
        way.stop(sampler, kill=True)
        measured = way.measured()
        outcome = Outcome.CRASHED if measured.n_reps else Outcome.LOAD_FAILED
        path = store(measured, Failure(outcome, type(exc).__name__, str(exc))).path
        raise EdgebenchError(f"{exc.message} (run recorded at {path})", run_dir=path) from exc
    except Exception as exc:
        way.stop(sampler, kill=True)
        path = store(way.measured(), Failure(Outcome.CRASHED, type(exc).__name__, str(exc),
                                             traceback.format_exc(limit=8))).path
        raise EdgebenchError(f"run crashed: {exc} (run recorded at {path})", run_dir=path) from exc
    stored = store(measured)
    path, record = stored.path, stored.record
    failed = [e for e in record["errors"] if e["type"] == "RooflineError"]
    if failed:
        raise RooflineError(f"{failed[0]['message']} (run recorded at {path})", run_dir=path)
    if measured.failures:
        failure = measured.failures[-1]
        raise EdgebenchError(f"run {failure.outcome.value}: {failure.message} (recorded at {path})",
                             exit_code=1 if failure.outcome != Outcome.OOM else 4, run_dir=path)
    return path


def run_local(req: RunRequest, status: Status | None = None, on_rep=None) -> Path:
    """The run on this host (`run(None, req)`)."""
    if req.device != "local":
        raise EdgebenchError(
            f"unknown device {req.device!r}", hint="this version benchmarks `local`; see `edgebench devices`"
        )
    return run(None, req, status=status, on_rep=on_rep)


def run_device(ref, req: RunRequest, status: Status | None = None, on_rep=None, push_progress=None, *,
               hooks: ScenarioHooks | None = None) -> Path:
    """The run on an attached device (`run(ref, req)`)."""
    return run(ref, req, status=status, on_rep=on_rep, push_progress=push_progress, hooks=hooks)
