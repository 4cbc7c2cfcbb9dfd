"""Runtime `llama-cpp-python`: llama.cpp in process, through llama-cpp-python's low-level C API
(ctypes): token ids in, no tokenizer. (The runtime named `llama.cpp` is the engine driven through its
own benchmark binary, suite.runtimes.llama_bench; this one is the Python binding's build of it.)

The burst follows llama-bench's pp and tg tests: the KV cache is cleared before every repetition
(`llama_memory_clear`, as llama-bench does between its reps), the prompt goes in as ONE batch of
`prompt_tokens` tokens (one `llama_decode` call; n_batch = prompt_tokens, n_ubatch = min(512, n_batch)
as llama-bench's default), then decode runs single-token `llama_decode` steps. Tokens are chosen
greedily (argmax of the last logits) so the timestamps mean what ort-genai's mean:

- `t_start` .. `t_prefill_end`: the prefill forward pass (llama_decode of the prompt + synchronize);
- `t_first_token`: after the argmax of the prefill's logits (the first generated token);
- `token_times[k]`: after the (k+1)-th single-token forward pass and its argmax; `gen_tokens - 1` of them.

So edgebench's prefill_tps is llama-bench's pp (n_prompt / time of the prompt batch) and decode_tps
is llama-bench's tg rate (tokens / time of single-token steps), plus the argmax edgebench needs to
pick the next token (llama-bench feeds random tokens instead).

llama-cpp-python calls the C library through `ctypes.CDLL`, which releases the GIL for the duration
of every foreign call: `llama_decode` computes without holding it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
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
from suite.runtimes.ort_genai import prompt_ids

log = logging.getLogger(__name__)

MODEL_FILE = "model.gguf"
#: llama-bench's default micro-batch (-ub 512): the prefill batch is split into these inside llama.cpp.
DEFAULT_UBATCH = 512

_state: dict = {}


def _llama():
    try:
        import llama_cpp  # lazy: heavy and optional; a phone's Python may lack it (runner: numpy + stdlib)
    except ImportError as exc:
        raise RuntimeFailure(
            "llama-cpp-python is not importable",
            hint="pip install llama-cpp-python (it builds llama.cpp from source: cmake and a C++ compiler)",
        ) from exc
    if "backend" not in _state:
        # llama.cpp logs every load to stderr; keep its warnings and errors, through logging.
        # ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous line).
        levels = {3: logging.WARNING, 4: logging.ERROR}

        @llama_cpp.llama_log_callback
        def _log(level: int, text: bytes, _user) -> None:
            if level == 5:
                level = _state.get("last_level", 2)
            _state["last_level"] = level
            if level in levels and text.strip():
                log.log(levels[level], "llama.cpp: %s", text.decode("utf-8", "replace").rstrip())

        _state["log_cb"] = _log  # must outlive every call into the library
        llama_cpp.llama_log_set(_log, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _state["backend"] = True
    return llama_cpp


def model_path(artefact: Path) -> Path:
    """The GGUF file of an artefact folder (`<folder>/model.gguf`), or `artefact` itself if it is a file."""
    return artefact_file(artefact, MODEL_FILE, "GGUF", "gguf")


def _flash_attn_name(llama_cpp, value: int) -> str:
    """llama.cpp's flash-attention setting as it names it ("auto" resolves to enabled on CPU)."""
    try:
        return llama_cpp.llama_flash_attn_type_name(value).decode()
    except (AttributeError, TypeError):  # an older binding
        return str(value)


class _Loaded:
    """A model and a context, freed together."""

    def __init__(self, llama_cpp, path: Path, *, threads: int, n_ctx: int, n_batch: int, n_ubatch: int) -> None:
        self.lib = llama_cpp
        self.model = self.ctx = None
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0  # CPU
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise RuntimeFailure(f"llama.cpp could not load {path}", hint="see the llama.cpp warnings logged above")
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_ubatch
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            self.close()
            raise RuntimeFailure(f"llama.cpp could not create a context for {path} (n_ctx {n_ctx})")
        self.cparams = cparams
        self.vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.model))
        self.mem = llama_cpp.llama_get_memory(self.ctx)

    def close(self) -> None:
        if self.ctx:
            self.lib.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            self.lib.llama_model_free(self.model)
            self.model = None


