"""--backend cpu|gpu|npu for the llama.cpp runtime (issue 16): device selection and offload flags as
pure functions, the loader log that says where the layers went (a real capture), and the rule that a
run which asked for a GPU or NPU and ran on the CPU fails. The CPU path and the refusal of a bundle
without the device asked for run end to end with edgebench's own build on this host
(tests/test_run_local.py style); GPU/NPU bundles cannot exist here (they link the phone's vendor
libraries): their path is verified on captured output only (docs/engines.md)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from suite.core.errors import EdgebenchError
from suite.runtimes.llama_bench import (
    Accelerator,
    backend_args,
    backend_failure,
    choose_device,
    list_devices_command,
    offload_evidence,
    parse_list_devices,
    phase_command,
)

FIX = Path(__file__).parent / "fixtures" / "runtimes"

# verbatim from a llama-bench --list-devices on an Apple M4 Max (ardanlabs/kronk issue #10)
METAL_LISTING = """ggml_metal_library_init: loaded in 5.070 sec
ggml_metal_device_init: recommendedMaxWorkingSetSize  = 103079.22 MB
Available devices:
  Metal: Apple M4 Max (98304 MiB, 98303 MiB free)
  BLAS: Accelerate (0 MiB, 0 MiB free)
"""
# the listing of an official Snapdragon build, written from common/arg.cpp's printf
# ("  %s: %s (%zu MiB, %zu MiB free)") with the device names its logs use (HTP0 in
# tests/fixtures/runtimes/llama-completion_snapdragon-htp-v79_..., GPUOpenCL in llama.cpp's
# scripts/snapdragon); not a capture
SNAPDRAGON_LISTING = """Available devices:
  GPUOpenCL: QUALCOMM Adreno(TM) 830 (0 MiB, 0 MiB free)
  HTP0: Hexagon (2048 MiB, 2048 MiB free)
