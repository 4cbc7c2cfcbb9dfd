"""Run a child process and measure it: wall time, the kernel's peak RSS (ru_maxrss from
os.wait4) and a psutil-polled peak as a cross-check. Shared by the builder benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import psutil


def measure_child(argv: list[str], cwd: Path, label: str) -> dict:
    """Run `argv`; its last stdout line is a JSON object, returned with the measurements."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, text=True)
    polled = [0]

    def poll() -> None:
        try:
            p = psutil.Process(proc.pid)
            while proc.poll() is None:
                polled[0] = max(polled[0], p.memory_info().rss)
                time.sleep(0.05)
        except psutil.NoSuchProcess:
            pass

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    watcher.join()
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode:
        raise SystemExit(f"{label}: child failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(wall_s=wall, peak_rss_bytes=usage.ru_maxrss * 1024, polled_rss_bytes=polled[0])
    return result
