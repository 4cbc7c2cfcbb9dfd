"""LiteRT-LM output parser on the captures in ../shared/fixtures/runtimes (see runtime_captures) and on
text written to the formats the source prints (io_types.cc, litert_lm_lib.cc, the Python CLI).

Expected values are read by hand from the capture; each names the line it comes from (header lines
counted), and `line()` checks that the line says so.
"""

from __future__ import annotations

import random

import pytest
from runtime_captures import all_captures, capture, line, require_runtimes

from suite.runtimes.outputs import TOOL_PARSERS, ToolRun, executorch, genie, litert_lm
from suite.runtimes.outputs._text import absl_duration, strip_prefixes

approx = pytest.approx
MIB = 2**20

CMAKE = "litert_lm_main_linux-host_cmake-doc-gemma3n-e2b-cpu.txt"
PIXEL8A = "litert_lm_main_pixel8a-tensorG3-gpu_v0.16.0-gemma4-e2b-benchmark-1024x256.txt"
S26 = "litert_lm_advanced_main_galaxy-s26-gpu_logcat-form-peak-mem-3iter-PROVENANCE-INCOMPLETE.txt"
JSONL = "litert_lm_advanced_main_pixel9pro-tensorG4_leaderboard-measurements-lm-jsonl.txt"
CLI = "litert-lm-cli_benchmark_i5-1035G1-laptop_header-only-truncated.txt"


def test_the_registry_names_this_parser():
    assert TOOL_PARSERS.get("litert-lm") is litert_lm.PARSER
    assert litert_lm.PARSER.name == "litert-lm"


# --- captures ----------------------------------------------------------------------------------------------

def test_cmake_doc_block_with_old_phase_names_and_total_init_time():
    text = capture(CMAKE)
    [run] = litert_lm.parse(text)
    assert (run.tool, run.form, run.failed) == ("litert-lm", "BenchmarkInfo", None)
    v, c, src = run.values, run.counts, run.source_lines
    assert "Executor initialization: 844.54 ms" in line(text, 17)
    assert v["init_s/executor_initialization"] == approx(0.84454) and src["init_s/executor_initialization"] == 17
    assert "Tokenizer initialization: 66.70 ms" in line(text, 18)
    assert v["init_s/tokenizer_initialization"] == approx(0.0667) and src["init_s/tokenizer_initialization"] == 18
    assert "Total init time: 911.25 ms" in line(text, 19)
    assert v["load_s"] == approx(0.91125) and src["load_s"] == 19
    assert "Time to first token: 2.40 s" in line(text, 21)
    assert v["ttft_s"] == approx(2.40) and src["ttft_s"] == 21
    assert "Processed 18 tokens in 2.311920273s" in line(text, 24)
    assert c["prompt_tokens"] == 18 and v["prefill_s"] == approx(2.311920273) and src["prefill_s"] == 24
    assert "Prefill Speed: 7.79 tokens/sec." in line(text, 25)
    assert v["prefill_tps"] == approx(7.79) and src["prefill_tps"] == 25
    assert "Processed 62 tokens in 5.53092314s" in line(text, 28)
    assert c["gen_tokens"] == 62 and v["decode_s"] == approx(5.53092314) and src["decode_s"] == 28
    assert "Decode Speed: 11.21 tokens/sec." in line(text, 29)
    assert v["decode_tps"] == approx(11.21) and src["decode_tps"] == 29
    assert (c["prefill_turns"], c["decode_turns"]) == (1, 1)
    assert "peak_rss_bytes" not in v  # no --report_peak_memory_footprint
    # line 6: "cmake/build/litert_lm_main --model_path=$model_path/gemma-3n-E2B-it-int4.litertlm --backend=cpu"
    assert run.identity["backend"] == "cpu" and run.identity["model"] == "gemma-3n-E2B-it-int4.litertlm"