"""


def test_list_devices_is_parsed_and_classified():
    assert parse_list_devices(METAL_LISTING) == [Accelerator("Metal", "Apple M4 Max", "gpu"),
                                                 Accelerator("BLAS", "Accelerate", "other")]
    devs = parse_list_devices(SNAPDRAGON_LISTING)
    assert [(d.name, d.kind) for d in devs] == [("GPUOpenCL", "gpu"), ("HTP0", "npu")]
    # edgebench's own static build: CPU devices are never listed
    assert parse_list_devices("Available devices:\n  (none)\n") == []
    assert parse_list_devices("") == []


def test_the_device_asked_for_is_chosen_or_refused_with_what_the_bundle_has():
    devs = parse_list_devices(SNAPDRAGON_LISTING)
    assert choose_device("npu", devs).name == "HTP0"
    assert choose_device("gpu", devs).name == "GPUOpenCL"
    with pytest.raises(EdgebenchError) as info:
        choose_device("npu", parse_list_devices(METAL_LISTING))
    assert "lists no NPU device" in str(info.value) and "Metal (gpu: Apple M4 Max)" in str(info.value)
    assert info.value.exit_code == 2
    with pytest.raises(EdgebenchError, match="its --list-devices: none"):
        choose_device("gpu", [])


def test_flags_and_environment_of_each_backend():
    assert backend_args("cpu", None) == ("-ngl", "0", "-dev", "none")
    htp = Accelerator("HTP0", "Hexagon", "npu")
    assert backend_args("npu", htp) == ("-ngl", "99", "-dev", "HTP0", "-v")
    inv = phase_command("/data/local/tmp/edgebench/llama.cpp", "/data/local/tmp/m.gguf", "decode", 16, reps=2,
                        threads=4, mask="f0", extra=backend_args("npu", htp), accelerated=True, nonce="n")
    assert inv.argv[-5:] == ("-ngl", "99", "-dev", "HTP0", "-v")
    assert "ADSP_LIBRARY_PATH=/data/local/tmp/edgebench/llama.cpp/lib " in inv.command
    cpu = phase_command("/b", "/m.gguf", "decode", 16, reps=2, threads=4, mask=None, extra=backend_args("cpu", None))
    assert "ADSP_LIBRARY_PATH" not in cpu.command
    # a path with a space is quoted where it reaches the device shell
    assert "'/my dir/lib'" in list_devices_command("/my dir") and "'/my dir/bin/llama-bench' --list-devices" in \
        list_devices_command("/my dir")


def test_the_loader_log_of_a_real_hexagon_run_shows_the_layers_on_the_npu():
    log = (FIX / "llama-completion_snapdragon-htp-v79_doc-llama3.2-1b-hexagon.txt").read_text()
    ev = offload_evidence(log)
    # "load_tensors: offloaded 17/17 layers to GPU" and the three model buffer lines
    assert ev["layers_offloaded"] == [17, 17]
    assert ev["model_buffers_mib"] == {"CPU": 225.49, "HTP0": 0.26, "HTP0-REPACK": 504.0}
    htp = Accelerator("HTP0", "Hexagon", "npu")
    row = SimpleNamespace(devices="HTP0", ngl=99)
    assert backend_failure("npu", htp, row, ev) is None


def test_a_run_that_asked_for_the_npu_and_ran_on_the_cpu_fails_with_the_reason():
    htp = Accelerator("HTP0", "Hexagon", "npu")
    # llama.cpp's loader on a CPU-only assignment (what edgebench's own build logs with -v)
    cpu_log = ("load_tensors: layer   0 assigned to device CPU, is_swa = 0\n"
               "load_tensors: layer   1 assigned to device CPU, is_swa = 0\n"
               "load_tensors:   CPU_Mapped model buffer size =    42.55 MiB\n")
    why = backend_failure("npu", htp, SimpleNamespace(devices="HTP0", ngl=99), offload_evidence(cpu_log))
    assert why == "asked for npu (HTP0) but every layer was assigned to CPU: it ran on the CPU"
    zero = "load_tensors: offloaded 0/17 layers to GPU\n"
    assert "offloaded 0/17 layers: it ran on the CPU" in backend_failure(
        "npu", htp, SimpleNamespace(devices="HTP0", ngl=99), offload_evidence(zero))
    assert "used devices none" in backend_failure("npu", htp, SimpleNamespace(devices="none", ngl=99), {})
    assert "0 GPU layers" in backend_failure("npu", htp, SimpleNamespace(devices="HTP0", ngl=0), {})
    # no log at all: nothing shows where it ran, so it is not a result
    assert "does not say where the layers went" in backend_failure(
        "npu", htp, SimpleNamespace(devices="HTP0", ngl=99), {})
    # the CPU asked for and used
    assert backend_failure("cpu", None, SimpleNamespace(devices="none", ngl=0), {}) is None
    assert "used devices HTP0" in backend_failure("cpu", None, SimpleNamespace(devices="HTP0", ngl=0), {})


@pytest.mark.timeout(3600)  # the first use builds the baseline llama-bench (.ci/run builds it first)
def test_asking_edgebench_s_cpu_build_for_the_npu_is_refused_before_anything_is_measured(tmp_path):
    """On this host with edgebench's own static build: `--backend npu` asks the binary for its devices
    (none: a static build is CPU only) and stops with exit 2 and the reason; no run is written."""
    import platform

    from suite.core.measure import BurstParams
    from suite.runtimes.build import llama_cpp
    from suite.runtimes.build.variants import VARIANTS, normalize_abi
    from suite.session.local import RunRequest
    from suite.session.run import run

    abi = normalize_abi(platform.machine())
    built = llama_cpp.ensure_built(abi, next(v.name for v in VARIANTS[abi].values() if v.lower is None))
    req = RunRequest(model_id="tiny", runtime="llama.cpp", device="local",
                     params=BurstParams(prompt_tokens=8, gen_tokens=4, reps=1, warmup=0, threads=1, backend="npu"),
                     models_dir=tmp_path / "models", results_dir=tmp_path / "results", probe=False,
                     runtime_bundle=built.path)
    with pytest.raises(EdgebenchError) as info:
        run(None, req)
    assert info.value.exit_code == 2
    assert "--backend npu: this llama-bench lists no NPU device (its --list-devices: none)" in str(info.value)
    assert not list((tmp_path / "results").glob("*/run.json"))


def test_runtimes_without_a_gpu_or_npu_path_refuse_the_backend(tmp_path):
    from suite.core.measure import BurstParams
    from suite.session.local import RunRequest
    from suite.session.run import check_request

    for name in ("ort-genai", "llama-cpp-python"):
        req = RunRequest(model_id="tiny", runtime=name, device="local", params=BurstParams(backend="gpu"),
                         models_dir=tmp_path, results_dir=tmp_path)
        with pytest.raises(EdgebenchError, match=f"--backend gpu: {name} runs on cpu only") as info:
            check_request(req, None)
        assert info.value.exit_code == 2
    with pytest.raises(ValueError, match="backend must be one of cpu, gpu, npu"):
        BurstParams(backend="tpu")
    assert "backend" not in BurstParams().to_dict() and BurstParams(backend="npu").to_dict()["backend"] == "npu"
