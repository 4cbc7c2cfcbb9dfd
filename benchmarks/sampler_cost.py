"""The on-device sampler's own cost: CPU of the loop shell as % of one core (target <= 1%
at 10 Hz) and the achieved fast/slow rates vs requested, on a loopback phone.

    .venv/bin/python benchmarks/sampler_cost.py --seconds 30 --rate-hz 10

CPU is utime+stime+cutime+cstime of the loop's shell from /proc/<pid>/stat (its
`dumpsys thermalservice` children included) over its wall time, read by the loop itself
(builtin `read`), at USER_HZ = 100 (10 ms resolution: run >= 20 s). adbd's (here the
loopback daemon's) cost of forwarding the rows is not included. On the loopback phone mksh
runs on the host's x86 CPU; a phone's little core is slower, so read the figure as the
loop's cost relative to what it does, not as a phone measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.sensors.android import AndroidSampler  # noqa: E402
from suite.loopback import LoopbackPhone  # noqa: E402
from suite.transport.adb import AdbServerAddress, AdbTransport  # noqa: E402


def run_once(profile: str, seconds: float, rate_hz: float, thermal_period_s: float | None) -> dict:
    with LoopbackPhone(profile, charging=False) as phone:
        t = AdbTransport(phone.serial, AdbServerAddress("127.0.0.1", phone.adb_port))
        s = AndroidSampler(t, rate_hz=rate_hz, thermal_period_s=thermal_period_s)
        av = s.availability()
        s.start()
        time.sleep(seconds)
        st = s.stop()
        rows = s.rows
        fast_channels = {"power_w", "current_a"}
        n_rows = len(rows)
        return {
            "profile": profile,
            "seconds": seconds,
            "requested_hz": rate_hz,
            "achieved_hz": st.achieved_hz,
            "slow_requested_hz": s.slow_rate_hz,
            "slow_achieved_hz": s.notes.get("slow_achieved_hz"),
            "ticks": st.ticks,
            "missed_ticks": st.missed_ticks,
            "max_late_ms": round(st.max_late_s * 1000, 2),
            "loop_cpu_s": st.thread_cpu_s,
            "wall_s": round(st.wall_s, 3),
            "cpu_pct_of_one_core": round(st.cpu_pct, 3) if st.cpu_pct is not None else None,
            "thermal_status_period_s": thermal_period_s,
            "rows": n_rows,
            "rows_per_s": round(n_rows / st.wall_s, 1) if st.wall_s else None,
            "fast_rows": sum(1 for _, ch, _ in rows if ch in fast_channels),
            "channels_sampled": sum(1 for v in av.values() if v is None),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate-hz", type=float, default=10.0)
    ap.add_argument("--profiles", default="qcom-flagship,pixel-tensor")
    ap.add_argument("--thermal-period-s", type=float, default=5.0, help="0: no dumpsys thermalservice")
    a = ap.parse_args()
    results = []
    for prof in a.profiles.split(","):
        r = run_once(prof, a.seconds, a.rate_hz, a.thermal_period_s or None)
        results.append(r)
        verdict = "OK" if (r["cpu_pct_of_one_core"] or 0) <= 1.0 else "OVER TARGET"
        print(f"{prof:14s} {r['requested_hz']:.0f} Hz requested, {r['achieved_hz']:.3f} Hz achieved "
              f"(slow {r['slow_achieved_hz']:.3f} Hz), {r['missed_ticks']} missed, max late {r['max_late_ms']} ms; "
              f"loop CPU {r['loop_cpu_s']:.2f} s over {r['wall_s']:.1f} s = {r['cpu_pct_of_one_core']}% of one core "
              f"(target <= 1%: {verdict}); {r['channels_sampled']} channels, {r['rows_per_s']} rows/s")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
