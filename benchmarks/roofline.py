"""Decode roofline fraction on this machine for the 0.5B and 7B cards.

Each run probes memory bandwidth in the same session, then reports decode tok/s as a
fraction of bandwidth / bytes-read-per-token. Target: >= 0.8 for the 7B card.

    python benchmarks/roofline.py [--models qwen2.5-0.5b llama-2-7b] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["qwen2.5-0.5b", "llama-2-7b"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    args = ap.parse_args()

    from suite.runtimes import BurstParams
    from suite.session.local import RunRequest
    from suite.session.run import run_local

    rows = []
    with tempfile.TemporaryDirectory() as results:
        for model in args.models:
            params = BurstParams(prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens, reps=args.reps,
                                 warmup=1)
            path = run_local(RunRequest(model_id=model, params=params, results_dir=Path(results)))
            rec = json.loads((path / "run.json").read_text())
            roof, m = rec["roofline"], rec["metrics"]
            rows.append((model, m["decode_tps"]["value"], roof["decode_bytes_per_token"] / 1e6,
                         roof["bandwidth_bytes_per_s"] / 1e9, roof["decode_bound_tps"],
                         m["roofline_fraction/decode"]["value"],
                         m.get("roofline_fraction/prefill", {}).get("value")))
    print(f"{'model':16} {'decode tok/s':>12} {'MB/token':>9} {'probe GB/s':>10} {'bound tok/s':>11} "
          f"{'decode frac':>11} {'prefill frac':>12}")
    for model, tps, mb, bw, bound, frac, pfrac in rows:
        pf = f"{pfrac:.3f}" if pfrac is not None else "n/a"
        print(f"{model:16} {tps:12.2f} {mb:9.1f} {bw:10.2f} {bound:11.2f} {frac:11.3f} {pf:>12}")


if __name__ == "__main__":
    main()
