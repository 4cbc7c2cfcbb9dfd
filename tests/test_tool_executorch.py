"""ExecuTorch output parser on the captures in ../shared/fixtures/runtimes (see runtime_captures) and on
text in the formats stats.h, the QNN runner and the Android apps print.

Observer values are derived by hand from the epoch-ms fields the way stats.h derives its printed block
(e.g. prefill = prompt_eval_end_ms - inference_start_ms); each names its line (header lines counted).
"""

from __future__ import annotations

import math

import pytest
from runtime_captures import all_captures, capture, line

from suite.runtimes.outputs import TOOL_PARSERS, executorch, genie, litert_lm

approx = pytest.approx
MIB = 2**20

ARM = "executorch_llama_main_android-phone_armlp-llama3.2-1b-kleidiai.txt"
S26_OUT = "executorch_llama_main_galaxy-s26-sm8850_v1.5.1-qwen3-0.6b-short-chat_stdout.txt"
S26_ERR = "executorch_llama_main_galaxy-s26-sm8850_v1.5.1-qwen3-0.6b-short-chat_stderr.txt"
MAC = "executorch_llama_main_mac-m4max_v1.5.1-release-no-etlog_stdout.txt"
S24 = "executorch_llama_main_galaxy-s24-vulkan_2025-10-doc-llama3.2.txt"
GEMMA3 = "executorch_gemma3_e2e_runner_cuda-host_2025-doc-zero-load-ms.txt"
APP = "executorch_android-benchmark-app_galaxy-s24plus-sm-s926u1_2024-09-results-json-truncated.txt"
DEMO = "executorch_llamademo-benchmark-activity_android-phone_2024-07-results-txt.txt"


def test_the_registry_names_this_parser():
    assert TOOL_PARSERS.get("executorch") is executorch.PARSER


def _lines_of(run, keys, n):
    return all(run.source_lines[k] == n for k in keys)


def test_arm_learning_path_observer_and_stats_block_are_one_run():
    text = capture(ARM)
    [run] = executorch.parse(text)
    assert (run.form, run.failed) == ("PyTorchObserver", None)
    v, c = run.values, run.counts
    # line 36: PyTorchObserver {"prompt_tokens":54,"generated_tokens":53,"model_load_start_ms":1710296030044,
    #   "model_load_end_ms":1710296033621,"inference_start_ms":1710296034359,"inference_end_ms":1710296035916,
    #   "prompt_eval_end_ms":1710296034544,"first_token_ms":1710296034544,"aggregate_sampling_time_ms":50,...}
    assert line(text, 36).startswith("PyTorchObserver {\"prompt_tokens\":54,\"generated_tokens\":53")
    assert (c["prompt_tokens"], c["gen_tokens"]) == (54, 53)
    assert v["load_s"] == approx(3.577)                  # 33621 - 30044 ms; line 38 prints 3.577000
    assert v["prefill_s"] == approx(0.185)               # 34544 - 34359 ms; line 40 prints 0.185000
    assert v["prefill_tps"] == approx(54 / 0.185)        # line 40 prints Rate 291.891892
    assert v["decode_s"] == approx(1.372)                # 35916 - 34544 ms; line 41 prints 1.372000
    assert v["decode_tps"] == approx(53 / 1.372)         # line 41 prints Rate 38.629738
    assert v["ttft_s"] == approx(0.185)                  # 34544 - 34359 ms; line 42
    assert v["inference_s"] == approx(1.557)             # 35916 - 34359 ms; line 39
    assert v["sampling_s"] == approx(0.050)
    assert _lines_of(run, ["load_s", "prefill_tps", "decode_tps", "ttft_s", "prompt_tokens"], 36)
    assert "Sampling time over 107 tokens" in line(text, 43)
    assert c["sampled_tokens"] == 107 and run.source_lines["sampled_tokens"] == 43
    assert "Rate: \t291.891892" in line(text, 40) and "Rate: \t38.629738" in line(text, 41)
    assert not any("differs" in n for n in run.notes)  # the block agrees with the observer to its 6 dp
    assert any("same run" in n for n in run.notes)
    assert "RSS after finishing text generation: 1269.320312 MiB" in line(text, 35)
    assert v["rss_after_generation_bytes"] == round(1269.320312 * MIB)
    assert "peak_rss_bytes" not in v  # RSS after a phase is not a peak
    assert run.identity["threads"] == "5"  # line 7
    assert run.identity["model"] == "instruct_llama3_1B_kv_sdpa_xnn_qe_4_128_1024_embedding_4bit.pte"  # line 8


