"""Android parsers on every real capture in tests/fixtures/android (copied verbatim from
../shared/fixtures/android, `# source/device/command` header lines included).

Expected values are read by hand from the capture; each assertion names the fixture line it
comes from ("L17" = line 17 of the fixture file, header lines counted).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from suite.core.schema import SIGN_CONVENTION
from suite.device.android.battery import (
    DISCHARGE_NEGATIVE,
    DISCHARGE_POSITIVE,
    REASON_CHARGING,
    CurrentConvention,
    battery_power,
    parse_battery_uevent,
    parse_dumpsys_battery,
    samsung_log_sign,
)
from suite.device.android.cpu import parse_android_cpuinfo, parse_cpufreq
from suite.device.android.gpu import parse_gpu_busy, parse_ls, parse_shell_errors
from suite.device.android.memory import parse_dumpsys_meminfo, parse_meminfo, parse_smaps_rollup
from suite.device.android.power_rails import parse_odpm_energy, rail_power_w
from suite.device.android.props import parse_getprop
from suite.device.android.thermal import parse_thermal_zones, parse_thermalservice

FIXTURES = Path(__file__).parent / "fixtures" / "android"


def capture(name: str) -> str:
    """The capture's output: the file without its leading `# ` header lines (line numbers in
    the assertions below count those header lines, as an editor shows the file)."""
    lines = (FIXTURES / name).read_text().split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith("# "):
        i += 1
    return "\n".join(lines[i:])


def test_every_capture_is_covered_here():
    """A capture added to the folder must get a test (this list names them all)."""
    covered = {
        "pixel6class_odpm_iio_energy_value.txt", "pixel8pro_tensor_g3_proc_cpuinfo.txt",
        "pixel_qcom_4silver4gold_dumpsys_thermalservice.txt", "pixel_qcom_6silver2gold_dumpsys_thermalservice.txt",
        "samsung_a15_mt6789_android16_dumpsys_battery.txt", "samsung_a15_mt6789_android16_dumpsys_meminfo_pkg.txt",
        "samsung_a15_mt6789_android16_dumpsys_thermalservice.txt",
        "samsung_a15_mt6789_android16_getprop_identity_subset.txt",
        "samsung_a15_mt6789_android16_ls_mali0_device.txt", "samsung_a15_mt6789_android16_ls_sys_class_thermal.txt",
        "samsung_a15_mt6789_android16_ls_sys_kernel_gpu.txt", "samsung_a15_mt6789_android16_proc_meminfo.txt",
        "samsung_a15_mt6789_android16_sys_kernel_gpu_gpu_busy.txt",
        "samsung_a15_mt6789_android16_thermal_zone_temp_glob_error.txt", "samsung_a52q_proc_pid_smaps_rollup.txt",
        "samsung_aidl1_dumpsys_thermalservice.txt", "skia_lab_android_dumpsys_battery_partial.txt",
        "unnamed_device_throttling_status2_dumpsys_thermalservice.txt",
        "vivo_iqoo_neo9pro_dimensity9300_proc_cpuinfo.txt", "xiaomi_mi8_sdm845_battery_uevent_charging.txt",
    }
    assert {p.name for p in FIXTURES.glob("*.txt")} == covered


# --- getprop ----------------------------------------------------------------------------


def test_getprop_samsung_a15():
    g = parse_getprop(capture("samsung_a15_mt6789_android16_getprop_identity_subset.txt"))
    assert g.problems == {}
    assert len(g.props) == 39  # L4..L42: 39 lines, one property each
    assert g.props["ro.soc.manufacturer"] == "Mediatek"  # L39
    assert g.props["ro.soc.model"] == "MT6789"  # L40
    assert g.props["ro.board.platform"] == "mt6789"  # L9
    assert g.props["ro.hardware"] == "mt6789"  # L20
    assert g.props["ro.product.model"] == "SM-A155M"  # L35
    assert g.props["ro.product.manufacturer"] == "samsung"  # L34
    assert g.props["ro.build.version.release"] == "16"  # L14
    assert g.props["ro.build.version.sdk"] == "36"  # L16
    assert g.props["ro.product.cpu.abi"] == "arm64-v8a"  # L27
    assert g.props["ro.product.cpu.abilist"] == "arm64-v8a,armeabi-v7a,armeabi"  # L28
    assert g.props["ro.build.fingerprint"] == (
        "samsung/a15ub/a15:16/BP2A.250605.031.A3/A155MUBSADZB5:user/release-keys")  # L12
    assert g.props["persist.sys.usb.config"] == "sec_charging,adb"  # L5


def test_getprop_brackets_crlf_multiline_and_garbage():
    text = ("[ro.product.model]: [Galaxy S24 [5G]]\r\n"
            "[ro.empty]: []\r\n"
            "[persist.multi]: [first line\n"
            "second line\n"
            "last]\n"
            "garbage without brackets\n"
            "[ro.after]: [ok]\n"
            "[ro.cut]: [never term")
    g = parse_getprop(text)
    assert g.props["ro.product.model"] == "Galaxy S24 [5G]"
    assert g.props["ro.empty"] == "" and g.get("ro.empty") is None
    assert g.props["persist.multi"] == "first line\nsecond line\nlast"
    assert g.props["ro.after"] == "ok"
    assert g.props["ro.cut"] == "never term"  # kept as read ...
    assert "not terminated" in g.problems["line 8"]  # ... and reported
    assert "ignored" in g.problems["line 6"]


def test_getprop_hostile_values_stay_inert_strings():
    text = "[ro.product.model]: [<script>alert(1)</script>]\n[ro.product.brand]: [$(reboot);`id` && rm -rf /]\n"
    g = parse_getprop(text)
    assert g.props["ro.product.model"] == "<script>alert(1)</script>"
    assert g.props["ro.product.brand"] == "$(reboot);`id` && rm -rf /"


# --- /proc/cpuinfo ----------------------------------------------------------------------


def test_cpuinfo_pixel8pro_tensor_g3():
    c = parse_android_cpuinfo(capture("pixel8pro_tensor_g3_proc_cpuinfo.txt"))
    assert c.logical_cores == 9  # processor 0..8 (L4 .. L75)
    assert c.hardware is None  # no Hardware line on this GKI kernel
    assert [p.part for p in c.processors] == [0xD46] * 4 + [0xD4D] * 4 + [0xD4E]  # L10, L19, ..., L81 CPU part
    assert all(p.implementer == 0x41 for p in c.processors)  # CPU implementer : 0x41
    assert c.describe() == "4x Cortex-A510 + 4x Cortex-A715 + 1x Cortex-X3"
    assert [(g.core, g.cpus) for g in c.core_groups()] == [
        ("Cortex-A510", (0, 1, 2, 3)), ("Cortex-A715", (4, 5, 6, 7)), ("Cortex-X3", (8,))]
    # L50 (line 47 of the output: problem keys count output lines): processor 5's BogoMIPS
    # and Features pasted onto one line: split, reported, not fatal
    assert "fields on one line" in c.problems["line 47"]
    assert c.processors[5].part == 0xD4D  # L54


def test_cpuinfo_vivo_dimensity9300():
    c = parse_android_cpuinfo(capture("vivo_iqoo_neo9pro_dimensity9300_proc_cpuinfo.txt"))
    assert c.logical_cores == 8
    assert c.hardware is None
    assert [p.part for p in c.processors] == [0xD81] * 4 + [0xD82] * 4  # L10-L37 CPU part 0xd81, L46-L73 0xd82
    assert c.describe() == "4x Cortex-A720 + 4x Cortex-X4"
    assert c.problems == {}


def test_cpuinfo_qualcomm_hardware_line_and_garbage():
    text = ("processor\t: 0\nCPU implementer\t: 0x51\nCPU part\t: 0x805\n\n"
            "processor\t: x\nCPU part : zz\n\nHardware\t: Qualcomm Technologies, Inc SM8350\n\x00\x01garbage\n")
    c = parse_android_cpuinfo(text)
    assert c.hardware == "Qualcomm Technologies, Inc SM8350"
    assert c.processors[0].core_name == "Qualcomm part 0x805"
    assert c.logical_cores == 1
    assert c.problems  # the bad processor index and the garbage line are reported


# --- cpufreq (no phone capture exists: FACTS.md "Gaps"; format from the kernel doc) ------


CPUFREQ_SAMPLE = """\
/sys/devices/system/cpu/cpufreq/policy0/affected_cpus:0 1 2 3
/sys/devices/system/cpu/cpufreq/policy0/cpuinfo_max_freq:2000000
/sys/devices/system/cpu/cpufreq/policy0/cpuinfo_min_freq:500000
/sys/devices/system/cpu/cpufreq/policy0/related_cpus:0 1 2 3
/sys/devices/system/cpu/cpufreq/policy0/scaling_available_governors:schedutil performance
/sys/devices/system/cpu/cpufreq/policy0/scaling_cur_freq:1200000
/sys/devices/system/cpu/cpufreq/policy0/scaling_governor:schedutil
/sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq:2000000
grep: /sys/devices/system/cpu/cpufreq/policy0/cpuinfo_cur_freq: Permission denied
grep: /sys/devices/system/cpu/cpufreq/policy0/stats: Is a directory
/sys/devices/system/cpu/cpufreq/policy4/related_cpus:4-6
/sys/devices/system/cpu/cpufreq/policy4/cpuinfo_max_freq:2850000
/sys/devices/system/cpu/cpufreq/policy4/scaling_max_freq:1800000
/sys/devices/system/cpu/cpufreq/policy4/scaling_cur_freq:garbage
/sys/devices/system/cpu/cpufreq/policy4/scaling_governor:sugov_ext
/sys/devices/system/cpu/cpufreq/policy7/related_cpus:7
/sys/devices/system/cpu/cpufreq/policy7/cpuinfo_max_freq:3250000
/sys/devices/system/cpu/cpufreq/policy7/scaling_governor:walt
random line
"""


def test_cpufreq_policies():
    cf = parse_cpufreq(CPUFREQ_SAMPLE)
    assert [p.name for p in cf.policies] == ["policy0", "policy4", "policy7"]
    p0, p4, p7 = cf.policies
    assert p0.related_cpus == (0, 1, 2, 3) and p0.cur_khz == 1200000 and p0.cpuinfo_max_khz == 2000000
    assert p0.governor == "schedutil" and p0.available_governors == ("schedutil", "performance")
    assert p0.capped is False
    assert p4.related_cpus == (4, 5, 6) and p4.capped is True and p4.cur_khz is None
    assert p4.governor == "sugov_ext"
    assert p7.to_cluster().max_khz == 3250000 and p7.to_cluster().cpus == (7,)
    assert cf.unreadable == {"/sys/devices/system/cpu/cpufreq/policy0/cpuinfo_cur_freq": "Permission denied"}
    assert "policy4/scaling_cur_freq" in cf.problems and "line 19" in cf.problems


# --- /proc/meminfo, smaps_rollup, dumpsys meminfo ---------------------------------------


def test_meminfo_samsung_a15():
    m = parse_meminfo(capture("samsung_a15_mt6789_android16_proc_meminfo.txt"))
    assert m.total_bytes == 3754184 * 1024  # L4 MemTotal: 3754184 kB
    assert m.available_bytes == 728212 * 1024  # L6 MemAvailable: 728212 kB
    assert m.fields["SwapTotal"] == 8388604 * 1024  # L18
    assert m.fields["zram0"] == 510584 * 1024  # L52: MTK vendor line
    assert m.problems == {}


def test_meminfo_truncated():
    m = parse_meminfo("MemTotal:        3754184 kB\nMemFr")
    assert m.total_bytes == 3754184 * 1024 and m.available_bytes is None
    assert "MemAvailable" in m.problems and "line 2" in m.problems


def test_smaps_rollup_samsung_a52():
    s = parse_smaps_rollup(capture("samsung_a52q_proc_pid_smaps_rollup.txt"))
    assert s.pss_bytes == 7071 * 1024  # L6 Pss: 7071 kB
    assert s.rss_bytes == 55656 * 1024  # L5 Rss: 55656 kB
    assert s.swap_pss_bytes == 1194 * 1024  # L19 SwapPss: 1194 kB
    assert s.pss_anon_bytes is None and "Pss_Anon" in s.problems  # older kernel: no split
    assert set(s.problems) == {"Pss_Anon", "Pss_File", "Pss_Shmem"}  # L4 (the [rollup] header) is not a problem


def test_dumpsys_meminfo_samsung_a15():
    a = parse_dumpsys_meminfo(capture("samsung_a15_mt6789_android16_dumpsys_meminfo_pkg.txt"))
    assert (a.pid, a.process) == (18078, "com.evermore.oda.qa")  # L7
    assert a.total_pss_bytes == 926735 * 1024  # L41 TOTAL PSS: 926735
    assert a.total_rss_bytes == 906980 * 1024  # L41 TOTAL RSS: 906980
    assert a.total_swap_pss_bytes == 117522 * 1024  # L41 TOTAL SWAP PSS: 117522
    assert a.summary_pss_bytes["Java Heap"] == 12940 * 1024  # L32 (Pss column; 27356 is Rss)
    assert a.summary_pss_bytes["Graphics"] == 421468 * 1024  # L36
    assert "Unknown" not in a.summary_pss_bytes  # L39: only an Rss value
    assert a.problems == {}


def test_dumpsys_meminfo_falls_back_to_table_total():
    text = capture("samsung_a15_mt6789_android16_dumpsys_meminfo_pkg.txt").split(" App Summary")[0]
    a = parse_dumpsys_meminfo(text)
    assert a.total_pss_bytes == 926735 * 1024  # L27 TOTAL row, first column
    assert "TOTAL table row" in a.problems["total_pss_bytes"] and a.total_rss_bytes is None


# --- dumpsys battery, uevent, current normalisation -------------------------------------


def test_dumpsys_battery_samsung_a15():
    b = parse_dumpsys_battery(capture("samsung_a15_mt6789_android16_dumpsys_battery.txt"))
    assert b.level_pct == 99.0  # L16 level: 99 / L17 scale: 100
    assert b.temp_c == 25.7  # L21 temperature: 257 (tenths of degC)
    assert b.voltage_v == 4.378  # L18 voltage: 4378 (mV)
    assert b.status == "Charging"  # L13 status: 2
    assert b.plugged == ("ac",)  # L5 AC powered: true; L6-8 USB/Wireless/Dock false
    assert b.current_now_raw == 587  # L31 current now: 587 (Samsung, mA)
    assert b.charge_counter_uah == 3988000  # L12
    assert len(b.broadcasts) == 5  # L63-67
    assert b.broadcasts[1]["status"] == 3 and b.broadcasts[1]["current_avg"] == -17  # L64
    assert b.problems == {}


def test_samsung_a15_current_mA_positive_while_charging():
    b = parse_dumpsys_battery(capture("samsung_a15_mt6789_android16_dumpsys_battery.txt"))
    log_sign, log_evidence = samsung_log_sign(b.broadcasts)
    # L64-66 status:3 with current_avg -17/-623/-965, L67 status:2 with +901: negative while discharging
    assert log_sign == DISCHARGE_NEGATIVE and len(log_evidence) == 4
    r = battery_power(b.current_now_raw, b.voltage_v, b.status, source="dumpsys battery 'current now'",
                      plugged=b.plugged, extra_sign_evidence=(log_sign, log_evidence))
    assert r.convention.unit == "mA" and r.convention.discharge_sign == DISCHARGE_NEGATIVE
    assert r.current_a == pytest.approx(-0.587)  # +587 mA into the battery = -0.587 A by our convention
    assert r.power_w is None and r.power_reason == REASON_CHARGING


def test_dumpsys_battery_skia_partial():
    b = parse_dumpsys_battery(capture("skia_lab_android_dumpsys_battery_partial.txt"))
    assert b.level_pct == 9.0  # L14 level: 9
    assert b.status == "Charging"  # L11 status: 2
    assert b.voltage_v == 4.248  # L16 voltage: 4248
    assert b.charge_counter_uah == 2448973  # L10
    assert b.fields["Max charging current"] == "1500000"  # L8 (uA)
    assert b.plugged == ("ac",)  # L5; no Dock line on this build
    assert b.temp_c is None and "temperature" in b.problems  # the capture stops after voltage
    assert b.current_now_raw is None  # not a Samsung: no 'current now'


def test_uevent_xiaomi_mi8_negative_while_charging():
    u = parse_battery_uevent(capture("xiaomi_mi8_sdm845_battery_uevent_charging.txt"))
    assert u.status == "Charging"  # L6 STATUS=Charging
    assert u.capacity_pct == 50  # L10
    assert u.current_now_raw == -326171  # L17 CURRENT_NOW=-326171
    assert u.voltage_v == pytest.approx(3.888173)  # L14 VOLTAGE_NOW=3888173 (uV)
    assert u.temp_c == 29.0  # L20 TEMP=290 (tenths)
    assert u.charge_counter_uah == 1528169  # L33
    assert u.problems == {}
    r = battery_power(u.current_now_raw, u.voltage_v, u.status, source="uevent CURRENT_NOW")
    assert r.convention.unit == "uA"  # |326171| >= 16000
    assert r.convention.discharge_sign == DISCHARGE_POSITIVE  # negative while charging
    assert r.current_a == pytest.approx(-0.326171)  # into the battery: negative by DESIGN's convention
    assert r.power_w is None and r.power_reason.startswith("charging")


def test_sign_convention_is_designs():
    assert SIGN_CONVENTION == "positive while discharging"


@pytest.mark.parametrize(
    ("raw", "status", "source", "unit", "sign", "current_a"),
    [
        (-1_250_000, "Discharging", "uevent CURRENT_NOW", "uA", DISCHARGE_NEGATIVE, 1.25),  # kernel ABI
        (1_250_000, "Discharging", "uevent CURRENT_NOW", "uA", DISCHARGE_POSITIVE, 1.25),  # Mi A1 style
        (-850, "Discharging", "dumpsys battery 'current now'", "mA", DISCHARGE_NEGATIVE, 0.85),  # Samsung
        (-850, "Discharging", "uevent CURRENT_NOW", "mA", DISCHARGE_NEGATIVE, 0.85),  # Huawei: mA in sysfs
    ],
)
def test_discharging_conventions(raw, status, source, unit, sign, current_a):
    r = battery_power(raw, 4.0, status, source=source, plugged=())
    assert (r.convention.unit, r.convention.discharge_sign) == (unit, sign)
    assert r.current_a == pytest.approx(current_a)
    assert r.power_w == pytest.approx(4.0 * current_a)


def test_power_refused_when_not_a_discharge_measurement():
    # Pixel 3a battery idle (FACTS 2.2): 976 uA with charging disabled on USB power
    idle = battery_power(976, 4.2, "Not charging", source="uevent CURRENT_NOW")
    assert idle.power_w is None and "not charging" in idle.power_reason
    assert idle.current_a is None and "unit not determined" in idle.current_reason
    full = battery_power(-120_000, 4.35, "Full", source="uevent CURRENT_NOW")
    assert full.power_w is None and full.power_reason.startswith("full")
    plugged = battery_power(-900_000, 4.0, "Discharging", source="uevent CURRENT_NOW", plugged=("usb",))
    assert plugged.current_a == pytest.approx(0.9) and plugged.power_w is None
    assert "external power (usb)" in plugged.power_reason
    unknown = battery_power(-900_000, 4.0, None, source="uevent CURRENT_NOW")
    assert unknown.power_w is None and unknown.current_a is None


def test_known_convention_normalises_full_and_idle_states():
    known = CurrentConvention("uA", DISCHARGE_POSITIVE, "uevent CURRENT_NOW", ("learnt while charging",))
    r = battery_power(-20_000, 4.35, "Full", source="uevent CURRENT_NOW", known=known)
    assert r.current_a == pytest.approx(-0.02) and r.power_w is None


def test_uevent_prefixed_mediatek_and_garbage():
    text = ("POWER_SUPPLY_NAME=battery\nPOWER_SUPPLY_STATUS=Discharging\nPOWER_SUPPLY_BATTERYAVERAGECURRENT=-412\n"
            "POWER_SUPPLY_BATT_VOL=3950\nPOWER_SUPPLY_BATT_TEMP=315\n\x00garbage line\nPOWER_SUPPLY_CAPACITY=abc\n")
    u = parse_battery_uevent(text)
    assert u.status == "Discharging" and u.current_now_raw == -412 and u.current_key == "BATTERYAVERAGECURRENT"
    assert u.voltage_v == pytest.approx(3.95) and u.temp_c == 31.5
    assert u.capacity_pct is None and "CAPACITY" in u.problems and "line 6" in u.problems


# --- dumpsys thermalservice -------------------------------------------------------------


def test_thermalservice_samsung_a15_aidl3():
    t = parse_thermalservice(capture("samsung_a15_mt6789_android16_dumpsys_thermalservice.txt"))
    assert t.status == 0 and t.status_overridden is False  # L13 Thermal Status: 0, L4 IsStatusOverride: false
    assert t.hal == "ThermalHAL AIDL 3" and t.hal_ready is True  # L23, L21
    # L25-30, the Current block (not the Cached L15-20 values: AP 29.7 at L16, 30.9 at L25)
    assert [(s.name, s.type, s.temp_c, s.status) for s in t.sensors()] == [
        ("AP", "CPU", 30.9, 0), ("BAT", "BATTERY", 24.8, 0), ("PA", "POWER_AMPLIFIER", 29.1, 0),
        ("SKIN", "SKIN", 28.3, 0), ("USB", "USB_PORT", 26.3, 0)]
    subbat = next(x for x in t.temperatures if x.name == "SUBBAT")  # L29 mValue=0.0
    assert subbat.temp_c is None and "SUBBAT" in subbat.not_temperature
    assert t.cooling_devices == ()  # L31: empty block
    skin = next(x for x in t.thresholds if x.name == "SKIN")  # L34
    assert skin.hot == (36.0, 38.0, 40.0, 42.0, 45.0, 60.0, 90.0)
    assert t.headroom_thresholds == (None, 0.8666667, 0.93333334, 1.0, 1.1, 1.6, 2.6)  # L36 (NaN -> None)
    assert t.problems == {}


def test_thermalservice_samsung_aidl1():
    t = parse_thermalservice(capture("samsung_aidl1_dumpsys_thermalservice.txt"))
    assert t.hal == "ThermalHAL AIDL 1"  # L23
    assert {s.name: s.temp_c for s in t.sensors()} == {
        "AP": 34.6, "BAT": 25.2, "PA": 30.0, "SKIN": 28.2, "USB": 25.8}  # L25-30 (Cached AP was 55.0 at L16)
    skin = next(x for x in t.thresholds if x.name == "SKIN")  # L34
    assert skin.hot == (36.0, 38.0, 40.0, 42.0, 45.0, None, None)


def test_thermalservice_pixel_4silver4gold_no_tabs():
    t = parse_thermalservice(capture("pixel_qcom_4silver4gold_dumpsys_thermalservice.txt"))
    assert t.status == 0  # L13
    assert len(t.temperatures) == 13 and len(t.cached) == 13  # L32-44 current, L15-27 cached
    temps = {s.name: s for s in t.sensors()}
    assert temps["cpu0-gold-usr"].temp_c == 31.7  # L32 (cached said 54.600002 at L24)
    assert temps["maxfg"].type == "BATTERY" and temps["maxfg"].temp_c == pytest.approx(25.900002)  # L43
    assert temps["usbc-therm-monitor"].type == "USB_PORT"  # L44 mType=4
    assert [(c.name, c.type, c.value) for c in t.cooling_devices] == [
        ("battery", 1, 0), ("mnh", 5, 0), ("thermal-cpufreq-0", 2, 0), ("thermal-cpufreq-4", 2, 0),
        ("thermal-devfreq-0", 3, 0)]  # L46-50


def test_thermalservice_pixel_6silver2gold_cached_is_not_current():
    t = parse_thermalservice(capture("pixel_qcom_6silver2gold_dumpsys_thermalservice.txt"))
    temps = {s.name: s.temp_c for s in t.sensors()}
    assert temps["cpu0-silver-usr"] == pytest.approx(33.800003)  # L34 current (L16 cached: 46.100002)
    assert temps["battery"] == pytest.approx(28.000002)  # L32
    assert max(temps.values()) == pytest.approx(44.1)  # L36 cpu1-silver-usr
    assert len(t.cooling_devices) == 4  # L46-49


def test_thermalservice_throttling_status2():
    t = parse_thermalservice(capture("unnamed_device_throttling_status2_dumpsys_thermalservice.txt"))
    assert t.status == 2 and t.status_reported == 2  # L13 Thermal Status: 2 (MODERATE)
    skin = next(s for s in t.sensors() if s.name == "skin")
    assert skin.temp_c == pytest.approx(44.637) and skin.status == 2  # L31
    assert {c.name: c.value for c in t.cooling_devices}["thermal-cpufreq-6"] == 11  # L42
    assert sum(1 for c in t.cooling_devices if c.value) == 8  # L42-50: all but thermal-devfreq-0
    # HIDL-style thresholds: L52 battery, L53 skin, L55 CPU7
    thr = {x.name: x for x in t.thresholds}
    assert thr["skin"].type == "SKIN" and thr["skin"].hot == (25.0, 35.0, 45.0, 52.0, 55.0, 58.0, 60.0)
    assert thr["CPU7"].hot[-1] == 125.0


def test_thermalservice_override_respected_and_flagged():
    text = capture("unnamed_device_throttling_status2_dumpsys_thermalservice.txt")
    text = text.replace("IsStatusOverride: false", "IsStatusOverride: true").replace(
        "Thermal Status: 2", "Thermal Status: 0")  # a game booster hid the throttling
    t = parse_thermalservice(text)
    assert t.status_reported == 0 and t.status_overridden is True
    assert t.status == 2  # from the Current block's highest mStatus (skin)
    assert "override-status" in t.problems["status_override"]


def test_thermalservice_vendor_quirks_bcl_sdhms_spaces_hidl():
    text = "\n".join([
        "IsStatusOverride: false", "Thermal Status: 1", "HAL Ready: true", "HAL connection:",
        "\tSdhms connected: yes", "Current temperatures from HAL:",
        "\tTemperature{mValue=41.0, mType=1, mName=AP, mStatus=1}",  # Sdhms: type 1 = CPU
        "\tTemperature{mValue=30.5, mType=3, mName=BAT, mStatus=0}",  # Sdhms: type 3 = BATTERY
        "\tTemperature{mValue=-99.9, mType=6, mName=PA, mStatus=0}",  # sentinel
        "\tTemperature{mValue=36.2, mType=4, mName=test temperature sensor, mStatus=0}",  # spaces
        "\tTemperature{mValue=4.384, mType=7, mName=vbat, mStatus=0}",  # Sdhms 7 = BCL_VOLTAGE
        "\tTemperature{mValue=11.0, mType=9, mName=socd, mStatus=0}",
        "\tTemperature{mValue=abc, mType=0, mName=bad, mStatus=0}",
        "\tTemperature{mValue=35.0, mType=0, mName",  # truncated
        "Current cooling devices from HAL:",
    ])
    t = parse_thermalservice(text)
    sensors = {s.name: s for s in t.sensors()}
    assert set(sensors) == {"AP", "BAT", "test temperature sensor"}
    assert sensors["AP"].type == "CPU" and sensors["BAT"].type == "BATTERY"
    assert sensors["test temperature sensor"].type == "SKIN"
    others = {x.name: x.not_temperature for x in t.temperatures if x.not_temperature}
    assert "sentinel" in others["PA"] and "BCL_VOLTAGE" in others["vbat"] and "%" in others["socd"]
    assert "bad" in others and any("line 14" == k for k in t.problems)


def test_thermalservice_plain_aosp_bcl_types_are_not_temperatures():
    text = ("Thermal Status: 0\nCurrent temperatures from HAL:\n"
            "\tTemperature{mValue=4.384, mType=6, mName=vbat, mStatus=0}\n"
            "\tTemperature{mValue=5000.0, mType=7, mName=ibat, mStatus=0}\n"
            "\tTemperature{mValue=11.0, mType=8, mName=socd, mStatus=0}\n"
            "\tTemperature{mValue=38.0, mType=9, mName=nsp0, mStatus=0}\n")
    t = parse_thermalservice(text)
    assert [s.name for s in t.sensors()] == ["nsp0"]
    assert [x.unit for x in t.temperatures[:3]] == ["mV", "mA", "%"]
    assert "IsStatusOverride" in t.problems  # absent: an override cannot be ruled out


def test_thermalservice_hal_not_ready_and_empty_current():
    t = parse_thermalservice("IsStatusOverride: false\nThermal Status: 0\nCached temperatures:\n"
                             "\tTemperature{mValue=37.0, mType=3, mName=skin, mStatus=0}\nHAL Ready: false\n")
    assert t.temperatures == () and len(t.cached) == 1
    assert "no 'Current temperatures from HAL' block (HAL Ready: false)" == t.problems["temperatures"]
    t = parse_thermalservice("Thermal Status: 0\nCached temperatures:\n"
                             "\tTemperature{mValue=37.0, mType=3, mName=skin, mStatus=0}\n"
                             "Current temperatures from HAL:\nCurrent cooling devices from HAL:\n")
    assert t.temperatures == () and "Cached block is stale" in t.problems["temperatures"]


# --- thermal zones listing --------------------------------------------------------------


def test_thermal_zones_samsung_a15_unreadable():
    # L4-28 list cooling_device0-2 and thermal_zone0..21; the glob error capture shows the
    # zone folders are not readable by the shell, so the snapshot line for each is `name - -`.
    names = [n for n in parse_ls(capture("samsung_a15_mt6789_android16_ls_sys_class_thermal.txt"))
             if n.startswith("thermal_zone")]
    assert len(names) == 22
    errors = parse_shell_errors(capture("samsung_a15_mt6789_android16_thermal_zone_temp_glob_error.txt"))
    assert "glob not expanded" in errors["/sys/class/thermal/thermal_zone*/temp"]  # L6
    tz = parse_thermal_zones("\n".join(f"{n} - -" for n in names))
    assert len(tz.zones) == 22 and tz.temperatures() == []
    assert all(z.reason == "temperature not readable" for z in tz.zones)


def test_thermal_zones_units_and_non_temperatures():
    # values from FACTS.md 1.4 (Retroid Pocket 5, SM8250) and Qualcomm/MediaTek zone names
    text = ("thermal_zone0 cpu-0-0-usr 45300\nthermal_zone1 soc 72\nthermal_zone2 pm8150b-ibat-lvl0 546\n"
            "thermal_zone3 pm8150b-vbat-lvl0 3986\nthermal_zone4 pm8150l-bcl-lvl0 -274000\n"
            "thermal_zone5 xo-therm -40000\nthermal_zone6 mtktscpu -\nthermal_zone7 cpu-1-step 2\n"
            "thermal_zone8 battery 31000\nthermal_zone9 garbled\nthermal_zone10 gpuss-0-usr 4x\n"
            "thermal_zone11 tsens_tz_sensor0 45\n")
    tz = parse_thermal_zones(text)
    temps = {z.type: z.temp_c for z in tz.temperatures()}
    assert temps == {"cpu-0-0-usr": 45.3, "battery": 31.0}
    reasons = {z.type: z.reason for z in tz.zones if z.reason}
    assert "battery-limit" in reasons["soc"] and "battery-limit" in reasons["pm8150b-ibat-lvl0"]
    assert "battery-limit" in reasons["pm8150l-bcl-lvl0"] and "absent thermistor" in reasons["xo-therm"]
    assert reasons["mtktscpu"] == "temperature not readable" and "mitigation" in reasons["cpu-1-step"]
    assert "unit unknown" in reasons["tsens_tz_sensor0"]
    assert "line 10" in tz.problems and "line 11" in tz.problems


# --- ODPM, GPU ----------------------------------------------------------------------------


def test_odpm_pixel6_energy_value():
    o = parse_odpm_energy(capture("pixel6class_odpm_iio_energy_value.txt"))
    assert o.device_t_ms == (251741617, 16086645)  # L4, L13
    assert len(o.rails) == 16  # L5-12, L14-21
    rails = o.by_rail()
    assert rails["S2S_VDD_G3D"].energy_uws == 3702041607 and rails["S2S_VDD_G3D"].device == 0  # L11
    assert rails["S2M_VDD_CPUCL2"].energy_uws == 124265856 and rails["S2M_VDD_CPUCL2"].t_ms == 16086645  # L17
    assert rails["VSYS_PWR_RFFE"].energy_uws == 0  # L16
    assert o.problems == {}


def test_odpm_power_between_readings():
    before = parse_odpm_energy("t=1000\nCH0(T=1000)[S2M_VDD_CPUCL2], 5000000\nCH1(T=1000)[S1M_VDD_MIF], 10\n")
    after = parse_odpm_energy("t=3000\nCH0(T=3000)[S2M_VDD_CPUCL2], 9000000\nCH1(T=3000)[S1M_VDD_MIF], 5\n"
                              "junk\n")
    power, problems = rail_power_w(before, after)
    assert power == {"S2M_VDD_CPUCL2": pytest.approx(2.0)}  # 4e6 uWs over 2 s = 2 W
    assert "backwards" in problems["S1M_VDD_MIF"] and "line 4" in after.problems


def test_gpu_nodes_samsung_a15():
    assert parse_gpu_busy(capture("samsung_a15_mt6789_android16_sys_kernel_gpu_gpu_busy.txt")).busy_pct == 97.0  # L4
    gpu = parse_ls(capture("samsung_a15_mt6789_android16_ls_sys_kernel_gpu.txt"))
    assert "gpu_busy" in gpu and "gpu_clock" in gpu and len(gpu) == 10  # L4-13
    mali = parse_ls(capture("samsung_a15_mt6789_android16_ls_mali0_device.txt"))
    assert "utilization" not in mali and "cur_freq" not in mali and "dvfs_period" in mali  # L4-28
    assert parse_gpu_busy("1200 4800").busy_pct == 25.0
    assert parse_gpu_busy("n/a").busy_pct is None


# --- robustness: truncated and garbled input never raises --------------------------------


PARSERS = [parse_getprop, parse_android_cpuinfo, parse_cpufreq, parse_meminfo, parse_smaps_rollup,
           parse_dumpsys_meminfo, parse_dumpsys_battery, parse_battery_uevent, parse_thermalservice,
           parse_thermal_zones, parse_odpm_energy, parse_gpu_busy]
ALL_CAPTURES = sorted(p.name for p in FIXTURES.glob("*.txt"))


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
def test_parsers_survive_truncation_and_garbage(parser):
    for name in ALL_CAPTURES:
        text = capture(name)
        for cut in (0, 1, len(text) // 3, len(text) // 2, len(text) - 7):
            parser(text[:cut])
        parser(text.replace("\n", "\x00", 5))
        parser("".join(chr((ord(c) * 7) % 0x250 or 32) for c in text[:400]))
    parser("\ufffd\ufffd[[[:::===}}}{{{")


def test_truncated_thermalservice_gives_partial_results():
    text = capture("samsung_a15_mt6789_android16_dumpsys_thermalservice.txt")
    cut = text[: text.index("mName=SKIN, mStatus=0}\n\tTemperature{mValue=0.0")]  # inside L28
    t = parse_thermalservice(cut)
    assert [s.name for s in t.sensors()] == ["AP", "BAT", "PA"]  # L25-27 survive
    assert t.sensors()[0].temp_c == 30.9 and not math.isnan(t.sensors()[2].temp_c)
    assert "line 25" in t.problems  # L28 (output line 25) lost its name and '}': reported, skipped


def test_thermalservice_hidl_temperature_format():
    # Older HIDL-era dumps print `{.type = SKIN, .name = skin, .value = ..., .throttlingStatus = ...}`
    text = ("IsStatusOverride: false\nThermal Status: 1\nCurrent temperatures from HAL:\n"
            "\t{.type = SKIN, .name = skin therm, .value = 38.5, .throttlingStatus = LIGHT}\n"
            "\t{.type = BCL_VOLTAGE, .name = vbat, .value = 3900.0, .throttlingStatus = NONE}\n")
    t = parse_thermalservice(text)
    assert [(s.name, s.type, s.temp_c, s.status) for s in t.sensors()] == [("skin therm", "SKIN", 38.5, 1)]
    assert t.temperatures[1].unit == "mV" and t.temperatures[1].temp_c is None


def test_thermalservice_soc_type_and_bad_status():
    text = ("IsStatusOverride: false\nThermal Status: 7\nCurrent temperatures from HAL:\n"
            "\tTemperature{mValue=45.0, mType=13, mName=soc, mStatus=0}\n")
    t = parse_thermalservice(text)
    assert [(s.name, s.type, s.temp_c) for s in t.sensors()] == [("soc", "SOC", 45.0)]  # a SOC thermistor
    assert t.status is None and t.status_reported == 7 and "outside 0..6" in t.problems["status"]
