"""A voice turn on a device's shell (the `voice` scenario): edgebench's whisper.cpp driver on an utterance,
then the reply on llama.cpp's llama-bench, back to back, turn after turn, in one session with the sampler
running.

`VoiceTurn` wraps the llama.cpp runtime (suite.runtimes.llama_bench): the session drives it like any native
runtime (one bundle, one pid file, the same probes and SIGILL fallback), and it adds the speech side:

- the bundle: llama-bench's, plus `asr/bin/edgebench-whisper` (suite.runtimes.build.whisper_cpp, built for
  the same ABI and CPU variant);
- the run's inputs `asr_model` (a speech card built in whisper.cpp's format) and `audio` (the utterance),
  pushed like any input (cached by content);
- one turn = one driver invocation (load, then log-mel, encode and exactly N greedy decoder steps, printed
  as one JSON line) + llama-bench's prefill of the reply prompt (`-p P -n 0 -r 1`) + its decode of the
  reply (`-p 0 -n N -r 1`), each between device-clock markers, each writing its pid for the sampler.

Placement: the driver stamps its phases on the device's realtime clock (the markers' clock); the stamps
are used when they fall inside the invocation's markers, else the ASR is packed at the end of the
invocation (its timed parts). The rest of each invocation (process start, loads, llama-bench's warmup) is
the `warmup` phase: never in the turn.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from suite.core.errors import EdgebenchError, RuntimeFailure
from suite.core.measure import BurstParams, Repetition
from suite.core.stats import metric
from suite.device.elf import check_bundle_abi
from suite.runtimes.base import KILLED_EXIT, SIGILL_EXIT, DeviceCall, NativeRun, OwnBundle
from suite.runtimes.llama_bench import PhaseOutput, parse_phase_output, phase_spans, runtime_record
from suite.runtimes.native import marked_command, read_markers
from suite.transport import quote

#: the driver inside the bundle folder pushed to the device (beside llama-bench's bin/ and lib/)
ASR_DIR = "asr"
ASR_BINARY = "bin/edgebench-whisper"
#: the inputs a voice run pushes beside the LLM (RunRequest.inputs / DeviceCall.inputs)
INPUTS = ("asr_model", "audio")
#: the driver's JSON line
DRIVER_ENGINE = "whisper.cpp"


# --- the driver ------------------------------------------------------------------------------------


def asr_argv(binary: str, model: str, audio: str, *, threads: int, tokens: int, audio_ctx: int = 0) -> list[str]:
    """edgebench-whisper's command line: the model, the WAV, threads, exactly `tokens` decoder steps and the
    audio context (0: the model's full 30 s window)."""
    if tokens < 1 or threads < 1 or audio_ctx < 0:
        raise ValueError("tokens and threads must be >= 1, audio_ctx >= 0")
    return [binary, "-m", model, "-f", audio, "-t", str(threads), "-n", str(tokens), "-ac", str(audio_ctx)]


@dataclass
class AsrOutput:
    """One driver invocation: its markers, exit status, the JSON it printed (None: none), its log."""

    t_start: float | None
    t_end: float | None
    exit_code: int | None
    result: dict | None
    text: str = ""
    stderr: str = ""
    problems: list[str] = field(default_factory=list)

    def timings(self) -> dict[str, float]:
        """load, mel, encode, decode and total in seconds (the driver prints ms); a RuntimeFailure when the
        invocation gave no result."""
        if self.result is None:
            why = f"exit status {self.exit_code}" if self.exit_code else "no result line"
            if self.exit_code == SIGILL_EXIT:
                why += ": killed by SIGILL, an instruction this CPU does not have"
            err = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
            tail = "; ".join(err[-3:] or self.problems[-3:])
            raise RuntimeFailure(f"edgebench-whisper gave no result ({why})" + (f": {tail}" if tail else ""))
        out = {}
        for key in ("load", "mel", "encode", "decode", "total"):
            v = self.result.get(f"{key}_ms")
            if isinstance(v, (int, float)) and v >= 0:
                out[key] = float(v) / 1e3
        if "total" not in out and all(k in out for k in ("mel", "encode", "decode")):
            out["total"] = out["mel"] + out["encode"] + out["decode"]
        if "total" not in out:
            raise RuntimeFailure(f"edgebench-whisper's result has no timings: {json.dumps(self.result)[:200]}")
        return out

    def span(self) -> tuple[float, float] | None:
        """The ASR's processing (log-mel start to the last decoder step) on the device clock: the driver's own
        stamps when they lie inside the markers, else its timed total packed at the invocation's end."""
        if self.t_start is None or self.t_end is None or self.result is None:
            return None
        stamps = self.result.get("t") or {}
        try:
            a, b = float(stamps["mel"][0]), float(stamps["decode"][1])
        except (KeyError, TypeError, ValueError, IndexError):
            a = b = None
        if a is not None and self.t_start <= a <= b <= self.t_end:
            return a, b
        total = self.timings()["total"]
        return max(self.t_start, self.t_end - total), self.t_end


def parse_asr_output(stdout: str, nonce: str, stderr: str = "") -> AsrOutput:
    """The markers and the driver's one JSON line (the last one that parses and names whisper.cpp); any other
    line is kept as a problem, never a reason to lose the result."""
    marked = read_markers(stdout, nonce)
    result, problems = None, []
    for line in marked.text.splitlines():
        s = line.strip()
        if not s:
            continue
        if s.startswith("{"):
            try:
                obj = json.loads(s)
            except ValueError:
                problems.append(s[:200])
                continue
            if isinstance(obj, dict) and obj.get("engine") == DRIVER_ENGINE:
                result = obj
                continue
        problems.append(s[:200])
    return AsrOutput(marked.t_start, marked.t_end, marked.exit_code, result, marked.text, stderr or "", problems)


# --- the turn ---------------------------------------------------------------------------------------


@dataclass
class Turn:
    """One turn as measured: the ASR's timings and span, the reply's prefill and decode (llama-bench rows and
    spans, device clock), and the driver's own memory reading."""

    index: int
    warmup: bool
    asr: dict[str, float]
    asr_span: tuple[float, float]
    asr_result: dict
    prefill_span: tuple[float, float] | None = None
    decode_span: tuple[float, float] | None = None
    prefill_tps: float | None = None
    decode_tps: float | None = None
    prefill_s: float | None = None
    #: the reply's llama-bench invocations, marker to marker (load included): where its memory is read
    llm_windows: list[tuple[float, float]] = field(default_factory=list)

    @property
    def latency_s(self) -> float | None:
        """End of speech to the first reply token: the ASR's processing + the reply prompt's prefill."""
        return None if self.prefill_s is None else self.asr["total"] + self.prefill_s

    @property
    def spans(self) -> list[tuple[float, float]]:
        return [s for s in (self.asr_span, self.prefill_span, self.decode_span) if s is not None]


@dataclass
class VoicePlan:
    """The reply's llama-bench plan, the driver's invocation, and the turns so far (`partial`)."""

    runtime: dict
    llm: object
    asr_command: str
    asr_nonce: str
    asr_argv: tuple[str, ...]
    turns: list[Turn] = field(default_factory=list)
    partial: NativeRun | None = None


class VoiceTurn:
    """The llama.cpp runtime with a speech turn in front of each reply (see the module's text)."""

    kind = "native"
    inputs = INPUTS
    windows = False

    def __init__(self, llm, *, asr_tokens: int, audio_ctx: int = 0, asr_bundle: Callable | None = None) -> None:
        self.llm = llm
        self.name = llm.name
        self.formats = llm.formats
        self.compute_probed = llm.compute_probed
        self.backends = ("cpu",)
        self.load_options = getattr(llm, "load_options", False)
        self.bundle_hint, self.bundle_layout = llm.bundle_hint, llm.bundle_layout
        self.asr_tokens, self.audio_ctx = asr_tokens, audio_ctx
        #: (abi, variant, say) -> the whisper.cpp build's folder and its record (suite.runtimes.build.whisper_cpp)
        self._asr_bundle = asr_bundle or _own_whisper
        self.asr: tuple[Path, dict] | None = None
        self.plan: VoicePlan | None = None

    # the bundle: llama-bench's, and the whisper driver of the same ABI and variant under asr/
    def own_bundle(self, live, say: Callable[[str], None], variant: str | None = None) -> OwnBundle:
        own = self.llm.own_bundle(live, say, variant=variant)
        path, record = self._asr_bundle(own.abi, own.record.get("variant"), say)
        self.asr = (Path(path), record)
        return dataclasses.replace(own, record={**own.record, "asr": record})

    def own_version(self, live) -> str:
        return self.llm.own_version(live) + " + whisper.cpp"

    def bundle_files(self, bundle: Path) -> dict[str, Path]:
        if self.asr is None:
            raise EdgebenchError("the voice scenario runs edgebench's own builds of llama-bench and whisper.cpp; "
                                 "--runtime-bundle is not taken", exit_code=2)
        return {**self.llm.bundle_files(bundle), f"{ASR_DIR}/{ASR_BINARY}": self.asr[0] / ASR_BINARY}

    def check_bundle(self, bundle: Path, device_abi: str) -> dict[str, str]:
        checked = self.llm.check_bundle(bundle, device_abi)
        if self.asr is not None:
            checked |= {f"{ASR_DIR}/{k}": v for k, v in
                        check_bundle_abi(self.asr[0], device_abi, ASR_BINARY, build_hint="").items()}
        return checked

    def bundle_version(self, bundle: Path) -> str:
        return self.llm.bundle_version(bundle)

    def binary_sha256(self, bundle: Path) -> str | None:
        return self.llm.binary_sha256(bundle)

    def prepare(self, call: DeviceCall) -> VoicePlan:
        """llama-bench's plan for one repetition per invocation (one reply per turn), the driver made
        executable, and its invocation on the same cores and threads."""
        one = dataclasses.replace(call, params=dataclasses.replace(call.params, reps=1))
        llm = self.llm.prepare(one)
        binary = f"{call.bundle_remote}/{ASR_DIR}/{ASR_BINARY}"
        call.transport.shell(f"chmod 755 {quote(binary)}", timeout_s=15, check=True)
        aff = llm.runtime.get("affinity") or {}
        mask = aff.get("mask") if aff.get("applied") else None
        argv = asr_argv(binary, call.inputs["asr_model"], call.inputs["audio"], threads=llm.runtime["threads"],
                        tokens=self.asr_tokens, audio_ctx=self.audio_ctx)
        command, nonce = marked_command(argv, mask=mask, pid_file=call.pid_file)
        runtime = {**llm.runtime, "commands": {"asr": command, **llm.runtime.get("commands", {})}}
        self.plan = VoicePlan(runtime, llm, command, nonce, tuple(argv))
        return self.plan

    def execute(self, call: DeviceCall, plan: VoicePlan, on_rep=None) -> NativeRun:
        """warmup + reps turns; each one reported to `on_rep` as it ends. A part without a result ends the
        run (`failure`: oom for a process killed with exit 137), keeping the turns before it."""
        p = call.params
        total = p.warmup + p.reps
        run = plan.partial = NativeRun(runtime=dict(plan.runtime),
                                       spans={"asr": [], "prefill": [], "decode": [], "warmup": []})
        plan.turns = []
        for i in range(total):
            warm = i < p.warmup
            try:
                turn = self._turn(call, plan, run, i, warm)
            except _PartFailed as exc:
                run.failure, run.output = exc.failure, exc.output
                run.illegal_instruction = exc.exit_code == SIGILL_EXIT
                break
            plan.turns.append(turn)
            rep = Repetition(warm, turn.asr_span[0], turn.prefill_span[1], turn.prefill_span[1],
                             [turn.decode_span[1]] if turn.decode_span else [])
            run.reps.append(rep)
            if not warm:
                run.n_reps += 1
            run.metrics = turn_metrics([t for t in plan.turns if not t.warmup])
            if on_rep is not None:
                on_rep(i, total, rep)
        asr = {k: plan.turns[-1].asr_result.get(k) for k in ("audio_s", "audio_ctx", "audio_ctx_full", "window_s",
                                                            "decode_tokens", "prompt_tokens", "n_threads",
                                                            "system_info", "model_type", "driver_version", "flash_attn",
                                                            "whisper_version")
               if plan.turns and k in plan.turns[-1].asr_result}
        run.runtime["asr"] = {**run.runtime.get("asr", {}), **asr, "command": list(plan.asr_argv)}
        return run

    def _turn(self, call: DeviceCall, plan: VoicePlan, run: NativeRun, i: int, warm: bool) -> Turn:
        r = call.transport.shell(plan.asr_command, timeout_s=call.timeout_s)
        asr = parse_asr_output(r.stdout, plan.asr_nonce, r.stderr)
        try:
            timings, span = asr.timings(), asr.span()
        except RuntimeFailure as exc:
            raise _PartFailed(run, "asr", exc.message, asr.exit_code, asr.text, asr.stderr) from None
        (run.spans["warmup"] if warm else run.spans["asr"]).append(span)
        if span[0] > asr.t_start:
            run.spans["warmup"].append((asr.t_start, span[0]))
        turn = Turn(i, warm, timings, span, asr.result)
        rows = {}
        for phase, inv in plan.llm.invocations.items():
            r = call.transport.shell(inv.command, timeout_s=call.timeout_s)
            out: PhaseOutput = parse_phase_output(phase, r.stdout, inv.nonce, r.stderr)
            try:
                row = out.row(call.params.depth)
            except RuntimeFailure as exc:
                raise _PartFailed(run, f"llama-bench {phase}", exc.message, out.exit_code, out.text,
                                  out.stderr) from None
            measured, before = phase_spans(out, row)
            if out.t_start is not None and out.t_end is not None:
                turn.llm_windows.append((out.t_start, out.t_end))
            run.spans["warmup"] += before + (measured if warm else [])
            if not warm:
                run.spans[phase] += measured
            rows[phase] = row
            if measured:
                setattr(turn, f"{phase}_span", measured[-1])
        pp, tg = rows["prefill"], rows["decode"]
        run.runtime.update({k: v for k, v in runtime_record({}, run.runtime["threads"], None, [pp, tg]).items()
                            if k in ("version", "backend", "backends")})
        turn.prefill_tps, turn.decode_tps = float(pp.avg_ts), float(tg.avg_ts)
        durs = [ns / 1e9 for ns in (pp.samples_ns or ())] or ([pp.avg_ns / 1e9] if pp.avg_ns else [])
        turn.prefill_s = durs[-1] if durs else (call.params.prompt_tokens / turn.prefill_tps
                                                if turn.prefill_tps else None)
        if turn.prefill_span is None or turn.decode_span is None:
            raise _PartFailed(run, "llama-bench", "an invocation printed no device-clock markers", None, "", "")
        return turn

    def analysis_params(self, params: BurstParams) -> BurstParams:
        return self.llm.analysis_params(params)


class _PartFailed(Exception):
    def __init__(self, run: NativeRun, part: str, message: str, exit_code: int | None, text: str,
                 stderr: str) -> None:
        super().__init__(message)
        outcome = "crashed" if run.n_reps else "load_failed"
        if exit_code == KILLED_EXIT:
            outcome, message = "oom", (f"{part} was killed (exit 137): the models do not fit in the device's "
                                       f"memory as loaded ({message})")
        self.failure = (outcome, f"{part}: {message}" if outcome != "oom" else message)
        self.exit_code = exit_code
        self.output = (text + "\n" + stderr).splitlines()[-20:]


def turn_metrics(turns: list[Turn]) -> dict[str, dict]:
    """The measured turns' figures, each over the turns (median, CI, n): the ASR's parts, its real-time
    factor, the reply's prefill and decode rates, and the turn latency."""
    if not turns:
        return {}
    out = {}
    for key in ("load", "mel", "encode", "decode", "total"):
        vals = [t.asr[key] for t in turns if key in t.asr]
        if vals:
            out[f"asr_{key}_s"] = metric(f"asr_{key}_s", vals)
    audio = [float(t.asr_result.get("audio_s") or 0) for t in turns]
    if all(a > 0 for a in audio):
        out["asr_rtf"] = metric("asr_rtf", [t.asr["total"] / a for t, a in zip(turns, audio, strict=True)])
    lat = [t.latency_s for t in turns if t.latency_s is not None]
    if lat:
        out["turn_latency_s"] = metric("turn_latency_s", lat)
    for name in ("prefill_tps", "decode_tps"):  # llama-bench's rate of each turn's one repetition
        out[name] = metric(name, [getattr(t, name) for t in turns])
    return out


def _own_whisper(abi: str, variant: str, say: Callable[[str], None]) -> tuple[Path, dict]:
    """edgebench's whisper.cpp build for (abi, variant), built once and cached."""
    from suite.runtimes.build import whisper_cpp  # lazy: a build is rare, start-up is not

    shown = [-1]

    def progress(done: int, total: int, _what: str) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth > shown[0]:
            shown[0] = tenth
            say(f"building whisper.cpp for {abi}/{variant}: {done}/{total}")

    built = whisper_cpp.ensure_built(abi, variant, progress=progress, say=say)
    return built.path, {"built_by": "edgebench", **built.record()}
