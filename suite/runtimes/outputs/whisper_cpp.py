"""whisper.cpp's output: whisper_print_timings blocks (whisper-cli/main, whisper-bench, apps), the tables
bench-all.sh prints, and runs that stopped before any timing.

Forms (docs/engines-parsers-llamacpp-mlc-whisper.md has the lines they come from):
- `whisper_print_timings:` lines: `load time`, `fallbacks = N p / N h` (v1.4+), `mel time`,
  `sample time = X ms / N runs (Y ms per run)`, `encode time`, `decode time`, `batchd time` and
  `prompt time` (v1.5+), `total time`; 2022 builds print `encode time = X ms / Y ms per layer` and no counts;
- whisper-bench: the same block, with `system_info:` and (2022) the text asking for results in issue #89;
- bench-all.sh: `| CPU | OS | Config | Model | Th | Load | Enc. | Commit |` (2022, whole ms) or
  `| CPU | OS | Config | Model | Th | FA | Enc. | Dec. | Bch5 | PP | Commit |` (2023+, ms per run);
- a run that loaded a model and stopped (GGML_ASSERT, an error, or a cut capture): a failed run.

`total time` is wall time since the context was created (or last reset), not inference time: in an
app that keeps its context it includes idle minutes. Every run with it says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from suite.runtimes.outputs import ToolParser, ToolRun
from suite.runtimes.outputs._text import NUM, lines

TOOL = "whisper.cpp"
FORM_TIMINGS = "whisper_print_timings"
FORM_BENCH = "whisper-bench"
FORM_BENCH_ALL = "bench-all table"
FORM_LOG = "log"

#: whisper.cpp's e_model (whisper.cpp before the `type = 3 (small)` form printed the number only)
MODEL_TYPES = {"0": "unknown", "1": "tiny", "2": "base", "3": "small", "4": "medium", "5": "large"}
_PARTS = ("load", "mel", "sample", "encode", "decode", "batchd", "prompt")

_TIMING = re.compile(
    r"whisper_print_timings\s*:\s*(?P<key>load|mel|sample|encode|decode|batchd|prompt|total)\s+time\s*=\s*"
    rf"(?P<ms>{NUM})\s*ms"
    rf"(?:\s*/\s*(?:(?P<n>\d+)\s*runs?(?:\s*\(\s*{NUM}\s*ms\s+per\s+run\s*\))?|(?P<per_layer>{NUM})\s*ms\s+per\s+layer))?",
    re.I,
)
_FALLBACKS = re.compile(r"whisper_print_timings\s*:\s*fallbacks\s*=\s*(?P<p>\d+)\s*p\s*/\s*(?P<h>\d+)\s*h", re.I)
_ERROR = re.compile(
    r"GGML_ASSERT|GGML_ABORT|\berror\s*:|failed to (?:load|initiali[sz]e|read|open|allocate)|terminate called"
    r"|Segmentation fault|\bAborted\b|CANNOT LINK EXECUTABLE|out of memory",
    re.I,
)
#: what only whisper.cpp prints while loading a model
_WHISPER_CONTEXT = re.compile(r"\bwhisper_(?:model_load|init\w*|backend_init\w*)\s*:|\bwhisper_print_timings\b")
_BENCH_ALL_HEADER = re.compile(r"^\s*\|\s*CPU\s*\|\s*OS\s*\|\s*Config\s*\|\s*Model\s*\|", re.I)

_MODEL_TYPE = re.compile(r"whisper_model_load\s*:\s*type\s*=\s*(?P<n>\d+)\s*(?:\((?P<name>[^)]+)\))?")
_MODEL_SIZE = re.compile(rf"whisper_model_load\s*:\s*model size\s*=\s*(?P<size>{NUM}\s*[KMG]i?B)", re.I)
_MODEL_FROM = re.compile(r"loading model from\s*'(?P<path>[^']+)'")
_SYSTEM_INFO = re.compile(r"^\s*(?:\w+\s*:\s*)?system_info\s*:\s*(?P<info>\S.*?)\s*\|?\s*$")
_THREADS = re.compile(r"n_threads\s*=\s*(\d+)")
_PROCESSING = re.compile(rf"processing\s*'(?P<file>[^']+)'\s*\(\s*\d+\s*samples\s*,\s*(?P<sec>{NUM})\s*sec\s*\)"
                         r"\s*,\s*(?P<threads>\d+)\s*threads")
_FLAG = re.compile(r"whisper_init\w*\s*:\s*(?P<name>use gpu|flash attn|gpu_device)\s*=\s*(?P<value>\w+)")
_OPENCL_DEVICE = re.compile(r"ggml_opencl\s*:\s*device\s*:\s*'(?P<device>[^']+)'")
_METAL_DEVICE = re.compile(r"ggml_metal_init\s*:\s*(?:found device|GPU name)\s*:\s*(?P<device>\S.*?)\s*$")
_USING_BACKEND = re.compile(r"whisper_backend_init\w*\s*:\s*using\s+(?P<backend>\w+)\s+backend")
_COREML = re.compile(r"Core ML model loaded", re.I)
_BENCH_COMMAND = re.compile(r"(?:^|[\s/$])(?:whisper-)?bench(?:\.exe)?(?:\s|$)")
_BENCH_SUBMIT = re.compile(r"you can submit these results here", re.I)


@dataclass
class _Block:
    start: int
    values: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    source_lines: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    last: tuple[int, str] | None = None
    closed: bool = False
    per_layer: list[int] = field(default_factory=list)


def detect(text: str) -> bool:
    """The text has whisper_print_timings lines, whisper.cpp's model loading log or a bench-all table."""
    return any(_WHISPER_CONTEXT.search(line) or _BENCH_ALL_HEADER.match(line) for _, line in lines(text))


