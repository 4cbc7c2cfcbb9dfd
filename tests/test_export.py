"""`suite.report.export`: the tidy tables round-trip through csv, parquet and json in pandas."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fixtures.results.fixture_set import make_record, make_samples

from suite.core.errors import EdgebenchError
from suite.core.schema import Outcome
from suite.report.export import cli_export, export
from suite.store import load_results, write_run


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    import numpy as np

    folder = tmp_path_factory.mktemp("export") / "results"
    rng = np.random.default_rng(1)
    for i, (dev, model, outcome) in enumerate([
        ("f1e8a0000001", "llama-3.2-1b", Outcome.COMPLETED),
        ("e2e000000004", "llama-3.2-3b", Outcome.OOM),
    ], start=1):
        rec = make_record(i, dev, model, outcome, 0.01, rng)
        write_run(folder, rec, make_samples(rec))
    return folder


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_round_trip_in_pandas(results, tmp_path, fmt):
    written = export([results], tmp_path / fmt, fmt)
    assert [p.name for p in written] == [f"{t}.{fmt}" for t in ("runs", "metrics", "unavailable", "samples")]
    read = {"csv": pd.read_csv, "parquet": pd.read_parquet, "json": pd.read_json}[fmt]
    ref = load_results([results])
    runs = read(tmp_path / fmt / f"runs.{fmt}")
    assert list(runs["run_id"]) == [r["run_id"] for r in ref.records]
    assert "path" not in runs.columns and "serial" not in runs.columns
    metrics = read(tmp_path / fmt / f"metrics.{fmt}")
    m = metrics[(metrics["metric"] == "decode_tps")].iloc[0]
    assert m["median"] == pytest.approx(ref.records[0]["metrics"]["decode_tps"]["median"])
    unavailable = read(tmp_path / fmt / f"unavailable.{fmt}")
    assert "killed by the low-memory killer while loading" in set(unavailable["reason"])
    samples = read(tmp_path / fmt / f"samples.{fmt}")
    assert len(samples) == len(ref.samples()) and set(samples.columns) == {"run_id", "t_s", "channel", "value"}
    assert samples["value"].sum() == pytest.approx(ref.samples()["value"].sum())


def test_bad_format_and_cli(results, tmp_path):
    with pytest.raises(EdgebenchError, match="unknown export format"):
        export([results], tmp_path, "xlsx")
    assert cli_export([results], tmp_path / "out", "json") == 0
    assert json.loads((tmp_path / "out" / "runs.json").read_text())[0]["tier"] == "flagship"
