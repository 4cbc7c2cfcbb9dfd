"""/proc/cpuinfo (Arm phones) and the cpufreq policy dump.

cpuinfo: per-processor blocks (`processor`, `CPU implementer`, `CPU part`, `Features`, ...; x86
hosts: `flags`) and, on some
Qualcomm kernels only, a global `Hardware` line. GKI kernels (Pixel 8 Pro, Dimensity 9300)
have no Hardware line, so the SoC comes from getprop. BogoMIPS is the timer rate, not a speed.

cpufreq: the output of `grep . /sys/devices/system/cpu/cpufreq/policy*/*`, one
`<path>:<value>` line per readable file; frequencies in kHz.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from suite.device.identity import ARM_PARTS, CPU_IMPLEMENTERS, CpuCluster, parse_cpu_list

# A second `Key : value` glued onto a line after 2+ spaces (seen in a pasted Pixel 8 Pro dump).
_GLUED = re.compile(r"\s{2,}(?=[A-Za-z][A-Za-z _()]*?\s*:\s)")


@dataclass(frozen=True)
class Processor:
    index: int
    implementer: int | None
    part: int | None
    variant: int | None
    revision: int | None
    #: the ISA features the kernel reports (`Features` on Arm, `flags` on x86)
    features: frozenset[str] = frozenset()

    @property
    def core_name(self) -> str | None:
        """`Cortex-A510` for Arm parts; `Qualcomm part 0x805` otherwise; None if unknown."""
        if self.implementer is None or self.part is None:
            return None
        if self.implementer == 0x41 and self.part in ARM_PARTS:
            return ARM_PARTS[self.part]
        vendor = CPU_IMPLEMENTERS.get(self.implementer, f"implementer 0x{self.implementer:x}")
        return f"{vendor} part 0x{self.part:x}"


@dataclass(frozen=True)
class CoreGroup:
    """CPUs with the same core type, in processor order (a proxy for clusters when cpufreq
    is unreadable; the A715s of a Pixel 8 Pro are one group but two cpufreq policies)."""

    core: str | None
    cpus: tuple[int, ...]


@dataclass(frozen=True)
class AndroidCpuinfo:
    processors: tuple[Processor, ...]
    hardware: str | None
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def logical_cores(self) -> int:
        return len(self.processors)

    def core_groups(self) -> tuple[CoreGroup, ...]:
        groups: dict[str | None, list[int]] = {}
        for p in self.processors:
            groups.setdefault(p.core_name, []).append(p.index)
        return tuple(CoreGroup(core, tuple(cpus)) for core, cpus in groups.items())

    def describe(self) -> str | None:
        """`4x Cortex-A510 + 4x Cortex-A715 + 1x Cortex-X3`, or None with no part numbers."""
        names = [p.core_name for p in self.processors if p.core_name]
        if not names:
            return None
        counts = Counter(names)
        return " + ".join(f"{counts[n]}x {n}" for n in dict.fromkeys(names))


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip(), 0)
    except ValueError:
        return None


def parse_android_cpuinfo(text: str) -> AndroidCpuinfo:
    """Processors (implementer/part/variant/revision), the Hardware line, and problems."""
    blocks: list[tuple[int, dict[str, str]]] = []
    glob: dict[str, str] = {}
    problems: dict[str, str] = {}
    current: dict[str, str] | None = None
    for n, raw in enumerate(text.replace("\r", "").split("\n"), start=1):
        if not raw.strip():
            current = None
            continue
        pieces = _GLUED.split(raw.strip())
        if len(pieces) > 1:
            problems[f"line {n}"] = f"{len(pieces)} fields on one line; split"
        for piece in pieces:
            key, sep, value = piece.partition(":")
            key, value = key.strip(), value.strip()
            if not sep or not key:
                problems[f"line {n}"] = "no 'key : value'; ignored"
                continue
            if key == "processor":
                idx = _int(value)
                if idx is None:
                    problems[f"line {n}"] = f"processor index {value!r} not a number; block skipped"
                    current = None
                    continue
                current = {}
                blocks.append((idx, current))
                continue
            target = current if current is not None else glob
            target.setdefault(key, value)
    processors = []
    # some kernels print one global Features line after the processor blocks
    shared = frozenset((glob.get("Features") or glob.get("flags") or "").split())
    for idx, b in blocks:
        features = frozenset((b.get("Features") or b.get("flags") or "").split()) or shared
        p = Processor(idx, _int(b.get("CPU implementer")), _int(b.get("CPU part")),
                      _int(b.get("CPU variant")), _int(b.get("CPU revision")), features)
        if p.part is None and "CPU part" in b:
            problems[f"processor {idx}"] = f"CPU part {b['CPU part']!r} not a number"
        processors.append(p)
    hardware = glob.get("Hardware") or None
    return AndroidCpuinfo(tuple(processors), hardware, problems)


# --- cpufreq ----------------------------------------------------------------------------

_CPUFREQ_LINE = re.compile(r"^(?:.*/)?(policy\d+)/([A-Za-z_0-9]+):(.*)$")
_GREP_ERR = re.compile(r"^grep: (.*?): (.*)$")

_KHZ_FILES = {
    "scaling_cur_freq": "cur_khz", "scaling_min_freq": "min_khz", "scaling_max_freq": "max_khz",
    "cpuinfo_min_freq": "cpuinfo_min_khz", "cpuinfo_max_freq": "cpuinfo_max_khz",
    "cpuinfo_cur_freq": "cpuinfo_cur_khz",
}


@dataclass(frozen=True)
class Policy:
    name: str
    related_cpus: tuple[int, ...] = ()
    affected_cpus: tuple[int, ...] = ()
    cur_khz: int | None = None
    min_khz: int | None = None
    #: scaling_max_freq: the current cap (thermal or vendor), <= cpuinfo_max_khz
    max_khz: int | None = None
    cpuinfo_min_khz: int | None = None
    cpuinfo_max_khz: int | None = None
    cpuinfo_cur_khz: int | None = None
    governor: str | None = None
    available_frequencies_khz: tuple[int, ...] = ()
    available_governors: tuple[str, ...] = ()

    @property
    def index(self) -> int:
        return int(self.name[len("policy"):])

    def to_cluster(self) -> CpuCluster:
        """The DeviceInfo record: hardware max (cpuinfo_max) first, else the scaling cap."""
        return CpuCluster(self.name, self.related_cpus or self.affected_cpus,
                          self.cpuinfo_max_khz or self.max_khz, self.governor)

    @property
    def capped(self) -> bool | None:
        """scaling_max below the hardware max (a thermal or vendor cap), None if unknown."""
        if self.max_khz is None or self.cpuinfo_max_khz is None:
            return None
        return self.max_khz < self.cpuinfo_max_khz


@dataclass(frozen=True)
class Cpufreq:
    policies: tuple[Policy, ...]
    #: path -> reason for files grep could not read (permission, missing)
    unreadable: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def parse_cpufreq(text: str) -> Cpufreq:
    """Per-policy values from `grep . .../cpufreq/policy*/*` output."""
    raw: dict[str, dict[str, str]] = {}
    unreadable: dict[str, str] = {}
    problems: dict[str, str] = {}
    for n, line in enumerate(text.replace("\r", "").split("\n"), start=1):
        if not line.strip():
            continue
        if (e := _GREP_ERR.match(line)):
            if e.group(2) != "Is a directory":  # policy*/stats is a folder: not an error
                unreadable[e.group(1)] = e.group(2)
            continue
        m = _CPUFREQ_LINE.match(line.strip())
        if not m:
            problems[f"line {n}"] = "not a '<policy path>/<file>:<value>' line; ignored"
            continue
        raw.setdefault(m.group(1), {})[m.group(2)] = m.group(3).strip()
    policies = []
    for name in sorted(raw, key=lambda p: int(p[len("policy"):])):
        files = raw[name]
        kw: dict[str, object] = {}
        for fname, attr in _KHZ_FILES.items():
            if fname in files:
                v = files[fname]
                if v.isdigit():
                    kw[attr] = int(v)
                else:
                    problems[f"{name}/{fname}"] = f"{v!r} not a kHz integer"
        for fname, attr in (("related_cpus", "related_cpus"), ("affected_cpus", "affected_cpus")):
            if fname in files:
                try:
                    kw[attr] = parse_cpu_list(files[fname])
                except ValueError:
                    problems[f"{name}/{fname}"] = f"{files[fname]!r} not a cpu list"
        if "scaling_available_frequencies" in files:
            toks = files["scaling_available_frequencies"].split()
            kw["available_frequencies_khz"] = tuple(int(t) for t in toks if t.isdigit())
        if "scaling_available_governors" in files:
            kw["available_governors"] = tuple(files["scaling_available_governors"].split())
        if files.get("scaling_governor"):
            kw["governor"] = files["scaling_governor"]
        policies.append(Policy(name, **kw))  # type: ignore[arg-type]
    return Cpufreq(tuple(policies), unreadable, problems)
