"""Idle baseline, external meter and charge-counter cross-check inside runs (issue 6):
units on hand-made traces, then real runs (local, and the loopback phone over the real adb
server, whose power model draws more while the runtime works)."""

import json
import time

import pandas as pd
import pytest
from loopback_plugin import phone_ref

from suite.analysis import energy
from suite.analysis.metrics import intervals_from_samples
from suite.core.schema import CH_CURRENT_A, CH_POWER_W, CH_POWER_W_DEVICE, ch_phase
from suite.runtimes import BurstParams
from suite.sensors import power
from suite.session.local import RunRequest, attach_meter
from suite.session.run import run_local
from suite.store import load_results

#: an epoch (2023-11-14) for hand-made logs
E = 1_700_000_000.0


def _rows_with_phases():
    # idle [0, 2] at 1 W; prefill [3, 4] and decode [4, 8] at 3 W; samples every 0.1 s
    rows = [(t / 10, CH_POWER_W, 1.0 if t <= 25 else 3.0) for t in range(0, 91)]
    for ph, (a, b) in {"idle": (0.0, 2.0), "prefill": (3.0, 4.0), "decode": (4.0, 8.0)}.items():
        rows += [(a, ch_phase(ph), 1.0), (b, ch_phase(ph), 0.0)]
    return pd.DataFrame(rows, columns=["t_s", "channel", "value"])


def test_idle_metrics_subtract_the_baseline_per_phase():
    df = _rows_with_phases()
    phases = {"energy_j/prefill": {"value": 3.0}, "energy_j/decode": {"value": 12.0}, "power_w/avg": {"value": 3.0}}
    m, missing = energy.idle_metrics(df, phases, {"prefill": 16, "decode": 40})
    assert m["power_w/idle"]["value"] == pytest.approx(1.0)
    # decode 12 J over 4 s, idle 1 W x 4 s = 4 J: 8 J above idle, 0.2 J per token
    assert m["energy_j/decode_above_idle"]["value"] == pytest.approx(8.0)
    assert m["j_per_token/decode_above_idle"]["value"] == pytest.approx(0.2)
    assert m["energy_j/prefill_above_idle"]["value"] == pytest.approx(2.0)
    assert m["j_per_token/prefill_above_idle"]["value"] == pytest.approx(2.0 / 16)
    assert m["power_w/avg_above_idle"]["value"] == pytest.approx(2.0)
    assert missing == {}
    assert m["power_w/idle"]["unit"] == "W" and m["j_per_token/decode_above_idle"]["unit"] == "J/tok"


def test_idle_metrics_say_why_when_there_is_no_baseline():
    df = _rows_with_phases()
    no_idle = df[~df["channel"].eq(ch_phase("idle"))]
    m, missing = energy.idle_metrics(no_idle, {}, {"prefill": 1, "decode": 1})
    assert m == {} and set(missing) == set(energy.IDLE_METRICS)
    assert missing["power_w/idle"] == energy.NO_IDLE_REASON
    # an idle window without power samples in it: a reason, never 0
    shifted = df.copy()
    shifted.loc[shifted["channel"] == CH_POWER_W, "t_s"] += 50
    _, missing = energy.idle_metrics(shifted, {}, {"prefill": 1, "decode": 1})
    assert "no power sample inside the idle window" in missing["power_w/idle"]


def _meter_csv(path, t_host, watts):
    path.write_text("timestamp,power_w\n" + "".join(f"{t:.3f},{w}\n" for t, w in zip(t_host, watts, strict=True)))
    return path


def test_apply_meter_aligns_host_time_to_the_device_clock(tmp_path):
    # t_s = 0 is device epoch E; the host's clock runs 0.5 s ahead of the device's
    sensors = {"time_base": power.clock_block(E, 0.5), "available": ["power_w"], "unavailable": {}}
    rows = [(0.0, CH_POWER_W, 9.0), (5.0, CH_POWER_W, 9.0), (5.0, "temp_c/battery", 30.0)]
    # meter: 1 W until host E+3.5 (= device t_s 3.0), then 4 W; every 0.5 s from host E-1 to E+10
    ts = [E - 1.0 + k * 0.5 for k in range(23)]
    trace = power.load_meter_csv(_meter_csv(tmp_path / "m.csv", ts, [1.0 if t < E + 3.5 else 4.0 for t in ts]))
    applied = power.apply_meter(rows, trace, sensors=sensors, power_source="battery_fuel_gauge")
    out = applied.rows
    meter = sorted((t, v) for t, ch, v in out if ch == CH_POWER_W)
    assert meter[0][0] == pytest.approx(-1.0)  # host E-1.0 -> device E-1.5 -> t_s -1.5 is outside the margin
    assert (3.0, 4.0) in [(round(t, 6), v) for t, v in meter] and (2.5, 1.0) in [(round(t, 6), v) for t, v in meter]
    assert max(t for t, _ in meter) <= 6.0  # run ends at 5.0 s, 1 s margin
    assert [(t, v) for t, ch, v in out if ch == CH_POWER_W_DEVICE] == [(0.0, 9.0), (5.0, 9.0)]
    assert applied.power_source == power.SOURCE_METER
    assert applied.block["device_power_source"] == "battery_fuel_gauge"
    assert applied.sensors["available"] == [CH_POWER_W, CH_POWER_W_DEVICE]
    assert sensors["available"] == ["power_w"]  # the caller's block is not edited
    # a meter offset (meter clock minus host clock) shifts the other way
    out2 = power.apply_meter(rows, trace, sensors=sensors, power_source=None, offset_s=1.0).rows
    assert (2.0, 4.0) in [(round(t, 6), v) for t, ch, v in out2 if ch == CH_POWER_W]


