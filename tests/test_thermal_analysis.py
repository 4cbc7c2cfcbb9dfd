"""suite.analysis.throttling: throttling evidence and the sustained summary, with hand-derived values."""

from __future__ import annotations

import pytest

from suite.analysis.throttling import detect_throttling, sustained_summary, window_rows, windows_from_samples
from suite.core.schema import CH_DECODE_TPS_WINDOW, CH_THERMAL_STATUS, ch_cpufreq_max, ch_temp_tz

# windows every 60 s: 10, 10.5, 9.6, 8.9, 7.0, 7.2 tok/s
WINDOWS = [(60.0, 10.0), (120.0, 10.5), (180.0, 9.6), (240.0, 8.9), (300.0, 7.0), (360.0, 7.2)]


def test_sustained_summary_by_hand():
    s = sustained_summary(WINDOWS)
    assert s["n_windows"] == 6
    assert s["initial_tps"] == 10.0  # the median of 10, 10.5, 9.6
    assert s["best_tps"] == 10.5 and s["worst_tps"] == 7.0
    # stability = 100 x worst / best = 100 x 7.0 / 10.5 = 66.666...%
    assert s["stability_pct"] == pytest.approx(200 / 3)
    # 90% of the initial 10.0 is 9.0: 9.6 is not under it; 8.9, 7.0, 7.2 (t=240..360) are three in a row
    assert s["time_to_throttle_s"] == 240.0
    # the same drop cut short by the end of the run is not a persistent one
    assert sustained_summary(WINDOWS[:5])["time_to_throttle_s"] is None


def test_one_slow_window_is_noise_not_a_throttle():
    # issue 15: 80 ms windows of a tiny model on a busy host; single slow windows (a scheduler
    # hiccup) must not read as throttling, a drop that persists for 3 windows does
    noisy = [(0.1 * i, 800.0) for i in range(1, 40)]
    noisy[1] = (0.2, 300.0)
    noisy[7] = (0.8, 400.0)
    noisy[8] = (0.9, 500.0)  # two in a row: still noise
    s = sustained_summary(noisy)
    assert s["time_to_throttle_s"] is None
    assert s["stability_pct"] == pytest.approx(100 * 300 / 800)
    drop = noisy[:20] + [(0.1 * i, 700.0) for i in range(21, 24)] + noisy[23:]
    assert sustained_summary(drop)["time_to_throttle_s"] == pytest.approx(2.1)


def test_sustained_summary_no_throttle_and_empty():
    s = sustained_summary([(10.0, 5.0), (20.0, 4.6), (30.0, 5.2)])
    assert s["time_to_throttle_s"] is None  # 4.6 >= 0.9 * 5.0 = 4.5
    assert s["stability_pct"] == pytest.approx(100 * 4.6 / 5.2)
    e = sustained_summary([])
    assert e["stability_pct"] is None and e["time_to_throttle_s"] is None and e["n_windows"] == 0


def _samples():
    rows = []
    for t, cap0, cap6, st, temp in [(0, 2000000, 2200000, 0, 30.0), (1, 2000000, 2200000, 0, 36.5),
                                    (2, 1700000, 1870000, 1, 38.2), (3, 1300000, 1430000, 2, 40.1),
                                    (4, 1700000, 1870000, 1, 39.0)]:
        rows += [(float(t), ch_cpufreq_max("policy0"), float(cap0)), (float(t), ch_cpufreq_max("policy6"), float(cap6)),
                 (float(t), CH_THERMAL_STATUS, float(st)), (float(t), ch_temp_tz("skin"), temp)]
    return rows


def test_detect_throttling_caps_and_status():
    ev = detect_throttling(_samples(), cpuinfo_max_khz={"policy0": 2000000, "policy6": 2200000})
    assert ev.throttled
    text = "\n".join(ev.evidence)
    # policy6 fell 2200000 -> 1430000 = 65% of 2200000, at t=3
    assert "policy6: scaling_max_freq fell from 2200000 to 1430000 kHz (65% of 2200000 kHz) at t=3.0 s" in text
    assert "policy0: scaling_max_freq fell from 2000000 to 1300000 kHz (65% of 2000000 kHz)" in text
    assert "thermal status reached 2 (MODERATE); first above 0 (NONE) at t=2.0 s" in text
    s = sustained_summary(WINDOWS, _samples())
    assert s["peak_temp_c"] == 40.1 and s["peak_temp_channel"] == "temp_c/tz/skin"
    assert s["max_thermal_status"] == 2
    assert s["min_freq_cap_khz"] == {"policy0": 1300000, "policy6": 1430000}


def test_no_throttling_and_vendor_cap_is_not_throttling():
    rows = [(float(t), ch_cpufreq_max("policy7"), 2800000.0) for t in range(5)]
    rows += [(float(t), CH_THERMAL_STATUS, 0.0) for t in range(5)]
    ev = detect_throttling(rows, cpuinfo_max_khz={"policy7": 3187200})
    assert not ev.throttled and ev.evidence == []
    assert ev.notes and "vendor cap" in ev.notes[0]
    # a throughput drop alone (no cap fell, status stayed NONE) is noted, not called throttling:
    # on a shared host a slow window is as likely contention as heat
    ev2 = detect_throttling(rows, window_tps=WINDOWS)
    assert not ev2.throttled and ev2.evidence == []
    assert any("8.9 tok/s at t=240.0 s is under 90% of the initial 10 tok/s for 3 windows" in n for n in ev2.notes)
    # with a cap that fell, the same drop is evidence too
    capped = rows + [(5.0, ch_cpufreq_max("policy7"), 1400000.0)]
    ev3 = detect_throttling(capped, cpuinfo_max_khz={"policy7": 3187200}, window_tps=WINDOWS)
    assert ev3.throttled and any("8.9 tok/s" in e for e in ev3.evidence)


def test_window_rows_round_trip():
    rows = window_rows(WINDOWS)
    assert rows[0] == (60.0, CH_DECODE_TPS_WINDOW, 10.0)
    assert windows_from_samples(rows) == WINDOWS
