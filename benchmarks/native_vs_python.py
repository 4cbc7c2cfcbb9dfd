"""edgebench's own static llama-bench (suite.runtimes.build, zig, musl) vs llama-cpp-python in process:
the same GGUF, the same threads, prefill and decode tok/s, side by side, rounds interleaved (native,
python, native, ...) so the machine's noise hits both alike. Target: ratio >= 0.95 for both.

The native side is llama-bench itself (`-p N -n 0`, then `-p 0 -n M -d N`: decode at the prompt's
depth, as the in-process burst decodes after its prompt); the python side is the `llama-cpp-python`
runtime's burst (`suite/runtimes/llama_cpp_python.py`: one llama_decode of the prompt, then M - 1
greedy steps). The native build is this host's best variant (`/proc/cpuinfo` flags), built first if absent.

    python benchmarks/native_vs_python.py [--model smollm2-135m] [--rounds 6] [--reps 3] [--threads N]
        [--variant auto|x86-64-v2|x86-64-v3|x86-64-v4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess


def native_tps(binary: str, model: str, *, prompt: int, gen: int, reps: int, threads: int) -> tuple[float, float]:
    """(prefill tok/s, decode tok/s): llama-bench's own avg_ts, one invocation per phase."""
    def one(args: list[str]) -> float:
        out = subprocess.run([binary, "-m", model, *args, "-r", str(reps), "-t", str(threads), "-o", "jsonl"],
                             capture_output=True, text=True, check=True, timeout=1800).stdout
        rows = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
        return float(rows[-1]["avg_ts"])

    return (one(["-p", str(prompt), "-n", "0"]), one(["-p", "0", "-n", str(gen), "-d", str(prompt)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--variant", default="auto")
    args = ap.parse_args()

    from suite.analysis.metrics import burst_metrics
    from suite.models import build_model, default_models_dir
    from suite.runtimes import BurstParams, get_runtime
    from suite.runtimes.build import llama_cpp, variants

    variant = args.variant
    if variant == "auto":
        with open("/proc/cpuinfo") as fh:
            variant = variants.choose_variant(variants.X86_64, variants.cpu_features(fh.read())).variant.name
    built_rt = llama_cpp.ensure_built(variants.X86_64, variant, say=print)
    built = build_model(args.model, fmt="gguf", quant="q4_0", out_root=default_models_dir())
    params = BurstParams(prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens, reps=args.reps, warmup=1,
                         threads=args.threads)
    runtime = get_runtime("llama-cpp-python")
    print(f"{args.model} q4_0, prompt {args.prompt_tokens}, gen {args.gen_tokens}, {args.threads} threads; "
          f"native: llama-bench {variant} ({built_rt.manifest['sha256'][:12]}), python: llama-cpp-python in process")
    ratios = {"prefill": [], "decode": []}
    for r in range(args.rounds):
        n_pp, n_tg = native_tps(str(built_rt.binary), str(built.model_file), prompt=args.prompt_tokens,
                                gen=args.gen_tokens, reps=args.reps, threads=args.threads)
        result = runtime.run_burst(built.model_file, params)
        m = burst_metrics(result.repetitions, params, result.load_s)
        p_pp, p_tg = m["prefill_tps"]["value"], m["decode_tps"]["value"]
        ratios["prefill"].append(n_pp / p_pp)
        ratios["decode"].append(n_tg / p_tg)
        print(f"round {r + 1}: prefill native {n_pp:8.1f} python {p_pp:8.1f} ratio {n_pp / p_pp:5.3f} | "
              f"decode native {n_tg:7.1f} python {p_tg:7.1f} ratio {n_tg / p_tg:5.3f}", flush=True)
    for phase, vals in ratios.items():
        print(f"{phase}: native / python median {statistics.median(vals):.3f} "
              f"(min {min(vals):.3f}, max {max(vals):.3f}, {len(vals)} rounds); target >= 0.95")


if __name__ == "__main__":
    main()
