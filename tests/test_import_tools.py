"""`edgebench import [TOOL] FILE...` (issue 16): every capture of another engine's output becomes runs
(`origin: imported`) with the tool recognised from the text; the validity rules make a run whose
figures cannot stand `failed`, with the reason, never a metric; llama-bench files keep their own
importer; a bare `import FILE` never guesses a meter log."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from runtime_captures import capture_names, expected_tool, runtimes_dir

from suite.core.schema import METRICS
from suite.importers.generic import detect, import_files
from suite.runtimes.outputs import TOOL_PARSERS, ToolRun, invalid_reason
from suite.store import load_results

EDGEBENCH = [sys.executable, "-m", "suite.cli.main"]


@pytest.mark.parametrize("name", capture_names())
def test_every_capture_is_recognised_as_its_tool(name):
    text = (runtimes_dir() / name).read_text(encoding="utf-8", errors="replace")
    want = expected_tool(name) or ("llama-bench" if name.startswith("llama-bench") else None)
    assert detect(text) == [want], name


def _records(results):
    return {(r["import"]["file"], r["import"].get("run_in_file", 0)): r for r in load_results([results]).records}


@pytest.mark.parametrize("name", [n for n in capture_names() if expected_tool(n)])
def test_every_capture_imports_as_the_parser_reads_it(name, tmp_path):
    path = runtimes_dir() / name
    tool = expected_tool(name)
    runs = TOOL_PARSERS.get(tool).parse(path.read_text(encoding="utf-8", errors="replace"))
    result = import_files([path], tmp_path)
    (fr,) = result.files
    if not runs:
        assert fr.status == "no_results" and result.exit_code == 1 and not fr.runs
        return
    assert fr.status == "imported" and fr.tool == tool and len(fr.runs) == len(runs)
    recs = [json.loads((p / "run.json").read_text()) for p in fr.runs]
    for i, (run, rec) in enumerate(zip(runs, recs, strict=True)):
        assert rec["origin"] == "imported" and rec["runtime"]["name"] == tool
        assert rec["scenario"] == {"name": "imported", "params": {
            "tool": tool, "form": run.form, "prompt_tokens": run.counts.get("prompt_tokens"),
            "gen_tokens": run.counts.get("gen_tokens")}}
        assert rec["import"]["run_in_file"] == i and rec["import"]["lines"] == run.source_lines
        reason = invalid_reason(run)
        if reason is None:
            assert rec["outcome"] == "completed" and rec["errors"] == []
            for metric, value in run.values.items():
                if metric not in METRICS:  # kept in the import block only
                    assert rec["import"]["values"][metric] == value
                elif value > 0:
                    assert rec["metrics"][metric]["value"] == pytest.approx(value), metric
                else:
                    assert rec["unavailable"][metric].endswith("printed 0: not measured in this run")
        else:  # never a result: no metric, the reason in errors and in every metric's unavailable
            assert rec["outcome"] == "failed" and rec["metrics"] == {}
            assert rec["errors"] == [{"type": "invalid", "message": reason}]
            assert all(v == f"run failed: {reason}" for v in rec["unavailable"].values())
        assert rec["model"]["format"] and rec["model"]["artefact"].startswith(f"{tool}'s own")
    # importing the same file again writes nothing
    again = import_files([path], tmp_path)
    assert again.files[0].status == "already_imported" and set(again.files[0].runs) == set(fr.runs)


def test_the_validity_rules():
    ok = ToolRun("litert-lm", "BenchmarkInfo", values={"prefill_tps": 100.0, "decode_tps": 20.0, "ttft_s": 0.5},
                 counts={"prefill_turns": 1, "decode_turns": 1})
    assert invalid_reason(ok) is None
    assert invalid_reason(ToolRun("x", "f", values={"decode_tps": 1.0}, failed="no prefill turns recorded")) == \
        "no prefill turns recorded"
    assert "prefill turns = 0" in invalid_reason(ToolRun("x", "f", values={"decode_tps": 1.0},
                                                          counts={"prefill_turns": 0}))
    assert "gen tokens = 0" in invalid_reason(ToolRun("x", "f", values={"decode_tps": 1.0}, counts={"gen_tokens": 0}))
    assert "not a finite number" in invalid_reason(ToolRun("x", "f", values={"prefill_tps": math.inf}))
    assert "a zero duration" in invalid_reason(ToolRun("x", "f", values={"ttft_s": 0.0, "decode_tps": 3.0}))
    assert "a zero rate" in invalid_reason(ToolRun("x", "f", values={"decode_tps": 0.0}))
    # an init phase of 0.00 ms is a fact, not a broken run
    assert invalid_reason(ToolRun("x", "f", values={"decode_tps": 3.0, "init_s/conversation": 0.0})) is None
    assert invalid_reason(ToolRun("x", "f")) == "no figures in the output"


def test_import_without_a_tool_name_through_the_cli(tmp_path):
    whisper = runtimes_dir() / "whisper-bench_unknown-host-openblas_2025-05-modern-format.txt"
    bench = runtimes_dir() / "llama-bench_snapdragon-htp-v79_doc-b6733.txt"
    unknown = tmp_path / "notes.txt"
    unknown.write_text("time,watts\n0,1.5\n1,1.6\n")  # a meter log: never guessed
    r = subprocess.run([*EDGEBENCH, "import", str(whisper), str(bench), str(unknown), "-r", str(tmp_path / "res"),
                        "--device", "bench host", "--soc", "SM8750"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr  # one file failed: the unknown one
    assert "no known tool's output recognised" in r.stdout and "edgebench import TOOL FILE" in r.stdout
    recs = load_results([tmp_path / "res"]).records
    by_tool = {rec["runtime"]["name"]: rec for rec in recs}
    assert set(by_tool) == {"whisper.cpp", "llama.cpp"}
    assert by_tool["llama.cpp"]["scenario"]["name"] == "llama-bench"  # llama-bench's own importer, as before
    w = by_tool["whisper.cpp"]
    assert w["device"]["model"] == "bench host" and w["device"]["tier"] == "flagship"
    assert w["metrics"]["asr_encode_s"]["value"] == pytest.approx(1.34319)
    # the tool named: the same file is refused by another tool's parser, with a clear message
    forced = subprocess.run([*EDGEBENCH, "import", "mlc", str(whisper), "-r", str(tmp_path / "res2")],
                            capture_output=True, text=True, timeout=300)
    assert forced.returncode == 1 and "no mlc results in the file" in forced.stdout
    # `import meter` keeps its meaning
    helped = subprocess.run([*EDGEBENCH, "import", "meter", "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--run" in helped.stdout
