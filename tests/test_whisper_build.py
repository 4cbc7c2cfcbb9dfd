"""edgebench's own whisper.cpp build (suite.runtimes.build.whisper_cpp): the pinned source, the cache key,
the manifest, and the two binaries it makes (whisper-bench and edgebench's driver edgebench-whisper),
built for real and run on this host (x86_64) and under qemu (arm64).

The builds are made once per session (`x86_64` / `arm64`: minutes each on 2 cores the first time, then
cached under ~/.cache/edgebench/runtimes; `.ci/run` builds them before the tests). The runs use a
whisper-tiny model file from edgebench's speech builder (`suite.models.artifact.build_speech_model`)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from suite.core.errors import EdgebenchError
from suite.core.filehash import local_sha256
from suite.device.elf import elf_interpreter, read_elf
from suite.runtimes.build import cmake_build, llama_cpp, whisper_cpp
from suite.runtimes.build.toolchain import Toolchain
from suite.runtimes.build.variants import ARM64, X86_64, get_variant

TC = Toolchain(Path("/a/zig"), "0.17.1", Path("/a/cmake"), "4.4.5", Path("/a/ninja"))
#: the driver's JSON line, every key (tests/test_whisper_build.py is where a new key is added)
DRIVER_KEYS = {"engine", "driver", "driver_version", "whisper_version", "system_info", "model_type", "n_threads",
               "flash_attn", "rep", "audio_s", "samples", "audio_ctx", "audio_ctx_full", "window_s", "decode_tokens",
               "prompt_tokens", "load_ms", "mel_ms", "encode_ms", "decode_ms", "total_ms", "t", "whisper_timings",
               "vm_hwm_kb", "vm_rss_kb"}


def _unavailable(reason: str) -> None:
    """Skip, saying why; under CI=true, fail: CI must run these tests."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: the whisper.cpp build tests must run)", pytrace=False)
    pytest.skip(reason)


def _qemu() -> str:
    found = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if not found:
        _unavailable("qemu-aarch64 is not installed (Debian: apt-get install qemu-user-static): the arm64 "
                     "whisper.cpp build is checked by running it under emulation")
    return found


# --- the pinned source and the cache key (no build) ------------------------------------------------------


def test_the_source_is_whisper_cpp_1_8_5_as_pywhispercpp_1_5_1_vendors_it():
    s = whisper_cpp.SOURCE
    assert (s.package, s.version, s.subdir, s.tree) == ("pywhispercpp", "1.5.1", "whisper.cpp", "whisper.cpp")
    assert s.sdist_sha256 == "5df897e5dd9d9f16804fc937bd85b9f5880a0b29a55f8843585e0e03d76195e5"
    assert s.commit == "f24588a272ae8e23280d9c220536437164e6ed28" and s.sdist_name == "pywhispercpp-1.5.1.tar.gz"
    assert whisper_cpp.BUILD.binaries == ("edgebench-whisper", "whisper-bench")
    assert set(whisper_cpp.BUILD.targets) == {"edgebench-whisper", "whisper-bench"}
    assert {"-DBUILD_SHARED_LIBS=OFF", "-DGGML_OPENMP=OFF", "-DGGML_NATIVE=OFF",
            "-DCMAKE_BUILD_TYPE=Release"} <= set(whisper_cpp.BASE_FLAGS)


def test_the_key_is_what_decides_the_bytes_the_driver_s_source_included(tmp_path):
    v = get_variant(ARM64, "dotprod")
    key = whisper_cpp.build_key(v, TC)
    elsewhere = Toolchain(Path("/b/zig"), "0.17.1", Path("/b/cmake"), "4.4.5", Path("/b/ninja"))
    assert key == whisper_cpp.build_key(v, elsewhere)  # never a path
    assert key != whisper_cpp.build_key(get_variant(ARM64, "i8mm"), TC)
    assert key != whisper_cpp.build_key(v, Toolchain(TC.zig, "0.17.2", TC.cmake, TC.cmake_version, TC.ninja))
    other = cmake_build.Source("pywhispercpp", "1.5.2", "0" * 64, "whisper.cpp", "f" * 40)
    assert key != whisper_cpp.build_key(v, TC, other)
    # the same variant of the other engine never shares a key (nor a lock, nor a build folder)
    assert key != llama_cpp.build_key(v, TC)
    # the driver is part of the build: a changed line of it is another key; a stray file beside it is not
    project = tmp_path / "whisper"
    shutil.copytree(whisper_cpp.PROJECT, project)
    edited = dataclasses.replace(whisper_cpp.BUILD, project=project)
    assert cmake_build.build_key(edited, v, TC) == key
    (project / "notes.txt~").write_text("an editor's backup")
    assert cmake_build.build_key(edited, v, TC) == key
    (project / "edgebench_whisper.cpp").write_text((project / "edgebench_whisper.cpp").read_text() + "// edit\n")
    assert cmake_build.build_key(edited, v, TC) != key


