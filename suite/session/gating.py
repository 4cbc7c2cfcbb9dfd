"""Closed-loop gating before a measured run (issue 6): cooldown and battery floor.

Both gates poll the phone at ~1 Hz through the existing parsers (`dumpsys battery`,
`dumpsys thermalservice` Current HAL block with `IsStatusOverride` respected, the thermal
zones) and say what they wait for through the `status` callback ("cooling: 41.2 °C -> 35 °C").
What was waited, and the temperatures/levels at the start and end, are returned so that a run
records them (`GateResult.conditions()` -> the run's `conditions`).

A gate that cannot be met within its timeout raises an EdgebenchError carrying the numbers,
or, with `on_timeout="skip"`, returns `ok=False` and a `reason` the caller records as a skip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from suite.core.errors import EdgebenchError
from suite.core.schema import THERMAL_STATUS
from suite.device.android.battery import parse_dumpsys_battery
from suite.device.android.thermal import parse_thermal_zones, parse_thermalservice
from suite.device.live import THERMAL_ZONES_LOOP, run_batch

Status = Callable[[str], None]

#: which temperature the cooldown compares with its threshold
SENSORS = ("battery", "max")
DEFAULT_MAX_TEMP_C = 35.0
DEFAULT_BATTERY_FLOOR = 50


@dataclass(frozen=True)
class Gate:
    """Gates before each measured run (None: that gate is off); apply_gate runs them."""

    cooldown_max_temp_c: float | None = None
    cooldown_sensor: str = "battery"
    cooldown_timeout_s: float = 600.0
    cooldown_delay_s: float = 0.0
    require_status_none: bool = True
    battery_floor: float | None = None
    battery_wait: bool = False
    battery_timeout_s: float = 1800.0
    poll_s: float = 1.0


class GateTimeout(EdgebenchError):
    """A gate was not met within its timeout (the numbers are in the message and context)."""

    exit_code = 5


@dataclass(frozen=True)
class GateReading:
    """One poll of the phone: battery temperature and level, the hottest sensor, thermal status."""

    battery_temp_c: float | None
    level_pct: float | None
    battery_status: str | None
    thermal_status: int | None
    #: the hottest Current-block HAL temperature or thermal zone (None: none readable)
    hottest_c: float | None = None
    hottest_name: str | None = None
    t: float = field(default_factory=time.monotonic)

    def temps(self) -> dict[str, float | None]:
        return {"battery": self.battery_temp_c, "hottest": self.hottest_c, "hottest_sensor": self.hottest_name}


Reader = Callable[[], GateReading]

_BATTERY = "dumpsys battery 2>/dev/null"
_THERMAL = "dumpsys thermalservice 2>/dev/null"


def read_gate(transport, *, zones: bool = True) -> GateReading:
    """One round trip: battery, thermal service and (optionally) the thermal zones, parsed."""
    cmds = {"battery": _BATTERY, "thermal": _THERMAL}
    if zones:
        cmds["zones"] = THERMAL_ZONES_LOOP
    texts = run_batch(transport, cmds, timeout_s=30)
    b = parse_dumpsys_battery(texts.get("battery", "")) if texts.get("battery", "").strip() else None
    th = parse_thermalservice(texts.get("thermal", "")) if texts.get("thermal", "").strip() else None
    hot: list[tuple[float, str]] = []
    if th is not None:
        hot += [(t.temp_c, f"hal/{t.name}") for t in th.sensors() if t.temp_c is not None]
    if zones and texts.get("zones", "").strip():
        hot += [(z.temp_c, f"tz/{z.type}") for z in parse_thermal_zones(texts["zones"]).temperatures()
                if z.temp_c is not None and -40 < z.temp_c < 150]
    top = max(hot, default=None)
    return GateReading(
        battery_temp_c=b.temp_c if b else None,
        level_pct=b.level_pct if b else None,
        battery_status=b.status if b else None,
        thermal_status=th.status if th else None,
        hottest_c=top[0] if top else None,
        hottest_name=top[1] if top else None,
    )


def as_reader(transport_or_reader, *, zones: bool = True) -> Reader:
    """A reader from a transport, a device ref (has `.transport()`), or a reader callable."""
    if hasattr(transport_or_reader, "shell"):
        return lambda: read_gate(transport_or_reader, zones=zones)
    if hasattr(transport_or_reader, "transport") and callable(transport_or_reader.transport):
        t = transport_or_reader.transport()
        return lambda: read_gate(t, zones=zones)
    if callable(transport_or_reader):
        return transport_or_reader
    raise TypeError(f"not a transport, device ref or reader: {transport_or_reader!r}")


@dataclass
class GateResult:
    """What a gate waited for. `ok` False: not met (then `reason` says why; the caller skips)."""

    gate: str
    waited_s: float
    ok: bool
    reason: str | None
    start: dict
    end: dict
    threshold: dict
    polls: int = 0

    # the names the brief uses
    @property
    def start_temps(self) -> dict:
        return self.start

    @property
    def end_temps(self) -> dict:
        return self.end

    def to_dict(self) -> dict:
        return asdict(self)

    def conditions(self) -> dict:
        """Keys for a run record's `conditions` block."""
        if self.gate == "cooldown":
            return {"cooldown_waited_s": round(self.waited_s, 3), "cooldown": self.to_dict()}
        return {"battery_floor": self.to_dict()}