def test_s26_stdout_observer_with_v151_fields():
    text = capture(S26_OUT)
    [run] = executorch.parse(text)
    v, c = run.values, run.counts
    # line 13: {"prefill_token_per_sec":333.333,"decode_token_per_sec":124.51,"prompt_tokens":19,
    #   "generated_tokens":127,"model_load_start_ms":1791379686222,"model_load_end_ms":1791379687045,
    #   "inference_start_ms":1791379687045,"inference_end_ms":1791379688122,...,"prompt_eval_end_ms":1791379687102,
    #   "first_token_ms":1791379687102,"aggregate_sampling_time_ms":18,"aggregate_model_execution_time_ms":1053,...}
    assert '"decode_token_per_sec":124.51' in line(text, 13)
    assert (c["prompt_tokens"], c["gen_tokens"]) == (19, 127)
    assert v["load_s"] == approx(0.823)              # 87045 - 86222
    assert v["prefill_s"] == approx(0.057)           # 87102 - 87045
    assert v["prefill_tps"] == approx(19 / 0.057)    # printed prefill_token_per_sec 333.333 agrees
    assert v["decode_s"] == approx(1.020)            # 88122 - 87102
    assert v["decode_tps"] == approx(127 / 1.020)    # printed decode_token_per_sec 124.51 agrees
    assert v["ttft_s"] == approx(0.057)
    assert v["model_execution_s"] == approx(1.053)
    assert not any("disagrees" in n for n in run.notes)
    assert set(run.source_lines.values()) == {13}


def test_s26_stderr_stats_block_alone():
    text = capture(S26_ERR)
    [run] = executorch.parse(text)
    assert run.form == "stats" and run.failed is None
    v, c, src = run.values, run.counts, run.source_lines
    assert "Prompt Tokens: 19    Generated Tokens: 127" in line(text, 43)
    assert (c["prompt_tokens"], c["gen_tokens"], src["gen_tokens"]) == (19, 127, 43)
    assert "Model Load Time:\t\t0.823000 (seconds)" in line(text, 44)
    assert v["load_s"] == 0.823 and src["load_s"] == 44
    assert v["inference_s"] == 1.077 and src["inference_s"] == 45                   # line 45
    assert (v["prefill_s"], v["prefill_tps"], src["prefill_tps"]) == (0.057, 333.333333, 46)   # line 46
    assert (v["decode_s"], v["decode_tps"], src["decode_tps"]) == (1.02, 124.509804, 47)       # line 47
    assert v["ttft_s"] == 0.057 and src["ttft_s"] == 48                             # line 48
    assert (v["sampling_s"], c["sampled_tokens"]) == (0.018, 146)                    # line 49: over 146 tokens
    assert any("max new tokens (128)" in n for n in run.notes)                      # line 42
    assert run.identity["model"] == "model.pte" and run.identity["threads"] == "8"  # lines 21, 20


@pytest.mark.parametrize("order", ["stdout first", "stderr first (stdout buffered)"])
def test_stdout_and_stderr_of_one_run_together_are_one_run(order):
    out, err = capture(S26_OUT), capture(S26_ERR)
    text = out + "\n" + err if order == "stdout first" else err + "\n" + out
    [run] = executorch.parse(text)
    assert run.form == "PyTorchObserver"
    assert run.values["decode_tps"] == approx(127 / 1.020)  # the observer's, not the block's 124.509804
    assert run.counts["sampled_tokens"] == 146
    assert any("same run" in n for n in run.notes)


def test_mac_release_build_observer_only():
    text = capture(MAC)
    [run] = executorch.parse(text)
    v = run.values
    # line 12: "model_load_start_ms":1791380729834,"model_load_end_ms":1791380730073,"inference_start_ms":1791380730073,
    #   "inference_end_ms":1791380731269,...,"prompt_eval_end_ms":1791380730121,"first_token_ms":1791380730121
    assert '"prefill_token_per_sec":395.833' in line(text, 12)
    assert v["load_s"] == approx(0.239)             # 30073 - 29834
    assert v["prefill_tps"] == approx(19 / 0.048)   # 30121 - 30073 = 48 ms
    assert v["decode_tps"] == approx(127 / 1.148)   # 31269 - 30121 = 1148 ms; printed 110.627
    assert v["ttft_s"] == approx(0.048)


