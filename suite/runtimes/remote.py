"""Running edgebench's runner on a device with Python: package it, find Python, read its events.

The runner travels as one zip application of the `suite` package's Python files (no data,
no tests support), built deterministically so its sha256 keys the provisioning cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import suite
from suite.core.errors import EdgebenchError
from suite.runtimes.base import Repetition
from suite.transport import quote

RUNNER_NAME = "edgebench-runner.pyz"
_EXCLUDE = ("suite/loopback/", "suite/report/", "suite/cli/")
_MAIN = b"import sys\nfrom suite.runtimes.runner import main\nsys.exit(main())\n"
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def runner_bytes() -> bytes:
    """The zipapp's bytes: same sources -> same bytes (fixed timestamps, sorted entries)."""
    root = Path(suite.__file__).resolve().parent
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zi = zipfile.ZipInfo("__main__.py", _ZIP_TIME)
        zf.writestr(zi, _MAIN)
        for path in sorted(root.rglob("*.py")):
            rel = "suite/" + path.relative_to(root).as_posix()
            if rel.startswith(_EXCLUDE) or "__pycache__" in rel:
                continue
            zi = zipfile.ZipInfo(rel, _ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, path.read_bytes())
    return buf.getvalue()


def build_runner(cache_dir: Path) -> Path:
    """Write the runner into `cache_dir` under its content hash; reuse it if present."""
    data = runner_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = Path(cache_dir) / f"runner-{digest}.pyz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")  # lab workers may build it at once
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


#: Where to look for a device's Python, in order. The loopback phone names its own.
PYTHON_PROP = "ro.edgebench.python"


def find_python(transport, props: dict[str, str], runtime_module: str) -> str:
    """A Python on the device that can import the runtime's module, or a clear error."""
    candidates = [c for c in (os.environ.get("EDGEBENCH_DEVICE_PYTHON"), props.get(PYTHON_PROP),
                              "python3", "/data/data/com.termux/files/usr/bin/python3") if c]
    tried = []
    for exe in dict.fromkeys(candidates):
        r = transport.shell(f"{quote(exe)} -c {quote(f'import {runtime_module}')}", timeout_s=60)
        if r.exit_code == 0:
            return exe
        tried.append(f"{exe}: {(r.stderr or r.stdout).strip().splitlines()[-1:] or ['not found']}")
    raise EdgebenchError(
        f"no Python with {runtime_module} on {transport.serial} (tried {'; '.join(tried)})",
        hint="the ort-genai and llama-cpp-python runtimes run on devices that have Python (Linux boards, Termux, "
        "the loopback phone); set EDGEBENCH_DEVICE_PYTHON to its path. Phones without Python run llama.cpp "
        "through its benchmark binary, which edgebench builds itself (--runtime llama.cpp, the default there; "
        "docs/llama-cpp.md)",
        exit_code=2,
    )


@dataclass
class RunnerEvents:
    """What the runner reported, parsed line by line; bad lines are kept, never fatal."""

    pid: int | None = None
    offset_s: float | None = None
    reps: list[Repetition] = field(default_factory=list)
    load_s: float | None = None
    info: dict | None = None
    error: dict | None = None
    done: bool = False
    noise: list[str] = field(default_factory=list)
    bandwidth: dict | None = None
    #: the runner's own peak RSS (VmHWM), the largest it reported
    vm_hwm_bytes: int | None = None

    def feed(self, line: str) -> dict | None:
        try:
            ev = json.loads(line)
            if not isinstance(ev, dict) or "event" not in ev:
                raise ValueError("not an event")
        except ValueError:
            if line.strip():
                self.noise.append(line)
            return None
        kind = ev["event"]
        hwm = ev.get("vm_hwm_bytes")
        if isinstance(hwm, int) and hwm > (self.vm_hwm_bytes or 0):
            self.vm_hwm_bytes = hwm
        if kind == "start":
            self.pid, self.offset_s = ev.get("pid"), ev.get("offset_s")
        elif kind == "rep":
            self.reps.append(Repetition(warmup=bool(ev["warmup"]), t_start=ev["t_start"],
                                        t_prefill_end=ev["t_prefill_end"], t_first_token=ev["t_first_token"],
                                        token_times=list(ev["token_times"])))
        elif kind == "loaded":
            self.load_s = ev.get("load_s")
        elif kind == "done":
            self.info, self.done = ev.get("info"), True
        elif kind == "error":
            self.error = ev
        elif kind == "bandwidth":
            self.bandwidth = ev
        return ev


def read_events(lines: Iterator[str], events: RunnerEvents, on_event=None) -> RunnerEvents:
    for line in lines:
        ev = events.feed(line)
        if ev is not None and on_event:
            on_event(ev)
    return events


def runner_command(python: str, runner: str, args: list[str]) -> str:
    return " ".join(quote(a) for a in [python, runner, *args])

