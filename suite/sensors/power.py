"""Power: which source measures a device, when a reading is not device power, an external meter's log
(the idle baseline and the charge-counter check are analysis: suite.analysis.energy).

Sources (recorded in every result as `power_source`):
- `battery_fuel_gauge`: `voltage_now` x `current_now`, normalised by
  suite.device.android.battery.battery_power (positive while discharging). Only valid while the
  phone runs from its battery: Charging / Full / Not charging (USB-powered with charging
  disabled: "battery idle") or any external supply online make it net current, not device power.
- `odpm_rails`: Pixel on-device power monitor, sum of the monitored rails (cumulative uWs
  counters, differenced). Covers the rails that are selected (8 per PMIC), not the whole
  device, but is not confounded by a charger.
- `external_meter`: a meter's CSV log, imported and aligned to the run by timestamps.

Charging confound (issue 6, FACTS.md 2.1): power is `unavailable: charging ...` unless the
setup is valid: Wi-Fi ADB with the cable out (`adb tcpip 5555`, `adb connect IP:5555`,
unplug: the phone then reports Discharging), a charge-control node the user names that cuts
the charger input (root, vendor-specific: the phone must then report Discharging), or an
external meter.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from suite.core.schema import CH_POWER_W, CH_POWER_W_DEVICE
from suite.device.android.battery import REASON_CHARGING, REASON_FULL, REASON_NOT_CHARGING, normalize_status

SOURCE_BATTERY = "battery_fuel_gauge"
SOURCE_ODPM = "odpm_rails"
SOURCE_METER = "external_meter"
SOURCES = (SOURCE_BATTERY, SOURCE_ODPM, SOURCE_METER)

CHARGING_PREFIX = "charging: "

WIFI_ADB_HOWTO = ("Wi-Fi ADB: with the cable in, `adb tcpip 5555`; `adb connect PHONE_IP:5555`; unplug the "
                  "cable; the phone must report status Discharging")


# --- charging confound --------------------------------------------------------------------


def charging_reason(status: str | int | None, *, plugged: Sequence[str] | None = None,
                    charge_control: bool = False, external_meter: bool = False) -> str | None:
    """Why the fuel gauge does not measure device power now, or None when it does.

    `plugged`: external supplies online (usb/ac/wireless...). `charge_control`: the user named a
    node that cuts the charger input (then only status Discharging is accepted, plugged or not).
    `external_meter`: the meter measures instead, the battery state does not matter.
    Every reason starts with `charging: `.
    """
    if external_meter:
        return None
    st = normalize_status(status)
    if st == "Charging":
        why = REASON_CHARGING
    elif st == "Full":
        why = REASON_FULL
    elif st == "Not charging":
        why = REASON_NOT_CHARGING + (" (the charge-control node stops charging but the device still runs "
                                     "from the charger)" if charge_control else "")
    elif st != "Discharging":
        why = f"battery status {st or 'unknown'}: cannot tell a discharge from a net charge"
    elif plugged and not charge_control:
        why = (f"on external power ({', '.join(plugged)}) while reporting Discharging: the fuel gauge "
               "measures net current; unplug (" + WIFI_ADB_HOWTO + ") or name a charge-control node")
    else:
        return None
    return why if why.startswith(CHARGING_PREFIX) else CHARGING_PREFIX + why


def select_power_source(*, battery_ok: bool, battery_reason: str | None = None, odpm_ok: bool = False,
                        odpm_reason: str | None = None, status: str | None = None,
                        prefer: str | None = None, external_meter: bool = False,
                        plugged: Sequence[str] | None = None,
                        charge_control: bool = False) -> tuple[str | None, str | None]:
    """(source, reason power_w is unavailable or None), chosen once per run.

    Order: an external meter when given; else the one the caller prefers if it is readable;
    else the fuel gauge (whole device) when it reads and the phone is not on a charger;
    else ODPM rails (not confounded by charging); else the fuel gauge (its charging reason
    is reported); else nothing.
    """
    if external_meter:
        return SOURCE_METER, None
    if prefer is not None:
        if prefer not in SOURCES:
            raise ValueError(f"unknown power source {prefer!r}; known: {', '.join(SOURCES)}")
        if prefer == SOURCE_BATTERY and battery_ok:
            return SOURCE_BATTERY, None
        if prefer == SOURCE_ODPM and odpm_ok:
            return SOURCE_ODPM, None
        if prefer == SOURCE_METER:
            return None, "external_meter requested: import its CSV with suite.sensors.power.load_meter_csv"
    charging = (charging_reason(status, plugged=plugged, charge_control=charge_control)
                if status is not None else None)
    if battery_ok and charging is None:
        return SOURCE_BATTERY, None
    if odpm_ok:
        return SOURCE_ODPM, None
    if battery_ok:
        return SOURCE_BATTERY, charging
    reasons = [r for r in (battery_reason, odpm_reason) if r]
    return None, "; ".join(reasons) or "no power source"


def is_wifi_adb(serial: str) -> bool:
    """A `host:port` serial is a TCP (Wi-Fi ADB) connection; USB serials have no colon."""
    host, sep, port = serial.rpartition(":")
    return bool(sep and host and port.isdigit())


# --- external meter -----------------------------------------------------------------------

_T_COLS = ("t_s", "time_s", "timestamp", "time", "epoch", "epoch_s", "t", "seconds")
_W_COLS = ("power_w", "watts", "power", "w", "p_w")
_V_COLS = ("voltage_v", "volts", "voltage", "v")
_A_COLS = ("current_a", "amps", "current", "a", "i_a")
_MA_COLS = ("current_ma", "milliamps", "ma")
_MW_COLS = ("power_mw", "milliwatts", "mw")


@dataclass(frozen=True)
class MeterTrace:
    """An external meter's samples: absolute times (epoch seconds) and watts."""

    t_epoch_s: np.ndarray
    watts: np.ndarray
    source: str
    columns: dict[str, str] = field(default_factory=dict)

    def rows(self, t0_epoch_s: float, *, offset_s: float = 0.0) -> list[tuple[float, str, float]]:
        """As sample rows: t_s = meter time + offset - t0 (offset: device clock minus meter clock)."""
        return [(float(t) + offset_s - t0_epoch_s, CH_POWER_W, float(w))
                for t, w in zip(self.t_epoch_s, self.watts, strict=True)]


