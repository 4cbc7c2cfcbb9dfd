"""Runtime `litert-lm-python` on this host: LiteRT-LM's engine in process on edgebench's .litertlm builds."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest

from suite.core.errors import EdgebenchError, RuntimeFailure
from suite.core.measure import BurstParams
from suite.models import build_model
from suite.runtimes import PYTHON, get_runtime
from suite.runtimes.litert_lm import LiteRtLmRuntime, check_counts, model_path
from suite.session.local import RunRequest
from suite.session.run import run_local

litert_lm = pytest.importorskip("litert_lm", reason="litert-lm-api is in the [test] extra")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def tiny(models_dir):
    return build_model("tiny", fmt="litertlm", out_root=models_dir)


def test_registered_for_litertlm():
    rt = get_runtime("litert-lm-python")
    assert isinstance(rt, LiteRtLmRuntime)
    assert rt.kind == PYTHON and rt.formats == ("litertlm",) and rt.python_module == "litert_lm"
    assert rt.version() == version("litert-lm-api") == "0.18.1"


def test_burst_times_every_streamed_token(tiny):
    params = BurstParams(prompt_tokens=20, gen_tokens=12, reps=2, warmup=1, threads=2)
    seen = []
    result = LiteRtLmRuntime().run_burst(tiny.path, params, on_rep=lambda i, n, rep: seen.append((i, n, rep.warmup)))
    assert seen == [(0, 3, True), (1, 3, False), (2, 3, False)]
    for rep in result.repetitions:
        assert rep.t_start < rep.t_prefill_end < rep.t_first_token
        assert len(rep.token_times) == params.gen_tokens - 1
        assert all(lat > 0 for lat in rep.decode_latencies_s)
    info = result.info
    assert info["name"] == "litert-lm-python" and info["version"] == "0.18.1" and info["threads"] == 2
    assert info["model_context"] == 256 and info["max_num_tokens"] == 32
    assert len(info["engine_decode_tps"]) == 2 and min(info["engine_decode_tps"]) > 0
    assert result.load_s > 0
    assert model_path(tiny.model_file) == model_path(tiny.path) == tiny.model_file


def test_run_end_to_end_stores_a_completed_record(models_dir, tmp_path):
    params = BurstParams(prompt_tokens=16, gen_tokens=8, reps=3, warmup=1, threads=2)
    path = run_local(RunRequest(model_id="tiny", runtime="litert-lm-python", params=params, models_dir=models_dir,
                                results_dir=tmp_path, sample_rate_hz=20.0))
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed", rec.get("errors")
    m = rec["metrics"]
    for name in ("prefill_tps", "decode_tps", "ttft_s"):
        assert m[name]["n"] == 3 and m[name]["value"] > 0, name
    assert m["load_s"]["value"] > 0
    assert m["decode_latency_s/p50"]["value"] <= m["decode_latency_s/p99"]["value"]
    assert rec["runtime"]["name"] == "litert-lm-python" and rec["runtime"]["version"] == "0.18.1"
    assert rec["runtime"]["backend"] == "CPU (XNNPACK)"
    assert rec["model"]["format"] == "litertlm" and rec["model"]["quant"] == "int8"
    assert rec["model"]["synthetic_weights"] is True
    assert rec["model"]["kv_bytes_per_position"] == 2 * 2 * 2 * 16 * 4  # layers x k,v x kv heads x head_dim x fp32
    assert "no compute probe for litert-lm-python" in rec["unavailable"]["roofline_fraction/prefill"]


def test_more_prompt_than_context_fails_clearly(tiny):
    with pytest.raises(RuntimeFailure, match="300 prompt \\+ 8 generated tokens do not fit the model's context of 256"):
        LiteRtLmRuntime().run_burst(tiny.path, BurstParams(prompt_tokens=300, gen_tokens=8, reps=1, warmup=0))


def test_more_prompt_than_context_is_a_failed_run_not_a_result(models_dir, tmp_path):
    params = BurstParams(prompt_tokens=300, gen_tokens=8, reps=1, warmup=0)
    with pytest.raises(EdgebenchError, match="do not fit the model's context of 256 tokens") as info:
        run_local(RunRequest(model_id="tiny", runtime="litert-lm-python", params=params, models_dir=models_dir,
                             results_dir=tmp_path, probe=False))
    rec = json.loads((info.value.context["run_dir"] / "run.json").read_text())
    assert rec["outcome"] == "load_failed"
    assert "do not fit the model's context" in json.dumps(rec["errors"])
    assert "decode_tps" not in rec["metrics"]


def test_a_decode_cut_short_by_the_engine_fails_with_the_reason(tiny):
    """LiteRT-LM stops decoding silently at the end of its token budget: with an engine of 24 tokens, a
    16-token prompt decodes 8 of the 32 asked for, and the repetition is refused with the engine's counts."""
    engine = litert_lm.Engine(str(tiny.model_file), backend=litert_lm.interfaces.CPU(thread_count=1),
                              max_num_tokens=24, cache_dir=":nocache", enable_benchmark=True)
    try:
        params = BurstParams(prompt_tokens=16, gen_tokens=32, reps=1, warmup=0)
        text = "abcdefghijklmno"  # 15 characters + the start token
        with pytest.raises(RuntimeFailure, match="decoded 8 tokens .* of 32"):
            LiteRtLmRuntime._one(litert_lm, engine, text, params, False, None)
    finally:
        engine.close()


