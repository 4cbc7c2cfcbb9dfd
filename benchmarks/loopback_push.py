"""Push throughput through a loopback phone: adbutils `sync.push` vs the `adb push`
CLI, same file, same adb server, printed side by side with the ratio.

    .venv/bin/python benchmarks/loopback_push.py --size-mb 200 --repeat 3

Needs root, bubblewrap, mksh, toybox and cgroups (see docs/loopback.md). On
loopback the host side is the bottleneck (a real USB 2 phone takes ~38 MB/s),
which is exactly what this compares: the cost of each client.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.loopback import LoopbackPhone  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=200, help="file size in MiB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", default="galaxy-a15")
    a = ap.parse_args()
    size = a.size_mb << 20
    with tempfile.TemporaryDirectory(prefix="edgebench-pushbench-") as tmp, \
            LoopbackPhone(a.profile, data_size_bytes=size * 2 + (64 << 20)) as phone:
        src = Path(tmp, "payload.bin")
        with open(src, "wb") as f:
            block = os.urandom(1 << 20)
            for i in range(a.size_mb):
                f.write(block[i:] + block[:i])
        d = phone.device()
        rows = {"adbutils sync.push": [], "adb push (CLI)": [],
                "adbutils sync.pull": [], "adb pull (CLI)": []}
        for _ in range(a.repeat):
            t = time.perf_counter()
            d.sync.push(str(src), "/data/local/tmp/p1.bin")
            rows["adbutils sync.push"].append(time.perf_counter() - t)
            t = time.perf_counter()
            r = phone.adb("push", str(src), "/data/local/tmp/p2.bin", timeout=600)
            rows["adb push (CLI)"].append(time.perf_counter() - t)
            if r.returncode:
                raise SystemExit(r.stderr)
            t = time.perf_counter()
            d.sync.pull("/data/local/tmp/p1.bin", str(Path(tmp, "back1.bin")))
            rows["adbutils sync.pull"].append(time.perf_counter() - t)
            t = time.perf_counter()
            r = phone.adb("pull", "/data/local/tmp/p2.bin", str(Path(tmp, "back2.bin")), timeout=600)
            rows["adb pull (CLI)"].append(time.perf_counter() - t)
            d.shell("rm -f /data/local/tmp/p1.bin /data/local/tmp/p2.bin")
            for f in ("back1.bin", "back2.bin"):
                Path(tmp, f).unlink(missing_ok=True)
        mbps = {k: [size / 1e6 / s for s in v] for k, v in rows.items()}
        print(f"loopback phone {phone.profile_name} ({phone.serial}), adb server port {phone.adb_port}, "
              f"file {a.size_mb} MiB, n={a.repeat}, host cpus={os.cpu_count()} (simulated device)")
        print(f"{'client':<22}{'median MB/s':>12}{'min':>8}{'max':>8}")
        for k, v in mbps.items():
            print(f"{k:<22}{statistics.median(v):>12.0f}{min(v):>8.0f}{max(v):>8.0f}")
        for op in ("push", "pull"):
            u = statistics.median(mbps[f"adbutils sync.{op}"])
            c = statistics.median(mbps[f"adb {op} (CLI)"])
            print(f"{op}: adbutils / adb CLI = {u / c:.2f}  (adb CLI is {c / u:.1f}x adbutils)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
