"""Runtime `litert-lm-python`: Google's LiteRT-LM engine in process on this host's CPU (XNNPACK), through its
Python API (the `litert-lm-api` wheel: ctypes over liblitert-lm.so). Loads `.litertlm` files: edgebench's
reference builds (suite/models/litertlm_graph.py) or a user's.

Per repetition, a fresh session on one engine: `run_prefill` with a seeded prompt of exactly
`prompt_tokens` tokens (the engine's start token included, no prompt template), then one streamed decode of
`gen_tokens` tokens (`max_output_tokens`, greedy sampling). The timestamps are edgebench's monotonic clock:

- `t_start` .. `t_prefill_end`: around `run_prefill` (the engine may keep the last prompt token for the
  first decode step, whose time then falls in ttft rather than in prefill);
- `t_first_token`: when the engine streams the first generated token;
- `token_times[k]`: when it streams token k+2, read in LiteRT-LM's own stream callback (the C callback,
  called on the engine's thread as each token is produced): real per-token latencies, not spread from an
  aggregate.

Validity: after every repetition the engine's own BenchmarkInfo must count `prompt_tokens` prefill tokens
and `gen_tokens` decode tokens with finite, positive rates, and exactly `gen_tokens` tokens must have
streamed. LiteRT-LM does not fail when a prompt fills its KV cache (it reports 0 prefill tokens/s) and stops
decoding silently at the end of the context or at a stop token: such a run fails with the reason, never a
result. A prompt plus generation longer than the model's context is refused before loading.

Caches: the engine's XNNPACK weight cache is off (`cache_dir=":nocache"`): nothing is written beside the
model, and every load is a cold load. LiteRT-LM logs to stderr; below ERROR it is silenced.
"""

from __future__ import annotations

import math
import os
import threading
import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path

import numpy as np

from suite.core.errors import RuntimeFailure
from suite.core.schema import Phase
from suite.runtimes.base import (
    PYTHON,
    BurstParams,
    BurstResult,
    PhaseCallback,
    RepCallback,
    Repetition,
    artefact_file,
    run_repetitions,
)

MODEL_FILE = "model.litertlm"
#: The distribution whose version a run records (the engine's library ships in it).
DISTRIBUTION = "litert-lm-api"
#: Printable ASCII without the space: one token each in edgebench's synthetic tokenizer.
_PROMPT_CHARS = [chr(c) for c in range(33, 127)]
#: Seconds a streamed decode may take beyond which the run is considered hung.
DECODE_TIMEOUT_S = 600.0


def _lm():
    try:
        import litert_lm  # lazy: optional (the `litert` extra), and it loads a 100 MB library
    except ImportError as exc:
        raise RuntimeFailure("litert-lm-api is not importable",
                             hint="pip install 'edgebench[litert]' (litert-lm-api, litert-lm-builder, ai-edge-litert)"
                             ) from exc
    litert_lm.set_min_log_severity(litert_lm.LogSeverity.ERROR)
    return litert_lm


def model_path(artefact: Path) -> Path:
    """The .litertlm file of an artefact folder (`<folder>/model.litertlm`), or `artefact` itself if a file."""
    return artefact_file(artefact, MODEL_FILE, "LiteRT-LM", "litertlm")


def model_context(path: Path) -> int:
    """The model's context (KV cache positions) as LiteRT-LM reads it from the file."""
    info = _lm().ModelInfo(str(path))
    try:
        return int(info.max_context_tokens)
    finally:
        info.close()


def check_fits(params: BurstParams, context: int) -> None:
    """Refuse a burst the model's context cannot hold (LiteRT-LM would not fail: it would report nonsense)."""
    need = params.prompt_tokens + params.gen_tokens
    if params.prompt_tokens >= context or need > context:
        raise RuntimeFailure(
            f"{params.prompt_tokens} prompt + {params.gen_tokens} generated tokens do not fit the model's context "
            f"of {context} tokens", hint="ask for fewer tokens (--prompt-tokens, --gen-tokens)")


def prompt_text(engine, n_tokens: int, seed: int) -> str:
    """A seeded prompt that the engine's tokenizer turns into exactly `n_tokens` tokens with its start token."""
    start = 1 if engine.bos_token_id is not None else 0
    rng = np.random.default_rng(seed)
    text = "".join(_PROMPT_CHARS[i] for i in rng.integers(0, len(_PROMPT_CHARS), size=n_tokens - start))
    got = len(engine.tokenize(text)) + start
    if got != n_tokens:
        raise RuntimeFailure(
            f"the model's tokenizer makes {got} tokens of the {n_tokens - start}-character prompt, not {n_tokens}",
            hint="litert-lm-python runs prompts of one token per character: edgebench's reference builds "
                 "(build_model(card, fmt='litertlm'))")
    return text


class _Stream:
    """LiteRT-LM's streamed decode, timed in its own C callback (one call per token, then a final one)."""

    def __init__(self, lm, session) -> None:
        self.lib, self.session = session._lib, session
        self.times: list[float] = []
        self.error: str | None = None
        self.done = threading.Event()
        lib = self.lib

        def on_chunk(_user, chunk) -> None:
            now = time.monotonic()
            err = lib.litert_lm_stream_chunk_get_error(chunk)
            if err:
                self.error = err.decode("utf-8", "replace")
                self.done.set()
                return
            if lib.litert_lm_stream_chunk_get_text(chunk) is not None:
                self.times.append(now)
            if lib.litert_lm_stream_chunk_is_final(chunk):
                self.done.set()

        # kept on the object: the library calls it from its own thread until the final chunk
        self.callback = lm._ffi.STREAM_CALLBACK_TYPE(on_chunk)

    def run(self) -> list[float]:
        if self.lib.litert_lm_session_run_decode_async(self.session._ptr, self.callback, None) != 0:
            raise RuntimeFailure("LiteRT-LM could not start the decode")
        if not self.done.wait(DECODE_TIMEOUT_S):
            self.session.cancel_process()
            raise RuntimeFailure(f"LiteRT-LM's decode streamed nothing final in {DECODE_TIMEOUT_S:.0f} s")
        if self.error and "Max number of tokens reached" not in self.error:
            raise RuntimeFailure(f"LiteRT-LM's decode failed: {self.error}")
        return self.times


