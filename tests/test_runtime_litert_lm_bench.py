"""Runtime `litert-lm` (issue 16): LiteRT-LM's own benchmark binary from the user's bundle on a phone. No such
binary can run here (its builds link the phone's libraries), so there is no end-to-end test: the command
lines, the bundle checks (on real ELF files) and the placement of the engine's own timings (on real captured
BenchmarkInfo output) are tested as pure functions; docs/engines.md says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from suite.core.measure import BurstParams
from suite.device.elf import ElfError
from suite.runtimes import NATIVE, backends, get_runtime
from suite.runtimes.litert_lm_bench import (
    LiteRtLmBenchRuntime,
    accelerator_check,
    invocations,
    iteration_spans,
    litert_argv,
    repetition,
)
from suite.runtimes.native import read_markers
from suite.runtimes.outputs import TOOL_PARSERS

FIX = Path(__file__).parent / "fixtures" / "runtimes"


def test_registered_as_a_native_runtime_of_litertlm_files_on_every_backend():
    rt = get_runtime("litert-lm")
    assert isinstance(rt, LiteRtLmBenchRuntime) and rt.kind == NATIVE and rt.formats == ("litertlm",)
    assert backends(rt) == ("cpu", "gpu", "npu") and rt.compute_probed is False


def test_the_benchmark_command_line():
    p = BurstParams(prompt_tokens=1024, gen_tokens=256, reps=3, warmup=1, threads=4, backend="npu")
    argv = litert_argv("/d/litert_lm_advanced_main", "/m/gemma.litertlm", p, iterations=4, threads=4, advanced=True)
    assert argv == ["/d/litert_lm_advanced_main", "--model_path=/m/gemma.litertlm", "--backend=npu",
                    "--benchmark=true", "--benchmark_prefill_tokens=1024", "--benchmark_decode_tokens=256",
                    "--max_num_tokens=1280", "--async=false", "--report_peak_memory_footprint=true",
                    "--num_iterations=4", "--num_cpu_threads=4"]
    # litert_lm_advanced_main: one invocation of warmup + reps iterations, its pid written for the sampler;
    # litert_lm_main has no --num_iterations: one invocation each
    (one,) = invocations("/data/local/tmp/edgebench/litert-lm", "litert_lm_advanced_main", "/m/my model.litertlm",
                         p, pid_file="/data/local/tmp/edgebench/litert-lm.pid")
    assert one.iterations == 4 and "'--model_path=/m/my model.litertlm'" in one.command
    assert "LD_LIBRARY_PATH=/data/local/tmp/edgebench/litert-lm:/data/local/tmp/edgebench/litert-lm/lib " in one.command
    assert "ADSP_LIBRARY_PATH='/data/local/tmp/edgebench/litert-lm;" in one.command  # its NPU path loads DSP code
    assert " sh -c " in one.command and one.command.startswith('echo "EDGEBENCH ' + one.nonce + ' T0')
    several = invocations("/b", "litert_lm_main", "/m.litertlm", p)
    assert [i.iterations for i in several] == [1, 1, 1, 1] and not any("--num_iterations" in i.command for i in several)
    marked = read_markers(f"EDGEBENCH {one.nonce} T0 100.5\nBenchmarkInfo:\nEDGEBENCH {one.nonce} T1 140.25\n"
                          f"EDGEBENCH {one.nonce} RC 0\n", one.nonce)
    assert (marked.t_start, marked.t_end, marked.exit_code, marked.text) == (100.5, 140.25, 0, "BenchmarkInfo:")


@pytest.fixture
def elf_pair():
    """Real ELF files of both ABIs: edgebench's own llama-bench builds (.ci/run builds these two first)."""
    from suite.runtimes.build import llama_cpp

    return (llama_cpp.ensure_built("arm64-v8a", "armv8.0").path / "bin" / "llama-bench",
            llama_cpp.ensure_built("x86_64", "x86-64-v2").path / "bin" / "llama-bench")


