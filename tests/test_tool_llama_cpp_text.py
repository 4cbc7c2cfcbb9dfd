"""suite.runtimes.outputs.llama_cpp on every llama.cpp text capture in the shared fixtures/runtimes folder
(runtime_captures finds it). Expected values are read by hand from the capture; each names its line
("line 7" = line 7 of the file, header lines counted). llama-bench tables are not this parser's: the
Snapdragon one is checked against suite.runtimes.llama_bench_output here instead."""

from __future__ import annotations

import time

import pytest
from runtime_captures import LONG_LINES, capture, capture_names, check_run_shape, cut_and_garbled, expected_tool

from suite.runtimes.llama_bench_output import parse_llama_bench
from suite.runtimes.outputs import TOOL_PARSERS
from suite.runtimes.outputs.llama_cpp import (
    FORM_ONE_LINE,
    FORM_PERF,
    FORM_PRINT_TIMINGS,
    FORM_UNPREFIXED,
    PARSER,
    detect,
    parse,
)

ORANGEPI = "llama-cli_orangepi3b-rk3566_2024-12-llama-perf.txt"
PIXEL8A = "llama-cli_pixel8a-tensorG3_b8999-new-ui-qwen3-0.6b.txt"
HEXAGON = "llama-completion_snapdragon-htp-v79_doc-llama3.2-1b-hexagon.txt"
LLAVA = "llama-llava-cli_snapdragon8gen1-phone_2024-01-llama-print-timings.txt"
BENCH = "llama-bench_snapdragon-htp-v79_doc-b6733.txt"


def test_the_registry_names_this_parser():
    assert TOOL_PARSERS.get("llama.cpp") is PARSER and PARSER.name == "llama.cpp"


@pytest.mark.parametrize("name", capture_names())
def test_detect_fires_on_llama_cpp_text_only(name):
    """Every capture in the folder: llama.cpp's text output yes; llama-bench's table and other tools no."""
    assert detect(capture(name)) is (expected_tool(name) == "llama.cpp")


def test_orange_pi_llama_perf_block():
    (run,) = parse(capture(ORANGEPI))
    assert run.tool == "llama.cpp" and run.form == FORM_PERF and run.failed is None
    # line 7: "llama_perf_context_print: prompt eval time =    4245.68 ms /     8 tokens (... 1.88 tokens per second)"
    assert run.values["prefill_tps"] == pytest.approx(8 / 4.24568)
    assert run.counts["prompt_tokens"] == 8 and run.source_lines["prefill_tps"] == 7
    # line 8: "llama_perf_context_print:        eval time =  124973.60 ms /   127 runs   (... 1.02 tokens per second)"
    assert run.values["decode_tps"] == pytest.approx(127 / 124.9736)
    assert run.counts["gen_tokens"] == 127 and run.source_lines["decode_tps"] == 8
    # line 6: "llama_perf_context_print:        load time =    4450.58 ms"
    assert run.values["load_s"] == pytest.approx(4.45058) and run.source_lines["load_s"] == 6
    # line 5: "llama_perf_sampler_print:    sampling time =     170.97 ms /   136 runs ..."
    assert run.counts["sample_runs"] == 136 and run.source_lines["sample_runs"] == 5
    # line 9: "llama_perf_context_print:       total time =  129561.47 ms /   135 tokens"
    assert run.counts["total_tokens"] == 135 and run.source_lines["total_tokens"] == 9
    assert "ttft_s" not in run.values  # not derivable from the block
    assert "graphs_reused" not in run.counts  # 2024: no such line
    assert not any("disagrees" in n for n in run.notes)  # 1.88 and 1.02 agree with the computed rates


def test_pixel_8a_new_llama_cli_one_line():
    (run,) = parse(capture(PIXEL8A))
    assert run.form == FORM_ONE_LINE and run.failed is None
    # line 42: "[ Prompt: 222.7 t/s | Generation: 29.7 t/s ]"
    assert run.values == {"prefill_tps": 222.7, "decode_tps": 29.7}
    assert run.source_lines == {"prefill_tps": 42, "decode_tps": 42}
    assert run.counts == {}  # the line has no token counts
    assert any("rounded to 0.1" in n for n in run.notes)
    # line 20: "build      : b8999-b97ebdc98"; line 21: "model      : unsloth_Qwen3-0.6B-GGUF_Qwen3-0.6B-Q4_K_M.gguf"
    assert run.identity["build"] == "b8999-b97ebdc98"
    assert run.identity["model_file"] == "unsloth_Qwen3-0.6B-GGUF_Qwen3-0.6B-Q4_K_M.gguf"
    # lines 6-7: "load_backend: loaded RPC backend from .../libggml-rpc.so", "... CPU backend from ...armv9.0_1.so"
    assert run.identity["backends_loaded"] == "RPC (libggml-rpc.so), CPU (libggml-cpu-android_armv9.0_1.so)"
    # line 37 runs the generated text into the table's header; lines 38-39: Host 1127 and CPU_REPACK 372 MiB
    (memory,) = [n for n in run.notes if n.startswith("memory breakdown")]
    assert "Host 1127 (line 38)" in memory and "CPU_REPACK 372 (line 39)" in memory and "1499 MiB" in memory
    assert "peak_rss_bytes" not in run.values  # buffer sizes, not a process peak


