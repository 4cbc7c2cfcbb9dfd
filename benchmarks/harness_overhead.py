"""Harness overhead: edgebench's decode tok/s vs a bare onnxruntime-genai loop.

Same model, same process, rounds interleaved (bare, edgebench, bare, ...) so machine noise
hits both sides alike. edgebench's side is the full session: sampler thread at 10 Hz,
phase callbacks, run folder written. Target: ratio >= 0.98.

    python benchmarks/harness_overhead.py [--model smollm2-135m] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _bare_ortgenai import bare_decode_tps  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    from suite.catalog.cards import get_model_card
    from suite.models import build_model, default_models_dir
    from suite.runtimes import BurstParams
    from suite.session.local import RunRequest
    from suite.session.run import run_local

    built = build_model(get_model_card(args.model), out_root=default_models_dir())
    params = BurstParams(prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens, reps=args.reps,
                         warmup=1, threads=args.threads)
    bare_all: list[float] = []
    eb_all: list[float] = []
    with tempfile.TemporaryDirectory() as results:
        for r in range(args.rounds):
            bare = bare_decode_tps(built.path, prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens,
                                   reps=args.reps, warmup=1, threads=args.threads)
            path = run_local(RunRequest(model_id=args.model, params=params, results_dir=Path(results),
                                        probe=False, sample_rate_hz=10.0))
            eb = json.loads((path / "run.json").read_text())["metrics"]["decode_tps"]["samples"]
            bare_all += bare
            eb_all += eb
            print(f"round {r + 1}: bare {statistics.median(bare):7.2f} tok/s   "
                  f"edgebench {statistics.median(eb):7.2f} tok/s   ratio {statistics.median(eb) / statistics.median(bare):.3f}")
    b, e = statistics.median(bare_all), statistics.median(eb_all)
    print(f"\nmodel {args.model}, {args.threads} threads, prompt {args.prompt_tokens}, gen {args.gen_tokens}, "
          f"{args.rounds} rounds x {args.reps} reps")
    print(f"bare onnxruntime-genai decode: {b:.2f} tok/s (median of {len(bare_all)})")
    print(f"edgebench measured decode:     {e:.2f} tok/s (median of {len(eb_all)})")
    print(f"ratio edgebench / bare = {e / b:.3f}  (target >= 0.98)")


if __name__ == "__main__":
    main()