def _temp_of(r: GateReading, sensor: str) -> tuple[float | None, str]:
    if sensor == "battery":
        return r.battery_temp_c, "battery"
    vals = [(v, n) for v, n in ((r.battery_temp_c, "battery"), (r.hottest_c, r.hottest_name or "hottest"))
            if v is not None]
    if not vals:
        return None, "max"
    return max(vals)


def _fmt(v: float | None) -> str:
    return "?" if v is None else f"{v:.1f}"


def cooldown(transport_or_reader, *, max_temp_c: float = DEFAULT_MAX_TEMP_C, sensor: str = "battery",
             require_status_none: bool = True, timeout_s: float = 600.0, poll_s: float = 1.0,
             delay_s: float = 0.0, on_timeout: str = "error", status: Status | None = None,
             sleep: Callable[[float], None] = time.sleep) -> GateResult:
    """Wait until the chosen temperature (`battery`, or `max`: the hottest of battery, Current HAL
    block and thermal zones) is <= `max_temp_c` and, with `require_status_none`, the thermal
    status is 0 (NONE). Polls every `poll_s`; then waits `delay_s` more (a fixed delay, for parity
    with other tools). Timeout: GateTimeout, or with `on_timeout="skip"` ok=False and a reason.
    A phone whose temperature cannot be read is not waited on (ok, with the reason recorded)."""
    if sensor not in SENSORS:
        raise EdgebenchError(f"unknown cooldown sensor {sensor!r}; known: {', '.join(SENSORS)}", exit_code=2)
    if on_timeout not in ("error", "skip"):
        raise ValueError(f"on_timeout must be 'error' or 'skip', not {on_timeout!r}")
    say = status or (lambda _m: None)
    read = as_reader(transport_or_reader, zones=sensor == "max")
    threshold = {"max_temp_c": max_temp_c, "sensor": sensor, "require_status_none": require_status_none,
                 "timeout_s": timeout_s, "delay_s": delay_s}
    t_start = time.monotonic()
    first = r = read()
    polls = 1

    def snap(x: GateReading) -> dict:
        return {**x.temps(), "thermal_status": x.thermal_status}

    def result(ok: bool, reason: str | None) -> GateResult:
        return GateResult("cooldown", time.monotonic() - t_start, ok, reason, snap(first), snap(r), threshold, polls)

    while True:
        temp, name = _temp_of(r, sensor)
        if temp is None:
            say("cooling: no temperature readable; not waiting")
            return result(True, "no temperature readable: the cooldown gate could not check")
        hot = temp > max_temp_c
        status_hot = require_status_none and r.thermal_status not in (None, 0)
        if not hot and not status_hot:
            break
        elapsed = time.monotonic() - t_start
        if elapsed >= timeout_s:
            st = r.thermal_status
            why = (f"cooldown timed out after {elapsed:.0f} s: {name} {_fmt(temp)} °C (start "
                   f"{_fmt(_temp_of(first, sensor)[0])} °C), threshold {max_temp_c:g} °C"
                   + (f"; thermal status {st} ({THERMAL_STATUS.get(st, '?')}), NONE required" if status_hot else ""))
            if on_timeout == "skip":
                say(why)
                return result(False, why)
            raise GateTimeout(why, hint="let the phone cool (out of its case, away from the charger, screen off), "
                              "raise --cooldown-max-temp or --cooldown-timeout",
                              temp_c=temp, start_temp_c=_temp_of(first, sensor)[0], max_temp_c=max_temp_c,
                              thermal_status=st, waited_s=elapsed)
        msg = f"cooling: {_fmt(temp)} °C -> {max_temp_c:g} °C"
        if status_hot:
            msg += f", thermal status {r.thermal_status} -> 0"
        say(msg + f" ({elapsed:.0f} s)")
        sleep(poll_s)
        r = read()
        polls += 1
    if delay_s > 0:
        say(f"cooling: fixed delay {delay_s:g} s")
        sleep(delay_s)
        r = read()
        polls += 1
    return result(True, None)


