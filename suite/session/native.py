"""A native runtime's run on a device: the user's bundle, pushed, run, parsed (suite.runtimes.base.NativeRuntime).

The session's steps, as for a Python runtime on a device: identity, the bundle's ABI against the
device's (before anything is pushed), the model (a card's build or the user's file), provisioning
(cached by hash), the sampler on the device clock, the idle baseline, the runtime's invocations,
then metrics, end conditions, the external meter, derivation and one atomic write.
"""

from __future__ import annotations

from pathlib import Path

from suite.analysis import metrics as analysis
from suite.catalog.cards import get_model_card
from suite.core.errors import EdgebenchError
from suite.core.schema import Outcome
from suite.device import provision
from suite.device.identity import lab_salt
from suite.models import build_model, default_models_dir
from suite.models.user_file import artefact_from_file
from suite.models.user_file import model_record as file_model_record
from suite.runtimes.base import DeviceCall, NativeRuntime
from suite.sensors import power
from suite.sensors.android import AndroidSampler
from suite.session.device import (
    ScenarioHooks,
    _apply_scenario_hooks_start,
    _bandwidth,
    _device_llc,
    _end_conditions,
    _NoCompute,
    device_clock,
    start_conditions,
)
from suite.session.local import (
    _fail,
    _finish,
    _frame,
    _with_meter,
    derive_metrics,
    measure_idle,
    new_record,
)
from suite.store import write_run


def run_native(ref, req, runtime: NativeRuntime, bundle_dir: str | Path, *, status=None,
               push_progress=None, hooks: ScenarioHooks | None = None) -> Path:
    """Benchmark a model with a native runtime's bundle on an attached device; returns the run folder.

    `req.model_file`: a user's model file; else the card `req.model_id` is built in the runtime's
    format (quant `req.quant`). `req.params`: prompt_tokens, gen_tokens, reps, threads (the
    runtime's default, e.g. the big cores, when not given). `hooks`: a scenario's name and gate
    conditions (a native run adds no scenario rows)."""
    if hooks is not None and hooks.before_store is not None:
        raise EdgebenchError(f"runtime {runtime.name} runs the burst scenario only for now", exit_code=2)
    import dataclasses

    say = status or (lambda _m: None)
    bundle_dir = Path(bundle_dir)
    transport = ref.transport()
    say(f"{transport.serial}: reading identity")
    live = ref.live()
    device = live.device_info(lab_salt())
    abi = (live.props.get("ro.product.cpu.abi")
           or transport.shell("getprop ro.product.cpu.abi", timeout_s=15).stdout).strip()
    checked = runtime.check_bundle(bundle_dir, abi)  # before anything is pushed

    fmt = runtime.formats[0]
    if req.model_file is not None:
        card, built = artefact_from_file(req.model_file)
        if built.format not in runtime.formats:
            raise EdgebenchError(f"{req.model_file}: {runtime.name} runs {', '.join(runtime.formats)} files, "
                                 f"not {built.format}", exit_code=2)
    else:
        card = get_model_card(req.model_id)
        built = build_model(card, fmt=fmt, quant=req.quant, seed=req.seed,
                            out_root=req.models_dir or default_models_dir())
    model_path = built.model_file
    model_name = f"models/{card.id}/{built.manifest.get('model_sha256', '')[:12] or built.path.name}/{model_path.name}"
    folder = runtime.name
    files = {model_name: model_path, **{f"{folder}/{k}": v for k, v in runtime.bundle_files(bundle_dir).items()}}
    say(f"{transport.serial}: provisioning {runtime.name} and {card.id}")
    report = provision.ensure_files(transport, files, progress=push_progress)
    call = DeviceCall(transport=transport, live=live, device=device.to_dict(), params=req.params,
                      bundle_dir=bundle_dir, bundle_remote=f"{provision.WORK_DIR}/{folder}",
                      model_remote=report.remote(model_name), say=say)
    plan = runtime.prepare(call)

    conditions = start_conditions(transport, live.snapshot)
    record = new_record(device.to_dict(), card, built, dict(plan.runtime), req.params, conditions)
    _apply_scenario_hooks_start(hooks, record)
    if req.model_file is not None:
        record["model"] = file_model_record(card, built)
    record["provisioning"] = {k: v for k, v in report.to_dict().items() if k != "files"} | {
        "pushed": [f.name for f in report.pushed], "cached": [f.name for f in report.cached]}
    record["runtime"]["bundle"] = {"path": str(bundle_dir.resolve()), "abi": abi, "elf": checked}

    # the SoC catalog's peak (the bandwidth probe needs the Python runner, not pushed for a bundle)
    bw = _bandwidth(transport, None, None, device, dataclasses.replace(req, probe=False), say)
    compute = _NoCompute(f"no compute peak on a device for {runtime.name} runs")
    llc = _device_llc(transport)
    sampler = AndroidSampler(transport, rate_hz=req.sample_rate_hz)
    t0, host_minus_device = device_clock(transport)
    sampler.set_t0_device(t0)
    record["sensors"]["time_base"] = power.clock_block(t0, host_minus_device)
    sampler.start()
    idle = None
    try:
        idle = measure_idle(sampler, req.idle_s, t0, say, live_rows=lambda: sampler.rows)
        result = runtime.execute(call, plan)
    finally:
        import time

        time.sleep(2.0 / max(req.sample_rate_hz, 0.5))  # a sample past the last phase edge
        sampler.stop()
    if result.failure is not None:
        outcome, message = result.failure
        _fail(record, Outcome(outcome), "RuntimeFailure", message)
        record["runner_output"] = result.output
    record["runtime"] = {**record["runtime"], **{k: v for k, v in result.runtime.items() if k in ("version", "backend")}}
    spans = {**result.spans, **({"idle": [idle]} if idle else {})}
    record["metrics"].update(result.metrics)
    rows = analysis.phase_rows(spans, t0)
    _finish(record, sampler, rows, t0)
    _end_conditions(record["conditions"], ref, record)
    if req.power_meter is not None:
        rows = _with_meter(req, record, rows)
    frame = _frame(rows)
    derive_metrics(record, frame, runtime.analysis_params(req.params), result.n_reps, card, bw, compute, llc)
    return write_run(req.results_dir, record, frame)
