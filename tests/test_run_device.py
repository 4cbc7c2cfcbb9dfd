"""`edgebench run` on a phone, end to end: the real adb server, a loopback phone whose
sensors, heat and memory limit act for real, the device-side runner, the on-device sampler."""

import json
import threading

import pytest
from loopback_plugin import phone_ref

from suite.core.errors import EdgebenchError
from suite.runtimes import BurstParams
from suite.session.local import RunRequest
from suite.session.run import run_device
from suite.store import load_results

pytestmark = pytest.mark.loopback


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")



def request(models_dir, results, model="tiny", **params):
    p = dict(prompt_tokens=16, gen_tokens=8, reps=2, warmup=1, threads=1) | params
    return RunRequest(model_id=model, device="phone", params=BurstParams(**p), models_dir=models_dir,
                      results_dir=results, probe=False, sample_rate_hz=10.0)


def test_run_on_a_phone_records_throughput_power_and_temperatures(loopback_phone_factory, loopback_adb_server,
                                                                    models_dir, tmp_path):
    phone = loopback_phone_factory("qcom-flagship", charging=False)
    path = run_device(phone_ref(phone), request(models_dir, tmp_path))
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed"
    dev = rec["device"]
    assert dev["simulated"] is True and dev["transport"] == "adb" and dev["soc_model"] == "SM8550"
    assert dev["tier"] == "flagship"
    m = rec["metrics"]
    assert m["prefill_tps"]["n"] == 2 and m["decode_tps"]["value"] > 0
    assert "power_w/avg" in m, rec["unavailable"].get("power_w/avg")  # discharging: power is real
    assert m["power_w/avg"]["value"] > 0 and m["energy_j/decode"]["value"] > 0
    assert 15 < m["temp_c/max"]["value"] < 120
    assert m["peak_rss_bytes"]["value"] > 20e6  # the runner process (Python + onnxruntime)
    assert rec["conditions"]["charging"] is False and rec["conditions"]["battery_level_start"] is not None
    assert rec["provisioning"]["pushed"]  # first run pushed the model and the runner
    s = load_results([path]).samples()
    channels = set(s["channel"])
    assert {"power_w", "phase/prefill", "phase/decode"} <= channels
    assert any(c.startswith("temp_c/") for c in channels)
    # phases and samples share the device clock: power samples cover the decode phases
    decode = s[s["channel"] == "phase/decode"]["t_s"]
    power = s[s["channel"] == "power_w"]["t_s"]
    assert power.min() <= decode.min() and power.max() >= decode.max()

    # a second run is a provisioning cache hit
    again = json.loads((run_device(phone_ref(phone), request(models_dir, tmp_path)) / "run.json")
                       .read_text())
    assert again["provisioning"]["pushed"] == [] and again["provisioning"]["cached"]
    # the first run after the push is cold and never pools with the warm one; the second is warm
    from suite.analysis.pooling import pool_key

    assert rec["conditions"]["cold"]["pushed"] and "cold" not in again["conditions"]
    assert pool_key(rec).condition == "cold" and pool_key(again).condition is None
    assert pool_key(rec) != pool_key(again) and pool_key(again) == pool_key(again | {"run_id": "x"})
    # a cool phone at rest: the measured phases ran unthrottled
    assert again["throttling"]["throttled"] is False and again["throttling"]["evidence"] == []


def test_charging_phone_reports_power_unavailable(loopback_phone_factory, loopback_adb_server, models_dir, tmp_path):
    phone = loopback_phone_factory("qcom-flagship", charging=True)
    rec = json.loads((run_device(phone_ref(phone), request(models_dir, tmp_path)) / "run.json")
                     .read_text())
    assert rec["outcome"] == "completed"
    assert "power_w/avg" not in rec["metrics"]
    assert "charging" in rec["unavailable"]["power_w/avg"]
    assert rec["conditions"]["charging"] is True


