"""edgebench's own native builds (suite.runtimes.build): CPU variants from real /proc/cpuinfo
captures, the ABI a device runs, the cache key, the manifest and what a broken cache looks like.
The build itself runs in tests/test_llama_bench_runtime.py (end to end) and `.ci/run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suite.core.errors import EdgebenchError
from suite.runtimes.build import llama_cpp
from suite.runtimes.build.toolchain import Toolchain
from suite.runtimes.build.variants import (
    ARM64,
    VARIANTS,
    X86_64,
    choose_variant,
    cpu_features,
    get_variant,
    native_abi,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "android"
LOCAL = Path(__file__).parent / "fixtures" / "android"


def capture(name: str) -> str:
    for folder in (LOCAL, SHARED):
        if (folder / name).is_file():
            return (folder / name).read_text()
    raise AssertionError(f"capture {name} not found")


def test_the_pixel_8_pro_runs_the_i8mm_build_although_one_features_line_is_glued():
    feats = cpu_features(capture("pixel8pro_tensor_g3_proc_cpuinfo.txt"))
    assert len(feats) == 9 and all("i8mm" in f and "asimddp" in f for f in feats)  # processor 5's glued line too
    choice = choose_variant(ARM64, feats)
    assert choice.variant.name == "i8mm" and "all 9 cpus" in choice.evidence
    assert choice.to_dict()["features"] == ["asimddp", "asimdhp", "i8mm"]


def test_the_variant_follows_the_cores_it_runs_on():
    a55 = frozenset("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop "
                    "asimddp".split())
    a53 = frozenset("fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid".split())
    assert choose_variant(ARM64, [a53, a53, a55, a55]).variant.name == "armv8.0"  # every core
    big = choose_variant(ARM64, [a53, a53, a55, a55], cpus=[2, 3])
    assert big.variant.name == "dotprod" and big.evidence.startswith("cpus 2,3 report asimddp, asimdhp")
    # dot product without fp16 arithmetic: the dotprod build (+fullfp16) would not run
    assert choose_variant(ARM64, [a55 - {"asimdhp", "fphp"}]).variant.name == "armv8.0"


def test_x86_hosts_and_the_loopback_phone():
    host = frozenset("fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx f16c fma avx2 bmi2".split())
    assert choose_variant(X86_64, [host, host]).variant.name == "x86-64-v3"
    assert choose_variant(X86_64, [host | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}]
                          ).variant.name == "x86-64-v4"
    # the loopback phone: ABI x86_64 over its profile's arm64 capture
    loop = choose_variant(X86_64, cpu_features(capture("vivo_iqoo_neo9pro_dimensity9300_proc_cpuinfo.txt")))
    assert loop.variant.name == "x86-64-v2" and "names no x86_64 CPU features" in loop.evidence
    with pytest.raises(EdgebenchError, match="lacks what even the baseline"):
        choose_variant(X86_64, [frozenset({"fpu", "sse", "sse2"})])
    assert choose_variant(ARM64, []).variant.name == "armv8.0"


def test_every_variant_names_its_instruction_sets_and_falls_back_one_step():
    for abi, table in VARIANTS.items():
        names = list(table)
        for i, v in enumerate(table.values()):
            assert v.lower == (names[i - 1] if i else None)
    for name in ("x86-64-v2", "x86-64-v3", "x86-64-v4"):
        flags = get_variant(X86_64, name).cmake
        # under a toolchain file ggml would switch these off unless they are set: each is named
        assert all(any(f.startswith(f"-DGGML_{s}=") for f in flags) for s in ("AVX", "AVX2", "FMA", "F16C", "BMI2"))
    assert get_variant("aarch64", "dotprod").cmake == ("-DGGML_CPU_ARM_ARCH=generic+v8_2a+dotprod+fullfp16",)
    with pytest.raises(EdgebenchError, match="unknown arm64-v8a variant"):
        get_variant(ARM64, "sve2")
    with pytest.raises(EdgebenchError, match="no native runtime for ABI 'mips'"):
        get_variant("mips", "x")


def test_the_abi_a_device_runs():
    assert native_abi({"ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi"}, "aarch64") == (ARM64, None)
    assert native_abi({"ro.product.cpu.abi": "x86_64"}, None) == (X86_64, None)
    abi, note = native_abi({"ro.product.cpu.abilist": "armeabi-v7a,armeabi"}, "aarch64")
    assert abi == ARM64 and "32-bit userland" in note and "64-bit kernel" in note
    with pytest.raises(EdgebenchError, match="ABIs armeabi-v7a, kernel armv7l") as exc:
        native_abi({"ro.product.cpu.abilist": "armeabi-v7a"}, "armv7l")
    assert "--runtime-bundle" in exc.value.hint


TC = Toolchain(Path("/a/zig"), "0.17.0", Path("/a/cmake"), "4.4.5", Path("/a/ninja"))


def test_the_cache_key_is_what_decides_the_bytes_and_never_a_path():
    v = get_variant(ARM64, "dotprod")
    key = llama_cpp.build_key(v, TC)
    assert key == llama_cpp.build_key(v, Toolchain(Path("/elsewhere/zig"), "0.17.0", Path("/b/cmake"), "4.4.5",
                                                   Path("/b/ninja")))
    assert key != llama_cpp.build_key(get_variant(ARM64, "i8mm"), TC)
    assert key != llama_cpp.build_key(v, Toolchain(TC.zig, "0.17.1", TC.cmake, TC.cmake_version, TC.ninja))
    other = llama_cpp.Source("llama-cpp-python", "0.3.37", "0" * 64, "vendor/llama.cpp", "f" * 40)
    assert key != llama_cpp.build_key(v, TC, other)


def test_the_llama_cpp_keys_of_existing_caches_stay_what_they_were():
    """Moving the build into suite.runtimes.build.cmake_build (shared with whisper.cpp) kept every
    llama.cpp key: a cached build made before is found, not rebuilt. Keys computed by the code before."""
    assert llama_cpp.build_key(get_variant(X86_64, "x86-64-v2"), TC) == "9a764e4e7059192e"
    assert llama_cpp.build_key(get_variant(ARM64, "dotprod"), TC) == "f4c7263f2b9fd91e"


def _fake_cache(root: Path, *, name: str = "x86_64-x86-64-v2-0123456789abcdef", manifest: bool = True) -> Path:
    folder = root / "runtimes" / "llama.cpp" / name
    (folder / "bin").mkdir(parents=True)
    (folder / "lib").mkdir()
    (folder / "bin" / "llama-bench").write_bytes(b"\x7fELF not really a binary")
    if manifest:
        from suite.core.filehash import local_sha256

        (folder / "manifest.json").write_text(json.dumps({
            "engine": "llama.cpp", "commit": llama_cpp.SOURCE.commit, "abi": "x86_64", "variant": "x86-64-v2",
            "sha256": local_sha256(folder / "bin" / "llama-bench"), "size_bytes": 24,
            "toolchain": TC.to_dict()}))
    return folder


def test_a_corrupt_binary_and_an_unfinished_build_are_told_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    good = _fake_cache(tmp_path)
    _fake_cache(tmp_path, name="arm64-v8a-dotprod-fedcba9876543210", manifest=False)  # interrupted: no manifest
    found = llama_cpp.list_built()
    assert [(b.path, problem) for b, problem in found] == [(good, None)]
    (good / "bin" / "llama-bench").write_bytes(b"\x7fELF flipped")
    (built, problem), = llama_cpp.list_built()
    assert "sha256" in problem and "manifest says" in problem
    assert built.record()["variant"] == "x86-64-v2"


def test_clean_removes_builds_and_with_all_the_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    _fake_cache(tmp_path)
    (tmp_path / "runtimes" / "sources").mkdir()
    assert llama_cpp.clean() == [tmp_path / "runtimes" / "llama.cpp"]
    assert (tmp_path / "runtimes" / "sources").is_dir()
    assert llama_cpp.clean(everything=True) == [tmp_path / "runtimes" / "sources"]
    assert llama_cpp.list_built() == []


def test_a_source_with_another_sha256_is_fetched_again_and_refused_offline(tmp_path, monkeypatch):
    """A cached sdist whose bytes changed is not built from; with no index reachable (an unknown
    version stands in for it) the error says what is missing and where to put it."""
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    src = llama_cpp.Source("llama-cpp-python", "0.0.0.dev999", "0" * 64, "vendor/llama.cpp", "f" * 40)
    folder = tmp_path / "runtimes" / "sources"
    folder.mkdir(parents=True)
    (folder / src.sdist_name).write_bytes(b"tampered")
    said: list[str] = []
    with pytest.raises(EdgebenchError, match="could not fetch the llama.cpp source") as exc:
        llama_cpp.fetch_sdist(src, said.append)
    assert any("sha256 differs" in m for m in said) and not (folder / src.sdist_name).exists()
    assert src.sdist_name in exc.value.hint and "0" * 64 in exc.value.hint


def test_the_probes_build_with_the_runtime_s_variant_and_run_here():
    """The x86_64 probes of the baseline variant (the loopback phone's), real, on this host."""
    import subprocess

    from suite.runtimes.build.probes import ensure_probes
    from suite.session.device import probe_command

    built = ensure_probes(X86_64, "x86-64-v2")
    assert built.intact() and built.manifest["march"] == "x86_64_v2"
    assert set(built.files()) == {"bin/edgebench-membw", "bin/edgebench-peak", "bin/edgebench-storage"}
    peak = json.loads(subprocess.run([str(built.binary("peak")), "1", "0.05"], capture_output=True, text=True,
                                     check=True).stdout)
    assert peak["int8"]["instr"] == "pmaddubsw" and peak["int8"]["ops_per_s"] > 1e9  # SSSE3, the v2 baseline
    bw = json.loads(subprocess.run([str(built.binary("membw")), "1", "32", "2"], capture_output=True, text=True,
                                   check=True).stdout)
    assert bw["bytes"] >= 256 * 2**20 and bw["bytes_per_s"] == max(bw["samples"]) > 1e8
    cmd = probe_command("/data/local/tmp/edgebench/probes", "peak", ["2", "0.3"], "c0")
    assert cmd == ("chmod 755 /data/local/tmp/edgebench/probes/bin/edgebench-peak && taskset c0 "
                   "/data/local/tmp/edgebench/probes/bin/edgebench-peak 2 0.3")


def test_a_build_that_fails_half_way_leaves_nothing_that_looks_built(tmp_path, monkeypatch):
    """A real cmake over a source tree whose configure fails: a clear error with the log's tail,
    and no folder in the cache that a run would take for a build."""
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    src = tmp_path / "runtimes" / "sources" / f"llama.cpp-{llama_cpp.SOURCE.short_commit}"
    src.mkdir(parents=True)
    # a project of no language: no compiler check, so no C library to build in this empty cache
    (src / "CMakeLists.txt").write_text('cmake_minimum_required(VERSION 3.14)\nproject(broken NONE)\n'
                                        'message(FATAL_ERROR "half-way: the tree is broken")\n')
    with pytest.raises(EdgebenchError, match="configuring llama.cpp for x86_64/x86-64-v2 failed") as exc:
        llama_cpp.ensure_built(X86_64, "x86-64-v2")
    assert "half-way: the tree is broken" in exc.value.message and "build.log" in exc.value.message
    assert llama_cpp.list_built() == [] and not (tmp_path / "runtimes" / "llama.cpp").exists()


def test_a_missing_tool_is_named_with_how_to_get_it(monkeypatch, tmp_path):
    from suite.runtimes.build import toolchain

    monkeypatch.setattr(toolchain.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EdgebenchError, match="ninja is not installed") as exc:
        toolchain._tool("ninja")
    assert "pip install ziglang cmake ninja" in exc.value.hint