class LlamaCppRuntime:
    name = "llama-cpp-python"
    kind = PYTHON
    python_module = "llama_cpp"
    #: llama.cpp's Q4_0 kernels can outrun onnxruntime's int4 probe: no honest compute bound
    compute_probed = False
    formats = ("gguf",)

    def version(self) -> str:
        return _llama().__version__

    def run_burst(
        self,
        artefact: Path,
        params: BurstParams,
        *,
        on_phase: PhaseCallback | None = None,
        on_rep: RepCallback | None = None,
    ) -> BurstResult:
        llama_cpp = _llama()
        path = model_path(artefact)
        threads = params.threads or os.cpu_count() or 1
        n_batch = params.prompt_tokens
        n_ubatch = min(DEFAULT_UBATCH, n_batch)
        t_load_start = time.monotonic()
        loaded = _Loaded(llama_cpp, path, threads=threads, n_ctx=params.prompt_tokens + params.gen_tokens,
                         n_batch=n_batch, n_ubatch=n_ubatch)
        t_load_end = time.monotonic()
        try:
            ids = prompt_ids(loaded.vocab, params.prompt_tokens, params.seed)
            prompt = (llama_cpp.llama_token * len(ids))(*ids.tolist())
            reps = run_repetitions(params, lambda warm: self._one(loaded, prompt, params, warm, on_phase), on_rep)
            info = {
                "name": self.name,
                "version": self.version(),
                "backend": "CPU",
                "threads": threads,
                "affinity": None,
                "n_ctx": int(llama_cpp.llama_n_ctx(loaded.ctx)),
                "n_batch": int(llama_cpp.llama_n_batch(loaded.ctx)),
                "n_ubatch": int(llama_cpp.llama_n_ubatch(loaded.ctx)),
                "flash_attn": _flash_attn_name(llama_cpp, loaded.cparams.flash_attn_type),
                "type_k": "f16",  # llama.cpp's default cache types (not changed here)
                "type_v": "f16",
                "mmap": True,
                "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
            }
        finally:
            loaded.close()
        return BurstResult(t_load_start, t_load_end, reps, info)

    @staticmethod
    def _one(loaded: _Loaded, prompt, params: BurstParams, warm: bool, on_phase) -> Repetition:
        lib, ctx, n_vocab = loaded.lib, loaded.ctx, loaded.vocab
        decode, logits_ith, monotonic = lib.llama_decode, lib.llama_get_logits_ith, time.monotonic
        as_array, argmax = np.ctypeslib.as_array, np.argmax
        mark = on_phase or (lambda *_: None)
        first = Phase.WARMUP if warm else Phase.PREFILL

        lib.llama_memory_clear(loaded.mem, False)  # llama-bench: clear the KV cache before every rep
        batch = lib.llama_batch_get_one(prompt, params.prompt_tokens)  # positions follow the cache
        step_token = (lib.llama_token * 1)()
        step = lib.llama_batch_get_one(step_token, 1)

        t_start = monotonic()
        mark(first, "start", t_start)
        rc = decode(ctx, batch)  # the prefill: one batch of prompt_tokens
        lib.llama_synchronize(ctx)
        t_prefill_end = monotonic()
        if rc != 0:
            raise RuntimeFailure(f"llama_decode of the {params.prompt_tokens}-token prompt returned {rc}")
        token = int(argmax(as_array(logits_ith(ctx, -1), shape=(n_vocab,))))  # the first token
        t_first = monotonic()
        if not warm:
            mark(Phase.PREFILL, "end", t_first)
            mark(Phase.DECODE, "start", t_first)
        times: list[float] = []
        for _ in range(params.gen_tokens - 1):
            step_token[0] = token
            rc = decode(ctx, step)  # one forward pass per token
            if rc != 0:
                raise RuntimeFailure(f"llama_decode of a single token returned {rc} (step {len(times) + 1})")
            token = int(argmax(as_array(logits_ith(ctx, -1), shape=(n_vocab,))))  # waits for the compute
            times.append(monotonic())
        mark(Phase.WARMUP if warm else Phase.DECODE, "end", times[-1] if times else t_first)
        last = lib.llama_memory_seq_pos_max(loaded.mem, 0)
        expected = params.prompt_tokens + params.gen_tokens - 2  # positions of every token fed in
        if last != expected:
            raise RuntimeFailure(f"llama.cpp's cache ends at position {last}, expected {expected}")
        return Repetition(
            warmup=warm,
            t_start=t_start,
            t_prefill_end=t_prefill_end,
            t_first_token=t_first,
            token_times=times,
        )
