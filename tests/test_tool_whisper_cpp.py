"""suite.runtimes.outputs.whisper_cpp on every whisper.cpp capture in the shared fixtures/runtimes folder
(runtime_captures finds it). Expected values are read by hand from the capture; each names its line
("line 27" = line 27 of the file, header lines counted)."""

from __future__ import annotations

import time

import pytest
from runtime_captures import LONG_LINES, capture, capture_names, check_run_shape, cut_and_garbled, expected_tool

from suite.runtimes.outputs import TOOL_PARSERS
from suite.runtimes.outputs.whisper_cpp import (
    FORM_BENCH,
    FORM_BENCH_ALL,
    FORM_LOG,
    FORM_TIMINGS,
    PARSER,
    detect,
    parse,
)

BENCH_ALL = "whisper-bench-all_rpi4-rpi3b_2022-12-markdown-table.txt"
BENCH_2022 = "whisper-bench_arm64-neon-blas_doc-2022-small.en.txt"
BENCH_MODERN = "whisper-bench_unknown-host-openblas_2025-05-modern-format.txt"
ADRENO = "whisper-cli_snapdragon8elite-adreno830-opencl_2026-03-assert-error-truncated.txt"
IOS = "whisper-ios-app_iphone_2023-05-total-time-anomaly.txt"
ROCK5B = "whisper-main_rock5b-rk3588_2022-10-jfk-truncated.txt"
COMMIT = "aa6adda26e1ee9843dddb013890e3312bee52cfe"


def test_the_registry_names_this_parser():
    assert TOOL_PARSERS.get("whisper.cpp") is PARSER and PARSER.name == "whisper.cpp"


@pytest.mark.parametrize("name", capture_names())
def test_detect_fires_on_whisper_cpp_output_only(name):
    assert detect(capture(name)) is (expected_tool(name) == "whisper.cpp")


def test_bench_all_table_one_run_per_row():
    runs = parse(capture(BENCH_ALL))
    assert {r.form for r in runs} == {FORM_BENCH_ALL} and len(runs) == 8
    rows = [(r.source_lines["asr_load_s"], r.identity["cpu"], r.identity["config"], r.identity["model"],
             r.values["asr_load_s"], r.values["asr_encode_s"]) for r in runs]
    pi4, pi3 = "Raspberry Pi 4 - 2GB", "Raspberry Pi 3B+ - 1GB"
    assert rows == [
        (7, pi4, "NEON", "tiny.en", 0.735, 9.486),  # line 7: "| ... |  NEON | tiny.en | 4 | 735 | 9486 | aa6add... |"
        (8, pi4, "NEON", "base.en", 0.950, 25.402),  # line 8: "... | base.en | 4 | 950 | 25402 | ..."
        (9, pi4, "NEON BLAS", "tiny.en", 0.752, 9.178),  # line 9: "... NEON BLAS | tiny.en | 4 | 752 | 9178 | ..."
        (10, pi4, "NEON BLAS", "base.en", 0.969, 19.642),  # line 10: "... | base.en | 4 | 969 | 19642 | ..."
        (16, pi3, "NEON", "tiny.en", 1.331, 22.573),  # line 16: "| Raspberry Pi 3B+ - 1GB | ... | 1331 | 22573 | ..."
        (17, pi3, "NEON", "base.en", 5.886, 58.733),  # line 17: "... | 5886 | 58733 | ..."
        (18, pi3, "NEON BLAS", "tiny.en", 1.333, 21.184),  # line 18: "... | 1333 | 21184 | ..."
        (19, pi3, "NEON BLAS", "base.en", 4.605, 47.877),  # line 19: "... | 4605 | 47877 | ..."
    ]
    assert all(r.identity["os"] == "OpenVoiceOS" and r.identity["threads"] == "4" and r.identity["commit"] == COMMIT
               for r in runs)
    assert all(r.failed is None for r in runs)


