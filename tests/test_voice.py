"""The voice scenario (issue 18): the whisper driver's output, a turn's figures and verdict, the lab plan's voice
jobs and the report's voice matrix. The whole scenario on the loopback phone is in test_voice_loopback.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suite.analysis import voice as judge
from suite.core.errors import RuntimeFailure
from suite.lab.plan import PlanError, job_key, load_plan
from suite.runtimes.voice_turn import AsrOutput, Turn, asr_argv, parse_asr_output, turn_metrics

NONCE = "ab12cd34"


def driver_line(**over) -> str:
    """A line in the shape edgebench-whisper prints (suite/runtimes/build/whisper/edgebench_whisper.cpp)."""
    data = {"engine": "whisper.cpp", "driver": "edgebench-whisper", "driver_version": 1, "n_threads": 4,
            "audio_s": 5.0, "samples": 80000, "audio_ctx": 1500, "audio_ctx_full": 1500, "window_s": 30.0,
            "decode_tokens": 20, "prompt_tokens": 4, "load_ms": 120.5, "mel_ms": 10.0, "encode_ms": 300.0,
            "decode_ms": 90.0, "total_ms": 400.0,
            "t": {"load": [100.0, 100.1205], "mel": [100.2, 100.21], "encode": [100.21, 100.51],
                  "decode": [100.51, 100.6]},
            "vm_hwm_kb": 51200, "vm_rss_kb": 50000} | over
    return json.dumps(data)


def marked(body: str, t0: float = 99.9, t1: float = 100.7, rc: int = 0) -> str:
    return f"EDGEBENCH {NONCE} T0 {t0}\n{body}\nEDGEBENCH {NONCE} T1 {t1}\nEDGEBENCH {NONCE} RC {rc}\n"


# --- the driver's output ------------------------------------------------------------------------------


def test_the_driver_s_json_gives_the_asr_timings_in_seconds_and_its_own_stamps_place_it():
    out = parse_asr_output(marked("whisper_init_from_file: loading\n" + driver_line()), NONCE)
    assert out.exit_code == 0 and out.result["audio_ctx"] == 1500
    t = out.timings()
    assert t == pytest.approx({"load": 0.1205, "mel": 0.010, "encode": 0.300, "decode": 0.090, "total": 0.400})
    assert out.span() == (100.2, 100.6)  # mel start to the last decoder step, inside the markers
    assert out.problems == ["whisper_init_from_file: loading"]  # kept, never a reason to lose the result


def test_stamps_outside_the_markers_are_not_trusted_the_asr_is_packed_at_the_end():
    out = parse_asr_output(marked(driver_line(t={"mel": [5.0, 5.1], "decode": [5.2, 5.3]})), NONCE)
    assert out.span() == pytest.approx((100.7 - 0.4, 100.7))


def test_a_total_missing_is_the_sum_of_the_parts_and_a_run_without_json_fails_with_its_log():
    line = json.loads(driver_line())
    del line["total_ms"]
    assert parse_asr_output(marked(json.dumps(line)), NONCE).timings()["total"] == pytest.approx(0.4)
    out = parse_asr_output(marked("", rc=3), NONCE, stderr="error: failed to load model 'x.bin'\n")
    with pytest.raises(RuntimeFailure, match="exit status 3.*failed to load model"):
        out.timings()
    killed = parse_asr_output(marked("{not json", rc=137), NONCE)
    assert killed.exit_code == 137 and killed.result is None and killed.problems == ["{not json"]


def test_the_driver_s_command_line_is_quoted_values_and_refuses_nonsense():
    argv = asr_argv("/d/asr/bin/edgebench-whisper", "/d/m.bin", "/d/a b.wav", threads=4, tokens=20)
    assert argv[1:] == ["-m", "/d/m.bin", "-f", "/d/a b.wav", "-t", "4", "-n", "20", "-ac", "0"]
    with pytest.raises(ValueError):
        asr_argv("x", "m", "a", threads=0, tokens=20)


# --- a turn's figures ---------------------------------------------------------------------------------


def turn(i: int, asr_total: float, prefill_s: float, decode_tps: float, audio_s: float = 5.0) -> Turn:
    res = json.loads(driver_line(audio_s=audio_s))
    t = Turn(i, False, {"load": 0.1, "mel": 0.01, "encode": asr_total - 0.05, "decode": 0.04, "total": asr_total},
             (10.0 * i, 10.0 * i + asr_total), res, prefill_span=(10.0 * i + 1, 10.0 * i + 1 + prefill_s),
             decode_span=(10.0 * i + 2, 10.0 * i + 3), prefill_tps=128 / prefill_s, decode_tps=decode_tps,
             prefill_s=prefill_s, llm_windows=[(10.0 * i + 0.9, 10.0 * i + 1 + prefill_s),
                                                   (10.0 * i + 1.5, 10.0 * i + 3)])
    return t


def test_turn_latency_is_the_asr_plus_the_reply_prefill_and_the_metrics_are_over_the_turns():
    turns = [turn(0, 0.4, 0.2, 10.0), turn(1, 0.5, 0.3, 12.0), turn(2, 0.6, 0.1, 11.0)]
    assert turns[0].latency_s == pytest.approx(0.6)
    m = turn_metrics(turns)
    assert m["turn_latency_s"]["value"] == pytest.approx(0.7) and m["turn_latency_s"]["n"] == 3
    assert m["asr_rtf"]["value"] == pytest.approx(0.1)  # 0.5 s of processing for 5 s of audio
    assert m["asr_total_s"]["value"] == pytest.approx(0.5)
    assert m["decode_tps"]["value"] == pytest.approx(11.0)
    assert m["prefill_tps"]["value"] == pytest.approx(128 / 0.2)


def test_the_verdict_follows_the_documented_thresholds():
    rate = judge.SPEAKING_RATE_TPS
    assert rate == pytest.approx(4.0)  # 3 words/s at 0.75 words/token
    assert judge.verdict(0.2, 0.8, rate)[0] == judge.CONVERSATIONAL
    assert judge.verdict(0.2, 1.5, rate)[0] == judge.MARGINAL  # late, but within 3 s
    assert judge.verdict(0.2, 0.8, rate * 0.6)[0] == judge.MARGINAL  # slower than speech, faster than half
    assert judge.verdict(1.2, 0.8, rate * 2)[0] == judge.NOT_CONVERSATIONAL  # ASR slower than real time
    assert judge.verdict(0.2, 3.5, rate * 2)[0] == judge.NOT_CONVERSATIONAL
    assert judge.verdict(0.2, 0.8, rate * 0.4)[0] == judge.NOT_CONVERSATIONAL
    said, why = judge.verdict(None, 0.8, rate)
    assert said is None and "asr_rtf" in why
    assert judge.asr_decode_tokens(5) == 20 and judge.asr_decode_tokens(30) == 120


def test_energy_of_a_turn_integrates_power_over_its_parts_only():
    from suite.analysis.metrics import energy_j, samples_frame

    rows = samples_frame([(t / 10, "power_w", 2.0 if t < 50 else 4.0) for t in range(0, 101)])
    assert energy_j(rows, [(1.0, 2.0), (6.0, 7.5)]) == pytest.approx(2.0 * 1.0 + 4.0 * 1.5)
    assert energy_j(rows, [(9.95, 12.0)]) is None  # no sample after the span: not a figure
    assert energy_j(samples_frame([(0.0, "power_w", 1.0)]), [(0, 1)]) is None


def test_thermal_state_after_the_turns_is_each_sensor_s_rise_and_the_highest_status():
    rows = [(0.0, "temp_c/battery", 30.0), (5.0, "temp_c/battery", 32.5), (9.0, "temp_c/battery", 40.0),
            (0.0, "temp_c/tz/cpu", 40.0), (5.0, "temp_c/tz/cpu", 55.0), (4.0, "thermal_status", 1.0)]
    got = judge.thermal_after(rows, 6.0)
    assert got["temps"]["temp_c/battery"] == {"start_c": 30.0, "end_c": 32.5, "rise_c": 2.5}
    assert got["hottest"] == "temp_c/tz/cpu" and got["hottest_end_c"] == 55.0 and got["thermal_status_max"] == 1.0


def test_both_models_resident_is_the_sum_of_the_two_peaks_labelled_computed():
    from suite.scenarios.voice import _memory

    turns = [turn(0, 0.4, 0.2, 10.0)]
    rows = [(0.95, "rss_bytes", 300e6), (2.5, "rss_bytes", 320e6), (0.2, "rss_bytes", 999e6)]
    mem = _memory(turns, rows, 0.0)
    assert mem["asr_peak_bytes"] == 51200 * 1024 and mem["llm_peak_bytes"] == 320e6  # outside the reply: not it
    assert mem["bytes"] == pytest.approx(51200 * 1024 + 320e6) and mem["method"].startswith("computed")
    assert "llama-bench" in _memory(turns, [], 0.0)["unavailable"]


def test_asr_output_without_markers_has_no_span():
    assert AsrOutput(None, None, None, {"engine": "whisper.cpp", "total_ms": 1}).span() is None


# --- the lab plan -------------------------------------------------------------------------------------


def plan(tmp_path: Path, job: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(f'version = 1\nname = "v"\n[devices]\nselect = ["all"]\n\n[[jobs]]\n{job}\n')
    return path


def test_a_voice_job_is_one_job_per_speech_model_and_llm_on_llama_cpp(tmp_path):
    jobs = load_plan(plan(tmp_path, 'scenario = "voice"\nmodels = ["tiny", "smollm2-135m"]\n'
                                    'asr_models = ["whisper-tiny", "whisper-base"]\nturns = 2')).expand()
    assert sorted((j.model, j.params["asr_model"]) for j in jobs) == [
        ("smollm2-135m", "whisper-base"), ("smollm2-135m", "whisper-tiny"), ("tiny", "whisper-base"),
        ("tiny", "whisper-tiny")]
    assert {j.runtime for j in jobs} == {"llama.cpp"}
    assert {(j.params["turns"], j.params["audio_s"], j.params["asr_quant"], j.params["audio_ctx"]) for j in jobs} == {
        (2, 5, "f16", 0)}
    assert len({job_key(j.identity()) for j in jobs}) == 4  # four jobs, four resume keys
    from suite.scenarios import get_scenario

    assert set(get_scenario("voice").options) <= set(jobs[0].params)


@pytest.mark.parametrize(("job", "needle"), [
    ('scenario = "voice"\nmodels = ["tiny"]', "asr_models"),
    ('scenario = "voice"\nmodels = ["tiny"]\nasr_models = ["whisper-huge"]', "whisper-huge"),
    ('scenario = "voice"\nmodels = ["tiny"]\nasr_models = ["whisper-tiny"]\nruntimes = ["ort-genai"]', "llama.cpp"),
    ('scenario = "voice"\nmodels = ["tiny"]\nasr_models = ["whisper-tiny"]\naudio_s = 7', "5 or 30"),
    ('scenario = "voice"\nmodels = ["tiny"]\nasr_models = ["whisper-tiny"]\nasr_quant = "q4_0"', "q4_0"),
    ('scenario = "burst"\nmodels = ["tiny"]\nturns = 3', "only for scenario 'voice'"),
])
def test_a_bad_voice_job_names_its_key(tmp_path, job, needle):
    with pytest.raises(PlanError) as info:
        load_plan(plan(tmp_path, job))
    assert needle in str(info.value)


# --- the report ---------------------------------------------------------------------------------------


def voice_record(device: str, tier: str, verdict: str | None, *, outcome="completed", simulated=False) -> dict:
    return {"run_id": f"{device}-{verdict}", "outcome": outcome, "ended_at": "2026-12-03T00:00:00Z",
            "device": {"device_id": device, "model": device, "tier": tier, "simulated": simulated, "ram_bytes": 8e9},
            "model": {"id": "smollm2-135m", "params": 134515008, "sha256": "ab"},
            "scenario": {"name": "voice", "params": {"asr_model": "whisper-tiny"}},
            "metrics": {"turn_latency_s": {"value": 0.8, "unit": "s"}, "asr_rtf": {"value": 0.2, "unit": "x"},
                        "energy_j/turn": {"value": 3.1, "unit": "J"}},
            "voice": {"verdict": verdict, "verdict_reason": "ASR 0.20x real time <b>"}}


def test_the_voice_matrix_is_per_tier_and_keeps_simulated_phones_apart():
    from suite.report.tables import voice_matrix

    recs = [voice_record("p1", "flagship", "conversational"), voice_record("p2", "entry", "not"),
            voice_record("loop", "flagship", "marginal", simulated=True),
            voice_record("p3", "entry", None, outcome="oom")]
    got = voice_matrix(recs)
    assert [(g["tier"], g["simulated"]) for g in got] == [("flagship", False), ("entry", False), ("simulated", True)]
    (row,) = got[0]["rows"]
    assert row["asr"] == "whisper-tiny" and row["cells"][0]["text"] == "conversational"
    assert row["cells"][0]["detail"] == "first reply token 800 ms after speech · ASR RTF 0.2 · 3.1 J per turn"
    entry = {c["text"] for c in got[1]["rows"][0]["cells"]}
    assert entry == {"not conversational", "OOM"}
