"""The on-device sampler: ONE mksh loop over ONE adb shell connection, rows (t_s, channel, value).

How it works (docs/sampling.md):

1. `discover()` (one shell call) reads every candidate node once as the shell uid and keeps
   the readable ones; the rest go to `availability()` with the reason the device gave
   (e.g. `Permission denied` on the Galaxy A15's thermal zones).
2. `start()` streams `android_loop.sh` (builtins only: `read -r v < file`, `$EPOCHREALTIME`,
   `read -t` on a fifo for the tick) through `transport.stream(...)`; a reader thread parses
   the rows as they arrive. Fast tick (default 10 Hz): battery current, voltage and status,
   ODPM energy counters. Slow tick (default 1 Hz): thermal zones, battery temperature,
   cpufreq cur/max per policy, the runtime's VmRSS/VmHWM and Cpus_allowed_list (at the fast tick
   when a pid file names a native runtime's invocations, which come and go in under a second), the
   loop's own /proc stat.
   `dumpsys thermalservice` (a fork) every `thermal_period_s` (default 5 s).
   When the battery sysfs current or voltage is unreadable (SELinux on many phones),
   `dumpsys battery` (a fork) every `dumpsys_battery_period_s` (default 2 s) instead: a
   low-rate power source where the phone prints a current (Samsung's `current now`, mA).
3. Values are normalised with the offline parsers of suite.device.android (never re-parsed here):
   battery via `parse_battery_uevent` + `battery_power` (positive while discharging, unit and
   sign detected once per device, raw convention in `notes`), zones via
   `parse_thermal_zones`, thermal status via `parse_thermalservice`, ODPM via
   `parse_odpm_energy` + `rail_power_w`.

Clock: every row carries the device's `$EPOCHREALTIME` (CLOCK_REALTIME, seconds since the
epoch with microseconds). `t_s` is relative to `t0` (`set_t0_device(seconds)` on that same
clock; the device-side runner prints its phase timestamps on it); until set, t0 is the
loop's first timestamp.

Same surface as LocalSampler / ProcessSampler: `rows`, `availability()`, `peak_rss_bytes`,
`notes`, `power_source`, `stats`, `start()`, `stop()`, context manager.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import pandas as pd

from suite.core.schema import (
    CH_CURRENT_A,
    CH_MAJOR_FAULTS,
    CH_MEM_AVAILABLE_BYTES,
    CH_POWER_W,
    CH_RSS_ANON_BYTES,
    CH_RSS_BYTES,
    CH_RSS_FILE_BYTES,
    CH_STORAGE_READ_BYTES,
    CH_SWAP_USED_BYTES,
    CH_TEMP_BATTERY,
    CH_THERMAL_STATUS,
    CH_VOLTAGE_V,
    SAMPLE_COLUMNS,
    Phase,
    ch_cpufreq_cur,
    ch_cpufreq_max,
    ch_phase,
    ch_temp_hal,
    ch_temp_tz,
)
from suite.device.android.battery import (
    DISCHARGE_NEGATIVE,
    DISCHARGE_POSITIVE,
    BatteryPower,
    CurrentConvention,
    DumpsysBattery,
    battery_power,
    parse_battery_uevent,
    parse_dumpsys_battery,
    samsung_log_sign,
)
from suite.device.android.power_rails import parse_odpm_energy, rail_power_w
from suite.device.android.thermal import parse_thermal_zones, parse_thermalservice
from suite.sensors.local import SamplerStats
from suite.sensors.power import (
    SOURCE_BATTERY,
    SOURCE_ODPM,
    charging_reason,
    select_power_source,
)
from suite.sensors.sources import LAUNCHER_NAMES
from suite.transport.base import DeviceError, quote

LOOP_SCRIPT = Path(__file__).with_name("android_loop.sh")
WORK_DIR = "/data/local/tmp/edgebench"
#: USER_HZ: 100 on every Android/Linux ABI edgebench targets (arm64, x86_64); recorded in notes.
CLK_TCK = 100

BATTERY_DIR = "/sys/class/power_supply/battery"
BATTERY_NODES = ("current_now", "voltage_now", "status", "temp", "capacity", "charge_counter")
THERMAL_GLOB = "/sys/class/thermal/thermal_zone*"
CPUFREQ_GLOB = "/sys/devices/system/cpu/cpufreq/policy*"
ODPM_GLOB = "/sys/bus/iio/devices/iio:device*/energy_value"
SUPPLY_ONLINE_GLOB = "/sys/class/power_supply/*/online"

#: `battery_power` source names (they also pick the unit rule: dumpsys prints mA)
SYSFS_CURRENT_SOURCE = "sysfs current_now"
DUMPSYS_CURRENT_SOURCE = "dumpsys battery 'current now'"
#: the second half of the reason when neither the sysfs nor dumpsys gives a current
DUMPSYS_NO_CURRENT = "dumpsys battery prints no current"
LOW_RATE_NOTE = ("low-rate source: one `dumpsys battery` snapshot every {period:g} s (BatteryService's "
                 "latest health values, which may repeat between fuel-gauge updates); energy integrated "
                 "from it is coarse and misses bursts shorter than the period")

#: Extra channel names (not yet in suite.core.schema: the lead may move them there).
CH_POWER_ODPM = "power_w/odpm"
CH_VM_HWM = "vm_hwm_bytes"


def ch_power_rail(rail: str) -> str:
    return f"power_w/rail/{rail}"


#: /proc/<pid>/status Names that cannot be the runtime: the loop's own shell, the sandbox, its
#: children. A stale or reused pid (a pid file left by an earlier runtime) lands on one of these; its
#: memory must not be reported as the runtime's.
NOT_RUNTIME_NAMES = ("sh", "mksh", "bwrap", "setpriv", "dumpsys", "cat", "toybox", "mkfifo", "taskset")

#: availability keys that are not channels
AV_VM_HWM = "vm_hwm"
AV_ODPM = "odpm"
AV_THERMAL_ZONES = "thermal_zones"

_STOP_WAIT_S = 3.0
_START_WAIT_S = 10.0


@dataclass(frozen=True)
class Node:
    """One readable file and what it feeds."""

    kind: str  # current | voltage | status | bat_temp | capacity | charge_counter | tz | cur | max | odpm
    path: str
    key: str  # policy name, zone id, odpm index...
    label: str = ""  # zone type


def _err_reason(path: str, text: str) -> str:
    low = text.lower()
    if "permission denied" in low:
        return f"permission denied reading {path} as the shell uid"
    if "no such file" in low:
        return f"no {path} on this device"
    return f"cannot read {path}: {text.strip()[:200] or 'no output'}"


def dumpsys_power_problem(db: DumpsysBattery, text: str = "") -> str | None:
    """Why this `dumpsys battery` output cannot give battery power, or None when it can
    (a current and a voltage)."""
    if not db.fields:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        return f"dumpsys battery gave no battery state ({first[:120] or 'no output'})"
    if db.current_now_raw is None:
        if "current now" in db.fields:
            return f"dumpsys battery 'current now' is {db.fields['current now']!r}, not an integer"
        return DUMPSYS_NO_CURRENT + " (no 'current now' line: AOSP prints none, Samsung does)"
    if db.voltage_v is None:
        return "dumpsys battery prints no voltage"
    return None


def _stat_cpu_ticks(stat_line: str) -> int | None:
    """utime+stime+cutime+cstime from a /proc/<pid>/stat line (comm may hold spaces)."""
    _, sep, rest = stat_line.rpartition(")")
    if not sep:
        return None
    f = rest.split()
    # after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14)...
    try:
        return int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    except (IndexError, ValueError):
        return None


class AndroidSampler:
    """Samples a phone over one streaming adb shell. See the module docstring."""

    def __init__(
        self,
        transport,
        *,
        rate_hz: float = 10.0,
        slow_rate_hz: float = 1.0,
        pid: int | None = None,
        paths: dict[str, str] | None = None,
        pid_file: str | None = None,
        thermal_period_s: float | None = 5.0,
        dumpsys_battery_period_s: float | None = 2.0,
        power_source: str | None = None,
        charge_control: bool = False,
        not_runtime_names: tuple[str, ...] | None = None,
        work_dir: str = WORK_DIR,
        meminfo_static: str | None = None,
    ) -> None:
        """`meminfo_static`: why the device's /proc/meminfo is no reading (the loopback phone's is its
        profile's capture): MemAvailable and swap are then not sampled, with that reason."""
        if rate_hz <= 0 or slow_rate_hz <= 0:
            raise ValueError("rates must be positive")
        if slow_rate_hz > rate_hz:
            raise ValueError("slow_rate_hz cannot exceed rate_hz")
        self.transport = transport
        self.meminfo_static = meminfo_static
        self.rate_hz = rate_hz
        self.slow_rate_hz = slow_rate_hz
        self.period_ms = max(1, round(1000.0 / rate_hz))
        self.slow_every = max(1, round(rate_hz / slow_rate_hz))
        self.thermal_every = (max(1, round(thermal_period_s * 1000.0 / self.period_ms))
                              if thermal_period_s else 0)
        #: `dumpsys battery` every this many fast ticks when it replaces an unreadable sysfs (0: off)
        self.dumpsys_battery_period_s = dumpsys_battery_period_s
        self.dumpsys_battery_every = 0
        self.pid = pid
        self.pid_file = pid_file
        #: overrides of the default node locations: battery_dir, thermal_glob, cpufreq_glob, odpm_glob
        self.paths = dict(paths or {})
        self.work_dir = work_dir
        self._prefer_power = power_source
        #: the user named a charge-control node that cuts the charger input (see suite.sensors.power)
        self.charge_control = charge_control
        #: a pid whose /proc Name is one of these is not the runtime (see _mem_row)
        self.not_runtime_names = NOT_RUNTIME_NAMES if not_runtime_names is None else tuple(not_runtime_names)
        self._mem_rejected: str | None = None
        self._online: dict[str, bool] = {}
        self.power_source: str | None = None
        self.t0: float | None = None
        self.disconnected = False
        self.disconnect_reason: str | None = None

        self._fast: list[Node] = []
        self._slow: list[Node] = []
        self._odpm: list[Node] = []
        self._availability: dict[str, str | None] | None = None
        self._discovery: dict[str, object] = {}
        self._fifo = f"{work_dir}/sampler-{uuid.uuid4().hex[:10]}.fifo"

        self._lock = threading.Lock()
        self._raw: list[tuple[float, str, float]] = []
        self._stream = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._ended = threading.Event()
        self._stats: SamplerStats | None = None

        # parse state
        self._loop_pid: int | None = None
        self._t_start: float | None = None
        self._fast_times: list[float] = []
        self._max_late = 0.0
        self._slow_times: list[float] = []
        self._last_cpu: tuple[float, int, int] | None = None  # (t, ticks, missed)
        self._end_seen = False
        self._convention: CurrentConvention | None = None
        self._history: list[int] = []
        self._power_rows = 0
        self._power_invalid: dict[str, int] = {}
        self._power_invalid_first: str | None = None
        self._status_seen: dict[str, int] = {}
        self._odpm_prev = None
        self._odpm_prev_t: float | None = None
        self._odpm_lines: list[str] = []
        self._odpm_tick_t: float | None = None
        self._thermal_block: list[str] | None = None
        self._thermal_t: float | None = None
        self._thermal_problems: dict[str, str] = {}
        self._hwm_bytes: int | None = None
        #: Cpus_allowed_list of the runtime process as read (value -> times seen): where it could run
        self.cpus_allowed: dict[str, int] = {}
        # dumpsys battery fallback
        self._sysfs_battery_reason: str | None = None
        self._db_block: list[str] | None = None
        self._db_t: float | None = None
        self._db_times: list[float] = []
        self._db_call_s: list[float] = []
        self._db_no_current = 0
        self._db_no_current_why: str | None = None
        self._db_repeats = 0
        self._db_last: tuple[int, float] | None = None
        self._db_temp = False
        self._mem_pid: int | None = None
        self._battery_first: dict[str, float] = {}
        self._battery_last: dict[str, float] = {}
        self._unparsed = 0
        self._start_error: str | None = None

    # --- discovery ------------------------------------------------------------------------

    def _discovery_script(self) -> str:
        bat = self.paths.get("battery_dir", BATTERY_DIR)
        tz = self.paths.get("thermal_glob", THERMAL_GLOB)
        cf = self.paths.get("cpufreq_glob", CPUFREQ_GLOB)
        od = self.paths.get("odpm_glob", ODPM_GLOB)
        so = self.paths.get("supply_online_glob", SUPPLY_ONLINE_GLOB)
        parts = [
            'eb_rd() { v=$(cat "$1" 2>&1 </dev/null); echo "R|$?|$1"; echo "$v"; }',
            'echo "E|$EPOCHREALTIME"',
            f"mkdir -p {quote(self.work_dir)} 2>&1; echo \"W|$?\"",
        ]
        parts += [f"eb_rd {quote(bat + '/' + n)}" for n in BATTERY_NODES]
        # globs stay unquoted on purpose (they come from constants or the caller's paths)
        for glob in (tz,):
            parts.append(f'for z in {glob}; do eb_rd "$z/type"; eb_rd "$z/temp"; done')
        parts.append(f'for p in {cf}; do eb_rd "$p/scaling_cur_freq"; eb_rd "$p/scaling_max_freq"; '
                     f'eb_rd "$p/cpuinfo_max_freq"; done')
        parts.append(f'for f in {od}; do eb_rd "$f"; done')
        parts.append(f'for f in {so}; do eb_rd "$f"; done')
        if self.pid is not None:
            parts.append(f"eb_rd {quote(f'/proc/{int(self.pid)}/status')}")
        if self.pid_file:
            parts.append(f"eb_rd {quote(self.pid_file)}")
        return "\n".join(parts)

    def discover(self) -> dict[str, str | None]:
        """One shell call: which nodes can be read; sets up the loop's read lists."""
        if self._availability is not None:
            return self._availability
        for k in ("thermal_glob", "cpufreq_glob", "odpm_glob", "supply_online_glob"):
            if k in self.paths and not re.fullmatch(r"[A-Za-z0-9_./:*\-]+", self.paths[k]):
                raise ValueError(f"paths[{k!r}] must be a plain glob, got {self.paths[k]!r}")
        h0 = time.time()
        res = self.transport.shell(self._discovery_script(), timeout_s=60)
        h1 = time.time()
        reads: dict[str, tuple[int, str]] = {}
        cur: str | None = None
        for line in res.stdout.splitlines():
            if line.startswith("R|"):
                _, rc, path = line.split("|", 2)
                cur = path
                reads[path] = (int(rc) if rc.isdigit() else 1, "")
            elif line.startswith("E|"):
                try:
                    self._discovery["device_time"] = float(line[2:])
                    self._discovery["host_time"] = (h0 + h1) / 2  # the device printed it in between
                except ValueError:
                    pass
            elif line.startswith("W|"):
                self._discovery["work_dir_ok"] = line[2:] == "0"
            elif cur is not None:
                rc, text = reads[cur]
                reads[cur] = (rc, text + ("\n" if text else "") + line)
        self._reads = reads
        av: dict[str, str | None] = {}

        def ok(path: str) -> str | None:
            rc, text = reads.get(path, (1, "not listed"))
            return text if rc == 0 else None

        def why(path: str) -> str:
            rc, text = reads.get(path, (1, "not listed"))
            return _err_reason(path, text)

        bat = self.paths.get("battery_dir", BATTERY_DIR)
        nodes = {n: f"{bat}/{n}" for n in BATTERY_NODES}
        for n, kind in (("current_now", "current"), ("voltage_now", "voltage"), ("status", "status")):
            if ok(nodes[n]) is not None:
                self._fast.append(Node(kind, nodes[n], n))
        for n, kind in (("temp", "bat_temp"), ("capacity", "capacity"), ("charge_counter", "charge_counter")):
            if ok(nodes[n]) is not None:
                self._slow.append(Node(kind, nodes[n], n))
        av[CH_CURRENT_A] = None if ok(nodes["current_now"]) is not None else why(nodes["current_now"])
        av[CH_VOLTAGE_V] = None if ok(nodes["voltage_now"]) is not None else why(nodes["voltage_now"])
        av["battery_status"] = None if ok(nodes["status"]) is not None else why(nodes["status"])
        av[CH_TEMP_BATTERY] = None if ok(nodes["temp"]) is not None else why(nodes["temp"])
        av["charge_counter"] = None if ok(nodes["charge_counter"]) is not None else why(nodes["charge_counter"])

        # thermal zones: classified by the offline parser on the discovery values
        zones_listing = []
        zone_dirs: dict[str, str] = {}
        for path in reads:
            m = re.match(r"(.*/(thermal_zone[^/]*))/type$", path)
            if not m:
                continue
            zdir, zid = m.group(1), m.group(2)
            zone_dirs[zid] = zdir
            ztype = ok(path)
            temp = ok(f"{zdir}/temp")
            if "*" in zid:
                av[AV_THERMAL_ZONES] = why(path)
                continue
            if ztype is None or temp is None:
                av[ch_temp_tz(ztype.strip() if ztype else zid)] = why(path if ztype is None else f"{zdir}/temp")
                continue
            zones_listing.append(f"{zid} {ztype.strip() or zid} {temp.strip()}")
        parsed = parse_thermal_zones("\n".join(zones_listing))
        types = [z.type for z in parsed.zones]
        for z in parsed.zones:
            # zones sharing a type: `<type>#<zone number>`, as LocalSampler names them
            label = z.type if types.count(z.type) == 1 else f"{z.type}#{z.zone.removeprefix('thermal_zone')}"
            if z.reason is None:
                self._slow.append(Node("tz", f"{zone_dirs[z.zone]}/temp", z.zone, label))
                av[ch_temp_tz(label)] = None
            else:
                av[ch_temp_tz(label)] = f"not sampled: {z.reason}"
        if not zones_listing and AV_THERMAL_ZONES not in av:
            denied = [k for k, v in av.items() if k.startswith("temp_c/tz/") and v]
            av[AV_THERMAL_ZONES] = (f"no readable thermal zone ({len(denied)} listed, none readable)"
                                    if denied else "no thermal zones")

        # cpufreq
        self._cpuinfo_max: dict[str, int] = {}
        for path in reads:
            m = re.match(r"(.*/(policy[^/]*))/scaling_cur_freq$", path)
            if not m:
                continue
            pdir, pol = m.group(1), m.group(2)
            if "*" in pol:
                av["cpufreq"] = why(path)
                continue
            for node, kind, ch in (("scaling_cur_freq", "cur", ch_cpufreq_cur(pol)),
                                   ("scaling_max_freq", "max", ch_cpufreq_max(pol))):
                p = f"{pdir}/{node}"
                if ok(p) is not None:
                    self._slow.append(Node(kind, p, pol))
                    av[ch] = None
                else:
                    av[ch] = why(p)
            mx = ok(f"{pdir}/cpuinfo_max_freq")
            if mx is not None and mx.strip().isdigit():
                self._cpuinfo_max[pol] = int(mx.strip())

        # ODPM
        odpm_paths = [p for p in reads if p.endswith("/energy_value")]
        readable = [p for p in odpm_paths if ok(p) is not None and "*" not in p]
        for i, p in enumerate(readable):
            self._odpm.append(Node("odpm", p, str(i)))
        if readable:
            av[AV_ODPM] = None
            av[CH_POWER_ODPM] = None
            self._odpm_rails = [r.rail for r in parse_odpm_energy("\n".join(ok(p) or "" for p in readable)).rails]
        else:
            av[AV_ODPM] = (why(odpm_paths[0]) if odpm_paths and "*" not in odpm_paths[0]
                           else "no ODPM energy_value nodes (Pixel 6 and later only)")
            av[CH_POWER_ODPM] = av[AV_ODPM]
            self._odpm_rails = []

        # external power supplies (usb/ac/wireless online)
        online = {}
        for p in reads:
            m = re.match(r".*/power_supply/([^/*]+)/online$", p)
            if m and ok(p) is not None:
                online[m.group(1)] = ok(p).strip() == "1"
                if m.group(1) != "battery":
                    self._slow.append(Node("online", p, m.group(1)))
        self._online = dict(online)
        self._discovery["supplies_online"] = online

        # runtime memory
        if self.pid is not None:
            st = ok(f"/proc/{int(self.pid)}/status")
            av[CH_RSS_BYTES] = None if st is not None else why(f"/proc/{int(self.pid)}/status")
        elif self.pid_file:
            av[CH_RSS_BYTES] = None
        else:
            av[CH_RSS_BYTES] = "no runtime pid given (set_pid or pid_file)"
        av[AV_VM_HWM] = av[CH_RSS_BYTES]
        av[CH_THERMAL_STATUS] = None if self.thermal_every else "thermal_period_s=None: not sampled"

        # power source
        status_text = ok(nodes["status"])
        status = status_text.strip() if status_text else None
        plugged = self._plugged()
        battery_reason = av[CH_CURRENT_A] or av[CH_VOLTAGE_V]
        if battery_reason is not None:
            db, battery_reason = self._discover_dumpsys_battery(battery_reason)
            if db is not None:
                # dumpsys replaces the sysfs current and voltage (both: one consistent snapshot)
                self._fast = [n for n in self._fast if n.kind not in ("current", "voltage")]
                av[CH_CURRENT_A] = av[CH_VOLTAGE_V] = None
                status = db.status
                plugged = db.plugged if db.plugged is not None else plugged
                if av[CH_TEMP_BATTERY] is not None and db.temp_c is not None:
                    self._db_temp = True
                    av[CH_TEMP_BATTERY] = None
        source, reason = select_power_source(
            battery_ok=battery_reason is None,
            battery_reason=battery_reason,
            odpm_ok=bool(readable), odpm_reason=av[AV_ODPM],
            status=status,
            prefer=self._prefer_power, plugged=plugged, charge_control=self.charge_control,
        )
        self.power_source = source
        av[CH_POWER_W] = reason
        if source == SOURCE_BATTERY and status is not None:
            initial = charging_reason(status, plugged=plugged, charge_control=self.charge_control)
            if initial:
                av[CH_POWER_W] = initial
        self._availability = av
        return av

    def _discover_dumpsys_battery(self, sysfs_reason: str) -> tuple[DumpsysBattery | None, str | None]:
        """The battery sysfs is unreadable: can `dumpsys battery` give current and voltage instead?
        (its parse, None) and the loop polls it; else (None, a reason naming both failures)."""
        self._sysfs_battery_reason = sysfs_reason
        if not self.dumpsys_battery_period_s:
            return None, f"{sysfs_reason}; dumpsys battery fallback off (dumpsys_battery_period_s=None)"
        try:
            res = self.transport.shell("dumpsys battery", timeout_s=30)
        except DeviceError as exc:
            return None, f"{sysfs_reason}; dumpsys battery failed: {str(exc).splitlines()[0]}"
        db = parse_dumpsys_battery(res.stdout)
        self._discovery["dumpsys_battery_fields"] = sorted(db.fields)
        problem = dumpsys_power_problem(db, res.stdout)
        if problem is not None:
            return None, f"{sysfs_reason}; {problem}"
        self.dumpsys_battery_every = max(1, round(self.dumpsys_battery_period_s * 1000.0 / self.period_ms))
        return db, None

    def availability(self) -> dict[str, str | None]:
        """channel or sensor -> None if it is sampled, else the reason it is not."""
        out = dict(self.discover())
        if self.meminfo_static:
            out[CH_MEM_AVAILABLE_BYTES] = out[CH_SWAP_USED_BYTES] = self.meminfo_static
        return out

    # --- the loop -------------------------------------------------------------------------

    def _read_fn(self, name: str, nodes: list[Node]) -> str:
        body = "".join(f" v=-; read -r v < {quote(n.path)}; L=\"$L|$v\";" for n in nodes)
        return f"{name}() {{ L=;{body} :; }}"

    def build_command(self) -> str:
        """The whole loop as one shell command: variables, generated readers, the loop."""
        self.discover()
        odpm_body = "".join(
            f" {{ while read -r l; do echo \"O|{n.key}|$l\"; done < {quote(n.path)}; }} 2>/dev/null;"
            for n in self._odpm)
        head = [
            f"D={quote(self.work_dir)}",
            f"F={quote(self._fifo)}",
            f"P={self.period_ms}",
            f"NS={self.slow_every}",
            # ODPM counters are cumulative: energy is exact at any rate, so they go fast only
            # when they feed power_w
            f"NO={1 if self.power_source == SOURCE_ODPM else self.slow_every}",
            f"NT={self.thermal_every}",
            f"NB={self.dumpsys_battery_every}",
            f"PID={int(self.pid) if self.pid is not None else ''}",
            f"PIDF={quote(self.pid_file) if self.pid_file else ''}",
            self._read_fn("fast", self._fast),
            self._read_fn("slow", self._slow),
            f"odpm() {{{odpm_body} :; }}",
            "mem() {",
            # the pid file is read every time: a native runtime's invocations follow one another
            '  if [ -n "$PIDF" ]; then P2=; { read -r P2 < "$PIDF"; } 2>/dev/null; [ -n "$P2" ] && PID=$P2; fi',
            "  case $PID in ''|*[!0-9]*) PID=; return 0 ;; esac",
            # (the loop's own variables, k, t, d, n... are global in sh: mem() keeps to a b c r h n al ra rf mj io)
            "  r=-; h=-; n=-; al=-; ra=-; rf=-; mj=-; io=-",
            '  { while read -r a b c; do case $a in Name:) n=$b ;; VmRSS:) r=$b ;; VmHWM:) h=$b ;;'
            ' RssAnon:) ra=$b ;; RssFile:) rf=$b ;; Cpus_allowed_list:) al=$b ;; esac; done < /proc/$PID/status;'
            ' } 2>/dev/null',
            # majflt is /proc/PID/stat's 12th field: the 10th after the command name's closing parenthesis
            '  { read -r a < /proc/$PID/stat && a=${a##*\\) } && set -- $a && mj=${10}; } 2>/dev/null',
            '  { while read -r a b; do case $a in read_bytes:) io=$b ;; esac; done < /proc/$PID/io; } 2>/dev/null',
            '  echo "M|$t|$PID|$r|$h|$n|$al|$ra|$rf|$mj|$io"',
            "}",
            # the device's memory at the slow tick: MemAvailable, SwapTotal, SwapFree (kB)
            "vm() {" + (" return 0;" if self.meminfo_static else ""),
            "  ma=-; sw=-; sf=-",
            '  { while read -r a b c; do case $a in MemAvailable:) ma=$b ;; SwapTotal:) sw=$b ;; SwapFree:) sf=$b ;;'
            ' esac; done < /proc/meminfo; } 2>/dev/null',
            '  echo "V|$t|$ma|$sw|$sf"',
            "}",
        ]
        return "\n".join(head) + "\n" + LOOP_SCRIPT.read_text()

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        command = self.build_command()
        self._stream = self.transport.stream(command)
        self._thread = threading.Thread(target=self._reader, name="edgebench-android-sampler", daemon=True)
        self._thread.start()
        if not self._started.wait(_START_WAIT_S) and not self.disconnected:
            self._close_stream()
            raise DeviceError("the sampling loop printed no header", serial=self.transport.serial,
                              command="android sampler loop")
        if self._start_error is not None:
            self._close_stream()
            raise DeviceError(f"the sampling loop could not start: {self._start_error}",
                              serial=self.transport.serial, command="android sampler loop",
                              hint=f"is {self.work_dir} writable by the shell user?")
        return self

    def set_pid(self, pid: int) -> None:
        """The runtime's pid (may come after start): the loop reads its /proc status at the slow tick."""
        self.pid = int(pid)
        if self._thread is None or self._ended.is_set():
            return
        self._send(f"p {self.pid}")
        if self._availability is not None:
            self._availability[CH_RSS_BYTES] = None
            self._availability[AV_VM_HWM] = None

    def set_t0_device(self, seconds: float) -> None:
        """Run start on the device's realtime clock ($EPOCHREALTIME): rows are relative to it."""
        self.t0 = float(seconds)

    def _send(self, line: str) -> None:
        f = quote(self._fifo)
        try:
            self.transport.shell(f"[ -p {f} ] && echo {quote(line)} 1<>{f}", timeout_s=15)
        except DeviceError as exc:
            self._mark_disconnected(str(exc).splitlines()[0])

    def stop(self) -> SamplerStats | None:
        """End the loop (clean `q` through the fifo, then hang up). Never raises."""
        if self._thread is None:
            raise RuntimeError("sampler not started")
        if not self._ended.is_set() and not self.disconnected:
            self._send("q")
            self._ended.wait(_STOP_WAIT_S)
        self._close_stream()
        self._thread.join(5)
        self._finish_stats()
        return self._stats

    def _close_stream(self) -> None:
        try:
            if self._stream is not None:
                self._stream.close()
        except Exception:  # noqa: BLE001 - stop() never raises
            pass

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._thread is not None and self._stats is None:
            self.stop()

    def _mark_disconnected(self, why: str) -> None:
        if not self.disconnected:
            self.disconnected = True
            self.disconnect_reason = why
        self._started.set()
        self._ended.set()

    # --- parsing --------------------------------------------------------------------------

    def _reader(self) -> None:
        try:
            for line in self._stream.lines():
                try:
                    self._parse(line)
                except Exception:  # noqa: BLE001 - one odd line must not stop sampling
                    self._unparsed += 1
            if not self._end_seen and not self._ended.is_set():
                # stream ended without our E row and without a stop(): the loop died
                self._mark_disconnected(f"the sampling loop ended (exit code {self._stream.exit_code})")
        except DeviceError as exc:
            if not self._ended.is_set():
                self._mark_disconnected(str(exc).splitlines()[0])
        except Exception as exc:  # noqa: BLE001
            if not self._ended.is_set():
                self._mark_disconnected(f"{type(exc).__name__}: {exc}")
        finally:
            self._flush_odpm()
            self._started.set()
            self._ended.set()

    def _add(self, t: float, ch: str, v: float) -> None:
        with self._lock:
            self._raw.append((t, ch, float(v)))

    def _parse(self, line: str) -> None:
        if self._db_block is not None:
            if line.startswith("B>|"):
                t_end = float(line[3:])
                text = "\n".join(self._db_block)
                self._db_block = None
                self._dumpsys_battery(self._db_t, t_end, text)
            else:
                self._db_block.append(line)
            return
        if self._thermal_block is not None:
            if line.startswith("T>|"):
                self._thermal(self._thermal_t, "\n".join(self._thermal_block))
                self._thermal_block = None
            else:
                self._thermal_block.append(line)
            return
        tag, _, rest = line.partition("|")
        if tag == "O":
            idx, _, raw = rest.partition("|")
            self._odpm_lines.append(raw)
            return
        if tag in ("F", "S", "H", "E", "T<", "B<"):
            self._flush_odpm()
        if tag == "F":
            self._fast_row(rest.split("|"))
        elif tag == "S":
            self._slow_row(rest.split("|"))
        elif tag == "M":
            self._mem_row(rest.split("|"))
        elif tag == "V":
            self._vm_row(rest.split("|"))
        elif tag == "C":
            self._cpu_row(rest)
        elif tag == "T<":
            self._thermal_t = float(rest)
            self._thermal_block = []
        elif tag == "B<":
            self._db_t = float(rest)
            self._db_block = []
        elif tag == "H":
            pid, t, *_ = rest.split("|")
            self._loop_pid = int(pid)
            self._t_start = float(t)
            if self.t0 is None:
                self.t0 = self._t_start
            self._started.set()
        elif tag == "E":
            self._cpu_row(rest)
            self._end_seen = True
            self._ended.set()
        elif tag == "X":
            self._start_error = rest
            self._mark_disconnected(f"the sampling loop failed to start: {rest}")
        elif line.strip():
            self._unparsed += 1

    def _fast_row(self, f: list[str]) -> None:
        t, k = float(f[0]), int(f[1])
        vals = dict(zip((n.kind for n in self._fast), f[2:], strict=False))
        self._fast_times.append(t)
        if self._t_start is not None:
            base = int(self._t_start * 1000) / 1000.0  # the loop schedules from the start's whole ms
            self._max_late = max(self._max_late, t - (base + k * self.period_ms / 1000.0))
        if self._odpm:
            self._odpm_tick_t = t
        if "current" not in vals and "voltage" not in vals:
            return
        text = "".join(f"{key}={vals[kind]}\n" for kind, key in
                       (("status", "STATUS"), ("current", "CURRENT_NOW"), ("voltage", "VOLTAGE_NOW"))
                       if kind in vals and vals[kind] != "-")
        ue = parse_battery_uevent(text)
        if ue.status:
            self._status_seen[ue.status] = self._status_seen.get(ue.status, 0) + 1
        if ue.voltage_v is not None:
            self._add(t, CH_VOLTAGE_V, ue.voltage_v)
        if ue.current_now_raw is None:
            return
        if self._convention is None and len(self._history) < 50:
            self._history.append(ue.current_now_raw)
        plugged = self._plugged()
        bp = battery_power(ue.current_now_raw, ue.voltage_v, ue.status, source=SYSFS_CURRENT_SOURCE,
                           plugged=None if self.charge_control else plugged, known=self._convention,
                           history=self._history)
        self._battery_reading(t, bp, ue.status, plugged)

    def _battery_reading(self, t: float, bp: BatteryPower, status: str | None,
                         plugged: tuple[str, ...] | None) -> None:
        """One normalised fuel-gauge reading (sysfs or dumpsys): current row, power row or the
        reason it is not device power."""
        conv = bp.convention
        if self._convention is None and conv.unit and conv.discharge_sign:
            self._convention = conv
        if bp.current_a is not None:
            self._add(t, CH_CURRENT_A, bp.current_a)
        if self.power_source != SOURCE_BATTERY:
            return
        if bp.power_w is not None:
            self._power_rows += 1
            self._add(t, CH_POWER_W, bp.power_w)
            for key, val in (("current_a", bp.current_a), ("voltage_v", bp.voltage_v)):
                self._battery_first.setdefault(key, val)
        else:
            reason = (charging_reason(status, plugged=plugged, charge_control=self.charge_control)
                      or bp.power_reason or "no power")
            key = reason.split(":")[0]
            self._power_invalid[key] = self._power_invalid.get(key, 0) + 1
            if self._power_invalid_first is None:
                self._power_invalid_first = reason

    def _dumpsys_battery(self, t_start: float | None, t_end: float, text: str) -> None:
        """One `dumpsys battery` snapshot (the sysfs fallback), stamped at the middle of the call."""
        t = (t_start + t_end) / 2.0 if t_start is not None else t_end
        self._db_times.append(t)
        if t_start is not None:
            self._db_call_s.append(t_end - t_start)
        db = parse_dumpsys_battery(text)
        problem = dumpsys_power_problem(db, text)
        if problem is not None or db.current_now_raw is None or db.voltage_v is None:
            # a gap (counted in notes), not a wrong value: the other snapshots stand
            self._db_no_current += 1
            self._db_no_current_why = self._db_no_current_why or problem
            return
        if self._db_last == (db.current_now_raw, db.voltage_v):
            self._db_repeats += 1
        self._db_last = (db.current_now_raw, db.voltage_v)
        if db.status:
            self._status_seen[db.status] = self._status_seen.get(db.status, 0) + 1
        self._add(t, CH_VOLTAGE_V, db.voltage_v)
        if self._db_temp and db.temp_c is not None:
            self._add(t, CH_TEMP_BATTERY, db.temp_c)
            self._battery_first.setdefault("bat_temp", db.temp_c)
            self._battery_last["bat_temp"] = db.temp_c
        if self._convention is None and len(self._history) < 50:
            self._history.append(db.current_now_raw)
        plugged = db.plugged if db.plugged is not None else self._plugged()
        bp = battery_power(db.current_now_raw, db.voltage_v, db.status, source=DUMPSYS_CURRENT_SOURCE,
                           plugged=None if self.charge_control else plugged, known=self._convention,
                           extra_sign_evidence=(samsung_log_sign(db.broadcasts) if self._convention is None
                                                else (None, ())),
                           history=self._history)
        self._battery_reading(t, bp, db.status, plugged)

    def _plugged(self) -> tuple[str, ...] | None:
        """External supplies online (power_supply/*/online, read at the slow rate); None: unknown."""
        if not self._online:
            return None
        return tuple(k for k, on in self._online.items() if on)

    def _slow_row(self, f: list[str]) -> None:
        t = float(f[0])
        self._slow_times.append(t)
        zones = []
        labels: dict[str, str] = {}
        for n, v in zip(self._slow, f[1:], strict=False):
            if v == "-" or v == "":
                continue
            if n.kind == "tz":
                zones.append(f"{n.key} {n.label} {v}")
                labels[n.key] = n.label
            elif n.kind == "online":
                self._online[n.key] = v.strip() == "1"
            elif n.kind in ("cur", "max") and v.strip().lstrip("-").isdigit():
                ch = ch_cpufreq_cur(n.key) if n.kind == "cur" else ch_cpufreq_max(n.key)
                self._add(t, ch, int(v))
            elif n.kind in ("bat_temp", "capacity", "charge_counter"):
                key = {"bat_temp": "TEMP", "capacity": "CAPACITY", "charge_counter": "CHARGE_COUNTER"}[n.kind]
                ue = parse_battery_uevent(f"{key}={v}\n")
                val = {"bat_temp": ue.temp_c, "capacity": ue.capacity_pct,
                       "charge_counter": ue.charge_counter_uah}[n.kind]
                if val is None:
                    continue
                if n.kind == "bat_temp":
                    self._add(t, CH_TEMP_BATTERY, val)
                self._battery_first.setdefault(n.kind, val)
                self._battery_last[n.kind] = val
        if zones:
            for z in parse_thermal_zones("\n".join(zones)).zones:
                if z.temp_c is not None:
                    self._add(t, ch_temp_tz(labels.get(z.zone, z.type)), z.temp_c)

    def _mem_row(self, f: list[str]) -> None:
        t, pid, rss, hwm = float(f[0]), f[1], f[2], f[3]
        name = f[4] if len(f) > 4 else "-"
        self._mem_pid = int(pid) if pid.isdigit() else None
        if (self._mem_pid is not None and self._mem_pid == self._loop_pid) or name in self.not_runtime_names:
            self._mem_rejected = (f"pid {pid} is {name!r} here, not the runtime: a pid from another pid "
                                  "namespace (each loopback shell has its own) or a reused pid")
            return
        if rss.isdigit():
            self._add(t, CH_RSS_BYTES, int(rss) * 1024)
        if hwm.isdigit():
            self._hwm_bytes = max(self._hwm_bytes or 0, int(hwm) * 1024)
        allowed = f[5] if len(f) > 5 else "-"
        if allowed not in ("-", "") and name not in LAUNCHER_NAMES:
            self.cpus_allowed[allowed] = self.cpus_allowed.get(allowed, 0) + 1
        if name in LAUNCHER_NAMES:  # the launcher shell before its exec: not the runtime's pages or reads
            return
        # RssAnon, RssFile (kB); majflt and read_bytes (cumulative for this pid)
        for i, channel, scale in ((6, CH_RSS_ANON_BYTES, 1024), (7, CH_RSS_FILE_BYTES, 1024),
                                  (8, CH_MAJOR_FAULTS, 1), (9, CH_STORAGE_READ_BYTES, 1)):
            if len(f) > i and f[i].isdigit():
                self._add(t, channel, int(f[i]) * scale)

    def _vm_row(self, f: list[str]) -> None:
        """The device's MemAvailable and swap in use (kB in /proc/meminfo)."""
        t = float(f[0])
        if len(f) > 1 and f[1].isdigit():
            self._add(t, CH_MEM_AVAILABLE_BYTES, int(f[1]) * 1024)
        if len(f) > 3 and f[2].isdigit() and f[3].isdigit():
            self._add(t, CH_SWAP_USED_BYTES, (int(f[2]) - int(f[3])) * 1024)

    def _cpu_row(self, rest: str) -> None:
        t_s, missed, stat = rest.split("|", 2)
        ticks = _stat_cpu_ticks(stat)
        if ticks is not None:
            self._last_cpu = (float(t_s), ticks, int(missed))

    def _thermal(self, t: float | None, text: str) -> None:
        if t is None:
            return
        ts = parse_thermalservice(text)
        self._thermal_problems = dict(ts.problems)
        if ts.status is not None:
            self._add(t, CH_THERMAL_STATUS, ts.status)
        for s in ts.sensors():
            if s.temp_c is not None:
                self._add(t, ch_temp_hal(s.name), s.temp_c)

    def _flush_odpm(self) -> None:
        if not self._odpm_lines or self._odpm_tick_t is None:
            self._odpm_lines = []
            return
        reading = parse_odpm_energy("\n".join(self._odpm_lines))
        t = self._odpm_tick_t
        self._odpm_lines = []
        prev, prev_t = self._odpm_prev, self._odpm_prev_t
        self._odpm_prev, self._odpm_prev_t = reading, t
        if prev is None or prev_t is None:
            return
        watts, _problems = rail_power_w(prev, reading)
        if not watts:
            return
        mid = (prev_t + t) / 2.0
        for rail, w in watts.items():
            self._add(mid, ch_power_rail(rail), w)
        total = sum(watts.values())
        self._add(mid, CH_POWER_ODPM, total)
        if self.power_source == SOURCE_ODPM:
            self._add(mid, CH_POWER_W, total)
            self._power_rows += 1

    # --- results --------------------------------------------------------------------------

    def _finish_stats(self) -> None:
        ft = self._fast_times
        achieved = (len(ft) - 1) / (ft[-1] - ft[0]) if len(ft) > 1 and ft[-1] > ft[0] else None
        cpu_s, wall, missed = 0.0, 0.0, 0
        if self._last_cpu is not None and self._t_start is not None:
            t_end, ticks, missed = self._last_cpu
            cpu_s = ticks / CLK_TCK
            wall = t_end - self._t_start
        elif ft and self._t_start is not None:
            wall = ft[-1] - self._t_start
        self._stats = SamplerStats(
            requested_hz=self.rate_hz, achieved_hz=achieved, ticks=len(ft), missed_ticks=missed,
            max_late_s=self._max_late, wall_s=wall, thread_cpu_s=cpu_s,
        )
        av = self._availability
        if av is not None and self.power_source == SOURCE_BATTERY and self._power_invalid:
            total = self._power_rows + sum(self._power_invalid.values())
            first = self._power_invalid_first or "charging"
            if not first.startswith("charging"):
                first = "charging: " + first
            av[CH_POWER_W] = f"{first} ({sum(self._power_invalid.values())} of {total} readings)"
        if (av is not None and self.dumpsys_battery_every and self.power_source == SOURCE_BATTERY
                and not self._power_rows and self._db_no_current):
            av[CH_POWER_W] = (f"{self._sysfs_battery_reason}; {self._db_no_current_why} "
                              f"({self._db_no_current} of {len(self._db_times)} dumpsys battery snapshots)")
        if av is not None and self.thermal_every and av.get(CH_THERMAL_STATUS) is None:
            with self._lock:
                seen = any(ch == CH_THERMAL_STATUS for _, ch, _ in self._raw)
            if not seen and self._fast_times:
                why = "; ".join(f"{k}: {v}" for k, v in self._thermal_problems.items()) or "no output"
                av[CH_THERMAL_STATUS] = f"dumpsys thermalservice gave no status ({why})"
        if av is not None and self._mem_rejected:
            with self._lock:
                seen = any(ch == CH_RSS_BYTES for _, ch, _ in self._raw)
            if not seen:
                av[CH_RSS_BYTES] = av[AV_VM_HWM] = self._mem_rejected
        if self.disconnected and av is not None:
            av.setdefault("disconnected", self.disconnect_reason)

    @property
    def rows(self) -> list[tuple[float, str, float]]:
        """(t_s, channel, value), t_s relative to t0 on the device's realtime clock.

        Power rows are all-or-nothing: if any reading during the run was not a valid discharge
        measurement (charging, full, on external power), no `power_w` row is returned and
        `availability()['power_w']` says why: a gap in power would be interpolated over."""
        t0 = self.t0 if self.t0 is not None else 0.0
        drop_power = self.power_source == SOURCE_BATTERY and bool(self._power_invalid)
        with self._lock:
            return [(t - t0, ch, v) for t, ch, v in self._raw if not (drop_power and ch == CH_POWER_W)]

    def mark(self, phase: Phase | str, started: bool, t_device: float | None = None) -> None:
        """A phase marker at a device-clock time (as the device-side runner prints them). Without
        one: now on the host, moved to the device clock by the offset measured at discovery
        (accurate to the discovery round trip only: prefer the runner's own timestamps)."""
        if t_device is None:
            off = 0.0
            if "device_time" in self._discovery:
                off = float(self._discovery["device_time"]) - float(self._discovery["host_time"])
            t_device = time.time() + off
        with self._lock:
            self._raw.append((float(t_device), ch_phase(phase), 1.0 if started else 0.0))

    def to_frame(self):
        return pd.DataFrame(self.rows, columns=list(SAMPLE_COLUMNS))

    @property
    def stats(self) -> SamplerStats | None:
        return self._stats

    @property
    def loop_pid(self) -> int | None:
        """The loop shell's pid on the device."""
        return self._loop_pid

    @property
    def fifo_path(self) -> str:
        return self._fifo

    @property
    def peak_rss_bytes(self) -> int | None:
        with self._lock:
            sampled = [v for _, ch, v in self._raw if ch == CH_RSS_BYTES]
        candidates = [int(max(sampled))] if sampled else []
        if self._hwm_bytes is not None:
            candidates.append(self._hwm_bytes)
        return max(candidates) if candidates else None

    @property
    def convention(self) -> CurrentConvention | None:
        return self._convention

    @property
    def dumpsys_battery_period_s_effective(self) -> float | None:
        """The requested `dumpsys battery` period rounded to whole fast ticks (None: not polled)."""
        return self.dumpsys_battery_every * self.period_ms / 1000.0 if self.dumpsys_battery_every else None

    def _power_source_detail(self) -> str:
        unit = self._convention.unit if self._convention and self._convention.unit else "unit not determined"
        if self.dumpsys_battery_every:
            return f"{DUMPSYS_CURRENT_SOURCE} ({unit}), every {self.dumpsys_battery_period_s_effective:g} s"
        return f"{SYSFS_CURRENT_SOURCE} ({unit}) x voltage_now, every {self.period_ms / 1000.0:g} s"

    def _dumpsys_notes(self) -> dict[str, object]:
        """How the `dumpsys battery` fallback kept its rate: it is a fork and a binder call."""
        period = self.dumpsys_battery_period_s_effective or 0.0
        ts = self._db_times
        calls = self._db_call_s
        return {
            "why": f"battery sysfs unreadable ({self._sysfs_battery_reason})",
            "requested_period_s": period,
            "achieved_period_s": (ts[-1] - ts[0]) / (len(ts) - 1) if len(ts) > 1 else None,
            "snapshots": len(ts),
            "snapshots_without_current": self._db_no_current,
            "repeated_readings": self._db_repeats,
            "call_s_mean": sum(calls) / len(calls) if calls else None,
            "call_s_max": max(calls) if calls else None,
            "battery_temp_from_dumpsys": self._db_temp,
            "note": LOW_RATE_NOTE.format(period=period),
        }

    @property
    def notes(self) -> dict[str, object]:
        """Provenance for run.json's `sensors` block."""
        out: dict[str, object] = {
            "sampler": "android mksh loop over one adb shell",
            "clock": "device CLOCK_REALTIME ($EPOCHREALTIME), seconds; t_s relative to t0",
            "t0_device": self.t0,
            "power_source": self.power_source,
            "rate_hz": self.rate_hz,
            "slow_rate_hz": self.slow_rate_hz,
            "thermal_status_period_s": self.thermal_every * self.period_ms / 1000.0 if self.thermal_every else None,
            "clk_tck_assumed": CLK_TCK,
            "sign_convention": "current_a and power_w positive while discharging",
        }
        if self._convention is not None:
            c = self._convention
            out["battery_raw_convention"] = {
                "unit": c.unit, "discharge_sign": c.discharge_sign, "source": c.source,
                "evidence": list(c.evidence),
                "raw_discharge_negative": c.discharge_sign == DISCHARGE_NEGATIVE,
                "raw_discharge_positive": c.discharge_sign == DISCHARGE_POSITIVE,
            }
        if self.power_source == SOURCE_BATTERY:
            out["power_source_detail"] = self._power_source_detail()
        if self._sysfs_battery_reason is not None:
            out["battery_sysfs_unreadable"] = self._sysfs_battery_reason
        if self.dumpsys_battery_every:
            out["dumpsys_battery"] = self._dumpsys_notes()
        if self._status_seen:
            out["battery_status_seen"] = dict(self._status_seen)
        if self._power_invalid:
            out["power_invalid_readings"] = dict(self._power_invalid)
        if self._battery_first:
            out["battery_start"] = dict(self._battery_first)
            out["battery_end"] = dict(self._battery_last)
        if "device_time" in self._discovery:
            out["device_minus_host_clock_s"] = round(
                float(self._discovery["device_time"]) - float(self._discovery["host_time"]), 3)
        if self._discovery.get("supplies_online"):
            out["supplies_online"] = self._discovery["supplies_online"]
        if getattr(self, "_cpuinfo_max", None):
            out["cpuinfo_max_khz"] = dict(self._cpuinfo_max)
        if getattr(self, "_odpm_rails", None):
            out["odpm_rails"] = list(self._odpm_rails)
        if self._thermal_problems:
            out["thermalservice_problems"] = dict(self._thermal_problems)
        if self.disconnected:
            out["disconnected"] = self.disconnect_reason
        if self._mem_rejected:
            out["runtime_pid_rejected"] = self._mem_rejected
        if self.cpus_allowed:
            out["runtime_cpus_allowed"] = dict(self.cpus_allowed)
        if self._unparsed:
            out["unparsed_lines"] = self._unparsed
        st = self._slow_times
        if len(st) > 1 and st[-1] > st[0]:
            out["slow_achieved_hz"] = (len(st) - 1) / (st[-1] - st[0])
        if self._stats is not None:
            out["sampler_stats"] = self._stats.to_dict()
            out["sampler_cpu_note"] = ("utime+stime+cutime+cstime of the loop shell (dumpsys children "
                                       "included) / its wall time; adbd's forwarding is not counted")
        return out