def _parse_time(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return dt.timestamp()


def load_meter_csv(path: Path | str, *, start_epoch_s: float | None = None) -> MeterTrace:
    """A meter log: a header row, a time column (epoch seconds, ISO 8601, or seconds from
    `start_epoch_s` when the log is relative) and watts (W or mW) or volts and amps (A or mA)."""
    path = Path(path)
    with open(path, newline="") as fh:
        reader = csv.DictReader(line for line in fh if line.strip() and not line.startswith("#"))
        header = {h.strip().lower(): h for h in (reader.fieldnames or [])}

        def col(names: Iterable[str]) -> str | None:
            return next((header[n] for n in names if n in header), None)

        tc = col(_T_COLS)
        wc, mwc = col(_W_COLS), col(_MW_COLS)
        vc, ac, mac = col(_V_COLS), col(_A_COLS), col(_MA_COLS)
        if tc is None:
            raise ValueError(f"{path}: no time column (one of {', '.join(_T_COLS)})")
        if wc is None and mwc is None and not (vc and (ac or mac)):
            raise ValueError(f"{path}: need a watts column or volts and amps columns")
        ts, ws = [], []
        for n, row in enumerate(reader, start=2):
            try:
                t = _parse_time(row[tc])
                if wc is not None:
                    w = float(row[wc])
                elif mwc is not None:
                    w = float(row[mwc]) / 1000.0
                else:
                    amps = float(row[ac]) if ac else float(row[mac]) / 1000.0
                    w = float(row[vc]) * amps
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"{path}: line {n}: {exc}") from None
            if math.isfinite(t) and math.isfinite(w):
                ts.append(t)
                ws.append(w)
    t = np.asarray(ts, dtype=float)
    if start_epoch_s is not None:
        t = t + start_epoch_s
    elif len(t) and t[0] < 1e8:
        raise ValueError(f"{path}: times look relative ({t[0]:g}); pass start_epoch_s to align them")
    order = np.argsort(t, kind="stable")
    cols = {"time": tc, **({"watts": wc} if wc else {}), **({"milliwatts": mwc} if mwc else {}),
            **({"volts": vc} if vc else {}), **({"amps": ac} if ac else {}), **({"milliamps": mac} if mac else {})}
    return MeterTrace(t[order], np.asarray(ws, dtype=float)[order], str(path), cols)


