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


def _phase_rows(spans):
    rows = []
    for ph, (a, b) in spans:
        rows += [(a, f"phase/{ph}", 1.0), (b, f"phase/{ph}", 0.0)]
    return rows


def test_a_cap_that_falls_more_than_15_percent_in_a_measured_phase_marks_any_run_throttled():
    from suite.analysis.throttling import phase_throttling

    spans = [("prefill", (2.0, 3.0)), ("decode", (3.0, 6.0))]
    # policy0: 2 000 000 at the start, 1 800 000 in decode (-10%: a governor's wobble, not throttling);
    # policy6: 3 000 000, then 2 400 000 in decode (-20%); after the run (t=8) it falls further: not counted
    rows = _phase_rows(spans)
    for t, c0, c6 in [(1.0, 2.0e6, 3.0e6), (2.5, 2.0e6, 3.0e6), (4.0, 1.8e6, 2.4e6), (8.0, 1.0e6, 1.0e6)]:
        rows += [(t, ch_cpufreq_max("policy0"), c0), (t, ch_cpufreq_max("policy6"), c6)]
    block = phase_throttling(rows, cpuinfo_max_khz={"policy0": 2000000, "policy6": 3000000})
    assert block["throttled"] is True
    assert block["evidence"] == ["policy6: scaling_max_freq fell from 3000000 to 2400000 kHz (-20%) during a "
                                 "measured phase, at t=4.0 s"]
    assert block["caps_below_max_at_start"] == {}
    # a cap held below the hardware maximum from before the run (charging): a condition, not throttling
    held = [r for r in rows if not r[1].startswith("cpufreq")] + [
        (t, ch_cpufreq_max("policy6"), 2.2e6) for t in (1.0, 4.0, 5.0)]
    block = phase_throttling(held, cpuinfo_max_khz={"policy6": 3000000})
    assert block["throttled"] is False and block["evidence"] == []
    assert block["caps_below_max_at_start"] == {"policy6": {"cap_khz": 2200000, "hardware_max_khz": 3000000}}
    # a thermal status above NONE inside a measured phase throttles; before the phases it does not
    status = _phase_rows(spans) + [(0.5, CH_THERMAL_STATUS, 2.0), (1.0, CH_THERMAL_STATUS, 0.0),
                                   (3.5, CH_THERMAL_STATUS, 0.0)]
    assert phase_throttling(status)["throttled"] is False
    status.append((5.0, CH_THERMAL_STATUS, 1.0))
    assert phase_throttling(status)["evidence"] == ["thermal status 1 (LIGHT) during a measured phase"]
    # no phase at all: nothing to judge, not "not throttled"
    assert phase_throttling([(1.0, CH_THERMAL_STATUS, 0.0)])["throttled"] is None


def test_where_the_engine_could_run_against_the_mask_and_the_clusters():
    from suite.analysis.affinity import affinity_check, parse_cpu_list

    assert parse_cpu_list("0-3,6") == {0, 1, 2, 3, 6} and parse_cpu_list("7") == {7}
    clusters = [{"policy": "policy0", "cpus": [0, 1, 2, 3], "max_khz": 1800000},
                {"policy": "policy4", "cpus": [4, 5, 6], "max_khz": 2400000},
                {"policy": "policy7", "cpus": [7], "max_khz": 3200000}]
    # pinned to the prime core as asked
    assert affinity_check({"7": 40}, [7], clusters) == {"allowed": ["7"], "matches_asked": True}
    # taskset did not apply: the engine could run anywhere, across three clusters
    out = affinity_check({"0-7": 12}, [7], clusters)
    assert out["matches_asked"] is False
    assert out["spans_clusters"].startswith("the engine could run on cpus 0-7, across clusters of 1.80 GHz, "
                                            "2.40 GHz, 3.20 GHz")
    # performance + prime: the mask of the phone (105.6 -> 15.0 tok/s)
    assert "2.40 GHz, 3.20 GHz" in affinity_check({"4-7": 3}, [4, 5, 6, 7], clusters)["spans_clusters"]
    assert affinity_check({}, [7], clusters) == {} and affinity_check(None, None, None) == {}
    assert affinity_check({"garbage": 1}, None, clusters) == {"allowed": ["garbage"]}


def test_the_report_marks_the_throttle_point_where_the_record_puts_it():
    import numpy as np

    from suite.report.charts import throttle_point

    t = np.array([w[0] for w in WINDOWS])
    v = np.array([w[1] for w in WINDOWS])
    assert throttle_point(t, v) == sustained_summary(WINDOWS)["time_to_throttle_s"] == 240.0
    # one slow window is not where it throttles (the chart once marked the first window under 90% of the first)
    blip = np.array([10.0, 8.5, 10.2, 10.1, 9.9, 10.0])
    assert throttle_point(np.arange(6.0), blip) is None
