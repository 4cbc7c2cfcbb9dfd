"""The verbatim captures of other engines' output (tests/fixtures/runtimes, copied from the shared
fixtures/runtimes with INDEX.md; $EDGEBENCH_SHARED/fixtures/runtimes instead when set), for the tool
parsers' tests (suite.runtimes.outputs).
Line numbers in the tests count every line of the file, its `# source:` ... `# note:` header included, as
an editor shows it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from suite.runtimes.outputs import ToolRun

#: each capture file's tool, by the naming rule of INDEX.md (`<tool>_<device>_<what>.txt`); llama-bench
#: tables are suite.importers.llama_bench's, not a tool parser's
_PREFIXES = (
    ("llama-bench", None),
    ("llama-", "llama.cpp"),
    ("llama_", "llama.cpp"),
    ("mlc", "mlc"),
    ("webllm", "mlc"),
    ("whisper", "whisper.cpp"),
    ("litert", "litert-lm"),
    ("executorch", "executorch"),
    ("genie", "genie"),
)

#: the 29 captures these tests were written against (more may arrive: they are checked by the rule above)
KNOWN = (
    "executorch_android-benchmark-app_galaxy-s24plus-sm-s926u1_2024-09-results-json-truncated.txt",
    "executorch_gemma3_e2e_runner_cuda-host_2025-doc-zero-load-ms.txt",
    "executorch_llama_main_android-phone_armlp-llama3.2-1b-kleidiai.txt",
    "executorch_llama_main_galaxy-s24-vulkan_2025-10-doc-llama3.2.txt",
    "executorch_llama_main_galaxy-s26-sm8850_v1.5.1-qwen3-0.6b-short-chat_stderr.txt",
    "executorch_llama_main_galaxy-s26-sm8850_v1.5.1-qwen3-0.6b-short-chat_stdout.txt",
    "executorch_llama_main_mac-m4max_v1.5.1-release-no-etlog_stdout.txt",
    "executorch_llamademo-benchmark-activity_android-phone_2024-07-results-txt.txt",
    "genie-t2t-run_galaxy-s23ultra-sd8gen2_libgenie1.0-genaitransformer-console.txt",
    "genie-t2t-run_xiaomi15-sd8elite_qairt2.36-profile-json-PROVENANCE-INCOMPLETE.txt",
    "litert-lm-cli_benchmark_i5-1035G1-laptop_header-only-truncated.txt",
    "litert_lm_advanced_main_galaxy-s26-gpu_logcat-form-peak-mem-3iter-PROVENANCE-INCOMPLETE.txt",
    "litert_lm_advanced_main_pixel9pro-tensorG4_leaderboard-measurements-lm-jsonl.txt",
    "litert_lm_main_linux-host_cmake-doc-gemma3n-e2b-cpu.txt",
    "litert_lm_main_pixel8a-tensorG3-gpu_v0.16.0-gemma4-e2b-benchmark-1024x256.txt",
    "llama-bench_snapdragon-htp-v79_doc-b6733.txt",
    "llama-cli_orangepi3b-rk3566_2024-12-llama-perf.txt",
    "llama-cli_pixel8a-tensorG3_b8999-new-ui-qwen3-0.6b.txt",
    "llama-completion_snapdragon-htp-v79_doc-llama3.2-1b-hexagon.txt",
    "llama-llava-cli_snapdragon8gen1-phone_2024-01-llama-print-timings.txt",
    "mlc-chat-app_iphone13pro-and-others_2023-05-stats-table.txt",
    "mlc-chat_runtime-stats_unknown-desktop_2023-10-compact-vs-verbose.txt",
    "mlc_chat_cli_rx6800xt-desktop_2023-08-vulkan-stats-and-rocm-error-truncated.txt",
    "whisper-bench-all_rpi4-rpi3b_2022-12-markdown-table.txt",
    "whisper-bench_arm64-neon-blas_doc-2022-small.en.txt",
    "whisper-bench_unknown-host-openblas_2025-05-modern-format.txt",
    "whisper-cli_snapdragon8elite-adreno830-opencl_2026-03-assert-error-truncated.txt",
    "whisper-ios-app_iphone_2023-05-total-time-anomaly.txt",
    "whisper-main_rock5b-rk3588_2022-10-jfk-truncated.txt",
)

#: lines no tool prints, for the robustness tests: control bytes, half-formed timing and stats lines,
#: table shapes, absurd numbers
GARBAGE = (
    "\x00\x08\x08\r\x1b[31m|||\x1b[0m",
    "llama_perf_context_print: prompt eval time =  ms /  tokens (",
    "llama_perf_context_print:        eval time = 0.00 ms /     0 runs   (    nan ms per token,      nan tokens per second)",
    "llama_print_timings: prompt eval time = 0.00 ms / 5 tokens ( 0.00 ms per token, inf tokens per second)",
    "whisper_print_timings:   encode time = 1e999 ms / 0 runs ( inf ms per run)",
    "whisper_print_timings:     fallbacks = 99999999999999999999999 p / h",
    "prefill: N/A tok/s, decode: N/A tok/s",
    "prefill: 1e400 tok/s, decoding: -0 tok/s",
    "| CPU | OS | Config | Model | Th | Load | Enc. | Commit |",
    "| a | b | c | d | e | f | g | h |",
    "| x | y |",
    "| -- |",
    "-----------prefill-----------",
    "throughput: abc tok/s",
    "total tokens: tok",
    "[ Prompt: t/s | Generation: 1.5 t/s ]",
    "common_memory_breakdown_print: |   - Host | 1 = 2 + |",
    "build: (",
    "system_info: ",
    "whisper_model_load: type          = 9 (",
    "I/whisper( 1234): whisper_print_timings:    total time = 1.00 ms",
    "9" * 400,
    "\ufeff\u2028\u00a0 TVMError: Check failed",
)


#: lines that made a regex or a loop quadratic once (a 20 000-character word took 19 s): each must parse
#: in linear time
LONG_LINES = (
    "a" * 50_000,
    "x:" * 25_000,
    "a" * 25_000 + "\b" * 25_000,
    "| a " * 12_000 + "|",
    "prefill: 1" * 5_000,
    "9." * 25_000,
    "I/" + "a" * 50_000,
)


def expected_tool(name: str) -> str | None:
    """The tool a capture's file name says it holds (None: llama-bench tables and unknown names)."""
    for prefix, tool in _PREFIXES:
        if name.startswith(prefix):
            return tool
    return None


