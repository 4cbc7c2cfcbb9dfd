"""Genie output parser on the captures in ../shared/fixtures/runtimes (see runtime_captures) and on
profiles in the GENIE_PROFILE schema (several queries, other key orders, cut files, a pipeline).

Expected values are read by hand from the capture; each names its line (header lines counted).
"""

from __future__ import annotations

import json

import pytest
from runtime_captures import all_captures, capture, line

from suite.runtimes.outputs import TOOL_PARSERS, executorch, genie, litert_lm

approx = pytest.approx

CONSOLE = "genie-t2t-run_galaxy-s23ultra-sd8gen2_libgenie1.0-genaitransformer-console.txt"
PROFILE = "genie-t2t-run_xiaomi15-sd8elite_qairt2.36-profile-json-PROVENANCE-INCOMPLETE.txt"


def test_the_registry_names_this_parser():
    assert TOOL_PARSERS.get("genie") is genie.PARSER


def test_libgenie_1_console_kpi_lines():
    text = capture(CONSOLE)
    [run] = genie.parse(text)
    assert (run.form, run.failed) == ("console", None)
    assert line(text, 21) == "Prompt processing: 2281999 us"
    assert run.values["prefill_s"] == approx(2.281999) and run.source_lines["prefill_s"] == 21
    assert line(text, 22) == "Token generation: 353360439 us, 0.464115 tokens/s"
    assert run.values["decode_s"] == approx(353.360439) and run.source_lines["decode_s"] == 22
    assert run.values["decode_tps"] == 0.464115 and run.source_lines["decode_tps"] == 22
    assert run.counts == {}  # libGenie 1.0 prints no token counts
    assert run.identity["version"] == "libGenie 1.0.0"  # line 7
    assert run.identity["config"] == "/data/local/tmp/llama2-7b-genaitransformer.json"  # line 6


def test_profile_json_query_and_create_events():
    text = capture(PROFILE)
    [run] = genie.parse(text)
    assert (run.form, run.failed) == ("profile-json", None)
    v, c, src = run.values, run.counts, run.source_lines
    assert '"num-prompt-tokens"' in line(text, 43) and '"value": 823' in line(text, 44)
    assert c["prompt_tokens"] == 823 and src["prompt_tokens"] == 43
    assert '"value": 1547.9876708984375' in line(text, 48)           # toks/sec, line 49
    assert v["prefill_tps"] == 1547.9876708984375 and src["prefill_tps"] == 47
    assert '"value": 531665' in line(text, 52)                        # us, line 53
    assert v["ttft_s"] == approx(0.531665) and src["ttft_s"] == 51
    assert c["gen_tokens"] == 200 and src["gen_tokens"] == 55         # line 56
    assert v["decode_tps"] == 38.52525329589844 and src["decode_tps"] == 59  # line 60
    assert v["decode_s"] == approx(5.191579) and src["decode_s"] == 63       # line 64: 5191579 us
    assert '"value": 1124713' in line(text, 34)                       # GenieDialog_create init-time, us
    assert v["load_s"] == approx(1.124713) and src["load_s"] == 33
    assert run.identity["event"] == "GenieDialog_query" and run.identity["component"] == "dialog0"
    assert run.identity["artifact"] == "GENIE_PROFILE"


# --- detection over every capture -------------------------------------------------------------------------

@pytest.mark.parametrize("name", all_captures())
def test_detect_fires_on_genie_captures_only(name):
    text = capture(name)
    assert genie.detect(text) == name.startswith("genie"), name
    assert not (genie.detect(text) and (litert_lm.detect(text) or executorch.detect(text))), name


# --- profiles with no capture -----------------------------------------------------------------------------

def _kpi(value, unit):
    return {"value": value, "unit": unit}


def _profile(*queries, create_first=True):
    events = [{"type": "GenieDialog_create", "duration": 10, "start": 1, "stop": 11,
               "init-time": _kpi(2000000, "us")}]
    for q in queries:
        events.append({"type": "GenieDialog_query", **q} if create_first else {**q, "type": "GenieDialog_query"})
    events.append({"type": "GenieDialog_free", "duration": 5, "start": 90, "stop": 95})
    return {"header": {"header_version": {"major": 0, "minor": 1, "patch": 0},
                       "version": {"major": 0, "minor": 1, "patch": 0}, "artifact_type": "GENIE_PROFILE"},
            "metadata": {"timestamp": 1}, "components": [{"name": "dialog0", "type": "dialog", "events": events}]}


