"""LiteRT-LM output: `BenchmarkInfo` blocks of litert_lm_main / litert_lm_advanced_main, leaderboard JSONL
rows (derived from `--metric_proto_file_path`), and the `litert-lm benchmark` Python CLI.

Blocks (io_types.cc `operator<<(BenchmarkInfo)`), three generations of phase names:
"Executor initialization" + `Total init time:` (2025), "Executor" + `Total init time:` (early 2026),
"Init Executor" ... `- Init Total:` (v0.10+). Every block is one run: with `--num_iterations=N` each
iteration prints its own block (the engine is initialised once, so the init phases repeat); turn lines
whose numbering restarts at 1 without a new `BenchmarkInfo:` header (a log that kept only the turn
lines) also start a new run. A `BenchmarkInfo:` line with no block lines after it (a model may write
the word) starts nothing; a block identical to the one before it is the same run printed twice and
only the last is kept.

Peak memory (`--report_peak_memory_footprint`): TFLite's MemoryUsageMonitor prints MB as bytes / 2^20
(`BytesToMegabytes`: bytes / 1024.0 / 1024.0), so MB here is MiB. `Peak system ram usage` is the
sampled peak of ru_maxrss (peak RSS); `Peak private footprint` is, on Linux/Android, ru_maxrss + VmSwap
(on macOS phys_footprint). peak_rss_bytes is the former when printed, else the latter (noted).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field

from suite.runtimes.outputs import ToolParser, ToolRun
from suite.runtimes.outputs._text import NUM_OR_INF, absl_duration, drop_nan, finite, lines, to_float

TOOL = "litert-lm"
FORM_BLOCK = "BenchmarkInfo"
FORM_JSONL = "leaderboard-jsonl"
FORM_CLI = "litert-lm-cli"
MIB = 1024 * 1024

_HEADER = re.compile(r"(?:^|\W)BenchmarkInfo:\s*$")
_INIT = re.compile(r"^\s*Init Phases\s*\(\s*(\d+)\s*\)\s*:", re.I)
_PHASE = re.compile(rf"^\s*-\s+(.+?)\s*:\s*({NUM_OR_INF})\s*ms\s*$", re.I)
_TOTAL_INIT = re.compile(rf"^\s*Total init time\s*:\s*({NUM_OR_INF})\s*ms", re.I)
_TTFT = re.compile(rf"^\s*Time to first token\s*:\s*({NUM_OR_INF})\s*s\b", re.I)
_TURNS = re.compile(r"^\s*(Prefill|Decode|TextToTokenIds)\s+Turns\s*\(\s*Total\s*:?\s*(\d+)", re.I)
_TURN = re.compile(r"^\s*(Prefill|Decode)\s+Turn\s+(\d+)\s*:\s*Processed\s+(\d+)\s+tokens?\s+in\s+(\S+?)\s+duration",
                   re.I)
_SPEED = re.compile(rf"^\s*(Prefill|Decode)\s+Speed\s*:\s*({NUM_OR_INF})\s*tokens?\s*/\s*s", re.I)
_NO_TURNS = re.compile(r"^\s*No\s+(prefill|decode)\s+turns\s+recorded", re.I)
_TTI_TURN = re.compile(r"^\s*Turn\s+(\d+)\s*:\s*(\S+?)\s*,\s*(\d+)\s+tokens?", re.I)
_OTHER_SECTION = re.compile(r"^\s*(Mark Durations\s*\(|Profile Summary\s*:)", re.I)
_RULE = re.compile(r"^\s*-{10,}\s*$")
_PEAK_PRIVATE = re.compile(rf"^\s*Peak private footprint\s*:\s*({NUM_OR_INF})\s*MB", re.I)
_PEAK_SYSTEM = re.compile(rf"^\s*Peak system ram usage\s*:\s*({NUM_OR_INF})\s*MB", re.I)
_BACKEND = re.compile(r"^\s*Choose backend\s*:\s*(\w+)", re.I)
_BACKEND_FLAG = re.compile(r"--backend[= ](\w+)")
_MODEL_PATH = re.compile(r"(?:^|\s)(?:--)?model_path\s*[=:]\s*(\S+)")
_ERROR = re.compile(r"(Check failed|Failed to create (?:engine|session|conversation)|\bFATAL\b|Segmentation fault"
                    r"|\bAborted\b|terminate called)", re.I)
_SOURCE_FILE = re.compile(r"\blitert_lm_\w+\.cc:\d+\]")

# `litert-lm benchmark` (python/litert_lm_cli/commands/benchmark.py)
_CLI_HEADER = re.compile(r"^\s*Benchmarking model\s*:\s*(.*?)\s*(?:\((.*)\))?\s*$")
_CLI_PARAM = re.compile(r"^\s*(Backend|Number of tokens in prefill|Number of tokens in decode|Max number of tokens"
                        r"|Cache|Speculative decoding|Target)\s*:\s*(.*?)\s*$", re.I)
_CLI_ITERATION = re.compile(r"^\s*Running iteration\s+(\d+)\s+of\s+(\d+)", re.I)
_CLI_WARMUP = re.compile(r"^\s*Running warmup", re.I)
_CLI_RESULTS = re.compile(r"^\s*-+\s*Results\s*-+\s*$", re.I)
_CLI_RESULT = re.compile(rf"^\s*(Prefill speed|Decode speed|Init time|Time to first token)\s*:\s*({NUM_OR_INF})", re.I)
_CLI_ERROR = re.compile(r"^\s*(An error occurred during benchmarking|Could not find .*)$", re.I)
_EXCEPTION = re.compile(r"^\s*([\w.]*(?:Error|Exception))\s*:\s*(.*)$")


@dataclass
class _Turn:
    index: int
    tokens: int
    seconds: float | None
    line: int
    speed: float | None = None
    speed_line: int | None = None


@dataclass
class _Block:
    start: int
    header: bool
    identity: dict[str, str]
    phases: list[tuple[str, float | None, int]] = field(default_factory=list)
    declared_phases: tuple[int, int] | None = None
    total_init: tuple[float | None, int] | None = None
    ttft: tuple[float | None, int] | None = None
    turns: dict[str, list[_Turn]] = field(default_factory=lambda: {"prefill": [], "decode": []})
    declared: dict[str, tuple[int, int]] = field(default_factory=dict)
    no_turns: dict[str, int] = field(default_factory=dict)
    tti: list[tuple[float | None, int, int]] = field(default_factory=list)
    peaks: dict[str, tuple[float | None, int]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def detect(text: str) -> bool:
    """BenchmarkInfo block lines, LiteRT-LM log lines, a leaderboard row or the Python CLI's header."""
    cli = False
    for _, line in lines(text):
        if line.lstrip().startswith("#"):
            continue
        if (_TURN.match(line) or _INIT.match(line) or _NO_TURNS.match(line) or _PEAK_PRIVATE.match(line)
                or _PEAK_SYSTEM.match(line) or _SOURCE_FILE.search(line) or _row(line) is not None):
            return True
        if _CLI_HEADER.match(line) and ".litertlm" in line:
            return True
        if _CLI_HEADER.match(line):
            cli = True
        elif cli and re.match(r"^\s*Number of tokens in prefill\s*:", line):
            return True
    # the log prefix names LiteRT-LM's own sources (lines() strips it)
    return any(_SOURCE_FILE.search(raw) for raw in text.split("\n") if not raw.lstrip().startswith("#"))