def check_counts(info, params: BurstParams, streamed: int) -> None:
    """A repetition counts only when the engine did what was asked (its BenchmarkInfo is the truth)."""
    problems = []
    if info.last_prefill_token_count != params.prompt_tokens:
        problems.append(f"prefilled {info.last_prefill_token_count} tokens of {params.prompt_tokens}")
    if info.last_decode_token_count != params.gen_tokens or streamed != params.gen_tokens:
        problems.append(f"decoded {info.last_decode_token_count} tokens ({streamed} streamed) of {params.gen_tokens}"
                        " (a stop token, or the end of the context)")
    for name, rate in (("prefill", info.last_prefill_tokens_per_second), ("decode", info.last_decode_tokens_per_second)):
        if not (math.isfinite(rate) and rate > 0):
            problems.append(f"its {name} rate is {rate}")
    if problems:
        raise RuntimeFailure("LiteRT-LM's run is not a result: " + "; ".join(problems))


class LiteRtLmRuntime:
    name = "litert-lm-python"
    kind = PYTHON
    python_module = "litert_lm"
    #: XNNPACK's kernels, not onnxruntime's int4 MatMulNBits: no honest compute bound from that probe
    compute_probed = False
    formats = ("litertlm",)

    def version(self) -> str:
        try:
            return _dist_version(DISTRIBUTION)
        except PackageNotFoundError as exc:
            raise RuntimeFailure("litert-lm-api is not installed", hint="pip install 'edgebench[litert]'") from exc

    def run_burst(
        self,
        artefact: Path,
        params: BurstParams,
        *,
        on_phase: PhaseCallback | None = None,
        on_rep: RepCallback | None = None,
    ) -> BurstResult:
        lm = _lm()
        path = model_path(artefact)
        context = model_context(path)
        check_fits(params, context)
        threads = params.threads or os.cpu_count() or 1
        max_tokens = params.prompt_tokens + params.gen_tokens
        t_load_start = time.monotonic()
        try:
            engine = lm.Engine(str(path), backend=lm.interfaces.CPU(thread_count=threads), max_num_tokens=max_tokens,
                               cache_dir=":nocache", enable_benchmark=True)
        except RuntimeError as exc:
            raise RuntimeFailure(f"LiteRT-LM could not load {path}: {exc}") from exc
        t_load_end = time.monotonic()
        engine_rates: list[tuple[float, float]] = []
        try:
            text = prompt_text(engine, params.prompt_tokens, params.seed)

            def one(warm: bool) -> Repetition:
                rep, info = self._one(lm, engine, text, params, warm, on_phase)
                if not warm:
                    engine_rates.append((info.last_prefill_tokens_per_second, info.last_decode_tokens_per_second))
                return rep

            reps = run_repetitions(params, one, on_rep)
        finally:
            engine.close()
        info = {
            "name": self.name,
            "version": self.version(),
            "backend": "CPU (XNNPACK)",
            "threads": threads,
            "affinity": None,
            "api": "python (litert_lm.Engine / Session, in process)",
            "timing": "per token: edgebench's clock in LiteRT-LM's stream callback",
            "max_num_tokens": max_tokens,
            "model_context": context,
            "weight_cache": "off (cache_dir=':nocache')",
            "sampler": {"top_k": 1, "seed": params.seed},
            # the engine's own BenchmarkInfo of the measured repetitions, for comparison with edgebench's clock
            "engine_prefill_tps": [round(p, 3) for p, _ in engine_rates],
            "engine_decode_tps": [round(d, 3) for _, d in engine_rates],
        }
        return BurstResult(t_load_start, t_load_end, reps, info)

    @staticmethod
    def _one(lm, engine, text: str, params: BurstParams, warm: bool, on_phase):
        mark = on_phase or (lambda *_: None)
        session = engine.create_session(apply_prompt_template=False, max_output_tokens=params.gen_tokens,
                                        sampler_config=lm.interfaces.SamplerConfig(top_k=1, seed=params.seed))
        try:
            stream = _Stream(lm, session)
            t_start = time.monotonic()
            mark(Phase.WARMUP if warm else Phase.PREFILL, "start", t_start)
            try:
                session.run_prefill([text])
            except RuntimeError as exc:
                raise RuntimeFailure(f"LiteRT-LM's prefill of {params.prompt_tokens} tokens failed: {exc}") from exc
            t_prefill_end = time.monotonic()
            times = stream.run()
            if not times:
                raise RuntimeFailure("LiteRT-LM's decode streamed no token")
            if not warm:
                mark(Phase.PREFILL, "end", times[0])
                mark(Phase.DECODE, "start", times[0])
            mark(Phase.WARMUP if warm else Phase.DECODE, "end", times[-1])
            info = session.get_benchmark_info()
            check_counts(info, params, len(times))
        finally:
            session.close()
        rep = Repetition(warmup=warm, t_start=t_start, t_prefill_end=t_prefill_end, t_first_token=times[0],
                         token_times=times[1:])
        return rep, info