@pytest.mark.timeout(3600)  # the first use builds them
def test_the_bundle_is_checked_against_the_phone_s_abi_before_anything_is_pushed(tmp_path, elf_pair):
    arm, x86 = elf_pair
    bundle = tmp_path / "litert"
    bundle.mkdir()
    with pytest.raises(ElfError, match="no litert_lm_advanced_main or litert_lm_main in the bundle"):
        LiteRtLmBenchRuntime().bundle_binary(bundle)
    shutil.copyfile(arm, bundle / "litert_lm_advanced_main")
    shutil.copyfile(arm, bundle / "libLiteRtGpuAccelerator.so")
    rt = LiteRtLmBenchRuntime()
    assert rt.check_bundle(bundle, "arm64-v8a") == {"litert_lm_advanced_main": "arm64-v8a",
                                                     "libLiteRtGpuAccelerator.so": "arm64-v8a"}
    assert set(rt.bundle_files(bundle)) == {"litert_lm_advanced_main", "libLiteRtGpuAccelerator.so"}
    assert rt.bundle_version(bundle).startswith("sha256:")
    shutil.copyfile(x86, bundle / "libLiteRtGpuAccelerator.so")  # a library for the wrong ABI
    with pytest.raises(ElfError, match="libLiteRtGpuAccelerator.so in the bundle .* is built for x86_64"):
        rt.check_bundle(bundle, "arm64-v8a")


def test_the_engine_s_timings_are_placed_at_the_end_of_the_invocation():
    # litert_lm_advanced_main, 3 iterations, Galaxy S26 GPU (a real capture): prefill 0.264 s / decode 5.84 s,
    # then 0.272 / 10.03 and 0.265 / 10.73
    runs = TOOL_PARSERS.get("litert-lm").parse(
        (FIX / "litert_lm_advanced_main_galaxy-s26-gpu_logcat-form-peak-mem-3iter-PROVENANCE-INCOMPLETE.txt")
        .read_text())
    assert [r.counts["iteration"] for r in runs] == [1, 2, 3]
    spans = iteration_spans(runs, t_end=100.0, t_start=50.0)
    total = sum(r.values["prefill_s"] + r.values["decode_s"] for r in runs)
    assert spans[-1][2] == 100.0 and spans[0][0] == pytest.approx(100.0 - total)
    for (a, pre, b), r in zip(spans, runs, strict=True):
        assert pre - a == pytest.approx(r.values["prefill_s"]) and b - pre == pytest.approx(r.values["decode_s"])
    assert all(spans[i][2] == pytest.approx(spans[i + 1][0]) for i in range(2))
    rep = repetition(runs[0], spans[0], warmup=True)
    assert rep.warmup and len(rep.token_times) == 256 and rep.token_times[-1] == pytest.approx(spans[0][2])
    # decode rate of the repetition = the engine's (its 256 tokens over its decode time)
    assert len(rep.decode_latencies_s) / sum(rep.decode_latencies_s) == pytest.approx(256 / runs[0].values["decode_s"])


def test_the_engine_s_log_says_whether_the_accelerator_asked_for_loaded():
    # the Pixel 8a GPU capture: "Dynamically loaded GPU accelerator(libLiteRtGpuAccelerator.so) registered." (line 61)
    # and "NPU accelerator could not be loaded and registered: kLiteRtStatusErrorInvalidArgument." (line 58)
    log = (FIX / "litert_lm_main_pixel8a-tensorG3-gpu_v0.16.0-gemma4-e2b-benchmark-1024x256.txt").read_text()
    assert accelerator_check(log, "gpu") == (True, None)
    loaded, why = accelerator_check(log, "npu")
    assert loaded is False and why == ("asked for the NPU, but LiteRT-LM says: NPU accelerator could not be loaded "
                                       "and registered: kLiteRtStatusErrorInvalidArgument.")
    assert accelerator_check(log, "cpu") == (None, None)
    assert accelerator_check("BenchmarkInfo:\n", "gpu") == (None, None)  # a log that says nothing: unknown
