"""A live phone's identity and state: the snapshot texts fetched over a transport (issue 4).

The texts are exactly the outputs the snapshot files hold (`snapshot.SNAPSHOT_FILES`), so a
live phone and a saved folder go through the same parser (`snapshot_from_texts`). They are
fetched in ONE shell call: each command's output sits between marker lines carrying a random
nonce, so no output can fake a boundary; a command that prints nothing or fails gives an
empty text (-> `unavailable`), never a shifted one. If the batch cannot be split (a broken
shell), each command runs on its own as a fallback.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.device.android import snapshot as snap
from suite.device.android.identity import android_device_info
from suite.device.android.props import parse_getprop
from suite.device.identity import DeviceInfo
from suite.transport.base import DeviceError, Transport

#: a mksh loop with builtins only (`read` from the sysfs files): no fork per zone. Same output
#: as the SNAPSHOT_FILES command: `name type temp`, `-` for what could not be read.
THERMAL_ZONES_LOOP = (
    'for z in /sys/class/thermal/thermal_zone*; do [ -e "$z" ] || continue; '
    '{ t=; v=; read -r t <"$z/type"; read -r v <"$z/temp"; } 2>/dev/null; '
    'echo "${z##*/} ${t:--} ${v:--}"; done'
)

#: snapshot file -> the command run live. Same commands as SNAPSHOT_FILES (the zone loop is
#: its fork-free equivalent); cpufreq keeps grep's error lines (`grep: ...: Permission denied`),
#: which the parser turns into `unreadable`; other commands' stderr is dropped.
LIVE_COMMANDS: dict[str, str] = {
    snap.GETPROP: "getprop 2>/dev/null",
    snap.PROC_CPUINFO: "cat /proc/cpuinfo 2>/dev/null",
    snap.PROC_MEMINFO: "cat /proc/meminfo 2>/dev/null",
    snap.DUMPSYS_BATTERY: "dumpsys battery 2>/dev/null",
    snap.DUMPSYS_THERMALSERVICE: "dumpsys thermalservice 2>/dev/null",
    snap.THERMAL_ZONES: THERMAL_ZONES_LOOP,
    snap.BATTERY_UEVENT: "cat /sys/class/power_supply/battery/uevent 2>/dev/null",
    snap.CPUFREQ: "grep . /sys/devices/system/cpu/cpufreq/policy*/* 2>&1",
}
assert set(LIVE_COMMANDS) == set(snap.SNAPSHOT_FILES)
#: extra texts that are not snapshot files
UNAME = "uname_r"
UNAME_M = "uname_m"
EXTRA_COMMANDS = {UNAME: "uname -r 2>/dev/null", UNAME_M: "uname -m 2>/dev/null"}

_TIMEOUT_S = 60.0


def _batch_script(commands: Mapping[str, str], nonce: str) -> str:
    parts = []
    for name, cmd in commands.items():
        # the leading \n of END guarantees the marker starts a line; the splitter removes it
        parts.append(f"echo '@@eb-{nonce} BEGIN {name}'; {{ {cmd}\n}}; printf '\\n@@eb-{nonce} END {name}\\n'")
    return "\n".join(parts)


def _split_batch(stdout: str, names: list[str], nonce: str) -> dict[str, str] | None:
    """{name: text} from the batch output; None when the markers are not all where expected."""
    out: dict[str, str] = {}
    rest = stdout
    for name in names:
        begin = f"@@eb-{nonce} BEGIN {name}\n"
        end = f"\n@@eb-{nonce} END {name}\n"
        i = rest.find(begin)
        if i < 0:
            return None
        j = rest.find(end, i + len(begin))
        if j < 0:
            return None
        out[name] = rest[i + len(begin):j]
        rest = rest[j + len(end):]
    return out


def run_batch(transport: Transport, commands: Mapping[str, str], timeout_s: float = _TIMEOUT_S) -> dict[str, str]:
    """Run several commands in one shell call; {name: stdout}. Falls back to one call each."""
    nonce = secrets.token_hex(8)
    r = transport.shell(_batch_script(commands, nonce), timeout_s=timeout_s)
    texts = _split_batch(r.stdout, list(commands), nonce)
    if texts is not None:
        return texts
    return {name: transport.shell(cmd, timeout_s=timeout_s).stdout for name, cmd in commands.items()}


def collect_snapshot_texts(transport: Transport, timeout_s: float = _TIMEOUT_S) -> dict[str, str]:
    """{snapshot file name: text} as `devices snapshot` saves them (one shell round trip)."""
    texts = run_batch(transport, LIVE_COMMANDS, timeout_s)
    return {name: texts.get(name, "") for name in snap.SNAPSHOT_FILES}


@dataclass(frozen=True)
class LiveState:
    """One reading of a phone: the raw texts, their parse, and what DeviceInfo adds."""

    serial: str
    texts: Mapping[str, str]
    snapshot: Mapping[str, Any]
    kernel: str | None
    props: Mapping[str, str] = field(repr=False)
    #: the kernel's machine (`uname -m`: aarch64 under a 32-bit userland too); None if unread
    machine: str | None = None

    @property
    def simulated(self) -> bool:
        return is_simulated(self.props)

    def device_info(self, salt: str, transport_kind: str = "adb") -> DeviceInfo:
        return android_device_info(self.snapshot, serial=self.serial, salt=salt, transport=transport_kind,
                                   simulated=self.simulated, kernel=self.kernel)


def is_simulated(props: Mapping[str, str]) -> bool:
    """The loopback phone says so in getprop (everything it produces is `simulated`)."""
    return props.get("ro.edgebench.loopback") == "1"


def read_live(transport: Transport, timeout_s: float = _TIMEOUT_S) -> LiveState:
    """Snapshot texts + `uname -r` and `uname -m` in one round trip, parsed."""
    texts = run_batch(transport, {**LIVE_COMMANDS, **EXTRA_COMMANDS}, timeout_s)
    snap_texts = {name: texts.get(name, "") for name in snap.SNAPSHOT_FILES}
    kernel = texts.get(UNAME, "").strip() or None
    props = parse_getprop(snap_texts[snap.GETPROP]).props if snap_texts[snap.GETPROP].strip() else {}
    return LiveState(transport.serial, snap_texts, snap.snapshot_from_texts(snap_texts), kernel, props,
                     texts.get(UNAME_M, "").strip() or None)


def live_device_info(transport: Transport, salt: str) -> DeviceInfo:
    """The run.json `device` block of a live phone (kernel from `uname -r`, governors from
    cpufreq, `simulated` when it is a loopback phone)."""
    return read_live(transport).device_info(salt, transport_kind=getattr(transport, "kind", "adb"))


def save_snapshot(transport: Transport, out_dir: Path | str) -> dict[str, Any]:
    """Write the snapshot files into `out_dir` (created); returns the parse of exactly those
    texts, which `parse_snapshot(out_dir)` reproduces. Empty outputs are not written (missing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = collect_snapshot_texts(transport)
    for name, text in texts.items():
        path = out / name
        if text.strip():
            path.write_bytes(text.encode("utf-8"))
        elif path.exists():
            path.unlink()  # a stale file from an earlier snapshot would be read as this one's
    if not any(t.strip() for t in texts.values()):
        raise DeviceError("the phone answered none of the snapshot commands", serial=transport.serial,
                          command="; ".join(LIVE_COMMANDS.values()))
    return snap.snapshot_from_texts(texts)


#: `uname -m` -> the ABI name a native runtime's build is made for
_MACHINE_ABI = {"x86_64": "x86_64", "aarch64": "arm64-v8a", "arm64": "arm64-v8a"}


def host_live(transport: Transport, timeout_s: float = _TIMEOUT_S) -> LiveState:
    """A host read the way a phone is, for a native runtime run there through the local transport:
    its /proc/cpuinfo and cpufreq policies (the CPU variant and the big cores), its kernel, and its
    ABI from `uname -m` (as `ro.product.cpu.abi`; a host has no getprop)."""
    commands = {name: LIVE_COMMANDS[name] for name in (snap.PROC_CPUINFO, snap.CPUFREQ)}
    texts = run_batch(transport, {**commands, **EXTRA_COMMANDS}, timeout_s)
    machine = texts.get(UNAME_M, "").strip() or None
    props = {"ro.product.cpu.abi": _MACHINE_ABI.get(machine or "", machine or "")}
    snap_texts = {name: texts.get(name, "") for name in snap.SNAPSHOT_FILES}
    return LiveState(transport.serial, snap_texts, {}, texts.get(UNAME, "").strip() or None, props, machine)
