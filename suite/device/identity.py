"""Device identity: the `device` block of run.json (DESIGN.md section 2).

`local_device_info()` describes this host from psutil, platform, procfs and sysfs. The
text parsers are pure functions of the file text so they can be fed real captures from
phones (tests/fixtures/android/) as well as this machine's live /proc.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

SALT_ENV = "EDGEBENCH_LAB_SALT"
DEFAULT_SALT_FILE = Path("~/.config/edgebench/salt")
DEVICE_ID_HEX_CHARS = 16

TIER_HOST = "host"
TRANSPORT_LOCAL = "local"

# Arm Ltd (implementer 0x41) CPU part numbers, used to name a CPU when /proc/cpuinfo has
# neither `model name`, `Hardware` nor `Processor` (e.g. Pixel 8 Pro, Dimensity 9300).
ARM_PARTS = {
    0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57",
    0xD08: "Cortex-A72", 0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77", 0xD40: "Neoverse-V1", 0xD41: "Cortex-A78",
    0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710", 0xD48: "Cortex-X2",
    0xD49: "Neoverse-N2", 0xD4B: "Cortex-A78C", 0xD4D: "Cortex-A715", 0xD4E: "Cortex-X3",
    0xD4F: "Neoverse-V2", 0xD80: "Cortex-A520", 0xD81: "Cortex-A720", 0xD82: "Cortex-X4",
}
CPU_IMPLEMENTERS = {
    0x41: "Arm", 0x42: "Broadcom", 0x43: "Cavium", 0x48: "HiSilicon", 0x4E: "NVIDIA",
    0x51: "Qualcomm", 0x53: "Samsung", 0x61: "Apple", 0xC0: "Ampere",
}
X86_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}


# --- records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuCluster:
    """One cpufreq policy: the CPUs that share a clock."""

    policy: str
    cpus: tuple[int, ...]
    max_khz: int | None
    governor: str | None


@dataclass(frozen=True)
class OsInfo:
    name: str | None = None
    release: str | None = None
    android_release: str | None = None
    sdk: int | None = None
    fingerprint: str | None = None
    kernel: str | None = None


@dataclass(frozen=True)
class CpuInfo:
    model: str | None = None
    physical_cores: int | None = None
    logical_cores: int | None = None
    clusters: tuple[CpuCluster, ...] = ()


@dataclass(frozen=True)
class DeviceInfo:
    """What a device is. A field we could not learn is None and says why in `unavailable`
    (keyed by dotted field name, e.g. "os.sdk")."""

    device_id: str
    serial: str | None
    manufacturer: str | None
    model: str | None
    soc_vendor: str | None
    soc_model: str | None
    soc_name: str | None
    tier: str
    ram_bytes: int | None
    os: OsInfo
    abi: str | None
    cpu: CpuInfo
    transport: str
    simulated: bool
    unavailable: Mapping[str, str] = field(default_factory=dict)
    #: how the SoC was identified (a phone): the evidence that decided (`matched_on`), `ambiguous` with
    #: its `candidates`, the sources that named another part (`conflicts`), the `hint`
    soc_match: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cpu"]["clusters"] = [
            {**c, "cpus": list(c["cpus"])} for c in d["cpu"]["clusters"]
        ]
        d["unavailable"] = dict(self.unavailable)
        return d

    def public_dict(self) -> dict[str, Any]:
        """The record for published reports: no serial."""
        d = self.to_dict()
        d["serial"] = None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceInfo:
        cpu = dict(d["cpu"])
        cpu["clusters"] = tuple(
            CpuCluster(c["policy"], tuple(c["cpus"]), c["max_khz"], c["governor"])
            for c in cpu.get("clusters", ())
        )
        return cls(
            **{k: d[k] for k in d if k not in ("os", "cpu", "unavailable")},
            os=OsInfo(**d["os"]),
            cpu=CpuInfo(**cpu),
            unavailable=dict(d.get("unavailable", {})),
        )


# --- ids --------------------------------------------------------------------------------


def device_id(serial: str, salt: str) -> str:
    """Short salted hash of a serial: stable within a lab, unlinkable across labs."""
    digest = hashlib.sha256(f"{salt}\0{serial}".encode()).hexdigest()
    return digest[:DEVICE_ID_HEX_CHARS]


def lab_salt(env: Mapping[str, str] | None = None, salt_file: Path | None = None) -> str:
    """The lab's salt: $EDGEBENCH_LAB_SALT, else a per-user file created once (mode 0600)."""
    env = os.environ if env is None else env
    if env.get(SALT_ENV):
        return env[SALT_ENV]
    path = (salt_file or DEFAULT_SALT_FILE).expanduser()
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: if two processes race, one creates and the other reads the winner's salt.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(16) + "\n")
    return path.read_text().strip()


