"""Thermal texts: `dumpsys thermalservice` and the thermal-zone listing.

thermalservice (FACTS.md 1.1): only the `Current temperatures from HAL:` block is live (the
`Cached temperatures:` block may be minutes old). Values are degC except BCL types (mV, mA,
%); Samsung's Sdhms HAL shifts the AOSP type numbers by one and uses -99.9 as "no sensor";
`IsStatusOverride: true` means someone forced the printed status (`cmd thermalservice
override-status`), so the status is then derived from the sensors and flagged.

Thermal zones: one `name type temp` line per zone (`-` for an unreadable temp), millidegrees.
Battery-limit zones (`soc`, `*-ibat-*`, `*-vbat-*`, `*bcl*`, `*-step`) are not temperatures.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from suite.core.schema import THERMAL_STATUS

# android.os.Temperature.TYPE_*
TEMPERATURE_TYPES = {
    -1: "UNKNOWN", 0: "CPU", 1: "GPU", 2: "BATTERY", 3: "SKIN", 4: "USB_PORT", 5: "POWER_AMPLIFIER",
    6: "BCL_VOLTAGE", 7: "BCL_CURRENT", 8: "BCL_PERCENTAGE", 9: "NPU", 10: "TPU", 11: "DISPLAY",
    12: "MODEM", 13: "SOC", 14: "WIFI", 15: "CAMERA", 16: "FLASHLIGHT", 17: "SPEAKER", 18: "AMBIENT",
    19: "POGO",
}
_TYPE_BY_NAME = {v: k for k, v in TEMPERATURE_TYPES.items()}
_TYPE_BY_NAME.update({"USB": 4, "PA": 5})
#: BCL types carry mV / mA / % (HAL doc), not degrees.
BCL_UNITS = {"BCL_VOLTAGE": "mV", "BCL_CURRENT": "mA", "BCL_PERCENTAGE": "%"}
_STATUS_BY_NAME = {v: k for k, v in THERMAL_STATUS.items()}

#: A degC reading outside this range is not a temperature (sentinels, mis-typed sensors).
PLAUSIBLE_C = (-30.0, 150.0)
#: Samsung's Sdhms HAL "no sensor" value, and similar vendor sentinels.
SENTINEL_MAX_C = -99.0
#: Sensor names that carry battery-limit values whatever their type says.
_BCL_NAME = re.compile(r"^(socd?|vbat|ibat|vph)$|(^|[-_])(vbat|ibat|vph)([-_]|\d|$)|bcl|-lvl\d*$", re.IGNORECASE)
#: Types that are always thermistors: a battery-limit-looking name does not override them.
_THERMAL_TYPES = frozenset({"CPU", "GPU", "SKIN", "USB_PORT", "POWER_AMPLIFIER", "NPU", "TPU", "DISPLAY",
                            "MODEM", "SOC"})
_BCL_NAME_UNIT = (("vbat", "mV"), ("vph", "mV"), ("ibat", "mA"), ("soc", "%"))


@dataclass(frozen=True)
class HalTemperature:
    name: str
    raw_type: int | None
    #: AOSP type name after vendor corrections (Sdhms shift), e.g. "SKIN"
    type: str
    value: float | None
    status: int | None
    #: None when this is a temperature; otherwise why not (BCL unit, sentinel, implausible)
    not_temperature: str | None = None
    unit: str = "degC"

    @property
    def temp_c(self) -> float | None:
        return self.value if self.not_temperature is None else None


@dataclass(frozen=True)
class CoolingDevice:
    name: str
    type: int | None
    #: cooling state index (0 = not throttling)
    value: int | None


@dataclass(frozen=True)
class Threshold:
    name: str
    type: str
    #: hot thresholds by severity NONE..SHUTDOWN (None = NaN, not configured)
    hot: tuple[float | None, ...]


@dataclass(frozen=True)
class ThermalService:
    #: the status to use: printed `Thermal Status`, or derived from sensors when overridden
    status: int | None
    status_reported: int | None
    status_overridden: bool | None
    hal_ready: bool | None
    hal: str | None  # e.g. "ThermalHAL AIDL 3", "Sdhms"
    temperatures: tuple[HalTemperature, ...]  # Current block only
    cached: tuple[HalTemperature, ...]
    cooling_devices: tuple[CoolingDevice, ...]
    thresholds: tuple[Threshold, ...]
    headroom_thresholds: tuple[float | None, ...]
    problems: dict[str, str] = field(default_factory=dict)

    def sensors(self) -> list[HalTemperature]:
        """Current-block temperatures only (BCL, sentinel and implausible values left out)."""
        return [t for t in self.temperatures if t.not_temperature is None]


def _float(text: str) -> float | None:
    try:
        v = float(text.strip())
    except ValueError:
        return None
    return None if math.isnan(v) else v


def _fields(body: str) -> dict[str, str]:
    """`mValue=1.0, mType=2, mName=a name, mStatus=0` or HIDL `.type = SKIN, .name = skin,
    .value = 30.0` -> dict. Keys are found first so values may hold spaces and commas."""
    keys = list(re.finditer(r"(?:^|,\s*)(m[A-Z]\w*|\.\w+)\s*=\s*", body))
    out: dict[str, str] = {}
    for i, k in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(body)
        key = k.group(1).lstrip(".")
        key = key[1:] if re.match(r"m[A-Z]", key) else key  # mValue -> value
        out[key.lower()] = body[k.end():end].strip()
    return out


def _array(text: str | None) -> tuple[float | None, ...]:
    if not text:
        return ()
    inner = text.strip().lstrip("[").rstrip("]")
    return tuple(_float(x) for x in inner.split(",") if x.strip())


def _classify(name: str, raw_type: int | None, type_name: str, value: float | None) -> tuple[str | None, str]:
    if value is None:
        return "no value", "degC"
    if type_name in BCL_UNITS:
        return f"{type_name}: value in {BCL_UNITS[type_name]}, not a temperature", BCL_UNITS[type_name]
    if type_name not in _THERMAL_TYPES and _BCL_NAME.search(name):
        unit = next((u for k, u in _BCL_NAME_UNIT if k in name.lower()), "?")
        return f"battery-limit sensor name {name!r}: value in {unit}, not a temperature", unit
    if value <= SENTINEL_MAX_C:
        return f"sentinel {value:g} (no sensor)", "degC"
    if name.upper() == "SUBBAT" and value == 0.0:
        return "0.0 from an absent sub-battery thermistor (Samsung SUBBAT)", "degC"
    if not PLAUSIBLE_C[0] <= value <= PLAUSIBLE_C[1]:
        return f"{value:g} outside {PLAUSIBLE_C[0]:g}..{PLAUSIBLE_C[1]:g} degC", "degC"
    return None, "degC"


def _temperature(body: str, sdhms: bool, problems: dict[str, str], where: str) -> HalTemperature | None:
    f = _fields(body)
    name = f.get("name")
    if not name:
        problems[where] = "temperature without a name; ignored"
        return None
    value = _float(f.get("value", f.get("currentvalue", "")))
    raw = f.get("type", "")
    raw_type: int | None
    if re.fullmatch(r"-?\d+", raw):
        raw_type = int(raw)
        aosp = raw_type - 1 if sdhms and raw_type >= 1 else raw_type
        type_name = TEMPERATURE_TYPES.get(aosp, f"TYPE_{raw_type}")
    else:  # HIDL-style `.type = SKIN`
        type_name = raw.upper() or "UNKNOWN"
        raw_type = _TYPE_BY_NAME.get(type_name)
    st_text = f.get("status", f.get("throttlingstatus", ""))
    status = int(st_text) if re.fullmatch(r"-?\d+", st_text) else _STATUS_BY_NAME.get(st_text.upper())
    why, unit = _classify(name, raw_type, type_name, value)
    if value is None:
        problems[where] = f"{name}: value {f.get('value')!r} not a number"
    return HalTemperature(name, raw_type, type_name, value, status, why, unit)


def parse_thermalservice(text: str) -> ThermalService:
    problems: dict[str, str] = {}
    lines = text.replace("\r", "").split("\n")
    override: bool | None = None
    status: int | None = None
    hal_ready: bool | None = None
    hal: str | None = None
    sdhms = any(re.match(r"\s*Sdhms connected:\s*yes", ln, re.IGNORECASE) for ln in lines)
    blocks: dict[str, list[tuple[int, str]]] = {}
    block: str | None = None
    for n, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            continue
        if (m := re.match(r"IsStatusOverride:\s*(\w+)", s)):
            override = m.group(1).lower() == "true"
            continue
        if (m := re.match(r"Thermal Status:\s*(-?\d+)", s)):
            status = int(m.group(1))
            continue
        if (m := re.match(r"HAL Ready:\s*(\w+)", s)):
            hal_ready = m.group(1).lower() == "true"
            continue
        if (m := re.match(r"(.+?)\s+connected:\s*(\w+)", s)):
            if m.group(2).lower() == "yes":
                hal = m.group(1).strip()
            continue
        if s.endswith(":") and "{" not in s:
            block = s[:-1]
            blocks.setdefault(block, [])
            continue
        if block is not None:
            blocks[block].append((n, s))

    def temps(name: str) -> tuple[HalTemperature, ...]:
        out = []
        for n, s in blocks.get(name, []):
            m = re.search(r"Temperature\{(.*)\}\s*$", s) or re.fullmatch(r"\{(.*)\}", s)
            if not m:
                problems[f"line {n}"] = f"not a Temperature{{...}} line in '{name}'; ignored"
                continue
            t = _temperature(m.group(1), sdhms, problems, f"line {n}")
            if t:
                out.append(t)
        return tuple(out)

    current = temps("Current temperatures from HAL")
    cached = temps("Cached temperatures")
    if "Current temperatures from HAL" not in blocks:
        problems["temperatures"] = "no 'Current temperatures from HAL' block" + (
            " (HAL Ready: false)" if hal_ready is False else "")
    elif not current:
        problems["temperatures"] = "the 'Current temperatures from HAL' block is empty" + (
            "; the Cached block is stale and not used" if cached else "")

    cooling = []
    for n, s in blocks.get("Current cooling devices from HAL", []):
        m = re.search(r"CoolingDevice\{(.*)\}", s)
        if not m:
            problems[f"line {n}"] = "not a CoolingDevice{...} line; ignored"
            continue
        f = _fields(m.group(1))
        value = f.get("value", "")
        ctype = f.get("type", "")
        cooling.append(CoolingDevice(f.get("name", "?"),
                                     int(ctype) if re.fullmatch(r"-?\d+", ctype) else None,
                                     int(value) if re.fullmatch(r"-?\d+", value) else None))

    thresholds = []
    for n, s in blocks.get("Temperature static thresholds from HAL", []):
        m = re.search(r"\{(.*)\}", s)
        if not m:
            continue
        # arrays hold commas: take them out before splitting fields
        arrays = dict(re.findall(r"(mHotThrottlingThresholds|\.hotThrottlingThresholds)\s*=\s*(\[[^\]]*\])", m.group(1)))
        hot = next(iter(arrays.values()), None)
        body = re.sub(r"\[[^\]]*\]", "[]", m.group(1))
        f = _fields(body)
        raw_type = f.get("type", "")
        tname = (TEMPERATURE_TYPES.get(int(raw_type) - (1 if sdhms and int(raw_type) >= 1 else 0), raw_type)
                 if re.fullmatch(r"-?\d+", raw_type) else raw_type.upper())
        thresholds.append(Threshold(f.get("name", "?"), tname, _array(hot)))

    headroom: tuple[float | None, ...] = ()
    for _, s in blocks.get("Temperature headroom thresholds", [])[:1]:
        headroom = _array(s)

    reported = status
    if status is None:
        problems["status"] = "no 'Thermal Status:' line"
    elif not 0 <= status <= 6:
        problems["status"] = f"Thermal Status {status} outside 0..6 (-1 = HAL error); not used"
        status = None
    if override:
        sensor_status = [t.status for t in current if t.status is not None]
        status = max(sensor_status) if sensor_status else None
        problems["status_override"] = (
            f"IsStatusOverride: true - the printed status ({reported}) was forced with "
            f"`cmd thermalservice override-status`; using the highest sensor status "
            f"({status}) instead; run `cmd thermalservice reset` before measuring")
    elif override is None:
        problems.setdefault("IsStatusOverride", "no IsStatusOverride line: an override cannot be ruled out")
    return ThermalService(status, reported, override, hal_ready, hal, current, cached, tuple(cooling),
                          tuple(thresholds), headroom, problems)


# --- thermal zones ----------------------------------------------------------------------

#: Zone types that hold battery-limit values (mV, mA, %) or mitigation levels, not degrees.
_NON_TEMP_ZONE = re.compile(
    r"(^soc$|^socd$|ibat|vbat|vph|bcl|-lvl\d*$|-step$|^battery_capacity$|^cdev)", re.IGNORECASE)
ABSENT_THERMISTOR_MC = -40000


@dataclass(frozen=True)
class ThermalZone:
    zone: str  # thermal_zone12
    type: str  # mtktscpu, cpu-0-0-usr, ...
    raw: int | None
    temp_c: float | None
    #: None for a temperature; else why it is not one or could not be read
    reason: str | None = None


@dataclass(frozen=True)
class ThermalZones:
    zones: tuple[ThermalZone, ...]
    problems: dict[str, str] = field(default_factory=dict)

    def temperatures(self) -> list[ThermalZone]:
        return [z for z in self.zones if z.temp_c is not None]


def parse_thermal_zones(text: str) -> ThermalZones:
    """`name type temp` lines (temp in millidegrees, `-` when unreadable)."""
    zones = []
    problems: dict[str, str] = {}
    for n, line in enumerate(text.replace("\r", "").split("\n"), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            problems[f"line {n}"] = "expected 'name type temp'; ignored"
            continue
        zone, ztype, temp = parts[0], " ".join(parts[1:-1]), parts[-1]
        if temp == "-":
            zones.append(ThermalZone(zone, ztype, None, None, "temperature not readable"))
            continue
        if not re.fullmatch(r"-?\d+", temp):
            zones.append(ThermalZone(zone, ztype, None, None, f"temp {temp!r} not an integer"))
            problems[f"line {n}"] = f"temp {temp!r} not an integer"
            continue
        raw = int(temp)
        if _NON_TEMP_ZONE.search(ztype):
            zones.append(ThermalZone(zone, ztype, raw, None, "battery-limit / mitigation zone (mV, mA, % or a level)"))
        elif raw <= ABSENT_THERMISTOR_MC:
            zones.append(ThermalZone(zone, ztype, raw, None, f"{raw} = absent thermistor (-40 degC or below)"))
        elif raw != 0 and abs(raw) < 1000:
            zones.append(ThermalZone(zone, ztype, raw, None, f"{raw} too small for millidegrees: unit unknown"))
        elif not PLAUSIBLE_C[0] <= raw / 1000 <= PLAUSIBLE_C[1]:
            zones.append(ThermalZone(zone, ztype, raw, None, f"{raw / 1000:g} degC is not plausible"))
        else:
            zones.append(ThermalZone(zone, ztype, raw, raw / 1000.0))
    return ThermalZones(tuple(zones), problems)
