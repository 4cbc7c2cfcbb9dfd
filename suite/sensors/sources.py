"""Sensor sources of the local host: each reads one family of files and yields rows.

A source is probed once (`probe()` -> None or the reason it cannot be used) and then read
once per tick (`read()` -> [(channel, value)]). A source never emits 0.0 for a value it
could not read: it emits nothing and records why. Roots (/sys, /proc) are parameters so a
test can point a source at a tree built from real captured values.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from suite.core.schema import (
    CH_CPU_UTIL_PCT,
    CH_CURRENT_A,
    CH_MAJOR_FAULTS,
    CH_MEM_AVAILABLE_BYTES,
    CH_POWER_W,
    CH_RSS_ANON_BYTES,
    CH_RSS_BYTES,
    CH_RSS_FILE_BYTES,
    CH_STORAGE_READ_BYTES,
    CH_SWAP_USED_BYTES,
    CH_VOLTAGE_V,
    ch_cpufreq_cur,
    ch_cpufreq_max,
    ch_temp_tz,
)

Row = tuple[str, float]

#: Thermal zones outside this range are not temperatures (battery %, mA, mV, -40 degC for
#: an absent thermistor: see the Retroid Pocket 5 capture in FACTS.md section 1.4).
PLAUSIBLE_TEMP_C = (-20.0, 150.0)


class Source(Protocol):
    name: str

    def probe(self) -> str | None: ...

    def read(self) -> list[Row]: ...


def _read_text(path: Path) -> str:
    return path.read_text().strip()


def _why(path: Path, exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return f"permission denied reading {path}"
    if isinstance(exc, FileNotFoundError):
        return f"no {path} on this host"
    return f"cannot read {path}: {exc.strerror or exc}"


# --- pure parsers -----------------------------------------------------------------------


def parse_proc_stat_cpu(text: str) -> tuple[int, int]:
    """(busy, total) jiffies from the aggregate `cpu` line of /proc/stat."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            # user nice system idle iowait irq softirq steal [guest guest_nice]; guest time
            # is already counted in user/nice, so only the first 8 make up the total.
            values = values[:8]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            total = sum(values)
            return total - idle, total
    raise ValueError("no aggregate 'cpu ' line in /proc/stat text")


