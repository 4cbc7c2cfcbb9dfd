"""The on-device sampler on the loopback phone (real adb server, real mksh in the sandbox),
plus pure tests of its row parsing.

Run: .venv/bin/pytest tests/test_android_sampler.py
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from suite.analysis.throttling import detect_throttling
from suite.core.schema import (
    CH_CURRENT_A,
    CH_POWER_W,
    CH_RSS_BYTES,
    CH_TEMP_BATTERY,
    CH_THERMAL_STATUS,
    CH_VOLTAGE_V,
    ch_cpufreq_cur,
    ch_cpufreq_max,
    ch_temp_tz,
)
from suite.device.android.battery import parse_dumpsys_battery
from suite.sensors.android import (
    CH_POWER_ODPM,
    DUMPSYS_NO_CURRENT,
    AndroidSampler,
    Node,
    _stat_cpu_ticks,
    ch_power_rail,
    dumpsys_power_problem,
)
from suite.transport.adb import AdbServerAddress, AdbTransport

FIXTURES = Path(__file__).parent / "fixtures" / "android"


def _capture(name: str) -> str:
    """A capture without its leading `# ` provenance lines."""
    lines = (FIXTURES / name).read_text().split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith("# "):
        i += 1
    return "\n".join(lines[i:])


A15_BATTERY = "samsung_a15_mt6789_android16_dumpsys_battery.txt"
SKIA_BATTERY = "skia_lab_android_dumpsys_battery_partial.txt"


def _transport(phone) -> AdbTransport:
    return AdbTransport(phone.serial, AdbServerAddress("127.0.0.1", phone.adb_port))


def _by_channel(rows):
    out = defaultdict(list)
    for t, ch, v in rows:
        out[ch].append((t, v))
    return out


def _rate(points) -> float:
    ts = [t for t, _ in points]
    return (len(ts) - 1) / (ts[-1] - ts[0])


def _leftovers(phone, sampler) -> list[str]:
    """Processes of the phone (its cgroup) and host processes naming the loop's fifo."""
    left = [f"cgroup pid {p}" for p in (phone.cgroup.pids() if phone.cgroup else set())]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if sampler.fifo_path.encode() in cmd:
                left.append(f"host pid {d.name}: {cmd[:80]!r}")
    return left


# --- pure -------------------------------------------------------------------------------


def test_stat_cpu_ticks_with_spaces_in_comm():
    line = "2 (my sh) S 1 2 2 0 -1 4194304 122 122 1 1 7 3 5 1 20 0 1 0 343778 3211264 457"
    assert _stat_cpu_ticks(line) == 7 + 3 + 5 + 1  # utime stime cutime cstime
    assert _stat_cpu_ticks("garbage") is None


class _FakeTransport:
    serial = "fake"


def test_row_parsing_normalises_once():
    """Rows as the loop prints them (qcom-flagship convention: uA, positive while discharging)."""
    s = AndroidSampler(_FakeTransport())

    s._fast = [Node("current", "/c", "current_now"), Node("voltage", "/v", "voltage_now"),
               Node("status", "/s", "status")]
    s._slow = [Node("tz", "/tz0/temp", "thermal_zone0", "skin"), Node("max", "/p0/max", "policy0"),
               Node("bat_temp", "/t", "temp")]
    s.power_source = "battery_fuel_gauge"
    s._availability = {}
    for line in ["H|7|1000.000000|100|10|0", "F|1000.000100|0|250000|4000000|Discharging",
                 "S|1000.000100|41500|1804800|312", "F|1000.100200|1|500000|4000000|Discharging",
                 "M|1000.1|42|2048|4096", "M|1000.2|42|2048|4096|llama-bench|4-7",
                 "M|1000.3|43|-|-|taskset|0-7", "C|1000.2|0|7 (sh) S 1 2 2 0 -1 0 0 0 0 0 3 1 0 0 20"]:
        s._parse(line)
    s.set_t0_device(1000.0)
    ch = _by_channel(s.rows)
    # 250000 uA x 4.0 V = 1.0 W; 500000 uA -> 2.0 W
    assert [v for _, v in ch[CH_POWER_W]] == pytest.approx([1.0, 2.0])
    assert [v for _, v in ch[CH_CURRENT_A]] == pytest.approx([0.25, 0.5])
    assert ch[CH_VOLTAGE_V][0][1] == 4.0
    assert ch[ch_temp_tz("skin")] == [(pytest.approx(0.0001), 41.5)]  # millidegrees
    assert ch[ch_cpufreq_max("policy0")][0][1] == 1804800
    assert ch[CH_TEMP_BATTERY][0][1] == 31.2  # tenths of degC
    assert ch[CH_RSS_BYTES][0][1] == 2048 * 1024 and s.peak_rss_bytes == 4096 * 1024
    # the runtime's Cpus_allowed_list (a launcher's, taskset's before it execs, is not the runtime's)
    assert s.cpus_allowed == {"4-7": 1}
    assert s.convention.unit == "uA" and s.convention.discharge_sign == "positive while discharging"
    s._finish_stats()
    assert s.stats.thread_cpu_s == pytest.approx(0.04) and s.stats.wall_s == pytest.approx(0.2)


