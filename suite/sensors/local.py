"""The local host's sampling loop: one background thread, rows (t_s, channel, value).

The schedule is drift-free (tick k fires at start + k * period); a tick that comes too
late is skipped and counted rather than bunched. The loop measures its own cost (thread
CPU time, achieved rate) so a report can say what the sampling took from the run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from suite.core.schema import CH_RSS_BYTES, SAMPLE_COLUMNS, Phase, ch_phase
from suite.sensors.sources import (
    BatterySource,
    CpufreqSource,
    CpuUtilSource,
    HwmonSource,
    NvmlSource,
    PidFileRss,
    RaplSource,
    RssSource,
    Source,
    SystemMemorySource,
    ThermalZoneSource,
)

#: Availability keys beyond the sources' own names.
POWER = "power_w"
VM_HWM = "vm_hwm"


@dataclass(frozen=True)
class SamplerStats:
    """What the sampler cost and whether it kept its rate."""

    requested_hz: float
    achieved_hz: float | None
    ticks: int
    missed_ticks: int
    max_late_s: float
    wall_s: float
    thread_cpu_s: float

    @property
    def cpu_pct(self) -> float | None:
        """Sampler thread CPU time as a percentage of one core over its lifetime."""
        return 100.0 * self.thread_cpu_s / self.wall_s if self.wall_s > 0 else None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "requested_hz": self.requested_hz,
            "achieved_hz": self.achieved_hz,
            "ticks": self.ticks,
            "missed_ticks": self.missed_ticks,
            "max_late_s": self.max_late_s,
            "wall_s": self.wall_s,
            "thread_cpu_s": self.thread_cpu_s,
            "cpu_pct": self.cpu_pct,
        }


class LocalSampler:
    """Samples this host's sensors at `rate_hz` in a background thread.

    Use as a context manager (or start()/stop()). `t0` (on `clock`'s scale) is the run
    start that `t_s` is relative to; it defaults to the moment sampling started and may be
    set at any time, since rows keep their raw clock time until read.
    """

    def __init__(
        self,
        pid: int | None = None,
        rate_hz: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        sys_root: Path = Path("/sys"),
        proc_root: Path = Path("/proc"),
        use_nvml: bool = True,
        pid_file: Path | None = None,
    ) -> None:
        """`pid_file`: the runtime is not `pid` but whichever process that file names at each read (a
        native runtime's invocations, one process after another, each writing its pid as it starts)."""
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.pid = os.getpid() if pid is None else pid
        self.rate_hz = rate_hz
        self.clock = clock
        self.sys_root = sys_root
        self.proc_root = proc_root
        self.t0: float | None = None

        self._rss = RssSource(self.pid, proc_root) if pid_file is None else PidFileRss(Path(pid_file), proc_root)
        self._thermal = ThermalZoneSource(sys_root)
        # Power: one source feeds power_w, first available in this order. A discharging
        # battery sees the whole device (the closest analogue of a phone's fuel gauge);
        # RAPL sees the CPU package; NVML only the GPU board.
        self._power_candidates: list[Source] = [
            BatterySource(sys_root),
            RaplSource(sys_root, clock=clock),
        ]
        if use_nvml:
            self._power_candidates.append(NvmlSource())
        self._others: list[Source] = [
            self._rss,
            CpuUtilSource(proc_root),
            SystemMemorySource(proc_root),
            CpufreqSource(sys_root),
            self._thermal,
            HwmonSource(sys_root),
        ]
        self._active: list[Source] = []
        self._availability: dict[str, str | None] | None = None
        self.power_source: str | None = None

        self._raw: list[tuple[float, str, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stats: SamplerStats | None = None

    # --- availability -------------------------------------------------------------------

    def _probe(self) -> dict[str, str | None]:
        if self._availability is not None:
            return self._availability
        avail: dict[str, str | None] = {}
        for src in self._others:
            reason = src.probe()
            avail[src.name] = reason
            if reason is None:
                self._active.append(src)
        avail[VM_HWM] = self._rss.hwm_reason if avail[self._rss.name] is None else avail[self._rss.name]
        avail.update(self._thermal.skipped)
        power_reasons = []
        for src in self._power_candidates:
            if self.power_source is not None:
                avail[src.name] = f"not sampled: power_w comes from {self.power_source}"
                continue
            reason = src.probe()
            avail[src.name] = reason
            if reason is None:
                self.power_source = src.name
                self._active.append(src)
            else:
                power_reasons.append(reason)
        avail[POWER] = None if self.power_source else "; ".join(power_reasons)
        self._availability = avail
        return avail

    def availability(self) -> dict[str, str | None]:
        """sensor -> None if it is sampled, else the reason it is not."""
        return dict(self._probe())

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        self._probe()
        self._stop.clear()
        started = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(started,), name="edgebench-sampler", daemon=True)
        self._thread.start()
        started.wait()
        return self

    def stop(self) -> SamplerStats:
        if self._thread is None:
            raise RuntimeError("sampler not started")
        self._stop.set()
        self._thread.join()
        self._rss._read_hwm()  # the last word on the peak, if the process still exists
        assert self._stats is not None
        return self._stats

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.stop()

    def _loop(self, started: threading.Event) -> None:
        cpu_start = time.thread_time()
        period = 1.0 / self.rate_hz
        start = self.clock()
        if self.t0 is None:
            self.t0 = start
        started.set()
        k = ticks = missed = 0
        max_late = 0.0
        first_tick = last_tick = start
        while not self._stop.is_set():
            target = start + k * period
            delay = target - self.clock()
            if delay > 0 and self._stop.wait(delay):
                break
            now = self.clock()
            max_late = max(max_late, now - target)
            self._tick(now)
            if ticks == 0:
                first_tick = now
            last_tick = now
            ticks += 1
            k += 1
            # Fell behind (a slow read, a descheduled thread)? Skip to the next future tick.
            due = int((self.clock() - start) / period) + 1
            if due > k:
                missed += due - k
                k = due
        wall = self.clock() - start
        self._stats = SamplerStats(
            requested_hz=self.rate_hz,
            achieved_hz=(ticks - 1) / (last_tick - first_tick) if ticks > 1 and last_tick > first_tick else None,
            ticks=ticks,
            missed_ticks=missed,
            max_late_s=max_late,
            wall_s=wall,
            thread_cpu_s=time.thread_time() - cpu_start,
        )

    def _tick(self, now: float) -> None:
        rows = []
        for src in list(self._active):
            try:
                rows.extend((now, channel, value) for channel, value in src.read())
            except Exception as exc:  # noqa: BLE001 - one broken sensor must not stop the others
                self._active.remove(src)
                assert self._availability is not None
                self._availability[src.name] = f"failed during the run: {type(exc).__name__}: {exc}"
        with self._lock:
            self._raw.extend(rows)

    # --- results ------------------------------------------------------------------------

    def mark(self, phase: Phase | str, started: bool) -> None:
        """A phase marker row: 1.0 at the phase start, 0.0 at its end."""
        with self._lock:
            self._raw.append((self.clock(), ch_phase(phase), 1.0 if started else 0.0))

    @property
    def rows(self) -> list[tuple[float, str, float]]:
        """(t_s, channel, value) with t_s relative to t0."""
        t0 = self.t0 if self.t0 is not None else 0.0
        with self._lock:
            return [(t - t0, ch, v) for t, ch, v in self._raw]

    def to_frame(self):  # -> pandas.DataFrame
        import pandas as pd  # lazy: the phone's runner imports suite.sensors (probe), where pandas may be absent

        return pd.DataFrame(self.rows, columns=list(SAMPLE_COLUMNS))

    @property
    def stats(self) -> SamplerStats | None:
        return self._stats

    @property
    def peak_rss_bytes(self) -> int | None:
        """Max of the sampled RSS and the kernel's own peak (VmHWM) where available."""
        with self._lock:
            sampled = [v for _, ch, v in self._raw if ch == CH_RSS_BYTES]
        candidates = [int(max(sampled))] if sampled else []
        if self._rss.peak_hwm_bytes is not None:
            candidates.append(self._rss.peak_hwm_bytes)
        return max(candidates) if candidates else None

    @property
    def notes(self) -> dict[str, object]:
        """Provenance for run.json's `sensors` block."""
        out: dict[str, object] = {"power_source": self.power_source, "rate_hz": self.rate_hz}
        for src in self._power_candidates:
            if isinstance(src, RaplSource) and src.zones:
                out["rapl_zones"] = src.zones
            if isinstance(src, BatterySource) and src.battery is not None:
                out["battery"] = src.battery.name
                out["battery_raw_convention"] = src.raw_convention
                out["battery_not_discharging_ticks"] = src.not_discharging_ticks
        if self._stats is not None:
            out["sampler"] = self._stats.to_dict()
        if getattr(self._rss, "cpus_allowed", None):
            out["runtime_cpus_allowed"] = dict(self._rss.cpus_allowed)
        return out
