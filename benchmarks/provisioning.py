"""Provisioning on a loopback phone: edgebench's `ensure_files` vs the `adb push` CLI (same
file, same adb server), and the cache-hit re-provision time of a whole model artefact.

    .venv/bin/python benchmarks/provisioning.py --model qwen2.5-0.5b --repeat 3

Targets (issue 4): push throughput >= 0.9x `adb push`; cache-hit re-provision < 1 s.
Two throughputs are printed for ensure_files: the push phase alone (what `adb push` does),
and end to end (stat + free-space check + push + the device's sha256sum verification +
manifest), which `adb push` does not do. On loopback the host side is the bottleneck (a USB 2
phone does ~38 MB/s with any client), so these are relative figures on a shared 2-core host.
Needs root, bubblewrap, mksh, toybox and cgroups (docs/loopback.md).
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

from suite.device.provision import WORK_DIR, clean, ensure_files  # noqa: E402
from suite.models import build_model  # noqa: E402
from suite.loopback import LoopbackPhone  # noqa: E402
from suite.transport import AdbServerAddress, AdbTransport  # noqa: E402

MB = 1e6


def artefact_files(path: Path, prefix: str) -> dict[str, Path]:
    return {f"{prefix}/{p.relative_to(path).as_posix()}": p for p in sorted(path.rglob("*")) if p.is_file()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-0.5b", help="model card to build (ONNX int4)")
    ap.add_argument("--models-dir", type=Path, default=None, help="[default: a temp folder]")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", default="galaxy-a15")
    a = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="edgebench-provbench-")
    os.environ.setdefault("EDGEBENCH_CACHE_DIR", str(Path(tmp.name, "cache")))
    t0 = time.perf_counter()
    built = build_model(a.model, out_root=a.models_dir or Path(tmp.name, "models"))
    print(f"model {a.model}: {built.path} ({built.manifest['total_bytes'] / MB:.1f} MB, "
          f"built/reused in {time.perf_counter() - t0:.1f} s)")
    files = artefact_files(built.path, f"models/{a.model}")
    largest_name, largest = max(files.items(), key=lambda kv: kv[1].stat().st_size)
    size = largest.stat().st_size
    total = sum(p.stat().st_size for p in files.values())
    with LoopbackPhone(a.profile, data_size_bytes=total + size + (256 << 20)) as phone:
        t = AdbTransport(phone.serial, AdbServerAddress("127.0.0.1", phone.adb_port))
        rows: dict[str, list[float]] = {"ensure_files push phase": [], "ensure_files end to end": [],
                                        "adb push (CLI)": []}
        for _ in range(a.repeat):
            clean(t, force=True)
            rep = ensure_files(t, {largest_name: largest})
            assert rep.bytes_pushed == size
            rows["ensure_files push phase"].append(rep.push_seconds)
            rows["ensure_files end to end"].append(rep.seconds)
            clean(t, force=True)
            t.shell(["mkdir", "-p", WORK_DIR], check=True)
            t1 = time.perf_counter()
            r = phone.adb("push", str(largest), f"{WORK_DIR}/cli.bin", timeout=600)
            rows["adb push (CLI)"].append(time.perf_counter() - t1)
            if r.returncode:
                raise SystemExit(r.stderr)
        clean(t, force=True)
        print(f"\npush of {largest_name} ({size / MB:.1f} MB), n={a.repeat}, medians:")
        base = size / statistics.median(rows["adb push (CLI)"])
        for name, secs in rows.items():
            rate = size / statistics.median(secs)
            print(f"  {name:26s} {rate / MB:8.1f} MB/s   ratio to adb push {rate / base:5.2f}   "
                  f"(runs: {', '.join(f'{size / s / MB:.0f}' for s in secs)} MB/s)")
        # the whole artefact, then cache hits
        first = ensure_files(t, files)
        print(f"\nfull artefact: {len(files)} files, {total / MB:.1f} MB pushed in {first.seconds:.2f} s "
              f"(push phase {first.bytes_pushed / first.push_seconds / MB:.0f} MB/s)")
        hits = []
        for _ in range(max(3, a.repeat)):
            rep = ensure_files(t, files)
            assert not rep.pushed, [f.why for f in rep.pushed]
            hits.append(rep.seconds)
        print(f"cache-hit re-provision ({len(files)} files, {total / MB:.1f} MB): median "
              f"{statistics.median(hits) * 1000:.0f} ms, max {max(hits) * 1000:.0f} ms (target < 1000 ms)")
        clean(t, force=True)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
