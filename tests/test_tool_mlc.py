"""suite.runtimes.outputs.mlc on every MLC capture in the shared fixtures/runtimes folder (runtime_captures
finds it). Expected values are read by hand from the capture; each names its line ("line 9" = line 9 of
the file, header lines counted)."""

from __future__ import annotations

import time

import pytest
from runtime_captures import LONG_LINES, capture, capture_names, check_run_shape, cut_and_garbled, expected_tool

from suite.runtimes.outputs import TOOL_PARSERS
from suite.runtimes.outputs.mlc import (
    FORM_COMPACT,
    FORM_ERROR,
    FORM_TABLE,
    FORM_VERBOSE,
    FORM_WEBLLM,
    PARSER,
    detect,
    parse,
)

TABLE = "mlc-chat-app_iphone13pro-and-others_2023-05-stats-table.txt"
COMPACT_VERBOSE = "mlc-chat_runtime-stats_unknown-desktop_2023-10-compact-vs-verbose.txt"
RX6800XT = "mlc_chat_cli_rx6800xt-desktop_2023-08-vulkan-stats-and-rocm-error-truncated.txt"


def test_the_registry_names_this_parser():
    assert TOOL_PARSERS.get("mlc") is PARSER and PARSER.name == "mlc"


@pytest.mark.parametrize("name", capture_names())
def test_detect_fires_on_mlc_output_only(name):
    assert detect(capture(name)) is (expected_tool(name) == "mlc")


def test_pasted_table_one_run_per_device_row_and_the_crash():
    runs = parse(capture(TABLE))
    assert [r.form for r in runs] == [FORM_TABLE] * 8
    rows = [(r.identity["device"], r.identity["os"], r.identity["model"], r.values.get("prefill_tps"),
             r.values.get("decode_tps"), r.failed) for r in runs]
    red, vic = "RedPajama-INCITE-Chat-3B-v1-q4f16_0", "vicuna-v1-7b-q3f16_0"  # line 5 and line 14, above each table
    assert rows == [
        # line 9: "| iPhone 13 pro | iOS 16.5 | prefill: 18.9 tok/s, decode: 12.0 tok/s |"
        ("iPhone 13 pro", "iOS 16.5", red, 18.9, 12.0, None),
        # line 10: "| iPad Pro 12.9 2022(6th gen)(M2,16G memory) | iPadOS 16.5 | prefill: 38.7 tok/s, decode: 23.6 tok/s |"
        ("iPad Pro 12.9 2022(6th gen)(M2,16G memory)", "iPadOS 16.5", red, 38.7, 23.6, None),
        # line 11: "| macbook air 2022(M2,24G memory) | macOS Ventura 13.4 | prefill: 35.7 tok/s, decode: 24.8 tok/s |"
        ("macbook air 2022(M2,24G memory)", "macOS Ventura 13.4", red, 35.7, 24.8, None),
        # line 12: "| rtx4080 16G | Windows 11 | prefill: 32.5 tok/s, decode: 47.9 tok/s |"
        ("rtx4080 16G", "Windows 11", red, 32.5, 47.9, None),
        # line 18: "| iPhone 13 pro | iOS 16.5 | crashed |"
        ("iPhone 13 pro", "iOS 16.5", vic, None, None, "crashed"),
        # line 19: "| iPad Pro 12.9 2022(6th gen)(M2,16G memory) | iPadOS 16.5 | prefill: 33.2 tok/s, decode: 15.3 tok/s |"
        ("iPad Pro 12.9 2022(6th gen)(M2,16G memory)", "iPadOS 16.5", vic, 33.2, 15.3, None),
        # line 20: "| macbook air 2022 (M2,24G memory) | macOS Ventura 13.4 | prefill: 31.7 tok/s, decode: 15.0 tok/s |"
        ("macbook air 2022 (M2,24G memory)", "macOS Ventura 13.4", vic, 31.7, 15.0, None),
        # line 21: "| rtx4080 16G | Windows 11 | prefill: 51.0 tok/s, decode: 37.8 tok/s |"
        ("rtx4080 16G", "Windows 11", vic, 51.0, 37.8, None),
    ]
    assert [r.source_lines.get("prefill_tps", r.source_lines.get("failed")) for r in runs] == \
        [9, 10, 11, 12, 18, 19, 20, 21]
    assert runs[4].values == {}  # a crash is no zero


