"""Pixel on-device power monitor (ODPM): `cat /sys/bus/iio/devices/iio:device*/energy_value`.

Per IIO device a `t=<ms since boot>` line, then `CH<n>(T=<ms>)[<RAIL>], <energy>` lines with
cumulative energy in uWs (micro-watt-seconds). Power over an interval is dE/dt: ANGLE computes
delta / dt / 1e6 for watts. Rail names differ per Pixel generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_T_LINE = re.compile(r"^t=(\d+)$")
_CH_LINE = re.compile(r"^CH(\d+)\(T=(\d+)\)\[([^\]]+)\],\s*(\d+)$")


@dataclass(frozen=True)
class RailEnergy:
    device: int  # index of the `t=` block (one per IIO device, in output order)
    channel: int
    rail: str
    t_ms: int
    energy_uws: int


@dataclass(frozen=True)
class OdpmReading:
    #: the `t=` value of each device block
    device_t_ms: tuple[int, ...]
    rails: tuple[RailEnergy, ...]
    problems: dict[str, str] = field(default_factory=dict)

    def by_rail(self) -> dict[str, RailEnergy]:
        return {r.rail: r for r in self.rails}


def parse_odpm_energy(text: str) -> OdpmReading:
    devices: list[int] = []
    rails: list[RailEnergy] = []
    problems: dict[str, str] = {}
    for n, line in enumerate(text.replace("\r", "").split("\n"), start=1):
        s = line.strip()
        if not s:
            continue
        if (m := _T_LINE.match(s)):
            devices.append(int(m.group(1)))
            continue
        if (m := _CH_LINE.match(s)):
            if not devices:
                problems[f"line {n}"] = "channel line before any t= line; device index 0 assumed"
                devices.append(int(m.group(2)))
            rails.append(RailEnergy(len(devices) - 1, int(m.group(1)), m.group(3), int(m.group(2)), int(m.group(4))))
            continue
        problems[f"line {n}"] = "not a 't=<ms>' or 'CHn(T=<ms>)[RAIL], <uWs>' line; ignored"
    if not rails:
        problems.setdefault("rails", "no rail lines")
    return OdpmReading(tuple(devices), tuple(rails), problems)


def rail_power_w(before: OdpmReading, after: OdpmReading) -> tuple[dict[str, float], dict[str, str]]:
    """Average watts per rail between two readings: dE[uWs] / dt[ms] / 1000.

    Returns (rail -> W, rail -> reason) for rails that cannot be computed (missing in one
    reading, no time elapsed, counter went backwards: a reset or a re-selected channel)."""
    a, b = before.by_rail(), after.by_rail()
    power: dict[str, float] = {}
    problems: dict[str, str] = {}
    for rail in dict.fromkeys([*a, *b]):
        if rail not in a or rail not in b:
            problems[rail] = "present in only one reading"
            continue
        dt_ms = b[rail].t_ms - a[rail].t_ms
        de = b[rail].energy_uws - a[rail].energy_uws
        if dt_ms <= 0:
            problems[rail] = f"no time elapsed (dt {dt_ms} ms)"
        elif de < 0:
            problems[rail] = f"energy counter went backwards ({de} uWs): reset or rail re-selected"
        else:
            power[rail] = de / dt_ms / 1000.0
    return power, problems
