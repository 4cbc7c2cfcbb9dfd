"""Per-phone cgroups: CPU accounting, CPU quota (the frequency cap) and memory limit.

These machines mount cgroup v1 hierarchies under /sys/fs/cgroup/<controller>
(cpu and cpuacct separately) and a cgroup2 at /sys/fs/cgroup/unified without
controllers; a pure cgroup2 host puts controllers in /sys/fs/cgroup itself.
`detect_layout()` says which one is usable.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


def detect_layout() -> tuple[str | None, str]:
    """('v1' | 'v2' | None, reason)."""
    v1 = all((ROOT / c / "cgroup.procs").exists() for c in ("cpu", "cpuacct", "memory"))
    if v1 and (ROOT / "cpu" / "cpu.cfs_quota_us").exists():
        return "v1", "cgroup v1 cpu, cpuacct and memory hierarchies under /sys/fs/cgroup"
    ctrl = ROOT / "cgroup.controllers"
    if ctrl.exists():
        have = ctrl.read_text().split()
        if "cpu" in have and "memory" in have:
            return "v2", "cgroup v2 with cpu and memory controllers at /sys/fs/cgroup"
    return None, "no usable cgroup layout (need v1 cpu+cpuacct+memory or v2 with cpu+memory)"


def _own_path(controller: str) -> str:
    """This process's cgroup path in a v1 hierarchy, so new groups nest under it."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return path
    return "/"


@dataclass
class PhoneCgroup:
    """The group every sandboxed command of one phone runs in."""

    name: str
    layout: str
    dirs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str) -> "PhoneCgroup":
        layout, reason = detect_layout()
        if layout is None:
            raise RuntimeError(reason)
        cg = cls(name=name, layout=layout)
        if layout == "v1":
            for ctrl in ("cpu", "cpuacct", "memory"):
                base = ROOT / ctrl / _own_path(ctrl).lstrip("/")
                d = base / name
                d.mkdir(parents=True, exist_ok=True)
                cg.dirs[ctrl] = str(d)
            Path(cg.dirs["cpu"], "cpu.cfs_period_us").write_text(str(PERIOD_US))
        else:
            d = ROOT / _own_path("").lstrip("/") / name
            d.mkdir(parents=True, exist_ok=True)
            cg.dirs["unified"] = str(d)
        return cg

    def to_json(self) -> dict:
        return {"name": self.name, "layout": self.layout, "dirs": self.dirs}

    @classmethod
    def from_json(cls, d: dict) -> "PhoneCgroup":
        return cls(name=d["name"], layout=d["layout"], dirs=dict(d["dirs"]))

    def add_self(self) -> None:
        """Move the calling process in (used in the child between fork and exec)."""
        pid = str(os.getpid())
        for d in self.dirs.values():
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(pid)

    def cpu_usage_ns(self) -> int:
        if self.layout == "v1":
            return int(Path(self.dirs["cpuacct"], "cpuacct.usage").read_text())
        for line in Path(self.dirs["unified"], "cpu.stat").read_text().splitlines():
            k, v = line.split()
            if k == "usage_usec":
                return int(v) * 1000
        return 0

    def set_cpu_quota(self, cores: float | None) -> None:
        """Cap the group at `cores` host cores (None = unlimited)."""
        if self.layout == "v1":
            q = -1 if cores is None else max(1000, int(cores * PERIOD_US))
            Path(self.dirs["cpu"], "cpu.cfs_quota_us").write_text(str(q))
        else:
            v = "max" if cores is None else str(max(1000, int(cores * PERIOD_US)))
            Path(self.dirs["unified"], "cpu.max").write_text(f"{v} {PERIOD_US}")

    def set_memory_limit(self, nbytes: int | None) -> None:
        if self.layout == "v1":
            Path(self.dirs["memory"], "memory.limit_in_bytes").write_text(str(nbytes or -1))
        else:
            Path(self.dirs["unified"], "memory.max").write_text(str(nbytes) if nbytes else "max")

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs.values():
            try:
                out |= {int(p) for p in Path(d, "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return out

    def destroy(self, timeout_s: float = 5.0) -> None:
        """Kill whatever is still inside, then remove the groups."""
        deadline = time.monotonic() + timeout_s
        while True:
            pids = self.pids()
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not pids or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for d in self.dirs.values():
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
