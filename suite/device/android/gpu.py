"""GPU load nodes and directory listings used to discover them (FACTS.md section 3).

Samsung's `/sys/kernel/gpu/gpu_busy` reads `97 %`; Adreno's `gpu_busy_percentage` reads
`NN %` and `gpubusy` reads two counters `busy total`. MediaTek Mali exposes no utilization
node to the shell on the A15 (its `mali0/device` listing has none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Candidate load nodes, in the order a sampler should try them.
GPU_BUSY_NODES = (
    "/sys/kernel/gpu/gpu_busy",  # Samsung
    "/sys/class/kgsl/kgsl-3d0/gpu_busy_percentage",  # Adreno
    "/sys/class/kgsl/kgsl-3d0/gpubusy",  # Adreno: "busy total"
    "/sys/class/misc/mali0/device/utilization",  # Mali (absent on the MT6789 A15)
)


@dataclass(frozen=True)
class GpuBusy:
    busy_pct: float | None
    problems: dict[str, str] = field(default_factory=dict)


def parse_gpu_busy(text: str) -> GpuBusy:
    """`97 %`, `97`, or Adreno `gpubusy` `<busy> <total>` -> percent."""
    s = text.strip()
    if (m := re.fullmatch(r"(\d+(?:\.\d+)?)\s*%?", s)):
        v = float(m.group(1))
        if v > 100:
            return GpuBusy(None, {"value": f"{v:g} % is above 100"})
        return GpuBusy(v)
    if (m := re.fullmatch(r"(\d+)\s+(\d+)", s)):
        busy, total = int(m.group(1)), int(m.group(2))
        if total == 0:
            return GpuBusy(None, {"value": "total 0: GPU idle for the whole window or counters reset"})
        return GpuBusy(100.0 * busy / total)
    return GpuBusy(None, {"value": f"unrecognised GPU load text {s[:80]!r}"})


def parse_ls(text: str) -> tuple[str, ...]:
    """Names from `ls` output (one per line or several per line)."""
    return tuple(name for line in text.splitlines() for name in line.split())


_SHELL_ERR = re.compile(r"^(?:\S+: )?(/\S*?): (No such file or directory|Permission denied|Is a directory|"
                        r"Not a directory|Operation not permitted|Invalid argument)\s*$")


def parse_shell_errors(text: str) -> dict[str, str]:
    """`grep: /path: No such file or directory`-style lines -> {path: reason}. A path that
    still holds a `*` is a glob the shell could not expand (directory not traversable)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if (m := _SHELL_ERR.match(line.strip())):
            reason = m.group(2)
            if "*" in m.group(1):
                reason += " (glob not expanded: the folders are not readable by the shell user)"
            out[m.group(1)] = reason
    return out
