"""`suite.report.compare`: changes between a baseline and a candidate set of runs, with significance.

Expected p-values are derived by hand, not by calling the function under test:
baseline decode samples 10, 11, 12, 13, 14 (mean 12, sample variance 2.5, n 5).
- candidate 12..16 (mean 14, variance 2.5): Welch t = (14 - 12) / sqrt(2.5/5 + 2.5/5) = 2.0;
  with equal variances and sizes the Welch-Satterthwaite df is 2 * (5 - 1) = 8; the two-sided
  p is 2 * P(T_8 > 2.0) = 0.0805 (t tables: t_{0.05, 8} = 1.860, t_{0.025, 8} = 2.306), so
  not significant at 5%.
- candidate 15..19 (mean 17): t = 5.0, df 8, p = 2 * P(T_8 > 5.0) = 0.00105: significant, and
  better since decode tok/s is higher-is-better.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from suite.core.errors import EdgebenchError
from suite.core.stats import metric
from suite.report.compare import INSUFFICIENT, cli_compare, compare
from suite.store import write_run

EXAMPLE = Path(__file__).parent / "data" / "schema" / "run-v1.json"
BASE = [10.0, 11.0, 12.0, 13.0, 14.0]


def _write(folder: Path, i: int, decode, version: str, ttft=None, device_model=None) -> str:
    rec = json.loads(EXAMPLE.read_text())
    rec["run_id"] = f"01JDQCOMPARE{i:014d}"
    rec["runtime"]["version"] = version
    rec["metrics"] = {"decode_tps": metric("decode_tps", decode)}
    if ttft is not None:
        rec["metrics"]["ttft_s"] = metric("ttft_s", ttft)
    if device_model:
        rec["device"]["model"] = device_model
    write_run(folder, rec)
    return rec["run_id"]


def _row(df, name="decode_tps"):
    rows = df[df["metric"] == name]
    assert len(rows) == 1
    return rows.iloc[0]


def test_not_significant_change(tmp_path):
    _write(tmp_path / "a", 1, BASE, "0.18.0")
    _write(tmp_path / "b", 2, [12.0, 13.0, 14.0, 15.0, 16.0], "0.19.0")
    r = _row(compare([tmp_path / "a"], [tmp_path / "b"]))
    assert r.baseline_median == 12.0 and r.candidate_median == 14.0
    assert r.change_pct == pytest.approx(100 * 2 / 12)
    assert r.p_value == pytest.approx(0.0805, abs=5e-4)
    assert not r.significant and r.direction == "no significant change"
    assert (r.n_baseline, r.n_candidate) == (5, 5)
    assert (r.baseline_runtime_version, r.candidate_runtime_version) == ("0.18.0", "0.19.0")


def test_significant_better_and_worse(tmp_path):
    _write(tmp_path / "a", 1, BASE, "0.18.0", ttft=[0.30, 0.31, 0.32, 0.33, 0.34])
    _write(tmp_path / "b", 2, [15.0, 16.0, 17.0, 18.0, 19.0], "0.19.0", ttft=[0.40, 0.41, 0.42, 0.43, 0.44])
    df = compare([tmp_path / "a"], [tmp_path / "b"])
    up = _row(df)
    assert up.p_value == pytest.approx(0.00105, abs=5e-5) and up.significant and up.direction == "better"
    slower = _row(df, "ttft_s")  # lower is better: a higher TTFT is worse
    assert slower.significant and slower.direction == "worse"


def test_insufficient_samples_and_run_ids(tmp_path):
    _write(tmp_path / "res", 1, 12.0, "0.18.0")  # one value: no test possible
    rid = _write(tmp_path / "res", 2, [12.0, 13.0], "0.19.0")
    r = _row(compare([tmp_path / "res" / "01JDQCOMPARE00000000000001"], [rid], search=[tmp_path / "res"]))
    assert r.p_value is None and r.test == INSUFFICIENT and r.n_baseline == 1
    with pytest.raises(EdgebenchError, match="no run with id"):
        compare(["01NOSUCHRUN"], [rid], search=[tmp_path / "res"])


def test_cli_compare_escapes_device_strings(tmp_path):
    hostile = "[bold red]<script>alert(1)</script>[/]"
    _write(tmp_path / "a", 1, BASE, "0.18.0", device_model=hostile)
    _write(tmp_path / "b", 2, [5.0, 5.5, 6.0, 6.5, 7.0], "0.19.0", device_model=hostile)
    buf = io.StringIO()
    rc = cli_compare([str(tmp_path / "a")], [str(tmp_path / "b")], console=Console(file=buf, width=250))
    out = buf.getvalue()
    assert rc == 1  # a significant regression
    assert "[bold red]<script>alert(1)</script>[/]" in out and "worse" in out and "-50.0%" in out


def test_runtime_versions_within_a_side_are_never_pooled(tmp_path):
    _write(tmp_path / "a", 1, BASE, "0.18.0")
    _write(tmp_path / "b", 2, [12.0, 13.0, 14.0, 15.0, 16.0], "0.19.0")
    _write(tmp_path / "b", 3, [15.0, 16.0, 17.0, 18.0, 19.0], "0.20.0")
    df = compare([tmp_path / "a"], [tmp_path / "b"])
    assert list(df["candidate_runtime_version"]) == ["0.19.0", "0.20.0"]
    assert list(df["n_candidate"]) == [5, 5] and list(df["candidate_median"]) == [14.0, 17.0]