# --- on the loopback phone --------------------------------------------------------------


@pytest.mark.loopback
def test_rates_power_normalised_and_clean_stop(loopback_phone_factory):
    """qcom-flagship: uA, POSITIVE while discharging (Xiaomi convention); 10 Hz power, 1 Hz rest."""
    phone = loopback_phone_factory("qcom-flagship", charging=False)
    # not_runtime_names=(): accept bwrap (pid 1 of the loop's namespace) as a stand-in runtime
    s = AndroidSampler(_transport(phone), thermal_period_s=1.0, not_runtime_names=())
    av = s.availability()
    assert av[CH_POWER_W] is None and s.power_source == "battery_fuel_gauge"
    assert av[ch_temp_tz("skin-msm-therm")] is None and av[ch_cpufreq_max("policy7")] is None
    s.start()
    time.sleep(3.2)
    st_model = phone.state()
    s.set_pid(1)  # the loop's own pid namespace: bwrap's pid 1 (other commands' pids are not visible)
    time.sleep(1.3)
    stats = s.stop()
    ch = _by_channel(s.rows)
    assert 9.0 <= _rate(ch[CH_POWER_W]) <= 11.0, _rate(ch[CH_POWER_W])
    assert 0.8 <= _rate(ch[ch_temp_tz("skin-msm-therm")]) <= 1.2
    assert 0.8 <= _rate(ch[ch_cpufreq_cur("policy0")]) <= 1.2
    assert 9.0 <= stats.achieved_hz <= 11.0 and stats.ticks >= 40
    # sign and unit normalised against the model: it keeps current + into the battery
    assert s.convention.unit == "uA" and s.convention.discharge_sign == "positive while discharging"
    # (the model's load, hence its current, moves with the host's: compare the nearest reading)
    near = [v for t, v in ch[CH_CURRENT_A] if abs(t + s.t0 - st_model["time"]) < 0.35]
    assert near and all(v > 0 for v in near), (near, st_model)
    assert min(abs(v + st_model["current_a"]) for v in near) < 0.25 * abs(st_model["current_a"]) + 0.05, \
        (near, st_model)
    p_near = [v for t, v in ch[CH_POWER_W] if abs(t + s.t0 - st_model["time"]) < 0.35]
    assert min(abs(v - st_model["power_w"]) for v in p_near) < 0.25 * st_model["power_w"] + 0.1, (p_near, st_model)
    assert ch[CH_THERMAL_STATUS], "dumpsys thermalservice status sampled"
    assert ch[CH_RSS_BYTES] and s.peak_rss_bytes > 0  # set_pid after start reached the loop
    # ... with where that process may run (its Cpus_allowed_list), read by the same loop
    assert s.cpus_allowed and s.notes["runtime_cpus_allowed"] == s.cpus_allowed, s.notes
    # its own CPU cost, measured from /proc/<loop>/stat
    assert 4.3 < stats.wall_s < 6.5, stats
    assert stats.cpu_pct is not None and 0 <= stats.cpu_pct < 10
    assert "battery_raw_convention" in s.notes and s.notes["sampler_stats"]["cpu_pct"] == stats.cpu_pct
    # stop() left nothing: no process, no fifo
    time.sleep(0.2)
    assert _leftovers(phone, s) == []
    ls = _transport(phone).shell(["ls", "/data/local/tmp/edgebench"]).stdout
    assert "fifo" not in ls, ls
    assert not s.disconnected