def parse_vm_hwm_bytes(status_text: str) -> int | None:
    """Peak RSS (VmHWM, kB) from /proc/<pid>/status text, in bytes."""
    m = re.search(r"^VmHWM:\s+(\d+)\s*kB", status_text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def energy_delta_uj(previous: int, current: int, max_range_uj: int | None) -> int | None:
    """Energy used between two reads of a RAPL counter that wraps at max_energy_range_uj."""
    if current >= previous:
        return current - previous
    if max_range_uj is None:
        return None  # wrapped but we do not know the range: skip this interval
    return current + (max_range_uj - previous) + 1


# --- process memory ---------------------------------------------------------------------


def paging_rows(proc_root: Path, pid: int, status: str | None) -> list[Row]:
    """A process's resident bytes by kind (RssAnon, RssFile from its status text) and its cumulative
    major faults (`stat` field 12) and storage reads (`io` read_bytes), as far as they are readable."""
    rows: list[Row] = []
    for key, channel in (("RssAnon", CH_RSS_ANON_BYTES), ("RssFile", CH_RSS_FILE_BYTES)):
        m = re.search(rf"^{key}:\s+(\d+)\s*kB", status or "", re.MULTILINE)
        if m:
            rows.append((channel, float(int(m.group(1)) * 1024)))
    try:
        stat = (proc_root / str(pid) / "stat").read_text()
        rows.append((CH_MAJOR_FAULTS, float(int(stat.rsplit(")", 1)[1].split()[9]))))
    except (OSError, ValueError, IndexError):
        pass
    try:
        io = (proc_root / str(pid) / "io").read_text()
        m = re.search(r"^read_bytes:\s+(\d+)", io, re.MULTILINE)
        if m:
            rows.append((CH_STORAGE_READ_BYTES, float(int(m.group(1)))))
    except OSError:
        pass
    return rows


@dataclass
class SystemMemorySource:
    """The machine's MemAvailable and swap in use (SwapTotal - SwapFree), from /proc/meminfo."""

    proc_root: Path = Path("/proc")
    name: str = CH_MEM_AVAILABLE_BYTES

    def probe(self) -> str | None:
        path = self.proc_root / "meminfo"
        try:
            text = path.read_text()
        except OSError as exc:
            return _why(path, exc)
        return None if "MemAvailable:" in text else f"no MemAvailable line in {path}"

    def read(self) -> list[Row]:
        try:
            text = (self.proc_root / "meminfo").read_text()
        except OSError:
            return []
        kb = {m.group(1): int(m.group(2)) * 1024 for m in re.finditer(r"^(\w+):\s+(\d+)\s*kB", text, re.MULTILINE)}
        rows: list[Row] = []
        if "MemAvailable" in kb:
            rows.append((CH_MEM_AVAILABLE_BYTES, float(kb["MemAvailable"])))
        if "SwapTotal" in kb and "SwapFree" in kb:
            rows.append((CH_SWAP_USED_BYTES, float(kb["SwapTotal"] - kb["SwapFree"])))
        return rows


@dataclass
class RssSource:
    """RSS of one process (psutil) and its kernel-tracked peak (VmHWM)."""

    pid: int
    proc_root: Path = Path("/proc")
    name: str = CH_RSS_BYTES
    peak_hwm_bytes: int | None = None
    hwm_reason: str | None = None
    _proc: psutil.Process | None = None

    def probe(self) -> str | None:
        try:
            self._proc = psutil.Process(self.pid)
            self._proc.memory_info()
        except psutil.NoSuchProcess:
            return f"no process {self.pid}"
        except psutil.AccessDenied:
            return f"permission denied reading memory of process {self.pid}"
        self._read_hwm()
        return None

    def _read_hwm(self) -> str | None:
        """The process's status text (None: unreadable), its VmHWM kept in the peak."""
        path = self.proc_root / str(self.pid) / "status"
        try:
            text = path.read_text()
        except OSError as exc:
            self.hwm_reason = _why(path, exc)
            return None
        hwm = parse_vm_hwm_bytes(text)
        if hwm is None:
            self.hwm_reason = f"no VmHWM line in {path}"
        else:
            self.peak_hwm_bytes = max(hwm, self.peak_hwm_bytes or 0)
        return text

    def read(self) -> list[Row]:
        assert self._proc is not None
        try:
            rss = self._proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return []
        status = self._read_hwm()
        return [(CH_RSS_BYTES, float(rss)), *paging_rows(self.proc_root, self.pid, status)]


#: /proc/<pid>/status Names that are not a native runtime yet: the `sh -c` that writes the pid file
#: before it execs the program, and `taskset` (which execs it too)
LAUNCHER_NAMES = ("sh", "dash", "mksh", "bash", "taskset")


@dataclass
class PidFileRss:
    """RSS and VmHWM of whichever process a pid file names at each read: a native runtime's
    invocations, one process after another, each writing its pid there as it starts. The peak is
    the largest VmHWM read of any of them (read at every sample, so a process's last reading stands
    when it exits)."""

    pid_file: Path
    proc_root: Path = Path("/proc")
    name: str = CH_RSS_BYTES
    peak_hwm_bytes: int | None = None
    hwm_reason: str | None = None
    #: Cpus_allowed_list of the processes read (value -> times seen): where the runtime could run
    cpus_allowed: dict = field(default_factory=dict)
    _pid: int | None = None

    def probe(self) -> str | None:
        return None  # the process comes later: each invocation names itself

    def _status(self) -> str | None:
        try:
            self._pid = int(self.pid_file.read_text().strip())
            text = (self.proc_root / str(self._pid) / "status").read_text()
        except (OSError, ValueError):
            return None  # no invocation running (yet, or any more)
        m = re.search(r"^Name:\s+(\S+)", text, re.MULTILINE)
        return None if m and m.group(1) in LAUNCHER_NAMES else text

    def _read_hwm(self) -> str | None:
        """The named process's status text, its VmHWM kept in the peak (None: no runtime process now)."""
        text = self._status()
        hwm = parse_vm_hwm_bytes(text) if text else None
        if hwm is not None:
            self.peak_hwm_bytes = max(hwm, self.peak_hwm_bytes or 0)
        allowed = re.search(r"^Cpus_allowed_list:\s+(\S+)", text or "", re.MULTILINE)
        if allowed:
            self.cpus_allowed[allowed.group(1)] = self.cpus_allowed.get(allowed.group(1), 0) + 1
        return text

    def read(self) -> list[Row]:
        text = self._read_hwm()
        if text is None:
            return []
        m = re.search(r"^VmRSS:\s+(\d+)\s*kB", text, re.MULTILINE)
        rss = [(CH_RSS_BYTES, float(int(m.group(1)) * 1024))] if m else []
        return rss + (paging_rows(self.proc_root, self._pid, text) if self._pid is not None else [])


# --- CPU utilisation and frequency ------------------------------------------------------


@dataclass
class CpuUtilSource:
    """System-wide CPU utilisation (all cores, 0..100 %) from /proc/stat deltas."""

    proc_root: Path = Path("/proc")
    name: str = CH_CPU_UTIL_PCT
    _last: tuple[int, int] | None = None

    def _sample(self) -> tuple[int, int]:
        return parse_proc_stat_cpu((self.proc_root / "stat").read_text())

    def probe(self) -> str | None:
        try:
            self._last = self._sample()
        except (OSError, ValueError) as exc:
            return f"cannot read {self.proc_root / 'stat'}: {exc}"
        return None

    def read(self) -> list[Row]:
        try:
            busy, total = self._sample()
        except (OSError, ValueError):
            return []
        assert self._last is not None
        d_busy, d_total = busy - self._last[0], total - self._last[1]
        self._last = (busy, total)
        if d_total <= 0:
            return []  # no jiffy elapsed since the last tick: no information, not 0 %
        return [(CH_CPU_UTIL_PCT, 100.0 * d_busy / d_total)]


@dataclass
class CpufreqSource:
    """scaling_cur_freq and scaling_max_freq (kHz) of every cpufreq policy."""

    sys_root: Path = Path("/sys")
    name: str = "cpufreq"
    _files: list[tuple[str, Path]] = field(default_factory=list)

    def probe(self) -> str | None:
        base = self.sys_root / "devices/system/cpu/cpufreq"
        if not base.is_dir():
            return f"no {base} on this host"
        policies = sorted(p for p in base.iterdir() if re.fullmatch(r"policy\d+", p.name))
        if not policies:
            return f"no cpufreq policies under {base} (cpufreq driver not exposed, e.g. in a VM)"
        reasons = []
        for p in policies:
            for fname, channel in (
                ("scaling_cur_freq", ch_cpufreq_cur(p.name)),
                ("scaling_max_freq", ch_cpufreq_max(p.name)),
            ):
                path = p / fname
                try:
                    int(_read_text(path))
                    self._files.append((channel, path))
                except OSError as exc:
                    reasons.append(_why(path, exc))
                except ValueError:
                    reasons.append(f"{path} is not an integer")
        return None if self._files else "; ".join(reasons)

    def read(self) -> list[Row]:
        rows = []
        for channel, path in self._files:
            try:
                rows.append((channel, float(int(_read_text(path)))))
            except (OSError, ValueError):
                continue
        return rows


# --- temperatures -----------------------------------------------------------------------


def _plausible(temp_c: float) -> bool:
    return PLAUSIBLE_TEMP_C[0] <= temp_c <= PLAUSIBLE_TEMP_C[1]


@dataclass
class ThermalZoneSource:
    """/sys/class/thermal/thermal_zone*/{type,temp} (millidegrees C) -> temp_c/tz/<type>."""

    sys_root: Path = Path("/sys")
    name: str = "temp_c/tz"
    #: channel -> reason for zones that exist but are skipped (unreadable, not a temperature).
    skipped: dict[str, str] = field(default_factory=dict)
    _files: list[tuple[str, Path]] = field(default_factory=list)

    def probe(self) -> str | None:
        base = self.sys_root / "class/thermal"
        zones = sorted(base.glob("thermal_zone*"), key=lambda p: int(p.name[12:] or 0)) if base.is_dir() else []
        if not zones:
            return f"no thermal zones under {base} on this host"
        types = {}
        for z in zones:
            try:
                types[z] = _read_text(z / "type")
            except OSError:
                types[z] = z.name
        counts: dict[str, int] = {}
        for t in types.values():
            counts[t] = counts.get(t, 0) + 1
        for z, t in types.items():
            # Several zones may share a type: keep channels unique with the zone number.
            label = t if counts[t] == 1 else f"{t}#{z.name[12:]}"
            channel = ch_temp_tz(label)
            path = z / "temp"
            try:
                temp_c = int(_read_text(path)) / 1000.0
            except OSError as exc:
                self.skipped[channel] = _why(path, exc)
                continue
            except ValueError:
                self.skipped[channel] = f"{path} is not an integer"
                continue
            if not _plausible(temp_c):
                self.skipped[channel] = (
                    f"{path} reads {temp_c:g} degC: not a temperature (battery %, mA, mV or an absent thermistor)"
                )
                continue
            self._files.append((channel, path))
        if not self._files:
            return f"no readable temperature among {len(zones)} zones under {base}: " + "; ".join(
                sorted(set(self.skipped.values()))
            )
        return None

    def read(self) -> list[Row]:
        return _read_millidegrees(self._files)


def _read_millidegrees(files: list[tuple[str, Path]]) -> list[Row]:
    """One row per readable, plausible temperature file (kernel millidegrees C)."""
    rows = []
    for channel, path in files:
        try:
            temp_c = int(_read_text(path)) / 1000.0
        except (OSError, ValueError):
            continue
        if _plausible(temp_c):
            rows.append((channel, temp_c))
    return rows


@dataclass
class HwmonSource:
    """/sys/class/hwmon/hwmon*/temp*_input (millidegrees C): the files psutil's
    sensors_temperatures() reads, read here from sys_root so tests can point it elsewhere.
    Channel: temp_c/tz/hwmon:<chip>:<label>."""

    sys_root: Path = Path("/sys")
    name: str = "temp_c/hwmon"
    _files: list[tuple[str, Path]] = field(default_factory=list)

    def probe(self) -> str | None:
        base = self.sys_root / "class/hwmon"
        inputs = sorted(base.glob("hwmon*/temp*_input")) if base.is_dir() else []
        if not inputs:
            return f"no hwmon temperature inputs under {base} on this host"
        reasons = []
        for path in inputs:
            chip_dir = path.parent
            try:
                chip = _read_text(chip_dir / "name")
            except OSError:
                chip = chip_dir.name
            label_path = path.with_name(path.name.replace("_input", "_label"))
            try:
                label = _read_text(label_path)
            except OSError:
                label = path.name.removesuffix("_input")
            try:
                temp_c = int(_read_text(path)) / 1000.0
            except OSError as exc:
                reasons.append(_why(path, exc))
                continue
            except ValueError:
                reasons.append(f"{path} is not an integer")
                continue
            if _plausible(temp_c):
                self._files.append((ch_temp_tz(f"hwmon:{chip}:{label}"), path))
        return None if self._files else "no plausible hwmon temperature: " + "; ".join(reasons)

    def read(self) -> list[Row]:
        return _read_millidegrees(self._files)


# --- power ------------------------------------------------------------------------------


@dataclass
class RaplSource:
    """Package power from RAPL powercap energy counters (µJ), as deltas between ticks.

    Uses the `psys` (platform) zone alone when present, else the sum of top-level
    `package-N` zones; sub-zones (core, uncore, dram) are inside their package and would
    double count."""

    sys_root: Path = Path("/sys")
    clock: Callable[[], float] = time.monotonic  # the sampler passes its own
    name: str = "power_w/rapl"
    zones: list[str] = field(default_factory=list)
    _counters: list[tuple[Path, int | None]] = field(default_factory=list)
    _last: tuple[float, list[int]] | None = None

    def probe(self) -> str | None:
        base = self.sys_root / "class/powercap"
        top = sorted(p for p in base.glob("intel-rapl:*") if re.fullmatch(r"intel-rapl:\d+", p.name))
        if not top:
            return f"no {base}/intel-rapl:* on this host"
        names = {p: (_read_text(p / "name") if (p / "name").exists() else p.name) for p in top}
        psys = [p for p in top if names[p] == "psys"]
        chosen = psys or [p for p in top if names[p].startswith("package")] or top
        for p in chosen:
            path = p / "energy_uj"
            try:
                int(_read_text(path))
            except OSError as exc:
                return _why(path, exc)
            except ValueError:
                return f"{path} is not an integer"
            try:
                max_range: int | None = int(_read_text(p / "max_energy_range_uj"))
            except (OSError, ValueError):
                max_range = None
            self._counters.append((path, max_range))
            self.zones.append(f"{p.name} ({names[p]})")
        return None

    def read(self) -> list[Row]:
        now = self.clock()
        try:
            values = [int(_read_text(path)) for path, _ in self._counters]
        except (OSError, ValueError):
            return []
        last, self._last = self._last, (now, values)
        if last is None or now <= last[0]:
            return []
        total_uj = 0
        for (_, max_range), prev, cur in zip(self._counters, last[1], values, strict=True):
            delta = energy_delta_uj(prev, cur, max_range)
            if delta is None:
                return []
            total_uj += delta
        return [(CH_POWER_W, total_uj / 1e6 / (now - last[0]))]


@dataclass
class BatterySource:
    """Laptop battery: power_now (µW), or current_now (µA) x voltage_now (µV).

    Only while the battery discharges does it measure what the device draws; while
    charging (or full on AC) it reads net or no current, so no power row is emitted.
    Raw sign conventions differ by driver; values are normalised to positive while
    discharging (schema.SIGN_CONVENTION) using the status file, not the raw sign."""

    sys_root: Path = Path("/sys")
    name: str = "power_w/battery"
    battery: Path | None = None
    raw_convention: str | None = None
    not_discharging_ticks: int = 0

    def probe(self) -> str | None:
        base = self.sys_root / "class/power_supply"
        candidates = sorted(base.glob("BAT*")) if base.is_dir() else []
        if not candidates:
            return f"no {base}/BAT* on this host"
        reasons = []
        for bat in candidates:
            has_power = (bat / "power_now").exists()
            has_iv = (bat / "current_now").exists() and (bat / "voltage_now").exists()
            if not (has_power or has_iv):
                reasons.append(f"{bat} has neither power_now nor current_now+voltage_now")
                continue
            try:
                status = _read_text(bat / "status")
            except OSError as exc:
                reasons.append(_why(bat / "status", exc))
                continue
            self.battery = bat
            if status != "Discharging":
                return f"battery {bat.name} status is {status!r}: it measures net charge current, not device power"
            if not any(ch == CH_POWER_W for ch, _ in self.read()):
                return (
                    f"battery {bat.name} is discharging but reports no power "
                    "(power_now / current_now read 0 or unreadable): the driver does not measure it"
                )
            return None
        return "; ".join(reasons)

    def read(self) -> list[Row]:
        bat = self.battery
        assert bat is not None
        try:
            if _read_text(bat / "status") != "Discharging":
                self.not_discharging_ticks += 1
                return []
            rows: list[Row] = []
            current_a = voltage_v = None
            if (bat / "voltage_now").exists():
                voltage_v = int(_read_text(bat / "voltage_now")) / 1e6
                rows.append((CH_VOLTAGE_V, voltage_v))
            if (bat / "current_now").exists():
                raw_current = int(_read_text(bat / "current_now"))
                # A discharging battery cannot carry zero current: 0 means "not measured".
                if raw_current != 0:
                    self.raw_convention = (
                        "current_now negative while discharging" if raw_current < 0
                        else "current_now positive while discharging"
                    )
                    current_a = abs(raw_current) / 1e6
                    rows.append((CH_CURRENT_A, current_a))
            power_uw = int(_read_text(bat / "power_now")) if (bat / "power_now").exists() else 0
            if power_uw != 0:
                rows.append((CH_POWER_W, abs(power_uw) / 1e6))
            elif current_a is not None and voltage_v is not None:
                rows.append((CH_POWER_W, current_a * voltage_v))
            return rows
        except (OSError, ValueError):
            return []


@dataclass
class NvmlSource:
    """Board power of NVIDIA GPUs (sum over devices) through pynvml, if importable."""

    name: str = "power_w/nvml"
    _nvml: object = None
    _handles: list[object] = field(default_factory=list)

    def probe(self) -> str | None:
        try:
            import pynvml  # type: ignore[import-not-found]  # lazy: optional (nvidia-ml-py), absent on most hosts
        except ImportError:
            return "pynvml is not importable (pip install nvidia-ml-py to read NVIDIA GPU power)"
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            for h in self._handles:
                pynvml.nvmlDeviceGetPowerUsage(h)
        except pynvml.NVMLError as exc:
            return f"NVML: {exc}"
        if not self._handles:
            return "NVML found no GPU"
        self._nvml = pynvml
        return None

    def read(self) -> list[Row]:
        nvml = self._nvml
        try:
            milliwatts = sum(nvml.nvmlDeviceGetPowerUsage(h) for h in self._handles)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - an NVML failure mid-run drops the tick, never 0 W
            return []
        return [(CH_POWER_W, milliwatts / 1000.0)]
