"""The device-side runner: `python3 edgebench-runner.pyz burst ...` on a device with Python.

It runs the same runtime classes as the in-process path (so a number means the same thing
on a phone and on a host) and prints one JSON object per line on stdout, as it goes:

    {"event": "start", "pid": 123, "offset_s": ...}     offset: realtime - monotonic
    {"event": "loaded", "load_s": ..., "t_load_start": ..., "t_load_end": ...}
    {"event": "rep", "i": 0, "total": 6, "warmup": true, "t_start": ..., ...}
    {"event": "done", "info": {...}, "offset_s": ..., "vm_hwm_bytes": ...}
    {"event": "error", "type": "...", "message": "..."}            (exit status 1)

Every timestamp is on the device's realtime clock (the clock of mksh's $EPOCHREALTIME, which
the on-device sampler stamps its rows with), converted from the runtime's monotonic
readings with an offset measured at start and checked again at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from suite.runtimes import BurstParams, get_runtime


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _offset() -> float:
    return time.time() - time.monotonic()


def _peak_rss_bytes() -> int | None:
    """This process's peak RSS as the kernel counts it (VmHWM), if /proc says."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def burst(args: argparse.Namespace) -> int:
    offset = _offset()
    if args.pid_file:
        with open(args.pid_file, "w") as fh:
            fh.write(str(os.getpid()))
    _emit({"event": "start", "pid": os.getpid(), "offset_s": offset, "t": time.time()})
    params = BurstParams(prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens, reps=args.reps,
                         warmup=args.warmup, threads=args.threads, seed=args.seed)
    runtime = get_runtime(args.runtime)

    def on_rep(i: int, total: int, rep) -> None:
        _emit({
            "event": "rep", "i": i, "total": total, "warmup": rep.warmup,
            "t_start": rep.t_start + offset, "t_prefill_end": rep.t_prefill_end + offset,
            "t_first_token": rep.t_first_token + offset,
            "token_times": [t + offset for t in rep.token_times],
            "vm_hwm_bytes": _peak_rss_bytes(),
        })

    result = runtime.run_burst(args.model, params, on_rep=on_rep)
    _emit({"event": "loaded", "load_s": result.load_s, "t_load_start": result.t_load_start + offset,
           "t_load_end": result.t_load_end + offset})
    _emit({"event": "done", "info": result.info, "offset_s": _offset(), "t": time.time(),
           "vm_hwm_bytes": _peak_rss_bytes()})
    return 0


def probe(args: argparse.Namespace) -> int:
    # lazy: numpy, which a phone's Python may lack: then main() reports it as an error event
    from suite.sensors.probe import measure_memory_bandwidth

    bw = measure_memory_bandwidth(threads=args.threads)
    _emit({"event": "bandwidth", **bw.to_dict()})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="edgebench-runner", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("burst", help="prefill + decode repetitions")
    b.add_argument("--runtime", required=True)
    b.add_argument("--model", required=True, help="artefact folder (or .gguf file)")
    b.add_argument("--prompt-tokens", type=int, default=128)
    b.add_argument("--gen-tokens", type=int, default=64)
    b.add_argument("--reps", type=int, default=5)
    b.add_argument("--warmup", type=int, default=1)
    b.add_argument("--threads", type=int, default=None)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--pid-file", default=None, help="write the runner's pid here (for the sampler)")
    p = sub.add_parser("probe", help="memory bandwidth probe")
    p.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        return burst(args) if args.cmd == "burst" else probe(args)
    except MemoryError as exc:
        _emit({"event": "error", "type": "MemoryError", "message": str(exc) or "out of memory"})
        return 137
    except Exception as exc:  # reported to the host as data, not a traceback on a phone
        _emit({"event": "error", "type": type(exc).__name__, "message": str(exc)})
        return 1


if __name__ == "__main__":
    sys.exit(main())