@pytest.mark.loopback
def test_a15_charging_and_unreadable_zones(loopback_phone_factory):
    """galaxy-a15: charging (its profile), thermal zones not readable by the shell uid."""
    phone = loopback_phone_factory("galaxy-a15", charging=True)
    s = AndroidSampler(_transport(phone), thermal_period_s=None)
    av = s.availability()
    zones = {k: v for k, v in av.items() if k.startswith("temp_c/tz/")}
    assert len(zones) == 22 and all("permission denied" in v for v in zones.values()), zones
    assert av[CH_POWER_W].startswith("charging: ")
    with s:
        time.sleep(1.5)
    av = s.availability()
    assert av[CH_POWER_W].startswith("charging: ") and "of" in av[CH_POWER_W]
    ch = _by_channel(s.rows)
    assert CH_POWER_W not in ch
    # the current is still normalised (negative: the battery is charging), battery temp sampled
    assert ch[CH_CURRENT_A] and all(v < 0 for _, v in ch[CH_CURRENT_A])
    assert ch[CH_TEMP_BATTERY]
    assert s.convention.discharge_sign == "negative while discharging"  # A15 sysfs: kernel ABI


@pytest.mark.loopback
def test_charger_plugged_mid_run_drops_power(loopback_phone_factory):
    phone = loopback_phone_factory("galaxy-a15", charging=False)
    s = AndroidSampler(_transport(phone), thermal_period_s=None)
    assert s.availability()[CH_POWER_W] is None
    s.start()
    time.sleep(1.0)
    assert _by_channel(s.rows)[CH_POWER_W], "power sampled while discharging"
    phone.set_charging(True)
    phone.wait_state(lambda st: st["charging"], timeout_s=5)
    time.sleep(0.6)
    s.stop()
    assert CH_POWER_W not in _by_channel(s.rows), "never a wrong number: all power rows withdrawn"
    assert s.availability()[CH_POWER_W].startswith("charging: ")


@pytest.mark.loopback
def test_temperatures_rise_under_load_and_throttling_seen(loopback_phone_factory):
    phone = loopback_phone_factory("qcom-flagship", charging=False, time_scale=100)
    t = _transport(phone)
    s = AndroidSampler(t, thermal_period_s=1.0)
    s.start()
    time.sleep(1.2)
    burn = t.stream("while :; do :; done")  # one busy shell inside the phone's cgroup
    try:
        phone.wait_state(lambda st: st["severity"] >= 1, timeout_s=20)
        time.sleep(1.2)
    finally:
        burn.close()
    s.stop()
    ch = _by_channel(s.rows)
    skin = [v for _, v in ch[ch_temp_tz("skin-msm-therm")]]
    assert max(skin) > skin[0] + 5, (skin, phone.state())
    power = [v for _, v in ch[CH_POWER_W]]
    assert max(power) > power[0] + 1.0, power  # 0.4 W idle + 6 W x load x cap^2 (load: a shared host)
    ev = detect_throttling(s.rows, cpuinfo_max_khz=s.notes["cpuinfo_max_khz"])
    assert ev.throttled, ev
    assert any("scaling_max_freq fell" in e for e in ev.evidence)
    assert any("thermal status reached" in e for e in ev.evidence)
    deadline = time.monotonic() + 5  # the burn loop ends when its stream is closed
    while _leftovers(phone, s) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _leftovers(phone, s) == []