def _identity(line: str, found: dict[str, str]) -> None:
    """Identity a line states (model, threads, backend, program), kept in `found` (later lines win)."""
    if m := _MODEL_TYPE.search(line):
        found["model_type"] = (m["name"] or MODEL_TYPES.get(m["n"], m["n"])).strip()
    elif m := _MODEL_SIZE.search(line):
        found["model_size"] = re.sub(r"\s+", " ", m["size"])
    elif m := _MODEL_FROM.search(line):
        found["model_file"] = m["path"].replace("\\", "/").rsplit("/", 1)[-1]
    elif m := _SYSTEM_INFO.match(line):
        found["system_info"] = m["info"]
        if t := _THREADS.search(m["info"]):
            found["threads"] = t[1]
    elif m := _PROCESSING.search(line):
        found["audio_file"] = m["file"]
        found["audio_s"] = m["sec"]
        found["threads"] = m["threads"]
    elif m := _FLAG.search(line):
        found[m["name"].replace(" ", "_")] = m["value"]
    elif m := _OPENCL_DEVICE.search(line):
        found["backend"] = "OpenCL"
        found["device"] = m["device"].strip()
    elif m := _METAL_DEVICE.search(line):
        found["backend"] = "Metal"
        found["device"] = m["device"]
    elif m := _USING_BACKEND.search(line):
        found["backend"] = m["backend"]
    elif _COREML.search(line):
        found["encoder"] = "Core ML"
    elif _BENCH_COMMAND.search(line) or _BENCH_SUBMIT.search(line):
        found["program"] = FORM_BENCH


def _timing_line(block: _Block, m: re.Match, line_no: int) -> None:
    key = m["key"].lower()
    block.keys.add(key)
    block.last = (line_no, key)
    name = f"asr_{key}_s"
    block.values[name] = float(m["ms"]) / 1000.0
    block.source_lines[name] = line_no
    if m["n"] is not None:
        block.counts[f"{key}_runs"] = int(m["n"])
        block.source_lines[f"{key}_runs"] = line_no
    if m["per_layer"] is not None:
        block.per_layer.append(line_no)
    if key == "total":
        block.closed = True


def _finish(block: _Block) -> list[str]:
    """Notes on what a block says as a whole: the total's meaning and anomaly, a cut-short block."""
    notes = []
    if block.per_layer:
        notes.append(f"2022 form 'X ms / Y ms per layer' (lines {', '.join(map(str, block.per_layer))}): no run "
                     "counts")
    parts = sum(block.values.get(f"asr_{p}_s", 0.0) for p in _PARTS)
    total = block.values.get("asr_total_s")
    if total is not None:
        notes.append("asr_total_s is wall time since the whisper context was created (or last reset), not "
                     "inference time")
        if total > 2 * parts and total - parts > 1.0:
            notes.append(f"anomaly: asr_total_s {total:.2f} s is {total / parts:.0f}x the sum of the timed parts "
                         f"({parts:.2f} s): the context was idle (an app keeping it alive) or timed something else"
                         if parts > 0 else
                         f"anomaly: asr_total_s {total:.2f} s while every timed part is 0")
        elif total < parts - max(0.01, 0.01 * parts):
            notes.append(f"asr_total_s {total:.2f} s is below the sum of the timed parts ({parts:.2f} s): the "
                         "parts are not a split of the total")
    elif block.last is not None:
        line_no, key = block.last
        missing = [p for p in ("encode", "decode", "total") if p not in block.keys]
        notes.append(f"timing block stops after its '{key} time' line (line {line_no}): no "
                     f"{', '.join(missing)} line (the output is cut short)")
    return notes