# --- pure parsers -----------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedCpuinfo:
    model: str | None
    vendor: str | None
    logical_cores: int
    physical_cores: int | None
    #: (implementer, part) per processor on Arm, in processor order; empty on x86.
    arm_parts: tuple[tuple[int, int], ...] = ()


def _cpuinfo_blocks(text: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Split /proc/cpuinfo into per-processor blocks and the global (non-processor) keys."""
    blocks: list[dict[str, str]] = []
    glob: dict[str, str] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            current = None
            continue
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor" and value.isdigit():
            current = {}
            blocks.append(current)
        if current is not None:
            current.setdefault(key, value)
        else:
            glob.setdefault(key, value)
    return blocks, glob


def _int_auto(s: str | None) -> int | None:
    try:
        return int(s, 0) if s is not None else None
    except ValueError:
        return None


def describe_arm_parts(parts: tuple[tuple[int, int], ...]) -> str:
    """'4x Cortex-A510 + 4x Cortex-A715 + 1x Cortex-X3', in order of first appearance."""
    names = []
    for impl, part in parts:
        if impl == 0x41 and part in ARM_PARTS:
            names.append(ARM_PARTS[part])
        else:
            vendor = CPU_IMPLEMENTERS.get(impl, f"implementer 0x{impl:x}")
            names.append(f"{vendor} part 0x{part:x}")
    counts = Counter(names)
    return " + ".join(f"{counts[n]}x {n}" for n in dict.fromkeys(names))


def parse_cpuinfo(text: str) -> ParsedCpuinfo:
    """Model, vendor and core counts from /proc/cpuinfo text (x86 or Arm)."""
    blocks, glob = _cpuinfo_blocks(text)
    first = blocks[0] if blocks else {}
    arm_parts = tuple(
        (impl, part)
        for b in blocks
        if (impl := _int_auto(b.get("CPU implementer"))) is not None
        and (part := _int_auto(b.get("CPU part"))) is not None
    )
    # x86 has `model name` per processor; Arm kernels may have a global `Hardware` line
    # (Qualcomm) or a `Processor` line (older/32-bit); GKI kernels have neither.
    model = (
        first.get("model name")
        or glob.get("model name")
        or glob.get("Hardware")
        or glob.get("Processor")
        or first.get("Processor")
        or (describe_arm_parts(arm_parts) if arm_parts else None)
    )
    vendor = None
    if "vendor_id" in first:
        vendor = X86_VENDORS.get(first["vendor_id"], first["vendor_id"])
    elif arm_parts:
        vendor = CPU_IMPLEMENTERS.get(arm_parts[0][0])
    physical: int | None
    if blocks and all("core id" in b for b in blocks):
        physical = len({(b.get("physical id", "0"), b["core id"]) for b in blocks})
    elif arm_parts:
        physical = len(blocks)  # no SMT on the Arm cores phones use
    else:
        physical = None
    return ParsedCpuinfo(model, vendor, len(blocks), physical, arm_parts)


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """'0-3,6' or '0 1 2 3' (sysfs cpu lists) -> (0, 1, 2, 3[, 6])."""
    cpus: list[int] = []
    for token in re.split(r"[,\s]+", text.strip()):
        if not token:
            continue
        lo, _, hi = token.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(cpus)


def parse_os_release(text: str) -> dict[str, str]:
    """/etc/os-release KEY=value lines (values optionally quoted)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip("\"'")
    return out


# --- sysfs readers ----------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_cpufreq_clusters(sys_root: Path = Path("/sys")) -> tuple[tuple[CpuCluster, ...], str | None]:
    """cpufreq policies as clusters, or () and the reason there are none."""
    base = sys_root / "devices/system/cpu/cpufreq"
    if not base.is_dir():
        return (), f"no {base} on this host"
    policies = sorted(
        (p for p in base.iterdir() if re.fullmatch(r"policy\d+", p.name)),
        key=lambda p: int(p.name[len("policy"):]),
    )
    if not policies:
        return (), f"no cpufreq policies under {base} (cpufreq driver not exposed, e.g. in a VM)"
    clusters = []
    for p in policies:
        cpus_text = _read(p / "related_cpus") or _read(p / "affected_cpus")
        max_khz = _read(p / "cpuinfo_max_freq") or _read(p / "scaling_max_freq")
        clusters.append(
            CpuCluster(
                policy=p.name,
                cpus=parse_cpu_list(cpus_text) if cpus_text else (),
                max_khz=int(max_khz) if max_khz and max_khz.isdigit() else None,
                governor=_read(p / "scaling_governor"),
            )
        )
    return tuple(clusters), None


def host_serial(etc_root: Path = Path("/etc")) -> tuple[str | None, str | None]:
    """A stable identity for this host: its systemd/dbus machine-id."""
    value = _read(etc_root / "machine-id")
    if value:
        return value, None
    return None, f"no readable {etc_root / 'machine-id'} on this host"


# --- the local host ---------------------------------------------------------------------


def local_device_info(
    *,
    proc_root: Path = Path("/proc"),
    sys_root: Path = Path("/sys"),
    etc_root: Path = Path("/etc"),
    salt: str | None = None,
) -> DeviceInfo:
    """Describe this host as a device (tier `host`, transport `local`)."""
    unavailable: dict[str, str] = {}

    cpuinfo_text = _read(proc_root / "cpuinfo")
    parsed = parse_cpuinfo(cpuinfo_text) if cpuinfo_text else None
    if parsed is None:
        unavailable["cpu.model"] = f"{proc_root / 'cpuinfo'} not readable"

    logical = psutil.cpu_count(logical=True) or (parsed.logical_cores if parsed else None)
    physical = psutil.cpu_count(logical=False) or (parsed.physical_cores if parsed else None)
    if physical is None:
        unavailable["cpu.physical_cores"] = "neither psutil nor /proc/cpuinfo gives core ids"
    clusters, reason = read_cpufreq_clusters(sys_root)
    if reason:
        unavailable["cpu.clusters"] = reason

    serial, reason = host_serial(etc_root)
    if reason:
        unavailable["serial"] = reason
    salt = lab_salt() if salt is None else salt
    ident = device_id(serial or platform.node(), salt)

    dmi = sys_root / "class/dmi/id"
    manufacturer = _read(dmi / "sys_vendor")
    model = _read(dmi / "product_name")
    if manufacturer is None:
        unavailable["manufacturer"] = f"no readable {dmi / 'sys_vendor'} (no DMI, e.g. a VM or an Arm board)"
    if model is None:
        unavailable["model"] = f"no readable {dmi / 'product_name'} (no DMI, e.g. a VM or an Arm board)"

    soc_vendor = parsed.vendor if parsed else None
    soc_model = parsed.model if parsed else None
    if soc_vendor is None:
        unavailable["soc_vendor"] = "CPU vendor not in /proc/cpuinfo"
    if soc_model is None:
        unavailable["soc_model"] = "CPU model not in /proc/cpuinfo"
    unavailable["soc_name"] = "a host CPU has no catalog SoC name"

    osr_text = _read(etc_root / "os-release")
    osr = parse_os_release(osr_text) if osr_text else {}
    os_info = OsInfo(
        name=osr.get("NAME") or platform.system(),
        release=osr.get("VERSION_ID") or None,
        kernel=platform.release(),
    )
    if os_info.release is None:
        unavailable["os.release"] = f"no VERSION_ID in {etc_root / 'os-release'}"
    for key in ("android_release", "sdk", "fingerprint"):
        unavailable[f"os.{key}"] = "not an Android device"

    return DeviceInfo(
        device_id=ident,
        serial=serial,
        manufacturer=manufacturer,
        model=model,
        soc_vendor=soc_vendor,
        soc_model=soc_model,
        soc_name=None,
        tier=TIER_HOST,
        ram_bytes=psutil.virtual_memory().total,
        os=os_info,
        abi=platform.machine() or None,
        cpu=CpuInfo(
            model=parsed.model if parsed else None,
            physical_cores=physical,
            logical_cores=logical,
            clusters=clusters,
        ),
        transport=TRANSPORT_LOCAL,
        simulated=False,
        unavailable=unavailable,
    )
