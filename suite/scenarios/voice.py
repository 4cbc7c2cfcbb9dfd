"""The `voice` scenario (issue 18): can this phone hold a conversation offline? One run of M consecutive
turns, each measured as a user feels it: speech recognition of an utterance with whisper.cpp (log-mel,
encoder, a fixed number of greedy decoder steps), then the LLM's prefill of the reply prompt and its reply
of N tokens on llama.cpp, back to back in one session with the sampler running
(suite.runtimes.voice_turn drives them; suite.analysis.voice judges them).

The speech model is a reference card (`whisper-tiny` ... `whisper-large-v3-turbo`, models/speech/) built in
whisper.cpp's format with seeded random weights: its decoder's output is meaningless, so the number of
decoder steps is the scenario's (the utterance's words at the speaking rate), never the model's. The
utterance is edgebench's deterministic synthetic waveform (5 s or 30 s at 16 kHz; its sha256 recorded).

The run's record is the LLM's (model, prefill/decode, energy per phase, paging) with a `voice` block: the
speech model and utterance, each turn's latency and energy, the verdict with its thresholds, the memory
of both models and the thermal state after the M turns. A pair that does not fit ends as the fit
scenario's rungs do (`oom`, or completed and marked offloaded by the paging block).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from suite.analysis import voice as judge
from suite.analysis.metrics import energy_j, samples_frame
from suite.core.errors import EdgebenchError
from suite.core.record import Part
from suite.core.schema import CH_POWER_W, CH_RSS_BYTES
from suite.core.stats import metric
from suite.runtimes.voice_turn import Turn, VoiceTurn
from suite.scenarios.base import ScenarioResult
from suite.session.device import EMULATED_PROP, ScenarioHooks
from suite.session.gating import Gate, apply_gate
from suite.session.local import Finishing, RunRequest
from suite.session.run import run_device

Status = Callable[[str], None]

DEFAULT_TURNS = 3
DEFAULT_AUDIO_S = 5
AUDIO_LENGTHS_S = (5, 30)
DEFAULT_ASR_QUANT = "f16"
#: the runtime of the reply: llama.cpp's llama-bench, edgebench's own build, beside the whisper.cpp driver
LLM_RUNTIME = "llama.cpp"


def _finish(holder: dict, voice: dict, emulated: str | None) -> Callable[[Finishing], tuple[Part, list]]:
    def finish(run: Finishing) -> tuple[Part, list]:
        plan = holder["runtime"].plan
        turns: list[Turn] = [t for t in (plan.turns if plan else []) if not t.warmup]
        t0 = run.t0
        metrics, unavailable = {}, {}
        per_turn = []
        energies = []
        power_missing = run.sensors.get("unavailable", {}).get(CH_POWER_W)
        frame = samples_frame(run.rows)
        for k, t in enumerate(turns, 1):
            e = None if power_missing else energy_j(frame, [(a - t0, b - t0) for a, b in t.spans])
            energies.append(e)
            per_turn.append({"turn": k, "latency_s": _r(t.latency_s), "asr_s": _r(t.asr["total"]),
                             "reply_prefill_s": _r(t.prefill_s), "reply_decode_tps": _r(t.decode_tps),
                             "energy_j": _r(e),
                             "t_s": [_r(t.asr_span[0] - t0), _r(t.decode_span[1] - t0)]})
        if turns and all(e is not None for e in energies):
            metrics["energy_j/turn"] = metric("energy_j/turn", energies)
        else:
            unavailable["energy_j/turn"] = power_missing or ("no measured turn" if not turns else
                                                             "the power samples do not cover a turn's parts")
        reply = [t.decode_tps for t in turns if t.decode_tps]
        if reply:
            metrics["reply_speech_ratio"] = metric("reply_speech_ratio", [v / judge.SPEAKING_RATE_TPS for v in reply])
        memory = _memory(turns, run.rows, t0)
        if memory.get("bytes"):
            metrics["voice_resident_bytes"] = metric("voice_resident_bytes", float(memory["bytes"])) | {
                "method": memory["method"]}
        else:
            unavailable["voice_resident_bytes"] = memory["unavailable"]
        turned = plan.partial.metrics if plan and plan.partial else {}  # the turns' medians (turn_metrics)
        if emulated:
            said, why = None, f"not judged: {emulated}"
        else:
            said, why = judge.verdict(*((turned.get(n) or {}).get("value")
                                        for n in ("asr_rtf", "turn_latency_s", "decode_tps")))
        end = (turns[-1].decode_span[1] - t0) if turns else None
        block = {**voice, "turns_measured": len(turns), "per_turn": per_turn, "verdict": said,
                 "verdict_reason": why, "thresholds": judge.thresholds(), "memory": memory,
                 "turn_latency_method": "the ASR's processing (log-mel + encoder + decoder steps) + the reply "
                                        "prompt's prefill (its logits give the first reply token), each timed by "
                                        "its engine with its model loaded; loads are reported apart",
                 "energy_method": "power integrated over each turn's ASR, reply prefill and reply decode (not the "
                                  "process starts and model loads between them)",
                 "thermal_after_turns": judge.thermal_after(run.rows, end) if end is not None else None,
                 "speech_output": "out of scope (no TTS): the reply's text speed against the speaking rate "
                                  "stands in for it"}
        return Part(metrics=metrics, unavailable=unavailable, blocks={"voice": block}), []

    return finish


def _memory(turns: list[Turn], rows, t0: float) -> dict:
    """Both models resident: the driver's own VmHWM plus llama-bench's sampled peak (over its invocations, load
    included: a reply too short for a reading inside its timed phases still has one). llama-bench is a one-shot
    benchmark that cannot stay resident beside the driver, so the figure is the sum of the two peaks,
    labelled as computed."""
    asr = max((float(t.asr_result.get("vm_hwm_kb") or 0) * 1024 for t in turns), default=0.0) or None
    spans = [(a - t0, b - t0) for t in turns for a, b in t.llm_windows]
    llm = judge.peak_in(rows, CH_RSS_BYTES, spans)
    out = {"asr_peak_bytes": asr, "llm_peak_bytes": llm,
           "method": "computed: the sum of the two processes' peaks (the whisper driver's own VmHWM, llama-bench's "
                     "sampled RSS); llama-bench cannot stay resident beside the driver"}
    if asr and llm:
        out["bytes"] = asr + llm
    else:
        out["unavailable"] = ("no peak of the speech driver (its VmHWM)" if not asr else
                              "no RSS reading of llama-bench during the reply")
    return out


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def run_voice(ref, req: RunRequest, *, asr_model: str, turns: int = DEFAULT_TURNS, audio_s: int = DEFAULT_AUDIO_S,
              asr_quant: str = DEFAULT_ASR_QUANT, audio_ctx: int = 0, status: Status | None = None,
              on_rep=None, gate: Gate | None = None, push_progress=None) -> Path:
    """`turns` measured voice turns (after `req.params.warmup` warmup turns) of `req.model_id` with `asr_model`
    on the device; one run record (scenario `voice`). Returns its folder."""
    from suite.catalog.speech import get_speech_card  # lazy: the builders load numpy
    from suite.models.artifact import build_speech_model
    from suite.models.audio import utterance

    say = status or (lambda _m: None)
    if turns < 1:
        raise EdgebenchError("--turns must be at least 1", exit_code=2)
    if audio_s not in AUDIO_LENGTHS_S:
        raise EdgebenchError(f"--audio-s {audio_s}: the utterance is {' or '.join(map(str, AUDIO_LENGTHS_S))} s",
                             exit_code=2)
    if audio_ctx < 0:
        raise EdgebenchError("--audio-ctx cannot be negative (0: the model's full 30 s window)", exit_code=2)
    if req.runtime != LLM_RUNTIME:
        raise EdgebenchError(f"the voice scenario replies with llama.cpp (beside the whisper.cpp driver), not "
                             f"{req.runtime}", hint="--runtime llama.cpp, or leave --runtime out", exit_code=2)
    if req.runtime_bundle is not None or req.model_file is not None:
        raise EdgebenchError("the voice scenario runs edgebench's own builds on reference cards: --runtime-bundle "
                             "and --model-file are not taken", exit_code=2)
    card = get_speech_card(asr_model)
    say(f"speech model {card.id} ({asr_quant}): checking the build")
    built = build_speech_model(card, quant=asr_quant, seed=req.seed, out_root=req.models_dir)
    utt = utterance(audio_s)
    tokens = judge.asr_decode_tokens(audio_s)
    params = dataclasses.replace(req.params, reps=turns)
    req = dataclasses.replace(req, params=params, inputs={**req.inputs, "asr_model": built.model_file,
                                                         "audio": utt.path})
    conditions = apply_gate(ref, gate, status)
    emulated = None
    if ref is not None and getattr(ref, "serial", "local") != "local":
        prop = ref.live().props.get(EMULATED_PROP)
        if prop:
            emulated = f"the binaries ran under {prop} emulation: timings are the emulator's, never a speed claim"
    holder: dict[str, VoiceTurn] = {}

    def wrap(llm):
        holder["runtime"] = VoiceTurn(llm, asr_tokens=tokens, audio_ctx=audio_ctx)
        return holder["runtime"]

    voice = {"asr_model": {"card": card.id, "quant": asr_quant, "seed": req.seed,
                           "sha256": (built.manifest.get("files", {}).get(built.model_file.name) or {}).get("sha256"),
                           "bytes": built.total_bytes, "params": card.params(), "synthetic_weights": True},
             "audio": utt.to_dict(), "asr_decode_tokens": tokens, "audio_ctx_requested": audio_ctx or "full",
             "turns": turns, "reply_prompt_tokens": params.prompt_tokens, "reply_tokens": params.gen_tokens}
    scen = {"name": "voice", "params": {**params.to_dict(), "asr_model": card.id, "asr_quant": asr_quant,
                                        "audio_s": audio_s, "audio_ctx": audio_ctx, "turns": turns,
                                        "asr_decode_tokens": tokens}}
    hooks = ScenarioHooks(scenario=scen, conditions=conditions, finish=_finish(holder, voice, emulated),
                          runtime=wrap)
    return run_device(ref, req, status=status, on_rep=on_rep, push_progress=push_progress, hooks=hooks)


class VoiceScenario:
    """The registry's entry (suite.scenarios): `run_voice` with its options."""

    name = "voice"
    needs_phone = True
    options = ("asr_model", "turns", "audio_s", "asr_quant", "audio_ctx")
    single_run = True

    def run(self, ref, req: RunRequest, *, gate: Gate | None = None, status: Status | None = None, on_rep=None,
            push_progress=None, options: Mapping[str, Any] | None = None) -> ScenarioResult:
        opts = options or {}
        if not opts.get("asr_model"):
            raise EdgebenchError("the voice scenario needs --asr-model (a speech card: whisper-tiny ... "
                                 "whisper-large-v3-turbo; `edgebench models list`)", exit_code=2)
        path = run_voice(ref, req, asr_model=opts["asr_model"], turns=opts.get("turns") or DEFAULT_TURNS,
                         audio_s=opts.get("audio_s") or DEFAULT_AUDIO_S,
                         asr_quant=opts.get("asr_quant") or DEFAULT_ASR_QUANT, audio_ctx=opts.get("audio_ctx") or 0,
                         status=status, on_rep=on_rep, gate=gate, push_progress=push_progress)
        return ScenarioResult(runs=[path])
