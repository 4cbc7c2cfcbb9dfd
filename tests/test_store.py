"""The store: atomic run folders, versioned records, a loader that survives bad folders."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from suite.core.errors import EdgebenchError, SchemaVersionError
from suite.core.record import new_run_id
from suite.core.schema import SCHEMA_VERSION
from suite.store import (
    StoreWarning,
    load_results,
    upgrade_record,
    write_run,
)

EXAMPLES = Path(__file__).parent / "data" / "schema"


def example(version: int = 1) -> dict:
    return json.loads((EXAMPLES / f"run-v{version}.json").read_text())


def test_saved_example_of_every_schema_version_loads():
    versions = sorted(int(p.stem.split("-v")[1]) for p in EXAMPLES.glob("run-v*.json"))
    assert versions == list(range(1, SCHEMA_VERSION + 1)), "commit an example for every schema version"
    for v in versions:
        rec = upgrade_record(example(v))
        assert rec["schema_version"] == SCHEMA_VERSION


def test_write_then_load_roundtrip(tmp_path):
    rec = example()
    samples = [(0.0, "rss_bytes", 1e8), (0.1, "rss_bytes", 1.5e8), (0.05, "phase/prefill", 1.0)]
    path = write_run(tmp_path, rec, samples)
    assert path == tmp_path / rec["run_id"]
    assert sorted(p.name for p in path.iterdir()) == ["run.json", "samples.parquet"]
    res = load_results([tmp_path])
    assert list(res.runs["run_id"]) == [rec["run_id"]]
    decode = res.metrics.set_index("metric").loc["decode_tps"]
    assert decode["value"] == 125.0 and decode["ci_low"] == 123.1 and decode["n"] == 5
    s = res.samples()
    assert len(s) == 3 and set(s["channel"]) == {"rss_bytes", "phase/prefill"}
    assert res.unavailable.set_index("metric").loc["power_w/avg", "reason"].startswith("no RAPL")


def test_results_are_append_only(tmp_path):
    rec = example()
    write_run(tmp_path, rec)
    with pytest.raises(EdgebenchError, match="append-only"):
        write_run(tmp_path, rec)


def test_failed_write_leaves_no_folder(tmp_path):
    rec = example()
    rec["metrics"]["decode_tps"]["value"] = float("nan")  # not valid JSON: the write fails
    with pytest.raises(ValueError):
        write_run(tmp_path, rec)
    assert list(tmp_path.iterdir()) == []


def test_future_schema_version_is_refused_with_hint(tmp_path):
    rec = example() | {"schema_version": SCHEMA_VERSION + 1}
    write_run(tmp_path, rec)
    with pytest.raises(SchemaVersionError) as info:
        load_results([tmp_path])
    assert "upgrade edgebench" in str(info.value)


def test_broken_run_json_is_skipped_with_warning(tmp_path):
    good = example()
    write_run(tmp_path, good)
    bad = tmp_path / new_run_id()
    bad.mkdir()
    (bad / "run.json").write_text('{"schema_version": 1, "run_id": ')  # truncated
    with pytest.warns(StoreWarning, match="skipped"):
        res = load_results([tmp_path])
    assert list(res.runs["run_id"]) == [good["run_id"]]
    assert res.skipped and res.skipped[0][0] == str(bad)


def test_same_run_in_two_folders_counts_once(tmp_path):
    rec = example()
    a, b = tmp_path / "hostA", tmp_path / "hostB"
    write_run(a, rec)
    write_run(b, rec)
    assert len(load_results([a, b]).runs) == 1


def test_temp_folders_are_ignored(tmp_path):
    rec = example()
    tmp = tmp_path / f".tmp-{rec['run_id']}"
    tmp.mkdir()
    (tmp / "run.json").write_text(json.dumps(rec))
    assert load_results([tmp_path]).records == []


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(EdgebenchError, match="no results"):
        load_results([tmp_path / "nowhere"])


def test_run_ids_sort_by_time():
    ids = [new_run_id() for _ in range(50)]
    assert len(set(ids)) == 50 and all(len(i) == 26 for i in ids)
    assert ids[0][:10] <= ids[-1][:10]  # the first 10 characters are the timestamp


def test_killed_writer_leaves_no_run_folder(tmp_path):
    # A writer killed mid-write (SIGKILL, no cleanup) leaves at most a .tmp- folder,
    # which the loader ignores: never a run folder that looks complete.
    code = f"""
import json, os, signal, sys
import suite.store as st
rec = json.loads(open({str(EXAMPLES / 'run-v1.json')!r}).read())
real = st._samples_table
def die(samples):
    os.kill(os.getpid(), signal.SIGKILL)
st._samples_table = die
st.write_run({str(tmp_path)!r}, rec, [])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    names = [p.name for p in tmp_path.iterdir()]
    assert all(n.startswith(".tmp-") for n in names) and names
    assert load_results([tmp_path]).records == []


