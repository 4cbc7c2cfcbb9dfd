"""The `edgebench` command: thin typer commands that parse, call a plain function, render."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from suite.cli import exits
from suite.cli.devices import devices_app
from suite.cli.lab import lab_app
from suite.cli.options import AdbServers, JsonOut, ModelsDir, OutDir, ResultFolders, ResultsDir
from suite.cli.runtimes import runtimes_app
from suite.core.errors import EdgebenchError, UnknownNameError
from suite.core.measure import BACKENDS
from suite.importers import IMPORTERS
from suite.runtimes import RUNTIMES, BurstParams
from suite.runtimes.outputs import TOOL_PARSERS
from suite.scenarios import SCENARIOS, get_scenario

# Command bodies import their layer lazily, each such block marked `# lazy:`: `edgebench --help` must
# start fast, and the layers below load heavy libraries (the session, the store and the report: pandas,
# pyarrow, scipy, onnx, matplotlib, jinja2, ~1-2 s; the device and lab layers: adbutils, ~0.2 s). What
# start-up loads anyway (rich, the registries, suite.core) is imported above.

if TYPE_CHECKING:
    from suite.session.local import RunRequest

app = typer.Typer(
    name="edgebench",
    help="Device capability benchmarking for on-device AI: which models run, how fast, "
    "at what power, in how much memory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="The reference model ladders (language and speech models): list, build, show.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(devices_app, name="devices")
app.add_typer(lab_app, name="lab")
app.add_typer(runtimes_app, name="runtimes")


class _ImportGroup(TyperGroup):
    """`edgebench import FILE...` (the tool recognised from the text) beside `import TOOL FILE...` and
    `import meter`: a first word that is not a command is a file, for the hidden `files` command."""

    def resolve_command(self, ctx, args):
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            return "files", self.get_command(ctx, "files"), args
        return super().resolve_command(ctx, args)


import_app = typer.Typer(
    cls=_ImportGroup, no_args_is_help=True,
    help="Import other tools' results as runs: `edgebench import FILE...` recognises the tool from the text "
    f"({', '.join(['llama-bench', *TOOL_PARSERS.names()])}); `edgebench import TOOL FILE...` names it; "
    "`edgebench import meter` attaches a power meter's log to a run (never guessed).")
app.add_typer(import_app, name="import")
loopback_app = typer.Typer(
    help="Loopback phones: ADB devices on 127.0.0.1 for demos and tests without a phone "
    "(simulated: results say so). Needs root, bubblewrap, mksh, toybox and cgroup v1.",
    no_args_is_help=True,
)
app.add_typer(loopback_app, name="loopback")

console = Console()
err = Console(stderr=True)
_state = {"debug": False}

QUICKSTART_MODELS = ("llama-68m", "smollm2-135m")


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# --- devices ---------------------------------------------------------------------------


def _plain(value) -> str:
    """Device strings are data, never rich markup."""
    return escape("" if value is None else str(value))


# --- models ----------------------------------------------------------------------------


@models_app.command("list")
def models_list(models_dir: ModelsDir = None, as_json: JsonOut = False) -> None:
    """List the model cards (language models, then speech models, each smallest first) and which are built."""
    # lazy: suite.models loads onnx and numpy (~0.9 s)
    from suite.catalog.cards import load_model_cards
    from suite.catalog.speech import speech_cards
    from suite.models import default_models_dir, find_built

    root = models_dir or default_models_dir()
    rows = []
    for c in sorted(load_model_cards().values(), key=lambda c: c.params()):
        ladder = "fit" if c.in_default_ladder else "beyond RAM" if c.reference else "test"
        rows.append({"id": c.id, "name": c.name, "kind": "llm", "architecture": c.architecture, "params": c.params(),
                     "license": c.license, "ladder": ladder, "built": [str(b.path) for b in find_built(c.id, root)]})
    for c in speech_cards():
        rows.append({"id": c.id, "name": c.name, "kind": "speech", "architecture": c.architecture,
                     "params": c.params(), "license": c.license, "ladder": "speech",
                     "built": [str(b.path) for b in find_built(c.id, root)]})
    if as_json:
        console.print_json(json.dumps(rows))
        return
    t = Table(title=f"Reference models (built under {root})")
    for col in ("id", "name", "kind", "arch", "params", "license", "ladder", "built"):
        t.add_column(col)
    for i, r in enumerate(rows):
        if i and r["kind"] != rows[i - 1]["kind"]:
            t.add_section()
        t.add_row(r["id"], r["name"], r["kind"], r["architecture"], _params(r["params"]), str(r["license"] or ""),
                  r["ladder"], "yes" if r["built"] else "")
    console.print(t)


@models_app.command("build")
def models_build(
    ids: Annotated[list[str], typer.Argument(help="Model ids (see `edgebench models list`).")],
    fmt: Annotated[str | None, typer.Option("--format", help="onnx (for ort-genai), gguf (for llama.cpp) or "
                                                             "litertlm (for litert-lm-python); speech models build "
                                                             "as ggml (whisper.cpp) only "
                                                             "[default: onnx; ggml for speech models].",
                                            show_default=False)] = None,
    quant: Annotated[str | None, typer.Option(help="int4/int8 (onnx), q4_0/q8_0 (gguf), int8/f32 (litertlm), "
                                                    "f16/q8_0/q5_0 (ggml) "
                                                    "[default: int4 / q4_0 / int8 / f16].")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the random weights.")] = 0,
    force: Annotated[bool, typer.Option(help="Rebuild even when a matching build exists.")] = False,
    push_rate: Annotated[float | None, typer.Option(help="MB/s: your phone's push rate (a run record's "
                                                         "provisioning.throughput_bytes_per_s / 1e6); the estimate "
                                                         "shown before a large build then says the push time.",
                                                    min=0.001)] = None,
    models_dir: ModelsDir = None,
) -> None:
    """Build reference models: architecture-exact ONNX, GGUF or LiteRT-LM (language models) or whisper.cpp's
    ggml file (speech models) with seeded random weights.

    Before a model over 1 GiB (Qwen2.5-14B, 32B, Whisper large-v3...) its size, the free space and the push
    time are shown; when the disk cannot hold the builds, nothing is written (exit 3)."""
    # lazy: suite.models loads onnx and numpy (~0.9 s)
    from suite.catalog.speech import get_card
    from suite.models import default_models_dir, estimate_builds, refuse_if_short
    from suite.models.estimate import SHOW_ABOVE_BYTES, card_format

    cards = [get_card(i) for i in ids]  # fail on a bad id (or a format a card does not build in) before building
    root = models_dir or default_models_dir()
    for est in estimate_builds(cards, fmt=fmt, quant=quant, seed=seed, out_root=root, force=force,
                               push_rate_bytes_per_s=push_rate * 1e6 if push_rate else None):
        if est.artifact_bytes > SHOW_ABOVE_BYTES or not (est.fits or est.cached):
            console.print(escape(est.text()), highlight=False)
        refuse_if_short(est)  # before any build: exit 3 with the numbers
    for card in cards:
        built = _build_with_progress(card, fmt=card_format(card, fmt), quant=quant, seed=seed, root=root,
                                     force=force)
        console.print(f"[green]built[/] {card.id}: {built.path} ({_gib(built.manifest.get('total_bytes'))})")


def _build_with_progress(card, *, fmt: str = "onnx", quant: str | None, seed: int, root: Path, force: bool = False):
    # lazy: suite.models loads onnx and numpy (~0.9 s)
    from suite.models import build_model, build_speech_model

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err, transient=True,
    ) as progress:
        task = progress.add_task(f"building {card.id}", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        if fmt == "ggml":  # a speech card (the builder refused any other pairing before this)
            return build_speech_model(card, quant=quant or "f16", seed=seed, out_root=root, progress=update,
                                      force=force)
        return build_model(card, fmt=fmt, quant=quant, seed=seed, out_root=root, progress=update, force=force)


@models_app.command("show")
def models_show(model_id: Annotated[str, typer.Argument(help="Model id.")], models_dir: ModelsDir = None) -> None:
    """Show a model card (a language or a speech model) and its builds."""
    # lazy: suite.models loads onnx and numpy (~0.9 s)
    from suite.catalog.speech import SpeechCard, get_card
    from suite.models import default_models_dir, find_built

    card = get_card(model_id)
    data = card.to_dict() | {"params_computed": card.params()}
    if isinstance(card, SpeechCard):
        data |= {"kind": "speech", "encoder_params": card.encoder_params(), "decoder_params": card.decoder_params()}
    data["builds"] = [
        {"path": str(b.path), "bytes": b.manifest.get("total_bytes"), "options": b.manifest.get("options")}
        for b in find_built(card.id, models_dir or default_models_dir())
    ]
    console.print_json(json.dumps(data, default=str))


# --- run -------------------------------------------------------------------------------


@app.command()
def run(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model id (see `edgebench models list`).")] = None,
    model_file: Annotated[Path | None, typer.Option("--model-file", help="A real checkpoint instead of a card: a GGUF file (llama.cpp, llama-cpp-python), an ort-genai ONNX folder, a LiteRT-LM .litertlm file (litert-lm, litert-lm-python) or an ExecuTorch .pte program (executorch).")] = None,
    tokenizer: Annotated[Path | None, typer.Option("--tokenizer", help="executorch: the tokenizer of the .pte (tokenizer.json, tokenizer.model or .bin), pushed beside it.")] = None,
    genie_config: Annotated[Path | None, typer.Option("--genie-config", help="genie: the model's genie_config.json; every file it names is pushed with it (implies --runtime genie).")] = None,
    device: Annotated[str, typer.Option("--device", "-d", help="local, a serial, all, or filters like tier=entry,soc=SM8650.")] = "local",
    adb: AdbServers = None,
    runtime: Annotated[str | None, typer.Option("--runtime", help=f"{RUNTIMES.describe()}. Default: ort-genai on this host and on devices with Python; llama.cpp (edgebench's own build of llama-bench) on phones without.")] = None,
    runtime_bundle: Annotated[Path | None, typer.Option("--runtime-bundle", help="Your own build of a native runtime (its binary + lib/*.so) for the device's ABI; without it edgebench builds llama.cpp's llama-bench itself.")] = None,
    prompt_tokens: Annotated[int, typer.Option(help="Prompt length prefilled in one batch.", min=1)] = 128,
    gen_tokens: Annotated[int, typer.Option(help="Tokens generated per repetition.", min=2)] = 64,
    reps: Annotated[int, typer.Option(help="Measured repetitions.", min=1)] = 5,
    warmup: Annotated[int, typer.Option(help="Warmup repetitions, discarded.", min=0)] = 1,
    depth: Annotated[int, typer.Option(help="Tokens already in the context before prefill and decode are measured (a chat's history; llama-bench's -d). llama.cpp only.", min=0)] = 0,
    backend: Annotated[str, typer.Option(help="Where the model runs: cpu, gpu or npu (llama.cpp with your official Android/Snapdragon bundle for gpu and npu; a run that asked for one and ran elsewhere fails).")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="Runtime threads [default: all logical cores].", min=1)] = None,
    quant: Annotated[str | None, typer.Option(help="Model quantisation: int4/int8 (ONNX), q4_0/q8_0 (GGUF) [default: int4 / q4_0].")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the model weights and prompt ids.")] = 0,
    rate: Annotated[float, typer.Option(help="Sensor sampling rate (Hz).", min=0.1)] = 10.0,
    probe: Annotated[bool, typer.Option(help="Measure memory bandwidth and compute peak for the roofline.")] = True,
    scenario: Annotated[str, typer.Option(help=f"{SCENARIOS.describe()}.")] = "burst",
    duration: Annotated[str | None, typer.Option(help="sustained: how long to decode, e.g. 10m, 90s.")] = None,
    windows: Annotated[int | None, typer.Option(help="sustained: number of windows (instead of --duration).", min=1)] = None,
    window_tokens: Annotated[int, typer.Option(help="sustained: tokens per generation; consecutive generations make a window.", min=2)] = 64,
    min_window: Annotated[str, typer.Option(help="sustained: shortest window, e.g. 2s (generations are grouped until a window spans it; 0: one generation per window).")] = "2s",
    models: Annotated[str | None, typer.Option(help="fit: comma-separated ladder [default: every reference card by size].")] = None,
    beyond_ram: Annotated[bool, typer.Option("--beyond-ram", help="fit: keep walking past the models larger than the phone's RAM, llama.cpp mapping their weights from storage (mmap on, weight repacking off); each rung says whether it ran offloaded.")] = False,
    floor_tps: Annotated[float, typer.Option(help="fit --beyond-ram: stop after the first rung whose decode is slower than this (tok/s).", min=0.0)] = 1.0,
    rung_timeout: Annotated[str, typer.Option(help="fit --beyond-ram: the longest one rung's invocation may run, e.g. 15m (past it the rung is a timeout and the walk stops).")] = "15m",
    asr_model: Annotated[str | None, typer.Option(help="voice: the speech card (whisper-tiny, whisper-base, whisper-small, whisper-medium, whisper-large-v3, whisper-large-v3-turbo).")] = None,
    turns: Annotated[int, typer.Option(help="voice: consecutive turns measured (after --warmup turns).", min=1)] = 3,
    audio_s: Annotated[int, typer.Option(help="voice: the utterance's length, 5 or 30 s (16 kHz, deterministic).")] = 5,
    asr_quant: Annotated[str, typer.Option(help="voice: the speech model's weights: f16, q8_0 or q5_0.")] = "f16",
    audio_ctx: Annotated[int, typer.Option(help="voice: whisper's audio context in frames (0: the full 30 s window whatever the utterance; 1500 frames = 30 s).", min=0)] = 0,
    mmap: Annotated[int | None, typer.Option(help="llama.cpp: 1 maps the model file (its pages can be evicted and read again), 0 reads it into memory [default: llama-bench's].", min=0, max=1)] = None,
    repack: Annotated[int | None, typer.Option(help="llama.cpp: 0 turns off CPU weight repacking (repacked weights are anonymous memory, which cannot page) [default: llama-bench's, on].", min=0, max=1)] = None,
    cooldown_max_temp: Annotated[float | None, typer.Option(help="Gate: wait until the battery (or hottest) sensor is under this (degC) and thermal status is NONE.")] = None,
    cooldown_timeout: Annotated[str, typer.Option(help="Gate: give up cooling after this long, e.g. 10m.")] = "10m",
    battery_floor: Annotated[float | None, typer.Option(help="Gate: skip (or --battery-wait) when the battery is under this level (%).")] = None,
    battery_wait: Annotated[bool, typer.Option(help="Gate: wait for charge instead of skipping.")] = False,
    idle: Annotated[str, typer.Option(help="Idle baseline sampled before the model loads (power_w/idle and the above-idle figures), e.g. 5s; 0 for none. Skipped when the device has no power reading.")] = "5s",
    power_meter: Annotated[Path | None, typer.Option("--power-meter", help="An external meter's CSV log (time + watts, or volts and amps), read when the run ends and aligned by timestamps: it becomes the run's power.")] = None,
    meter_offset: Annotated[float, typer.Option(help="The meter's clock minus this host's clock (s), when the meter logs on another machine.")] = 0.0,
    results_dir: ResultsDir = Path("results"),
    models_dir: ModelsDir = None,
) -> None:
    """Benchmark a model on a device: prefill, decode, TTFT, memory, sensors, roofline."""
    # lazy: the session loads pandas, scipy and onnx (~1.8 s), device selection adbutils
    from suite.device.select import parse_servers, resolve
    from suite.models import default_models_dir
    from suite.session.local import RunRequest

    if genie_config is not None:
        if model_file is not None:
            raise EdgebenchError("--genie-config is the model of a genie run: give it without --model-file",
                                 exit_code=exits.USAGE)
        model_file, runtime = genie_config, runtime or "genie"
    if (model is None) == (model_file is None):
        raise EdgebenchError("give --model ID or --model-file PATH (one of them)", exit_code=exits.USAGE)
    if tokenizer is not None and not tokenizer.is_file():
        raise EdgebenchError(f"no tokenizer file at {tokenizer}", exit_code=exits.USAGE)
    if model_file is not None and not model_file.exists():
        raise EdgebenchError(f"no model file at {model_file}", exit_code=exits.USAGE)
    model = model or model_file.stem
    if power_meter is not None and not power_meter.is_file():
        raise EdgebenchError(f"no power-meter log at {power_meter}", hint="start the meter's logging first; the "
                             "log is read when the run ends", exit_code=exits.USAGE)
    idle_s = _seconds(idle)
    try:
        refs = [None] if device == "local" else resolve(device, parse_servers(adb))
    except EdgebenchError as exc:
        raise EdgebenchError(f"cannot run on device {device!r}: {exc.message}", hint=exc.hint,
                             exit_code=exc.exit_code) from None
    gate = None
    if cooldown_max_temp is not None or battery_floor is not None:
        from suite.session.gating import Gate  # lazy: gating loads adbutils (~0.1 s)

        gate = Gate(cooldown_max_temp_c=cooldown_max_temp, cooldown_timeout_s=_seconds(cooldown_timeout),
                    battery_floor=battery_floor, battery_wait=battery_wait)
    scenario = SCENARIOS.check(scenario)  # an unknown one: UnknownNameError naming the registered ones
    if beyond_ram:
        if scenario != "fit":
            raise EdgebenchError("--beyond-ram is an option of the fit scenario: give --scenario fit",
                                 exit_code=exits.USAGE)
        runtime = runtime or "llama.cpp"  # it maps GGUF weights from storage
    if scenario == "voice":
        runtime = runtime or "llama.cpp"  # the reply runs beside edgebench's whisper.cpp driver
    elif asr_model is not None:
        raise EdgebenchError("--asr-model is an option of the voice scenario: give --scenario voice",
                             exit_code=exits.USAGE)
    if backend not in BACKENDS:
        raise EdgebenchError(f"unknown backend {backend!r}", hint=f"one of {', '.join(BACKENDS)}", exit_code=exits.USAGE)
    params = BurstParams(prompt_tokens=prompt_tokens, gen_tokens=gen_tokens, reps=reps, warmup=warmup,
                         threads=threads, seed=seed, depth=depth, backend=backend,
                         mmap=None if mmap is None else bool(mmap), repack=None if repack is None else bool(repack))
    req = RunRequest(model_id=model, runtime=runtime or "ort-genai", device=device, params=params, quant=quant,
                     seed=seed,
                     models_dir=models_dir or default_models_dir(), results_dir=results_dir, sample_rate_hz=rate,
                     probe=probe, model_file=model_file, idle_s=idle_s, power_meter=power_meter,
                     meter_offset_s=meter_offset, runtime_bundle=runtime_bundle,
                     inputs={"tokenizer": tokenizer} if tokenizer is not None else {})
    entry = get_scenario(scenario)
    if entry.needs_phone or gate is not None:
        if refs == [None]:
            raise EdgebenchError(f"the {scenario} scenario and the gates run on phones: give --device SERIAL",
                                 exit_code=exits.USAGE)
        options = _scenario_options(entry, duration=duration, windows=windows, window_tokens=window_tokens,
                                    min_window=min_window, models=models, beyond_ram=beyond_ram,
                                    floor_tps=floor_tps, rung_timeout=rung_timeout,
                                    voice={"asr_model": asr_model, "turns": turns, "audio_s": audio_s,
                                           "asr_quant": asr_quant, "audio_ctx": audio_ctx})
        for ref in refs:
            _run_scenario(entry, _for_device(req, ref, runtime), ref, gate=gate, options=options)
        return
    # ungated, a scenario that needs no phone is one plain run (suite/scenarios/base.py): shown with progress
    failures = []
    for ref in refs:
        try:
            _print_run_summary(_run_one(_for_device(req, ref, runtime), ref))
        except EdgebenchError as exc:
            if len(refs) == 1 or exc.exit_code == exits.INTERRUPTED:
                raise
            failures.append(exc)  # record-and-continue across devices; exit non-zero at the end
            err.print(f"[red]error:[/] {_plain(exc.message)}", highlight=False)
    if failures:
        raise EdgebenchError(f"{len(failures)} of {len(refs)} devices failed", exit_code=exits.FAILED)


def _for_device(req: RunRequest, ref, runtime: str | None) -> RunRequest:
    """The request with the runtime named, else the device's default (said when it is not ort-genai)."""
    if runtime is not None:
        return req
    from suite.session.run import default_runtime  # lazy: the session loads pandas, scipy and onnx (~1.8 s)

    name, why = default_runtime(ref)
    if why:
        err.print(f"[yellow]note:[/] {_plain(why)}", highlight=False)
    return dataclasses.replace(req, runtime=name)


