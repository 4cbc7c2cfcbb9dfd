"""Harness overhead of the in-process llama.cpp runtime: edgebench's decode tok/s vs a bare
llama-cpp-python loop (benchmarks/_bare_llama_cpp.py, which imports nothing from `suite`).

Same model, same process, rounds interleaved (bare, edgebench, bare, ...) so machine noise hits both
sides alike. edgebench's side is what a run does around the runtime: the sensor sampler (a child
process at 10 Hz), phase and repetition callbacks, then `burst_metrics` over the repetitions.
(The session itself picks ONNX for now; `edgebench run --runtime llama.cpp` needs the session wired
to build GGUF.) Target: ratio >= 0.98.

Many short rounds (default 20 x 2 reps, + 1 warmup each) track the drift of a shared machine better than
a few long ones.

    python benchmarks/harness_overhead_llama_cpp.py [--model smollm2-135m] [--quant q4_0] [--rounds 20]
        [--reps 2] [--threads N] [--no-sampler]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _bare_llama_cpp import bare_decode_tps  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--quant", default="q4_0")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-sampler", action="store_true", help="leave the 10 Hz sampler out (to attribute overhead)")
    args = ap.parse_args()

    from suite.analysis.metrics import burst_metrics
    from suite.models import build_model, default_models_dir
    from suite.runtimes import BurstParams, get_runtime
    from suite.sensors.process import ProcessSampler

    built = build_model(args.model, fmt="gguf", quant=args.quant, out_root=default_models_dir())
    params = BurstParams(prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens, reps=args.reps,
                         warmup=1, threads=args.threads)
    runtime = get_runtime("llama-cpp-python")
    bare_all: list[float] = []
    eb_all: list[float] = []
    ratios: list[float] = []

    def bare_side() -> list[float]:
        return bare_decode_tps(built.model_file, prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens,
                               reps=args.reps, warmup=1, threads=args.threads)

    def edgebench_side() -> list[float]:
        phases: list = []
        reps: list = []

        def run():
            return runtime.run_burst(built.path, params, on_phase=lambda *a: phases.append(a),
                                     on_rep=lambda i, n, rep: reps.append(rep))

        if args.no_sampler:
            result = run()
        else:
            sampler = ProcessSampler(rate_hz=10.0)
            sampler.t0 = time.monotonic()
            with sampler:
                result = run()
        return burst_metrics(result.repetitions, params, result.load_s)["decode_tps"]["samples"]

    for r in range(args.rounds):
        # ABBA order (bare first on even rounds, edgebench first on odd ones): drift hits both sides alike
        if r % 2 == 0:
            bare, eb = bare_side(), edgebench_side()
        else:
            eb, bare = edgebench_side(), bare_side()
        bare_all += bare
        eb_all += eb
        ratios.append(statistics.median(eb) / statistics.median(bare))
        print(f"round {r + 1}: bare {statistics.median(bare):7.2f} tok/s   "
              f"edgebench {statistics.median(eb):7.2f} tok/s   ratio {ratios[-1]:.3f}", flush=True)
    b, e = statistics.median(bare_all), statistics.median(eb_all)
    print(f"\nmodel {args.model} {args.quant}, llama-cpp-python {runtime.version()}, {args.threads} threads, "
          f"prompt {args.prompt_tokens}, gen {args.gen_tokens}, {args.rounds} rounds x {args.reps} reps, "
          f"sampler {'off' if args.no_sampler else '10 Hz'}")
    print(f"bare llama-cpp-python decode: {b:.2f} tok/s (median of {len(bare_all)})")
    print(f"edgebench measured decode:    {e:.2f} tok/s (median of {len(eb_all)})")
    print(f"ratio edgebench / bare = {e / b:.3f}  (median of per-round ratios {statistics.median(ratios):.3f}; "
          f"target >= 0.98)")


if __name__ == "__main__":
    main()
