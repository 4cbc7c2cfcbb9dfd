"""Parsers of other engines' benchmark output (issue 16): text in, `ToolRun`s out.

One module per tool family, each ending with `PARSER = ToolParser(name, detect, parse)`:

    detect(text: str) -> bool            # the text carries this tool's output
    parse(text: str) -> list[ToolRun]    # every run in it, in file order; never raises on odd lines

(llama-bench's own formats stay with suite.importers.llama_bench, which makes them records.)

Parsers are pure: no files, no records. They report what the text says, in base units (seconds,
tok/s, bytes) under edgebench's metric names; they do not judge validity (zero turns, zero
durations, infinite rates: `invalid_reason` below, which the importer and the runtimes apply) except where the text itself says the run
failed (`failed`). Every value names the line it came from (`source_lines`), so a test and a reader
can check it against the capture.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from suite.core.registry import Registry


@dataclass
class ToolRun:
    """One run as another tool printed it."""

    #: engine family: litert-lm | executorch | genie | mlc | llama.cpp | whisper.cpp
    tool: str
    #: which of the tool's output forms was parsed (e.g. "BenchmarkInfo", "PyTorchObserver", "llama_perf")
    form: str
    #: edgebench metric names, base units: prefill_tps, decode_tps, ttft_s, load_s, peak_rss_bytes, ...;
    #: whisper.cpp: asr_load_s, asr_mel_s, asr_sample_s, asr_encode_s, asr_decode_s, asr_batchd_s,
    #: asr_prompt_s, asr_total_s
    values: dict[str, float] = field(default_factory=dict)
    #: prompt_tokens, gen_tokens, prefill_turns, decode_turns, iteration, runs ...
    counts: dict[str, int] = field(default_factory=dict)
    #: value or count name -> 1-based line number in the text it was read from
    source_lines: dict[str, int] = field(default_factory=dict)
    #: what the text says about the run: model, device, backend, version, build, threads, ...
    identity: dict[str, str] = field(default_factory=dict)
    #: the tool's own timestamps of the run's events, in seconds on the tool's clock (ExecuTorch's observer:
    #: the wall clock, epoch; Genie's profile: a monotonic clock of its own): load_start, load_end,
    #: inference_start, prefill_end, first_token, inference_end
    clock: dict[str, float] = field(default_factory=dict)
    #: the text says the run failed or measured nothing (an assert, an error, "No prefill turns recorded")
    failed: str | None = None
    #: quirks met on the way (a truncated block, a derived value, an anomaly such as a total time from init)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ToolParser:
    name: str
    detect: Callable[[str], bool]
    parse: Callable[[str], list[ToolRun]]


#: counts that must be positive when the text gives them
POSITIVE_COUNTS = ("prompt_tokens", "gen_tokens", "prefill_turns", "decode_turns")
#: figures that must be positive and finite when the text gives them; any other figure printed as 0 (an
#: init phase of 0.00 ms, whisper-bench's mel and decode times when it ran neither) is "not measured"
POSITIVE_VALUES = ("prefill_tps", "decode_tps", "ttft_s", "load_s", "asr_encode_s")

def invalid_reason(run: ToolRun) -> str | None:
    """Why the run's numbers cannot stand as a measurement (None: they can)."""
    if run.failed:
        return run.failed
    for name in POSITIVE_COUNTS:
        if name in run.counts and run.counts[name] <= 0:
            return f"{name.replace('_', ' ')} = {run.counts[name]}: nothing was measured"
    for name, value in run.values.items():
        if not math.isfinite(value):
            return f"{name} = {value}: not a finite number"
        if name in POSITIVE_VALUES and value <= 0:
            return f"{name} = {value:g}: a zero {'rate' if name.endswith('_tps') else 'duration'}"
    if not run.values:
        return "no figures in the output"
    return None


TOOL_PARSERS: Registry[ToolParser] = Registry("tool")
TOOL_PARSERS.add("litert-lm", "suite.runtimes.outputs.litert_lm:PARSER", about="BenchmarkInfo blocks, leaderboard JSONL")
TOOL_PARSERS.add("executorch", "suite.runtimes.outputs.executorch:PARSER",
                 about="PyTorchObserver lines, stats blocks, benchmark-app JSON")
TOOL_PARSERS.add("genie", "suite.runtimes.outputs.genie:PARSER", about="genie-t2t-run console lines, --profile JSON")
TOOL_PARSERS.add("llama.cpp", "suite.runtimes.outputs.llama_cpp:PARSER",
                 about="llama_perf / llama_print_timings blocks, llama-cli [ Prompt: | Generation: ] lines")
TOOL_PARSERS.add("mlc", "suite.runtimes.outputs.mlc:PARSER", about="MLC / WebLLM runtime_stats_text")
TOOL_PARSERS.add("whisper.cpp", "suite.runtimes.outputs.whisper_cpp:PARSER",
                 about="whisper_print_timings, whisper-bench, bench-all tables")

__all__ = ["POSITIVE_COUNTS", "POSITIVE_VALUES", "TOOL_PARSERS", "ToolParser", "ToolRun", "invalid_reason"]