def test_apply_meter_moves_the_phones_power_reason_into_its_block(tmp_path):
    sensors = {"time_base": power.clock_block(E), "available": [], "unavailable": {CH_POWER_W: "charging: USB"}}
    trace = power.load_meter_csv(_meter_csv(tmp_path / "m.csv", [E + k for k in range(6)], [2.0] * 6))
    applied = power.apply_meter([(0.0, "temp_c/battery", 30.0), (4.0, "temp_c/battery", 30.0)], trace,
                                sensors=sensors, power_source=None)
    assert applied.sensors["unavailable"] == {} and applied.sensors["available"] == [CH_POWER_W]
    assert applied.block["device_power_unavailable"] == "charging: USB"


def test_apply_meter_refuses_a_log_from_another_time(tmp_path):
    sensors = {"time_base": power.clock_block(E)}
    trace = power.load_meter_csv(_meter_csv(tmp_path / "m.csv", [E + 5000.0, E + 5001.0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="fewer than 2 samples inside the run"):
        power.apply_meter([(0.0, CH_POWER_W, 1.0), (4.0, CH_POWER_W, 1.0)], trace, sensors=sensors, power_source=None)
    with pytest.raises(ValueError, match="no time base"):
        power.apply_meter([], trace, sensors={}, power_source=None)


def test_charge_counter_summary_withholds_a_ratio_the_counter_cannot_resolve():
    rows = [(float(t), CH_CURRENT_A, 0.36) for t in range(0, 101, 10)]  # 10 mAh in 100 s
    ok = energy.charge_counter_summary(rows, {"charge_counter": 5_000_000}, {"charge_counter": 4_990_000}, 100.0)
    assert ok["ratio"] == pytest.approx(1.0) and "note" not in ok
    off = energy.charge_counter_summary(rows, {"charge_counter": 5_000_000}, {"charge_counter": 4_970_000}, 100.0)
    assert off["ratio"] == pytest.approx(1 / 3) and "disagree" in off["note"]
    short = energy.charge_counter_summary(rows[:2], {"charge_counter": 5_000_000}, {"charge_counter": 4_999_000}, 10.0)
    assert short["ratio"] is None and "resolution" in short["note"]
    assert energy.charge_counter_summary(rows, {}, {}, 100.0) is None


# --- a real local run, then a meter log attached after the fact -----------------------------


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def test_meter_log_attached_to_a_local_run_supersedes_it(models_dir, tmp_path):
    params = BurstParams(prompt_tokens=16, gen_tokens=8, reps=2, warmup=0, threads=1)
    t_start = time.time()
    path = run_local(RunRequest(model_id="tiny", params=params, models_dir=models_dir, results_dir=tmp_path,
                                probe=False))
    rec = json.loads((path / "run.json").read_text())
    clock = rec["sensors"]["time_base"]
    assert abs(clock["t0_epoch_s"] - t_start) < 30 and clock["host_minus_device_s"] == 0.0
    # a meter logging a constant 2.5 W at 20 Hz around the run, on this host's clock
    ts = [t_start - 5 + k * 0.05 for k in range(int((time.time() - t_start + 10) / 0.05))]
    log = _meter_csv(tmp_path / "meter.csv", ts, [2.5] * len(ts))
    new = attach_meter(path, log)
    res = load_results([tmp_path])
    assert [r["run_id"] for r in res.records] == [new.name] and res.superseded == [path.name]
    m = json.loads((new / "run.json").read_text())
    assert m["supersedes"] == rec["run_id"] and m["conditions"]["power_source"] == "external_meter"
    assert m["power_meter"]["rows_in_run"] > 10 and m["power_meter"]["rate_hz"] == pytest.approx(20.0, rel=0.01)
    samples = pd.read_parquet(new / "samples.parquet")
    decode = intervals_from_samples(samples, "decode")
    decode_s = sum(b - a for a, b in decode)
    assert m["metrics"]["power_w/avg"]["value"] == pytest.approx(2.5)
    assert m["metrics"]["energy_j/decode"]["value"] == pytest.approx(2.5 * decode_s, rel=1e-6)
    assert m["metrics"]["j_per_token/decode"]["value"] == pytest.approx(2.5 * decode_s / (7 * 2), rel=1e-6)
    # the throughput figures are the original measurement's
    assert m["metrics"]["decode_tps"] == rec["metrics"]["decode_tps"]
    # no idle window was asked for: a reason, not a number
    assert m["unavailable"]["power_w/idle"] == energy.NO_IDLE_REASON
    # the original run is untouched (append-only)
    assert json.loads((path / "run.json").read_text()) == rec


def test_a_meter_log_from_another_day_is_a_clear_error(models_dir, tmp_path):
    from suite.core.errors import EdgebenchError

    params = BurstParams(prompt_tokens=8, gen_tokens=4, reps=1, warmup=0, threads=1)
    path = run_local(RunRequest(model_id="tiny", params=params, models_dir=models_dir, results_dir=tmp_path,
                                probe=False))
    log = _meter_csv(tmp_path / "old.csv", [1.6e9, 1.6e9 + 1], [1.0, 1.0])
    with pytest.raises(EdgebenchError, match="fewer than 2 samples inside the run"):
        attach_meter(path, log)
    assert len(load_results([tmp_path]).records) == 1


# --- on the loopback phone ----------------------------------------------------------------------


@pytest.mark.loopback
def test_phone_run_measures_an_idle_baseline_and_takes_a_meter_log(loopback_phone_factory, loopback_adb_server,
                                                                   models_dir, tmp_path):
    from suite.session.run import run_device

    ref = phone_ref(loopback_phone_factory("qcom-flagship", charging=False))
    params = BurstParams(prompt_tokens=16, gen_tokens=16, reps=2, warmup=1, threads=1)
    req = RunRequest(model_id="tiny", device="phone", params=params, models_dir=models_dir, results_dir=tmp_path,
                     probe=False, idle_s=2.0)
    rec = json.loads((run_device(ref, req) / "run.json").read_text())
    m = rec["metrics"]
    assert rec["outcome"] == "completed", rec["errors"]
    samples = load_results([tmp_path]).samples()
    (idle,) = intervals_from_samples(samples, "idle")
    assert 2.0 <= idle[1] - idle[0] < 3.0
    (first_prefill, *_) = intervals_from_samples(samples, "prefill")
    assert idle[1] <= first_prefill[0]  # the baseline is taken before the model loads
    # the phone's power model draws more while the runtime works than at idle
    assert 0 < m["power_w/idle"]["value"] < m["power_w/avg"]["value"]
    decode_s = sum(b - a for a, b in intervals_from_samples(samples, "decode"))
    assert m["energy_j/decode_above_idle"]["value"] == pytest.approx(
        m["energy_j/decode"]["value"] - m["power_w/idle"]["value"] * decode_s, rel=1e-6)
    assert 0 < m["j_per_token/decode_above_idle"]["value"] < m["j_per_token/decode"]["value"]
    # the device and host clocks are both real time here: they agree to a round trip
    assert abs(rec["sensors"]["time_base"]["host_minus_device_s"]) < 1.0
    # the fuel gauge's coulomb counter is read; a run of seconds is too short to judge it
    cc = rec["sensors"]["charge_counter_check"]
    assert cc["counted_uah"] is not None and cc["ratio"] is None and "resolution" in cc["note"]

    # the same phone with a meter logging 4.0 W on the host: the meter's power is the run's
    t = time.time()
    ts = [t - 5 + k * 0.1 for k in range(1200)]
    log = _meter_csv(tmp_path / "meter.csv", ts, [4.0] * len(ts))
    metered = run_device(ref, RunRequest(**{**req.__dict__, "power_meter": log, "results_dir": tmp_path / "m"}))
    mm = json.loads((metered / "run.json").read_text())
    assert mm["conditions"]["power_source"] == "external_meter"
    assert mm["metrics"]["power_w/idle"]["value"] == pytest.approx(4.0)
    assert mm["metrics"]["power_w/avg_above_idle"]["value"] == pytest.approx(0.0, abs=1e-9)
    s2 = pd.read_parquet(metered / "samples.parquet")
    assert (s2["channel"] == CH_POWER_W_DEVICE).any()  # the phone's own reading is kept beside it