def test_s24_vulkan_bare_stats_block_with_spaces():
    text = capture(S24)
    [run] = executorch.parse(text)
    v = run.values
    # line 18: "model_load_start_ms":1760077800721,"model_load_end_ms":1760077802998,"inference_start_ms":1760077802998,
    #   "inference_end_ms":1760077804187,"prompt_eval_end_ms":1760077803162,"first_token_ms":1760077803162
    assert v["load_s"] == approx(2.277)             # line 20 prints 2.277000
    assert v["prefill_tps"] == approx(14 / 0.164)   # line 22 prints Rate 85.365854
    assert v["decode_tps"] == approx(54 / 1.025)    # line 23 prints Rate 52.682927
    assert v["ttft_s"] == approx(0.164)             # line 24
    assert "Sampling time over 68 tokens" in line(text, 25)
    assert run.counts["sampled_tokens"] == 68 and run.source_lines["sampled_tokens"] == 25
    assert any("same run" in n for n in run.notes)


def test_gemma3_zero_load_times_are_absent_not_zero():
    text = capture(GEMMA3)
    [run] = executorch.parse(text)
    v = run.values
    assert '"model_load_start_ms":0,"model_load_end_ms":0' in line(text, 12)
    assert "load_s" not in v and any("did not time the load" in n for n in run.notes)
    assert v["prefill_s"] == approx(0.385)           # 1761118127175 - 1761118126790
    assert v["prefill_tps"] == approx(271 / 0.385)
    assert v["decode_s"] == approx(1.210)            # 1761118128385 - 1761118127175
    assert v["decode_tps"] == approx(99 / 1.210)
    assert v["ttft_s"] == approx(0.385) and v["sampling_s"] == approx(0.086)


def test_benchmark_app_json_arrays_cut_one_kept_as_far_as_complete():
    text = capture(APP)
    mv2, llm = executorch.parse(text)
    # line 6: {"actualValue":9.3611927,...,"name":"mv2_xnnpack",...,"metric":"avg_inference_latency(ms)"},
    #         {"actualValue":27.418698,...,"metric":"model_load_time(ms)"}, {"actualValue":0.0,...,"load_status"}
    assert mv2.form == "benchmark-app" and mv2.failed is None
    assert mv2.values == approx({"inference_latency_s": 0.0093611927, "load_s": 0.027418698})
    assert mv2.source_lines["load_s"] == 6
    assert mv2.identity == {"model": "mv2_xnnpack", "device": "samsung", "device_model": "SM-S926U1",
                            "os": "Android 14"}  # availMem/totalMem 0: absent
    # line 12: load_status 0.0, then {"actualValue":3375.450312,...,"metric":"model_load_time(ms)"}, then cut
    assert '"actualValue":3375.450312' in line(text, 12)
    assert llm.values == approx({"load_s": 3.375450312}) and llm.source_lines["load_s"] == 12
    assert llm.identity["model"] == "et_exported_llama"
    assert any("cut" in n for n in llm.notes)


def test_llamademo_results_file():
    text = capture(DEMO)
    [run] = executorch.parse(text)
    assert run.form == "llamademo-results" and run.failed is None
    assert run.values["load_s"] == approx(0.921)       # lines 5-6: 1722275117629 - 1722275116708
    assert run.source_lines["load_s"] == 6
    assert run.values["generate_s"] == approx(1.205)   # lines 7-8: 1722275118834 - 1722275117629
    assert "tokens/second: 105.445114" in line(text, 9)
    assert run.values["decode_tps"] == 105.445114 and run.source_lines["decode_tps"] == 9


# --- detection over every capture -------------------------------------------------------------------------

@pytest.mark.parametrize("name", all_captures())
def test_detect_fires_on_executorch_captures_only(name):
    text = capture(name)
    assert executorch.detect(text) == name.startswith("executorch"), name
    assert not (executorch.detect(text) and (litert_lm.detect(text) or genie.detect(text))), name


# --- formats with no capture ------------------------------------------------------------------------------

def test_infinite_rates_are_kept_as_inf():
    # the LLaVA runner bug: zero times, `inf` rates (older stats.h divided without a check)
    text = "\n".join([
        "I 00:00:01.000000 executorch:stats.h:111] \tPrompt Tokens: 600    Generated Tokens: 20",
        "I 00:00:01.000001 executorch:stats.h:117] \tModel Load Time:\t\t0.000000 (seconds)",
        "I 00:00:01.000002 executorch:stats.h:127] \tTotal inference time:\t\t2.000000 (seconds)\t\t Rate: \t10.0 "
        "(tokens/second)",
        "I 00:00:01.000003 executorch:stats.h:135] \t\tPrompt evaluation:\t0.000000 (seconds)\t\t Rate: \tinf "
        "(tokens/second)",
        "I 00:00:01.000004 executorch:stats.h:146] \t\tGenerated 20 tokens:\t2.000000 (seconds)\t\t Rate: \t10.000000 "
        "(tokens/second)",
    ])
    [run] = executorch.parse(text)
    assert math.isinf(run.values["prefill_tps"]) and run.values["prefill_s"] == 0.0
    assert "load_s" not in run.values and any("Model Load Time" in n for n in run.notes)