def test_whisper_bench_2022_per_layer_form():
    (run,) = parse(capture(BENCH_2022))
    assert run.form == FORM_BENCH and run.failed is None  # line 6: "$ ./build/bin/whisper-bench -m ... -t 4"
    assert run.values == pytest.approx({
        "asr_load_s": 0.24082,  # line 27: "whisper_print_timings:     load time =   240.82 ms"
        "asr_mel_s": 0.0,  # line 28: "mel time =     0.00 ms"
        "asr_sample_s": 0.0,  # line 29: "sample time =     0.00 ms"
        "asr_encode_s": 1.06221,  # line 30: "encode time =  1062.21 ms / 88.52 ms per layer"
        "asr_decode_s": 0.0,  # line 31: "decode time =     0.00 ms / 0.00 ms per layer"
        "asr_total_s": 1.30304,  # line 32: "total time =  1303.04 ms"
    })
    assert run.source_lines["asr_encode_s"] == 30 and run.source_lines["asr_total_s"] == 32
    assert run.counts == {}  # the 2022 form prints no run counts
    assert any("per layer" in n and "30, 31" in n for n in run.notes)
    # line 20: "whisper_model_load: type          = 3" (3 = small); line 25: "model size  =   464.44 MB"
    assert run.identity["model_type"] == "small" and run.identity["model_size"] == "464.44 MB"
    # line 8: "whisper_model_load: loading model from './models/ggml-small.en.bin'"
    assert run.identity["model_file"] == "ggml-small.en.bin"
    # line 34: "system_info: n_threads = 4 | AVX2 = 0 | ... | BLAS = 1 | " (after the timings)
    assert run.identity["threads"] == "4" and "NEON = 1" in run.identity["system_info"]
    assert any("wall time since" in n for n in run.notes)
    assert not any("anomaly" in n for n in run.notes)  # 240.82 + 1062.21 = 1303.03 of 1303.04 ms


def test_whisper_bench_modern_runs_fields():
    (run,) = parse(capture(BENCH_MODERN))
    assert run.form == FORM_TIMINGS and run.failed is None  # only the block: nothing says whisper-bench
    assert run.values == pytest.approx({
        "asr_load_s": 0.08995,  # line 5: "load time =    89.95 ms"
        "asr_mel_s": 0.0,  # line 7: "mel time =     0.00 ms"
        "asr_sample_s": 0.0,  # line 8: "sample time =     0.00 ms /     1 runs (    0.00 ms per run)"
        "asr_encode_s": 1.34319,  # line 9: "encode time =  1343.19 ms /     1 runs ( 1343.19 ms per run)"
        "asr_decode_s": 1.17716,  # line 10: "decode time =  1177.16 ms /   256 runs (    4.60 ms per run)"
        "asr_batchd_s": 0.72740,  # line 11: "batchd time =   727.40 ms /   320 runs (    2.27 ms per run)"
        "asr_prompt_s": 6.34740,  # line 12: "prompt time =  6347.40 ms /  4096 runs (    1.55 ms per run)"
        "asr_total_s": 9.59670,  # line 13: "total time =  9596.70 ms"
    })
    assert run.counts == {
        "fallbacks_p": 0, "fallbacks_h": 0,  # line 6: "fallbacks =   0 p /   0 h"
        "sample_runs": 1, "encode_runs": 1, "decode_runs": 256, "batchd_runs": 320, "prompt_runs": 4096,
    }
    assert run.source_lines["prompt_runs"] == 12 and run.source_lines["fallbacks_h"] == 6


def test_ios_app_total_time_anomaly_is_noted():
    (run,) = parse(capture(IOS))
    assert run.form == FORM_TIMINGS and run.failed is None
    # line 11: "whisper_print_timings:    total time = 144586.16 ms"
    assert run.values["asr_total_s"] == pytest.approx(144.58616)
    # lines 5-10: load 371.27 + mel 308.81 + sample 3.01 + encode 1937.06 + decode 135.78 = 2755.93 ms
    parts = sum(run.values[k] for k in ("asr_load_s", "asr_mel_s", "asr_sample_s", "asr_encode_s", "asr_decode_s"))
    assert parts == pytest.approx(2.75593)
    (anomaly,) = [n for n in run.notes if n.startswith("anomaly")]
    assert "144.59 s" in anomaly and "2.76 s" in anomaly
    # line 8: "sample time = 3.01 ms / 119 runs"; line 9: "encode ... / 4 runs"; line 10: "decode ... / 113 runs"
    assert (run.counts["sample_runs"], run.counts["encode_runs"], run.counts["decode_runs"]) == (119, 4, 113)
    assert (run.counts["fallbacks_p"], run.counts["fallbacks_h"]) == (0, 0)  # line 6