Q1 = {"num-prompt-tokens": _kpi(100, ""), "prompt-processing-rate": _kpi(500.0, "toks/sec"),
      "time-to-first-token": _kpi(200000, "us"), "num-generated-tokens": _kpi(50, ""),
      "token-generation-rate": _kpi(25.0, "toks/sec"), "token-generation-time": _kpi(2000, "ms")}
Q2 = {**Q1, "token-generation-rate": _kpi(20.0, "toks/sec")}


def test_two_queries_are_two_runs_sharing_the_init_time_and_keys_may_come_before_type():
    text = "genie-t2t-run --profile p.json\n" + json.dumps(_profile(Q1, Q2, create_first=False), indent=2)
    a, b = genie.parse(text)
    assert (a.values["decode_tps"], b.values["decode_tps"]) == (25.0, 20.0)
    assert a.values["load_s"] == b.values["load_s"] == 2.0
    assert a.values["decode_s"] == 2.0 and a.values["ttft_s"] == approx(0.2)  # ms and us converted
    assert a.counts == {"prompt_tokens": 100, "gen_tokens": 50}
    lines = text.split("\n")
    assert '"token-generation-rate"' in lines[a.source_lines["decode_tps"] - 1]
    assert b.source_lines["decode_tps"] > a.source_lines["decode_tps"]


def test_compact_profile_after_other_lines_and_a_cut_profile():
    compact = "[INFO] done\nprofile: " + json.dumps(_profile(Q1))
    [run] = genie.parse(compact)
    assert run.values["prefill_tps"] == 500.0 and run.source_lines["prefill_tps"] == 2
    pretty = json.dumps(_profile(Q1), indent=2)
    cut = pretty[: pretty.index('"token-generation-time"')]
    [run] = genie.parse(cut)
    assert run.values["decode_tps"] == 25.0 and "decode_s" not in run.values
    assert run.values["load_s"] == 2.0 and any("not complete" in n for n in run.notes)
    only_create = pretty[: pretty.index('"GenieDialog_query"')]
    [run] = genie.parse(only_create)
    assert run.failed and run.values == {"load_s": 2.0}


def test_pipeline_profile():
    prof = {"header": {"artifact_type": "GENIE_PROFILE"}, "components": [{"name": "p0", "type": "pipeline", "events": [
        {"type": "GeniePipeline_create", "duration": 1500000, "start": 0, "stop": 1500000},
        {"type": "GeniePipeline_execute", "num-prompt-tokens": _kpi(10, ""),
         "token-generation-rate": _kpi(12.5, "toks/sec")}]}]}
    [run] = genie.parse(json.dumps(prof, indent=1))
    assert run.values == {"decode_tps": 12.5, "load_s": 1.5} and run.identity["event"] == "GeniePipeline_execute"


def test_later_libgenie_console_without_profile_and_an_error():
    text = "Using libGenie.so version 1.1.0\n[INFO]  \"Using create From Binary\"\n[PROMPT]: hi\n[BEGIN]: Hello[END]"
    [run] = genie.parse(text)
    assert run.failed.startswith("no KPIs") and run.identity["version"] == "libGenie 1.1.0"
    err = "Using libGenie.so version 1.5.0\n[ERROR] \"Could not load backend library libQnnHtp.so\"\n"
    [run] = genie.parse(err)
    assert run.failed == '"Could not load backend library libQnnHtp.so"'


def test_kpi_lines_glued_after_end_and_crlf():
    text = "Using libGenie.so version 1.0.0\r\n[BEGIN]: hi there[END]Prompt processing: 1000 us\r\n" \
           "Token generation: 2000000 us, 10.000000 tokens/s\r\n"
    [run] = genie.parse(text)
    assert run.values == {"prefill_s": 0.001, "decode_s": 2.0, "decode_tps": 10.0}
    assert run.source_lines == {"prefill_s": 2, "decode_s": 3, "decode_tps": 3}


def test_llama_cpp_timings_are_not_genie():
    text = ("llama_perf_context_print: prompt eval time =     100.00 ms /    10 tokens\n"
            "llama_perf_context_print:        eval time =     200.00 ms /    20 runs\n"
            "Prompt processing: fast\nToken generation: slow")
    assert not genie.detect(text)
