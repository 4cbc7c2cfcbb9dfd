"""The sustained and fit scenarios (issue 6) end to end on the loopback phone: its heat really
caps the CPU quota (decode slows), its memory limit really kills a model that does not fit."""

import json

import pytest
from loopback_plugin import phone_ref

from suite.runtimes import BurstParams
from suite.scenarios.fit import run_fit
from suite.scenarios.sustained import run_sustained, window_tps
from suite.session.gating import Gate
from suite.session.local import RunRequest
from suite.store import load_results

pytestmark = pytest.mark.loopback


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")



def request(models_dir, results, model="smollm2-135m", **params):
    p = dict(prompt_tokens=8, gen_tokens=8, reps=1, warmup=1, threads=1) | params
    return RunRequest(model_id=model, device="phone", params=BurstParams(**p), models_dir=models_dir,
                      results_dir=results, probe=False, sample_rate_hz=10.0)


def test_sustained_run_on_a_phone_that_throttles(loopback_phone_factory, loopback_adb_server, models_dir, tmp_path):
    # the thermal story of test_decode_slows_after_the_phone_throttles: warm room (36 degC,
    # severity 1), real time for the first windows, then the story plays 200x faster. Half a core
    # (a cgroup quota) keeps the unthrottled speed independent of the host's other load.
    phone = loopback_phone_factory("qcom-flagship", charging=False, time_scale=1, ambient_c=36, cpu_cores=0.5)

    def on_rep(i, total, rep):
        if i == 6:  # after 3 warmups and 4 windows
            phone.set_time_scale(200)

    # one generation per window (min_window_s=0): the throttle story needs many short windows
    path = run_sustained(phone_ref(phone), request(models_dir, tmp_path, warmup=3), windows=16,
                         window_tokens=32, min_window_s=0, on_rep=on_rep)
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed"
    assert rec["scenario"]["name"] == "sustained"
    assert rec["scenario"]["params"]["windows"] == 16 and rec["scenario"]["params"]["window_tokens"] == 32
    th = rec["thermal"]
    assert th["throttled"] is True
    assert any("scaling_max_freq fell" in e for e in th["evidence"]), th["evidence"]
    m = rec["metrics"]
    # the samples hold one decode_tps_window row per window, the same numbers as the record
    s = load_results([path]).samples()
    w = s[s["channel"] == "decode_tps_window"].sort_values("t_s")
    assert len(w) == 16 == rec["scenario"]["params"]["windows_done"]
    vals = list(w["value"])
    assert m["stability_pct"]["value"] == pytest.approx(100 * min(vals) / max(vals))
    assert m["stability_pct"]["value"] < 80
    # time to throttle agrees with the trace: it is the first of 3 consecutive windows under 90% of
    # the initial, measured from the start of the sustained decode, and it comes no later than the window in
    # which the sampled cap (1 Hz) fell under 80% of its start: the phone's first step (85%)
    # sits at the 90% line and does not always cross it; the next (65%) always does. It can come
    # EARLIER: on this shared 2-core host unthrottled windows vary by ~15% (seen 47, 46, 39, 50
    # tok/s before any cap change).
    start = th["decode_start_t_s"]
    initial = sorted(vals[:3])[1]  # the median of the first three windows (suite.analysis.throttling.initial_tps)
    pairs = list(zip(w["t_s"], vals, strict=True))
    first_slow = next(pairs[i][0] for i in range(1, len(pairs) - 2)
                      if all(v < 0.9 * initial for _, v in pairs[i:i + 3]))
    assert m["time_to_throttle_s"]["value"] == pytest.approx(first_slow - start, abs=1e-3)
    caps = s[s["channel"] == "cpufreq_max_khz/policy0"].sort_values("t_s")
    t_cap = caps[caps["value"] < caps["value"].iloc[0]]["t_s"].min()
    t_deep_cap = caps[caps["value"] < 0.8 * caps["value"].iloc[0]]["t_s"].min()
    window_s = max(b - a for a, b in zip(w["t_s"], list(w["t_s"])[1:], strict=False))
    assert first_slow <= t_deep_cap + window_s + 1.0  # (the cap stays down for many windows)
    # and the cap really slowed decode: windows ending after the cap fell are slower
    before = [v for t, v in zip(w["t_s"], vals, strict=True) if t < t_cap - 1.0]
    after = [v for t, v in zip(w["t_s"], vals, strict=True) if t > t_cap + window_s]
    # (the governor releases the cap as the skin cools, so later windows oscillate: the lower
    # quartile of the windows after the cap is what the cap does, not their median)
    assert before and after and sorted(after)[len(after) // 4] < 0.85 * sorted(before)[len(before) // 2]
    assert th["min_freq_cap_khz"]["policy0"] <= 0.65 * 2016000
    assert m["thermal_status/max"]["value"] >= 2
    assert m["temp_c/max"]["value"] > 45
    assert th["energy_j"] and th["energy_j"] > 0 and th["energy_power_samples"] > 10
    assert rec["metrics"]["energy_j/decode"]["value"] > 0


def test_sustained_run_that_does_not_throttle(loopback_phone_factory, loopback_adb_server, models_dir, tmp_path):
    # a cold room and real time: the skin stays under the first threshold (25 degC) for the run.
    # Half a core (a cgroup quota) keeps the decode speed independent of the host's other load.
    phone = loopback_phone_factory("qcom-flagship", charging=False, time_scale=1, ambient_c=12, cpu_cores=0.5)
    ref = phone_ref(phone)
    said = []
    req = request(models_dir, tmp_path, model="llama-68m")
    req.sample_rate_hz = 2.0
    path = run_sustained(ref, req, windows=4, window_tokens=192, min_window_s=1.0,
                         gate=Gate(cooldown_max_temp_c=35, battery_floor=50, poll_s=0.2), status=said.append)
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed" and rec["scenario"]["name"] == "sustained"
    th = rec["thermal"]
    # no thermal evidence: caps never fell, thermal status stayed NONE
    assert not any("scaling_max_freq" in e or "thermal status" in e for e in th["evidence"]), th["evidence"]
    assert th["min_freq_cap_khz"]["policy0"] == 2016000
    assert rec["metrics"]["thermal_status/max"]["value"] == 0
    assert phone.state()["severity"] == 0
    # no cap fell and the status stayed NONE: not throttled, whatever the windows did
    vals = [v for _, v in th["window_tps"]]
    assert rec["metrics"]["stability_pct"]["value"] == pytest.approx(100 * min(vals) / max(vals))
    assert th["throttled"] is False and th["evidence"] == []
    # four windows of at least 1 s each (the count stopped the runner; generations after it are the tail)
    assert rec["scenario"]["params"]["windows_done"] == 4 == len(th["window_generations"])
    ends = [t for t, _ in th["window_tps"]]
    assert all(b - a >= 1.0 for a, b in zip([th["decode_start_t_s"], *ends], ends, strict=False))
    # the 90% rule on the recorded windows, against the median of the first three, for 3 windows in a
    # row. On this shared 2-core host a window can dip >10% without any heat (seen: 181 vs 207 tok/s):
    # then the notes say the dip was not counted as throttling.
    initial = sorted(vals[:3])[1]
    if not all(v < 0.9 * initial for v in vals[1:4]):
        assert rec["unavailable"]["time_to_throttle_s"].startswith("did not throttle")
    else:
        assert "time_to_throttle_s" in rec["metrics"]
        assert any("not counted as throttling" in n for n in th["notes"])
    # the gates ran and are recorded
    cond = rec["conditions"]
    assert cond["cooldown"]["ok"] and cond["cooldown_waited_s"] >= 0 and cond["battery_floor"]["ok"]
    assert cond["battery_floor"]["start"]["level_pct"] == 80


def test_sustained_by_duration_stops_itself(loopback_phone_factory, loopback_adb_server, models_dir, tmp_path):
    phone = loopback_phone_factory("qcom-flagship", charging=False, ambient_c=12)
    path = run_sustained(phone_ref(phone), request(models_dir, tmp_path, model="tiny"),
                         duration_s=2.0, window_tokens=16, min_window_s=0.5)
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed" and rec["errors"] == []
    assert rec["scenario"]["stopped"]["by"] == "duration"
    n = rec["scenario"]["params"]["windows_done"]
    assert n >= 2 and n == len(rec["thermal"]["window_tps"])
    last_end = rec["thermal"]["window_tps"][-1][0]
    assert last_end - rec["thermal"]["decode_start_t_s"] >= 2.0  # stopped after the window past 2 s
    assert rec["thermal"]["window_tps"][-2][0] - rec["thermal"]["decode_start_t_s"] < 2.0
    # windows of at least 0.5 s: a 16-token generation of `tiny` takes milliseconds, so each window
    # groups many of them (the tokens per window adapt to the model's speed)
    th = rec["thermal"]
    assert n <= 4 and all(g > 1 for g in th["window_generations"])
    assert th["window_tokens"] == [15 * g for g in th["window_generations"]]
    assert rec["scenario"]["params"]["min_window_s"] == 0.5


def test_window_tps_skips_warmup():
    from suite.runtimes.base import Repetition

    reps = [Repetition(True, 0.0, 0.1, 0.2, [0.3, 0.4]),
            Repetition(False, 1.0, 1.1, 1.2, [1.45, 1.7])]
    assert window_tps(reps, 0.5) == [(pytest.approx(1.2), pytest.approx(4.0))]


def test_generations_are_grouped_into_windows_of_a_minimum_duration():
    from suite.runtimes.base import Repetition
    from suite.scenarios.sustained import windows_of

    # a warmup, then generations every 0.8 s of 0.7 s each: first token at +0.1 s, then 3 decoded
    # tokens 0.2 s apart (0.6 s of decode, 3 tokens), then a tail
    reps = [Repetition(True, 0.0, 0.1, 0.2, [0.3, 0.4])]
    for k in range(7):
        t = 1.0 + 0.8 * k
        reps.append(Repetition(False, t, t + 0.05, t + 0.1, [t + 0.3, t + 0.5, t + 0.7]))
    done, tail = windows_of(reps, 2.0)
    # 1.0..3.3 spans 2.3 s (3 generations), 3.4..5.7 the next 3; the 7th (5.8..6.5) is the tail
    assert [(w.generations, w.tokens) for w in done] == [(3, 9), (3, 9)]
    assert done[0].t_start == 1.0 and done[0].t_end == pytest.approx(3.3)
    assert done[0].tps == pytest.approx(9 / 1.8)
    assert tail is not None and tail.generations == 1
    # 0: every measured generation is a window
    one, none = windows_of(reps, 0.0)
    assert len(one) == 7 and none is None
    assert window_tps(reps, 1.0, 2.0) == [(pytest.approx(2.3), pytest.approx(5.0)), (pytest.approx(4.7), pytest.approx(5.0))]


def test_fit_walks_the_ladder_until_the_memory_limit_kills(loopback_phone_factory, loopback_adb_server,
                                                           models_dir, tmp_path):
    phone = loopback_phone_factory("galaxy-a15", ram_bytes=320 << 20, data_size_bytes=2 << 30)
    said = []
    summary = run_fit(phone_ref(phone), request(models_dir, tmp_path, model="tiny", gen_tokens=4),
                      models=["tiny", "llama-68m", "smollm2-135m", "qwen2.5-0.5b", "llama-3.2-1b"],
                      status=said.append)
    got = {r.model_id: r.outcome for r in summary.rungs}
    assert got == {"tiny": "completed", "llama-68m": "completed", "smollm2-135m": "completed",
                   "qwen2.5-0.5b": "oom"}  # stops after the first that does not fit
    assert summary.largest == "smollm2-135m"
    assert "largest that runs: smollm2-135m" in summary.text()
    recs = {r["model"]["id"]: r for r in load_results([tmp_path]).records}
    assert set(recs) == set(got)
    for i, mid in enumerate(got):
        assert recs[mid]["scenario"]["name"] == "fit" and recs[mid]["scenario"]["params"]["rung"] == i
        assert recs[mid]["outcome"] == got[mid]
    assert summary.rungs[2].peak_rss_bytes > summary.rungs[0].peak_rss_bytes
    assert summary.rungs[2].load_s is not None
    assert "does not fit" in summary.rungs[3].message
    (written,) = tmp_path.glob("fit-*.json")
    assert json.loads(written.read_text())["largest"] == "smollm2-135m"
