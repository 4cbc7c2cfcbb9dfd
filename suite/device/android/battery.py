"""Battery texts and current normalisation.

Sources: `dumpsys battery` (level, tenths of degC, mV, plugged booleans; Samsung adds
`current now` in mA and a broadcast log with signed `current_avg`) and the power_supply
`uevent` (POWER_SUPPLY_* keys; `current_now` normally in uA, voltage uV, charge uAh).

Current sign and unit differ by vendor (FACTS.md 2.1): the kernel ABI says negative while
discharging, Xiaomi's Mi 8 is negative while charging, Samsung's dumpsys prints mA. edgebench
normalises once, here, to DESIGN's convention (positive while the device draws from its
battery, amperes) and records the raw convention it detected and the evidence.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from suite.core.schema import SIGN_CONVENTION

# BatteryManager.BATTERY_STATUS_* -> the uevent spelling.
STATUS_NAMES = {1: "Unknown", 2: "Charging", 3: "Discharging", 4: "Not charging", 5: "Full"}
_STATUS_BY_NAME = {v.lower(): v for v in STATUS_NAMES.values()}

#: |raw| at or above this cannot be mA (16 A); below it a value may be mA or uA (ACC's rule).
MA_UA_BOUNDARY = 16000
UNIT_FACTORS = {"uA": 1e-6, "mA": 1e-3}

DISCHARGE_NEGATIVE = "negative while discharging"  # kernel ABI, BatteryManager
DISCHARGE_POSITIVE = "positive while discharging"  # e.g. Xiaomi Mi 8 (negative while charging)

REASON_CHARGING = "charging: the fuel gauge measures net current (charger input minus device draw), not device power"
REASON_FULL = "full on external power: the device runs from the charger and the fuel gauge does not see its draw"
REASON_NOT_CHARGING = ("not charging while on external power (battery idle?): the battery current does not "
                       "measure device power")
REASON_PLUGGED = "on external power ({}): the fuel gauge measures net current, not device power"


def normalize_status(value: str | int | None) -> str | None:
    """`2` / `Charging` / `charging` -> `Charging`; unknown spellings are kept as given."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return STATUS_NAMES.get(int(text), f"status {text}")
    return _STATUS_BY_NAME.get(text.lower(), text)


# --- dumpsys battery --------------------------------------------------------------------

_KV = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 _]*?):\s?(.*)$")
_BROADCAST = re.compile(r"Sending ACTION_BATTERY_CHANGED: (.*)$")


@dataclass(frozen=True)
class DumpsysBattery:
    #: every `key: value` line of the service state block, first occurrence (case kept)
    fields: dict[str, str]
    level_pct: float | None
    status: str | None
    plugged: tuple[str, ...] | None  # ("ac", "usb", "wireless", "dock") that are true; None unknown
    temp_c: float | None
    voltage_v: float | None
    #: Samsung's `current now`, raw (mA, + while charging on the A15 capture)
    current_now_raw: int | None
    charge_counter_uah: int | None
    #: Samsung's ACTION_BATTERY_CHANGED log: dicts of its key:value pairs (ints where numeric)
    broadcasts: tuple[dict[str, object], ...] = ()
    problems: dict[str, str] = field(default_factory=dict)


