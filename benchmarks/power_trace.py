"""End-to-end energy error: a KNOWN power trace driven through the loopback phone's battery
sysfs, sampled by the on-device sampler, written with suite.store.write_run, read back from
samples.parquet and integrated by suite.analysis.metrics.energy_j (target < 1% error).

    .venv/bin/python benchmarks/power_trace.py --seconds 30

How the trace gets into sysfs (host side, through the phone's state dir):
1. A qcom-flagship phone (uA, positive while discharging) starts on its charger with a high
   time scale until the model's battery is Full: from then on the model's current is 0 and
   constant, so its renderer (which only rewrites a node whose value changed) leaves
   `current_now`, `voltage_now` and `status` alone.
2. This script then owns those three nodes: it writes `status=Discharging` once and, at
   ~200 Hz, `voltage_now` (uV) and `current_now` (uA) of the trace P(t) = V(t) x I(t), each
   with an atomic rename into `<state_dir>/sys/class/power_supply/battery/`, which the
   sandbox shows at /sys/class/power_supply/battery/. Every write is logged with its host
   time.
3. The known energy is the exact integral of what the nodes held: the product of the last
   written V and I, piecewise constant between logged writes (quantised values included).
The phone's realtime clock is the host's (one kernel), so the sampler's $EPOCHREALTIME rows
and the write log share one time axis; phase markers for [a, b] bound the integral.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from suite.analysis.metrics import energy_j, intervals_from_samples  # noqa: E402
from suite.core.schema import CH_POWER_W, RUN_FIELDS, SCHEMA_VERSION, Phase  # noqa: E402
from suite.sensors.android import AndroidSampler  # noqa: E402
from suite.core.record import new_run_id, utc_now  # noqa: E402
from suite.store import SAMPLES_PARQUET, write_run  # noqa: E402
from suite.loopback import LoopbackPhone  # noqa: E402
from suite.transport.adb import AdbServerAddress, AdbTransport  # noqa: E402


def trace_w(t: float) -> float:
    """Idle 0.6 W, a step to a ~3.5 W load with two ripples, a step back down."""
    if t < 4.0 or t > 26.0:
        return 0.6 + 0.05 * math.sin(2 * math.pi * t / 3.0)
    return 3.5 + 1.0 * math.sin(2 * math.pi * t / 6.0) + 0.4 * math.sin(2 * math.pi * t / 2.3)


def trace_v(t: float) -> float:
    return 3.90 - 0.04 * math.sin(2 * math.pi * t / 11.0)


def _put(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".bench")
    tmp.write_text(text)
    os.chmod(tmp, 0o444)
    os.replace(tmp, path)


class TraceWriter(threading.Thread):
    def __init__(self, bat: Path, t_start: float, seconds: float, hz: float = 200.0):
        super().__init__(daemon=True)
        self.bat, self.t_start, self.seconds, self.period = bat, t_start, seconds, 1.0 / hz
        self.log: list[tuple[float, float, float]] = []  # (host realtime, V, I) after each pair of writes
        self.stop_evt = threading.Event()

    def run(self) -> None:
        k = 0
        while not self.stop_evt.is_set():
            now = time.time()
            rel = now - self.t_start
            if rel > self.seconds:
                break
            v = trace_v(rel)
            i_ua = round(trace_w(rel) / v * 1e6)  # qcom-flagship: uA, positive while discharging
            v_uv = round(v * 1e6)
            _put(self.bat / "current_now", f"{i_ua}\n")
            t_i = time.time()
            _put(self.bat / "voltage_now", f"{v_uv}\n")
            t_v = time.time()
            self.log.append((t_i, None, i_ua / 1e6))
            self.log.append((t_v, v_uv / 1e6, None))
            k += 1
            delay = self.t_start + k * self.period - time.time()
            if delay > 0:
                time.sleep(delay)

    def energy(self, a: float, b: float, v0: float, i0: float) -> float:
        """Exact integral over [a, b] (host realtime) of V x I as the nodes held them."""
        v, i = v0, i0
        e, last = 0.0, a
        for t, nv, ni in self.log:
            if t > a:
                seg_end = min(t, b)
                if seg_end > last:
                    e += v * i * (seg_end - last)
                    last = seg_end
            if t >= b:
                break
            if nv is not None:
                v = nv
            if ni is not None:
                i = ni
        if last < b:
            e += v * i * (b - last)
        return e


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate-hz", type=float, default=10.0)
    a = ap.parse_args()
    with LoopbackPhone("qcom-flagship", charging=True, time_scale=3000) as phone, \
            tempfile.TemporaryDirectory(prefix="edgebench-powertrace-") as tmp:
        st = phone.wait_state(lambda s: s["level"] >= 100 and s["current_a"] == 0.0, timeout_s=30)
        if st["current_a"] != 0.0:
            raise SystemExit(f"the model's battery did not reach Full: {st}")
        phone.set_time_scale(1.0)
        bat = phone.state_dir / "sys/class/power_supply/battery"
        v0, i0 = trace_v(0.0), trace_w(0.0) / trace_v(0.0)
        _put(bat / "status", "Discharging\n")
        _put(bat / "voltage_now", f"{round(v0 * 1e6)}\n")
        _put(bat / "current_now", f"{round(i0 * 1e6)}\n")
        v0, i0 = round(v0 * 1e6) / 1e6, round(i0 * 1e6) / 1e6

        t = AdbTransport(phone.serial, AdbServerAddress("127.0.0.1", phone.adb_port))
        sampler = AndroidSampler(t, rate_hz=a.rate_hz, thermal_period_s=None)
        av = sampler.availability()
        assert av[CH_POWER_W] is None, av[CH_POWER_W]
        t_start = time.time()
        writer = TraceWriter(bat, t_start, a.seconds + 2.0)
        writer.start()
        sampler.start()
        sampler.set_t0_device(t_start)
        time.sleep(a.seconds + 0.5)
        stats = sampler.stop()
        writer.stop_evt.set()
        writer.join()

        # the measured phase: [1, seconds - 1] s after the trace started, on the device clock
        ta, tb = t_start + 1.0, t_start + a.seconds - 1.0
        sampler.mark(Phase.DECODE, True, ta)
        sampler.mark(Phase.DECODE, False, tb)
        record = {k: None for k in RUN_FIELDS} | {
            "schema_version": SCHEMA_VERSION, "run_id": new_run_id(), "started_at": utc_now(),
            "ended_at": utc_now(), "outcome": "completed", "errors": [], "origin": "measured",
            "sensors": sampler.notes, "unavailable": {k: v for k, v in sampler.availability().items() if v},
            "metrics": {}, "scenario": {"name": "power_trace benchmark"},
        }
        run_dir = write_run(Path(tmp), record, sampler.rows)
        samples = pd.read_parquet(run_dir / SAMPLES_PARQUET)
        measured = energy_j(samples, intervals_from_samples(samples, Phase.DECODE.value))
        known = writer.energy(ta, tb, v0, i0)
        err = (measured - known) / known
        power = samples[samples["channel"] == CH_POWER_W]
        result = {
            "seconds_integrated": tb - ta, "known_j": known, "measured_j": measured,
            "error_pct": 100 * err, "target_pct": 1.0,
            "power_samples": int(len(power)), "requested_hz": a.rate_hz, "achieved_hz": stats.achieved_hz,
            "missed_ticks": stats.missed_ticks, "trace_writes": len(writer.log) // 2,
            "sampler_cpu_pct": stats.cpu_pct, "power_source": sampler.power_source,
            "raw_convention": sampler.notes.get("battery_raw_convention", {}).get("discharge_sign"),
        }
        print(f"known {known:.4f} J, measured {measured:.4f} J over {tb - ta:.1f} s: error {100 * err:+.3f}% "
              f"(target < 1%: {'OK' if abs(err) < 0.01 else 'FAIL'}); {len(power)} power samples, "
              f"{stats.achieved_hz:.3f} Hz achieved of {a.rate_hz:g} Hz requested")
        print(json.dumps(result, indent=2))
        return 0 if abs(err) < 0.01 else 1


if __name__ == "__main__":
    raise SystemExit(main())