def _fake_bundle(root: Path, name: str = "x86_64-x86-64-v2-0123456789abcdef") -> Path:
    folder = root / "runtimes" / "whisper.cpp" / name
    (folder / "bin").mkdir(parents=True)
    (folder / "lib").mkdir()
    binaries = {}
    for exe in whisper_cpp.BUILD.binaries:
        (folder / "bin" / exe).write_bytes(b"\x7fELF not really " + exe.encode())
        binaries[exe] = {"path": f"bin/{exe}", "sha256": local_sha256(folder / "bin" / exe), "size_bytes": 30}
    (folder / "manifest.json").write_text(json.dumps({
        "engine": "whisper.cpp", "binary": "bin/edgebench-whisper", "commit": whisper_cpp.SOURCE.commit,
        "abi": "x86_64", "variant": "x86-64-v2", "binaries": binaries, "toolchain": TC.to_dict(),
        "sha256": binaries["edgebench-whisper"]["sha256"], "size_bytes": 30}))
    return folder


def test_each_binary_is_checked_against_the_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    good = _fake_bundle(tmp_path)
    (unfinished := tmp_path / "runtimes" / "whisper.cpp" / "arm64-v8a-dotprod-fedcba9876543210").mkdir()
    (unfinished / "bin").mkdir()  # a build interrupted before its manifest: not a build
    ((built, problem),) = whisper_cpp.list_built()
    assert (built.path, problem) == (good, None)
    assert built.binary == good / "bin" / "edgebench-whisper"
    assert built.binaries == {"edgebench-whisper": good / "bin" / "edgebench-whisper",
                              "whisper-bench": good / "bin" / "whisper-bench"}
    record = built.record()
    assert record["binaries"] == {n: local_sha256(p) for n, p in built.binaries.items()}
    assert record["sha256"] == record["binaries"]["edgebench-whisper"] and record["variant"] == "x86-64-v2"
    (good / "bin" / "whisper-bench").write_bytes(b"\x7fELF flipped")  # the second binary is checked too
    ((built, problem),) = whisper_cpp.list_built()
    assert "whisper-bench has sha256" in problem and "manifest says" in problem
    (good / "bin" / "whisper-bench").unlink()
    assert "whisper-bench is missing" in whisper_cpp.list_built()[0][1]
    assert llama_cpp.list_built() == []  # each engine lists its own builds