def test_counts_and_rates_must_be_what_was_asked():
    params = BurstParams(prompt_tokens=64, gen_tokens=16)
    ok = litert_lm.BenchmarkInfo(init_time_in_second=0.01, time_to_first_token_in_second=0.01,
                                 last_prefill_token_count=64, last_prefill_tokens_per_second=900.0,
                                 last_decode_token_count=16, last_decode_tokens_per_second=100.0)
    check_counts(ok, params, 16)
    # what LiteRT-LM returns when the prompt fills its cache: no error, a rate of 0
    failed = litert_lm.BenchmarkInfo(init_time_in_second=0.01, time_to_first_token_in_second=0.0,
                                     last_prefill_token_count=0, last_prefill_tokens_per_second=0.0,
                                     last_decode_token_count=0, last_decode_tokens_per_second=0.0)
    with pytest.raises(RuntimeFailure, match="prefilled 0 tokens of 64.*decoded 0 tokens.*prefill rate is 0.0"):
        check_counts(failed, params, 0)
    with pytest.raises(RuntimeFailure, match="15 streamed"):
        check_counts(ok, params, 15)


def test_a_users_own_litertlm_file_runs_through_model_file(tiny, tmp_path):
    """--model-file M.litertlm: the engine's own artefact, recognised by its magic; the record names the file
    and its sha256, and what edgebench cannot know of it (architecture, parameters, bytes per token) is
    unknown and said so in the roofline, never guessed."""
    import shutil

    from suite.core.filehash import local_sha256

    mine = tmp_path / "my model.litertlm"
    shutil.copyfile(tiny.model_file, mine)
    params = BurstParams(prompt_tokens=16, gen_tokens=8, reps=2, warmup=1, threads=2)
    path = run_local(RunRequest(model_id=None, model_file=mine, runtime="litert-lm-python", params=params,
                                results_dir=tmp_path / "results", sample_rate_hz=20.0, probe=True))
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed", rec.get("errors")
    model = rec["model"]
    assert model["format"] == "litertlm" and model["id"] == "my model" and model["sha256"] == local_sha256(mine)
    assert model["params"] is None and model["synthetic_weights"] is False and model["source"] == "model-file"
    assert rec["metrics"]["decode_tps"]["n"] == 2
    un = rec["unavailable"]
    assert "does not say how many bytes a token reads" in un["roofline_fraction/decode"]
    assert "memory_bandwidth_bytes_per_s" in rec["metrics"]  # the probe ran; only the bound is unknown
    # a .litertlm is refused by a runtime that does not load it, before anything runs
    with pytest.raises(EdgebenchError, match="is litertlm; runtime llama.cpp loads gguf"):
        run_local(RunRequest(model_id=None, model_file=mine, runtime="llama.cpp", params=params,
                             results_dir=tmp_path / "results2", probe=False))