def _parse(text: str) -> list[ToolRun]:
    """Every run in `text`, in file order: BenchmarkInfo blocks, JSONL rows, the Python CLI's results."""
    blocks: list[_Block] = []
    cur: _Block | None = None
    pending_header: int | None = None
    section: str | None = None
    identity: dict[str, str] = {}
    early_peaks: dict[str, tuple[float | None, int]] = {}
    rows: list[tuple[int, ToolRun]] = []
    cli: _Cli | None = None
    cli_section = False
    errors: list[tuple[int, str]] = []
    exceptions: list[tuple[int, str]] = []
    stray_headers: list[int] = []

    def block(n: int) -> _Block:
        nonlocal cur, pending_header
        if pending_header is not None or cur is None:
            cur = _Block(start=pending_header or n, header=pending_header is not None, identity=dict(identity))
            if pending_header is None:
                cur.notes.append(f"block lines from line {n} without a 'BenchmarkInfo:' header")
            else:
                cur.lines.append("BenchmarkInfo:")
            pending_header = None
            blocks.append(cur)
            if early_peaks:
                cur.peaks.update(early_peaks)
                early_peaks.clear()
        return cur

    for n, line in lines(text):
        s = line.strip()
        try:
            if cli is not None and cli_section:
                m = _CLI_RESULT.match(line)
                if m:
                    cli.result(m.group(1).lower(), to_float(m.group(2)), n)
                    continue
                cli_section = False
            row = _row(line)
            if row is not None:
                rows.append((n, _row_run(row, n)))
                continue
            if s.startswith("{") and ("prefill_tok_s" in s or "decode_tok_s" in s) and _cut_row(s):
                rows.append((n, _partial_row(s, n)))
                continue
            m = _CLI_HEADER.match(line)
            if m and not s.startswith("#"):
                cli = _Cli(ToolRun(tool=TOOL, form=FORM_CLI), n)
                name, path = m.group(1), m.group(2)
                if name:
                    cli.run.identity["model"] = name
                if path:
                    cli.run.identity["model_path"] = path
                continue
            if cli is not None and cli.take(line, n):
                cli_section = _CLI_RESULTS.match(line) is not None
                continue
            if _HEADER.search(s):
                if pending_header is not None:
                    stray_headers.append(pending_header)
                pending_header, section = n, None
                continue
            m = _TURN.match(line)
            if m:
                kind, index = m.group(1).lower(), int(m.group(2))
                if cur is not None and pending_header is None:
                    done = cur.turns[kind]
                    if done and index <= done[-1].index:
                        cur = None  # numbering restarts: the next iteration, its header not in the text
                b = block(n)
                dur = absl_duration(m.group(4))
                if dur is None:
                    b.notes.append(f"line {n}: duration {m.group(4)!r} is not an absl duration")
                b.turns[kind].append(_Turn(index, int(m.group(3)), dur, n))
                b.lines.append(s)
                section = kind
                continue
            m = _SPEED.match(line)
            if m and cur is not None and pending_header is None:
                kind = m.group(1).lower()
                if cur.turns[kind] and cur.turns[kind][-1].speed is None:
                    cur.turns[kind][-1].speed, cur.turns[kind][-1].speed_line = to_float(m.group(2)), n
                    cur.lines.append(s)
                continue
            m = _INIT.match(line)
            if m:
                if cur is not None and pending_header is None and (cur.declared_phases or cur.phases or cur.ttft
                                                                   or any(cur.turns.values())):
                    cur = None  # init phases come first in a block: this is the next one, its header lost
                b = block(n)
                b.declared_phases = (int(m.group(1)), n)
                b.lines.append(s)
                section = "init"
                continue
            if section == "init" and cur is not None:
                m = _PHASE.match(line)
                if m:
                    cur.phases.append((m.group(1).strip(), to_float(m.group(2)), n))
                    cur.lines.append(s)
                    continue
                m = _TOTAL_INIT.match(line)
                if m:
                    cur.total_init = (to_float(m.group(1)), n)
                    cur.lines.append(s)
                    continue
            m = _TTFT.match(line)
            if m and (pending_header is not None or cur is not None):
                if cur is not None and pending_header is None and (cur.ttft or any(cur.turns.values())):
                    cur = None  # TTFT comes before the turns: the next block, its header lost
                b = block(n)
                b.ttft = (to_float(m.group(1)), n)
                b.lines.append(s)
                section = None
                continue
            m = _TURNS.match(line)
            if m:
                kind = m.group(1).lower()
                if kind == "texttotokenids":
                    if cur is not None or pending_header is not None:
                        block(n)
                        section = "tti"
                    continue
                if cur is not None and pending_header is None and (cur.turns[kind] or kind in cur.declared):
                    cur = None  # a second header of the same kind: the next iteration
                b = block(n)
                b.declared[kind] = (int(m.group(2)), n)
                b.lines.append(s)
                section = kind
                continue
            m = _NO_TURNS.match(line)
            if m:
                b = block(n)
                b.no_turns[m.group(1).lower()] = n
                b.lines.append(s)
                continue
            if section == "tti" and cur is not None:
                m = _TTI_TURN.match(line)
                if m:
                    cur.tti.append((absl_duration(m.group(2)), int(m.group(3)), n))
                    cur.lines.append(s)
                    continue
            if _OTHER_SECTION.match(line):
                section = "other"
                continue
            if _RULE.match(line):
                if section == "init":
                    section = None
                continue
            m = _PEAK_PRIVATE.match(line) or _PEAK_SYSTEM.match(line)
            if m:
                key = "private" if "private" in m.group(0).lower() else "system"
                (cur.peaks if cur is not None else early_peaks)[key] = (to_float(m.group(1)), n)
                continue
            if s.startswith("#"):
                continue  # a comment or a capture's header: not the tool's output
            m = _BACKEND.match(line)
            if m:
                identity["backend"] = m.group(1).lower()
                continue
            m = _BACKEND_FLAG.search(line)
            if m and "backend" not in identity:
                identity["backend"] = m.group(1).lower()
            m = _MODEL_PATH.search(line)
            if m and "model_path" not in identity:
                identity["model_path"] = m.group(1)
                identity["model"] = os.path.basename(m.group(1).rstrip("/"))
            if _ERROR.search(line):
                errors.append((n, s))
            if _EXCEPTION.match(line):
                exceptions.append((n, s))
        except Exception as exc:  # one odd line never sinks a parse
            if cur is not None:
                cur.notes.append(f"line {n}: not understood ({type(exc).__name__})")

    runs: list[tuple[int, ToolRun]] = []
    kept = _drop_duplicates(blocks)
    for i, b in enumerate(kept, start=1):
        runs.append((b.start, _block_run(b, i, len(kept))))
    if stray_headers or pending_header is not None:
        stray = stray_headers + ([pending_header] if pending_header is not None else [])
        for _, r in runs[-1:]:
            r.notes.append("'BenchmarkInfo:' at line(s) " + ", ".join(map(str, stray))
                           + " not followed by block lines (model text or a cut block): ignored")
    if cli is not None:
        if cli.results_line is not None and runs:
            cli.run.notes.append(f"{len(runs)} BenchmarkInfo block(s) in the same text ignored: the CLI's results "
                                 "average its runs (warm-up excluded)")
            runs = []
        runs.append((cli.line, cli.finish(exceptions)))
    runs.extend(rows)
    runs.sort(key=lambda t: t[0])
    out = [r for _, r in runs]
    if not out and errors:
        n, s = errors[0]
        out.append(ToolRun(tool=TOOL, form="log", identity=dict(identity), failed=s[:200],
                           notes=[f"line {n}: no BenchmarkInfo block; the log stops with an error"]))
    return out