def test_pixel8a_v0160_block_with_init_total_phase_and_text_to_token_ids():
    text = capture(PIXEL8A)
    [run] = litert_lm.parse(text)
    v, c, src = run.values, run.counts, run.source_lines
    assert run.failed is None
    assert "Init Phases (7):" in line(text, 169)  # lists 6: the mismatch is noted, not fatal
    assert any("Init Phases (7)" in n and "lists 6" in n for n in run.notes)
    phases = {  # lines 170-175
        "init_s/init_conversation": (0.00018, 170), "init_s/init_executor": (31.28299, 171),
        "init_s/init_llm_metadata": (0.00009, 172), "init_s/init_model_assets": (0.00005, 173),
        "init_s/init_tokenizer": (0.19579, 174), "init_s/init_total": (31.28354, 175),
    }
    for key, (secs, n) in phases.items():
        assert v[key] == approx(secs) and src[key] == n, key
    assert "- Init Total: 31283.54 ms" in line(text, 175)
    assert v["load_s"] == approx(31.28354) and src["load_s"] == 175  # the Init Total phase, not a sum
    assert "Time to first token: 0.99 s" in line(text, 177)
    assert v["ttft_s"] == approx(0.99)
    assert "Processed 1024 tokens in 872.643962ms duration." in line(text, 180)
    assert c["prompt_tokens"] == 1024 and v["prefill_s"] == approx(0.872643962) and src["prefill_s"] == 180
    assert "Prefill Speed: 1173.45 tokens/sec." in line(text, 181)
    assert v["prefill_tps"] == approx(1173.45) and src["prefill_tps"] == 181
    assert "Processed 256 tokens in 30.684078873s duration." in line(text, 184)
    assert c["gen_tokens"] == 256 and v["decode_s"] == approx(30.684078873)
    assert "Decode Speed: 8.34 tokens/sec." in line(text, 185)
    assert v["decode_tps"] == approx(8.34) and src["decode_tps"] == 185
    assert "Turn 1: 41.911us, 1024 tokens" in line(text, 188)
    assert v["text_to_token_ids_s"] == approx(41.911e-6) and src["text_to_token_ids_s"] == 188
    assert "Choose backend: gpu" in line(text, 7)  # absl-prefixed
    assert run.identity["backend"] == "gpu"
    assert run.identity["model"] == "litert-community_gemma-4-E2B-it-litert-lm_gemma-4-E2B-it.litertlm"  # line 19


def test_s26_logcat_turn_lines_of_three_iterations_and_peak_private_footprint():
    text = capture(S26)
    runs = litert_lm.parse(text)
    assert len(runs) == 3 and all(r.failed is None for r in runs)
    assert [r.counts["iteration"] for r in runs] == [1, 2, 3]
    # lines 27/29/31 (prefill) and 28/30/32 (decode), logcat-prefixed, no Speed lines: rates are derived
    expected = [(27, 0.264295677, 28, 5.841818748), (29, 0.272378958, 30, 10.026521663),
                (31, 0.265217656, 32, 10.734064475)]
    for run, (pl, ps, dl, ds) in zip(runs, expected):
        assert "Prefill Turn 1: Processed 1024 tokens" in line(text, pl)
        assert f"Processed 256 tokens in {ds}s" in line(text, dl)
        v, src = run.values, run.source_lines
        assert v["prefill_s"] == approx(ps) and src["prefill_s"] == pl
        assert v["prefill_tps"] == approx(1024 / ps)
        assert v["decode_s"] == approx(ds) and src["decode_s"] == dl
        assert v["decode_tps"] == approx(256 / ds)
        assert (run.counts["prompt_tokens"], run.counts["gen_tokens"]) == (1024, 256)
        assert "ttft_s" not in v and "load_s" not in v  # the capture kept only the turn lines
    # line 7: "... litert_lm_lib.cc:477] Peak private footprint: 686.082MB." (MB = MiB: bytes / 1024 / 1024)
    assert "Peak private footprint: 686.082MB." in line(text, 7)
    first = runs[0]
    assert first.values["peak_rss_bytes"] == round(686.082 * MIB) and first.source_lines["peak_rss_bytes"] == 7
    assert first.values["peak_private_footprint_bytes"] == round(686.082 * MIB)
    assert any("Peak private footprint" in n and "2^20" in n for n in first.notes)
    assert "peak_rss_bytes" not in runs[1].values


