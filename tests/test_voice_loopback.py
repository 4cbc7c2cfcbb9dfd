"""The whole voice scenario (issue 18) on the loopback phone: edgebench's whisper.cpp driver and llama-bench, both
edgebench's own static builds, on the x86_64 phone and on the arm64 phone under emulation (tiny models only,
never a speed claim); a pair too large for the phone ends as a fit rung does, and a lab plan's voice matrix goes
on past it. Uses the shared build cache (.ci/run builds both engines first)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from loopback_plugin import phone_ref

from suite.analysis.voice import VERDICTS
from suite.core.errors import EdgebenchError
from suite.core.measure import BurstParams
from suite.session.local import RunRequest

pytestmark = pytest.mark.loopback
MiB = 1 << 20
EDGEBENCH = [sys.executable, "-m", "suite.cli.main"]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def request(models_dir, results, model="tiny", **params) -> RunRequest:
    p = dict(prompt_tokens=16, gen_tokens=8, reps=2, warmup=0, threads=2) | params
    return RunRequest(model_id=model, device="phone", runtime="llama.cpp", params=BurstParams(**p),
                      models_dir=models_dir, results_dir=results, probe=False, sample_rate_hz=10.0)


def _record(path) -> dict:
    return json.loads((path / "run.json").read_text())


@pytest.mark.timeout(1800)
def test_a_voice_turn_on_the_x86_64_phone_is_asr_then_the_reply_with_a_verdict(loopback_phone_factory, models_dir,
                                                                                tmp_path):
    import pandas as pd

    from suite.scenarios.voice import run_voice

    phone = loopback_phone_factory("qcom-flagship", charging=False)
    said: list[str] = []
    # smollm2-135m's reply (64 + 32 tokens) lasts long enough for the sampler's readings of llama-bench's memory
    path = run_voice(phone_ref(phone), request(models_dir, tmp_path, model="smollm2-135m", warmup=1, prompt_tokens=64,
                                               gen_tokens=32), asr_model="whisper-tiny", turns=2, status=said.append)
    rec = _record(path)
    assert rec["outcome"] == "completed", rec["errors"]
    assert rec["scenario"]["name"] == "voice" and rec["scenario"]["params"]["asr_model"] == "whisper-tiny"
    m, voice = rec["metrics"], rec["voice"]
    for name in ("asr_mel_s", "asr_encode_s", "asr_decode_s", "asr_total_s", "asr_rtf", "asr_load_s",
                 "turn_latency_s", "prefill_tps", "decode_tps", "reply_speech_ratio", "voice_resident_bytes"):
        assert m[name]["value"] > 0, name
    assert m["turn_latency_s"]["n"] == 2 and voice["turns_measured"] == 2 and len(voice["per_turn"]) == 2
    # the latency is the ASR plus the reply's prefill, each turn's
    for t in voice["per_turn"]:
        assert t["latency_s"] == pytest.approx(t["asr_s"] + t["reply_prefill_s"], abs=1e-3)
    assert m["asr_total_s"]["value"] == pytest.approx(
        m["asr_mel_s"]["value"] + m["asr_encode_s"]["value"] + m["asr_decode_s"]["value"], rel=0.05)
    # the driver decoded exactly the scenario's tokens, over the full 30 s window, of the recorded utterance
    asr = rec["runtime"]["asr"]
    assert asr["decode_tokens"] == 20 and asr["audio_ctx"] == asr["audio_ctx_full"] == 1500 and asr["window_s"] == 30
    assert voice["audio"]["seconds"] == 5 and len(voice["audio"]["sha256"]) == 64
    assert voice["asr_model"]["card"] == "whisper-tiny" and voice["asr_model"]["synthetic_weights"] is True
    assert rec["runtime"]["bundle"]["asr"]["engine"] == "whisper.cpp"
    # a verdict with its thresholds (the loopback phone's timings are this host's; it is judged, and labelled
    # simulated by its device block)
    assert voice["verdict"] in VERDICTS and voice["thresholds"]["speaking_rate_tps"] == 4.0
    assert rec["device"]["simulated"]
    assert voice["memory"]["method"].startswith("computed") and voice["memory"]["asr_peak_bytes"] > 0
    assert voice["thermal_after_turns"]["temps"]
    assert "energy_j/turn" in m or "energy_j/turn" in rec["unavailable"]
    # the ASR is a phase on the timeline, before each reply's prefill
    samples = pd.read_parquet(path / "samples.parquet")
    asr_marks = samples[samples["channel"] == "phase/asr"]
    assert len(asr_marks) == 4  # two turns, a start and an end each
    # the report's voice matrix shows it, in the simulated group
    from suite.report.render import render_report

    index = render_report([tmp_path], tmp_path / "report", jobs=1).read_text()
    assert 'id="voice"' in index and "whisper-tiny" in index and "simulated" in index


@pytest.mark.timeout(2400)  # the first use builds the arm64 engines (minutes; .ci/run builds them first)
def test_the_arm64_phone_under_emulation_runs_the_turn_and_is_not_judged(loopback_phone_factory, models_dir,
                                                                         tmp_path):
    from suite.scenarios.voice import run_voice

    phone = loopback_phone_factory("galaxy-a15", abi="arm64-v8a", charging=False)
    # a 1.28 s audio context (64 frames): the full 30 s window under emulation takes minutes
    rec = _record(run_voice(phone_ref(phone), request(models_dir, tmp_path, prompt_tokens=8, gen_tokens=4, reps=1),
                            asr_model="whisper-tiny", turns=1, audio_ctx=64))
    assert rec["outcome"] == "completed", rec["errors"]
    assert rec["runtime"]["bundle"]["abi"] == "arm64-v8a" and "emulation" in rec["runtime"]["bundle"]["emulated"]
    assert rec["runtime"]["bundle"]["asr"]["abi"] == "arm64-v8a"
    assert rec["voice"]["verdict"] is None and "emulat" in rec["voice"]["verdict_reason"]
    assert rec["runtime"]["asr"]["audio_ctx"] == 64 and rec["runtime"]["asr"]["window_s"] == pytest.approx(1.28)
    assert rec["scenario"]["params"]["audio_ctx"] == 64
    assert rec["metrics"]["asr_total_s"]["value"] > 0


@pytest.mark.timeout(2400)
def test_a_pair_too_large_for_the_phone_is_oom_and_the_lab_s_voice_matrix_goes_on(loopback_phone_factory,
                                                                                  loopback_adb_server, models_dir,
                                                                                  tmp_path):
    from suite.scenarios.voice import run_voice

    # whisper.cpp reads its weights into memory and sizes its buffers for the 30 s window: whisper-tiny f16 peaks
    # at about 166 MB here, whisper-base f16 at about 258 MB; a phone of 212 MiB holds the first, not the second
    # (its /data/local/tmp on disk: pushed files are not memory)
    small = loopback_phone_factory("galaxy-a15", ram_bytes=212 * MiB, storage="disk", charging=False)
    with pytest.raises(EdgebenchError) as info:
        run_voice(phone_ref(small), request(models_dir, tmp_path / "oom", reps=1), asr_model="whisper-base", turns=1)
    assert info.value.exit_code == 4
    rec = _record(info.value.context["run_dir"])
    assert rec["outcome"] == "oom" and "exit 137" in rec["errors"][-1]["message"]
    assert rec["voice"]["turns_measured"] == 0

    # a lab plan of both pairs on that phone: the pair that does not fit is recorded as oom, the other runs
    plan = tmp_path / "voice.toml"
    plan.write_text(f"""version = 1
name = "voice"
output = "results"

[devices]
select = ["all"]
adb = ["127.0.0.1:{loopback_adb_server.port}"]

[defaults]
prompt_tokens = 8
gen_tokens = 4
reps = 1
warmup = 0
idle = 0
probe = false

[[jobs]]
scenario = "voice"
models = ["tiny"]
asr_models = ["whisper-base", "whisper-tiny"]
turns = 1
""")
    r = subprocess.run([*EDGEBENCH, "lab", "run", str(plan), "--models-dir", str(models_dir)], capture_output=True,
                       text=True, timeout=2000)
    records = {json.loads(f.read_text())["scenario"]["params"]["asr_model"]: json.loads(f.read_text())
               for f in (tmp_path / "results").glob("*/run.json")}
    assert set(records) == {"whisper-base", "whisper-tiny"}, r.stdout[-2000:] + r.stderr[-2000:]
    assert records["whisper-base"]["outcome"] == "oom"
    assert records["whisper-tiny"]["outcome"] == "completed", records["whisper-tiny"]["errors"]
