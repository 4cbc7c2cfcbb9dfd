"""A lab plan on a stock-like arm64 phone (no Python; its binaries under qemu-aarch64): llama-bench
from edgebench's own build, burst and sustained jobs, resumable (the build's identity is the resume
key), through the real CLI and adb server. Uses the shared build cache (.ci/run builds it first)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.loopback

EDGEBENCH = [sys.executable, "-m", "suite.cli.main"]


def plan_text(port: int) -> str:
    return f"""version = 1
name = "stock"
output = "results"

[devices]
select = ["all"]
adb = ["127.0.0.1:{port}"]

[defaults]
runtime = "llama-bench"
prompt_tokens = 8
gen_tokens = 4
reps = 1
warmup = 0
idle = 0
probe = false

[[jobs]]
scenario = "burst"
models = ["tiny"]

[[jobs]]
scenario = "sustained"
models = ["tiny"]
windows = 2
window_tokens = 4
min_window = "0s"
"""


@pytest.mark.timeout(3600)
def test_a_lab_plan_runs_llama_bench_on_a_stock_arm64_phone_and_resumes(loopback_phone_factory,
                                                                         loopback_adb_server, tmp_path):
    phone = loopback_phone_factory("galaxy-a15", abi="arm64-v8a", charging=False)
    plan = tmp_path / "stock.toml"
    plan.write_text(plan_text(loopback_adb_server.port))
    r = subprocess.run([*EDGEBENCH, "lab", "run", str(plan)], capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    records = [json.loads(f.read_text()) for f in sorted((tmp_path / "results").glob("*/run.json"))]
    assert sorted(x["scenario"]["name"] for x in records) == ["burst", "sustained"]
    for rec in records:
        assert rec["outcome"] == "completed", rec["errors"]
        b = rec["runtime"]["bundle"]
        assert rec["runtime"]["name"] == "llama.cpp" and b["built_by"] == "edgebench" and b["variant"] == "dotprod"
        assert rec["device"]["serial"] == phone.serial and rec["lab"]["plan"] == "stock"
    sustained = next(x for x in records if x["scenario"]["name"] == "sustained")
    assert len(sustained["thermal"]["window_tps"]) == 2
    # resumable: the same build on the same phone is the same job; nothing runs again
    again = subprocess.run([*EDGEBENCH, "lab", "run", str(plan)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 done now, 2 already done, 0 failed" in again.stdout, again.stdout
    assert len(list((tmp_path / "results").glob("*/run.json"))) == 2


@pytest.mark.timeout(3600)
def test_fit_walks_a_ladder_with_llama_bench_on_a_stock_arm64_phone(loopback_phone_factory, loopback_adb_server,
                                                                    tmp_path):
    from loopback_plugin import phone_ref

    from suite.runtimes import BurstParams
    from suite.scenarios.fit import run_fit
    from suite.session.local import RunRequest

    phone = loopback_phone_factory("galaxy-a15", abi="arm64-v8a", charging=False)
    req = RunRequest(model_id="tiny", runtime="llama-bench", device=phone.serial, probe=False,
                     params=BurstParams(prompt_tokens=8, gen_tokens=4, reps=1, warmup=0),
                     results_dir=tmp_path / "results")
    summary = run_fit(phone_ref(phone), req, models=["tiny", "llama-68m"], summary_path=tmp_path / "fit.json")
    assert [(r.model_id, r.outcome) for r in summary.rungs] == [("tiny", "completed"), ("llama-68m", "completed")]
    assert summary.largest == "llama-68m"
    for rung in summary.rungs:
        rec = json.loads((Path(rung.run_dir) / "run.json").read_text())
        assert rec["scenario"]["name"] == "fit" and rec["runtime"]["bundle"]["variant"] == "dotprod"