def _run_one(req: RunRequest, ref=None) -> Path:
    """One burst run (`ref` None: this host), its model built first when it is a card, with progress."""
    # lazy: the session loads pandas, scipy and onnx (~1.8 s)
    from suite.catalog.cards import get_model_card
    from suite.session.local import Interrupted
    from suite.session.run import check_request, run

    model = req.model_id
    fmt = check_request(req, ref).formats[0]  # an unknown or misused runtime: fail before any work
    if req.model_file is None:
        card = get_model_card(model)
        _build_with_progress(card, fmt=fmt, quant=req.quant, seed=req.seed, root=req.models_dir)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as progress:
        task = progress.add_task(f"{model}: preparing", total=req.params.warmup + req.params.reps)

        def status(msg: str) -> None:
            progress.update(task, description=f"{model}: {msg}")
            _log_line(f"{model}: {msg}")

        def on_rep(i: int, total: int, rep) -> None:
            # warmups and measured repetitions are counted apart: `warmup 1/1`, then `rep 1/5` ... `rep 5/5`
            warm = min(req.params.warmup, total)
            if rep.warmup:
                line = f"{model}: warmup {i + 1}/{warm} done"
            else:
                line = f"{model}: rep {i + 1 - warm}/{total - warm} done"
            progress.update(task, completed=i + 1, description=line)
            _log_line(line)

        push_task = None

        def push_progress(done: int, total: int) -> None:
            nonlocal push_task
            if push_task is None:
                push_task = progress.add_task(f"{model}: pushing", total=total)
            progress.update(push_task, completed=done, total=total)

        try:
            return run(ref, req, status=status, on_rep=on_rep, push_progress=push_progress)
        except Interrupted as exc:
            raise EdgebenchError(
                f"interrupted: the partial run is recorded in {exc.path} (outcome interrupted)",
                exit_code=exits.INTERRUPTED) from None