def test_observer_with_zero_prefill_interval_gives_inf():
    text = ('PyTorchObserver {"prompt_tokens":5,"generated_tokens":2,"model_load_start_ms":10,"model_load_end_ms":20,'
            '"inference_start_ms":100,"inference_end_ms":300,"prompt_eval_end_ms":100,"first_token_ms":100,'
            '"aggregate_sampling_time_ms":0,"SCALING_FACTOR_UNITS_PER_SECOND":1000}')
    [run] = executorch.parse(text)
    assert math.isinf(run.values["prefill_tps"]) and run.values["decode_tps"] == approx(10.0)
    assert run.values["load_s"] == approx(0.01)


def test_qnn_runner_block_and_a_cut_observer():
    text = "\n".join([
        'PyTorchObserver {"prompt_tokens":32,"generated_tokens":96,"model_load_start_ms":1000,"model_load_end_ms":3',
        "I 00:00:04.100000 executorch:runner.cpp:350] \tPrompt Tokens: 32    Generated Tokens: 96",
        "I 00:00:04.100001 executorch:runner.cpp:362] \t\tPrompt evaluation:\t0.040000 (seconds)\t\t Rate: "
        "\t800.000000 (tokens/second)",
        "I 00:00:04.100002 executorch:runner.cpp:371] \t\tGenerated 96 tokens:\t1.920000 (seconds)\t\t Rate: "
        "\t50.000000 (tokens/second)",
        "I 00:00:04.100003 executorch:runner.cpp:387] \tSampling time over 96 tokens:\t0.010000 (seconds)",
    ])
    [run] = executorch.parse(text)  # same counts, no conflicting total: one run
    assert run.values["prefill_tps"] == 800.0 and run.values["decode_tps"] == 50.0
    assert run.counts["sampled_tokens"] == 96  # the QNN runner counts generated tokens only
    assert any("cut short" in n for n in run.notes)


def test_error_only_log_is_a_failed_run():
    text = "\n".join([
        "I 00:00:00.001000 executorch:runner.cpp:59] Creating LLaMa runner: model_path=m.pte, tokenizer_path=t.model",
        "E 00:00:00.400000 executorch:method.cpp:1200] Missing operator: [0] llama::sdpa_with_kv_cache.out",
        "E 00:00:00.400100 executorch:runner.cpp:95] Failed to load method forward: 0x14",
    ])
    assert executorch.detect(text)
    [run] = executorch.parse(text)
    assert run.failed == "Failed to load method forward: 0x14" and run.identity["model"] == "m.pte"


def test_llamademo_file_of_a_failed_load():
    text = "loadStart: 1722275116708\nloadEnd: 1722275117629\ngenerateStart: 0\ngenerateEnd: 1722275117700\nnull"
    [run] = executorch.parse(text)
    assert run.failed.startswith("generateStart is 0") and run.values["load_s"] == approx(0.921)


def test_benchmark_app_llm_metrics_and_a_failed_load():
    text = ('[{"actualValue":0.0,"benchmarkModel":{"backend":"xnnpack","name":"llama","quantization":"8da4w"},'
            '"deviceInfo":{"arch":"SM-S938U","availMem":0,"device":"samsung","os":"Android 15","totalMem":0},'
            '"metric":"load_status","targetValue":0.0},'
            '{"actualValue":1500.0,"benchmarkModel":{"backend":"xnnpack","name":"llama","quantization":"8da4w"},'
            '"metric":"llm_model_load_time(ms)","targetValue":0.0},'
            '{"actualValue":40.5,"benchmarkModel":{"backend":"xnnpack","name":"llama","quantization":"8da4w"},'
            '"metric":"token_per_sec","targetValue":0.0},'
            '{"actualValue":2.0,"benchmarkModel":{"backend":"qnn","name":"mv3","quantization":""},'
            '"metric":"load_status","targetValue":0.0}]')
    llama, mv3 = executorch.parse(text)
    assert llama.values == {"load_s": 1.5, "decode_tps": 40.5} and llama.identity["backend"] == "xnnpack"
    assert mv3.failed == "load_status 2 (the model did not load)"


def test_nan_rates_are_absent_not_values():
    text = "\n".join(["\tPrompt Tokens: 3    Generated Tokens: 0",
                      "\t\tGenerated 0 tokens:\t0.000000 (seconds)\t\t Rate: \tnan (tokens/second)"])
    [run] = executorch.parse(text)
    assert "decode_tps" not in run.values and run.values["decode_s"] == 0.0
    assert any("decode_tps is nan" in n for n in run.notes)
