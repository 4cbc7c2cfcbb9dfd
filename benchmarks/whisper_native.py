"""edgebench's own static whisper.cpp build (zig, musl, suite.runtimes.build.whisper_cpp) vs the same
whisper.cpp tree built natively for this host with the system's g++ and cmake and the SAME instruction
sets (the variant's GGML_* switches, GGML_NATIVE=OFF, the same base switches): whisper.cpp's own
benchmark, `whisper-bench -m MODEL -t T -w 0`, from both, rounds interleaved (edgebench, native, then
native, edgebench, ...) so the machine's noise hits both alike. Target: encode time ratio
edgebench / native within 5% (0.95 to 1.05).

The variant is this host's best (`/proc/cpuinfo` flags) unless `--variant` names one; edgebench's build
is made first if absent, the native one once per variant under the runtimes' build folder
(`edgebench runtimes clean` removes it). whisper-bench's output is read by edgebench's whisper.cpp
parser (suite.runtimes.outputs.whisper_cpp). The model: a ggml file (`--model PATH`), or a speech card
built by edgebench's speech builder (`--model whisper-tiny`: suite.models.artifact.build_speech_model).

    python benchmarks/whisper_native.py --model PATH|whisper-tiny [--rounds 5] [--threads N]
        [--variant auto|x86-64-v2|x86-64-v3|x86-64-v4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.runtimes.build import variants, whisper_cpp  # noqa: E402
from suite.runtimes.build.cmake_build import runtimes_dir  # noqa: E402
from suite.runtimes.outputs.whisper_cpp import parse  # noqa: E402

#: whisper-bench's figures compared (ms per run; per token for batchd and prompt): the encoder is the target
FIGURES = ("asr_encode_s", "asr_decode_s", "asr_batchd_s", "asr_prompt_s")


def native_build(variant: variants.Variant) -> Path:
    """whisper-bench built with the system's g++ and cmake for the variant's instruction sets (once)."""
    work = runtimes_dir() / "build" / f"native-whisper.cpp-{variant.abi}-{variant.name}"
    exe = work / "cmake" / "bin" / "whisper-bench"
    if exe.is_file():
        return exe
    cmake, cxx = shutil.which("cmake"), shutil.which("g++")
    if not cmake or not cxx:
        raise SystemExit("the native side needs the system's cmake and g++ (Debian: apt-get install cmake g++)")
    src = whisper_cpp.source_tree(say=print)
    generator = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={shutil.which('ninja')}"] if shutil.which("ninja") else []
    configure = [cmake, "-S", str(whisper_cpp.PROJECT), "-B", str(work / "cmake"), *generator,
                 f"-DCMAKE_CXX_COMPILER={cxx}", f"-DCMAKE_C_COMPILER={shutil.which('gcc') or 'cc'}",
                 f"-DEDGEBENCH_SOURCE_TREE={src}", *whisper_cpp.BASE_FLAGS, *variant.cmake]
    print(f"building the native whisper-bench ({variant.key} switches, system g++) in {work}", flush=True)
    started = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "build.log", "w") as log:
        for argv in (configure, [cmake, "--build", str(work / "cmake"), "--target", "whisper-bench",
                                 "-j", str(os.cpu_count() or 2)]):
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            if subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                raise SystemExit(f"the native build failed; the log is {work / 'build.log'}")
    print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
    return exe


def bench(exe: Path, model: Path, threads: int) -> dict[str, float]:
    """whisper-bench -w 0 once: its figures in ms per run (or token), and its system_info line."""
    r = subprocess.run([str(exe), "-m", str(model), "-t", str(threads), "-w", "0"], capture_output=True, text=True,
                       timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"{exe} failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    (run,) = parse(r.stdout + r.stderr)
    # whisper.cpp prints totals and counts (runs; tokens for batchd and prompt): per run, or per token
    out = {k: run.values[k] * 1e3 / (run.counts.get(f"{k[4:-2]}_runs") or 1) for k in FIGURES if k in run.values}
    out["system_info"] = run.identity.get("system_info", "")
    return out


def speech_model(name: str) -> Path:
    """A ggml file given by path, or a speech card built by edgebench's speech builder (f16, seed 0)."""
    path = Path(name)
    if path.is_file():
        return path
    from suite.models.artifact import build_speech_model

    return build_speech_model(name).model_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a whisper.cpp ggml file, or a speech card id (whisper-tiny)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--variant", default="auto")
    args = ap.parse_args()

    name = args.variant
    if name == "auto":
        with open("/proc/cpuinfo") as fh:
            name = variants.choose_variant(variants.X86_64, variants.cpu_features(fh.read())).variant.name
    variant = variants.get_variant(variants.X86_64, name)
    model = speech_model(args.model)
    ours = whisper_cpp.ensure_built(variants.X86_64, variant.name, say=print).binaries["whisper-bench"]
    native = native_build(variant)
    print(f"{model.name} ({model.stat().st_size / 1e6:.1f} MB), {args.threads} threads, {variant.key} "
          f"({', '.join(f for f in variant.cmake if f.endswith('=ON'))}); whisper-bench -w 0 from both")
    ratios: dict[str, list[float]] = {k: [] for k in FIGURES}
    for r in range(args.rounds):
        order = (("edgebench", ours), ("native", native)) if r % 2 == 0 else (("native", native), ("edgebench", ours))
        got = {side: bench(exe, model, args.threads) for side, exe in order}
        if r == 0:
            for side in ("edgebench", "native"):
                print(f"  {side} system_info: {got[side]['system_info']}")
        for k in FIGURES:
            if k in got["edgebench"] and k in got["native"] and got["native"][k] > 0:
                ratios[k].append(got["edgebench"][k] / got["native"][k])
        e, n = got["edgebench"]["asr_encode_s"], got["native"]["asr_encode_s"]
        print(f"round {r + 1} ({order[0][0]} first): encode edgebench {e:8.1f} ms, native {n:8.1f} ms, "
              f"ratio {e / n:5.3f} | decode per token {got['edgebench'].get('asr_decode_s', 0):6.2f} vs "
              f"{got['native'].get('asr_decode_s', 0):6.2f} ms", flush=True)
    for k, vals in ratios.items():
        if vals:
            what = "encode (the target: 0.95 to 1.05)" if k == "asr_encode_s" else k.removeprefix("asr_")[:-2]
            print(f"{what}: edgebench / native median {statistics.median(vals):.3f} "
                  f"(min {min(vals):.3f}, max {max(vals):.3f}, {len(vals)} rounds)")


if __name__ == "__main__":
    main()