@pytest.mark.loopback
def test_pixel_odpm_rails(loopback_phone_factory):
    phone = loopback_phone_factory("pixel-tensor", charging=True)
    s = AndroidSampler(_transport(phone), thermal_period_s=None)
    av = s.availability()
    # charging: the fuel gauge is confounded, the ODPM rails are not
    assert s.power_source == "odpm_rails" and av[CH_POWER_W] is None
    with s:
        # at 10 Hz eight power rows take ~0.8 s; on a loaded host the loop runs late, so wait for
        # them (the rate itself is checked by test_rates_power_normalised_and_clean_stop)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and sum(ch == CH_POWER_W for _, ch, _ in s.rows) < 8:
            time.sleep(0.1)
    ch = _by_channel(s.rows)
    assert len(ch[CH_POWER_W]) >= 8 and ch[CH_POWER_ODPM]
    assert ch[ch_power_rail("S2M_VDD_CPUCL2")]
    assert all(v > 0 for _, v in ch[CH_POWER_W])


@pytest.mark.loopback
def test_phone_killed_mid_sampling(loopback_phone_factory):
    phone = loopback_phone_factory("qcom-flagship", charging=False)
    s = AndroidSampler(_transport(phone), thermal_period_s=None)
    s.start()
    time.sleep(1.0)
    before = len(s.rows)
    assert before > 10
    phone.kill()
    deadline = time.monotonic() + 10
    while not s.disconnected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s.disconnected and s.disconnect_reason
    stats = s.stop()  # no exception escapes
    assert len(s.rows) >= before
    assert stats is not None and stats.ticks >= 9
    assert "disconnected" in s.notes
    assert not (phone.cgroup.pids() if phone.cgroup else set())


@pytest.mark.loopback
def test_a_process_another_shell_started_is_followed_and_the_loop_s_own_pid_is_not(loopback_phone_factory):
    """Every shell of a phone shares one pid namespace (the loopback phone's too): a runtime another adb shell
    started is read through its pid file; a pid that names the loop's own shell is never the runtime's."""
    phone = loopback_phone_factory("qcom-flagship", charging=False)
    t = _transport(phone)
    pid_file = "/data/local/tmp/edgebench/runner.pid"
    t.shell("mkdir -p /data/local/tmp/edgebench")
    runtime = t.stream(f"sh -c 'echo $$ > {pid_file} && exec sleep 30'")
    deadline = time.monotonic() + 10
    while not t.shell(f"cat {pid_file} 2>/dev/null").stdout.strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        s = AndroidSampler(t, thermal_period_s=None, pid_file=pid_file)
        with s:
            time.sleep(1.2)
        assert s.peak_rss_bytes is None or s.peak_rss_bytes > 0
        assert CH_RSS_BYTES in _by_channel(s.rows) and s.availability()[CH_RSS_BYTES] is None
    finally:
        runtime.close()
    s = AndroidSampler(t, thermal_period_s=None, pid_file=pid_file)
    with s:
        t.shell(f"echo {s.loop_pid} > {pid_file}")
        time.sleep(1.2)
    assert s.loop_pid and "not the runtime" in (s.availability()[CH_RSS_BYTES] or "")


# --- the dumpsys battery fallback (battery sysfs unreadable) ------------------------------


def test_dumpsys_power_problem_on_captures():
    # Samsung A15: `current now: 587` (L31) and `voltage: 4378` (L17): usable
    assert dumpsys_power_problem(parse_dumpsys_battery(_capture(A15_BATTERY))) is None
    # Skia lab (AOSP-style): no current line at all
    why = dumpsys_power_problem(parse_dumpsys_battery(_capture(SKIA_BATTERY)))
    assert why.startswith(DUMPSYS_NO_CURRENT)
    # `Can't find service: battery` goes to stderr: nothing parsed
    why = dumpsys_power_problem(parse_dumpsys_battery(""), "")
    assert why == "dumpsys battery gave no battery state (no output)"
    odd = _capture(A15_BATTERY).replace("current now: 587", "current now: n/a")
    assert "'n/a', not an integer" in dumpsys_power_problem(parse_dumpsys_battery(odd))