def _seconds(text: str | None) -> float | None:
    """`90`, `90s`, `10m`, `1h` -> seconds (the plan files' rule)."""
    from suite.lab.plan import parse_duration  # lazy: the lab plan loads the session's gating, adbutils (~0.2 s)

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError:
        raise EdgebenchError(f"bad duration {text!r}", hint="e.g. 90s, 10m, 1h", exit_code=exits.USAGE) from None


def _scenario_options(entry, *, duration: str | None, windows: int | None, window_tokens: int,
                      min_window: str, models: str | None, beyond_ram: bool = False, floor_tps: float = 1.0,
                      rung_timeout: str = "15m", voice: dict | None = None) -> dict:
    """The scenario's own options (`entry.options`) from the run command's: only those it takes are read."""
    given = {**{k: (lambda v=v: v) for k, v in (voice or {}).items()},"duration_s": lambda: _seconds(duration), "windows": lambda: windows,
             "window_tokens": lambda: window_tokens, "min_window_s": lambda: _seconds(min_window),
             "models": lambda: [m.strip() for m in models.split(",")] if models else None,
             "beyond_ram": lambda: beyond_ram, "floor_tps": lambda: floor_tps,
             "rung_timeout_s": lambda: _seconds(rung_timeout)}
    return {name: given[name]() for name in entry.options if name in given}


