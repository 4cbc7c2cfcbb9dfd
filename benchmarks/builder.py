"""Build time and peak memory of the ONNX model factory on the two largest reference cards.

Each build runs in its own child process; its peak RSS is the kernel's figure for that child
(os.wait4 rusage ru_maxrss), cross-checked by polling with psutil. Artefacts go to a temp folder
that is removed afterwards. Targets: Llama-2-13B under 60 s and under 1 GB peak RSS.

    .venv/bin/python benchmarks/builder.py [card ...]
"""

from __future__ import annotations

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
from suite.models import build_model
t = time.perf_counter()
built = build_model(sys.argv[1], out_root=Path(sys.argv[2]))
print(json.dumps({"build_s": time.perf_counter() - t, "total_bytes": built.total_bytes,
                  "files": {k: v["bytes"] for k, v in built.manifest["files"].items()},
                  "weight_bytes_read_per_token": built.manifest["weight_bytes_read_per_token"]}))
"""


def measure(card_id: str, out_root: Path) -> dict:
    repo = Path(__file__).resolve().parent.parent
    result = measure_child([sys.executable, "-c", CHILD, card_id, str(out_root)], repo, card_id)
    result["card"] = card_id
    return result


def main(cards: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="edgebench-builder-bench-"))
    try:
        for card in cards:
            r = measure(card, tmp)
            print(f"{card:14s} build {r['build_s']:6.1f} s (process {r['wall_s']:5.1f} s, target < {TARGET_S:.0f} s: "
                  f"{r['wall_s'] / TARGET_S:.2f}x)  peak RSS {r['peak_rss_bytes'] / 1e6:6.0f} MB "
                  f"(polled {r['polled_rss_bytes'] / 1e6:.0f} MB; target < {TARGET_RSS_BYTES / 1e9:.0f} GB: "
                  f"{r['peak_rss_bytes'] / TARGET_RSS_BYTES:.2f}x)  artefact {r['total_bytes'] / 1e9:.2f} GB "
                  f"(model.onnx.data {r['files']['model.onnx.data'] / 1e9:.2f} GB, model.onnx "
                  f"{r['files']['model.onnx'] / 1e3:.0f} kB)  weights read/token {r['weight_bytes_read_per_token'] / 1e9:.2f} GB",
                  flush=True)
            shutil.rmtree(tmp / card)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["llama-2-7b", "llama-2-13b"])