def test_leaderboard_jsonl_rows_one_run_each_and_null_peak_is_absent():
    text = capture(JSONL)
    cpu, gpu = litert_lm.parse(text)
    assert (cpu.form, gpu.form) == ("leaderboard-jsonl", "leaderboard-jsonl")
    # line 6, "metrics": {"prefill_tok_s": 139.08, "decode_tok_s": 3.343, "ttft_s": 8.597, "init_total_ms": 817.733,
    #                     "init_executor_ms": 817.194, "peak_mem_mb": null}
    assert '"prefill_tok_s": 139.08' in line(text, 6)
    assert cpu.values == approx({"prefill_tps": 139.08, "decode_tps": 3.343, "ttft_s": 8.597, "load_s": 0.817733,
                                 "init_s/init_total": 0.817733, "init_s/init_executor": 0.817194})
    assert set(cpu.source_lines.values()) == {6}
    assert cpu.counts == {"prompt_tokens": 1024, "gen_tokens": 256, "runs": 4}  # 5 iterations - 1 warm-up
    assert "peak_rss_bytes" not in cpu.values and any("peak_mem_mb is null" in n for n in cpu.notes)
    assert cpu.identity["device"] == "Pixel 9 Pro" and cpu.identity["backend"] == "cpu"
    assert cpu.identity["model"] == "litert-community/Qwen3-0.6B" and cpu.identity["version"] == "latest@2026-09-18"
    # line 7: "accelerator": "gpu", "delegate": "OpenCL", "metrics": {"prefill_tok_s": 591.084, "decode_tok_s": 21.88,
    #          "ttft_s": 1.78, "init_total_ms": 7376.28, "init_executor_ms": 7375.382, ...}
    assert '"decode_tok_s": 21.88' in line(text, 7)
    assert gpu.values == approx({"prefill_tps": 591.084, "decode_tps": 21.88, "ttft_s": 1.78, "load_s": 7.37628,
                                 "init_s/init_total": 7.37628, "init_s/init_executor": 7.375382})
    assert gpu.identity["backend"] == "gpu" and gpu.identity["delegate"] == "OpenCL"


def test_cli_capture_cut_before_its_results_is_one_clear_failed_run():
    text = capture(CLI)
    [run] = litert_lm.parse(text)
    assert run.form == "litert-lm-cli"
    assert run.failed == "no results: the text ends before '----- Results -----'"
    assert run.values == {} and run.counts == {}
    # lines 7-11: "Benchmarking model: gemma-4-E4B-it.litertlm (...)", "Backend : cpu", "... prefill: 256"
    assert "Number of tokens in prefill: 256" in line(text, 9)
    assert run.identity["model"] == "gemma-4-E4B-it.litertlm" and run.identity["backend"] == "cpu"
    assert run.identity["prefill_tokens"] == "256" and run.identity["max_num_tokens"] == "2048"


# --- detection over every capture ---------------------------------------------------------------------------

def test_the_captures_are_there():
    folder = require_runtimes()
    assert len(list(folder.glob("*.txt"))) >= 29


@pytest.mark.parametrize("name", all_captures())
def test_each_detect_fires_on_its_own_tools_captures_only(name):
    text = capture(name)
    fired = {p.name for p in (litert_lm.PARSER, executorch.PARSER, genie.PARSER) if p.detect(text)}
    own = {"litert": "litert-lm", "executorch": "executorch", "genie": "genie"}
    expected = {tool for prefix, tool in own.items() if name.startswith(prefix)}
    assert fired == expected, name


# --- robustness: cut and noisy versions of every capture ------------------------------------------------------