def _run_scenario(entry, req: RunRequest, ref, *, gate, options: dict) -> None:
    """A scenario that needs a phone, or a gated one, of `req` on one phone; what it made, printed."""
    req = dataclasses.replace(req, device=ref.serial)

    def status(msg: str) -> None:
        err.print(f"[dim]{_plain(ref.serial)}:[/] {_plain(msg)}", highlight=False)

    result = entry.run(ref, req, gate=gate, status=status, options=options)
    if result.summary is not None:
        console.print(_plain(result.summary), highlight=False)
    else:
        for path in result.runs:
            _print_run_summary(path)


def _print_run_summary(path: Path) -> None:
    # lazy: the store and the report load pandas, pyarrow, matplotlib and jinja2 (~1.6 s)
    from suite.report.tables import device_label, fmt_range, fmt_value
    from suite.store import load_run

    rec = load_run(path)
    m, un = rec["metrics"], rec["unavailable"]
    t = Table(title=f"{rec['model']['id']} on {_plain(device_label(rec['device']))} "
              f"({rec['runtime']['name']} {rec['runtime']['version']}) -> {rec['outcome']}")
    t.add_column("metric", overflow="fold")  # whole names, wrapped: a cut one reads as another metric
    t.add_column("value", justify="right")
    t.add_column("95% CI / n", justify="right")
    for name, entry in m.items():
        # bytes in KiB/MiB/GiB, rates in GB/s, short times in ms: as the report shows them (stored in base units)
        ci = entry.get("ci95")
        ci_txt = f"[{fmt_range(ci[0], ci[1], entry['unit'])}]" if ci else ""
        n_txt = f" n={entry['n']}" if "n" in entry else ""
        if entry.get("small_n"):
            n_txt += " [yellow](few)[/]"
        flag = " [yellow]unstable[/]" if entry.get("unstable") else ""
        value = escape(fmt_value(entry["value"], entry["unit"]))
        if entry.get("statistic"):  # a value that is not the median (the bandwidth bound: the best sample)
            value += escape(f" ({entry['statistic']}; median {fmt_value(entry.get('median'), entry['unit'])})")
            ci_txt = f"median's {ci_txt}" if ci_txt else ""
        t.add_row(name, f"{value}{flag}", escape(ci_txt) + n_txt)
    console.print(t)
    if any((e.get("ci_method") or "").startswith("t on the log") for e in m.values()):
        console.print("[dim]95% CI of throughputs, times, bytes and energy: on the log scale (never below 0); "
                      "(few): fewer than 5 samples[/]", highlight=False)
    if rec["device"].get("simulated"):
        console.print("[yellow]simulated[/]: a loopback phone's sensors are a model, not a phone's", highlight=False)
    emulated = ((rec["runtime"].get("bundle") or {}).get("emulated"))
    if emulated:
        console.print(f"[yellow]emulated[/]: {_plain(emulated)}", highlight=False)
    by_reason: dict[str, list[str]] = {}
    for name, reason in un.items():
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        console.print(f"[dim]unavailable[/] {', '.join(names)}: [dim]{_plain(reason)}[/]", highlight=False)
    voice = rec.get("voice")
    if voice:  # the voice scenario's answer, with its reason (the thresholds: docs/scenarios.md)
        said = {"conversational": "[green]conversational[/]", "marginal": "[yellow]marginal[/]",
                "not": "[red]not conversational[/]"}.get(voice.get("verdict"), "not judged")
        asr = _plain(str((voice.get("asr_model") or {}).get("card")))
        console.print(f"voice ({asr} + {_plain(rec['model']['id'])}, {voice.get('turns_measured')} turns): {said}: "
                      f"{_plain(str(voice.get('verdict_reason')))}", highlight=False)
    for e in rec["errors"]:
        if e["type"] == "PowerMeterError":
            err.print(f"[yellow]warning:[/] power meter not used: {_plain(e['message'])}", highlight=False)
    console.print(f"run stored in [bold]{path}[/]")


