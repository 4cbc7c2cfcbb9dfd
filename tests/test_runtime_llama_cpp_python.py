"""The in-process llama.cpp runtime (`llama-cpp-python`): registration, the burst as llama-bench's pp/tg define it, timestamps
with the same meaning as ort-genai's, failures as RuntimeFailure."""

from __future__ import annotations

import ctypes
import threading
import time

import pytest

from suite.analysis.metrics import burst_metrics, phase_intervals
from suite.core.errors import RuntimeFailure
from suite.models import build_model
from suite.runtimes import RUNTIMES, BurstParams, get_runtime
from suite.runtimes.llama_cpp_python import LlamaCppRuntime, model_path

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is in the [test] extra")

PARAMS = BurstParams(prompt_tokens=16, gen_tokens=8, reps=3, warmup=1, threads=1)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def tiny_gguf(models_dir):
    return build_model("tiny", fmt="gguf", quant="q4_0", out_root=models_dir)


@pytest.fixture
def spy(monkeypatch):
    """Record every llama_decode (batch size, and the token of single-token batches) and cache clear."""
    calls: list[tuple[str, int, int | None]] = []
    real_decode, real_clear = llama_cpp.llama_decode, llama_cpp.llama_memory_clear

    def decode(ctx, batch):
        calls.append(("decode", batch.n_tokens, batch.token[0] if batch.n_tokens == 1 else None))
        return real_decode(ctx, batch)

    def clear(mem, data):
        calls.append(("clear", 0, None))
        return real_clear(mem, data)

    monkeypatch.setattr(llama_cpp, "llama_decode", decode)
    monkeypatch.setattr(llama_cpp, "llama_memory_clear", clear)
    return calls


def test_registered_for_gguf():
    assert "llama-cpp-python" in RUNTIMES
    rt = get_runtime("llama-cpp-python")
    assert isinstance(rt, LlamaCppRuntime) and rt.formats == ("gguf",)
    assert rt.version() == llama_cpp.__version__


def test_burst_is_llama_benchs_pp_and_tg(tiny_gguf, spy):
    phases: list[tuple[str, str]] = []
    seen: list[int] = []
    result = get_runtime("llama-cpp-python").run_burst(tiny_gguf.path, PARAMS,
                                                       on_phase=lambda p, e, t: phases.append((p, e)),
                                                       on_rep=lambda i, n, r: seen.append(i))
    assert seen == [0, 1, 2, 3]
    # per repetition: clear the KV cache, ONE decode of the whole prompt, then gen_tokens - 1 single-token steps
    per_rep = [("clear", 0)] + [("decode", 16)] + [("decode", 1)] * 7
    assert [(k, n) for k, n, _ in spy] == per_rep * 4
    # greedy from a cleared cache: every repetition decodes the same tokens
    tokens = [tok for k, n, tok in spy if n == 1]
    assert tokens[:7] == tokens[7:14] == tokens[14:21] == tokens[21:]
    assert phases == [("warmup", "start"), ("warmup", "end")] + [
        ("prefill", "start"), ("prefill", "end"), ("decode", "start"), ("decode", "end")] * 3


def test_timestamps_mean_what_ort_genais_mean(tiny_gguf):
    t0 = time.monotonic()
    result = get_runtime("llama-cpp-python").run_burst(tiny_gguf.path, PARAMS)
    assert t0 <= result.t_load_start < result.t_load_end and result.load_s > 0
    reps = result.repetitions
    assert [r.warmup for r in reps] == [True, False, False, False]
    last = result.t_load_end
    for r in reps:
        assert last <= r.t_start < r.t_prefill_end <= r.t_first_token
        assert len(r.token_times) == PARAMS.gen_tokens - 1
        edges = [r.t_first_token, *r.token_times]
        assert all(a < b for a, b in zip(edges, edges[1:]))
        last = r.t_end
    m = burst_metrics(reps, PARAMS, result.load_s)
    for name in ("prefill_tps", "decode_tps", "ttft_s", "decode_latency_s/p50", "load_s"):
        assert m[name]["value"] > 0, name
    assert m["prefill_tps"]["n"] == 3
    spans = phase_intervals(reps)
    assert len(spans["warmup"]) == 1 and len(spans["prefill"]) == len(spans["decode"]) == 3
    info = result.info
    assert info["name"] == "llama-cpp-python" and info["backend"] == "CPU" and info["threads"] == 1
    assert info["version"] == llama_cpp.__version__
    assert info["n_batch"] >= PARAMS.prompt_tokens and info["n_ctx"] >= PARAMS.prompt_tokens + PARAMS.gen_tokens
    assert info["type_k"] == "f16" and info["flash_attn"]