GARBAGE = [
    "BenchmarkInfo:", "  Init Phases (x):", "    - : ms", "    Prefill Turn 1: Processed tokens in duration.",
    "    Decode Turn 9: Processed 5 tokens in 1q2s duration.", "      Decode Speed: inf tokens/sec.",
    "  Prefill Turns (Total 99 turns):", "Peak private footprint: -1MB.", "PyTorchObserver {\"prompt_tokens\":",
    "PyTorchObserver {}", "\tPrompt Tokens: 3    Generated Tokens: 0", "Generated 0 tokens: 0.0 (seconds) Rate: nan",
    "Rate: \t-inf (tokens/second)", "\"type\": \"GenieDialog_query\",", "{\"header\": {", "Prompt processing: us",
    "Token generation: 1 us, nan tokens/s", "[", "{", "}", "]", "\x00\x1b[2K", "\r\r", "é" * 300, "9" * 400,
    "loadStart: null", "tokens/second: -", "----- Results -----", "Prefill speed: x tokens/s",
    "{\"metrics\": {\"prefill_tok_s\": null}, \"x\": 1, \"_tok_s\": 2}", "[{\"actualValue\": 1, \"metric\": 5}]",
    "10-07 16:10:31.763  8218  8218 I native  : ", "I0000 00:00:1.2 3 a.cc:1] ",
]
PARSERS = [litert_lm.parse, executorch.parse, genie.parse]


def _check(runs: list[ToolRun], text: str) -> None:
    assert isinstance(runs, list)
    n_lines = text.count("\n") + 1
    for r in runs:
        assert isinstance(r, ToolRun)
        assert not (r.failed or "").startswith("parser error"), r.failed
        for key in list(r.values) + list(r.counts):
            assert key in r.source_lines, key
            assert 1 <= r.source_lines[key] <= n_lines, key


