"""A phone's identity and state from the raw texts edgebench reads (issue 4).

`edgebench devices snapshot SERIAL -o DIR` saves those texts as files; `parse_snapshot(DIR)`
parses them offline, and the live path passes the same texts to `snapshot_from_texts`, so a
snapshot and a live phone give the same JSON. Any file may be missing: its fields are None
and `unavailable` says why. Parse problems are collected per file in `problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from suite.catalog.socs import TIER_UNKNOWN, Soc, load_socs, match_soc
from suite.core.schema import SIGN_CONVENTION, THERMAL_STATUS
from suite.device.android.battery import (
    BatteryPower,
    battery_power,
    parse_battery_uevent,
    parse_dumpsys_battery,
    samsung_log_sign,
)
from suite.device.android.cpu import parse_android_cpuinfo, parse_cpufreq
from suite.device.android.memory import parse_meminfo
from suite.device.android.props import parse_getprop
from suite.device.android.thermal import parse_thermal_zones, parse_thermalservice

SNAPSHOT_VERSION = 1

GETPROP = "getprop.txt"
PROC_CPUINFO = "proc_cpuinfo.txt"
PROC_MEMINFO = "proc_meminfo.txt"
DUMPSYS_BATTERY = "dumpsys_battery.txt"
DUMPSYS_THERMALSERVICE = "dumpsys_thermalservice.txt"
THERMAL_ZONES = "thermal_zones.txt"
BATTERY_UEVENT = "power_supply_battery_uevent.txt"
CPUFREQ = "cpufreq.txt"

#: file name -> the device command whose output it holds (what `devices snapshot` runs).
SNAPSHOT_FILES = {
    GETPROP: "getprop",
    PROC_CPUINFO: "cat /proc/cpuinfo",
    PROC_MEMINFO: "cat /proc/meminfo",
    DUMPSYS_BATTERY: "dumpsys battery",
    DUMPSYS_THERMALSERVICE: "dumpsys thermalservice",
    THERMAL_ZONES: "for z in /sys/class/thermal/thermal_zone*; do echo \"${z##*/} $(cat $z/type 2>/dev/null || echo -) $(cat $z/temp 2>/dev/null || echo -)\"; done",
    BATTERY_UEVENT: "cat /sys/class/power_supply/battery/uevent",
    CPUFREQ: "grep . /sys/devices/system/cpu/cpufreq/policy*/*",
}
#: files larger than this are not read (a snapshot is small text; protects against a wrong folder)
MAX_FILE_BYTES = 8 * 1024 * 1024


def parse_snapshot(directory: Path | str, socs: tuple[Soc, ...] | None = None) -> dict[str, Any]:
    """Read the snapshot files present in `directory` and parse them (see module doc)."""
    directory = Path(directory)
    texts: dict[str, str] = {}
    read_errors: dict[str, str] = {}
    for name in SNAPSHOT_FILES:
        path = directory / name
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                read_errors[name] = f"{path} is larger than {MAX_FILE_BYTES} bytes; not read"
                continue
            texts[name] = path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            continue
        except OSError as exc:
            read_errors[name] = f"cannot read {path}: {exc.strerror or exc}"
    snap = snapshot_from_texts(texts, socs=socs)
    for name, why in read_errors.items():
        snap["problems"].setdefault(name, {})["file"] = why
    return snap


def _missing(name: str) -> str:
    return f"{name} missing from the snapshot (`{SNAPSHOT_FILES[name]}` gave nothing)"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def snapshot_from_texts(texts: Mapping[str, str], socs: tuple[Soc, ...] | None = None) -> dict[str, Any]:
    """Parse raw texts keyed by snapshot file name (missing or empty texts are unavailable)."""
    texts = {k: v for k, v in texts.items() if v is not None and v.strip()}
    unavailable: dict[str, str] = {}
    problems: dict[str, dict[str, str]] = {}

    def note(file: str, found: Mapping[str, str]) -> None:
        if found:
            problems.setdefault(file, {}).update(found)

    # --- identity: getprop + cpuinfo -------------------------------------------------------
    props: dict[str, str] = {}
    if GETPROP in texts:
        gp = parse_getprop(texts[GETPROP])
        props = gp.props
        note(GETPROP, gp.problems)
    cpuinfo = parse_android_cpuinfo(texts[PROC_CPUINFO]) if PROC_CPUINFO in texts else None
    if cpuinfo:
        note(PROC_CPUINFO, cpuinfo.problems)

    def prop(key: str, field: str) -> str | None:
        value = props.get(key) or None
        if value is None:
            unavailable[field] = _missing(GETPROP) if GETPROP not in texts else f"{key} not set"
        return value

    manufacturer = prop("ro.product.manufacturer", "manufacturer")
    model = prop("ro.product.model", "model")
    android_release = prop("ro.build.version.release", "android_release")
    sdk_text = prop("ro.build.version.sdk", "sdk")
    sdk = _int(sdk_text)
    if sdk_text is not None and sdk is None:
        unavailable["sdk"] = f"ro.build.version.sdk {sdk_text!r} is not a number"
    abi = prop("ro.product.cpu.abi", "abi")
    fingerprint = prop("ro.build.fingerprint", "fingerprint")

    top_khz = None
    if CPUFREQ in texts:  # the fastest core's hardware max: a tie-breaker between parts sharing an id
        tops = [p.cpuinfo_max_khz or p.max_khz for p in parse_cpufreq(texts[CPUFREQ]).policies]
        top_khz = max((t for t in tops if t), default=None)
    match = match_soc(props, cpuinfo.hardware if cpuinfo else None,
                      socs if socs is not None else load_socs(),
                      cpu_cores=[p.core_name for p in cpuinfo.processors] if cpuinfo else None, cpu_max_khz=top_khz)
    for key, value in (("soc_vendor", match.soc_vendor), ("soc_model", match.soc_model),
                       ("soc_name", match.soc_name)):
        if value is None:
            unavailable[key] = match.hint or "SoC not identified"
    if match.tier == TIER_UNKNOWN:
        unavailable["tier"] = match.hint or "SoC not identified"

    # --- memory ------------------------------------------------------------------------------
    ram_bytes = mem_available = None
    if PROC_MEMINFO in texts:
        mi = parse_meminfo(texts[PROC_MEMINFO])
        note(PROC_MEMINFO, mi.problems)
        ram_bytes, mem_available = mi.total_bytes, mi.available_bytes
        if ram_bytes is None:
            unavailable["ram_bytes"] = "no MemTotal in /proc/meminfo"
    else:
        unavailable["ram_bytes"] = _missing(PROC_MEMINFO)

    # --- CPU clusters: cpufreq policies, else core types from cpuinfo ----------------------
    clusters: list[dict[str, Any]] = []
    if CPUFREQ in texts:
        cf = parse_cpufreq(texts[CPUFREQ])
        note(CPUFREQ, cf.problems)
        if cf.unreadable:
            note(CPUFREQ, {path: f"unreadable: {why}" for path, why in cf.unreadable.items()})
        core_of = {p.index: p.core_name for p in cpuinfo.processors} if cpuinfo else {}
        for p in cf.policies:
            cpus = list(p.related_cpus or p.affected_cpus)
            cores = sorted({c for c in (core_of.get(i) for i in cpus) if c})
            clusters.append({
                "policy": p.name, "cpus": cpus, "core": " / ".join(cores) or None,
                "max_khz": p.cpuinfo_max_khz, "scaling_max_khz": p.max_khz, "cur_khz": p.cur_khz,
                "governor": p.governor,
            })
        if not clusters:
            unavailable["cpu_clusters"] = "cpufreq.txt holds no readable policy files"
    elif cpuinfo and cpuinfo.processors:
        for g in cpuinfo.core_groups():
            clusters.append({"policy": None, "cpus": list(g.cpus), "core": g.core, "max_khz": None,
                             "scaling_max_khz": None, "cur_khz": None, "governor": None})
        unavailable["cpu_clusters.max_khz"] = (_missing(CPUFREQ) + "; clusters grouped by core type from "
                                               "/proc/cpuinfo, frequencies unknown")
    else:
        unavailable["cpu_clusters"] = _missing(CPUFREQ) + " and no per-core /proc/cpuinfo blocks"

    battery = _battery(texts, unavailable, note)
    thermal = _thermal(texts, unavailable, note)

    return {
        "snapshot_version": SNAPSHOT_VERSION,
        "manufacturer": manufacturer,
        "model": model,
        "brand": props.get("ro.product.brand") or None,
        "device": props.get("ro.product.device") or None,
        "soc_vendor": match.soc_vendor,
        "soc_model": match.soc_model,
        "soc_name": match.soc_name,
        "tier": match.tier,
        "soc_match": match.to_dict(),
        "memory_type": match.common("memory_type"),
        "peak_dram_bw_gbps": match.soc.peak_dram_bw_gbps if match.soc else None,
        "npu_int8_tops": match.soc.npu_int8_tops if match.soc else None,
        "ram_bytes": ram_bytes,
        "mem_available_bytes": mem_available,
        "android_release": android_release,
        "sdk": sdk,
        "abi": abi,
        "abilist": [a for a in (props.get("ro.product.cpu.abilist") or "").split(",") if a] or None,
        "fingerprint": fingerprint,
        "kernel": props.get("ro.kernel.version") or None,
        "cpu": {
            "logical_cores": cpuinfo.logical_cores if cpuinfo and cpuinfo.processors else None,
            "cores": cpuinfo.describe() if cpuinfo else None,
            "hardware": cpuinfo.hardware if cpuinfo else None,
        },
        "cpu_clusters": clusters,
        "battery": battery,
        "thermal": thermal,
        "unavailable": dict(sorted(unavailable.items())),
        "problems": problems,
    }


def _battery(texts: Mapping[str, str], unavailable: dict[str, str], note: Any) -> dict[str, Any]:
    """Level/temp/status/plugged from dumpsys battery; current and voltage from the uevent
    (sysfs, uA) when present, else Samsung's dumpsys `current now` (mA)."""
    db = parse_dumpsys_battery(texts[DUMPSYS_BATTERY]) if DUMPSYS_BATTERY in texts else None
    ue = parse_battery_uevent(texts[BATTERY_UEVENT]) if BATTERY_UEVENT in texts else None
    if db:
        note(DUMPSYS_BATTERY, db.problems)
    if ue:
        note(BATTERY_UEVENT, ue.problems)
    if db is None and ue is None:
        for key in ("level", "temp_c", "status", "current_a", "voltage_v", "power_w"):
            unavailable[f"battery.{key}"] = f"{_missing(DUMPSYS_BATTERY)}; {_missing(BATTERY_UEVENT)}"

    level = db.level_pct if db and db.level_pct is not None else (ue.capacity_pct if ue else None)
    level = float(level) if level is not None else None
    temp_c = db.temp_c if db and db.temp_c is not None else (ue.temp_c if ue else None)
    status = (db.status if db else None) or (ue.status if ue else None)
    plugged = db.plugged if db else None
    voltage = ue.voltage_v if ue and ue.voltage_v is not None else (db.voltage_v if db else None)

    reading: BatteryPower | None = None
    if ue and ue.current_now_raw is not None:
        reading = battery_power(ue.current_now_raw, voltage, ue.status or status,
                                source=f"uevent {ue.current_key}", plugged=plugged)
    elif db and db.current_now_raw is not None:
        reading = battery_power(db.current_now_raw, voltage, status, source="dumpsys battery 'current now'",
                                plugged=plugged, extra_sign_evidence=samsung_log_sign(db.broadcasts))
    if db or ue:
        for key, value in (("level", level), ("temp_c", temp_c), ("status", status), ("voltage_v", voltage)):
            if value is None:
                unavailable[f"battery.{key}"] = "not in dumpsys battery nor the uevent"
        if reading is None:
            why = ("no current: " + (_missing(BATTERY_UEVENT) if ue is None else "no CURRENT_NOW in the uevent")
                   + "; dumpsys battery has no 'current now' line (Samsung only)")
            unavailable["battery.current_a"] = why
            unavailable["battery.power_w"] = why
        else:
            if reading.current_a is None:
                unavailable["battery.current_a"] = reading.current_reason or "current not normalised"
            if reading.power_w is None:
                unavailable["battery.power_w"] = reading.power_reason or "no power"
    return {
        "level": level,
        "temp_c": temp_c,
        "status": status,
        "plugged": list(plugged) if plugged is not None else None,
        "current_a": reading.current_a if reading else None,
        "voltage_v": voltage,
        "power_w": reading.power_w if reading else None,
        "power_unavailable": reading.power_reason if reading else None,
        "current_raw": reading.raw_current if reading else None,
        "current_convention": reading.convention.to_dict() if reading else None,
        "sign_convention": SIGN_CONVENTION,
        "charge_counter_uah": (ue.charge_counter_uah if ue and ue.charge_counter_uah is not None
                               else (db.charge_counter_uah if db else None)),
    }