def _drop_duplicates(blocks: list[_Block]) -> list[_Block]:
    kept: list[_Block] = []
    for b in blocks:
        if not (b.lines or b.peaks):
            continue
        if kept and kept[-1].lines == b.lines and len(b.lines) > 2:
            b.notes.append(f"the block at line {kept[-1].start} is identical: the same run printed twice, "
                           "the last one kept")
            for k, v in kept[-1].peaks.items():
                b.peaks.setdefault(k, v)
            kept[-1] = b
        else:
            kept.append(b)
    return kept


def _phase_key(name: str) -> str:
    return "init_s/" + re.sub(r"\s+", "_", name.strip().lower())


def _block_run(b: _Block, iteration: int, total: int) -> ToolRun:
    run = ToolRun(tool=TOOL, form=FORM_BLOCK, identity=dict(b.identity), notes=list(b.notes))
    v, c, src = run.values, run.counts, run.source_lines
    for name, ms, n in b.phases:
        if ms is None:
            continue
        key = _phase_key(name)
        v[key], src[key] = ms / 1000.0, n
        if name.strip().lower() == "init total":
            v["load_s"], src["load_s"] = ms / 1000.0, n
    if b.total_init is not None and b.total_init[0] is not None:
        ms, n = b.total_init
        v["init_s/total_init_time"], src["init_s/total_init_time"] = ms / 1000.0, n
        if "load_s" not in v:
            v["load_s"], src["load_s"] = ms / 1000.0, n
            run.notes.append("load_s from 'Total init time' (older builds print it as the sum of the phases)")
    if "load_s" in v and b.phases:
        run.notes.append("init phases overlap: the init total is not their sum")
    if b.declared_phases is not None and b.declared_phases[0] != len(b.phases):
        run.notes.append(f"'Init Phases ({b.declared_phases[0]})' lists {len(b.phases)} (a phase folded into "
                         "another is counted but not printed)")
    if b.ttft is not None and b.ttft[0] is not None:
        v["ttft_s"], src["ttft_s"] = b.ttft[0], b.ttft[1]
    for kind, rate, count, secs in (("prefill", "prefill_tps", "prompt_tokens", "prefill_s"),
                                    ("decode", "decode_tps", "gen_tokens", "decode_s")):
        turns = b.turns[kind]
        if kind in b.no_turns:
            c[f"{kind}_turns"], src[f"{kind}_turns"] = 0, b.no_turns[kind]
            reason = f"no {kind} turns recorded"
            run.failed = reason if run.failed is None else f"{run.failed}; {reason}"
            continue
        if not turns:
            continue
        c[f"{kind}_turns"], src[f"{kind}_turns"] = len(turns), turns[0].line
        c[count], src[count] = sum(t.tokens for t in turns), turns[0].line
        durations = [t.seconds for t in turns]
        if all(d is not None for d in durations):
            v[secs], src[secs] = sum(durations), turns[0].line  # type: ignore[arg-type]
        if len(turns) == 1 and turns[0].speed is not None:
            v[rate], src[rate] = turns[0].speed, turns[0].speed_line  # type: ignore[assignment]
        elif secs in v and v[secs] > 0:
            v[rate], src[rate] = c[count] / v[secs], turns[0].line
            why = f"{len(turns)} turns: tokens / duration summed over them" if len(turns) > 1 else \
                "no speed line: tokens / duration"
            run.notes.append(f"{rate} derived ({why})")
        declared = b.declared.get(kind)
        if declared is not None and declared[0] > len(turns):
            run.notes.append(f"'{kind.capitalize()} Turns (Total {declared[0]} turns)' but {len(turns)} found "
                             "(cut block)")
    if b.tti:
        secs = [d for d, _, _ in b.tti]
        if all(d is not None for d in secs):
            v["text_to_token_ids_s"], src["text_to_token_ids_s"] = sum(secs), b.tti[0][2]  # type: ignore[arg-type]
        c["text_to_token_ids_turns"], src["text_to_token_ids_turns"] = len(b.tti), b.tti[0][2]
    _peaks(run, b.peaks)
    if total > 1 or not b.header:
        c["iteration"], src["iteration"] = iteration, b.start
        if total > 1:
            run.notes.append(f"iteration {iteration} of {total} runs in the text (one block per iteration; the "
                             "engine is initialised once, so init phases repeat)")
    if not b.header:
        run.notes.append("no 'BenchmarkInfo:' header: init phases and TTFT of this run are not in the text")
    return run