def test_clean_removes_whisper_builds_too(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    _fake_bundle(tmp_path)
    (tmp_path / "runtimes" / "sources").mkdir()
    assert whisper_cpp.clean() == [tmp_path / "runtimes" / "whisper.cpp"]
    assert whisper_cpp.list_built() == [] and (tmp_path / "runtimes" / "sources").is_dir()


def test_an_unreachable_index_says_where_to_put_the_sdist(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    src = cmake_build.Source("pywhispercpp", "0.0.0.dev999", "0" * 64, "whisper.cpp", "f" * 40)
    with pytest.raises(EdgebenchError, match="could not fetch the whisper.cpp source") as exc:
        whisper_cpp.fetch_sdist(src)
    assert "pywhispercpp-0.0.0.dev999.tar.gz" in exc.value.hint


# --- the builds ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def x86_build() -> cmake_build.Built:
    """edgebench's x86_64 baseline build (x86-64-v2), built on first use and cached."""
    return whisper_cpp.ensure_built(X86_64, "x86-64-v2", say=lambda m: print(f"  {m}", flush=True))


@pytest.fixture(scope="session")
def arm_build() -> cmake_build.Built:
    """edgebench's arm64 dotprod build (phones since 2018), built on first use when qemu can run it."""
    _qemu()
    return whisper_cpp.ensure_built(ARM64, "dotprod", say=lambda m: print(f"  {m}", flush=True))


def _check_bundle(built: cmake_build.Built, abi: str, variant: str) -> None:
    m = built.manifest
    assert built.verify() is None and built.path.name == f"{abi}-{variant}-{m['key']}"
    assert m["key"] == whisper_cpp.build_key(get_variant(abi, variant), cmake_build.find_toolchain())
    assert (m["engine"], m["abi"], m["variant"], m["commit"]) == ("whisper.cpp", abi, variant,
                                                                 whisper_cpp.SOURCE.commit)
    assert m["upstream"] == {"version": "v1.8.5", "ggml": "0.13.1"}
    assert m["project"] == whisper_cpp.BUILD.project_files()
    assert m["flags"] == [*whisper_cpp.BASE_FLAGS, *get_variant(abi, variant).cmake]
    assert sorted(p.name for p in (built.path / "bin").iterdir()) == ["edgebench-whisper", "whisper-bench"]
    assert list((built.path / "lib").iterdir()) == []
    assert m["sha256"] == m["binaries"]["edgebench-whisper"]["sha256"]
    for name, path in built.binaries.items():
        assert m["binaries"][name] == {"path": f"bin/{name}", "sha256": local_sha256(path),
                                       "size_bytes": path.stat().st_size}
        info = read_elf(path)
        assert (info.abi, info.bits, info.e_type) == (abi, 64, 2)  # ET_EXEC: static, not position-independent
        assert elf_interpreter(path) is None, f"{path} needs a dynamic linker"
        assert 1e5 < path.stat().st_size < 2e7  # stripped at link time


@pytest.mark.timeout(3600)  # the first use builds it (minutes; .ci/run builds it before the tests)
def test_the_x86_64_bundle_holds_two_static_binaries(x86_build):
    _check_bundle(x86_build, X86_64, "x86-64-v2")
    assert whisper_cpp.cached(X86_64, "x86-64-v2") == x86_build
    assert whisper_cpp.build_id(X86_64, "x86-64-v2").startswith("whisper.cpp f24588a27 x86_64/x86-64-v2 key ")


@pytest.mark.timeout(3600)  # the first use builds it (minutes; .ci/run builds it before the tests)
def test_the_arm64_bundle_holds_two_static_aarch64_binaries(arm_build):
    _check_bundle(arm_build, ARM64, "dotprod")


# --- the driver ----------------------------------------------------------------------------------------------


def _wav(path: Path, seconds: float = 3.0, *, rate: int = 16000, channels: int = 1, width: int = 2) -> Path:
    """A tone with a little noise, as a WAV file of the given format."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size)
    frames = np.repeat((x * 32767).astype("<i2")[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames.astype("<i2").tobytes() if width == 2 else (frames // 256 + 128).astype("u1").tobytes())
    return path


def _driver(built: cmake_build.Built, *args: str, qemu: str | None = None, timeout: float = 600):
    argv = [*([qemu] if qemu else []), str(built.binaries["edgebench-whisper"]), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def _refusals(built: cmake_build.Built, tmp: Path, qemu: str | None = None) -> None:
    """Bad arguments and WAVs it cannot use: exit 2; models it cannot load: exit 3; a clear line each."""
    good = _wav(tmp / "ok.wav")
    model = tmp / "no-model.bin"
    for args, needle in (((), "-m, -f, -t and -n are required"),
                         (("-m", "x", "-f", str(good), "-t", "0", "-n", "4"), "-t wants an integer >= 1, got '0'"),
                         (("-m", "x", "-f", str(good), "-t", "2", "-n", "4x"), "-n wants an integer >= 0"),
                         (("-m", "x", "-f", str(good), "-t", "2", "-n", "4", "--beam"), "unknown argument '--beam'"),
                         (("-m", "x", "-f", str(good), "-t", "2", "-n"), "-n needs a value")):
        r = _driver(built, *args, qemu=qemu)
        assert r.returncode == 2 and needle in r.stderr and "usage: edgebench-whisper" in r.stderr, r.stderr
    (tmp / "text.wav").write_text("not audio at all")
    (tmp / "cut.wav").write_bytes(good.read_bytes()[:1000])
    for wav, needle in ((_wav(tmp / "stereo.wav", channels=2), "2 channel(s), 16000 Hz, 16 bits; needs PCM (1), mono"),
                        (_wav(tmp / "44k.wav", rate=44100), "1 channel(s), 44100 Hz"),
                        (_wav(tmp / "8bit.wav", width=1), "8 bits"),
                        (tmp / "text.wav", "is not a RIFF/WAVE file"),
                        (tmp / "cut.wav", "runs past the end of the file (truncated?)"),
                        (tmp / "absent.wav", "cannot open")):
        r = _driver(built, "-m", str(model), "-f", str(wav), "-t", "1", "-n", "1", qemu=qemu)
        assert r.returncode == 2 and needle in r.stderr and r.stdout == "", (wav.name, r.stderr)
    stub = whisper_cpp.source_tree() / "models" / "for-tests-ggml-tiny.bin"  # whisper.cpp's: no tensors
    vocab_cut = tmp / "vocab-cut.bin"
    vocab_cut.write_bytes(stub.read_bytes()[:100_000])
    (tmp / "noise.bin").write_bytes(np.random.default_rng(1).bytes(4096))
    (tmp / "bad-hparams.bin").write_bytes(struct.pack("<12i", 0x67676D6C, 51865, -1500, *[1] * 9))
    for bad, needle in ((model, "cannot open model"),
                        (tmp / "noise.bin", "not a whisper.cpp ggml model (no 'ggml' magic"),
                        (tmp / "bad-hparams.bin", "implausible hyperparameter #2 (-1500)"),
                        (vocab_cut, "the vocabulary runs past the end of the file (truncated)"),
                        (stub, "no tensors (the file ends after its vocabulary")):
        r = _driver(built, "-m", str(bad), "-f", str(good), "-t", "1", "-n", "1", qemu=qemu)
        assert r.returncode == 3 and needle in r.stderr and r.stdout == "", (bad.name, r.stderr)


@pytest.mark.timeout(3600)
def test_the_driver_refuses_what_it_cannot_use_with_exit_2_or_3(x86_build, tmp_path):
    _refusals(x86_build, tmp_path)


@pytest.mark.timeout(3600)
def test_the_arm64_driver_refuses_the_same_under_qemu(arm_build, tmp_path):
    _refusals(arm_build, tmp_path, qemu=_qemu())


# --- real runs on a whisper-tiny model -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def whisper_tiny(tmp_path_factory) -> Path:
    """A whisper-tiny ggml file, built by edgebench's speech builder (seeded random weights)."""
    from suite.models.artifact import build_speech_model

    return build_speech_model("whisper-tiny", out_root=tmp_path_factory.mktemp("speech-models")).model_file


def _n_vocab(model: Path) -> int:
    with open(model, "rb") as fh:
        return struct.unpack("<2i", fh.read(8))[1]  # after the magic


def _runs(r: subprocess.CompletedProcess) -> list[dict]:
    assert r.returncode == 0, r.stderr[-3000:]
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.mark.timeout(3600)
def test_the_driver_times_each_phase_of_a_real_whisper_tiny(x86_build, whisper_tiny, tmp_path):
    wav = _wav(tmp_path / "a.wav", seconds=5.0)
    before = time.time()
    r = _driver(x86_build, "-m", str(whisper_tiny), "-f", str(wav), "-t", "2", "-n", "12", "-r", "2")
    after = time.time()
    runs = _runs(r)
    assert len(runs) == 2 and [d["rep"] for d in runs] == [0, 1]
    for d in runs:
        assert set(d) == DRIVER_KEYS
        assert (d["engine"], d["driver"], d["driver_version"], d["whisper_version"]) == (
            "whisper.cpp", "edgebench-whisper", 1, "1.8.5")
        assert (d["model_type"], d["n_threads"], d["flash_attn"], d["samples"], d["audio_s"]) == (
            "tiny", 2, True, 80000, 5.0)
        assert (d["audio_ctx"], d["audio_ctx_full"], d["window_s"]) == (1500, 1500, 30.0)
        # sot, en, transcribe, notimestamps (multilingual: n_vocab >= 51865) or sot, notimestamps
        assert (d["decode_tokens"], d["prompt_tokens"]) == (12, 4 if _n_vocab(whisper_tiny) >= 51865 else 2)
        assert "SSE3 = 1" in d["system_info"] and "AVX2 = 1" not in d["system_info"]  # the x86-64-v2 build
        assert all(d[k] > 0 for k in ("load_ms", "mel_ms", "encode_ms", "decode_ms"))
        assert d["total_ms"] == pytest.approx(d["mel_ms"] + d["encode_ms"] + d["decode_ms"], abs=0.01)
        # the phases on the wall clock: in order, inside the process's life, each as long as its figure
        t = d["t"]
        stamps = [*t["load"], *t["mel"], *t["encode"], *t["decode"]]
        assert before - 1 <= stamps[0] and stamps[-1] <= after + 1
        assert t["load"][1] <= t["mel"][0] and t["mel"][1] <= t["encode"][0] <= t["encode"][1] <= t["decode"][0]
        for phase in ("mel", "encode", "decode"):
            assert (t[phase][1] - t[phase][0]) * 1e3 == pytest.approx(d[f"{phase}_ms"], abs=5)
        # whisper.cpp's own account of the same calls agrees (the driver's adds the argmax per token)
        own = d["whisper_timings"]
        assert own["encode_ms"] == pytest.approx(d["encode_ms"], rel=0.02, abs=1.0)
        assert own["decode_ms"] <= d["decode_ms"] + 0.5 and own["decode_ms"] == pytest.approx(d["decode_ms"],
                                                                                               rel=0.15, abs=3.0)
        assert d["vm_hwm_kb"] >= d["vm_rss_kb"] > whisper_tiny.stat().st_size / 1024 * 0.9  # the weights are in
    assert runs[0]["load_ms"] == runs[1]["load_ms"] and runs[0]["t"]["decode"][1] <= runs[1]["t"]["mel"][0]
    assert "whisper_print_timings:   encode time" in r.stderr  # whisper.cpp's own lines, on stderr only


@pytest.mark.timeout(3600)
def test_the_audio_context_shortens_the_encoder_window(x86_build, whisper_tiny, tmp_path):
    """-ac 256 (5.12 s) encodes ~1/6 of the positions of the full 30 s window: clearly faster."""
    wav = _wav(tmp_path / "a.wav", seconds=3.0)
    full, short = (_runs(_driver(x86_build, "-m", str(whisper_tiny), "-f", str(wav), "-t", "2", "-n", "2",
                                 *extra))[0] for extra in ((), ("-ac", "256")))
    assert (short["audio_ctx"], short["window_s"], full["audio_ctx"]) == (256, 5.12, 1500)
    assert short["encode_ms"] < 0.6 * full["encode_ms"], (short["encode_ms"], full["encode_ms"])
    for n, why in (("1501", "-ac 1501 is larger than the model's audio context (1500)"),):
        r = _driver(x86_build, "-m", str(whisper_tiny), "-f", str(wav), "-t", "1", "-n", "1", "-ac", n)
        assert r.returncode == 2 and why in r.stderr
    r = _driver(x86_build, "-m", str(whisper_tiny), "-f", str(wav), "-t", "1", "-n", "446")
    assert r.returncode == 2 and "does not fit the decoder's context" in r.stderr


@pytest.mark.slow  # whisper-bench's fixed workload: 3 encodes and ~4,600 decoded tokens (minutes on 2 cores)
@pytest.mark.timeout(3600)
def test_whisper_bench_runs_the_same_model_and_its_output_parses(x86_build, whisper_tiny):
    from suite.runtimes.outputs.whisper_cpp import FORM_BENCH, parse

    r = subprocess.run([str(x86_build.binaries["whisper-bench"]), "-m", str(whisper_tiny), "-t", "2", "-w", "0"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = parse(r.stdout + r.stderr)
    assert run.form == FORM_BENCH and run.failed is None
    assert run.values["asr_encode_s"] > 0 and run.identity["model_type"] == "tiny"


@pytest.mark.timeout(3600)
def test_the_arm64_driver_runs_the_model_under_qemu(arm_build, whisper_tiny, tmp_path):
    """The bytes a phone would run, under emulation (slow: a short window and 2 tokens; no speed is a claim)."""
    wav = _wav(tmp_path / "a.wav", seconds=1.0)
    (d,) = _runs(_driver(arm_build, "-m", str(whisper_tiny), "-f", str(wav), "-t", "2", "-n", "2", "-ac", "64",
                         qemu=_qemu(), timeout=1800))
    assert set(d) == DRIVER_KEYS and (d["audio_ctx"], d["decode_tokens"], d["model_type"]) == (64, 2, "tiny")
    assert "NEON = 1" in d["system_info"] and "DOTPROD = 1" in d["system_info"]