def _fallback_sampler(power_source="battery_fuel_gauge") -> AndroidSampler:
    """A sampler in the state discover() leaves it in when the sysfs is unreadable."""
    s = AndroidSampler(_FakeTransport())
    s._fast, s._slow = [], []
    s.power_source = power_source
    s._availability = {}
    s._sysfs_battery_reason = "permission denied reading /sys/class/power_supply/battery/current_now as the shell uid"
    s.dumpsys_battery_every = 20
    return s


def _dumpsys_block(t0: float, t1: float, text: str) -> list[str]:
    return [f"B<|{t0:.6f}", *text.split("\n"), f"B>|{t1:.6f}"]


def test_dumpsys_rows_from_the_verbatim_a15_capture():
    """Verbatim A15 capture: AC powered, status 2 (Charging), current now 587 mA, voltage 4378 mV.
    Current normalised (negative: into the battery), no power (the charging confound)."""
    s = _fallback_sampler()
    for line in ["H|7|1000.000000|100|10|0|20", *_dumpsys_block(1000.0, 1000.1, _capture(A15_BATTERY))]:
        s._parse(line)
    s.set_t0_device(1000.0)
    ch = _by_channel(s.rows)
    assert ch[CH_CURRENT_A] == [(pytest.approx(0.05), pytest.approx(-0.587))]  # mid-call, -587 mA
    assert ch[CH_VOLTAGE_V] == [(pytest.approx(0.05), pytest.approx(4.378))]
    assert CH_POWER_W not in ch
    assert s.convention.unit == "mA" and s.convention.discharge_sign == "negative while discharging"
    # the broadcast log (current_avg -17 while status 3 ...) agrees with the status rule
    assert any("current_avg" in e for e in s.convention.evidence)
    s._finish_stats()
    assert s.availability()[CH_POWER_W].startswith("charging: ")


def test_dumpsys_rows_discharging_hand_derived():
    """The A15 capture unplugged (its own lines edited: AC powered false, status 3): power is
    voltage (mV) x -current now (mA), every snapshot, stamped mid-call."""
    base = (_capture(A15_BATTERY).replace("AC powered: true", "AC powered: false")
            .replace("  status: 2", "  status: 3"))
    s = _fallback_sampler()
    s._parse("H|7|1000.000000|100|10|0|20")
    for t, cur_ma, mv in ((1000.0, -412, 4378), (1002.0, -412, 4378), (1004.0, -655, 4371)):
        text = base.replace("current now: 587", f"current now: {cur_ma}").replace(
            "  voltage: 4378", f"  voltage: {mv}")
        for line in _dumpsys_block(t, t + 0.08, text):
            s._parse(line)
    s.set_t0_device(1000.0)
    ch = _by_channel(s.rows)
    assert [t for t, _ in ch[CH_POWER_W]] == pytest.approx([0.04, 2.04, 4.04])
    # 4.378 V x 0.412 A = 1.803736 W; 4.371 V x 0.655 A = 2.863005 W
    assert [v for _, v in ch[CH_POWER_W]] == pytest.approx([1.803736, 1.803736, 2.863005])
    assert [v for _, v in ch[CH_CURRENT_A]] == pytest.approx([0.412, 0.412, 0.655])
    s._finish_stats()
    assert s.availability().get(CH_POWER_W) is None
    n = s.notes
    assert n["power_source_detail"] == "dumpsys battery 'current now' (mA), every 2 s"
    db = n["dumpsys_battery"]
    assert db["achieved_period_s"] == pytest.approx(2.0) and db["snapshots"] == 3
    assert db["repeated_readings"] == 1 and db["call_s_max"] == pytest.approx(0.08)
    assert "coarse" in db["note"] and "permission denied" in db["why"]
    assert n["battery_raw_convention"]["source"] == "dumpsys battery 'current now'"


def test_dumpsys_snapshot_without_current_is_a_gap_and_counted():
    s = _fallback_sampler()
    s._parse("H|7|1000.000000|100|10|0|20")
    for line in _dumpsys_block(1000.0, 1000.1, _capture(SKIA_BATTERY)):
        s._parse(line)
    s._finish_stats()
    assert s.rows == []
    av = s.availability()[CH_POWER_W]
    assert "permission denied" in av and DUMPSYS_NO_CURRENT in av and "1 of 1" in av
    assert s.notes["dumpsys_battery"]["snapshots_without_current"] == 1