def test_model_larger_than_the_phone_is_oom_not_a_crash(loopback_phone_factory, loopback_adb_server, models_dir,
                                                         tmp_path):
    # qwen2.5-0.5b needs ~600 MB resident; this phone has 256 MiB: the memory limit kills it
    phone = loopback_phone_factory("galaxy-a15", ram_bytes=256 << 20)
    with pytest.raises(EdgebenchError, match="oom"):
        run_device(phone_ref(phone), request(models_dir, tmp_path, model="qwen2.5-0.5b"))
    (rec,) = load_results([tmp_path]).records
    assert rec["outcome"] == "oom" and "does not fit" in rec["errors"][-1]["message"]


def test_unplugged_mid_run_keeps_partial_results(loopback_phone_factory, loopback_adb_server, models_dir, tmp_path):
    phone = loopback_phone_factory("qcom-flagship", charging=False)
    reps_seen = []

    def on_rep(i, total, rep):
        reps_seen.append(i)
        if i == 1:  # after the first measured repetition: pull the cable
            threading.Thread(target=phone.kill).start()

    with pytest.raises(EdgebenchError, match="disconnected"):
        run_device(phone_ref(phone), request(models_dir, tmp_path, reps=200), on_rep=on_rep)
    (rec,) = load_results([tmp_path]).records
    assert rec["outcome"] == "disconnected"
    assert rec["metrics"]["decode_tps"]["n"] >= 1  # the repetition that finished is kept
    samples = load_results([tmp_path]).samples()
    assert len(samples[samples["channel"] == "power_w"]) > 0  # the samples so far are kept


def test_decode_slows_after_the_phone_throttles(loopback_phone_factory, loopback_adb_server, models_dir, tmp_path):
    # The phone starts warm (ambient 36 degC: severity 1, a cap that does not bite) with its thermal story in real time, so setting
    # up and the first repetitions run unthrottled. Then the story plays 200x faster: the
    # sustained decode heats the skin past the captured thresholds, the governor caps the
    # frequency, the cap becomes a cgroup CPU quota, and the model really decodes slower.
    phone = loopback_phone_factory("qcom-flagship", charging=False, time_scale=1, ambient_c=36)

    def on_rep(i, total, rep):
        if i == 4:
            phone.set_time_scale(200)

    req = request(models_dir, tmp_path, model="smollm2-135m", gen_tokens=24, reps=30, warmup=1)
    rec = json.loads((run_device(phone_ref(phone), req, on_rep=on_rep) / "run.json").read_text())
    tps = rec["metrics"]["decode_tps"]["samples"]
    # the governor releases the cap as the skin cools, so late repetitions oscillate: the
    # slowest of the last ten is what the cap does
    first, last = sorted(tps[:3])[1], min(tps[-10:])
    s = load_results([tmp_path]).samples()
    caps = s[s["channel"].str.startswith("cpufreq_max_khz/")]
    # the governor lowered scaling_max_freq to at most 65% (severity >= 2) at some point
    assert caps["value"].min() <= 0.7 * caps["value"].max(), "the phone never throttled"
    assert last < 0.8 * first, f"decode did not slow down after the trip: first {first:.1f}, last {last:.1f} tok/s"
    assert rec["metrics"]["temp_c/max"]["value"] > rec["conditions"]["battery_temp_c_start"]
    # every run says whether its measured phases ran throttled (not only the sustained scenario), and a
    # throttled run never pools silently with the rest
    from suite.analysis.pooling import pool_key

    th = rec["throttling"]
    assert th["throttled"] is True and any("scaling_max_freq fell" in e for e in th["evidence"]), th
    assert "throttled" in pool_key(rec).condition


def test_llama_cpp_runs_inside_the_phone_into_the_same_schema(loopback_phone_factory, loopback_adb_server,
                                                              models_dir, tmp_path):
    phone = loopback_phone_factory("qcom-flagship", charging=False)
    req = request(models_dir, tmp_path)
    req.runtime = "llama-cpp-python"
    rec = json.loads((run_device(phone_ref(phone), req) / "run.json").read_text())
    assert rec["outcome"] == "completed"
    assert rec["runtime"]["name"] == "llama-cpp-python" and rec["model"]["format"] == "gguf"
    m = rec["metrics"]
    assert m["prefill_tps"]["n"] == 2 and m["decode_tps"]["value"] > 0 and m["ttft_s"]["value"] > 0
    assert m["power_w/avg"]["value"] > 0 and "temp_c/max" in m
