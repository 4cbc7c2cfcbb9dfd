"""The local sampler: live on this host (which has no thermal zones and no power sensors),
and on sysfs trees rebuilt from real captures of laptops we do not have here."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from suite.core.schema import CH_CPU_UTIL_PCT, CH_POWER_W, CH_RSS_BYTES, CH_VOLTAGE_V, Phase, ch_phase, ch_temp_tz
from suite.sensors.local import LocalSampler
from suite.sensors.sources import (
    BatterySource,
    CpuUtilSource,
    HwmonSource,
    RaplSource,
    ThermalZoneSource,
    energy_delta_uj,
    parse_proc_stat_cpu,
    parse_vm_hwm_bytes,
)

FIXTURES = Path(__file__).parent / "fixtures/host"
REPO = Path(__file__).resolve().parents[1]


def sys_tree(root: Path, fixture: str) -> Path:
    """Rebuild the /sys files of a `grep . <files>` or `cat .../uevent` capture under root.

    `grep: <path>: Permission denied` lines become root-only (0400) files; uevent
    POWER_SUPPLY_X=v lines become power_supply/<NAME>/x files (what the kernel exposes)."""
    lines = [ln for ln in (FIXTURES / fixture).read_text().splitlines() if ln and not ln.startswith("# ")]
    uevent = {k: v for k, _, v in (ln.partition("=") for ln in lines) if k.startswith("POWER_SUPPLY_")}
    if uevent:
        bat = root / "class/power_supply" / uevent["POWER_SUPPLY_NAME"]
        bat.mkdir(parents=True, exist_ok=True)
        for key, value in uevent.items():
            (bat / key.removeprefix("POWER_SUPPLY_").lower()).write_text(value + "\n")
        return root
    for line in lines:
        if line.startswith("grep: "):
            path, _, why = line.removeprefix("grep: ").rpartition(": ")
            if why == "Permission denied":
                f = root / path.removeprefix("/sys/")
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text("0\n")
                f.chmod(0o400)
            continue
        # The path itself may hold colons (intel-rapl:0): split at the first ':' after its
        # last '/' (no captured value contains a '/').
        colon = line.index(":", line.rfind("/"))
        path, value = line[:colon], line[colon + 1 :]
        f = root / path.removeprefix("/sys/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(value + "\n")
    # Real sysfs lists every RAPL zone directly under class/powercap as a link.
    nested = root / "class/powercap/intel-rapl"
    if nested.is_dir():
        for zone in nested.glob("intel-rapl:*"):
            (root / "class/powercap" / zone.name).symlink_to(zone)
    return root


# --- pure parsers -----------------------------------------------------------------------


def test_proc_stat_live_and_guest_not_double_counted():
    busy, total = parse_proc_stat_cpu(Path("/proc/stat").read_text())
    assert 0 <= busy <= total
    # user=100 nice=0 system=50 idle=800 iowait=50 irq=0 softirq=0 steal=0 guest=30 guest_nice=0:
    # total = 1000 (guest is inside user), idle = 800 + 50, busy = 150.
    assert parse_proc_stat_cpu("cpu  100 0 50 800 50 0 0 0 30 0\n") == (150, 1000)


def test_vm_hwm_matches_getrusage():
    hwm = parse_vm_hwm_bytes(Path("/proc/self/status").read_text())
    # On Linux ru_maxrss is the same kernel counter, in KiB.
    assert hwm == pytest.approx(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, rel=0.05)


def test_rapl_wraparound_uses_max_energy_range():
    # max_energy_range_uj = 262143328850 is the real value of the captured package-0.
    max_range = 262143328850
    assert energy_delta_uj(1_000, 5_000, max_range) == 4_000
    # 1000 µJ to the top, 1 step to wrap to 0, then 500: 1000 + 1 + 500.
    assert energy_delta_uj(max_range - 1_000, 500, max_range) == 1_501
    assert energy_delta_uj(max_range - 1_000, 500, None) is None


# --- live host --------------------------------------------------------------------------


def test_live_sampler_rows_rates_cost_and_peak():
    sampler = LocalSampler(rate_hz=50.0)
    avail = sampler.availability()
    for sensor, reason in avail.items():
        assert reason is None or (isinstance(reason, str) and reason), sensor
    assert avail[CH_RSS_BYTES] is None and avail[CH_CPU_UTIL_PCT] is None

    with sampler:
        ballast = bytearray(96 * 2**20)  # touched by the zero-fill: 96 MiB more resident
        time.sleep(0.5)
        sampler.mark(Phase.DECODE, started=True)
        del ballast
        time.sleep(0.1)
    rows = sampler.rows
    channels = {ch for _, ch, _ in rows}
    assert {CH_RSS_BYTES, CH_CPU_UTIL_PCT, ch_phase(Phase.DECODE)} <= channels
    assert all(0.0 <= v <= 100.0 for _, ch, v in rows if ch == CH_CPU_UTIL_PCT)
    assert sampler.peak_rss_bytes >= max(v for _, ch, v in rows if ch == CH_RSS_BYTES) >= 96 * 2**20

    # A sensor that is unavailable contributes no rows at all: never a 0.
    if avail["power_w"] is not None:
        assert CH_POWER_W not in channels
    if avail["temp_c/tz"] is not None and avail["temp_c/hwmon"] is not None:
        assert not any(ch.startswith("temp_c/") for ch in channels)

    stats = sampler.stats
    # Every due tick either ran or was counted as missed (zero-filling the ballast holds
    # the GIL, which an in-process sampler cannot avoid: the stats must show it).
    assert stats.ticks + stats.missed_ticks == pytest.approx(stats.wall_s * 50.0, abs=2)
    assert stats.achieved_hz > 10.0  # 50 requested; a busy shared machine costs ticks, counted above
    assert 0 < stats.thread_cpu_s < stats.wall_s
    assert sampler.notes["sampler"]["cpu_pct"] == stats.cpu_pct


def test_this_host_says_it_has_no_power_or_thermal_sensors():
    """The machine the suite is developed on is a VM without these: the run says so."""
    if Path("/sys/class/thermal/thermal_zone0").exists() or Path("/sys/class/powercap").exists():
        pytest.skip("this host has thermal zones or powercap")
    avail = LocalSampler(use_nvml=False).availability()
    assert avail["temp_c/tz"] == "no thermal zones under /sys/class/thermal on this host"
    assert avail["power_w/rapl"] == "no /sys/class/powercap/intel-rapl:* on this host"
    assert "no /sys/class/power_supply/BAT* on this host" in avail["power_w"]


def test_schedule_is_drift_free_and_t0_is_settable():
    sampler = LocalSampler(rate_hz=20.0)
    with sampler:
        time.sleep(1.0)
    start = sampler.t0
    times = sorted({t for t, ch, _ in sampler.rows if ch == CH_RSS_BYTES})
    assert len(times) >= 18
    # Tick k is due at k * 50 ms (a tick missed on a busy machine is skipped, not shifted):
    # every tick sits just after a multiple of the period, so lateness never accumulates.
    slots = [round(t / 0.05) for t in times]
    lateness = sorted(t - k * 0.05 for t, k in zip(times, slots))
    assert len(set(slots)) == len(slots), "two ticks in one slot: the schedule bunched"
    assert lateness[0] >= -1e-3, "a tick came early"
    # On a quiet machine every tick is < 1 ms late; allow for a shared, busy one.
    assert lateness[len(lateness) // 2] < 0.01, lateness
    assert times[-1] > 0.9
    sampler.t0 = start + 0.25  # e.g. the run started after a quarter-second of idle
    assert sampler.rows[0][0] == pytest.approx(-0.25, abs=1e-3)


def test_sampler_follows_another_pid_that_exits_mid_run():
    code = "import time; b = bytearray(64 * 2**20); print('ready', flush=True); time.sleep(0.3)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with LocalSampler(pid=child.pid, rate_hz=20.0) as sampler:
            child.wait(timeout=10)  # the runtime ends (or dies) while it is being sampled
            time.sleep(0.2)
        rss = [v for _, ch, v in sampler.rows if ch == CH_RSS_BYTES]
        assert rss and max(rss) >= 64 * 2**20
        assert sampler.peak_rss_bytes >= 64 * 2**20  # VmHWM read while it was alive
        assert sampler.stats.ticks >= 5  # the loop went on after the process was gone
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_cpu_util_sees_a_busy_core():
    src = CpuUtilSource()
    assert src.probe() is None
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        pass
    ((channel, value),) = src.read()
    # One of N cores spun for the whole interval (others may be busy too: shared machine).
    assert channel == CH_CPU_UTIL_PCT and value >= 100.0 / os.cpu_count() * 0.7


# --- sysfs trees from real laptop captures ----------------------------------------------


def test_amd_laptop_temperatures_and_battery_on_ac(tmp_path):
    root = sys_tree(tmp_path, "amd_laptop_hwmon_thermal_bat0_not_charging.txt")
    tz = ThermalZoneSource(root)
    assert tz.probe() is None
    assert tz.read() == [(ch_temp_tz("acpitz"), 45.0)]
    hw = HwmonSource(root)
    assert hw.probe() is None
    assert dict(hw.read()) == {
        ch_temp_tz("hwmon:acpitz:temp1"): 45.0,
        ch_temp_tz("hwmon:nvme:Composite"): 36.85,
        ch_temp_tz("hwmon:k10temp:Tctl"): 52.0,
        ch_temp_tz("hwmon:iwlwifi_1:temp1"): 36.0,
        ch_temp_tz("hwmon:amdgpu:edge"): 42.0,
    }
    # On AC the battery reads current_now 0: power is unavailable, not 0 W.
    sampler = LocalSampler(sys_root=root, rate_hz=50.0, use_nvml=False)
    avail = sampler.availability()
    assert "'Not charging'" in avail["power_w/battery"]
    assert avail["power_w"] is not None
    with sampler:
        time.sleep(0.1)
    channels = {ch for _, ch, _ in sampler.rows}
    assert CH_POWER_W not in channels and ch_temp_tz("hwmon:k10temp:Tctl") in channels


def test_discharging_lenovo_battery_gives_power(tmp_path):
    root = sys_tree(tmp_path, "lenovo_bat0_uevent_discharging.txt")
    bat = BatterySource(root)
    assert bat.probe() is None
    # power_now 19195000 µW, voltage_now 11206000 µV.
    assert dict(bat.read()) == {CH_POWER_W: 19.195, CH_VOLTAGE_V: 11.206}
    sampler = LocalSampler(sys_root=root, rate_hz=50.0, use_nvml=False)
    assert sampler.availability()["power_w"] is None
    assert sampler.availability()["power_w/rapl"].startswith("not sampled: power_w comes from power_w/battery")
    # If the charger is plugged in mid-run the source stops emitting rather than report net power.
    (root / "class/power_supply/BAT0/status").write_text("Charging\n")
    assert bat.read() == [] and bat.not_discharging_ticks == 1


def test_discharging_battery_whose_driver_reports_zero_power(tmp_path):
    root = sys_tree(tmp_path, "deepin_bat0_uevent_discharging_power_now_zero.txt")
    reason = BatterySource(root).probe()
    assert reason is not None and "reports no power" in reason


def test_thermal_zone_that_is_not_a_temperature(tmp_path):
    # -40000 is what an absent thermistor reads on a Retroid Pocket 5 (FACTS.md 1.4);
    # that capture is kept aside, so this zone is written by hand with its value.
    root = sys_tree(tmp_path, "amd_laptop_hwmon_thermal_bat0_not_charging.txt")
    z = root / "class/thermal/thermal_zone1"
    z.mkdir()
    (z / "type").write_text("pm8150b-bcl-lvl0\n")
    (z / "temp").write_text("-40000\n")
    tz = ThermalZoneSource(root)
    assert tz.probe() is None
    assert tz.read() == [(ch_temp_tz("acpitz"), 45.0)]
    assert "not a temperature" in tz.skipped[ch_temp_tz("pm8150b-bcl-lvl0")]


def test_rapl_counter_deltas_and_wrap(tmp_path):
    root = sys_tree(tmp_path, "intel_rapl0_grep_permission_denied.txt")
    energy = root / "class/powercap/intel-rapl/intel-rapl:0/energy_uj"
    energy.chmod(0o644)  # as root could read it; the values below are chosen, the range is real
    now = [100.0]
    src = RaplSource(root, clock=lambda: now[0])
    energy.write_text("262143000000\n")
    assert src.probe() is None and src.zones == ["intel-rapl:0 (package-0)"]
    assert src.read() == []  # the first read only sets the baseline
    now[0] += 0.5
    energy.write_text("262143328850\n")  # +328850 µJ in 0.5 s
    assert src.read() == [(CH_POWER_W, pytest.approx(0.6577))]
    now[0] += 0.5
    energy.write_text("9999999\n")  # wrapped: 0 -> 9999999 after one step past the top
    assert src.read() == [(CH_POWER_W, pytest.approx(20.0))]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_rapl_permission_denied_for_a_normal_user():
    # Since Linux 5.10 energy_uj is root-only (0400), as in the captured forum post.
    root = Path(tempfile.mkdtemp(prefix="edgebench-rapl-"))
    try:
        root.chmod(0o755)
        sys_tree(root, "intel_rapl0_grep_permission_denied.txt")
        code = (
            "from pathlib import Path; from suite.sensors.local import LocalSampler; "
            f"print(LocalSampler(sys_root=Path({str(root)!r}), use_nvml=False).availability()['power_w/rapl'])"
        )
        out = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout.strip()
        assert out == f"permission denied reading {root}/class/powercap/intel-rapl:0/energy_uj"
    finally:
        shutil.rmtree(root)


def test_pid_file_rss_follows_each_invocation_and_never_a_launcher(tmp_path):
    """A native runtime's invocations write their pid as they start: the RSS source reads whichever
    process the file names, skips the `sh -c` before it execs the program, keeps the largest VmHWM."""
    from suite.core.schema import CH_RSS_BYTES
    from suite.sensors.sources import PidFileRss

    proc, pid_file = tmp_path / "proc", tmp_path / "llama.cpp.pid"

    def process(pid: int, name: str, rss_kb: int, hwm_kb: int) -> None:
        (proc / str(pid)).mkdir(parents=True, exist_ok=True)
        (proc / str(pid) / "status").write_text(f"Name:\t{name}\nVmHWM:\t{hwm_kb} kB\nVmRSS:\t{rss_kb} kB\n")
        pid_file.write_text(f"{pid}\n")

    src = PidFileRss(pid_file, proc)
    assert src.probe() is None and src.read() == []  # no invocation yet
    process(41, "sh", 900, 900)
    assert src.read() == []  # the launcher, not llama-bench yet
    process(41, "llama-bench", 20_000, 30_000)
    assert src.read() == [(CH_RSS_BYTES, 20_000 * 1024.0)]
    process(57, "llama-bench", 10_000, 12_000)  # the next invocation: a new pid
    assert src.read() == [(CH_RSS_BYTES, 10_000 * 1024.0)]
    assert src.peak_hwm_bytes == 30_000 * 1024
    pid_file.write_text("99\n")  # gone
    assert src.read() == []