def test_rock5b_main_cut_after_sample_time_gives_partial_values():
    (run,) = parse(capture(ROCK5B))
    assert run.form == FORM_TIMINGS and run.failed is None
    assert run.values == pytest.approx({
        "asr_load_s": 0.31874,  # line 31: "whisper_print_timings:     load time =   318.74 ms"
        "asr_mel_s": 0.12362,  # line 32: "mel time =   123.62 ms"
        "asr_sample_s": 0.0,  # line 33: "sample time =     0.00 ms"
    })
    assert any("cut short" in n and "line 33" in n for n in run.notes)
    # line 18: "whisper_model_load: type          = 2" (2 = base); line 23: "model size  =   140.54 MB"
    assert run.identity["model_type"] == "base" and run.identity["model_size"] == "140.54 MB"
    # line 25: "main: processing 'samples/jfk.wav' (176000 samples, 11.0 sec), 4 threads, ..."
    assert run.identity["audio_file"] == "samples/jfk.wav" and run.identity["audio_s"] == "11.0"
    assert run.identity["threads"] == "4" and run.identity["model_file"] == "ggml-base.en.bin"  # line 6


def test_adreno_opencl_run_without_timings_is_failed():
    (run,) = parse(capture(ADRENO))
    assert run.form == FORM_LOG and run.values == {} and run.counts == {}
    assert run.failed.startswith("no timings")  # the capture stops in the OpenCL device dump, before the assert
    # line 9: "whisper_init_from_file_with_params_no_state: loading model from '/sdcard/Download/ggml-medium-q8_0.bin'"
    assert run.identity["model_file"] == "ggml-medium-q8_0.bin"
    # lines 10-12: "use gpu    = 1", "flash attn = 1", "gpu_device = 0"
    assert (run.identity["use_gpu"], run.identity["flash_attn"], run.identity["gpu_device"]) == ("1", "1", "0")
    # line 16: "ggml_opencl: device: 'QUALCOMM Adreno(TM) 830 (OpenCL 3.0 Adreno(TM) 830)'"
    assert run.identity["backend"] == "OpenCL"
    assert run.identity["device"] == "QUALCOMM Adreno(TM) 830 (OpenCL 3.0 Adreno(TM) 830)"


# --- forms not in the captures (written from the formats INDEX.md and bench-all.sh document) ------------


def test_the_assert_the_adreno_reporter_saw_is_the_reason():
    text = capture(ADRENO) + "e\n/whisper.cpp/ggml/src/ggml-opencl/ggml-opencl.cpp:5040: GGML_ASSERT(M % 4 == 0) failed\n"
    (run,) = parse(text)
    assert run.failed.endswith("GGML_ASSERT(M % 4 == 0) failed") and run.source_lines["failed"] == 27


def test_logcat_prefixed_block_and_modern_model_type():
    text = ("I/whisper( 999): whisper_model_load: type          = 4 (medium)\r\n"
            "I/whisper( 999): whisper_print_timings:   encode time =  2000.00 ms /     2 runs ( 1000.00 ms per run)\r\n"
            "I/whisper( 999): whisper_print_timings:    total time =  2500.00 ms\r\n")
    assert detect(text)
    (run,) = parse(text)
    assert run.identity["model_type"] == "medium" and run.counts["encode_runs"] == 2
    assert run.values["asr_total_s"] == pytest.approx(2.5)


def test_modern_bench_all_rows_are_per_run():
    text = ("| CPU | OS | Config | Model | Th | FA | Enc. | Dec. | Bch5 | PP | Commit |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
            "| <todo> | <todo> |  NEON BLAS |  tiny | 4 | 1 | 120.50 | 1.20 | 0.50 | 0.10 | 1234abc |\n")
    (run,) = parse(text)
    assert run.values == pytest.approx({"asr_encode_per_run_s": 0.1205, "asr_decode_per_run_s": 0.0012,
                                        "asr_batchd_per_run_s": 0.0005, "asr_prompt_per_run_s": 0.0001})
    assert "cpu" not in run.identity and run.identity["flash_attn"] == "1"


def test_two_blocks_are_two_runs():
    block = "whisper_print_timings:     load time =   10.00 ms\nwhisper_print_timings:    total time =   20.00 ms\n"
    first, second = parse(block + block)
    assert first.source_lines["asr_load_s"] == 1 and second.source_lines["asr_load_s"] == 3


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