def align_meter(trace: MeterTrace, t0_epoch_s: float, t_end_s: float | None = None, *,
                offset_s: float = 0.0, margin_s: float = 1.0) -> list[tuple[float, str, float]]:
    """Meter rows on a run's time axis, kept within [-margin, t_end + margin]."""
    rows = trace.rows(t0_epoch_s, offset_s=offset_s)
    return [r for r in rows if r[0] >= -margin_s and (t_end_s is None or r[0] <= t_end_s + margin_s)]


# --- an external meter in a run ---------------------------------------------------------------


def clock_block(t0_epoch_s: float, host_minus_device_s: float = 0.0) -> dict[str, float]:
    """What a run records to align outside logs: the epoch of t_s = 0 on the device clock, and
    the host's clock minus the device's (measured at the start of the run)."""
    return {"t0_epoch_s": float(t0_epoch_s), "host_minus_device_s": float(host_minus_device_s)}


@dataclass(frozen=True)
class MeterApplied:
    """A meter's log on a run's time axis: the new sample rows, the run's sensors block and power
    source as the meter makes them, and the record's `power_meter` block (the log's provenance)."""

    rows: list
    sensors: dict
    power_source: str
    block: dict


def apply_meter(rows: list[tuple[float, str, float]], trace: MeterTrace, *, sensors: Mapping,
                power_source: str | None, offset_s: float = 0.0) -> MeterApplied:
    """Put a meter's watts on the run's time axis as `power_w`; the device's own power readings
    (if any) move to `power_w_device`. The meter's clock is taken to be the controller host's
    clock (the one `edgebench run` recorded against the device clock, `sensors["time_base"]`);
    `offset_s` adds a further shift (meter clock minus host clock, when the meter logs on another
    machine). `power_source`: the device's own, recorded in the block.

    Raises ValueError when the log has no sample within the run.
    """
    clock = sensors.get("time_base")
    if not clock:
        raise ValueError("this run recorded no time base (t0 epoch): cannot align a meter log to it")
    kept = [(t, CH_POWER_W_DEVICE if ch == CH_POWER_W else ch, v) for t, ch, v in rows]
    t_end = max((t for t, _, _ in rows), default=None)
    # meter (host) time -> device time: minus (host - device), minus the meter's own offset
    shift = -float(clock.get("host_minus_device_s") or 0.0) - offset_s
    meter = align_meter(trace, float(clock["t0_epoch_s"]), t_end, offset_s=shift)
    if len(meter) < 2:
        span = (f"{trace.t_epoch_s[0]:.1f}..{trace.t_epoch_s[-1]:.1f}" if len(trace.t_epoch_s) else "empty")
        raise ValueError(f"the meter log ({span}, epoch s) has fewer than 2 samples inside the run "
                         f"(t0 {clock['t0_epoch_s']:.1f}, {t_end or 0:.1f} s long); check the clocks or --meter-offset")
    unavailable = dict(sensors.get("unavailable") or {})
    replaced = unavailable.pop(CH_POWER_W, None)
    available = set(sensors.get("available") or [])
    if CH_POWER_W in available:
        available.add(CH_POWER_W_DEVICE)
    available.add(CH_POWER_W)
    ts = [t for t, _, _ in meter]
    block = {
        "file": trace.source, "columns": trace.columns, "rows": len(trace.t_epoch_s), "rows_in_run": len(meter),
        "rate_hz": (len(ts) - 1) / (ts[-1] - ts[0]) if ts[-1] > ts[0] else None,
        "offset_s": offset_s, "time_base": dict(clock),
        "device_power_source": power_source, "device_power_unavailable": replaced,
    }
    return MeterApplied([*kept, *meter], {**sensors, "available": sorted(available), "unavailable": unavailable},
                        SOURCE_METER, block)


#: Prefixes of the metrics that power gives (a meter's log replaces all of them).
POWER_METRIC_PREFIXES = ("power_w/", "energy_j/", "j_per_token/", "tokens_per_j/")


__all__ = [
    "CH_POWER_W_DEVICE", "CHARGING_PREFIX", "SOURCES", "SOURCE_BATTERY", "SOURCE_METER", "SOURCE_ODPM",
    "WIFI_ADB_HOWTO", "MeterApplied", "MeterTrace", "POWER_METRIC_PREFIXES", "align_meter", "apply_meter",
    "charging_reason", "clock_block", "is_wifi_adb",
    "load_meter_csv", "select_power_source",
]