def battery_floor(transport_or_reader, *, level_min: float = DEFAULT_BATTERY_FLOOR, wait: bool = False,
                  timeout_s: float = 1800.0, poll_s: float = 1.0, on_timeout: str = "skip",
                  status: Status | None = None, sleep: Callable[[float], None] = time.sleep) -> GateResult:
    """Battery level at least `level_min` %. Below it: without `wait`, ok=False with the reason
    (skip); with `wait`, poll until charged to the floor (the phone must be charging), then
    ok, else on timeout a reason (`on_timeout="skip"`) or GateTimeout (`"error"`)."""
    say = status or (lambda _m: None)
    read = as_reader(transport_or_reader, zones=False)
    threshold = {"level_min": level_min, "wait": wait, "timeout_s": timeout_s}
    t_start = time.monotonic()
    first = r = read()
    polls = 1

    def snap(x: GateReading) -> dict:
        return {"level_pct": x.level_pct, "battery_status": x.battery_status}

    def result(ok: bool, reason: str | None) -> GateResult:
        return GateResult("battery_floor", time.monotonic() - t_start, ok, reason, snap(first), snap(r),
                          threshold, polls)

    while True:
        if r.level_pct is None:
            return result(True, "battery level unreadable: the battery floor could not check")
        if r.level_pct >= level_min:
            return result(True, None)
        elapsed = time.monotonic() - t_start
        low = f"battery {r.level_pct:.0f}% is below the floor {level_min:g}%"
        if not wait:
            say(low)
            return result(False, f"{low} (not waiting: charge the phone or lower --battery-floor)")
        if elapsed >= timeout_s:
            why = (f"battery floor timed out after {elapsed:.0f} s: {r.level_pct:.0f}% (start "
                   f"{first.level_pct:.0f}%), floor {level_min:g}%, status {r.battery_status}")
            if on_timeout == "skip":
                say(why)
                return result(False, why)
            raise GateTimeout(why, hint="plug the phone in to charge, or lower --battery-floor",
                              level_pct=r.level_pct, start_level_pct=first.level_pct, level_min=level_min)
        say(f"charging: {r.level_pct:.0f}% -> {level_min:g}% ({r.battery_status or 'status unknown'}, "
            f"{elapsed:.0f} s)")
        sleep(poll_s)
        r = read()
        polls += 1


# --- applying the gates before a run ------------------------------------------------------------


class GateSkipped(EdgebenchError):
    """A gate said skip (battery under the floor, not waiting); no run was made."""

    exit_code = 5


def apply_gate(ref, gate: Gate | None, status: Status | None = None) -> dict:
    """Run the gates; the run record's `conditions` additions. Raises GateSkipped / GateTimeout."""
    if gate is None:
        return {}
    out: dict = {}
    if gate.battery_floor is not None:
        b = battery_floor(ref, level_min=gate.battery_floor, wait=gate.battery_wait,
                                 timeout_s=gate.battery_timeout_s, poll_s=gate.poll_s, status=status)
        out.update(b.conditions())
        if not b.ok:
            raise GateSkipped(f"skipped: {b.reason}", gate=b.to_dict())
    if gate.cooldown_max_temp_c is not None:
        c = cooldown(ref, max_temp_c=gate.cooldown_max_temp_c, sensor=gate.cooldown_sensor,
                            require_status_none=gate.require_status_none, timeout_s=gate.cooldown_timeout_s,
                            poll_s=gate.poll_s, delay_s=gate.cooldown_delay_s, status=status)
        out.update(c.conditions())
    return out


__all__ = ["DEFAULT_BATTERY_FLOOR", "DEFAULT_MAX_TEMP_C", "Gate", "GateReading", "GateResult", "GateSkipped",
           "GateTimeout", "SENSORS", "apply_gate", "as_reader", "battery_floor", "cooldown", "read_gate"]
