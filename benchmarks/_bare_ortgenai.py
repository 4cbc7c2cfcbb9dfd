"""A bare onnxruntime-genai decode loop: the reference edgebench's harness is compared to.

Imports nothing from `suite`, on purpose.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnxruntime_genai as og


def bare_decode_tps(model_dir: Path, *, prompt_tokens: int, gen_tokens: int, reps: int,
                    warmup: int, threads: int) -> list[float]:
    config = og.Config(str(model_dir))
    config.clear_providers()
    config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
    model = og.Model(config)
    vocab = json.loads((Path(model_dir) / "genai_config.json").read_text())["model"]["vocab_size"]
    ids = np.random.default_rng(0).integers(16, vocab, size=prompt_tokens).astype(np.int32)
    out = []
    for i in range(warmup + reps):
        gp = og.GeneratorParams(model)
        length = prompt_tokens + gen_tokens
        gp.set_search_options(max_length=length, min_length=length, do_sample=False)
        gen = og.Generator(model, gp)
        gen.append_tokens(ids)
        gen.generate_next_token()
        t_first = time.monotonic()
        for _ in range(gen_tokens - 1):
            gen.generate_next_token()
        t_end = time.monotonic()
        if i >= warmup:
            out.append((gen_tokens - 1) / (t_end - t_first))
        del gen
    return out
