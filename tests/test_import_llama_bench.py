"""`edgebench import llama-bench`: captures in tests/fixtures/llama-bench/ become runs the store loads.

Expected values are read by hand from the fixture files (`L<n>` = line n of the file).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from suite.core.schema import RUN_FIELDS
from suite.importers.llama_bench import NO_SENSORS, cli_import, import_llama_bench
from suite.store import load_results, load_run

FIXTURES = Path(__file__).parent / "fixtures" / "llama-bench"
ALL = sorted(p for p in FIXTURES.iterdir() if p.name != "INDEX.md")
B1275_JSON = FIXTURES / "readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.json"
ERROR_MD = FIXTURES / "aarch64-ascend-cann_error_b5002_md.txt"


def records(results: Path) -> list[dict]:
    res = load_results([results])
    assert res.skipped == []
    return res.records


def test_json_capture_becomes_one_completed_imported_run(tmp_path):
    report = import_llama_bench([B1275_JSON], tmp_path)
    assert report.ok and report.exit_code == 0
    assert len(report.runs) == 1
    (rec,) = records(tmp_path)
    assert all(k in rec for k in RUN_FIELDS)
    assert rec["origin"] == "imported" and rec["outcome"] == "completed" and rec["errors"] == []
    dev = rec["device"]
    desc = "13th Gen Intel(R) Core(TM) i9-13900K + NVIDIA GeForce RTX 3090 Ti"  # L15-16
    assert dev["model"] == desc
    assert dev["device_id"] == hashlib.sha256(("llama-bench-device:" + desc).encode()).hexdigest()[:12]
    assert (dev["tier"], dev["simulated"], dev["transport"]) == ("unknown", False, "imported")
    assert dev["cpu"]["model"] == "13th Gen Intel(R) Core(TM) i9-13900K"
    model = rec["model"]
    assert (model["quant"], model["format"], model["synthetic_weights"]) == ("Q4_0", "gguf", False)  # L18
    assert (model["params"], model["bytes"], model["architecture"]) == (6738415616, 3825065984, "llama")  # L19-20
    assert model["id"] == "ggml-model-q4_0"  # L17 models/7B/ggml-model-q4_0.gguf
    rt = rec["runtime"]
    assert (rt["name"], rt["version"], rt["backend"], rt["threads"]) == ("llama.cpp", "b1275", "CUDA", 16)
    assert rec["scenario"]["name"] == "llama-bench"
    params = rec["scenario"]["params"]
    assert (params["prompt_tokens"], params["gen_tokens"], params["reps"], params["n_gpu_layers"]) == (512, 128, 5, 99)
    pre, dec = rec["metrics"]["prefill_tps"], rec["metrics"]["decode_tps"]
    assert (pre["value"], pre["stddev"], pre["n"], pre["unit"]) == (2410.974041, 11.163766, 5, "tok/s")  # L33-34
    assert pre["samples"] == [2394.34, 2419.25, 2411.36, 2422.75, 2407.16]  # L36
    assert pre["mean"] == 2410.974041 and pre["ci95"][0] < pre["value"] < pre["ci95"][1]
    assert dec["value"] == 130.965708 and dec["n"] == 5  # L65
    assert rec["unavailable"]["power_w/avg"] == NO_SENSORS
    assert rec["unavailable"]["peak_rss_bytes"] == NO_SENSORS
    assert "ttft_s" in rec["unavailable"] and "ttft_s" not in rec["metrics"]
    assert (rec["started_at"], rec["ended_at"]) == ("2023-09-23T12:09:57Z", "2023-09-23T12:09:59Z")  # L30, L61
    imp = rec["import"]
    assert imp["file"] == B1275_JSON.name and imp["format"] == "json" and imp["lines"] == [7, 38]
    assert imp["file_sha256"] == hashlib.sha256(B1275_JSON.read_bytes()).hexdigest()
    run_json = json.loads((report.runs[0] / "run.json").read_text())
    assert list(run_json)[: len(RUN_FIELDS)] == list(RUN_FIELDS)


def test_error_log_is_reported_and_writes_nothing(tmp_path, capsys):
    report = import_llama_bench([ERROR_MD], tmp_path)
    assert not report.ok and report.exit_code == 1
    (f,) = report.failed
    assert f.status == "no_rows" and f.rows == 0 and f.runs == []
    assert "line 9" in f.message and "CANN error" in f.message  # L9
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
    assert cli_import([ERROR_MD], tmp_path) == 1
    out = capsys.readouterr().out
    assert "no result rows" in out and "CANN error" in out


def test_not_llama_bench_and_missing_file_fail(tmp_path):
    ort = FIXTURES / "ortgenai_benchmark_e2e_phi2_int4_cuda_rtx4090_md.txt"
    report = import_llama_bench([ort, tmp_path / "nope.txt", B1275_JSON], tmp_path / "r")
    assert [f.status for f in report.files] == ["no_rows", "unreadable", "imported"]
    assert report.exit_code == 1 and len(report.runs) == 1


def test_cli_import_summary_and_exit_code(tmp_path, capsys):
    assert cli_import([B1275_JSON], tmp_path) == 0
    out = capsys.readouterr().out
    assert "1 run(s) written" in out and "imported" in out


def test_every_fixture_imports_and_loads(tmp_path):
    report = import_llama_bench(ALL, tmp_path)
    failed = {f.path.name for f in report.failed}
    assert failed == {ERROR_MD.name, "ortgenai_benchmark_e2e_phi2_int4_cuda_rtx4090_md.txt"}
    recs = records(tmp_path)
    assert len(recs) == len(report.runs) == 141
    assert {r["origin"] for r in recs} == {"imported"}
    assert {r["outcome"] for r in recs} == {"completed"}
    for r in recs:
        assert r["metrics"], r["import"]["file"]
        for m in r["metrics"].values():
            assert m["value"] > 0


def runs_of(tmp_path, name, **kw) -> list[dict]:
    report = import_llama_bench([FIXTURES / name], tmp_path, **kw)
    assert report.ok
    return sorted(records(tmp_path), key=lambda r: r["import"]["lines"][0])


def test_grouping_pairs_one_pp_with_one_tg(tmp_path):
    # jetson: two tables (two power modes) with the same configuration: never pooled
    recs = runs_of(tmp_path, "jetson-agx-orin_cuda_b4675_qwen2-32b_indented_md.txt")
    assert [r["import"]["lines"] for r in recs] == [[16, 17], [27, 28]]
    assert [r["metrics"]["prefill_tps"]["value"] for r in recs] == [128.64, 201.73]  # L16, L27
    assert [r["metrics"]["decode_tps"]["value"] for r in recs] == [5.37, 6.84]  # L17, L28
    assert recs[0]["runtime"]["version"] == "b4675" and recs[1]["runtime"]["version"] is None
    assert recs[0]["scenario"]["params"]["flash_attn"] == "on"
    # markdown carries no cpu_info: the device is unknown, per file
    assert recs[0]["device"]["model"].startswith("unknown device")
    assert recs[0]["started_at"] is None


def test_grouping_splits_sweeps_into_one_run_per_test(tmp_path):
    recs = runs_of(tmp_path, "i7-1185g7_iklcpp_b3643_rtr_md.txt")  # -p 64..512 -n 64..512
    assert len(recs) == 8
    assert [list(r["metrics"]) for r in recs[:4]] == [["prefill_tps"]] * 4
    assert [r["scenario"]["params"]["prompt_tokens"] for r in recs[:4]] == [64, 128, 256, 512]  # L11-14
    assert recs[4]["metrics"]["decode_tps"]["value"] == 7.97  # L15 tg64
    assert "no pp test" in recs[4]["unavailable"]["prefill_tps"]


def test_grouping_by_depth_and_threads(tmp_path):
    recs = runs_of(tmp_path / "a", "strixhalo_rocm_b6865_llama32-1b_depth-sweep.jsonl")
    assert [r["scenario"]["params"]["n_depth"] for r in recs] == [0, 1024, 4096, 16384, 65536]
    assert recs[-1]["metrics"]["prefill_tps"]["value"] == 424.763184  # L15
    assert recs[-1]["metrics"]["decode_tps"]["samples"] == [64.6162]  # L16
    assert recs[0]["device"]["model"] == "AMD Eng Sample: 100-000001243-50_Y + Radeon 8060S Graphics"
    recs = runs_of(tmp_path / "b", "xeon-e5-2690v3_iklcpp_deepseek-r1-671b_threads_md.txt")
    assert [r["runtime"]["threads"] for r in recs] == [16, 24, 32, 48]  # L8, L10, L12, L14
    assert recs[3]["metrics"]["prefill_tps"]["value"] == 10.27


def test_pp_tg_rows_are_kept_but_not_made_metrics(tmp_path):
    recs = runs_of(tmp_path, "raspberry-pi4b_cpu-openblas_b6726_gemma3-270m-q4km.json")
    (rec,) = recs
    assert rec["metrics"]["prefill_tps"]["value"] == 60.968394 and rec["metrics"]["decode_tps"]["value"] == 11.978603
    pg = [row for row in rec["import"]["rows"] if row["kind"] == "pp+tg"]
    assert pg == [pg[0]] and pg[0]["line"] == 93 and pg[0]["avg_ts"] == 24.867107 and pg[0]["metric"] is None
    assert rec["device"]["model"] == "OpenBLAS, CPU"  # L12, gpu_info "" (L13)
    assert rec["runtime"]["backend"] == "BLAS"


def test_device_override_for_markdown(tmp_path):
    recs = runs_of(tmp_path, "m4-pro_macos_cpu_b4621_llama32-1b_threads_md.txt", device="Apple M4 Pro")
    assert {r["device"]["model"] for r in recs} == {"Apple M4 Pro"}
    assert len(recs) == 6  # a thread sweep of tg64 only: one run per thread count


def test_mismatched_csv_imports_with_unknown_backend(tmp_path):
    report = import_llama_bench([FIXTURES / "readme_b1275_2024edit_header_value_mismatch.csv"], tmp_path)
    assert report.ok and [p.line_no for p in report.files[0].problems] == [7, 8]
    (rec,) = records(tmp_path)
    assert rec["runtime"]["backend"] is None and rec["runtime"]["version"] == "3469684"
    assert rec["metrics"]["prefill_tps"]["value"] == 2413.341687
    assert [pr["line"] for pr in rec["import"]["problems"]] == [7, 8]


def test_html_in_cpu_info_is_stored_verbatim(tmp_path, capsys):
    evil = '<script>alert(1)</script>[red]x[/red]'
    line = json.dumps({"build_commit": "abc1234", "build_number": 7, "cpu_info": evil, "gpu_info": "",
                       "backends": "CPU", "model_filename": "m.gguf", "model_type": "llama 1B Q8_0",
                       "model_size": 10, "model_n_params": 20, "n_prompt": 0, "n_gen": 16,
                       "n_depth": 0, "avg_ts": 3.25, "stddev_ts": 0.5})
    src = tmp_path / "evil[red].jsonl"
    src.write_text(line + "\n")
    assert cli_import([src], tmp_path / "r") == 0
    (rec,) = records(tmp_path / "r")
    assert rec["device"]["model"] == evil and rec["device"]["cpu"]["model"] == evil
    assert "evil[red].jsonl" in capsys.readouterr().out  # printed literally, not as markup


@pytest.mark.parametrize("name", ["readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.csv",
                                  "readme_b1275_i9-13900k_rtx3090ti_cuda_llama7b-q4_0_2023.sql"])
def test_csv_and_sql_of_the_same_machine_share_a_device(tmp_path, name):
    a = runs_of(tmp_path / "a", name)[0]
    b = runs_of(tmp_path / "b", B1275_JSON.name)[0]
    assert a["device"]["device_id"] == b["device"]["device_id"]
    assert a["model"]["identity"] == b["model"]["identity"]


def test_reimporting_a_file_writes_nothing_new(tmp_path):
    first = import_llama_bench([B1275_JSON], tmp_path)
    again = import_llama_bench([B1275_JSON], tmp_path)
    assert again.ok and again.files[0].status == "already_imported"
    assert again.runs == first.runs and len(records(tmp_path)) == 1


def test_soc_places_imported_runs_in_their_tier_and_a_shared_name_is_refused(tmp_path):
    """`import llama-bench FILE --soc ID`: llama-bench never says its SoC; the user's word places the runs
    (any id the catalog matches); an id several SoCs share is refused with its candidates, nothing written."""
    from suite.core.errors import EdgebenchError

    name = "adreno-840_opencl_b9050_qwen3-1.7b-f16_md.txt"
    report = import_llama_bench([FIXTURES / name], tmp_path / "a", device="a phone", soc="SM8650")
    dev = load_run(report.runs[0])["device"]
    assert dev["soc_name"] == "Snapdragon 8 Gen 3" and dev["tier"] == "flagship" and "--soc" in dev["soc_placed_by"]
    report = import_llama_bench([FIXTURES / name], tmp_path / "b", device="a phone", soc="Snapdragon 8 Gen 3")
    assert load_run(report.runs[0])["device"]["soc_model"] == "SM8650"
    with pytest.raises(EdgebenchError, match="names several SoCs") as info:
        import_llama_bench([FIXTURES / name], tmp_path / "c", soc="parrot")
    assert info.value.exit_code == 2 and "Snapdragon 6 Gen 1" in info.value.message
    with pytest.raises(EdgebenchError, match="no SoC the catalog knows"):
        import_llama_bench([FIXTURES / name], tmp_path / "c", soc="<script>")
    assert not (tmp_path / "c").exists()