def _peaks(run: ToolRun, peaks: dict[str, tuple[float | None, int]]) -> None:
    v, src = run.values, run.source_lines
    for key, name, value_name in (("system", "Peak system ram usage", "peak_system_ram_bytes"),
                                  ("private", "Peak private footprint", "peak_private_footprint_bytes")):
        if key not in peaks:
            continue
        mb, n = peaks[key]
        if mb is None or not math.isfinite(mb) or mb < 0:
            run.notes.append(f"line {n}: {name} {mb} MB: the monitor had no sample (absent)")
            continue
        v[value_name], src[value_name] = float(round(mb * MIB)), n
    if "peak_system_ram_bytes" in v:
        v["peak_rss_bytes"], src["peak_rss_bytes"] = v["peak_system_ram_bytes"], src["peak_system_ram_bytes"]
        run.notes.append("peak_rss_bytes: 'Peak system ram usage' (sampled ru_maxrss), MB = 2^20 bytes")
    elif "peak_private_footprint_bytes" in v:
        v["peak_rss_bytes"], src["peak_rss_bytes"] = (v["peak_private_footprint_bytes"],
                                                      src["peak_private_footprint_bytes"])
        run.notes.append("peak_rss_bytes: 'Peak private footprint' (MB = 2^20 bytes; on Linux/Android it is "
                         "ru_maxrss + VmSwap, so it can exceed the peak RSS by the swap in use); the peak is "
                         "process-wide, printed after an iteration")


