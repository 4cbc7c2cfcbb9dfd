"""Engines in the report (issue 16): every number says its engine and backend, engines sit side by side in
the tier table (never mixed into one row), throttled runs are shown but never ranked, and the imported-runs
notice names the tools."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from suite.core.stats import metric
from suite.report import tables
from suite.report.render import _common

EXAMPLE = Path(__file__).parent / "data" / "schema" / "run-v4.json"


def _run(i: int, *, runtime: str, backend: str, decode: list[float], device: str = "phone-a",
         throttled: bool = False) -> dict:
    rec = json.loads(EXAMPLE.read_text())
    rec = copy.deepcopy(rec) | {"run_id": f"01JENGINE{i:017d}"}
    rec["device"] |= {"device_id": device, "tier": "flagship", "transport": "adb", "simulated": False,
                      "manufacturer": "Acme", "model": device}
    rec["runtime"] = {"name": runtime, "version": "1", "backend": backend, "threads": 4}
    rec["metrics"] = {"decode_tps": metric("decode_tps", decode)}
    rec["throttling"] = {"throttled": throttled, "evidence": ["policy7: scaling_max_freq fell"] if throttled else []}
    return rec


def test_engines_and_backends_are_named_and_never_mixed():
    cpu = _run(1, runtime="llama.cpp", backend="CPU", decode=[10.0, 10.2, 10.1])
    npu = _run(2, runtime="llama.cpp", backend="HTP0", decode=[40.0, 40.5, 39.8])
    other = _run(3, runtime="litert-lm", backend="gpu", decode=[25.0, 25.3, 24.9])
    assert tables.runtime_label(npu["runtime"]) == "llama.cpp 1 · HTP0"
    rows = tables.tier_summary([cpu, npu, other], ("decode_tps",))
    # one row per engine and backend, each with its own range, side by side for the same model
    assert sorted((r["engine"], r["cells"][0]) for r in rows) == [
        ("litert-lm · gpu", "25.0 tok/s"), ("llama.cpp · CPU", "10.1 tok/s"), ("llama.cpp · HTP0", "40.0 tok/s")]


def test_a_throttled_run_is_shown_but_never_ranked():
    a = _run(1, runtime="llama.cpp", backend="CPU", decode=[10.0, 10.2, 10.1], device="phone-a")
    b = _run(2, runtime="llama.cpp", backend="CPU", decode=[20.0, 20.1, 19.9], device="phone-b")
    hot = _run(3, runtime="llama.cpp", backend="CPU", decode=[30.0, 30.2, 29.9], device="phone-c", throttled=True)
    (ranking,) = tables.rankings([a, b, hot], "decode_tps")
    assert sorted(e["device"] for e in ranking["entries"]) == ["Acme phone-a", "Acme phone-b"]
    assert "THROTTLED during the measured phases" in tables.conditions_brief(hot)
    # ... and it is still in the tier table, in its own configuration
    (row,) = tables.tier_summary([a, b, hot], ("decode_tps",))
    assert row["n_devices"] == 3 and row["n_configs"] == 3


def test_the_imported_notice_names_the_tools():
    recs = []
    for i, tool in enumerate(("litert-lm", "llama-bench", "litert-lm")):
        r = _run(i, runtime="x", backend="cpu", decode=[1.0, 1.1, 1.2])
        recs.append(r | {"origin": "imported", "import": {"tool": tool}, "labels": ["imported"]})
    text = _common(recs, "t", ".", "index", "t")["provenance_text"]["imported"]
    assert text.startswith("were imported from other tools' output (litert-lm, llama-bench)")