# --- results and report ----------------------------------------------------------------


@app.command()
def doctor(
    serial: Annotated[str | None, typer.Argument(help="The phone's serial [default: every attached phone].")] = None,
    adb: AdbServers = None,
    build: Annotated[bool, typer.Option(help="Build edgebench's llama-bench for the phone if it is not yet (minutes, once), to start it there.")] = True,
    as_json: JsonOut = False,
) -> None:
    """Is a phone ready to measure? adb, ABI, CPU variant, the runtime starting on it, free space, battery, sensors; what to fix."""
    # lazy: the checks load the session, the sampler and adbutils (~2 s)
    from suite.device.select import attached, parse_servers, resolve_one
    from suite.session.doctor import FAIL, INFO, OK, WARN, diagnose

    servers = parse_servers(adb)
    refs = [resolve_one(serial, servers)] if serial else attached(servers)
    refs = [r for r in refs if r.kind != "local"]
    if not refs:
        raise EdgebenchError("no phone attached", hint="connect one with USB debugging on and accept the prompt on "
                             "its screen; `adb devices` must list it as `device`", exit_code=exits.NO_DEVICE)
    found = [diagnose(ref, build=build, say=lambda m: err.print(f"[dim]{_plain(m)}[/]", highlight=False))
             for ref in refs]
    if as_json:
        console.print_json(json.dumps([d.to_dict() for d in found]))
    else:
        style = {OK: "green", WARN: "yellow", FAIL: "red", INFO: "dim"}
        for d in found:
            t = Table(title=f"{_plain(d.serial)}: " + ("[green]ready[/]" if d.ready else "[red]not ready[/]"))
            for col in ("check", "", "detail"):
                t.add_column(col, overflow="fold")
            for c in d.checks:
                detail = _plain(c.detail) + (f"\n[bold]fix:[/] {_plain(c.fix)}" if c.fix else "")
                t.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", detail)
            console.print(t)
    if not all(d.ready for d in found):
        raise typer.Exit(exits.FAILED)