def test_every_quant_and_family_runs(models_dir):
    import dataclasses

    from suite.catalog.cards import get_model_card

    tiny = get_model_card("tiny")
    qwen2 = dataclasses.replace(tiny, id="tiny-qwen2", architecture="qwen2", qkv_bias=True, tie_word_embeddings=True)
    phi3 = dataclasses.replace(tiny, id="tiny-phi3", architecture="phi3", num_key_value_heads=4)
    params = BurstParams(prompt_tokens=8, gen_tokens=4, reps=1, warmup=0, threads=1)
    for card in (tiny, qwen2, phi3):
        for quant in ("q4_0", "q8_0"):
            built = build_model(card, fmt="gguf", quant=quant, out_root=models_dir)
            result = LlamaCppRuntime().run_burst(built.path, params)
            assert len(result.repetitions) == 1 and len(result.repetitions[0].token_times) == 3


def test_accepts_a_gguf_file_path(tiny_gguf):
    assert model_path(tiny_gguf.path) == tiny_gguf.model_file
    assert model_path(tiny_gguf.model_file) == tiny_gguf.model_file
    params = BurstParams(prompt_tokens=4, gen_tokens=2, reps=1, warmup=0, threads=1)
    assert len(LlamaCppRuntime().run_burst(tiny_gguf.model_file, params).repetitions) == 1


def test_an_onnx_folder_or_a_broken_file_is_a_runtime_failure(models_dir, tmp_path):
    onnx = build_model("tiny", out_root=models_dir)
    params = BurstParams(prompt_tokens=4, gen_tokens=2, reps=1, warmup=0, threads=1)
    with pytest.raises(RuntimeFailure, match="no model.gguf"):
        LlamaCppRuntime().run_burst(onnx.path, params)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(RuntimeFailure, match="could not load"):
        LlamaCppRuntime().run_burst(broken, params)


def test_a_failed_decode_is_a_runtime_failure(tiny_gguf, monkeypatch):
    # llama_decode returns 1 when the KV cache has no room for the batch, 2 when aborted, < 0 on error.
    real = llama_cpp.llama_decode
    monkeypatch.setattr(llama_cpp, "llama_decode", lambda ctx, batch: 1 if batch.n_tokens == 1 else real(ctx, batch))
    params = BurstParams(prompt_tokens=4, gen_tokens=2, reps=1, warmup=0, threads=1)
    with pytest.raises(RuntimeFailure, match="returned 1"):
        LlamaCppRuntime().run_burst(tiny_gguf.path, params)


def test_the_binding_releases_the_gil():
    """ctypes releases the GIL around calls into a CDLL (not a PyDLL): llama_decode computes without it."""
    lib = llama_cpp.llama_cpp._lib
    assert isinstance(lib, ctypes.CDLL) and not isinstance(lib, ctypes.PyDLL)


def test_a_python_thread_runs_while_llama_cpp_computes(models_dir):
    """Measured: a counting thread keeps making progress during a prefill (it would stall if the GIL were held)."""
    built = build_model("llama-68m", fmt="gguf", quant="q4_0", out_root=models_dir)
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    params = BurstParams(prompt_tokens=128, gen_tokens=2, reps=1, warmup=0, threads=1)
    counts = []

    def mark(phase, edge, t):
        counts.append((phase, edge, count[0]))

    th = threading.Thread(target=spin, daemon=True)
    th.start()
    try:
        LlamaCppRuntime().run_burst(built.path, params, on_phase=mark)
    finally:
        stop.set()
        th.join()
    start = next(c for p, e, c in counts if (p, e) == ("prefill", "start"))
    end = next(c for p, e, c in counts if (p, e) == ("prefill", "end"))
    assert end - start > 1000  # the thread ran during the prefill's llama_decode
