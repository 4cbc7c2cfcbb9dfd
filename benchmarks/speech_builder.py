"""Build time and peak memory of the speech model builder (whisper.cpp's ggml file, seeded random weights) on the
largest speech cards, f16 by default.

Each build runs in its own child process; its peak RSS is the kernel's figure for that child
(os.wait4 rusage ru_maxrss), cross-checked by polling with psutil. Artefacts go to a temp folder
that is removed afterwards. Targets: whisper-large-v3 (3.1 GB in f16) under 60 s and under 1 GB peak RSS
(the weights stream to disk; never the whole model in memory).

    .venv/bin/python benchmarks/speech_builder.py [--quant f16|q8_0|q5_0] [card ...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _child import measure_child  # noqa: E402

TARGET_S = 60.0
TARGET_RSS_BYTES = 1_000_000_000
CHILD = """
import json, sys, time
from pathlib import Path
from suite.models.artifact import build_speech_model
t = time.perf_counter()
built = build_speech_model(sys.argv[1], quant=sys.argv[3], out_root=Path(sys.argv[2]))
print(json.dumps({"build_s": time.perf_counter() - t, "total_bytes": built.total_bytes}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cards", nargs="*", default=["whisper-large-v3-turbo", "whisper-large-v3"])
    ap.add_argument("--quant", default="f16")
    args = ap.parse_args()
    repo = Path(__file__).resolve().parent.parent
    tmp = Path(tempfile.mkdtemp(prefix="edgebench-speech-builder-bench-"))
    try:
        for card in args.cards:
            r = measure_child([sys.executable, "-c", CHILD, card, str(tmp), args.quant], repo, card)
            print(f"{card:24s} {args.quant} build {r['build_s']:6.1f} s (process {r['wall_s']:5.1f} s, target < "
                  f"{TARGET_S:.0f} s: {r['wall_s'] / TARGET_S:.2f}x)  peak RSS {r['peak_rss_bytes'] / 1e6:6.0f} MB "
                  f"(polled {r['polled_rss_bytes'] / 1e6:.0f} MB; target < {TARGET_RSS_BYTES / 1e9:.0f} GB: "
                  f"{r['peak_rss_bytes'] / TARGET_RSS_BYTES:.2f}x)  ggml-model.bin {r['total_bytes'] / 1e9:.2f} GB, "
                  f"{r['total_bytes'] / 1e6 / max(r['build_s'], 1e-9):.0f} MB/s", flush=True)
            shutil.rmtree(tmp / card, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
