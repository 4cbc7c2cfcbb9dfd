"""Models larger than memory (issue 17): memory by kind, paging and the offload bound, and the fit walk past RAM,
on the loopback phone. Its memory limit is a cgroup and page cache counts against it; with `storage="disk"` its
/data/local/tmp is a folder on this host's block filesystem, so a memory-mapped model larger than the limit
really pages from storage (tmpfs pages are memory: they would not)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from loopback_plugin import phone_ref

from suite.analysis.derive import offload_bound_tps
from suite.analysis.paging import OFFLOAD_FAULTS_PER_TOKEN, counter_rate, offload_block, paging_part, per_token
from suite.core.errors import EdgebenchError
from suite.core.measure import BurstParams
from suite.runtimes.llama_bench import load_args
from suite.scenarios.fit import beyond_ram_request, run_fit
from suite.session.local import RunRequest

MiB = 1 << 20
#: the memory limit of the phone the 87 MiB smollm2-135m Q4_0 GGUF is 1.5x of
LIMIT = 58 * MiB


# --- pure parts -----------------------------------------------------------------------------------


def test_llama_bench_loads_as_the_run_says_and_says_nothing_by_default():
    assert load_args(BurstParams()) == ()
    assert load_args(BurstParams(mmap=True, repack=False)) == ("-lm", "mmap", "--repack", "0")
    assert load_args(BurstParams(mmap=False)) == ("-lm", "none")
    # stored only when set: the runs of before keep their pooling keys
    assert "mmap" not in BurstParams().to_dict()
    assert BurstParams(mmap=True, repack=False).to_dict() | {} == BurstParams().to_dict() | {"mmap": True,
                                                                                           "repack": False}


def test_a_counter_s_rate_comes_from_readings_inside_the_spans_and_a_new_process_starts_from_zero():
    t = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    v = [100, 110, 130, 5, 25, 45, 65]  # a new process between 1.0 and 1.5 (its counter starts again)
    grown, seconds = counter_rate(t, v, [(0.4, 3.0)])
    assert (grown, seconds) == (20 + 20 + 20 + 20, 2.0)  # the pair across the new process is skipped
    assert counter_rate(t, v, [(0.6, 0.9)]) == (0.0, 0.0)  # no two readings inside
    frame = pd.DataFrame({"t_s": t, "channel": ["major_faults"] * len(t), "value": [float(x) for x in v]})
    value, why = per_token(frame, "major_faults", [(0.4, 3.0)], tokens=26)
    assert why is None and value == pytest.approx(80 / 2.0 * 2.6 / 26)
    value, why = per_token(frame, "major_faults", [(0.6, 0.9)], tokens=5)
    assert value is None and "too short for two major_faults readings" in why
    assert per_token(frame, "storage_read_bytes", [(0.4, 3.0)], tokens=5)[1] == (
        "no storage_read_bytes reading of the runtime process")


def test_offloaded_is_faults_per_token_with_the_model_not_all_resident():
    m = {"rss_file_bytes/decode_peak": {"value": 37 * MiB}, "rss_anon_bytes/peak": {"value": 18 * MiB}}
    on = offload_block(m, 87 * MiB, 17.6)
    assert on["offloaded"] is True and "17.6 major faults per token" in on["why"]
    assert offload_block(m, 87 * MiB, 0.0)["offloaded"] is False  # read once at load: no faults in decode
    # resident in full (a model that fits) with stray faults, or without fault readings: not offloaded
    assert offload_block({"rss_file_bytes/decode_peak": {"value": 90 * MiB}}, 87 * MiB, 3.0)["offloaded"] is False
    assert offload_block({"rss_file_bytes/decode_peak": {"value": 90 * MiB}}, 87 * MiB, None)["offloaded"] is False
    assert offload_block(m, 87 * MiB, None)["offloaded"] is None  # partly resident, faults not read: unknown
    unknown = offload_block({}, 87 * MiB, None)
    assert unknown["offloaded"] is None and "no reading of major faults, file-backed resident bytes" in unknown["why"]
    assert OFFLOAD_FAULTS_PER_TOKEN == 1.0


def test_the_offload_bound_adds_the_storage_time_to_the_dram_time():
    # 80 MB resident at 10 GB/s and 20 MB streamed at 1 GB/s: 8 ms + 20 ms per token
    assert offload_bound_tps(80e6, 10e9, 20e6, 1e9) == pytest.approx(1 / 0.028)
    assert offload_bound_tps(0.0, 10e9, 50e6, 1e9) == pytest.approx(20.0)  # all streamed: the storage's pace
    with pytest.raises(ValueError):
        offload_bound_tps(0.0, 10e9, 0.0, 1e9)


def test_paging_part_of_a_frame_without_the_runtime_s_readings_says_why():
    frame = pd.DataFrame({"t_s": [0.0, 1.0], "channel": ["phase/decode", "phase/decode"], "value": [1.0, 0.0]})
    part = paging_part(frame, BurstParams(gen_tokens=9), 1, model_bytes=MiB,
                       reasons={"mem_available_bytes": "the loopback phone's /proc/meminfo is its profile's capture"})
    assert not part.metrics and part.blocks["paging"]["offloaded"] is None
    assert part.unavailable["mem_available_bytes/min"].startswith("the loopback phone's /proc/meminfo")
    assert part.unavailable["major_faults_per_token/decode"] == "no major_faults reading of the runtime process"


def test_beyond_ram_is_llama_cpp_with_its_weights_mapped_and_not_repacked():
    req = RunRequest(model_id="m", runtime="llama-bench")
    got = beyond_ram_request(req, 90.0)
    assert got.runtime == "llama.cpp" and got.params.mmap is True and got.params.repack is False
    assert got.timeout_s == 90.0
    with pytest.raises(EdgebenchError, match="runs llama.cpp .* not ort-genai"):
        beyond_ram_request(RunRequest(model_id="m", runtime="ort-genai"), None)
    with pytest.raises(EdgebenchError, match="--mmap 0 or --repack 1 contradict it"):
        beyond_ram_request(RunRequest(model_id="m", runtime="llama.cpp", params=BurstParams(mmap=False)), None)


# --- on the loopback phone ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def request(models_dir, results, model="smollm2-135m", **params) -> RunRequest:
    p = dict(prompt_tokens=16, gen_tokens=16, reps=2, warmup=1, threads=1) | params
    return RunRequest(model_id=model, device="phone", runtime="llama.cpp", params=BurstParams(**p),
                      models_dir=models_dir, results_dir=results, probe=False, sample_rate_hz=10.0)


def _record(path) -> dict:
    return json.loads((path / "run.json").read_text())


@pytest.mark.loopback
@pytest.mark.timeout(1200)
def test_a_model_larger_than_the_phone_s_memory_runs_offloaded_and_slower_and_without_mmap_is_killed(
        loopback_phone_factory, models_dir, tmp_path):
    from suite.session.run import run_device

    small = loopback_phone_factory("qcom-flagship", ram_bytes=LIMIT, storage="disk", charging=False)
    req = request(models_dir, tmp_path / "offloaded", mmap=True, repack=False)
    rec = _record(run_device(phone_ref(small), req))
    assert rec["outcome"] == "completed", rec["errors"]
    model_bytes = rec["model"]["bytes"]
    assert 1.4 * LIMIT < model_bytes < 2 * LIMIT  # the model is 1.5x the phone's memory
    m, paging = rec["metrics"], rec["paging"]
    assert paging["offloaded"] is True, paging
    assert m["major_faults_per_token/decode"]["value"] > OFFLOAD_FAULTS_PER_TOKEN
    assert m["storage_read_bytes_per_token/decode"]["value"] > 0
    # file-backed pages dominate the anonymous ones, and stay below the model's size
    assert m["rss_file_bytes/decode_peak"]["value"] < model_bytes
    assert m["rss_file_bytes/peak"]["value"] > m["rss_anon_bytes/peak"]["value"]
    # the loopback phone's /proc/meminfo is a capture: not a reading, said so
    assert "profile's capture" in rec["unavailable"]["mem_available_bytes/min"]
    assert rec["scenario"]["params"]["mmap"] is True and rec["scenario"]["params"]["repack"] is False
    assert "-lm mmap --repack 0" in rec["runtime"]["commands"]["decode"]

    # the same model with its weights read into memory: killed by the limit
    with pytest.raises(EdgebenchError) as info:
        run_device(phone_ref(small), request(models_dir, tmp_path / "no-mmap", mmap=False, repack=False))
    killed = _record(info.value.context["run_dir"])
    assert killed["outcome"] == "oom" and "exit 137" in killed["errors"][-1]["message"]

    # the same model on a phone it fits in decodes faster, in memory
    big = loopback_phone_factory("qcom-flagship", ram_bytes=8 * LIMIT, storage="disk", charging=False)
    fits = _record(run_device(phone_ref(big), request(models_dir, tmp_path / "fits", mmap=True, repack=False)))
    assert fits["outcome"] == "completed" and fits["paging"]["offloaded"] is False
    assert fits["metrics"]["decode_tps"]["value"] > m["decode_tps"]["value"]


@pytest.mark.loopback
@pytest.mark.timeout(1200)
def test_fit_beyond_ram_walks_past_the_memory_and_says_where_it_stopped(loopback_phone_factory, models_dir, tmp_path):
    import dataclasses

    from suite.session.storage import device_storage_bandwidth

    phone = loopback_phone_factory("qcom-flagship", ram_bytes=LIMIT, storage="disk", charging=False)
    said: list[str] = []
    storage = device_storage_bandwidth(phone_ref(phone), max_file_bytes=128 * MiB)  # the walk measures it first
    assert storage["storage_read_bw_bytes_per_s/seq"] > 0 and storage["evicted"] is True
    req = dataclasses.replace(request(models_dir, tmp_path), probe=True)  # DRAM bandwidth: the other bound
    summary = run_fit(phone_ref(phone), req, models=["tiny", "smollm2-135m"], status=said.append, beyond_ram=True,
                      floor_tps=0.01, rung_timeout_s=600, storage=storage)
    got = {r.model_id: (r.outcome, r.offloaded) for r in summary.rungs}
    # tiny decodes in a millisecond: whether a reading of its memory falls inside it is chance, so it is either
    # seen in RAM or unknown, never offloaded (the in-RAM case is the test above's)
    assert got["smollm2-135m"] == ("completed", True) and got["tiny"] in (("completed", False), ("completed", None))
    assert summary.largest == "smollm2-135m" and summary.stopped is None
    assert summary.largest_in_ram == ("tiny" if got["tiny"][1] is False else None)
    text = summary.text()
    assert "smollm2-135m" in text and "offloaded, at" in text and "(in RAM: " in text
    # the offloaded rung carries the storage's bandwidths and sits under its offload bound
    off = _record(tmp_path / next(r for r in summary.rungs if r.offloaded).run_dir.split("/")[-1])
    assert off["metrics"]["storage_read_bw_bytes_per_s/seq"]["value"] == storage["storage_read_bw_bytes_per_s/seq"]
    roof = off["roofline"]
    assert roof["offload_bound_tps"] < roof["decode_bound_tps"] and roof["streamed_bytes_per_token"] > 0
    assert 0 < off["metrics"]["roofline_fraction/decode"]["value"] <= 1.0
    data = json.loads(next(tmp_path.glob("fit-*.json")).read_text())
    assert data["beyond_ram"] is True and data["ram_bytes"] == pytest.approx(LIMIT, abs=4096)  # MemTotal, kB
    # the report: the fit matrix says the rung ran offloaded and how fast; the device page draws it beyond RAM
    from suite.report.render import render_report

    index = render_report([tmp_path], tmp_path / "report", jobs=1).read_text()
    assert "runs offloaded, at" in index and "tok/s" in index
    device_page = next((tmp_path / "report" / "devices").glob("*.html")).read_text()
    assert "<h3>Beyond RAM</h3>" in device_page and "offload bound" in device_page
    # a floor no rung meets: the walk stops at the first, and says why
    floor = run_fit(phone_ref(phone), request(models_dir, tmp_path / "floor"), models=["tiny", "smollm2-135m"],
                    beyond_ram=True, floor_tps=1e9, rung_timeout_s=600)
    assert [r.model_id for r in floor.rungs] == ["tiny"] and "under the floor of 1e+09 tok/s" in floor.stopped
    # a rung timeout that cannot be met: the rung is a timeout, and the walk stops there
    slow = run_fit(phone_ref(phone), request(models_dir, tmp_path / "slow", gen_tokens=64),
                   models=["smollm2-135m"], beyond_ram=True, floor_tps=0.01, rung_timeout_s=2)
    (rung,) = slow.rungs
    assert rung.outcome == "timeout" and "did not complete (timeout" in slow.stopped
    rec = _record(tmp_path / "slow" / rung.run_dir.split("/")[-1])
    assert rec["outcome"] == "timeout" and "2 s limit" in rec["errors"][-1]["message"]


@pytest.mark.loopback
@pytest.mark.timeout(2400)  # the first use builds the arm64 llama-bench (minutes; .ci/run builds it first)
def test_the_arm64_build_pages_too_with_repacking_off(loopback_phone_factory, models_dir, tmp_path):
    """An arm64 phone under emulation (qemu-user maps the guest's mappings onto this host's): with repacking off
    the Q4_0 weights stay in the mapped file, and a model 1.5x the memory runs offloaded. Timings are the
    emulator's: no speed is claimed."""
    from suite.session.run import run_device

    # a looser limit than the x86_64 test's (the emulator's own pages count in it too): still under the model
    phone = loopback_phone_factory("qcom-flagship", abi="arm64-v8a", ram_bytes=76 * MiB, storage="disk",
                                   charging=False)
    rec = _record(run_device(phone_ref(phone), request(models_dir, tmp_path, prompt_tokens=8, gen_tokens=8, reps=1,
                                                       warmup=0, mmap=True, repack=False)))
    assert rec["outcome"] == "completed", rec["errors"]
    assert rec["runtime"]["bundle"]["abi"] == "arm64-v8a" and "emulation" in rec["runtime"]["bundle"]["emulated"]
    assert rec["paging"]["offloaded"] is True, rec["paging"]
    assert rec["metrics"]["major_faults_per_token/decode"]["value"] > OFFLOAD_FAULTS_PER_TOKEN