@pytest.mark.loopback
def test_dumpsys_battery_fallback_when_sysfs_denied(loopback_phone_factory):
    """galaxy-a15 with its battery sysfs denied to the shell uid (SELinux on many phones):
    power from `dumpsys battery` 'current now' (mA) at 0.5 Hz, the sysfs path off."""
    phone = loopback_phone_factory("galaxy-a15", charging=False, battery_overrides={"sysfs_readable": False})
    t = _transport(phone)
    denied = t.shell("cat /sys/class/power_supply/battery/current_now 2>&1").stdout
    assert "Permission denied" in denied, denied
    s = AndroidSampler(t, thermal_period_s=None)
    av = s.availability()
    assert s.power_source == "battery_fuel_gauge" and av[CH_POWER_W] is None
    assert av[CH_CURRENT_A] is None and av[CH_VOLTAGE_V] is None
    assert av[CH_TEMP_BATTERY] is None  # sysfs temp denied too: dumpsys `temperature` instead
    assert s.dumpsys_battery_every == 20  # 2 s at 10 Hz
    with s:
        time.sleep(6.6)
        snapshot = t.shell("dumpsys battery").stdout  # what the phone prints now
    ch = _by_channel(s.rows)
    power = ch[CH_POWER_W]
    assert 3 <= len(power) <= 5, power
    steps = [b[0] - a[0] for a, b in zip(power, power[1:], strict=False)]
    assert all(1.7 < d < 2.4 for d in steps), steps  # ~0.5 Hz, not the 10 Hz fast tick
    # every power row is the same snapshot's voltage x current, both whole mV / mA
    volts, amps = dict(ch[CH_VOLTAGE_V]), dict(ch[CH_CURRENT_A])
    for t_s, w in power:
        assert w == pytest.approx(volts[t_s] * amps[t_s])
        assert amps[t_s] * 1000 == pytest.approx(round(amps[t_s] * 1000), abs=1e-6)
        assert volts[t_s] * 1000 == pytest.approx(round(volts[t_s] * 1000), abs=1e-6)
    # hand-derived from the text the phone printed at the end: mV x -mA (negative while discharging)
    db = parse_dumpsys_battery(snapshot)
    assert db.status == "Discharging" and db.plugged == ()
    expected_w = db.voltage_v * (-db.current_now_raw / 1000.0)
    assert expected_w > 0.2
    assert power[-1][1] == pytest.approx(expected_w, rel=0.25)  # the model moves with the host's load
    assert s.convention.unit == "mA" and s.convention.discharge_sign == "negative while discharging"
    n = s.notes
    assert n["power_source_detail"] == "dumpsys battery 'current now' (mA), every 2 s"
    assert "permission denied" in n["battery_sysfs_unreadable"]
    assert 1.7 < n["dumpsys_battery"]["achieved_period_s"] < 2.4
    assert "coarse" in n["dumpsys_battery"]["note"]
    assert ch[CH_TEMP_BATTERY] and s.stats.achieved_hz > 9.0  # the fast tick still keeps its rate


@pytest.mark.loopback
def test_no_power_when_sysfs_denied_and_dumpsys_prints_no_current(loopback_phone_factory):
    """qcom-flagship (its dumpsys battery: the Skia lab capture, no current line) with the sysfs
    denied: power unavailable, the reason names both failures."""
    phone = loopback_phone_factory("qcom-flagship", charging=False, battery_overrides={"sysfs_readable": False})
    s = AndroidSampler(_transport(phone), thermal_period_s=None)
    av = s.availability()
    assert s.power_source is None and s.dumpsys_battery_every == 0
    why = av[CH_POWER_W]
    assert "permission denied reading /sys/class/power_supply/battery/current_now" in why, why
    assert DUMPSYS_NO_CURRENT in why, why
    with s:
        time.sleep(1.0)
    ch = _by_channel(s.rows)
    assert CH_POWER_W not in ch and CH_CURRENT_A not in ch
    assert ch[ch_temp_tz("skin-msm-therm")]  # the rest still sampled
