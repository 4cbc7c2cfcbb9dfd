"""edgebench's own native builds: build time and size per variant (from the cached builds'
manifests, or built here), and the re-provision of a cached runtime on a loopback phone (its
binary and probes already there: the cache-hit path every later run takes). Target: < 1 s.

    .venv/bin/python benchmarks/native_build.py [--build ABI/VARIANT ...] [--repeat 5]

`--build` builds first (time with a cold zig cache: point EDGEBENCH_CACHE_DIR at an empty folder;
warm: the same folder again after `edgebench runtimes clean`, which keeps zig's cache). The
re-provision needs root, bubblewrap, mksh, toybox and cgroups (docs/loopback.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.device.provision import ensure_files  # noqa: E402
from suite.loopback import LoopbackPhone  # noqa: E402
from suite.runtimes.build import llama_cpp  # noqa: E402
from suite.runtimes.build.probes import ensure_probes  # noqa: E402
from suite.transport import AdbServerAddress, AdbTransport  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="append", default=[], help="ABI/VARIANT to build first, e.g. x86_64/x86-64-v3")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for item in args.build:
        abi, variant = item.split("/", 1)
        t = time.monotonic()
        llama_cpp.ensure_built(abi, variant, say=lambda m: print(f"  {m}", flush=True))
        print(f"built {item} in {time.monotonic() - t:.0f} s")

    print(f"{'build':40} {'zig':8} {'build_s':>8} {'size':>9}  sha256")
    builds = [b for b, problem in llama_cpp.list_built() if problem is None]
    for b in builds:
        m = b.manifest
        print(f"{m['engine'] + ' ' + m['abi'] + '/' + m['variant']:40} {m['toolchain']['compiler'][4:]:8} "
              f"{m.get('build_s', 0):8.0f} {m['size_bytes'] / 1e6:7.2f} MB  {m['sha256'][:16]}")

    x86 = [b for b in builds if b.manifest["abi"] == "x86_64"]
    if not x86:
        print("no x86_64 build to provision on a loopback phone (build one: --build x86_64/x86-64-v2)")
        return 0
    built = x86[0]
    probes = ensure_probes("x86_64", built.manifest["variant"])
    files = {f"llama-bench/{k}": v for k, v in {"bin/llama-bench": built.binary}.items()}
    files |= {f"probes/{k}": v for k, v in probes.files().items()}
    with LoopbackPhone("galaxy-a15") as phone:
        t = AdbTransport(phone.serial, AdbServerAddress("127.0.0.1", phone.server.port))
        start = time.monotonic()
        first = ensure_files(t, files)
        cold = time.monotonic() - start
        times = []
        for _ in range(args.repeat):
            start = time.monotonic()
            again = ensure_files(t, files)
            times.append(time.monotonic() - start)
            assert not again.pushed, again
        print(f"provision {built.manifest['variant']} + probes ({sum(f.stat().st_size for f in files.values()) / 1e6:.1f} MB):"
              f" first {cold:.2f} s ({len(first.pushed)} pushed); cached: median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}, {len(times)} runs); target < 1 s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
