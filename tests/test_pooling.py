"""`suite.analysis.pooling`: the one pooling key (DESIGN.md section 2), and its use by export and compare."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from suite.analysis.pooling import PoolKey, pool_key
from suite.core.stats import metric
from suite.report.compare import compare
from suite.report.export import export
from suite.store import load_results, write_run

EXAMPLE = Path(__file__).parent / "data" / "schema" / "run-v1.json"


def _record(**changes) -> dict:
    """The example record with dotted-path changes, e.g. `**{"runtime.threads": 4}`."""
    rec = json.loads(EXAMPLE.read_text())
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = rec
        for p in parents:
            node = node[p]
        node[leaf] = value
    return rec


def test_key_reads_the_named_fields():
    k = pool_key(_record())
    assert k == PoolKey(
        device_id="3f2a9c41d07e", model_sha256="4b1c0c0de" + "0" * 55, runtime="ort-genai",
        runtime_version="0.18.0", backend="CPUExecutionProvider", threads=2, scenario="burst",
        params='{"gen_tokens": 64, "prompt_tokens": 128, "reps": 5, "warmup": 1}',
    )


def test_run_identity_times_and_outcome_are_not_part_of_the_key():
    a = _record()
    b = _record(**{"run_id": "01JDQ0000000000000000OTHER", "started_at": "2027-01-01T00:00:00.000Z",
                   "ended_at": "2027-01-01T00:01:00.000Z", "device.serial": "other-serial"})
    assert pool_key(a) == pool_key(b)
    assert hash(pool_key(a)) == hash(pool_key(b))
    assert pool_key(a).digest() == pool_key(b).digest()


def test_params_are_canonical_whatever_their_order():
    rec = _record()
    reordered = copy.deepcopy(rec)
    reordered["scenario"]["params"] = dict(reversed(list(rec["scenario"]["params"].items())))
    assert pool_key(rec) == pool_key(reordered)


@pytest.mark.parametrize("path, value", [
    ("device.device_id", "aaaaaaaaaaaa"),
    ("model.sha256", "f" * 64),
    ("runtime.name", "llama.cpp"),
    ("runtime.bundle", {"sha256": "a" * 64}),
    ("runtime.version", "0.19.0"),
    ("runtime.backend", "QNNExecutionProvider"),
    ("runtime.threads", 4),
    ("scenario.name", "sustained"),
    ("scenario.params.gen_tokens", 128),
])
def test_each_field_separates_runs(path, value):
    base, other = pool_key(_record()), pool_key(_record(**{path: value}))
    assert base != other
    assert base.digest() != other.digest()


def test_versionless_key_matches_across_versions_only():
    a, b = pool_key(_record()), pool_key(_record(**{"runtime.version": "0.19.0"}))
    assert a != b
    assert a.without_version() == b.without_version()
    assert a.without_version().runtime_version is None
    assert a.without_version() != pool_key(_record(**{"runtime.threads": 4})).without_version()


def test_digest_is_short_stable_text():
    k = pool_key(_record())
    d = k.digest()
    assert re.fullmatch(r"[0-9a-f]{16}", d)
    assert d == pool_key(_record()).digest()
    # stable across processes and releases: derived from the fields' canonical JSON, not hash()
    fields = {"backend": "CPUExecutionProvider", "device_id": "3f2a9c41d07e", "model_sha256": "4b1c0c0de" + "0" * 55,
              "params": '{"gen_tokens": 64, "prompt_tokens": 128, "reps": 5, "warmup": 1}', "runtime": "ort-genai",
              "runtime_version": "0.18.0", "scenario": "burst", "threads": 2}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    assert d == hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_key_of_a_sparse_record():
    k = pool_key({"run_id": "x"})
    assert k == PoolKey(None, None, None, None, None, None, None, "{}")
    assert re.fullmatch(r"[0-9a-f]{16}", k.digest())


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_runs_table_carries_the_digest(tmp_path, fmt):
    folder = tmp_path / "results"
    recs = [
        _record(run_id="01JDQPOOL00000000000000001"),
        _record(run_id="01JDQPOOL00000000000000002", started_at="2026-11-24T22:30:00.000Z"),
        _record(**{"run_id": "01JDQPOOL00000000000000003", "runtime.threads": 4}),
    ]
    for rec in recs:
        write_run(folder, rec)
    export([folder], tmp_path / "out", fmt)
    read = {"csv": pd.read_csv, "parquet": pd.read_parquet, "json": pd.read_json}[fmt]
    as_text = {} if fmt == "parquet" else {"dtype": {"pool_key": str}}  # a digest may be all digits
    runs = read(tmp_path / "out" / f"runs.{fmt}", **as_text)
    expected = {r["run_id"]: pool_key(r).digest() for r in load_results([folder]).records}
    assert dict(zip(runs["run_id"], runs["pool_key"], strict=True)) == expected
    first, second, third = (expected[r["run_id"]] for r in recs)
    assert first == second != third


def test_compare_matches_on_the_versionless_key(tmp_path):
    def write(folder: Path, i: int, version: str, threads: int) -> None:
        rec = _record(**{"run_id": f"01JDQPOOLCMP{i:014d}", "runtime.version": version, "runtime.threads": threads})
        rec["metrics"] = {"decode_tps": metric("decode_tps", [10.0 + i, 11.0 + i, 12.0 + i])}
        write_run(folder, rec)

    write(tmp_path / "a", 1, "0.18.0", 2)
    write(tmp_path / "a", 2, "0.18.0", 4)
    write(tmp_path / "b", 3, "0.19.0", 2)
    df = compare([tmp_path / "a"], [tmp_path / "b"])
    assert len(df) == 1  # the 4-thread baseline has no candidate with the same key
    row = df.iloc[0]
    assert (row.baseline_runtime_version, row.candidate_runtime_version) == ("0.18.0", "0.19.0")
    assert row.params == pool_key(_record()).params and row.runtime == "ort-genai"