def parse(text: str) -> list[ToolRun]:
    """Every timing block and bench-all row in file order, one ToolRun each; a whisper.cpp log with
    neither gives one failed ToolRun (its assert or error line, or the output stopped before any timing)."""
    blocks: list[_Block] = []
    table_runs: list[tuple[int, ToolRun]] = []
    current: _Block | None = None
    found: dict[str, str] = {}
    starts: list[dict[str, str]] = []
    after: list[dict[str, str]] = []
    header: list[str] | None = None
    error: tuple[int, str] | None = None
    context_seen = False
    skipped: list[str] = []

    for line_no, line in lines(text):
        try:
            if _WHISPER_CONTEXT.search(line):
                context_seen = True
            if _ERROR.search(line) and (error is None or error[0] < (blocks[-1].start if blocks else 0)):
                error = (line_no, line.strip())
            before = dict(found)
            _identity(line, found)
            if blocks and found != before:
                for k, v in found.items():
                    if before.get(k) != v:
                        after[-1].setdefault(k, v)

            if _BENCH_ALL_HEADER.match(line):
                header = [c.strip() for c in line.strip().strip("|").split("|")]
                continue
            if header is not None:
                stripped = line.strip()
                if not (stripped.startswith("|") and stripped.endswith("|")):
                    header = None
                else:
                    run = _bench_all_row([c.strip() for c in stripped[1:-1].split("|")], header, line_no)
                    if run is not None:
                        table_runs.append((line_no, run))
                    continue

            if f := _FALLBACKS.search(line):
                if current is None or current.closed or "fallbacks" in current.keys:
                    current = _new_block(blocks, starts, after, found, line_no)
                current.keys.add("fallbacks")
                current.counts["fallbacks_p"] = int(f["p"])
                current.counts["fallbacks_h"] = int(f["h"])
                current.source_lines["fallbacks_p"] = current.source_lines["fallbacks_h"] = line_no
                continue
            m = _TIMING.search(line)
            if m is None:
                continue
            if current is None or current.closed or m["key"].lower() in current.keys:
                current = _new_block(blocks, starts, after, found, line_no)
            _timing_line(current, m, line_no)
        except Exception as exc:  # noqa: BLE001 - one odd line never sinks a parse
            skipped.append(f"line {line_no} skipped: {type(exc).__name__}: {exc}")

    runs: list[tuple[int, ToolRun]] = list(table_runs)
    for block, start_identity, later in zip(blocks, starts, after):
        identity = {**later, **start_identity}
        form = FORM_BENCH if identity.get("program") == FORM_BENCH else FORM_TIMINGS
        run = ToolRun(tool=TOOL, form=form, values=block.values, counts=block.counts,
                      source_lines=block.source_lines, identity=identity, notes=block.notes + _finish(block))
        runs.append((block.start, run))
    runs.sort(key=lambda pair: pair[0])
    out = [run for _, run in runs]
    if blocks and error is not None and error[0] > blocks[-1].start:
        out[-1].notes.append(f"line {error[0]}: after the timings: {error[1]}")
    if not out and context_seen:
        if error is not None:
            run = ToolRun(tool=TOOL, form=FORM_LOG, identity=dict(found), failed=error[1],
                          notes=[f"line {error[0]}: the run stopped with this, before any whisper_print_timings"])
            run.source_lines["failed"] = error[0]
        else:
            run = ToolRun(tool=TOOL, form=FORM_LOG, identity=dict(found),
                          failed="no timings: the output stops before any whisper_print_timings line "
                                 "(cut short, or the run died without a message)")
        out.append(run)
    for run in out:
        run.notes.extend(skipped)
    return out


def _new_block(blocks: list[_Block], starts: list[dict[str, str]], after: list[dict[str, str]],
               found: dict[str, str], line_no: int) -> _Block:
    block = _Block(line_no)
    blocks.append(block)
    starts.append(dict(found))
    after.append({})
    return block


def _header_key(cell: str) -> str:
    return re.sub(r"\[.*?\]|\.", "", cell).strip().lower()


def _bench_all_row(cells: list[str], header: list[str], line_no: int) -> ToolRun | None:
    """One bench-all.sh row: whole ms per model (2022: Load, Enc.) or ms per run (2023+: Enc., Dec., Bch5, PP)."""
    if all(re.fullmatch(r":?-+:?", c) for c in cells if c) or len(cells) != len(header):
        return None
    keys = [_header_key(h) for h in header]
    per_run = any(k in ("dec", "bch5", "pp") for k in keys)
    run = ToolRun(tool=TOOL, form=FORM_BENCH_ALL)
    identity_names = {"cpu": "cpu", "os": "os", "config": "config", "model": "model", "th": "threads",
                      "threads": "threads", "fa": "flash_attn", "commit": "commit"}
    value_names = {
        "load": "asr_load_s", "real load": "asr_load_s",
        "enc": "asr_encode_per_run_s" if per_run else "asr_encode_s",
        "encode": "asr_encode_per_run_s" if per_run else "asr_encode_s",
        "real encode": "asr_encode_s",
        "dec": "asr_decode_per_run_s", "bch5": "asr_batchd_per_run_s", "pp": "asr_prompt_per_run_s",
    }
    for key, cell in zip(keys, cells):
        if not cell or cell.lower() in ("<todo>", "todo", "-", "n/a"):
            continue
        if key in identity_names:
            run.identity[identity_names[key]] = cell
        elif key in value_names:
            try:
                run.values[value_names[key]] = float(cell) / 1000.0
                run.source_lines[value_names[key]] = line_no
            except ValueError:
                run.notes.append(f"line {line_no}: {key} cell {cell!r} is not a number")
    if not run.values:
        return None
    if per_run:
        run.notes.append("bench-all.sh (2023+) columns are ms per run (whisper-bench's 'ms per run' field)")
    else:
        run.notes.append("bench-all.sh (2022) columns are whole ms: load and one encode")
    return run


PARSER = ToolParser(TOOL, detect, parse)
