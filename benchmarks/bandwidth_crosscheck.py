"""Cross-check suite.sensors.probe.measure_memory_bandwidth against sysbench and mbw.

Usage: .venv/bin/python benchmarks/bandwidth_crosscheck.py [--threads N] [--runs 3]
Needs Debian's `sysbench` and `mbw` (apt-get install -y sysbench mbw).

How to read the figures:
- sysbench `memory --memory-oper=read` reads ONE block of --memory-block-size over and
  over. With a 1 MiB block (the usual invocation) that block lives in L2 cache, so the
  figure is cache bandwidth, not DRAM. With the default --memory-scope=global all threads
  read the SAME buffer in step, so one thread's DRAM fetch serves the others from L3 and
  the figure overstates DRAM bandwidth. The comparable run is --memory-scope=local with a
  per-thread block the size of our per-thread slice (same total footprint as our probe).
- mbw MEMCPY reports bytes copied / time; each copied byte is read once and written once,
  so DRAM traffic is about 2x the figure (3x if stores also read the line first). It is
  single-threaded: compare it with our probe at 1 thread.
All figures are best of --runs, in GB/s (1e9 bytes/s).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.sensors.probe import MIB, default_bandwidth_size, measure_memory_bandwidth, usable_cpus

GB = 1e9


def sysbench_read(threads: int, block: str, scope: str, total: str, runs: int) -> float | None:
    """Best sysbench read figure in bytes/s (it prints MiB/sec)."""
    best = None
    for _ in range(runs):
        out = subprocess.run(
            [
                "sysbench", "memory", "--memory-oper=read", f"--memory-block-size={block}",
                f"--memory-scope={scope}", f"--memory-total-size={total}", f"--threads={threads}", "run",
            ],
            capture_output=True, text=True, check=True,
        ).stdout
        m = re.search(r"MiB transferred \(([\d.]+) MiB/sec\)", out)
        if m:
            value = float(m.group(1)) * MIB
            best = value if best is None else max(best, value)
    return best


def mbw_memcpy(size_mib: int, runs: int) -> float | None:
    """Best single mbw MEMCPY run in bytes copied per second (it prints MiB/s)."""
    out = subprocess.run(
        ["mbw", "-n", str(runs), "-t0", str(size_mib)], capture_output=True, text=True, check=True
    ).stdout
    values = [float(v) * MIB for v in re.findall(r"^\d+\s+Method: MEMCPY.*Copy: ([\d.]+) MiB/s", out, re.MULTILINE)]
    return max(values) if values else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=usable_cpus())
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    missing = [tool for tool in ("sysbench", "mbw") if shutil.which(tool) is None]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install -y sysbench mbw", file=sys.stderr)
        return 2

    size = default_bandwidth_size()
    n = args.threads
    ours = {t: measure_memory_bandwidth(threads=t, size_bytes=size) for t in sorted({1, n})}
    slice_mib = size // MIB // n
    rows: list[tuple[str, int, float | None, float | None, str]] = []

    def add(label: str, threads: int, value: float | None, note: str, traffic: float = 1.0) -> None:
        ref = ours[threads].bytes_per_s
        rows.append((label, threads, value, (value * traffic / ref) if value else None, note))

    for t in sorted({1, n}):
        rows.append((f"edgebench probe ({size // MIB} MiB, own slice per thread)", t, ours[t].bytes_per_s, 1.0, ""))
    add(
        "sysbench read 1M block, global (the usual call)", n,
        sysbench_read(n, "1M", "global", "16G", args.runs), "1 MiB block is L2-resident: cache, not DRAM",
    )
    add(
        f"sysbench read {size // MIB}M block, global", n,
        sysbench_read(n, f"{size // MIB}M", "global", "16G", args.runs),
        "threads share one buffer: L3 hits inflate it",
    )
    add(
        f"sysbench read {slice_mib}M block, local", n,
        sysbench_read(n, f"{slice_mib}M", "local", "16G", args.runs), "same footprint as ours: the fair one",
    )
    if n != 1:
        add(
            f"sysbench read {size // MIB}M block, local", 1,
            sysbench_read(1, f"{size // MIB}M", "local", "16G", args.runs), "single thread",
        )
    add(
        f"mbw MEMCPY {size // MIB} MiB (x2 for read+write traffic)", 1,
        mbw_memcpy(size // MIB, max(args.runs, 5)), "ratio uses 2x the copy figure", traffic=2.0,
    )

    print(f"{'tool / config':58} {'thr':>3} {'GB/s':>8} {'vs ours':>8}  note")
    for label, threads, value, ratio, note in rows:
        v = f"{value / GB:8.2f}" if value else f"{'n/a':>8}"
        r = f"{ratio:8.2f}" if ratio else f"{'n/a':>8}"
        print(f"{label:58} {threads:>3} {v} {r}  {note}")
    for t, res in ours.items():
        print(f"ours, {t} thread(s): samples GB/s = {[round(s / GB, 1) for s in res.samples]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
