"""Report render time on a SYNTHETIC store: 1,000 runs / 1,000,000 samples.

Cold render (empty output folder), then a warm re-render after adding one run (the cache
under out/.cache holds every unchanged page), each twice side by side: serially (jobs=1)
and in parallel (--jobs, default every CPU), with the ratio and a check that both sites
are byte-identical. Each phase runs in its own process so its peak RSS (ru_maxrss of the
rendering process; with jobs > 1 its workers hold their own) is its own. Targets (issue 15): cold < 60 s on
2 cores, warm < 15 s. Before issue 15 (one matplotlib timeline per run page, serial):
cold 297.7 s, warm 9.4 s on 2 cores.

    python benchmarks/report_render.py [--runs 1000] [--samples-per-run 1000] [--jobs N] [--keep DIR]

With --keep, an existing DIR/results is reused as the store.

Every synthetic record carries `labels: ["synthetic-store"]`, which the report badges.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "schema" / "run-v1.json"
TIERS = ("flagship", "mid", "entry", "host")
MODELS = [(f"synth-{p}", int(p * 1e6)) for p in (82, 135, 360, 494, 1236, 1544, 2614, 3213, 3821, 7616)]


def _record(i: int, n_devices: int) -> dict:
    from suite.core.stats import metric

    rec = json.loads(EXAMPLE.read_text())
    dev = i % n_devices
    model, params = MODELS[(i // n_devices) % len(MODELS)]
    size = params * 0.56
    rec["run_id"] = f"01JDQSYNTH{i:016d}"
    rec["labels"] = ["synthetic-store"]
    rec["device"] |= {"device_id": f"synthdev{dev:04d}", "manufacturer": "Synthetic", "model": f"Phone {dev}",
                      "tier": TIERS[dev % len(TIERS)], "ram_bytes": (4 + 4 * (dev % 4)) * 2**30}
    rec["model"] |= {"id": model, "name": model, "params": params, "bytes": int(size),
                     "sha256": f"{abs(hash(model)):064x}"[:64]}
    bw = (25 + 15 * (dev % 5)) * 1e9
    decode = bw / size * 0.6
    rep = 1 + (i // (n_devices * len(MODELS))) * 0.001
    rec["metrics"] = {
        "prefill_tps": metric("prefill_tps", [decode * 3.1 * rep * (1 + k / 100) for k in range(5)]),
        "decode_tps": metric("decode_tps", [decode * rep * (1 + k / 200) for k in range(5)]),
        "peak_rss_bytes": metric("peak_rss_bytes", size * 1.2),
        "roofline_fraction/decode": metric("roofline_fraction/decode", 0.6),
    }
    return rec


def _samples(i: int, n: int):
    import numpy as np
    import pandas as pd

    t = np.arange(n // 4, dtype=float) * 0.1
    chans = [("rss_bytes", 1e8 + 1e6 * t), ("temp_c/battery", 30 + 0.01 * t), ("power_w", 3 + np.sin(t + i)),
             ("cpu_util_pct", 50 + 10 * np.cos(t))]
    return pd.DataFrame({"t_s": np.tile(t, 4), "channel": np.repeat([c for c, _ in chans], len(t)),
                         "value": np.concatenate([v for _, v in chans])})


def build_store(results: Path, runs: int, samples_per_run: int) -> None:
    from suite.store import write_run

    for i in range(runs):
        write_run(results, _record(i, 20), _samples(i, samples_per_run))


def _phase(kind: str, results: str, out: str, jobs: int, q) -> None:
    from suite.report import render_report

    t0 = time.perf_counter()
    render_report([Path(results)], Path(out), title="SYNTHETIC STORE: render benchmark", jobs=jobs)
    wall = time.perf_counter() - t0
    log = json.loads((Path(out) / ".cache" / "render-log.json").read_text())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # workers are the forkserver's, not ours
    q.put((kind, jobs, wall, rss / 1024, len(log["rendered"]), len(log["reused"]), len(log["written"])))


def _run_phase(kind: str, results: Path, out: Path, jobs: int) -> tuple:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_phase, args=(kind, str(results), str(out), jobs, q))
    p.start()
    res = q.get()
    p.join()
    return res


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def main() -> None:
    from suite.report.render import default_jobs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--samples-per-run", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=default_jobs(), help="processes of the parallel render "
                    "[default: the CPUs this process may use]; the serial render (jobs=1) runs beside it")
    ap.add_argument("--keep", type=Path, help="build the store and site here and keep them")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="edgebench-render-"))
    results = base / "results"
    serial, parallel = base / "site-serial", base / "site-parallel"
    try:
        t0 = time.perf_counter()
        if not results.exists():
            build_store(results, args.runs, args.samples_per_run)
        print(f"store: {args.runs} runs, {args.runs * args.samples_per_run:,} samples, "
              f"written in {time.perf_counter() - t0:.1f} s (SYNTHETIC); {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f} at start")
        rows = [_run_phase("cold", results, serial, 1), _run_phase("cold", results, parallel, args.jobs)]
        same = _files(serial) == _files(parallel)
        from suite.store import write_run

        write_run(results, _record(args.runs, 20), _samples(args.runs, args.samples_per_run))
        rows += [_run_phase("warm +1 run", results, serial, 1), _run_phase("warm +1 run", results, parallel, args.jobs)]
        same = same and _files(serial) == _files(parallel)
        print(f"{'phase':12} {'jobs':>4} {'wall s':>8} {'main RSS MiB':>13} {'pages rendered':>15} {'reused':>7} "
              f"{'written':>8}")
        for kind, jobs, wall, rss, rendered, reused, written in rows:
            print(f"{kind:12} {jobs:4d} {wall:8.1f} {rss:13.0f} {rendered:15d} {reused:7d} {written:8d}")
        for i, kind in ((0, "cold"), (2, "warm")):
            print(f"{kind}: serial / parallel = {rows[i][2] / rows[i + 1][2]:.2f}x")
        print(f"load average {os.getloadavg()[0]:.1f} at the end; "
              f"parallel and serial sites byte-identical: {'yes' if same else 'NO'}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