def test_hexagon_llama_completion_perf_block_with_graphs_reused_and_memory_table():
    (run,) = parse(capture(HEXAGON))
    assert run.form == FORM_PERF and run.failed is None
    # line 22: "llama_perf_context_print: prompt eval time =      80.76 ms /    11 tokens (... 136.21 tokens per second)"
    assert run.values["prefill_tps"] == pytest.approx(11 / 0.08076)
    assert round(run.values["prefill_tps"], 2) == 136.21
    assert run.counts["prompt_tokens"] == 11
    # line 23: "llama_perf_context_print:        eval time =    9210.59 ms /   475 runs   (... 51.57 tokens per second)"
    assert run.values["decode_tps"] == pytest.approx(475 / 9.21059)
    assert run.counts["gen_tokens"] == 475 and run.source_lines["gen_tokens"] == 23
    # line 21: "llama_perf_context_print:        load time =     617.94 ms"
    assert run.values["load_s"] == pytest.approx(0.61794)
    # line 20: sampling 487 runs; line 24: total 486 tokens; line 25: "graphs reused =        473"
    assert run.counts["sample_runs"] == 487 and run.counts["total_tokens"] == 486
    assert run.counts["graphs_reused"] == 473 and run.source_lines["graphs_reused"] == 25
    # line 8: "ggml-hex: Hexagon Arch version v79"; line 10: "ggml-hex: new session: HTP0 : ..."
    assert run.identity["backend"] == "Hexagon" and run.identity["hexagon_arch"] == "v79"
    assert run.identity["device"] == "HTP0"
    # line 13: "load_tensors: offloaded 17/17 layers to GPU"
    assert run.identity["offloaded_layers"] == "17/17"
    # lines 27-29: HTP0 (Hexagon) 2048 = 2048 + (0 = ...) + 0; Host 439 = ...; HTP0-REPACK 504 = ...
    (memory,) = [n for n in run.notes if n.startswith("memory breakdown")]
    assert "HTP0 (Hexagon) 0 of 2048 total, 2048 free (line 27)" in memory
    assert "Host 439 (line 28)" in memory and "HTP0-REPACK 504 (line 29)" in memory and "943 MiB" in memory
    assert "peak_rss_bytes" not in run.values


def test_llava_llama_print_timings_block():
    (run,) = parse(capture(LLAVA))
    assert run.form == FORM_PRINT_TIMINGS and run.failed is None
    # line 11: "llama_print_timings: prompt eval time =   29440.51 ms /   616 tokens (... 20.92 tokens per second)"
    assert run.values["prefill_tps"] == pytest.approx(616 / 29.44051) and run.counts["prompt_tokens"] == 616
    # line 12: "llama_print_timings:        eval time =    1051.03 ms /    21 runs   (... 19.98 tokens per second)"
    assert run.values["decode_tps"] == pytest.approx(21 / 1.05103) and run.counts["gen_tokens"] == 21
    # line 9: "llama_print_timings:        load time =   19968.38 ms"
    assert run.values["load_s"] == pytest.approx(19.96838) and run.source_lines["load_s"] == 9
    # line 10: "llama_print_timings:      sample time =       4.61 ms /    21 runs ..."
    assert run.counts["sample_runs"] == 21
    # line 13: "total time =   49528.13 ms" has no "/ N tokens" in this form
    assert "total_tokens" not in run.counts
    # line 5: "encode_image_with_clip: image encoded in 18963.98 ms by CLIP ..."
    assert any(n.startswith("line 5:") and "18963.98" in n for n in run.notes)


def test_llama_bench_table_is_llama_bench_outputs_and_it_parses():
    """The Snapdragon llama-bench capture: not this parser's, and suite.runtimes.llama_bench_output
    (what `edgebench import llama-bench` uses) reads both rows of it."""
    text = capture(BENCH)
    assert not detect(text) and parse(text) == []
    result = parse_llama_bench(text, source=BENCH)
    assert result.format == "md" and result.problems == []
    pp, tg = result.rows
    # line 13: "| llama 1B Q4_0  | 729.75 MiB | 1.24 B | HTP | 99 | 4 | 128 | 0 | pp128 | 169.42 ± 1.75 |"
    assert (pp.test, pp.avg_ts, pp.stddev_ts, pp.backends, pp.threads) == ("pp128", 169.42, 1.75, ("HTP",), 4)
    # line 14: "... |  tg64 |  51.54 ± 1.13 |"
    assert (tg.test, tg.avg_ts, tg.stddev_ts) == ("tg64", 51.54, 1.13)
    # line 16: "build: 6a8cf8914 (6733)"
    assert (pp.build_commit, pp.build_number) == ("6a8cf8914", 6733)


# --- forms and quirks not in the captures (written from the formats INDEX.md documents) ---------------