# --- leaderboard JSONL rows -----------------------------------------------------------------------------

def _row(line: str) -> dict | None:
    s = line.strip()
    if not (s.startswith("{") and s.endswith("}")) or "_tok_s" not in s:
        return None
    try:
        row = json.loads(s)
    except ValueError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("metrics"), dict):
        return None
    m = row["metrics"]
    if "prefill_tok_s" not in m and "decode_tok_s" not in m:
        return None
    runtime = str(row.get("runtime") or "").lower()
    if runtime and "litert" not in runtime:
        return None  # a leaderboard row of another engine
    if not runtime and ".litertlm" not in json.dumps([row.get("file"), row.get("row_id"), row.get("model")]):
        return None
    return row


_ROW_METRICS = (("prefill_tok_s", "prefill_tps", 1.0), ("decode_tok_s", "decode_tps", 1.0), ("ttft_s", "ttft_s", 1.0),
                ("init_total_ms", "load_s", 1e-3), ("init_total_ms", "init_s/init_total", 1e-3),
                ("init_executor_ms", "init_s/init_executor", 1e-3))
_ROW_IDENTITY = (("model", "model"), ("file", "model_file"), ("device", "device"), ("device_id", "device_id"),
                 ("os", "os"), ("platform", "platform"), ("accelerator", "backend"), ("delegate", "delegate"),
                 ("runtime_version", "version"), ("binary", "build"), ("date", "date"), ("row_id", "row_id"))