def runtimes_dir() -> Path:
    """The folder of captures: $EDGEBENCH_SHARED/fixtures/runtimes when set (other captures to check the
    parsers on), else tests/fixtures/runtimes (verbatim copies of ../shared/fixtures/runtimes, committed)."""
    if os.environ.get("EDGEBENCH_SHARED"):
        folder = Path(os.environ["EDGEBENCH_SHARED"]) / "fixtures" / "runtimes"
    else:
        folder = Path(__file__).resolve().parent / "fixtures" / "runtimes"
    if folder.is_dir():
        return folder
    reason = f"no captures at {folder}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: the capture tests must run)", pytrace=False)
    pytest.skip(reason)


def capture_names() -> list[str]:
    """Every capture: the known ones and any found in the folder now (for parametrizing at collection)."""
    names = set(KNOWN)
    try:
        names |= {p.name for p in runtimes_dir().glob("*.txt")}
    except BaseException:  # noqa: BLE001 - pytest.skip outside a test: the known names still parametrize
        pass
    return sorted(names)


def capture(name: str) -> str:
    """The capture's text, byte for byte (CR and control characters kept), header lines included."""
    return (runtimes_dir() / name).read_bytes().decode("utf-8")


def cut_and_garbled(text: str) -> list[str]:
    """The text cut after every 7th line (and in the middle of that line), and with garbage lines inserted
    at every 7th line."""
    rows = text.split("\n")
    variants = []
    for cut in range(0, len(rows) + 1, 7):
        variants.append("\n".join(rows[:cut]))
        if cut < len(rows):
            variants.append("\n".join(rows[:cut] + [rows[cut][: len(rows[cut]) // 2]]))
    garbled = list(rows)
    for i, pos in enumerate(range(len(rows), -1, -7)):
        garbled.insert(pos, GARBAGE[i % len(GARBAGE)])
    variants.append("\n".join(garbled))
    variants.append("\n".join(g for pair in zip(rows, GARBAGE * (len(rows) // len(GARBAGE) + 1)) for g in pair))
    variants.append(text.replace("\n", "\r\n"))
    return variants


def check_run_shape(run: ToolRun, text: str) -> None:
    """A ToolRun as the contract says: typed fields, and every source line inside the text."""
    assert isinstance(run, ToolRun)
    n_lines = text.count("\n") + 1
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in run.values.items()), run.values
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in run.counts.items()), run.counts
    assert all(isinstance(v, str) for v in run.identity.values()), run.identity
    assert all(1 <= v <= n_lines for v in run.source_lines.values()), (run.source_lines, n_lines)
    assert run.failed is None or (isinstance(run.failed, str) and run.failed)


def require_runtimes() -> Path:
    """The captures' folder, else a loud skip (a failure under CI=true)."""
    return runtimes_dir()


def all_captures() -> list[str]:
    """Every capture's file name in the folder now (empty when it is absent: the tests using it then skip)."""
    try:
        folder = runtimes_dir()
    except BaseException:  # noqa: BLE001 - pytest.skip outside a test: nothing to parametrize
        return []
    return sorted(p.name for p in folder.glob("*.txt"))


def line(text: str, n: int) -> str:
    """Line `n` (1-based) of `text`."""
    return text.split("\n")[n - 1]