def test_several_blocks_several_runs_and_a_disagreeing_rate_is_noted():
    text = "\n".join([
        "build: 4273 (4b4a4a9c) with clang version 17 for aarch64-linux-android",
        "llama_model_loader: - kv   2:                               general.name str              = Llama 3.2 1B",
        "llama_perf_context_print:        load time =    1000.00 ms",
        "llama_perf_context_print: prompt eval time =     100.00 ms /    10 tokens (   10.00 ms per token,   "
        "150.00 tokens per second)",
        "llama_perf_context_print:        eval time =    1000.00 ms /    20 runs   (   50.00 ms per token,    "
        "20.00 tokens per second)",
        "llama_perf_context_print:       total time =    1100.00 ms /    30 tokens",
        "llama_perf_context_print:        load time =    1000.00 ms",
        "llama_perf_context_print: prompt eval time =     200.00 ms /    10 tokens (   20.00 ms per token,    "
        "50.00 tokens per second)",
    ])
    first, second = parse(text)
    assert first.values["prefill_tps"] == pytest.approx(100.0)  # computed 10 / 0.1 s, stored over the printed 150
    assert any("disagrees with the printed 150.00" in n for n in first.notes)
    assert first.identity["build"] == "4273 (4b4a4a9c)" and first.identity["model"] == "Llama 3.2 1B"
    assert second.values["prefill_tps"] == pytest.approx(50.0) and "decode_tps" not in second.values
    assert second.source_lines["prefill_tps"] == 8


def test_logcat_prefixes_crlf_and_text_glued_to_the_prefix():
    text = ("I/llama( 4242): llama_perf_context_print: prompt eval time = 50.00 ms / 5 tokens "
            "(10.00 ms per token, 100.00 tokens per second)\r\n"
            "the answer is 42.llama_perf_context_print:        eval time =  100.00 ms /  10 runs   "
            "(10.00 ms per token, 100.00 tokens per second)\r\n")
    assert detect(text)
    (run,) = parse(text)
    assert run.values == {"prefill_tps": pytest.approx(100.0), "decode_tps": pytest.approx(100.0)}


def test_llama_server_unprefixed_timings():
    text = ("slot print_timing: id  0 | task 0 | \n"
            "prompt eval time =     123.45 ms /    10 tokens (   12.35 ms per token,    81.00 tokens per second)\n"
            "       eval time =    1234.56 ms /   100 tokens (   12.35 ms per token,    81.00 tokens per second)\n"
            "      total time =    1358.01 ms /   110 tokens\n")
    (run,) = parse(text)
    assert run.form == FORM_UNPREFIXED and run.counts["gen_tokens"] == 100
    assert run.values["decode_tps"] == pytest.approx(100 / 1.23456)


def test_a_zero_ms_prompt_keeps_the_printed_rate_and_zero_tokens_no_rate():
    text = ("llama_perf_context_print: prompt eval time =       0.00 ms /     1 tokens (    0.00 ms per token,      "
            "inf tokens per second)\n"
            "llama_perf_context_print:        eval time =       0.00 ms /     0 runs   (    0.00 ms per token,      "
            "nan tokens per second)\n")
    (run,) = parse(text)
    assert run.values["prefill_tps"] == float("inf")  # as printed: validity is suite.importers.generic's call
    assert "decode_tps" not in run.values and run.counts["gen_tokens"] == 0


def test_a_llama_cpp_log_that_stops_with_an_assert_is_a_failed_run():
    text = ("llama_model_loader: loaded meta data with 30 key-value pairs and 147 tensors from /data/m.gguf\n"
            "ggml_opencl: device: 'QUALCOMM Adreno(TM) 750 (OpenCL 3.0 Adreno(TM) 750)'\n"
            "/src/ggml/ggml-opencl.cpp:1234: GGML_ASSERT(M % 4 == 0) failed\n")
    assert detect(text)
    (run,) = parse(text)
    assert run.failed == "/src/ggml/ggml-opencl.cpp:1234: GGML_ASSERT(M % 4 == 0) failed"
    assert run.source_lines["failed"] == 3
    assert run.identity["backend"] == "OpenCL" and run.identity["model_file"] == "m.gguf"


def test_spinner_backspaces_are_taken_off():
    text = "Loading model... |\b/\b-\b\\\b \b\n\n[ Prompt: 10.0 t/s | Generation: 5.5 t/s ]\n"
    (run,) = parse(text)
    assert run.values == {"prefill_tps": 10.0, "decode_tps": 5.5}


# --- robustness -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", capture_names())
def test_cut_and_garbled_captures_never_raise(name):
    for text in cut_and_garbled(capture(name)):
        assert isinstance(detect(text), bool)
        for run in parse(text):
            check_run_shape(run, text)


def test_long_lines_parse_in_linear_time():
    started = time.monotonic()
    for line in LONG_LINES:
        assert isinstance(detect(line), bool) and isinstance(parse(line), list)
    assert time.monotonic() - started < 5.0  # quadratic took minutes here; linear takes milliseconds
