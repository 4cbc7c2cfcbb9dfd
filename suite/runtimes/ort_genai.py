"""ONNX Runtime GenAI, in process: token ids in, no tokenizer; timings around its own calls."""

from __future__ import annotations

import json
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
    run_repetitions,
)


def _og():
    try:
        import onnxruntime_genai as og  # lazy: heavy, and a phone's Python may lack it (runner: numpy + stdlib)
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise RuntimeFailure(
            "onnxruntime-genai is not importable", hint="pip install onnxruntime-genai"
        ) from exc
    return og


def prompt_ids(vocab_size: int, n: int, seed: int) -> np.ndarray:
    """Seeded token ids, clear of the low ids that random-weight models use as specials."""
    rng = np.random.default_rng(seed)
    low = min(16, max(vocab_size - 1, 0))
    return rng.integers(low, vocab_size, size=n, dtype=np.int64).astype(np.int32)


class OrtGenaiRuntime:
    name = "ort-genai"
    kind = PYTHON
    python_module = "onnxruntime_genai"
    #: the compute probe runs onnxruntime's int4 MatMulNBits: this runtime's prefill kernel
    compute_probed = True
    formats = ("onnx",)

    def version(self) -> str:
        return _og().__version__

    def _load(self, artefact: Path, threads: int | None):
        og = _og()
        config_path = Path(artefact) / "genai_config.json"
        if not config_path.is_file():
            raise RuntimeFailure(f"{artefact} has no genai_config.json: not an ort-genai model")
        config = og.Config(str(artefact))
        config.clear_providers()  # CPU
        if threads:
            overlay = {"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}
            config.overlay(json.dumps(overlay))
        try:
            model = og.Model(config)
        except Exception as exc:  # onnxruntime raises plain RuntimeError on a bad model
            raise RuntimeFailure(f"onnxruntime-genai could not load {artefact}: {exc}") from exc
        vocab = json.loads(config_path.read_text())["model"]["vocab_size"]
        return og, model, int(vocab)

    def run_burst(
        self,
        artefact: Path,
        params: BurstParams,
        *,
        on_phase: PhaseCallback | None = None,
        on_rep: RepCallback | None = None,
    ) -> BurstResult:
        threads = params.threads or os.cpu_count() or 1
        t_load_start = time.monotonic()
        og, model, vocab = self._load(artefact, threads)
        t_load_end = time.monotonic()

        ids = prompt_ids(vocab, params.prompt_tokens, params.seed)
        reps = run_repetitions(params, lambda warm: self._one(og, model, ids, params, warm, on_phase), on_rep)
        info = {
            "name": self.name,
            "version": self.version(),
            "backend": "CPUExecutionProvider",
            "threads": threads,
            "affinity": None,
        }
        return BurstResult(t_load_start, t_load_end, reps, info)

    @staticmethod
    def _one(og, model, ids, params: BurstParams, warm: bool, on_phase) -> Repetition:
        length = params.prompt_tokens + params.gen_tokens
        gp = og.GeneratorParams(model)
        # min_length keeps a random-weight model from stopping at a sampled EOS.
        gp.set_search_options(max_length=length, min_length=length, do_sample=False)
        gen = og.Generator(model, gp)
        mark = on_phase or (lambda *_: None)
        first = Phase.WARMUP if warm else Phase.PREFILL

        t_start = time.monotonic()
        mark(first, "start", t_start)
        gen.append_tokens(ids)  # the prefill forward pass
        t_prefill_end = time.monotonic()
        gen.generate_next_token()  # samples the prefill's logits: the first token
        t_first = time.monotonic()
        if not warm:
            mark(Phase.PREFILL, "end", t_first)
            mark(Phase.DECODE, "start", t_first)
        times: list[float] = []
        for _ in range(params.gen_tokens - 1):
            gen.generate_next_token()  # one forward pass per token
            times.append(time.monotonic())
        mark(Phase.WARMUP if warm else Phase.DECODE, "end", times[-1] if times else t_first)
        produced = gen.get_sequence(0)
        if len(produced) != length:
            raise RuntimeFailure(
                f"ort-genai produced {len(produced)} tokens, expected {length}",
                hint="the model stopped early; check min_length support in this version",
            )
        del gen
        return Repetition(
            warmup=warm,
            t_start=t_start,
            t_prefill_end=t_prefill_end,
            t_first_token=t_first,
            token_times=times,
        )
