"""The llama-bench parser on every captured output in tests/fixtures/llama-bench/.

Every expected value below was read by hand from the fixture file; `L<n>` names the line
(1-based, as `cat -n` shows it, the fixture's `# source:` header lines included) that the
value comes from. The parser is given the whole file: the header lines are prose to it.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest

from suite.runtimes.llama_bench_output import (
    BenchRow,
    align,
    parse_llama_bench,
    parse_params,
    parse_size,
    parse_test_name,
    parse_ts,
    split_model_type,
)

FIXTURES = Path(__file__).parent / "fixtures" / "llama-bench"
ALL = sorted(p.name for p in FIXTURES.iterdir() if p.name != "INDEX.md")
GiB, MiB = 1024**3, 1024**2
HEADER_RE = re.compile(r"^# (source|device|format|llama\.cpp build|note):")


def parse(name: str):
    return parse_llama_bench((FIXTURES / name).read_text(encoding="utf-8"), source=name)


def at(res, line_no: int) -> BenchRow:
    rows = [r for r in res.rows if r.line_no == line_no]
    assert len(rows) == 1, f"no single row starting at line {line_no}: {[r.line_no for r in res.rows]}"
    return rows[0]


def test_every_fixture_is_covered_by_an_expectation():
    assert set(ALL) == set(EXPECTED), set(ALL) ^ set(EXPECTED)


# file -> (format, number of rows)
EXPECTED = {
    "aarch64-ascend-cann_error_b5002_md.txt": ("md", 0),
    "adreno-840_opencl_b9050_qwen3-1.7b-f16_md.txt": ("md", 2),
    "android-snapdragon_qnn-backend_llama32-1b-f16_md.txt": ("md", 2),
    "apple-m5_metal_b9430_qwen35-9b_md.txt": ("md", 2),
    "i5-4278u_macbookpro2014_cpu_b10334_llama32-3b_md.txt": ("md", 4),
    "i7-1185g7_iklcpp_b3643_rtr_md.txt": ("md", 8),
    "jetson-agx-orin_cuda_b4675_qwen2-32b_indented_md.txt": ("md", 4),
    "m4-pro_macos_cpu_b4621_llama32-1b_threads_md.txt": ("md", 6),
    "oracle-ampere-a1_neoverse-n1_llamacpp-vs-iklcpp_md.txt": ("md", 96),
    "ortgenai_benchmark_e2e_phi2_int4_cuda_rtx4090_md.txt": ("md", 0),
    "power10-ppc64le_cpu_b6833_granite-hybrid-3b_md.txt": ("md", 6),
    "pr2626_first-llama-bench_cuda_md_2023-08.txt": ("md", 2),
    "raspberry-pi4b_cpu-openblas_b6726_gemma3-270m-q4km.json": ("json", 3),
    "raspberry-pi5_rx7900xt_vulkan_b6552_qwen2.5-14b_md.txt": ("md", 4),
    "readme_b1275_2024edit_header_value_mismatch.csv": ("csv", 2),
    "readme_b1275_cpu_threads_old-test-names_md.txt": ("md", 11),
    "readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.csv": ("csv", 2),
    "readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.json": ("json", 2),
    "readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.sql": ("sql", 2),
    "readme_b5163_ryzen7800x3d_rtx4080_cuda_qwen2.5-7b.csv": ("csv", 2),
    "readme_b5163_ryzen7800x3d_rtx4080_cuda_qwen2.5-7b.json": ("json", 2),
    "rock5b_rk3588_iklcpp_b3648_bitnet_md.txt": ("md", 16),
    "rock5b_rk3588_mainline_bert-embd_md.txt": ("md", 8),
    "rtx3080_cuda_b3677_llama-115m_ngl0-99_md.txt": ("md", 4),
    "sifive-p550-riscv_rx580_vulkan_b4696_llama32-3b_md.txt": ("md", 4),
    "snapdragon-cpu_threadpool_b3573_llama3-314m-q4_0_4_8_md.txt": ("md", 6),
    "strixhalo_rocm_b6865_llama32-1b_depth-sweep.jsonl": ("jsonl", 10),
    "strixhalo_vulkan-rpc_b6118_gpt-oss-20b_subset.jsonl": ("jsonl", 6),
    "xeon-e5-2690v3_iklcpp_b3599_deepseek-r1-671b_fa-off.json": ("json", 2),
    "xeon-e5-2690v3_iklcpp_deepseek-r1-671b_threads_md.txt": ("md", 8),
}
# files whose every line is expected to be usable or ignorable: no problems reported
CLEAN = set(EXPECTED) - {
    "aarch64-ascend-cann_error_b5002_md.txt",
    "ortgenai_benchmark_e2e_phi2_int4_cuda_rtx4090_md.txt",
    "readme_b1275_2024edit_header_value_mismatch.csv",
}


@pytest.mark.parametrize("name", ALL)
def test_format_and_row_count(name):
    res = parse(name)
    fmt, n = EXPECTED[name]
    assert res.format == fmt
    assert len(res.rows) == n
    if name in CLEAN:
        assert res.problems == []
    for r in res.rows:
        assert math.isfinite(r.avg_ts) and r.avg_ts > 0
        assert r.kind in ("pp", "tg", "pp+tg")
        assert r.format == fmt


@pytest.mark.parametrize("name", ALL)
def test_stripping_the_fixture_header_changes_nothing_but_line_numbers(name):
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    k = 0
    while k < len(lines) and HEADER_RE.match(lines[k]):
        k += 1
    body = parse_llama_bench("\n".join(lines[k:]))
    full = parse(name)
    assert [(r.test, r.avg_ts, r.line_no + 0) for r in body.rows] == [
        (r.test, r.avg_ts, r.line_no - k) for r in full.rows
    ]


# --- markdown ----------------------------------------------------------------------------------


def test_error_log_has_no_rows_and_names_the_error_line():
    res = parse("aarch64-ascend-cann_error_b5002_md.txt")
    assert res.rows == [] and not res.ok
    assert res.headers == 1  # L7: the table header was printed before the abort
    assert [p.line_no for p in res.error_lines] == [9]  # L9: ".../ggml-cann.cpp:63: CANN error"
    assert "CANN error" in res.error_lines[0].line
    assert any(p.line_no == 9 for p in res.problems)


def test_adreno_opencl_f16():
    res = parse("adreno-840_opencl_b9050_qwen3-1.7b-f16_md.txt")
    r = at(res, 8)  # L8: | qwen3 1.7B F16 | 3.78 GiB | 2.03 B | OpenCL | 99 | pp512 | 394.43 ± 24.45 |
    assert (r.kind, r.n_prompt, r.n_gen, r.n_depth) == ("pp", 512, 0, 0)
    assert (r.avg_ts, r.stddev_ts) == (394.43, 24.45)
    assert r.model_type == "qwen3 1.7B F16" and r.arch == "qwen3" and r.size_label == "1.7B" and r.quant == "F16"
    assert r.size_bytes == round(3.78 * GiB) and not r.size_exact
    assert r.params == 2_030_000_000
    assert r.backends == ("OpenCL",) and r.ngl == 99
    assert (r.build_commit, r.build_number) == ("f79069d9d", 9050)  # L11: build: f79069d9d (9050)
    r = at(res, 9)  # L9: tg128 | 13.60 ± 0.08
    assert (r.kind, r.n_gen, r.avg_ts, r.stddev_ts) == ("tg", 128, 13.60, 0.08)


def test_qnn_fork_backend_no_build_line():
    res = parse("android-snapdragon_qnn-backend_llama32-1b-f16_md.txt")
    r = at(res, 8)  # L8: | llama 1B F16 | 2.30 GiB | 1.24 B | QNN | 99 | pp512 | 18.46 ± 1.73 |
    assert r.backends == ("QNN",) and r.params == 1_240_000_000 and r.avg_ts == 18.46
    assert r.build_commit is None and r.build_number is None
    assert at(res, 9).avg_ts == 0.70 and at(res, 9).stddev_ts == 0.0  # L9: tg128 0.70 ± 0.00


def test_apple_m5_compiled_backend_list():
    res = parse("apple-m5_metal_b9430_qwen35-9b_md.txt")
    r = at(res, 9)  # L9: | qwen35 9B Q4_K - Medium | 5.28 GiB | 8.95 B | BLAS,MTL | 4 | pp256 | 597.06 ± 0.00 |
    assert r.backends == ("BLAS", "MTL") and r.threads == 4 and r.quant == "Q4_K_M"
    assert (r.kind, r.n_prompt, r.avg_ts, r.stddev_ts) == ("pp", 256, 597.06, 0.0)
    assert r.ngl is None  # no ngl column in this table
    assert at(res, 10).test == "tg64" and at(res, 10).avg_ts == 20.21  # L10
    assert r.build_number is None  # the build is stated in the issue text only


def test_i5_pp_tg_combined_and_build_line_before_a_shell_prompt():
    res = parse("i5-4278u_macbookpro2014_cpu_b10334_llama32-3b_md.txt")
    r = at(res, 11)  # L11: | ... | 2 | pp4096+tg128 | 12.14 ± 0.01 |
    assert (r.kind, r.n_prompt, r.n_gen, r.avg_ts) == ("pp+tg", 4096, 128, 12.14)
    assert at(res, 9).n_prompt == 4096 and at(res, 9).avg_ts == 14.06  # L9: pp4096 14.06 ± 0.04
    assert all(x.threads == 2 for x in res.rows)
    assert {(x.build_commit, x.build_number) for x in res.rows} == {("936918514", 10334)}  # L13


def test_ik_llama_repacked_lines_and_rtr_column():
    res = parse("i7-1185g7_iklcpp_b3643_rtr_md.txt")
    r = at(res, 11)  # L11 (L10 is "============ Repacked 225 tensors")
    assert (r.test, r.avg_ts, r.stddev_ts) == ("pp64", 31.93, 1.24)
    assert r.quant == "IQ4_NL" and r.raw["repack"] == "1" and r.threads == 4
    assert at(res, 18).test == "tg512" and at(res, 18).avg_ts == 7.67  # L18: tg512 7.67 ± 0.79
    assert (r.build_commit, r.build_number) == ("55fb9c81", 3643)  # L20


def test_jetson_indented_two_tables():
    res = parse("jetson-agx-orin_cuda_b4675_qwen2-32b_indented_md.txt")
    first, second = at(res, 16), at(res, 27)
    assert (first.avg_ts, first.stddev_ts, first.flash_attn) == (128.64, 0.03, "on")  # L16: fa 1
    assert first.backends == ("CUDA",) and first.ngl == 99 and first.size_bytes == round(18.48 * GiB)
    assert (first.build_commit, first.build_number) == ("55ac8c77", 4675)  # L19
    assert second.avg_ts == 201.73 and second.build_commit is None  # L27; MAXN table has no build line
    assert first.block != second.block
    assert at(res, 28).avg_ts == 6.84  # L28: tg128 6.84 ± 0.01


def test_m4_pro_compact_widths_thread_sweep():
    res = parse("m4-pro_macos_cpu_b4621_llama32-1b_threads_md.txt")
    assert [r.threads for r in res.rows] == [1, 2, 4, 6, 8, 10]  # L11-L16
    r = at(res, 16)  # L16: | llama 1B Q4_0 | 727.75 MiB | 1.24 B | CPU | 10 | tg64 | 243.65 ± 0.14 |
    assert (r.kind, r.n_gen, r.avg_ts, r.stddev_ts) == ("tg", 64, 243.65, 0.14)
    assert r.size_bytes == 763_101_184  # 727.75 * 1024**2, exact in binary
    assert at(res, 11).avg_ts == 47.84  # L11
    assert res.rows[0].build_number == 4621  # L18: build: 6eecde3c (4621)


def test_oracle_two_engines_two_tables():
    res = parse("oracle-ampere-a1_neoverse-n1_llamacpp-vs-iklcpp_md.txt")
    r = at(res, 10)  # L10: | qwen2 3B IQ3_S mix - 3.66 bpw | 1.38 GiB | 3.09 B | CPU | 1 | pp64 | 1.62 ± 0.00 |
    assert r.quant == "IQ3_M" and r.params == 3_090_000_000 and r.avg_ts == 1.62
    r = at(res, 57)  # L57: | qwen2 3B Q8_0 | 3.05 GiB | ... | 3 | tg32 | 7.12 ± 0.10 |
    assert (r.quant, r.threads, r.test, r.avg_ts, r.stddev_ts) == ("Q8_0", 3, "tg32", 7.12, 0.10)
    ik = at(res, 63)  # L63: | qwen2 ?B IQ3_S mix - 3.66 bpw | 1.62 GiB | 3.40 B | CPU | 1 | pp64 | 6.13 ± 0.02 |
    assert ik.size_label == "?B" and ik.avg_ts == 6.13 and ik.params == 3_400_000_000
    assert ik.block == r.block + 1
    assert at(res, 110).avg_ts == 8.17  # L110: tg32 8.17 ± 0.31 (narrow t/s column)
    assert sum(x.block == r.block for x in res.rows) == 48


def test_onnxruntime_genai_table_is_not_llama_bench():
    res = parse("ortgenai_benchmark_e2e_phi2_int4_cuda_rtx4090_md.txt")
    assert res.rows == []
    assert [p.line_no for p in res.problems] == [9]  # L9: | Metric | Value |
    assert "not llama-bench" in res.problems[0].reason


def test_power10_tiny_tests_hybrid_arch():
    res = parse("power10-ppc64le_cpu_b6833_granite-hybrid-3b_md.txt")
    r = at(res, 9)  # L9: | granitehybrid 3B Q8_0 | 3.16 GiB | 3.19 B | CPU | 10 | pp16 | 70.53 ± 0.12 |
    assert (r.arch, r.quant, r.threads, r.n_prompt, r.avg_ts) == ("granitehybrid", "Q8_0", 10, 16, 70.53)
    assert (at(res, 14).kind, at(res, 14).n_gen, at(res, 14).avg_ts) == ("tg", 1, 18.80)  # L14: tg1
    assert r.build_commit == "0bcb40b48"  # L16


def test_pr2626_gen0_no_size_columns():
    res = parse("pr2626_first-llama-bench_cuda_md_2023-08.txt")
    r = at(res, 9)  # L9: | LLaMA 7B mostly Q4_0 | CUDA | 99 | pp 512 | 2242.06 ± 24.26 |
    assert (r.kind, r.n_prompt, r.avg_ts, r.stddev_ts) == ("pp", 512, 2242.06, 24.26)
    assert r.ngl == 99 and r.backends == ("CUDA",) and r.quant == "Q4_0"
    assert r.size_bytes is None and r.params is None
    assert at(res, 10).test == "tg 128" and at(res, 10).n_gen == 128  # L10


def test_pi5_build_line_above_the_table():
    res = parse("raspberry-pi5_rx7900xt_vulkan_b6552_qwen2.5-14b_md.txt")
    assert {(r.build_commit, r.build_number) for r in res.rows} == {("1d0125bc", 6552)}  # L11
    r = at(res, 19)  # L19: | ... | 99 | pp4096+tg128 | 65.65 ± 0.00 |
    assert (r.kind, r.n_prompt, r.n_gen, r.avg_ts, r.stddev_ts) == ("pp+tg", 4096, 128, 65.65, 0.0)
    assert at(res, 16).avg_ts == 335.63 and at(res, 16).backends == ("Vulkan",)  # L16


def test_b1275_threads_old_test_names():
    res = parse("readme_b1275_cpu_threads_old-test-names_md.txt")
    r = at(res, 12)  # L12: | llama 7B mostly Q4_0 | 3.56 GiB | 6.74 B | CPU | 1 | pp 64 | 6.17 ± 0.07 |
    assert (r.test, r.kind, r.n_prompt, r.threads, r.avg_ts) == ("pp 64", "pp", 64, 1, 6.17)
    assert r.params == 6_740_000_000 and r.size_bytes == round(3.56 * GiB)
    assert (at(res, 22).threads, at(res, 22).avg_ts) == (32, 59.00)  # L22
    assert at(res, 13).n_gen == 16  # L13: tg 16


def test_rock5b_bitnet_repacked_inside_table_mib_sizes():
    res = parse("rock5b_rk3588_iklcpp_b3648_bitnet_md.txt")
    r = at(res, 10)  # L10: | bitnet-25 2B IQ2_BN - 2.00 bpw Bitnet | 934.16 MiB | 2.74 B | ... | pp64 | 80.85 ± 0.06 |
    assert r.model_type == "bitnet-25 2B IQ2_BN - 2.00 bpw Bitnet" and r.quant == "IQ2_BN"
    assert r.size_bytes == round(934.16 * MiB) and r.avg_ts == 80.85
    assert at(res, 19).quant == "IQ2_BN_R4" and at(res, 19).avg_ts == 79.62  # L19, after L18 "Repacked 1 tensors"
    assert {x.build_number for x in res.rows} == {3648}  # L27: build line right after the last row


def test_rock5b_bert_embd_params_in_m():
    res = parse("rock5b_rk3588_mainline_bert-embd_md.txt")
    r = at(res, 9)  # L9: | bert 335M Q4_0 | 395.50 MiB | 566.70 M | CPU | 4 | 1 | pp64 | 441.44 ± 0.22 |
    assert r.params == 566_700_000 and r.size_bytes == round(395.50 * MiB)
    assert r.raw["embeddings"] == "1" and r.size_label == "335M" and r.avg_ts == 441.44
    assert at(res, 16).avg_ts == 118.04  # L16: tg512 118.04 ± 0.11


def test_rtx3080_six_digit_throughput():
    res = parse("rtx3080_cuda_b3677_llama-115m_ngl0-99_md.txt")
    r = at(res, 16)  # L16: | llama ?B Q4_K - Medium | 72.74 MiB | 116.93 M | CUDA | 99 | 8 | pp512 | 144243.73 ± 363.10 |
    assert (r.ngl, r.threads, r.avg_ts, r.stddev_ts) == (99, 8, 144243.73, 363.10)
    assert r.params == 116_930_000 and r.size_bytes == round(72.74 * MiB)
    assert (at(res, 14).ngl, at(res, 14).avg_ts) == (0, 44386.72)  # L14
    assert r.build_commit == "c6328bc0"  # L19


def test_sifive_build_line_in_fence_above_table():
    res = parse("sifive-p550-riscv_rx580_vulkan_b4696_llama32-3b_md.txt")
    assert {x.build_number for x in res.rows} == {4696}  # L10: build: e598697d (4696)
    assert (at(res, 17).avg_ts, at(res, 17).stddev_ts) == (36.23, 17.62)  # L17: tg128
    assert at(res, 18).kind == "pp+tg" and at(res, 18).avg_ts == 182.59  # L18: pp4096+tg128


def test_snapdragon_arm_repacked_quant():
    res = parse("snapdragon-cpu_threadpool_b3573_llama3-314m-q4_0_4_8_md.txt")
    r = at(res, 13)  # L13: | llama ?B Q4_0_4_8 | 200.79 MiB | 314.06 M | CPU | 8 | pp512 | 12292.80 ± 40.62 |
    assert (r.quant, r.threads, r.avg_ts, r.params) == ("Q4_0_4_8", 8, 12292.80, 314_060_000)


def test_xeon_md_model_name_overflows_its_column():
    res = parse("xeon-e5-2690v3_iklcpp_deepseek-r1-671b_threads_md.txt")
    r = at(res, 8)  # L8: | deepseek2 671B IQ4_K_R4 - 4.5 bpw | 353.53 GiB | 672.05 B | CPU | 16 | 1 | 3 | 1 | pp512 | 8.29 ± 1.05 |
    assert r.model_type == "deepseek2 671B IQ4_K_R4 - 4.5 bpw" and r.quant == "IQ4_K_R4"
    assert r.params == 672_050_000_000 and r.flash_attn == "on"
    assert r.raw["mla_attn"] == "3" and r.raw["fused_moe"] == "1"
    assert (at(res, 14).threads, at(res, 14).avg_ts) == (48, 10.27)  # L14


# --- json, jsonl, csv, sql ---------------------------------------------------------------------


def test_pi4b_json_gen4_with_pg_record():
    res = parse("raspberry-pi4b_cpu-openblas_b6726_gemma3-270m-q4km.json")
    r = at(res, 9)  # object opening at L9
    assert (r.kind, r.n_prompt, r.avg_ts, r.stddev_ts) == ("pp", 256, 60.968394, 1.063850)  # L40, L46-47
    assert r.samples_ts == (62.1866, 60.2221, 60.4965) and r.repetitions == 3  # L49
    assert r.size_bytes == 246587904 and r.size_exact and r.params == 268098176  # L17-18
    assert r.cpu_info == "OpenBLAS, CPU" and r.gpu_info == "" and r.backends == ("BLAS",)  # L12-14
    assert r.devices == "auto" and r.flash_attn == "off" and r.n_ubatch == 512  # L33, L32, L20
    assert r.test_time == "2025-10-15T05:57:04Z"  # L43
    pg = at(res, 93)  # L124-125: n_prompt 256 and n_gen 128 -> a combined test, not tg
    assert (pg.kind, pg.n_prompt, pg.n_gen, pg.avg_ts, pg.test) == ("pp+tg", 256, 128, 24.867107, "pp256+tg128")
    assert at(res, 51).kind == "tg" and at(res, 51).avg_ts == 11.978603  # L51 object, L88


def test_b1275_csv_gen1_booleans():
    res = parse("readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.csv")
    r = at(res, 7)  # L7
    assert (r.kind, r.n_prompt, r.avg_ts, r.stddev_ts) == ("pp", 512, 2413.341687, 8.305961)
    assert r.backends == ("CUDA",)  # cuda "1" first of cuda/opencl/metal/gpu_blas/blas (L6 header)
    assert (r.build_commit, r.build_number, r.threads, r.ngl, r.n_batch) == ("3469684", 1275, 16, 99, 512)
    assert r.raw["f16_kv"] == "1" and r.raw["mul_mat_q"] == "1" and r.n_ubatch is None
    assert r.cpu_info == "13th Gen Intel(R) Core(TM) i9-13900K" and r.gpu_info == "NVIDIA GeForce RTX 3090 Ti"
    assert r.test_time == "2023-09-23T12:09:01Z"
    assert at(res, 8).kind == "tg" and at(res, 8).avg_ts == 132.052051  # L8


def test_header_value_mismatch_is_reported_and_aligned_safely():
    res = parse("readme_b1275_2024edit_header_value_mismatch.csv")
    assert [p.line_no for p in res.problems] == [7, 8]
    assert all("26 columns" in p.reason and "27 values" in p.reason for p in res.problems)
    r = at(res, 7)  # L7: the trailing fields align from the right, the leading from the left
    assert (r.avg_ts, r.stddev_ts, r.n_prompt, r.n_gen) == (2413.341687, 8.305961, 512, 0)
    assert r.cpu_info == "13th Gen Intel(R) Core(TM) i9-13900K" and r.model_type == "llama 7B mostly Q4_0"
    assert r.build_commit == "3469684"
    # which backend flag lost its header is unknowable: no guessed backend, no shifted value
    assert r.backends == () and r.build_number is None
    assert "cuda" in res.problems[0].reason


def test_b1275_json_samples():
    res = parse("readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.json")
    r = at(res, 7)  # object opening at L7
    assert (r.avg_ts, r.stddev_ts) == (2410.974041, 11.163766)  # L33-34
    assert r.samples_ts == (2394.34, 2419.25, 2411.36, 2422.75, 2407.16)  # L36
    assert r.samples_ns[0] == 213837238 and r.avg_ns == 212365953  # L35, L31
    assert r.backends == ("CUDA",) and r.line_end == 37
    assert at(res, 38).avg_ts == 130.965708  # L65


def test_b1275_sql():
    res = parse("readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.sql")
    r = at(res, 36)  # L36: INSERT INTO test (...) VALUES ('3469684', '1275', '1', ...)
    assert (r.avg_ts, r.stddev_ts, r.n_prompt) == (2407.240204, 8.409634, 512)
    assert r.backends == ("CUDA",) and r.build_number == 1275 and r.test_time == "2023-09-23T12:10:30Z"
    assert at(res, 37).kind == "tg" and at(res, 37).avg_ts == 130.891159  # L37


def test_b5163_csv_gen3_backends_string():
    res = parse("readme_b5163_ryzen7800x3d_rtx4080_cuda_qwen2.5-7b.csv")
    r = at(res, 8)  # L8
    assert (r.avg_ts, r.stddev_ts, r.backends) == (7285.676949, 100.064434, ("CUDA",))
    assert (r.flash_attn, r.n_ubatch, r.n_depth, r.quant) == ("off", 512, 0, "Q4_K_M")
    assert at(res, 9).avg_ts == 119.915244  # L9


def test_b5163_json():
    res = parse("readme_b5163_ryzen7800x3d_rtx4080_cuda_qwen2.5-7b.json")
    r = at(res, 8)  # object at L8
    assert (r.avg_ts, r.stddev_ts, r.repetitions) == (7100.002165, 140.341520, 5)  # L40-41, L43
    assert r.cpu_info == "AMD Ryzen 7 7800X3D 8-Core Processor"  # L11
    assert at(res, 45).avg_ts == 118.881588  # L77


def test_strixhalo_jsonl_depth_sweep():
    res = parse("strixhalo_rocm_b6865_llama32-1b_depth-sweep.jsonl")
    assert [r.n_depth for r in res.rows] == [0, 0, 1024, 1024, 4096, 4096, 16384, 16384, 65536, 65536]
    r = at(res, 15)  # L15: n_prompt 512, n_depth 65536, avg_ts 424.763184
    assert (r.kind, r.test, r.avg_ts, r.stddev_ts) == ("pp", "pp512 @ d65536", 424.763184, 0.0)
    t = at(res, 16)  # L16: tg128 at depth 65536, samples_ts [ 64.6162 ]
    assert (t.kind, t.n_gen, t.avg_ts, t.samples_ts) == ("tg", 128, 64.616239, (64.6162,))
    assert t.backends == ("ROCm",) and t.flash_attn == "on" and t.cpu_info == "AMD Eng Sample: 100-000001243-50_Y"
    assert at(res, 7).avg_ts == 4703.284998  # L7


def test_strixhalo_jsonl_vulkan_rpc():
    res = parse("strixhalo_vulkan-rpc_b6118_gpt-oss-20b_subset.jsonl")
    r = at(res, 7)  # L7: n_prompt 1, avg_ts 47.461533, stddev_ts 0.029150
    assert (r.n_prompt, r.avg_ts, r.stddev_ts) == (1, 47.461533, 0.029150)
    assert r.backends == ("Vulkan", "RPC") and r.size_label == "?B" and r.quant == "F16"
    assert r.raw["defrag_thold"] == -1.0
    assert at(res, 12).n_prompt == 32 and at(res, 12).avg_ts == 275.661502  # L12


def test_ik_llama_json_gen2_booleans_and_test_field():
    res = parse("xeon-e5-2690v3_iklcpp_b3599_deepseek-r1-671b_fa-off.json")
    r = at(res, 9)  # object at L9
    assert (r.test, r.kind, r.avg_ts, r.stddev_ts) == ("pp512", "pp", 8.204253, 0.133555)  # L51, L49-50
    assert r.size_bytes == 379595751424 and r.params == 672049829376  # L24-25
    assert r.backends == ("CPU",)  # every flag false, rpc "0" (L12-19)
    assert r.raw["mla_attn"] == 3 and r.raw["ser"] == "-1,0" and r.flash_attn == "off"
    assert r.avg_ns == 62419796060  # L47: beyond 32 bits
    assert at(res, 55).test == "tg128" and at(res, 55).avg_ts == 2.967723  # L97, L95


# --- units, names, test labels -----------------------------------------------------------------


def test_units_and_labels():
    assert parse_size("3.56 GiB") == round(3.56 * GiB) and parse_size("72.74 MiB") == round(72.74 * MiB)
    assert parse_size("3.56 GB") is None or parse_size("3.56 GB") == 3_560_000_000
    assert parse_params("1.24 B") == 1_240_000_000 and parse_params("115.00 M") == 115_000_000
    assert parse_ts("2242.06 ± 24.26") == (2242.06, 24.26)
    assert parse_ts("nope") is None
    assert parse_test_name("pp 512") == ("pp", 512, 0, 0)
    assert parse_test_name("pp512") == ("pp", 512, 0, 0)
    assert parse_test_name("tg 128") == ("tg", 0, 128, 0)
    assert parse_test_name("pp4096+tg128") == ("pp+tg", 4096, 128, 0)
    assert parse_test_name("pp512 @ d512") == ("pp", 512, 0, 512)
    assert parse_test_name("tg128 @ d4096") == ("tg", 0, 128, 4096)
    # ik_llama.cpp: 64 tokens generated after an untimed 8192-token prompt
    assert parse_test_name("tg64@pp8192") == ("tg", 0, 64, 8192)
    assert parse_test_name("ppx") is None
    assert split_model_type("llama 7B mostly Q4_0") == ("llama", "7B", "Q4_0")
    assert split_model_type("qwen2 7B Q4_K - Medium") == ("qwen2", "7B", "Q4_K_M")
    assert split_model_type("gpt-oss ?B MXFP4 MoE") == ("gpt-oss", "?B", "MXFP4_MOE")


def test_ik_tg_at_pp_rows_in_markdown():
    text = (
        "| model | size | params | backend | threads | test | t/s |\n"
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |\n"
        "| llama 8B Q4_0 | 4.33 GiB | 8.03 B | CPU | 16 | tg64@pp8192 | 9.12 ± 0.05 |\n"
        "| llama 8B Q4_0 | 4.33 GiB | 8.03 B | CPU | 16 | pp512 @ d512 | 99.50 ± 1.00 |\n"
    )
    res = parse_llama_bench(text)
    assert [(r.kind, r.n_prompt, r.n_gen, r.n_depth) for r in res.rows] == [("tg", 0, 64, 8192), ("pp", 512, 0, 512)]


# --- tolerance -----------------------------------------------------------------------------------


MD_OK = (FIXTURES / "adreno-840_opencl_b9050_qwen3-1.7b-f16_md.txt").read_text()


def test_a_bad_markdown_row_is_a_problem_not_an_exception():
    lines = MD_OK.splitlines()
    lines.insert(8, "| qwen3 1.7B F16 | 3.78 GiB | 2.03 B | OpenCL | 99 | pp512 | fast |")  # becomes L9
    res = parse_llama_bench("\n".join(lines))
    assert len(res.rows) == 2
    assert [p.line_no for p in res.problems] == [9]
    assert "t/s" in res.problems[0].reason


def test_a_terminal_wrapped_row_is_joined():
    lines = MD_OK.splitlines()
    row = lines[7]  # L8
    lines[7:8] = [row[:60], row[60:]]
    res = parse_llama_bench("\n".join(lines))
    assert len(res.rows) == 2 and res.problems == []
    assert res.rows[0].line_no == 8 and res.rows[0].line_end == 9 and res.rows[0].avg_ts == 394.43


def test_a_double_pipe_at_the_end_of_a_row_is_not_a_column():
    text = MD_OK.replace("13.60 ± 0.08 |", "13.60 ± 0.08 ||")  # the 2023 README quirk, on L9
    res = parse_llama_bench(text)
    assert len(res.rows) == 2 and res.problems == [] and at(res, 9).avg_ts == 13.60


def test_a_short_markdown_row_is_aligned_and_reported():
    text = MD_OK.replace("|  99 |           tg128 |", "|           tg128 |")  # ngl cell lost
    res = parse_llama_bench(text)
    assert len(res.rows) == 2
    short = at(res, 9)
    assert short.avg_ts == 13.60 and short.n_gen == 128 and short.ngl is None
    assert [p.line_no for p in res.problems] == [9]


def test_broken_jsonl_line_is_reported_others_parse():
    lines = (FIXTURES / "strixhalo_vulkan-rpc_b6118_gpt-oss-20b_subset.jsonl").read_text().splitlines()
    lines[8] = lines[8][: len(lines[8]) // 2]  # L9 cut in half
    res = parse_llama_bench("\n".join(lines))
    assert res.format == "jsonl"
    assert len(res.rows) == 5
    assert [p.line_no for p in res.problems] == [9]


def test_broken_json_object_is_reported_others_parse():
    lines = (FIXTURES / "readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.json").read_text().splitlines()
    lines[32] = '    "avg_ts": 2410.974041 oops,'  # L33, inside the first object (L7-L37)
    res = parse_llama_bench("\n".join(lines))
    assert res.format == "json" and len(res.rows) == 1 and res.rows[0].line_no == 38
    assert [p.line_no for p in res.problems] == [7]


def test_bad_csv_and_sql_lines_are_reported():
    csv_lines = (FIXTURES / "readme_b5163_ryzen7800x3d_rtx4080_cuda_qwen2.5-7b.csv").read_text().splitlines()
    csv_lines.insert(8, '"8cf427ff","5163","broken')  # L9
    res = parse_llama_bench("\n".join(csv_lines))
    assert res.format == "csv" and len(res.rows) == 2 and [p.line_no for p in res.problems] == [9]
    sql_lines = (FIXTURES / "readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.sql").read_text().splitlines()
    sql_lines[35] = sql_lines[35][:120]  # L36 truncated
    res = parse_llama_bench("\n".join(sql_lines))
    assert res.format == "sql" and len(res.rows) == 1 and [p.line_no for p in res.problems] == [36]


def test_html_in_cpu_info_stays_a_plain_string():
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)> [bold]rich[/bold]'
    obj = (
        '{"build_commit": "abc1234", "build_number": 1, "cpu_info": '
        + '"' + evil.replace('"', '\\"') + '"'
        + ', "gpu_info": "", "backends": "CPU", "model_type": "llama 1B Q4_0", "model_size": 1, '
        '"model_n_params": 2, "n_prompt": 512, "n_gen": 0, "n_depth": 0, "avg_ts": 1.5, "stddev_ts": 0.1}'
    )
    res = parse_llama_bench(obj)
    assert res.rows[0].cpu_info == evil
    assert res.rows[0].device_description == evil


def test_empty_and_binaryish_text():
    assert parse_llama_bench("").rows == []
    assert parse_llama_bench("").format == "unknown"
    assert parse_llama_bench("\x00\x01\x02 | ± {{{ ]]] ,,,").rows == []


GARBAGE_ATOMS = [
    "|", "||", "| t/s |", "| model | test | t/s |", "| --- |", "{", "}", "[", "]", '"', ",", "±", "+/-",
    "pp512", "tg128", "@ d", "build: ", "(123)", "INSERT INTO test (a) VALUES ('", "');", "avg_ts",
    "build_commit,", "error", "nan", "inf", "-1", "0x0", "GiB", " B ", "\t", "é", "\\", "\"avg_ts\": ",
    "CREATE TABLE IF NOT EXISTS test (", "ggml_cuda_init:", "llama_model_load: error", "<b>", "1e309",
]


def _garbage(rng: random.Random) -> str:
    return "".join(rng.choice(GARBAGE_ATOMS) + rng.choice(["", " ", "  "]) for _ in range(rng.randint(0, 12)))


@pytest.mark.parametrize("name", ALL)
def test_garbage_around_a_capture_never_raises(name):
    rng = random.Random(name)
    text = (FIXTURES / name).read_text(encoding="utf-8")
    clean = parse_llama_bench(text)
    for _ in range(15):
        pre = [_garbage(rng) for _ in range(rng.randint(0, 6))]
        post = [_garbage(rng) for _ in range(rng.randint(0, 6))]
        mixed = "\n".join(pre + text.splitlines() + post)
        res = parse_llama_bench(mixed)
        n_lines = len(mixed.splitlines())
        assert all(isinstance(r, BenchRow) and math.isfinite(r.avg_ts) for r in res.rows)
        assert all(0 <= p.line_no <= n_lines for p in res.problems)
        # the capture's own rows survive garbage around it
        found = {(r.test, r.avg_ts, r.line_no - len(pre)) for r in res.rows}
        assert {(r.test, r.avg_ts, r.line_no) for r in clean.rows} <= found


def test_plain_prose_around_a_capture_changes_nothing():
    text = (FIXTURES / "readme_b5163_ryzen7800x3d_rtx4080_cuda_qwen2.5-7b.json").read_text()
    res = parse_llama_bench("Here are my results\n" + text + "\nthanks!\n")
    assert len(res.rows) == 2 and res.problems == []


def test_align_keeps_what_types_pin_down_and_drops_the_rest():
    # one value too many: only the string field before the numbers can be the odd one out
    mapping, dropped = align(["cpu_info", "n_prompt", "test_time", "avg_ts"],
                             ["x", "oops", "512", "2023-09-23T12:09:01Z", "1.5"])
    assert dropped == ["cpu_info"]
    assert mapping == {"n_prompt": "512", "test_time": "2023-09-23T12:09:01Z", "avg_ts": "1.5"}
    # all-numeric values: where the gap is cannot be told, so nothing after it is trusted
    mapping, dropped = align(["cpu_info", "n_prompt", "n_gen", "avg_ts"], ["x", "512", "0", "7", "1.5"])
    assert mapping == {"cpu_info": "x"} and dropped == ["n_prompt", "n_gen", "avg_ts"]
    # one value missing
    mapping, dropped = align(["build_commit", "cpu_info", "test_time", "avg_ts"],
                             ["3469684", "2023-09-23T12:09:01Z", "1.5"])
    assert mapping == {"build_commit": "3469684", "test_time": "2023-09-23T12:09:01Z", "avg_ts": "1.5"}
    assert dropped == ["cpu_info"]