@app.command()
def results(
    paths: ResultFolders = None,
    as_json: JsonOut = False,
) -> None:
    """List stored runs."""
    from suite.store import load_results  # lazy: the store loads pandas and pyarrow (~0.4 s)

    res = load_results(paths or [Path("results")])
    runs = res.runs
    metrics = res.metrics.set_index(["run_id", "metric"])["value"] if len(res.metrics) else None
    rows = []
    for _, r in runs.iterrows():
        def val(name: str, run_id=r["run_id"]):
            try:
                return float(metrics.loc[(run_id, name)]) if metrics is not None else None
            except KeyError:
                return None
        rows.append({"run_id": r["run_id"], "started_at": r["started_at"], "device": r["device_model"],
                     "model": r["model_id"], "runtime": r["runtime"], "outcome": r["outcome"],
                     "prefill_tps": val("prefill_tps"), "decode_tps": val("decode_tps"), "path": r["path"]})
    if as_json:
        console.print_json(json.dumps(rows))
        return
    t = Table(title=f"{len(rows)} runs")
    for col in ("run_id", "started", "device", "model", "runtime", "outcome", "prefill tok/s", "decode tok/s"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["run_id"], str(r["started_at"]), str(r["device"]), str(r["model"]), str(r["runtime"]),
                  str(r["outcome"]), _num(r["prefill_tps"]), _num(r["decode_tps"]))
    console.print(t)
    for path, reason in res.skipped:
        err.print(f"[yellow]skipped[/] {path}: {reason}")


@app.command()
def report(
    paths: ResultFolders = None,
    out: OutDir = Path("reports"),
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1,
                                             help="Processes rendering pages (default: the CPUs this process may use); 1 renders serially.")] = None,
) -> None:
    """Render a self-contained HTML report from stored runs."""
    from suite.report import render_report  # lazy: the report loads pandas, matplotlib, jinja2 (~1.6 s)

    index = render_report(list(paths or [Path("results")]), out, title=title, jobs=jobs)
    console.print(f"report written to [bold]{index}[/]")


