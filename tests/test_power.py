"""suite.sensors.power: source selection, charging confound, meter CSV import, idle baseline."""

from __future__ import annotations

import pytest

from suite.analysis.energy import above_baseline, idle_baseline, power_summary
from suite.core.schema import CH_POWER_W
from suite.sensors.power import (
    SOURCE_BATTERY,
    SOURCE_METER,
    SOURCE_ODPM,
    align_meter,
    charging_reason,
    is_wifi_adb,
    load_meter_csv,
    select_power_source,
)


def test_charging_confound_rules():
    assert charging_reason("Discharging") is None
    assert charging_reason(3) is None  # BatteryManager 3 = discharging
    for st in ("Charging", 2, "Full", "Not charging"):
        r = charging_reason(st)
        assert r is not None and r.startswith("charging: "), (st, r)
    assert "battery idle" in charging_reason("Not charging")  # Pixel 3a: USB powered, charging disabled
    r = charging_reason("Discharging", plugged=("usb",))
    assert r.startswith("charging: ") and "adb tcpip" in r
    # a charge-control node that cuts the input: Discharging while plugged is valid
    assert charging_reason("Discharging", plugged=("usb",), charge_control=True) is None
    # ... but battery idle (Not charging) is still not device power
    assert charging_reason("Not charging", plugged=("usb",), charge_control=True).startswith("charging: ")
    assert charging_reason("Charging", external_meter=True) is None
    assert charging_reason(None).startswith("charging: ")


def test_select_power_source():
    assert select_power_source(battery_ok=True, status="Discharging") == (SOURCE_BATTERY, None)
    # charging: ODPM rails are not confounded by the charger
    assert select_power_source(battery_ok=True, odpm_ok=True, status="Charging") == (SOURCE_ODPM, None)
    src, why = select_power_source(battery_ok=True, status="Charging")
    assert src == SOURCE_BATTERY and why.startswith("charging: ")
    assert select_power_source(battery_ok=True, odpm_ok=True, status="Discharging", prefer=SOURCE_ODPM)[0] == SOURCE_ODPM
    assert select_power_source(battery_ok=False, external_meter=True) == (SOURCE_METER, None)
    src, why = select_power_source(battery_ok=False, battery_reason="permission denied", odpm_reason="no ODPM")
    assert src is None and why == "permission denied; no ODPM"
    with pytest.raises(ValueError):
        select_power_source(battery_ok=True, prefer="nvml")


def test_is_wifi_adb():
    assert is_wifi_adb("192.168.1.7:5555") and is_wifi_adb("127.0.0.1:40123")
    assert not is_wifi_adb("R58N12ABCDE") and not is_wifi_adb("emulator-5554")


def test_meter_csv_watts_and_volts_amps(tmp_path):
    w = tmp_path / "w.csv"
    w.write_text("# meter log\ntimestamp,power_w\n1700000000.0,2.0\n1700000001.0,4.0\n1700000002.0,4.0\n")
    tr = load_meter_csv(w)
    assert list(tr.watts) == [2.0, 4.0, 4.0]
    # aligned to a run that started at 1700000000.5 on a device clock 0.25 s ahead of the meter
    rows = align_meter(tr, 1700000000.5, offset_s=0.25)
    assert rows[0] == (pytest.approx(-0.25), CH_POWER_W, 2.0)
    va = tmp_path / "va.csv"
    va.write_text("time_s,volts,current_ma\n0,4.0,500\n0.5,4.0,750\n")
    tr2 = load_meter_csv(va, start_epoch_s=1700000000.0)
    assert list(tr2.watts) == [2.0, 3.0]  # 4.0 V x 0.5 A, 4.0 V x 0.75 A
    assert tr2.t_epoch_s[1] == 1700000000.5
    iso = tmp_path / "iso.csv"
    iso.write_text("time,watts\n2023-11-14T22:13:20Z,1.5\n")
    assert load_meter_csv(iso).t_epoch_s[0] == 1700000000.0
    with pytest.raises(ValueError, match="relative"):
        load_meter_csv(va)
    bad = tmp_path / "bad.csv"
    bad.write_text("time,foo\n1,2\n")
    with pytest.raises(ValueError, match="watts"):
        load_meter_csv(bad)


def _trace():
    # idle 0.5 W for t in [0, 2], then 3.5 W from t=3 on (linear ramp between 2 and 3)
    return [(t / 10, CH_POWER_W, 0.5 if t <= 20 else 3.5 if t >= 30 else 0.5 + 3.0 * (t - 20) / 10)
            for t in range(0, 61)]


def test_idle_baseline_and_above_baseline():
    b = idle_baseline(_trace(), (0.0, 2.0))
    assert b.power_w == pytest.approx(0.5) and b.n == 21
    s = power_summary(_trace(), [(3.0, 6.0)], b)
    # 3.5 W for 3 s = 10.5 J; above idle 3 W x 3 s = 9 J
    assert s["energy_j"] == pytest.approx(10.5)
    assert s["energy_above_idle_j"] == pytest.approx(9.0)
    assert s["avg_above_idle_w"] == pytest.approx(3.0)
    # ramp from 2 to 3 s: 0.5 W + triangle 3 W x 1 s / 2 = 2.0 J
    assert power_summary(_trace(), [(2.0, 3.0)])["energy_j"] == pytest.approx(2.0)
    df = above_baseline(_trace(), b.power_w)
    assert df[df["t_s"] == 0.0]["value"].iloc[0] == pytest.approx(0.0)
    assert idle_baseline(_trace(), (100.0, 110.0)) is None


def test_charge_counter_check():
    from suite.analysis.energy import charge_counter_check
    from suite.core.schema import CH_CURRENT_A

    # 0.36 A for 100 s = 36 As = 10 mAh = 10000 uAh drawn; the counter fell 5000000 -> 4990000
    rows = [(float(t), CH_CURRENT_A, 0.36) for t in range(0, 101, 10)]
    r = charge_counter_check(rows, 5_000_000, 4_990_000)
    assert r["integrated_uah"] == pytest.approx(10000.0)
    assert r["counted_uah"] == 10000.0 and r["ratio"] == pytest.approx(1.0)
    assert charge_counter_check([], 1, 0)["ratio"] is None