def _row_run(row: dict, n: int) -> ToolRun:
    run = ToolRun(tool=TOOL, form=FORM_JSONL)
    metrics = row.get("metrics") or {}
    _row_metrics(run, metrics, n)
    for key, name in _ROW_IDENTITY:
        if isinstance(row.get(key), (str, int, float)) and row.get(key) != "":
            run.identity[name] = str(row[key])
    cond = row.get("conditions") if isinstance(row.get("conditions"), dict) else {}
    for key, name in (("prefill_tokens", "prompt_tokens"), ("decode_tokens", "gen_tokens")):
        if isinstance(cond.get(key), int):
            run.counts[name], run.source_lines[name] = cond[key], n
    its = row.get("iterations")
    warm = cond.get("warmup_iterations") if isinstance(cond.get("warmup_iterations"), int) else 0
    if isinstance(its, list):
        measured = max(len(its) - warm, 0)
        run.counts["runs"], run.source_lines["runs"] = measured, n
        run.notes.append(f"metrics are medians of {measured} iteration(s) after {warm} warm-up (derived row, "
                         "not raw tool output; token counts are the benchmark's forced prefill/decode lengths)")
    status = row.get("status")
    if isinstance(status, str) and status and status != "measured":
        run.identity["status"] = status
        if re.search(r"fail|error|crash", status, re.I):
            run.failed = status
    return run


def _row_metrics(run: ToolRun, metrics: dict, n: int) -> None:
    for key, name, scale in _ROW_METRICS:
        x = metrics.get(key)
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            run.values[name], run.source_lines[name] = float(x) * scale, n
    for key, name in (("peak_mem_mb", "peak_rss_bytes"), ("peak_private_mb", "peak_private_footprint_bytes")):
        if key not in metrics:
            continue
        x = metrics.get(key)
        if isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0:
            run.values[name], run.source_lines[name] = float(round(x * MIB)), n
            run.notes.append(f"{name} from {key} (MB = 2^20 bytes, as LiteRT-LM's memory monitor prints it)")
        else:
            run.notes.append(f"{key} is {json.dumps(x)}: no peak memory reported (absent, not 0)")


def _cut_row(s: str) -> bool:
    """A row that is not complete JSON and names no other engine."""
    try:
        json.loads(s)
        return False  # complete: _row() said whether it is ours
    except ValueError:
        pass
    m = re.search(r'"runtime"\s*:\s*"([^"]*)"', s)
    return m is None or "litert" in m.group(1).lower()