@app.command()
def quickstart(
    models: Annotated[list[str] | None, typer.Option("--model", "-m", help="Models to run [default: llama-68m, smollm2-135m].")] = None,
    reps: Annotated[int, typer.Option(help="Measured repetitions per model.", min=1)] = 5,
    results_dir: ResultsDir = Path("results"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")] = Path("reports"),
    models_dir: ModelsDir = None,
) -> None:
    """Build the smallest reference models, benchmark this machine, render reports/index.html."""
    # lazy: the session and the report load pandas, scipy, onnx, matplotlib (~2 s)
    from suite.models import default_models_dir
    from suite.report import render_report  # lazy: the report loads pandas, matplotlib, jinja2 (~1.6 s)
    from suite.session.local import RunRequest

    done = []
    for model_id in models or QUICKSTART_MODELS:
        req = RunRequest(model_id=model_id, params=BurstParams(reps=reps), results_dir=results_dir,
                         models_dir=models_dir or default_models_dir())  # the rest: ort-genai on local, defaults
        path = _run_one(req)
        _print_run_summary(path)
        done.append(path)
    index = render_report([results_dir], out, title="edgebench quickstart: this machine")
    console.print(f"\n{len(done)} runs stored under [bold]{results_dir}[/]; report: [bold]{index}[/]")


@app.command()
def compare(
    baseline: Annotated[str, typer.Argument(help="Baseline: result folders or run ids, comma-separated.")],
    candidate: Annotated[str, typer.Argument(help="Candidate: result folders or run ids, comma-separated.")],
    results_dir: ResultsDir = Path("results"),
) -> None:
    """Changes between two sets of runs, per device, model, runtime and metric, with significance."""
    from suite.report.compare import cli_compare  # lazy: the report loads pandas, scipy, matplotlib (~1.6 s)

    _exit(cli_compare(_split(baseline), _split(candidate), search=[results_dir], console=console))


@app.command()
def export(
    paths: ResultFolders = None,
    out: OutDir = Path("export"),
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or json.")] = "parquet",
) -> None:
    """Export the tidy tables (runs, metrics, unavailable, samples) for pandas, DuckDB, spreadsheets."""
    from suite.report.export import cli_export  # lazy: the report loads pandas, pyarrow, matplotlib (~1.6 s)

    _exit(cli_export(list(paths or [Path("results")]), out, fmt, console=console))


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _exit(code: int) -> None:
    """A command's status (0: carry on) as the CLI's exit code, through the table (exits.py)."""
    if code:
        raise typer.Exit(exits.code(code))


def _add_import_command(name: str) -> None:
    """`edgebench import NAME FILE...` for a registered importer: its `cli_import(files, results_dir, device=)`
    writes the runs and returns the exit status."""
    formats = IMPORTERS.about(name)

    # `files` takes its help as a default: under `from __future__ import annotations` an Annotated
    # alias is a string, evaluated where this function's names (`name`, `formats`) are not seen
    def import_cmd(
        files: list[Path] = typer.Argument(help=f"{name} output files ({formats})."),
        results_dir: ResultsDir = Path("results"),
        device: Annotated[str | None, typer.Option(help="Device name when the capture has none (markdown tables).")] = None,
        soc: Annotated[str | None, typer.Option(help="The device's SoC (a part number, codename or marketing name the catalog knows), so the runs enter its tier; a name several SoCs share is refused.")] = None,
    ) -> None:
        _exit(IMPORTERS.get(name)(files, results_dir, device=device, soc=soc))

    import_app.command(name, help=f"Turn {name} output into runs (origin: imported) beside edgebench's own.")(import_cmd)


for _importer in IMPORTERS:
    _add_import_command(_importer)


def _add_tool_import_command(name: str | None) -> None:
    """`edgebench import TOOL FILE...` for a tool of suite.runtimes.outputs, and (name None) the hidden
    `files` command behind `edgebench import FILE...`."""
    what = f"{name} output files ({TOOL_PARSERS.about(name)})" if name else "Output files of any tool import knows"

    def import_cmd(
        files: list[Path] = typer.Argument(help=f"{what}."),
        results_dir: ResultsDir = Path("results"),
        device: Annotated[str | None, typer.Option(help="Device name when the output has none.")] = None,
        soc: Annotated[str | None, typer.Option(help="The device's SoC (a part number, codename or marketing name the catalog knows), so the runs enter its tier; a name several SoCs share is refused.")] = None,
    ) -> None:
        from suite.importers.generic import cli_import  # lazy: the store loads pandas and pyarrow (~0.4 s)

        _exit(cli_import(files, results_dir, tool=name, device=device, soc=soc))

    if name is None:
        import_app.command("files", hidden=True, help="Import files, the tool recognised from each one's text.")(import_cmd)
    else:
        import_app.command(name, help=f"Turn {name} output into runs (origin: imported).")(import_cmd)


for _tool in TOOL_PARSERS.names():
    _add_tool_import_command(_tool)
_add_tool_import_command(None)


@import_app.command("meter")
def import_meter_cmd(
    log: Annotated[Path, typer.Argument(help="The meter's CSV log: a time column (epoch s or ISO 8601) and watts, or volts and amps.")],
    run_id: Annotated[str, typer.Option("--run", help="The burst run to attach it to (its id or folder).")],
    results_dir: ResultsDir = Path("results"),
    meter_offset: Annotated[float, typer.Option(help="The meter's clock minus the clock of the host that ran the run (s).")] = 0.0,
) -> None:
    """Attach an external power meter's log to a stored run: a new run with the meter's power supersedes it."""
    from suite.session.local import attach_meter  # lazy: the session loads pandas, scipy, onnx (~1.8 s)

    run_dir = Path(run_id) if Path(run_id).is_dir() else results_dir / run_id
    if not (run_dir / "run.json").is_file():
        raise EdgebenchError(f"no run {run_id!r} in {results_dir}", hint="see `edgebench results`", exit_code=exits.USAGE)
    if not log.is_file():
        raise EdgebenchError(f"no meter log at {log}", exit_code=exits.USAGE)
    path = attach_meter(run_dir, log, offset_s=meter_offset, results_dir=run_dir.parent)
    console.print(f"{_plain(path.name)} supersedes {_plain(run_dir.name)} (power from {_plain(log)})", highlight=False)
    _print_run_summary(path)


def _loopback_profiles() -> list[str]:
    from suite.loopback.profile import list_profiles  # lazy: the loopback phone is for its own commands only

    return list_profiles()


@loopback_app.command("start")
def loopback_start(
    profile: Annotated[str, typer.Option(help="Device profile (see `edgebench loopback profiles`).")] = "galaxy-a15",
    adb_port: Annotated[int, typer.Option(help="adb server port; started if none listens there.")] = 5037,
    time_scale: Annotated[float, typer.Option(help="Phone seconds per real second (thermal model).", min=0.01)] = 1.0,
    ram_bytes: Annotated[int | None, typer.Option(help="Memory limit [default: the profile's RAM].")] = None,
    charging: Annotated[bool | None, typer.Option("--charging/--no-charging", help="Plugged in or on battery.")] = None,
    abi: Annotated[str | None, typer.Option(help="arm64-v8a: a phone as most are, arm64 without Python, its binaries run under qemu-aarch64 (binfmt_misc) [default: the host's, x86_64, with Python].")] = None,
) -> None:
    """Start a loopback phone attached to an adb server and print its serial."""
    # lazy: the loopback phone (ctypes, argparse) is for its own commands only
    from suite.loopback import cli as lb
    from suite.loopback.phone import LoopbackUnavailable

    if profile not in _loopback_profiles():
        raise UnknownNameError("loopback profile", profile, _loopback_profiles())
    try:
        rec = lb.start(profile, adb_port=adb_port, time_scale=time_scale, ram_bytes=ram_bytes, charging=charging,
                       abi=abi)
    except LoopbackUnavailable as exc:
        raise EdgebenchError(f"loopback phone unavailable: {exc}", exit_code=exits.USAGE) from None
    print(rec["serial"])


@loopback_app.command("stop")
def loopback_stop(serial: Annotated[str | None, typer.Argument(help="Serial to stop [default: all].")] = None) -> None:
    """Stop a loopback phone (all of them by default) and the adb server started for them."""
    from suite.loopback import cli as lb

    for sn in lb.stop(serial):
        console.print(f"stopped {sn}")


@loopback_app.command("list")
def loopback_list() -> None:
    """List running loopback phones."""
    from suite.loopback import cli as lb

    for rec in lb.records():
        console.print(f"{rec['serial']}\t{rec['profile']}\tadb:{rec['adb_port']}\tpid:{rec['daemon_pid']}", highlight=False)


@loopback_app.command("profiles")
def loopback_profiles() -> None:
    """List the device profiles a loopback phone can take."""
    for name in _loopback_profiles():
        console.print(name, highlight=False)


# --- helpers ---------------------------------------------------------------------------


def _log_line(msg: str) -> None:
    """Progress as plain lines when stderr is not a terminal (logs, CI, lab runners)."""
    if not err.is_terminal:
        print(f"edgebench: {msg}", file=sys.stderr, flush=True)


def _gib(n) -> str:
    return f"{n / 2**30:.2f} GiB" if isinstance(n, (int, float)) and n else "?"


def _params(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    return f"{n / 1e6:.0f}M" if n >= 1e7 else f"{n / 1e6:.2f}M"


def _num(x) -> str:
    if x is None:
        return ""
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1e6:
        return f"{x:.4g}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    return f"{x:.4g}"


def main() -> None:
    """Entry point: map errors to messages and exit codes (the table in exits.py); tracebacks only with --debug."""
    try:
        app()
    except EdgebenchError as exc:
        if _state["debug"]:
            raise
        err.print(f"[red]error:[/] {_plain(exc.message)}", highlight=False)
        if exc.hint:
            err.print(f"  [dim]hint:[/] {_plain(exc.hint)}", highlight=False)
        code = exits.error_code(exc)
        if code == exits.INTERRUPTED:
            _exit_now(code)
        sys.exit(code)


def _exit_now(code: int) -> None:
    """Ctrl-C: the run is stored (atomically) and said; end now. A normal exit would tear down the
    loaded runtime's native objects in the interpreter's last garbage collection, which took seconds
    (onnxruntime-genai; tens of seconds on a loaded host) while the user waited after pressing Ctrl-C."""
    for handler in logging.getLogger().handlers:  # flushed, not closed: a library's handler may own a stream
        handler.flush()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
