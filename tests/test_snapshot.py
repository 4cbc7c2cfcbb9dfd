"""Snapshot folders parsed offline (issue 4): built from the real captures in
tests/fixtures/android, with the file names `edgebench devices snapshot` writes.

Expected values come from the capture lines named in the comments ("L16" = line 16 of the
fixture file, header lines counted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suite.catalog.socs import SOCS_CSV_HINT_PATH
from suite.device.android.identity import android_device_info
from suite.device.android.snapshot import (
    BATTERY_UEVENT,
    CPUFREQ,
    DUMPSYS_BATTERY,
    DUMPSYS_THERMALSERVICE,
    GETPROP,
    PROC_CPUINFO,
    PROC_MEMINFO,
    SNAPSHOT_FILES,
    THERMAL_ZONES,
    parse_snapshot,
    snapshot_from_texts,
)
from suite.device.identity import DeviceInfo, local_device_info

FIXTURES = Path(__file__).parent / "fixtures" / "android"
A15 = "samsung_a15_mt6789_android16_"

#: the Galaxy A15's MT6789: the Helio G99, G100 and G200 report it (devices/socs.csv)
A15_SOC = "Helio G99 or Helio G100 (incl. G100 Ultra) or Helio G200"


def capture(name: str) -> str:
    lines = (FIXTURES / name).read_text().split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith("# "):
        i += 1
    return "\n".join(lines[i:])


def a15_texts() -> dict[str, str]:
    """The Galaxy A15 set. thermal_zones.txt is derived: the `ls /sys/class/thermal` capture
    lists thermal_zone0..21 and the glob-error capture shows their files are unreadable by
    the shell, so the snapshot command prints `<zone> - -` for each."""
    zones = [n for n in capture(A15 + "ls_sys_class_thermal.txt").split() if n.startswith("thermal_zone")]
    return {
        GETPROP: capture(A15 + "getprop_identity_subset.txt"),
        PROC_MEMINFO: capture(A15 + "proc_meminfo.txt"),
        DUMPSYS_BATTERY: capture(A15 + "dumpsys_battery.txt"),
        DUMPSYS_THERMALSERVICE: capture(A15 + "dumpsys_thermalservice.txt"),
        THERMAL_ZONES: "".join(f"{z} - -\n" for z in zones),
    }


def write(tmp_path: Path, texts: dict[str, str]) -> Path:
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_samsung_a15_snapshot(tmp_path):
    snap = parse_snapshot(write(tmp_path, a15_texts()))
    assert snap["manufacturer"] == "samsung"  # getprop L34
    assert snap["model"] == "SM-A155M"  # getprop L35
    # L39-40: MT6789 is also the Helio G100 and G200 (devices/socs.csv): ambiguous, all entry
    assert (snap["soc_vendor"], snap["soc_model"], snap["soc_name"]) == ("MediaTek", "MT6789", A15_SOC)
    assert snap["tier"] == "entry" and snap["soc_match"]["ambiguous"]
    assert snap["soc_match"]["matched_on"].startswith("ro.soc.model=MT6789")
    assert snap["memory_type"] == "LPDDR4X" and snap["peak_dram_bw_gbps"] is None
    assert snap["ram_bytes"] == 3754184 * 1024  # proc_meminfo L4
    assert snap["mem_available_bytes"] == 728212 * 1024  # proc_meminfo L6
    assert (snap["android_release"], snap["sdk"], snap["abi"]) == ("16", 36, "arm64-v8a")  # getprop L14, L16, L27
    assert snap["fingerprint"] == "samsung/a15ub/a15:16/BP2A.250605.031.A3/A155MUBSADZB5:user/release-keys"  # L12

    bat = snap["battery"]
    assert bat["level"] == 99.0  # dumpsys_battery L16
    assert bat["temp_c"] == 25.7  # L21 temperature: 257
    assert bat["status"] == "Charging"  # L13 status: 2
    assert bat["plugged"] == ["ac"]  # L5
    assert bat["voltage_v"] == 4.378  # L18
    assert bat["current_raw"] == 587  # L31 current now: 587
    assert bat["current_a"] == pytest.approx(-0.587)  # into the battery
    assert bat["power_w"] is None and bat["power_unavailable"].startswith("charging")
    assert bat["current_convention"]["unit"] == "mA"
    assert bat["current_convention"]["discharge_sign"] == "negative while discharging"
    assert bat["sign_convention"] == "positive while discharging"
    assert bat["charge_counter_uah"] == 3988000  # L12
    assert snap["unavailable"]["battery.power_w"].startswith("charging")

    th = snap["thermal"]
    assert th["status"] == 0 and th["status_name"] == "NONE" and th["status_overridden"] is False  # L13, L4
    assert [(s["name"], s["type"], s["temp_c"]) for s in th["sensors"]] == [
        ("AP", "CPU", 30.9), ("BAT", "BATTERY", 24.8), ("PA", "POWER_AMPLIFIER", 29.1), ("SKIN", "SKIN", 28.3),
        ("USB", "USB_PORT", 26.3)]  # thermalservice L25-30, SUBBAT (L29, 0.0) left out
    assert [o["name"] for o in th["not_temperatures"] if o["source"] == "hal"] == ["SUBBAT"]
    assert len([o for o in th["not_temperatures"] if o["source"] == "tz"]) == 22
    assert snap["unavailable"]["thermal.sensors.tz"] == "no readable temperature among the thermal zones"

    # no cpuinfo / cpufreq in the A15 set
    assert snap["cpu_clusters"] == [] and "cpu_clusters" in snap["unavailable"]
    assert snap["problems"] == {}
    json.dumps(snap, allow_nan=False)  # plain JSON, no NaN


def test_live_texts_and_folder_give_the_same_json(tmp_path):
    texts = a15_texts()
    assert parse_snapshot(write(tmp_path, texts)) == snapshot_from_texts(texts)


def test_xiaomi_mi8_uevent_only(tmp_path):
    snap = parse_snapshot(write(tmp_path, {BATTERY_UEVENT: capture("xiaomi_mi8_sdm845_battery_uevent_charging.txt")}))
    bat = snap["battery"]
    assert bat["level"] == 50 and bat["status"] == "Charging"  # uevent L10, L6
    assert bat["temp_c"] == 29.0  # L20 TEMP=290
    assert bat["voltage_v"] == pytest.approx(3.888173)  # L14
    assert bat["current_raw"] == -326171  # L17
    assert bat["current_a"] == pytest.approx(-0.326171)  # negative while charging on this kernel -> into battery
    assert bat["current_convention"]["unit"] == "uA"
    assert bat["current_convention"]["discharge_sign"] == "positive while discharging"
    assert bat["power_w"] is None
    assert bat["plugged"] is None  # no dumpsys battery
    assert bat["charge_counter_uah"] == 1528169  # L33
    for field in ("manufacturer", "model", "ram_bytes", "android_release", "sdk", "abi", "fingerprint",
                  "thermal.status"):
        assert "missing from the snapshot" in snap["unavailable"][field], field
    assert snap["tier"] == "unknown" and SOCS_CSV_HINT_PATH in snap["unavailable"]["tier"]


def test_cpuinfo_and_cpufreq_clusters(tmp_path):
    # Pixel 8 Pro cpuinfo (real) with a cpufreq dump in the grep format (no real phone dump exists)
    cpufreq = "".join(
        f"/sys/devices/system/cpu/cpufreq/policy{p}/{f}:{v}\n"
        for p, cpus, mx in (("0", "0 1 2 3", 1704000), ("4", "4 5 6 7", 2367000), ("8", "8", 2910000))
        for f, v in (("related_cpus", cpus), ("cpuinfo_max_freq", mx), ("scaling_max_freq", mx),
                     ("scaling_cur_freq", 1000000), ("scaling_governor", "sched_pixel")))
    texts = {PROC_CPUINFO: capture("pixel8pro_tensor_g3_proc_cpuinfo.txt"), CPUFREQ: cpufreq,
             GETPROP: "[ro.soc.manufacturer]: [Google]\n[ro.soc.model]: [Tensor G3]\n[ro.board.platform]: [zuma]\n"}
    snap = snapshot_from_texts(texts)
    assert snap["soc_name"] == "Tensor G3" and snap["tier"] == "flagship"
    assert snap["cpu"]["logical_cores"] == 9  # processor 0..8
    assert snap["cpu"]["cores"] == "4x Cortex-A510 + 4x Cortex-A715 + 1x Cortex-X3"
    assert [(c["policy"], c["cpus"], c["core"], c["max_khz"]) for c in snap["cpu_clusters"]] == [
        ("policy0", [0, 1, 2, 3], "Cortex-A510", 1704000), ("policy4", [4, 5, 6, 7], "Cortex-A715", 2367000),
        ("policy8", [8], "Cortex-X3", 2910000)]
    assert snap["problems"][PROC_CPUINFO] == {"line 47": "2 fields on one line; split"}  # fixture L50

    # cpuinfo without cpufreq: clusters by core type, frequencies unknown and said so
    snap = snapshot_from_texts({PROC_CPUINFO: capture("vivo_iqoo_neo9pro_dimensity9300_proc_cpuinfo.txt")})
    assert [(c["cpus"], c["core"], c["max_khz"]) for c in snap["cpu_clusters"]] == [
        ([0, 1, 2, 3], "Cortex-A720", None), ([4, 5, 6, 7], "Cortex-X4", None)]
    assert "cpu_clusters.max_khz" in snap["unavailable"]


def test_throttling_thermal_snapshot():
    snap = snapshot_from_texts(
        {DUMPSYS_THERMALSERVICE: capture("unnamed_device_throttling_status2_dumpsys_thermalservice.txt")})
    th = snap["thermal"]
    assert th["status"] == 2 and th["status_name"] == "MODERATE"  # L13
    assert max(s["temp_c"] for s in th["sensors"]) == 48.2  # L34 CPU6 (current block)
    assert {c["name"]: c["state"] for c in th["cooling_devices"]}["thermal-cpufreq-7"] == 11  # L47


def test_empty_folder_everything_unavailable(tmp_path):
    snap = parse_snapshot(tmp_path)
    assert snap["tier"] == "unknown" and snap["battery"]["level"] is None
    assert snap["thermal"]["status"] is None and snap["thermal"]["sensors"] == []
    for key in ("manufacturer", "ram_bytes", "battery.level", "battery.power_w", "thermal.status",
                "thermal.sensors.tz", "cpu_clusters", "tier"):
        assert key in snap["unavailable"], key
    json.dumps(snap, allow_nan=False)


def test_hostile_getprop_values_stay_inert(tmp_path):
    gp = ("[ro.product.model]: [<script>alert('x')</script>]\n"
          "[ro.product.manufacturer]: [$(reboot);]\n"
          "[ro.build.fingerprint]: [`rm -rf /`; \"quoted\" && echo pwned]\n"
          "[ro.soc.model]: [<img src=x onerror=alert(1)>]\n")
    snap = parse_snapshot(write(tmp_path, {GETPROP: gp}))
    assert snap["model"] == "<script>alert('x')</script>"
    assert snap["manufacturer"] == "$(reboot);"
    assert snap["fingerprint"] == "`rm -rf /`; \"quoted\" && echo pwned"
    assert snap["soc_model"] == "<img src=x onerror=alert(1)>" and snap["tier"] == "unknown"
    assert json.loads(json.dumps(snap))["model"] == "<script>alert('x')</script>"


def test_truncated_and_garbled_files_give_partial_results(tmp_path):
    texts = a15_texts()
    texts[GETPROP] = texts[GETPROP][: texts[GETPROP].index("[ro.hardware]")] + "[ro.hardware]: [mt67"  # cut
    texts[DUMPSYS_BATTERY] = texts[DUMPSYS_BATTERY][: texts[DUMPSYS_BATTERY].index("  level:")]  # cut before L16
    texts[PROC_MEMINFO] = "MemTotal:  \x00\x01 kB\n" + texts[PROC_MEMINFO].split("\n", 1)[1]  # L4 garbled
    texts[CPUFREQ] = "\x00garbage\n"
    write(tmp_path, texts)
    (tmp_path / BATTERY_UEVENT).write_bytes(b"POWER_SUPPLY_STATUS=Disch\xff\xfe\n")
    snap = parse_snapshot(tmp_path)
    # ro.soc.model (L40) was cut off; ro.board.platform (L9) still identifies the SoC
    assert snap["soc_name"] == A15_SOC and snap["soc_match"]["matched_on"].startswith("ro.board.platform")
    assert snap["ram_bytes"] is None and snap["mem_available_bytes"] == 728212 * 1024
    assert snap["battery"]["status"] == "Charging" and snap["battery"]["level"] is None  # L13 kept, L16 lost
    assert snap["battery"]["temp_c"] is None and "battery.temp_c" in snap["unavailable"]
    for file in (GETPROP, PROC_MEMINFO, CPUFREQ):
        assert snap["problems"][file], file
    json.dumps(snap, allow_nan=False)


def test_snapshot_file_names_are_issue_4s():
    assert set(SNAPSHOT_FILES) == {
        "getprop.txt", "proc_cpuinfo.txt", "proc_meminfo.txt", "dumpsys_battery.txt",
        "dumpsys_thermalservice.txt", "thermal_zones.txt", "power_supply_battery_uevent.txt", "cpufreq.txt"}


def test_device_info_same_shape_as_the_local_host(tmp_path):
    texts = a15_texts()
    texts[PROC_CPUINFO] = capture("vivo_iqoo_neo9pro_dimensity9300_proc_cpuinfo.txt")  # any cpuinfo will do
    info = android_device_info(snapshot_from_texts(texts), serial="R58W12345", salt="lab")
    local = local_device_info(salt="lab")
    assert info.to_dict().keys() == local.to_dict().keys()
    assert info.to_dict()["os"].keys() == local.to_dict()["os"].keys()
    assert info.to_dict()["cpu"].keys() == local.to_dict()["cpu"].keys()
    assert DeviceInfo.from_dict(info.to_dict()) == info
    assert (info.tier, info.soc_name, info.os.sdk, info.os.android_release) == ("entry", A15_SOC, 36, "16")
    # the record says how its SoC was identified: the evidence, the candidates of an id several parts share
    m = info.to_dict()["soc_match"]
    assert m["ambiguous"] and m["matched_on"].startswith("ro.soc.model=MT6789") and "Helio G99" in m["candidates"]
    assert local.to_dict()["soc_match"] is None
    assert info.transport == "adb" and info.simulated is False and info.public_dict()["serial"] is None
    assert info.cpu.logical_cores == 8 and info.cpu.clusters == ()  # no cpufreq policies in this snapshot
    assert "cpu.clusters.max_khz" in info.unavailable and "os.kernel" not in info.unavailable  # ro.kernel.version L22
    json.dumps(info.to_dict(), allow_nan=False)