@pytest.mark.parametrize("name", all_captures())
def test_cut_and_noisy_captures_never_raise(name):
    text = capture(name)
    lines = text.split("\n")
    rng = random.Random(name)
    variants = ["\n".join(lines[:k]) for k in range(0, len(lines), 7)]
    variants.append(text.replace("\n", "\r\n"))
    variants.append(text[: len(text) // 2])  # cut mid-line
    for _ in range(5):
        noisy = list(lines)
        for _ in range(8):
            noisy.insert(rng.randrange(len(noisy) + 1), rng.choice(GARBAGE))
        variants.append("\n".join(noisy))
    for variant in variants:
        for parse in PARSERS:
            _check(parse(variant), variant)


# --- the formats the source prints (no capture of these) --------------------------------------------------

def test_no_prefill_turns_recorded_is_a_failed_run():
    # the vivo X200 NPU run INDEX.md describes: the block says so, TTFT 0.00 s
    text = "\n".join([
        "BenchmarkInfo:", "  Init Phases (2):", "    - Init Executor: 1200.00 ms", "    - Init Total: 1201.00 ms",
        "-" * 50, "  Time to first token: 0.00 s", "-" * 50, "  Prefill Turns (Total 0 turns):",
        "    No prefill turns recorded.", "-" * 50, "  Decode Turns (Total 1 turns):",
        "    Decode Turn 1: Processed 12 tokens in 1m2.5s duration.", "      Decode Speed: 0.19 tokens/sec.", "-" * 50,
    ])
    [run] = litert_lm.parse(text)
    assert run.failed == "no prefill turns recorded"
    assert run.counts["prefill_turns"] == 0 and run.source_lines["prefill_turns"] == 9
    assert run.values["ttft_s"] == 0.0  # reported as printed; the generic layer judges it too
    assert run.values["decode_s"] == approx(62.5) and run.values["load_s"] == approx(1.201)


def test_old_total_colon_headers_and_no_decode_turns():
    # June-2025 io_types.cc: "Prefill Turns (Total: N):", "No decode turns recorded."
    text = "\n".join([
        "BenchmarkInfo:", "  Init Phases (1):", "    - Executor: 10.00 ms", "    Total init time: 10.00 ms",
        "-" * 50, "  Prefill Turns (Total: 1):", "    Prefill Turn 1: Processed 4 tokens in 2ms duration.",
        "      Prefill Speed: 2000.00 tokens/sec.", "-" * 50, "  Decode Turns (Total: 0):",
        "    No decode turns recorded.", "-" * 50, "-" * 50,
    ])
    [run] = litert_lm.parse(text)
    assert run.failed == "no decode turns recorded"
    assert run.values["prefill_tps"] == 2000.0 and run.values["load_s"] == approx(0.01)
    assert run.values["init_s/executor"] == approx(0.01)


def _block(prefill: str, decode: str, speed: str = "1.00") -> list[str]:
    return ["BenchmarkInfo:", "  Init Phases (1):", "    - Init Total: 500.00 ms", "-" * 50,
            "  Time to first token: 0.50 s", "-" * 50, "  Prefill Turns (Total 1 turns):",
            f"    Prefill Turn 1: Processed 8 tokens in {prefill} duration.", f"      Prefill Speed: {speed} tokens/sec.",
            "-" * 50, "  Decode Turns (Total 1 turns):", f"    Decode Turn 1: Processed 4 tokens in {decode} duration.",
            "      Decode Speed: 2.00 tokens/sec.", "-" * 50, "-" * 50]


def test_model_text_saying_benchmarkinfo_starts_no_run_and_iterations_are_kept():
    text = "\n".join(["Sure! BenchmarkInfo:", "is what the tool prints.", *_block("1s", "2s"),
                      *_block("1.5s", "2.5s"), "Peak system ram usage: 1024MB.",
                      "Peak private footprint: 1100MB."])
    runs = litert_lm.parse(text)
    assert len(runs) == 2
    assert [r.counts["iteration"] for r in runs] == [1, 2]
    assert [r.values["prefill_s"] for r in runs] == [1.0, 1.5]
    assert "peak_rss_bytes" not in runs[0].values
    # both printed: the peak RSS (ru_maxrss) is the RSS; the private footprint is kept beside it
    assert runs[1].values["peak_rss_bytes"] == 1024 * MIB
    assert runs[1].values["peak_private_footprint_bytes"] == 1100 * MIB
    assert any("ignored" in n for n in runs[-1].notes)


def test_a_block_printed_twice_is_one_run():
    text = "\n".join(_block("1s", "2s") + ["some log line"] + _block("1s", "2s"))
    [run] = litert_lm.parse(text)
    assert any("identical" in n for n in run.notes)


def test_multi_turn_rates_are_totals_and_a_restarted_numbering_is_a_new_run():
    text = "\n".join([
        "  Prefill Turns (Total 2 turns):", "    Prefill Turn 1: Processed 10 tokens in 1s duration.",
        "      Prefill Speed: 10.00 tokens/sec.", "    Prefill Turn 2: Processed 30 tokens in 1s duration.",
        "      Prefill Speed: 30.00 tokens/sec.", "    Prefill Turn 1: Processed 5 tokens in 500ms duration.",
    ])
    first, second = litert_lm.parse(text)
    assert first.values["prefill_tps"] == approx(20.0) and first.counts["prefill_turns"] == 2
    assert any("derived" in n for n in first.notes)
    assert second.values["prefill_tps"] == approx(10.0)


def test_cli_results_section():
    # python/litert_lm_cli/commands/benchmark.py: "%.2f tokens/s" speeds, "%.4f s" times
    text = "\r\n".join([
        "Benchmarking model: m.litertlm (/x/m.litertlm)", "Backend                    : gpu",
        "Number of tokens in prefill: 256", "Number of tokens in decode : 128", "Running warmup..",
        "Running iteration 1 of 3..", "Running iteration 2 of 3..", "Running iteration 3 of 3..",
        "----- Results -----", "Prefill speed:        512.25 tokens/s", "Decode speed:         20.50 tokens/s",
        "Init time:            1.2345 s", "Time to first token:  0.5001 s",
    ])
    [run] = litert_lm.parse(text)
    assert run.failed is None and run.form == "litert-lm-cli"
    assert run.values == {"prefill_tps": 512.25, "decode_tps": 20.5, "load_s": 1.2345, "ttft_s": 0.5001}
    assert run.source_lines["decode_tps"] == 11
    assert run.counts == {"runs": 3, "prompt_tokens": 256, "gen_tokens": 128}


def test_cli_error_names_the_exception():
    text = "\n".join(["Benchmarking model: m (/m.litertlm)", "Backend                    : npu",
                      "An error occurred during benchmarking", "Traceback (most recent call last):",
                      "  File \"x.py\", line 1, in <module>", "RuntimeError: NPU accelerator not found"])
    [run] = litert_lm.parse(text)
    assert run.failed == "An error occurred during benchmarking: RuntimeError: NPU accelerator not found"


def test_leaderboard_row_with_a_peak_and_a_cut_row():
    full = ('{"model": "m", "runtime": "litert-lm", "accelerator": "cpu", "metrics": {"prefill_tok_s": 1.5, "decode_tok_s": 2, '
            '"ttft_s": 0.1, "init_total_ms": 100, "peak_mem_mb": 512.5}, "status": "measured"}')
    cut = '{"model": "m2", "file": "m2.litertlm", "accelerator": "gpu", "metrics": {"prefill_tok_s": 9.0, "decode_tok_s": 3.0}, "iterat'
    a, b = litert_lm.parse(full + "\n" + cut)
    assert a.values["peak_rss_bytes"] == round(512.5 * MIB)
    assert b.values == {"prefill_tps": 9.0, "decode_tps": 3.0} and b.identity["model"] == "m2"
    assert any("not complete" in n for n in b.notes)


def test_a_log_that_dies_before_any_block_is_a_failed_run():
    text = "\n".join(["I0000 00:00:1786953390.458639   25473 litert_lm_lib.cc:499] Choose backend: npu",
                      "F0000 00:00:1786953391.1   25473 litert_lm_lib.cc:700] Check failed: engine.ok() "
                      "Failed to create engine: NOT_FOUND"])
    assert litert_lm.detect(text)
    [run] = litert_lm.parse(text)
    assert run.failed.startswith("Check failed") and run.identity["backend"] == "npu"


@pytest.mark.parametrize("text,secs", [("819.9514ms", 0.8199514), ("8.7038005s", 8.7038005), ("41.911us", 41.911e-6),
                                       ("1m2.5s", 62.5), ("2h0m", 7200.0), ("0", 0.0), ("250ns", 250e-9),
                                       ("-1.5s", -1.5)])
def test_absl_durations(text, secs):
    assert absl_duration(text) == approx(secs)


@pytest.mark.parametrize("text", ["", "ms", "1.2", "1q2s", "s1", "1s2"])
def test_not_absl_durations(text):
    assert absl_duration(text) is None


def test_log_prefixes_are_stripped():
    assert strip_prefixes("10-07 16:10:31.749  8218  8218 I native  :     Prefill Turn 1: x") == "    Prefill Turn 1: x"
    assert strip_prefixes("10-07 16:10:31.763  8218  8218 I native  : I0000 00:00:1791357031.763486    8218 "
                          "litert_lm_lib.cc:477] Peak private footprint: 686.082MB.") == \
        "Peak private footprint: 686.082MB."
    assert strip_prefixes("I/native  ( 8218): BenchmarkInfo:") == "BenchmarkInfo:"


def test_a_leaderboard_row_of_another_engine_is_not_litert():
    row = '{"model": "m", "runtime": "llama.cpp", "metrics": {"prefill_tok_s": 1.0, "decode_tok_s": 2.0}}'
    assert not litert_lm.detect(row) and litert_lm.parse(row) == []


def test_a_second_block_whose_header_was_lost_is_its_own_run():
    text = "\n".join(_block("1s", "2s") + _block("3s", "4s")[1:])  # the second "BenchmarkInfo:" line is missing
    first, second = litert_lm.parse(text)
    assert (first.values["prefill_s"], second.values["prefill_s"]) == (1.0, 3.0)
    assert second.values["ttft_s"] == 0.5 and second.values["load_s"] == 0.5
