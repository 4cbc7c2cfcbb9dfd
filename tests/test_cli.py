"""The CLI as a user meets it: real subprocesses, real builds, real runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EDGEBENCH = [sys.executable, "-m", "suite.cli.main"]


def cli(*args, cwd=None, env=None):
    env = (env or os.environ) | {"COLUMNS": "200"}
    return subprocess.run([*EDGEBENCH, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    env = os.environ | {"EDGEBENCH_CACHE_DIR": str(d / "cache")}
    return d, env


def test_models_list_shows_the_ladder_and_json(workdir):
    d, env = workdir
    proc = cli("models", "list", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    ids = [r["id"] for r in rows]
    for expected in ("llama-68m", "smollm2-135m", "qwen2.5-0.5b", "llama-3.2-1b", "qwen2.5-1.5b", "llama-3.2-3b",
                     "phi-3-mini", "qwen2.5-7b", "llama-2-7b", "llama-3-8b", "llama-3.1-8b", "llama-2-13b"):
        assert expected in ids
    for kind in ("llm", "speech"):  # the language models' ladder, then the speech models', each smallest first
        params = [r["params"] for r in rows if r["kind"] == kind]
        assert params == sorted(params) and params
    assert [r["kind"] for r in rows] == sorted((r["kind"] for r in rows), key=["llm", "speech"].index)
    speech = {r["id"]: r for r in rows if r["kind"] == "speech"}
    assert set(speech) == {"whisper-tiny", "whisper-base", "whisper-small", "whisper-medium", "whisper-large-v3",
                           "whisper-large-v3-turbo"}
    assert speech["whisper-tiny"]["architecture"] == "whisper" and speech["whisper-tiny"]["ladder"] == "speech"


def test_models_build_then_show_then_cached(workdir):
    d, env = workdir
    proc = cli("models", "build", "tiny", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "built tiny" in proc.stdout
    show = json.loads(cli("models", "show", "tiny", env=env).stdout)
    assert show["id"] == "tiny" and len(show["builds"]) == 1
    listed = {r["id"]: r for r in json.loads(cli("models", "list", "--json", env=env).stdout)}
    assert listed["tiny"]["built"] and not listed["llama-2-13b"]["built"]


def test_a_speech_model_builds_as_ggml_and_other_formats_are_refused(workdir, tmp_path):
    d, env = workdir
    env = env | {"EDGEBENCH_CACHE_DIR": str(tmp_path)}
    for args, says in ((["whisper-tiny", "--format", "gguf"], "whisper-tiny is a speech model"),
                       (["tiny", "--format", "ggml"], "tiny is a language model")):
        proc = cli("models", "build", *args, env=env)
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert not (tmp_path / "models").exists()
    proc = cli("models", "build", "whisper-tiny", "--quant", "q5_0", "--seed", "2", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "built whisper-tiny" in proc.stdout
    show = json.loads(cli("models", "show", "whisper-tiny", env=env).stdout)
    assert show["kind"] == "speech" and show["params_computed"] == show["params_published"]
    (build,) = show["builds"]
    assert build["options"] == {"format": "ggml", "quant": "q5_0", "seed": 2}
    assert (Path(build["path"]) / "ggml-model.bin").stat().st_size == build["bytes"]
    proc = cli("models", "show", "whisper-tiy", env=env)
    assert proc.returncode == 2 and "did you mean whisper-tiny" in proc.stderr


def test_models_build_unknown_id_builds_nothing(workdir):
    d, env = workdir
    proc = cli("models", "build", "tiny", "lama-68m", env=env)
    assert proc.returncode == 2
    assert "did you mean llama-68m" in proc.stderr


def test_corrupt_model_is_detected_and_rebuilt_before_a_run(workdir):
    d, env = workdir
    cli("models", "build", "tiny", env=env)
    show = json.loads(cli("models", "show", "tiny", env=env).stdout)
    data = Path(show["builds"][0]["path"]) / "model.onnx.data"
    good = data.stat().st_size
    with open(data, "r+b") as fh:
        fh.truncate(good // 2)
    proc = cli("run", "--model", "tiny", "--reps", "1", "--gen-tokens", "4", "--prompt-tokens", "8", "--no-probe",
               "--results-dir", str(d / "results"), cwd=d, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "rebuild" in proc.stderr.lower()
    assert data.stat().st_size == good


def test_run_results_report_flow(workdir):
    d, env = workdir
    results = d / "flow-results"
    proc = cli("run", "--model", "tiny", "--reps", "2", "--gen-tokens", "4", "--prompt-tokens", "8", "--no-probe",
               "--results-dir", str(results), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "decode_tps" in proc.stdout and "unavailable" in proc.stdout
    listed = json.loads(cli("results", str(results), "--json", env=env).stdout)
    assert len(listed) == 1 and listed[0]["model"] == "tiny" and listed[0]["outcome"] == "completed"
    assert listed[0]["decode_tps"] > 0
    out = d / "report-out"
    proc = cli("report", str(results), "-o", str(out), "--title", "CLI test", env=env)
    assert proc.returncode == 0, proc.stderr
    html = (out / "index.html").read_text()
    assert "CLI test" in html and listed[0]["run_id"] in html


def test_report_without_runs_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("report", str(empty), "-o", str(tmp_path / "out"))
    assert proc.returncode != 0 and "no runs" in proc.stderr and "Traceback" not in proc.stderr


def test_devices_lists_local_with_sensor_reasons(workdir):
    d, env = workdir
    proc = cli("devices", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    dev = json.loads(proc.stdout)[0]  # local comes first; attached phones may follow
    assert dev["transport"] == "local" and dev["ram_bytes"] > 0 and dev["cpu"]["logical_cores"] >= 1
    for name, status in dev["sensors"].items():
        assert status == "available" or status.startswith("unavailable: "), name


def test_devices_show_parses_a_snapshot_offline(tmp_path):
    from test_snapshot import a15_texts  # the Samsung A15 captures, as snapshot files

    for name, text in a15_texts().items():
        (tmp_path / name).write_text(text)
    proc = cli("devices", "show", "--snapshot", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    from suite.device.android.snapshot import parse_snapshot

    assert data == json.loads(json.dumps(parse_snapshot(tmp_path), default=str))
    assert data["soc_model"] and data["tier"] == "entry"
    missing = cli("devices", "show", "--snapshot", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "no snapshot folder" in missing.stderr


def test_import_llama_bench_writes_runs_and_fails_on_an_error_log(tmp_path):
    fixtures = Path(__file__).parent / "fixtures" / "llama-bench"
    ok = fixtures / "readme_b5163_ryzen7800x3d_rtx4080_cuda_qwen2.5-7b.json"
    proc = cli("import", "llama-bench", str(ok), "-r", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(cli("results", str(tmp_path), "--json").stdout)
    assert len(listed) == 1 and listed[0]["prefill_tps"] > 0
    bad = fixtures / "aarch64-ascend-cann_error_b5002_md.txt"
    proc = cli("import", "llama-bench", str(bad), "-r", str(tmp_path))
    assert proc.returncode == 1 and "no result rows" in proc.stdout + proc.stderr


def test_run_with_a_model_file_records_the_file_not_a_card(workdir, tmp_path):
    d, env = workdir
    assert cli("models", "build", "tiny", "--format", "gguf", env=env).returncode == 0
    show = json.loads(cli("models", "show", "tiny", env=env).stdout)
    gguf = next(Path(b["path"]) / "model.gguf" for b in show["builds"] if b["options"]["format"] == "gguf")
    proc = cli("run", "--model-file", str(gguf), "--runtime", "llama-cpp-python", "--reps", "1", "--gen-tokens", "4",
               "--prompt-tokens", "8", "--no-probe", "--results-dir", str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr
    (rec,) = [json.loads((p / "run.json").read_text()) for p in tmp_path.iterdir()]
    assert rec["model"]["synthetic_weights"] is False and rec["model"]["format"] == "gguf"
    import hashlib

    assert rec["model"]["sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    # numbers people read: bytes in MiB, never 4.684e+08 bytes (issue 15)
    assert " MiB" in proc.stdout and "e+0" not in proc.stdout
    # warmups and measured repetitions are counted apart (issue 15): warmup 1/1, then rep 1/1
    assert "warmup 1/1 done" in proc.stderr and "rep 1/1 done" in proc.stderr and "rep 2/" not in proc.stderr
    wrong = cli("run", "--model-file", str(gguf), "--runtime", "ort-genai", "--no-probe", env=env)
    assert wrong.returncode == 2 and "loads onnx" in wrong.stderr
    both = cli("run", "--model", "tiny", "--model-file", str(gguf), env=env)
    assert both.returncode == 2 and "one of them" in both.stderr


def test_scenarios_and_gates_are_validated_before_any_work():
    proc = cli("run", "--model", "tiny", "--scenario", "marathon")
    assert proc.returncode == 2 and "unknown scenario 'marathon'" in proc.stderr
    proc = cli("run", "--model", "tiny", "--scenario", "sustained", "--windows", "3")
    assert proc.returncode == 2 and "run on phones" in proc.stderr
    proc = cli("run", "--model", "tiny", "--cooldown-max-temp", "35")
    assert proc.returncode == 2 and "run on phones" in proc.stderr


def test_runtimes_list_build_and_clean_on_a_cache_of_its_own(tmp_path):
    """`runtimes list --json` reads the builds' manifests (llama.cpp's and whisper.cpp's) and says which
    is corrupt; `clean` removes both; a wrong engine or ABI is a usage error before any work."""
    from suite.core.filehash import local_sha256

    env = {**os.environ, "EDGEBENCH_CACHE_DIR": str(tmp_path)}
    r = cli("runtimes", "list", env=env)
    assert r.returncode == 0 and "no native runtime built yet" in r.stdout
    folder = tmp_path / "runtimes" / "llama.cpp" / "arm64-v8a-dotprod-0123456789abcdef"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "llama-bench").write_bytes(b"\x7fELF")
    (folder / "manifest.json").write_text(json.dumps({
        "engine": "llama.cpp", "commit": "0c1e57098bba43ac29e6e3b677cdceebdd22334f", "abi": "arm64-v8a",
        "variant": "dotprod", "toolchain": {"compiler": "zig 0.17.0"}, "size_bytes": 4,
        "sha256": local_sha256(folder / "bin" / "llama-bench")}))
    whisper = tmp_path / "runtimes" / "whisper.cpp" / "x86_64-x86-64-v2-fedcba9876543210"
    (whisper / "bin").mkdir(parents=True)
    listed = {}
    for name in ("edgebench-whisper", "whisper-bench"):
        (whisper / "bin" / name).write_bytes(b"\x7fELF " + name.encode())
        listed[name] = {"path": f"bin/{name}", "sha256": local_sha256(whisper / "bin" / name),
                        "size_bytes": len(name) + 5}
    (whisper / "manifest.json").write_text(json.dumps({
        "engine": "whisper.cpp", "commit": "f24588a272ae8e23280d9c220536437164e6ed28", "abi": "x86_64",
        "variant": "x86-64-v2", "toolchain": {"compiler": "zig 0.17.1"}, "binaries": listed,
        "sha256": listed["edgebench-whisper"]["sha256"], "size_bytes": 22}))
    rows = json.loads(cli("runtimes", "list", "--json", env=env).stdout)
    assert [(r["engine"], r["abi"], r["variant"], r["intact"], r["path"]) for r in rows] == [
        ("llama.cpp", "arm64-v8a", "dotprod", True, str(folder)),
        ("whisper.cpp", "x86_64", "x86-64-v2", True, str(whisper))]
    assert rows[1]["binaries"] == {n: {"sha256": b["sha256"], "size_bytes": b["size_bytes"]} for n, b in listed.items()}
    (folder / "bin" / "llama-bench").write_bytes(b"\x7fELF changed")
    (whisper / "bin" / "whisper-bench").write_bytes(b"\x7fELF changed")
    r = cli("runtimes", "list", env=env)
    assert "llama.cpp 0c1e570 arm64-v8a/dotprod" in r.stdout and "whisper.cpp f24588a x86_64/x86-64-v2" in r.stdout
    assert r.stdout.count("corrupt") == 2
    rows = json.loads(cli("runtimes", "list", "--json", env=env).stdout)
    assert [r["intact"] for r in rows] == [False, False] and "whisper-bench has sha256" in rows[1]["problem"]
    for args, needle in ((("build", "mlc", "--abi", "x86_64"), "unknown engine 'mlc'"),
                         (("build", "llama.cpp", "--abi", "mips"), "no native runtime for ABI 'mips'"),
                         (("build", "llama.cpp", "--abi", "arm64-v8a", "--variant", "sve9"), "variant 'sve9'")):
        r = cli("runtimes", *args, env=env)
        assert r.returncode == 2 and needle in r.stderr, r.stderr
    r = cli("runtimes", "clean", env=env)
    assert r.returncode == 0 and "removed" in r.stdout and not folder.exists() and not whisper.exists()


def test_vendor_runtimes_say_what_they_need_before_any_work(tmp_path):
    (tmp_path / "bundle").mkdir()
    pte = tmp_path / "q.pte"
    pte.write_bytes(b"\x20\x00\x00\x00ET12" + b"\x00" * 64)
    r = cli("run", "--runtime", "executorch", "--runtime-bundle", str(tmp_path / "bundle"), "--model-file", str(pte),
            cwd=tmp_path)
    assert r.returncode == 2 and "the executorch runtime needs --tokenizer FILE" in r.stderr
    config = tmp_path / "genie_config.json"
    config.write_text('{"dialog": {"version": 1}}')
    r = cli("run", "--genie-config", str(config), "--model-file", str(pte), cwd=tmp_path)
    assert r.returncode == 2 and "--genie-config is the model of a genie run" in r.stderr
    r = cli("run", "--genie-config", str(config), cwd=tmp_path)  # implies --runtime genie, which needs a bundle
    assert r.returncode == 2 and "the genie runtime runs a bundle of your own: give --runtime-bundle" in r.stderr