def _num(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


def parse_dumpsys_battery(text: str) -> DumpsysBattery:
    fields: dict[str, str] = {}
    problems: dict[str, str] = {}
    broadcasts: list[dict[str, object]] = []
    for n, line in enumerate(text.replace("\r", "").split("\n"), start=1):
        if (b := _BROADCAST.search(line)):
            entry: dict[str, object] = {}
            for pair in b.group(1).split(","):
                k, sep, v = pair.strip().partition(":")
                if sep and k:
                    v = v.strip()
                    entry[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
            broadcasts.append(entry)
            continue
        m = _KV.match(line)
        if m:
            fields.setdefault(m.group(1).strip(), m.group(2).strip())

    level = _num(fields.get("level"))
    scale = _num(fields.get("scale"))
    level_pct: float | None = None
    if level is not None:
        level_pct = level * 100.0 / scale if scale else level
        if not scale:
            problems["scale"] = "no scale line; level taken as percent"
    else:
        problems["level"] = "no level line"

    status = normalize_status(fields.get("status"))
    if status is None:
        problems["status"] = "no status line"

    plugged_keys = {"ac": "AC powered", "usb": "USB powered", "wireless": "Wireless powered", "dock": "Dock powered"}
    seen = {k: fields[v].lower() == "true" for k, v in plugged_keys.items() if v in fields}
    plugged = tuple(k for k, on in seen.items() if on) if seen else None
    if plugged is None:
        problems["plugged"] = "no AC/USB/Wireless powered lines"

    t = _num(fields.get("temperature"))
    temp_c = t / 10.0 if t is not None else None  # tenths of degC
    if temp_c is None:
        problems["temperature"] = "no temperature line"

    v = _num(fields.get("voltage"))
    voltage_v: float | None = None
    if v is not None:
        if v > 100_000:  # some builds print uV
            voltage_v = v / 1e6
            problems["voltage"] = f"voltage {v:g} read as uV (too large for mV)"
        else:
            voltage_v = v / 1000.0
    else:
        problems["voltage"] = "no voltage line"

    cur = fields.get("current now")
    current_now_raw = int(cur) if cur is not None and re.fullmatch(r"-?\d+", cur) else None
    cc = fields.get("Charge counter") or fields.get("charge counter")
    charge_counter = int(cc) if cc is not None and cc.isdigit() else None
    return DumpsysBattery(fields, level_pct, status, plugged, temp_c, voltage_v, current_now_raw,
                          charge_counter, tuple(broadcasts), problems)


# --- power_supply uevent ----------------------------------------------------------------


@dataclass(frozen=True)
class BatteryUevent:
    #: KEY=value with the POWER_SUPPLY_ prefix stripped (the ACC capture has none)
    fields: dict[str, str]
    status: str | None
    capacity_pct: int | None
    current_now_raw: int | None
    #: which key the current came from (CURRENT_NOW, or MediaTek's BATTERYAVERAGECURRENT)
    current_key: str | None
    voltage_v: float | None
    temp_c: float | None
    charge_counter_uah: int | None
    problems: dict[str, str] = field(default_factory=dict)


def parse_battery_uevent(text: str) -> BatteryUevent:
    fields: dict[str, str] = {}
    problems: dict[str, str] = {}
    for n, line in enumerate(text.replace("\r", "").split("\n"), start=1):
        if not line.strip():
            continue
        key, sep, value = line.strip().partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_]+", key):
            problems[f"line {n}"] = "not a KEY=value line; ignored"
            continue
        key = key.upper().removeprefix("POWER_SUPPLY_")
        fields.setdefault(key, value.strip())

    def ival(*keys: str) -> tuple[int | None, str | None]:
        for k in keys:
            if k in fields:
                if re.fullmatch(r"-?\d+", fields[k]):
                    return int(fields[k]), k
                problems[k] = f"{fields[k]!r} not an integer"
        return None, None

    status = normalize_status(fields.get("STATUS"))
    if status is None:
        problems["STATUS"] = "no STATUS line"
    capacity, _ = ival("CAPACITY")
    current, current_key = ival("CURRENT_NOW", "BATTERYAVERAGECURRENT", "CURRENT_AVG")
    if current is None:
        problems.setdefault("CURRENT_NOW", "no CURRENT_NOW line")
    elif current_key != "CURRENT_NOW":
        problems["CURRENT_NOW"] = f"no CURRENT_NOW; used {current_key}"
    volt, vkey = ival("VOLTAGE_NOW", "BATT_VOL")
    voltage_v: float | None = None
    if volt is not None:
        # uV per the kernel ABI; MediaTek's BATT_VOL (and some drivers) print mV
        voltage_v = volt / 1e6 if abs(volt) > 100_000 else volt / 1e3
        if abs(volt) <= 100_000:
            problems["VOLTAGE_NOW"] = f"{vkey}={volt} read as mV (too small for uV)"
    else:
        problems.setdefault("VOLTAGE_NOW", "no VOLTAGE_NOW line")
    temp, _ = ival("TEMP", "BATT_TEMP")
    charge, _ = ival("CHARGE_COUNTER")
    return BatteryUevent(fields, status, capacity, current, current_key, voltage_v,
                         temp / 10.0 if temp is not None else None, charge, problems)


# --- current normalisation --------------------------------------------------------------


@dataclass(frozen=True)
class CurrentConvention:
    """How one device reports current: its unit and which sign means discharging."""

    unit: str | None  # "uA" | "mA" | None (undetermined)
    discharge_sign: str | None  # DISCHARGE_NEGATIVE | DISCHARGE_POSITIVE | None
    source: str  # e.g. "uevent CURRENT_NOW", "dumpsys battery 'current now'"
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["evidence"] = list(self.evidence)
        return d


@dataclass(frozen=True)
class BatteryPower:
    """A normalised reading: `current_a` positive while discharging; `power_w` only for a
    valid discharge measurement, else None with `power_reason`."""

    raw_current: int | None
    current_a: float | None
    voltage_v: float | None
    power_w: float | None
    convention: CurrentConvention
    current_reason: str | None = None
    power_reason: str | None = None


def detect_unit(raw_values: list[int], source: str, status: str | None) -> tuple[str | None, str]:
    """Unit from magnitude (several samples of one device make it surer), else the source's
    documented unit. Returns (unit or None, why)."""
    nonzero = [abs(v) for v in raw_values if v]
    if not nonzero:
        return None, "current is 0: unit cannot be told"
    peak = max(nonzero)
    if peak >= MA_UA_BOUNDARY:
        return "uA", f"|{peak}| >= {MA_UA_BOUNDARY} cannot be mA (16 A): uA"
    if source.startswith("dumpsys"):
        return "mA", f"dumpsys battery 'current now' prints mA (Samsung); |{peak}| < {MA_UA_BOUNDARY} agrees"
    if status == "Discharging":
        # An awake phone draws tens of mA at least: a discharge below 16 mA in uA is implausible.
        return "mA", f"|{peak}| < {MA_UA_BOUNDARY} while discharging: too small for uA, read as mA"
    return None, (f"|{peak}| < {MA_UA_BOUNDARY} while {status or 'status unknown'}: uA (kernel ABI) or mA "
                  "cannot be told from one value")


def detect_sign(raw: int | None, status: str | None, source: str) -> tuple[str | None, str | None]:
    """Which sign means discharging, from one reading and the status: (sign, evidence)."""
    if raw is None or raw == 0:
        return None, None
    if status == "Discharging":
        sign = DISCHARGE_NEGATIVE if raw < 0 else DISCHARGE_POSITIVE
        return sign, f"status Discharging with {source}={raw}"
    if status == "Charging":
        # Assumes the net current flows into the battery while the charger keeps up (ACC forces
        # the sign from STATUS the same way).
        sign = DISCHARGE_NEGATIVE if raw > 0 else DISCHARGE_POSITIVE
        return sign, f"status Charging with {source}={raw} ({'positive' if raw > 0 else 'negative'} while charging)"
    return None, None


def samsung_log_sign(broadcasts: tuple[dict[str, object], ...]) -> tuple[str | None, tuple[str, ...]]:
    """Sign evidence from Samsung's ACTION_BATTERY_CHANGED log (`current_avg` with `status`):
    the same device and driver as `current now`. Returns (sign if consistent, evidence lines)."""
    votes: list[tuple[str, str]] = []
    for b in broadcasts:
        cur, st = b.get("current_avg"), b.get("status")
        if not isinstance(cur, int) or not isinstance(st, int) or cur == 0:
            continue
        sign, why = detect_sign(cur, STATUS_NAMES.get(st), "current_avg")
        if sign and why:
            votes.append((sign, why))
    signs = {s for s, _ in votes}
    if len(signs) == 1:
        return signs.pop(), tuple(w for _, w in votes)
    return None, tuple(w for _, w in votes)


def battery_power(
    raw_current: int | None,
    voltage_v: float | None,
    status: str | None,
    *,
    source: str,
    plugged: tuple[str, ...] | None = None,
    known: CurrentConvention | None = None,
    extra_sign_evidence: tuple[str | None, tuple[str, ...]] = (None, ()),
    history: list[int] | None = None,
) -> BatteryPower:
    """Normalise one current reading and decide whether V x I is the device's power.

    `known` is a convention detected earlier on the same device (e.g. while discharging);
    `history` more raw samples of the same source (for the unit); `plugged` the external
    power sources from dumpsys battery (empty tuple: none; None: not known).
    """
    status = normalize_status(status)
    evidence: list[str] = []
    unit = known.unit if known else None
    sign = known.discharge_sign if known else None
    if known:
        evidence.extend(known.evidence)
    current_reason: str | None = None
    if raw_current is None:
        current_reason = f"no current reading ({source})"
    if unit is None and raw_current is not None:
        unit, why = detect_unit([raw_current, *(history or [])], source, status)
        evidence.append(why)
    if sign is None and raw_current is not None:
        sign, why = detect_sign(raw_current, status, source)
        if why:
            evidence.append(why)
    log_sign, log_evidence = extra_sign_evidence
    if log_sign:
        if sign is None:
            sign = log_sign
        elif sign != log_sign:
            evidence.append(f"CONFLICT: {source} says {sign}, the broadcast log says {log_sign}")
            sign = None
        evidence.extend(log_evidence)
    convention = CurrentConvention(unit, sign, source, tuple(evidence))

    current_a: float | None = None
    if raw_current is not None:
        if raw_current == 0:
            current_a = 0.0
        elif unit is None:
            current_reason = "unit not determined: " + evidence[0] if evidence else "unit not determined"
        elif sign is None:
            current_reason = (f"sign not determined: status {status or 'unknown'} gives no evidence "
                              "which sign means discharging")
        else:
            factor = UNIT_FACTORS[unit] * (1 if sign == DISCHARGE_POSITIVE else -1)
            current_a = raw_current * factor

    power_w: float | None = None
    power_reason: str | None = None
    if status == "Charging":
        power_reason = REASON_CHARGING
    elif status == "Full":
        power_reason = REASON_FULL
    elif status == "Not charging":
        power_reason = REASON_NOT_CHARGING
    elif status != "Discharging":
        power_reason = f"battery status {status or 'unknown'}: cannot tell a discharge from a net charge"
    elif plugged:
        power_reason = REASON_PLUGGED.format(", ".join(plugged))
    elif current_a is None:
        power_reason = current_reason or "no current"
    elif voltage_v is None:
        power_reason = "no voltage reading"
    elif current_a <= 0:
        power_reason = (f"status Discharging but normalised current {current_a:g} A is not positive: "
                        "sign convention inconsistent")
    else:
        power_w = voltage_v * current_a
    return BatteryPower(raw_current, current_a, voltage_v, power_w, convention, current_reason, power_reason)


__all__ = [
    "SIGN_CONVENTION", "BatteryPower", "BatteryUevent", "CurrentConvention", "DumpsysBattery",
    "battery_power", "detect_sign", "detect_unit", "normalize_status", "parse_battery_uevent",
    "parse_dumpsys_battery", "samsung_log_sign",
]