def test_compact_and_verbose_layouts_are_two_runs():
    compact, verbose = parse(capture(COMPACT_VERBOSE))
    # line 6: "prefill: 216 tok/s, decode: 107.5 tok/s"
    assert compact.form == FORM_COMPACT and compact.values == {"prefill_tps": 216.0, "decode_tps": 107.5}
    assert compact.source_lines == {"prefill_tps": 6, "decode_tps": 6} and compact.counts == {}
    assert verbose.form == FORM_VERBOSE and verbose.failed is None
    # line 10: "throughput: 216.6 tok/s" under line 9 "-----------prefill-----------"
    assert verbose.values["prefill_tps"] == 216.6 and verbose.source_lines["prefill_tps"] == 10
    # line 11: "total tokens: 15 tok"
    assert verbose.counts["prompt_tokens"] == 15 and verbose.source_lines["prompt_tokens"] == 11
    # line 13: "throughput: 107.5 tok/s" under line 12 "------------decode------------"; line 14: "total tokens: 354 tok"
    assert verbose.values["decode_tps"] == 107.5 and verbose.counts["gen_tokens"] == 354
    assert verbose.source_lines["gen_tokens"] == 14


def test_vulkan_statistics_line_and_the_rocm_error_run():
    vulkan, rocm = parse(capture(RX6800XT))
    # line 6: "```Statistics: prefill: 48.7 tok/s, decode: 52.8 tok/s```" (the header's note quotes it too: not a run)
    assert vulkan.form == FORM_COMPACT and vulkan.values == {"prefill_tps": 48.7, "decode_tps": 52.8}
    assert vulkan.source_lines["prefill_tps"] == 6
    assert vulkan.identity["backend"] == "vulkan"  # line 5: "vulkan:" (the poster's label, said in a note)
    assert any("label" in n for n in vulkan.notes)
    # line 25: "[19:36:12] .../library_module.cc:87: TVMError: ROCM HIP Error: hipModuleLoadData(...) failed ..."
    assert rocm.form == FORM_ERROR and rocm.values == {}
    assert rocm.failed.startswith("[19:36:12] /home/user/src/mlc/mlc-llm/3rdparty/tvm/src/runtime/library_module.cc:87: "
                                  "TVMError: ROCM HIP Error: hipModuleLoadData")
    assert rocm.failed.endswith("failed with error: shared object initialization failed")
    assert rocm.source_lines["failed"] == 25
    # line 11: "./mlc_chat_cli --local-id GOAT-7B-Community-q4f16_1 --device rocm"
    assert rocm.identity["model"] == "GOAT-7B-Community-q4f16_1" and rocm.identity["backend"] == "rocm"
    # line 14: 'Use model library: ".../lib/Llama-2-7b-chat-hf-q4f16_1-rocm.so"'
    assert rocm.identity["model_lib"] == "Llama-2-7b-chat-hf-q4f16_1-rocm.so"


# --- forms not in the captures (written from the formats INDEX.md and mlc_llm's chat source document) ----


def test_webllm_decoding_form_with_four_decimals():
    (run,) = parse("stats: prefill: 5.3812 tok/s, decoding: 5.0799 tok/s\n")
    assert run.form == FORM_WEBLLM and run.values == {"prefill_tps": 5.3812, "decode_tps": 5.0799}


def test_na_is_absent_not_zero_and_token_counts_follow():
    runs = parse("prefill: N/A tok/s, decode: 12.5 tok/s\n"
                 "prompt tokens: 42, completion tokens: 128, total tokens: 170\n"
                 "prefill: N/A tok/s, decode: N/A tok/s\n")
    first, second = runs
    assert first.values == {"decode_tps": 12.5} and first.failed is None
    assert first.counts == {"prompt_tokens": 42, "gen_tokens": 128, "total_tokens": 170}
    assert first.source_lines["gen_tokens"] == 2
    assert second.values == {} and "N/A" in second.failed


def test_verbose_blocks_repeat_as_runs_and_crlf_is_fine():
    block = "---prefill---\r\nthroughput: 10.0 tok/s\r\ntotal tokens: 5 tok\r\n---decode---\r\nthroughput: 2.0 tok/s\r\n"
    first, second = parse(block + block)
    assert first.values == second.values == {"prefill_tps": 10.0, "decode_tps": 2.0}
    assert second.source_lines["prefill_tps"] == 7


def test_python_error_in_an_mlc_llm_session_is_a_failed_run():
    text = ("$ mlc_llm chat HF://mlc-ai/Qwen2.5-0.5B-Instruct-q4f16_1-MLC --device vulkan\n"
            "Traceback (most recent call last):\n"
            "tvm.error.InternalError: Check failed: (err == VK_SUCCESS) is false: VK_ERROR_DEVICE_LOST\n")
    (run,) = parse(text)
    assert run.failed.startswith("tvm.error.InternalError: Check failed") and run.identity["backend"] == "vulkan"
    assert run.identity["model"] == "HF://mlc-ai/Qwen2.5-0.5B-Instruct-q4f16_1-MLC" and run.source_lines["failed"] == 3


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