def _partial_row(s: str, n: int) -> ToolRun:
    """A row cut short: whatever its complete `metrics` object says."""
    run = ToolRun(tool=TOOL, form=FORM_JSONL, notes=[f"line {n}: row is not complete JSON (cut?)"])
    m = re.search(r'"metrics"\s*:\s*(\{[^{}]*\})', s)
    metrics = None
    if m:
        try:
            metrics = json.loads(m.group(1))
        except ValueError:
            metrics = None
    if isinstance(metrics, dict):
        _row_metrics(run, metrics, n)
    for key, name in _ROW_IDENTITY:
        mm = re.search(rf'"{key}"\s*:\s*"([^"]*)"', s)
        if mm and mm.group(1):
            run.identity[name] = mm.group(1)
    if not run.values:
        run.failed = "cut row: no complete metrics"
    return run


# --- the Python CLI -------------------------------------------------------------------------------------

@dataclass
class _Cli:
    run: ToolRun
    line: int
    params: dict[str, int] = field(default_factory=dict)
    results_line: int | None = None
    failed_line: int | None = None

    def take(self, line: str, n: int) -> bool:
        """Consume a line of the CLI's echo (True when it was one)."""
        run = self.run
        if _CLI_RESULTS.match(line):
            self.results_line = n
            return True
        m = _CLI_PARAM.match(line)
        if m:
            key = {"backend": "backend", "number of tokens in prefill": "prefill_tokens",
                   "number of tokens in decode": "decode_tokens", "max number of tokens": "max_num_tokens",
                   "cache": "cache", "speculative decoding": "speculative_decoding",
                   "target": "target"}[m.group(1).lower()]
            if m.group(2):
                run.identity[key], self.params[key] = m.group(2), n
            return True
        m = _CLI_ITERATION.match(line)
        if m:
            run.counts["runs"], run.source_lines["runs"] = int(m.group(2)), n
            return True
        if _CLI_WARMUP.match(line):
            run.notes.append(f"line {n}: a warm-up run precedes the measured ones (not in the results)")
            return True
        m = _CLI_ERROR.match(line)
        if m:
            run.failed, self.failed_line = m.group(1), n
            return True
        return False

    def result(self, key: str, x: float | None, n: int) -> None:
        name = {"prefill speed": "prefill_tps", "decode speed": "decode_tps", "init time": "load_s",
                "time to first token": "ttft_s"}[key]
        if x is not None:
            self.run.values[name], self.run.source_lines[name] = x, n

    def finish(self, exceptions: list[tuple[int, str]]) -> ToolRun:
        run = self.run
        if run.failed is not None:
            later = [s for n, s in exceptions if n > (self.failed_line or 0)]
            if later:
                run.failed = f"{run.failed}: {later[-1][:160]}"
            return run
        if self.results_line is None:
            run.failed = "no results: the text ends before '----- Results -----'"
            run.notes.append("cut capture: only the parameter echo of `litert-lm benchmark` is in the text")
            return run
        if not run.values:
            run.failed = "no result lines after '----- Results -----'"
            return run
        if run.counts.get("runs", 1) > 1:
            run.notes.append(f"results are the mean of {run.counts['runs']} runs (the CLI averages them)")
        for key, name in (("prefill_tokens", "prompt_tokens"), ("decode_tokens", "gen_tokens")):
            x = to_float(run.identity.get(key))
            if finite(x) and x >= 0:  # type: ignore[operator]
                run.counts[name], run.source_lines[name] = int(x), self.params[key]  # type: ignore[arg-type]
        if "prompt_tokens" in run.counts or "gen_tokens" in run.counts:
            run.notes.append("token counts are the requested ones (benchmark mode forces them)")
        return run



def parse(text: str) -> list[ToolRun]:
    """Every run in `text`, in file order; never raises: a parser bug gives one failed run naming it."""
    try:
        return drop_nan(_parse(text))
    except Exception as exc:  # the contract: a capture never sinks an import
        return [ToolRun(tool=TOOL, form="unparsed", failed=f"parser error: {type(exc).__name__}: {exc}"[:300])]


PARSER = ToolParser("litert-lm", detect, parse)