def _thermal(texts: Mapping[str, str], unavailable: dict[str, str], note: Any) -> dict[str, Any]:
    sensors: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    cooling: list[dict[str, Any]] = []
    status = status_reported = overridden = None
    if DUMPSYS_THERMALSERVICE in texts:
        ts = parse_thermalservice(texts[DUMPSYS_THERMALSERVICE])
        note(DUMPSYS_THERMALSERVICE, ts.problems)
        status, status_reported, overridden = ts.status, ts.status_reported, ts.status_overridden
        for t in ts.temperatures:
            if t.temp_c is not None:
                sensors.append({"name": t.name, "type": t.type, "temp_c": t.temp_c, "status": t.status,
                                "source": "hal"})
            else:
                other.append({"name": t.name, "type": t.type, "value": t.value, "unit": t.unit,
                              "reason": t.not_temperature, "source": "hal"})
        cooling = [{"name": c.name, "type": c.type, "state": c.value} for c in ts.cooling_devices]
        if status is None:
            unavailable["thermal.status"] = ts.problems.get("status", "no thermal status")
        if not ts.temperatures:
            unavailable["thermal.sensors.hal"] = ts.problems.get("temperatures", "no HAL temperatures")
    else:
        unavailable["thermal.status"] = _missing(DUMPSYS_THERMALSERVICE)
    if THERMAL_ZONES in texts:
        tz = parse_thermal_zones(texts[THERMAL_ZONES])
        note(THERMAL_ZONES, tz.problems)
        for z in tz.zones:
            if z.temp_c is not None:
                sensors.append({"name": z.type, "type": "thermal_zone", "temp_c": z.temp_c, "status": None,
                                "source": "tz", "zone": z.zone})
            else:
                other.append({"name": z.type, "type": "thermal_zone", "value": z.raw, "unit": None,
                              "reason": z.reason, "source": "tz", "zone": z.zone})
        if not tz.temperatures():
            unavailable["thermal.sensors.tz"] = "no readable temperature among the thermal zones"
    else:
        unavailable["thermal.sensors.tz"] = _missing(THERMAL_ZONES)
    return {
        "status": status,
        "status_name": THERMAL_STATUS.get(status) if status is not None else None,
        "status_reported": status_reported,
        "status_overridden": overridden,
        "sensors": sensors,
        "not_temperatures": other,
        "cooling_devices": cooling,
    }
