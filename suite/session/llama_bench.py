"""A llama-bench run on a device: the user's native bundle, pushed, run phase by phase, parsed.

(The llama-bench runtime's own pieces, commands and parsing, are suite.runtimes.llama_bench.)
"""

from __future__ import annotations

from pathlib import Path

from suite.core.errors import EdgebenchError, RuntimeFailure


def run_llama_bench_device(ref, req, bundle_dir: str | Path, *, model_file: str | Path | None = None,
                           status=None, push_progress=None) -> Path:
    """Benchmark a GGUF with the user's llama-bench on an attached device; returns the run folder.

    `model_file`: a user's GGUF (`--model-file`); else the GGUF of `req.model_id`'s card is built
    (quant `req.quant`, default q4_0). `req.params`: prompt_tokens (-p), gen_tokens (-n), reps (-r),
    threads (-t; default: the number of big cores)."""
    import dataclasses

    from suite.analysis import metrics as analysis
    from suite.sensors import power
    from suite.device import provision
    from suite.catalog.cards import get_model_card
    from suite.device.identity import lab_salt
    from suite.device.elf import check_bundle_abi
    from suite.models.user_file import artefact_from_file
    from suite.models.user_file import model_record as file_model_record
    from suite.models import build_model, default_models_dir
    from suite.core.schema import Outcome
    from suite.sensors.android import AndroidSampler
    from suite.runtimes.llama_bench import (
        REMOTE_BUNDLE,
        PhaseOutput,
        big_cores,
        bundle_files,
        bundle_links,
        check_affinity,
        device_abi_command,
        parse_phase_output,
        phase_command,
        phase_spans,
        prepare_command,
        runtime_record,
        throughput_metrics,
    )
    from suite.session.local import _fail, _finish, _frame, _with_meter, derive_metrics, measure_idle, new_record
    from suite.session.device import (
        _bandwidth,
        _device_llc,
        _end_conditions,
        _NoCompute,
        device_clock,
        start_conditions,
    )
    from suite.store import write_run

    say = status or (lambda _m: None)
    bundle_dir = Path(bundle_dir)
    transport = ref.transport()
    say(f"{transport.serial}: reading identity")
    live = ref.live()
    device = live.device_info(lab_salt())
    abi = (live.props.get("ro.product.cpu.abi") or transport.shell(device_abi_command(), timeout_s=15).stdout).strip()
    checked = check_bundle_abi(bundle_dir, abi)  # before anything is pushed

    if model_file is not None:
        card, built = artefact_from_file(model_file)
        if built.format != "gguf":
            raise EdgebenchError(f"{model_file}: llama-bench runs GGUF files, not {built.format}", exit_code=2)
        model_path = built.model_file
    else:
        card = get_model_card(req.model_id)
        built = build_model(card, fmt="gguf", quant=req.quant or "q4_0", seed=req.seed,
                            out_root=req.models_dir or default_models_dir())
        model_path = built.model_file
    model_name = f"models/{card.id}/{built.manifest.get('model_sha256', '')[:12] or built.path.name}/{model_path.name}"
    files = {model_name: model_path, **bundle_files(bundle_dir)}
    say(f"{transport.serial}: provisioning llama-bench and {card.id}")
    report = provision.ensure_files(transport, files, progress=push_progress)
    bundle_remote = f"{provision.WORK_DIR}/{REMOTE_BUNDLE}"
    model_remote = report.remote(model_name)
    transport.shell(prepare_command(bundle_remote, bundle_links(bundle_dir)), timeout_s=15, check=True)

    from suite.device.android import snapshot as snap

    cores = big_cores(live.texts.get(snap.CPUFREQ, ""), device.to_dict().get("logical_cores"))
    mask, why = check_affinity(transport, cores)
    p = req.params
    threads = p.threads or len(cores.cpus)
    conditions = start_conditions(transport, live.snapshot)
    record = new_record(device.to_dict(), card, built, runtime_record({}, threads, cores, []), p, conditions)
    if model_file is not None:
        record["model"] = file_model_record(card, built)
    record["provisioning"] = {k: v for k, v in report.to_dict().items() if k != "files"} | {
        "pushed": [f.name for f in report.pushed], "cached": [f.name for f in report.cached]}
    record["runtime"]["affinity"] |= {"applied": mask is not None, "not_applied_because": why}
    record["runtime"]["bundle"] = {"path": str(bundle_dir.resolve()), "abi": abi, "elf": checked}

    # the SoC catalog's peak (the bandwidth probe needs the Python runner, not pushed for llama-bench)
    bw = _bandwidth(transport, None, None, device, dataclasses.replace(req, probe=False), say)
    compute = _NoCompute("no compute peak on a device for llama-bench runs")
    llc = _device_llc(transport)
    sampler = AndroidSampler(transport, rate_hz=req.sample_rate_hz)
    t0, host_minus_device = device_clock(transport)
    sampler.set_t0_device(t0)
    record["sensors"]["time_base"] = power.clock_block(t0, host_minus_device)
    outs: dict[str, PhaseOutput] = {}
    invocations = {
        "prefill": phase_command(bundle_remote, model_remote, "prefill", p.prompt_tokens, reps=p.reps,
                                 threads=threads, mask=mask),
        "decode": phase_command(bundle_remote, model_remote, "decode", p.gen_tokens, reps=p.reps,
                                threads=threads, mask=mask),
    }
    record["runtime"]["commands"] = {k: v.command for k, v in invocations.items()}
    rows_pp = rows_tg = None
    sampler.start()
    idle = None
    try:
        idle = measure_idle(sampler, req.idle_s, t0, say, live_rows=lambda: sampler.rows)
        for phase, inv in invocations.items():
            say(f"llama-bench {phase} on {transport.serial}: {' '.join(inv.argv[1:])}")
            r = transport.shell(inv.command, timeout_s=3600)
            outs[phase] = parse_phase_output(phase, r.stdout, inv.nonce, r.stderr)
            if phase == "prefill":
                rows_pp = outs[phase].row()
            else:
                rows_tg = outs[phase].row()
    except RuntimeFailure as exc:
        _fail(record, Outcome.CRASHED if rows_pp else Outcome.LOAD_FAILED, "RuntimeFailure", exc.message)
        record["runner_output"] = [ln for o in outs.values() for ln in (o.text + "\n" + o.stderr).splitlines()[-20:]]
    finally:
        import time

        time.sleep(2.0 / max(req.sample_rate_hz, 0.5))  # a sample past the last phase edge
        sampler.stop()
    record["runtime"].update({k: v for k, v in runtime_record({}, threads, cores, [rows_pp, rows_tg]).items()
                              if k in ("version", "backend")})
    spans: dict[str, list] = {"prefill": [], "decode": [], "warmup": [], **({"idle": [idle]} if idle else {})}
    n_reps = 0
    for phase, row in (("prefill", rows_pp), ("decode", rows_tg)):
        if row is None:
            continue
        measured, warm = phase_spans(outs[phase], row)
        spans[phase] += measured
        spans["warmup"] += warm
        n_reps = len(measured) if phase == "prefill" else min(n_reps, len(measured))
    record["metrics"].update(throughput_metrics(rows_pp, rows_tg))
    rows = analysis.phase_rows(spans, t0)
    _finish(record, sampler, rows, t0)
    _end_conditions(record["conditions"], ref, record)
    if req.power_meter is not None:
        rows = _with_meter(req, record, rows)
    frame = _frame(rows)
    if rows_tg is not None:
        # analysis counts gen_tokens - 1 decode steps (the first token ends prefill); llama-bench's
        # tg test times all n_gen steps
        derive_metrics(record, frame, dataclasses.replace(p, gen_tokens=p.gen_tokens + 1), n_reps, card, bw,
                       compute, llc)
    else:
        record["metrics"].update(analysis.temperature_metrics(frame))
    return write_run(req.results_dir, record, frame)