def test_version_1_llama_runs_take_the_new_names_and_never_pool_with_new_ones():
    """Schema 2 (issue 13): `llama.cpp` is the engine through its benchmark binary; version-1 runs of
    the in-process binding (called `llama.cpp` then) become `llama-cpp-python`, version-1 `llama-bench`
    runs become `llama.cpp`, imported llama-bench results keep `llama.cpp`; the old name stays."""
    from suite.analysis.pooling import pool_key

    def v1(name: str, origin: str = "measured") -> dict:
        rec = example(1)
        rec["origin"] = origin
        rec["runtime"] = dict(rec["runtime"], name=name)
        return rec

    binding = upgrade_record(v1("llama.cpp"))
    assert binding["runtime"]["name"] == "llama-cpp-python"
    assert binding["runtime"]["renamed_from"] == "llama.cpp"
    bench = upgrade_record(v1("llama-bench"))
    assert bench["runtime"]["name"] == "llama.cpp" and bench["runtime"]["renamed_from"] == "llama-bench"
    imported = upgrade_record(v1("llama.cpp", origin="imported"))
    assert imported["runtime"]["name"] == "llama.cpp" and "renamed_from" not in imported["runtime"]
    other = upgrade_record(v1("ort-genai"))
    assert other["runtime"] == example(1)["runtime"] and other["schema_version"] == SCHEMA_VERSION

    new_native = upgrade_record(v1("llama-bench")) | {"schema_version": SCHEMA_VERSION}
    assert pool_key(binding) != pool_key(new_native)


def test_runs_of_two_binaries_never_pool():
    from suite.analysis.pooling import pool_key

    a = example(2)
    b = json.loads(json.dumps(a))
    b["runtime"]["bundle"]["sha256"] = "f" * 64  # the same commit, another build (variant, toolchain)
    assert pool_key(a).binary == a["runtime"]["bundle"]["sha256"]
    assert pool_key(a) != pool_key(b)
    # ... while `compare` matches a baseline and a candidate build on everything else
    assert pool_key(a).without_version() == pool_key(b).without_version()


def test_version_2_intervals_say_they_were_the_mean_s():
    rec = upgrade_record(example(2))
    entry = rec["metrics"]["decode_tps"]
    assert rec["schema_version"] == SCHEMA_VERSION and entry["ci95"] == example(2)["metrics"]["decode_tps"]["ci95"]
    assert entry["ci_method"].startswith("t: ") and entry["small_n"] is False  # n = 5


def test_version_3_sustained_runs_say_one_window_per_generation_and_stability_is_a_percentage():
    windows = [[1.0, 40.0], [2.0, 35.0], [3.0, 32.52]]
    v3 = example(3) | {"scenario": {"name": "sustained", "params": {"window_tokens": 64, "windows": 3}},
                       "thermal": {"window_tps": windows}}
    fraction = v3 | {"metrics": v3["metrics"] | {"stability_pct": {"unit": "%", "higher_is_better": True,
                                                                    "value": 0.813}}}
    rec = upgrade_record(fraction)
    assert rec["schema_version"] == SCHEMA_VERSION
    assert rec["scenario"]["params"]["min_window_s"] == 0.0 and rec["scenario"]["params"]["windows"] == 3
    entry = rec["metrics"]["stability_pct"]
    assert entry["value"] == pytest.approx(81.3) and entry["unit"] == "%" and entry["upgraded_from"] == 0.813
    # a percentage already is left as it was
    pct = v3 | {"metrics": v3["metrics"] | {"stability_pct": {"unit": "%", "higher_is_better": True,
                                                               "value": 81.3}}}
    assert upgrade_record(pct)["metrics"]["stability_pct"] == pct["metrics"]["stability_pct"]
    # a burst run is untouched but for its version
    burst = upgrade_record(example(3))
    assert burst == upgrade_record(example(3) | {"schema_version": 4}) | {"schema_version": SCHEMA_VERSION}
    assert "min_window_s" not in burst["scenario"]["params"]


def test_version_4_runs_say_memory_by_kind_and_paging_were_not_measured():
    rec = upgrade_record(example(4))
    assert rec["schema_version"] == SCHEMA_VERSION and "paging" not in rec
    for name in ("rss_file_bytes/peak", "major_faults_per_token/decode", "swap_delta_bytes"):
        assert name not in rec["metrics"] and "before edgebench read memory by kind" in rec["unavailable"][name]
    assert {k: v for k, v in rec["metrics"].items()} == example(4)["metrics"]  # nothing else changes
    # a version-5 record measured them: the memory of a real llama.cpp run on this host
    v5 = example(5)
    assert v5["paging"]["offloaded"] is False and v5["metrics"]["rss_file_bytes/peak"]["value"] > 0
