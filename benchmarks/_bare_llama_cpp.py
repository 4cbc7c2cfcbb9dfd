"""A bare llama-cpp-python decode loop: the reference edgebench's llama.cpp runtime is compared to.

Imports nothing from `suite`, on purpose. Same work per token as the runtime: one llama_decode of the
prompt, then single-token llama_decode steps, each followed by the argmax of the last logits.
"""

from __future__ import annotations

import time
from pathlib import Path

import ctypes

import llama_cpp
import numpy as np


@llama_cpp.llama_log_callback
def _quiet(level, text, user_data):  # llama.cpp logs every load; the benchmark prints only its figures
    pass


llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))


def bare_decode_tps(model_file: Path, *, prompt_tokens: int, gen_tokens: int, reps: int,
                    warmup: int, threads: int) -> list[float]:
    model = llama_cpp.llama_model_load_from_file(str(model_file).encode(), llama_cpp.llama_model_default_params())
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = prompt_tokens + gen_tokens
    cparams.n_batch = prompt_tokens
    cparams.n_ubatch = min(512, prompt_tokens)
    cparams.n_threads = cparams.n_threads_batch = threads
    ctx = llama_cpp.llama_init_from_model(model, cparams)
    n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    ids = np.random.default_rng(0).integers(16, n_vocab, size=prompt_tokens).tolist()
    prompt = (llama_cpp.llama_token * prompt_tokens)(*ids)
    one = (llama_cpp.llama_token * 1)()
    mem = llama_cpp.llama_get_memory(ctx)
    out = []
    try:
        for i in range(warmup + reps):
            llama_cpp.llama_memory_clear(mem, False)
            llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(prompt, prompt_tokens))
            step = llama_cpp.llama_batch_get_one(one, 1)
            token = int(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,)).argmax())
            t_first = time.monotonic()
            for _ in range(gen_tokens - 1):
                one[0] = token
                llama_cpp.llama_decode(ctx, step)
                token = int(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,)).argmax())
            t_end = time.monotonic()
            if i >= warmup:
                out.append((gen_tokens - 1) / (t_end - t_first))
    finally:
        llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(model)
    return out
