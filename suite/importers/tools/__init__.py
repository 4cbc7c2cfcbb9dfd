"""Parsers of other engines' benchmark output (issue 16): text in, `ToolRun`s out.

One module per tool family, each ending with `PARSER = ToolParser(name, detect, parse)`:

    detect(text: str) -> bool            # the text carries this tool's output
    parse(text: str) -> list[ToolRun]    # every run in it, in file order; never raises on odd lines

(llama-bench's own formats stay with suite.importers.llama_bench, which makes them records.)

Parsers are pure: no files, no records. They report what the text says, in base units (seconds,
tok/s, bytes) under edgebench's metric names; they do not judge validity (zero turns, zero
durations, infinite rates: suite.importers.generic does) except where the text itself says the run
failed (`failed`). Every value names the line it came from (`source_lines`), so a test and a reader
can check it against the capture.
"""

from __future__ import annotations

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
    #: the text says the run failed or measured nothing (an assert, an error, "No prefill turns recorded")
    failed: str | None = None
    #: quirks met on the way (a truncated block, a derived value, an anomaly such as a total time from init)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ToolParser:
    name: str
    detect: Callable[[str], bool]
    parse: Callable[[str], list[ToolRun]]


TOOL_PARSERS: Registry[ToolParser] = Registry("tool")
TOOL_PARSERS.add("litert-lm", "suite.importers.tools.litert_lm:PARSER", about="BenchmarkInfo blocks, leaderboard JSONL")
TOOL_PARSERS.add("executorch", "suite.importers.tools.executorch:PARSER",
                 about="PyTorchObserver lines, stats blocks, benchmark-app JSON")
TOOL_PARSERS.add("genie", "suite.importers.tools.genie:PARSER", about="genie-t2t-run console lines, --profile JSON")
TOOL_PARSERS.add("llama.cpp", "suite.importers.tools.llama_cpp:PARSER",
                 about="llama_perf / llama_print_timings blocks, llama-cli [ Prompt: | Generation: ] lines")
TOOL_PARSERS.add("mlc", "suite.importers.tools.mlc:PARSER", about="MLC / WebLLM runtime_stats_text")
TOOL_PARSERS.add("whisper.cpp", "suite.importers.tools.whisper_cpp:PARSER",
                 about="whisper_print_timings, whisper-bench, bench-all tables")

__all__ = ["TOOL_PARSERS", "ToolParser", "ToolRun"]
