"""Android phones: parsers of what edgebench reads from a phone, and offline snapshots.

Every parser is a pure function of text that never raises on odd input: it returns what it
could read plus a `problems` dict (where -> what). See docs/android.md.
"""

from suite.device.android.battery import (
    BatteryPower,
    CurrentConvention,
    battery_power,
    parse_battery_uevent,
    parse_dumpsys_battery,
)
from suite.device.android.cpu import parse_android_cpuinfo, parse_cpufreq
from suite.device.android.gpu import parse_gpu_busy
from suite.device.android.identity import android_device_info
from suite.device.android.memory import parse_dumpsys_meminfo, parse_meminfo, parse_smaps_rollup
from suite.device.android.power_rails import parse_odpm_energy, rail_power_w
from suite.device.android.props import parse_getprop
from suite.device.android.snapshot import SNAPSHOT_FILES, parse_snapshot, snapshot_from_texts
from suite.device.android.thermal import parse_thermal_zones, parse_thermalservice

__all__ = [
    "SNAPSHOT_FILES", "BatteryPower", "CurrentConvention", "android_device_info", "battery_power",
    "parse_android_cpuinfo", "parse_gpu_busy", "parse_battery_uevent", "parse_cpufreq", "parse_dumpsys_battery",
    "parse_dumpsys_meminfo", "parse_getprop", "parse_meminfo", "parse_odpm_energy", "parse_smaps_rollup",
    "parse_snapshot", "parse_thermal_zones", "parse_thermalservice", "rail_power_w", "snapshot_from_texts",
]
