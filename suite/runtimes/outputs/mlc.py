"""MLC-LLM and WebLLM runtime stats (`runtime_stats_text`): what the chat CLIs print for `/stats`, what
the phone apps show in their top bar (known only as users paste it, often into markdown tables), and
the error a run prints when it never got to generate.

Forms (docs/engines-parsers-llamacpp-mlc-whisper.md has the lines they come from):
- compact: `prefill: X tok/s, decode: Y tok/s` (1 dp; 2023's C++ CLI prefixes `Statistics: `;
  `mlc_llm chat` prints `N/A` for a missing rate and adds `prompt tokens: N, completion tokens: M, ...`);
- WebLLM: `prefill: X tok/s, decoding: Y tok/s`;
- verbose (Oct 2023): `---prefill---` / `throughput: X tok/s` / `total tokens: N tok`, then the same for decode;
- a markdown table with a stats string (or `crashed`) per device row;
- a TVM error (`TVMError: ...`) in a session with no stats: a failed run.
"""

from __future__ import annotations

import re

from suite.runtimes.outputs import ToolParser, ToolRun
from suite.runtimes.outputs._text import NUM, lines

TOOL = "mlc"
FORM_COMPACT = "runtime_stats_text"
FORM_WEBLLM = "webllm runtimeStatsText"
FORM_VERBOSE = "runtime_stats_text verbose"
FORM_TABLE = "runtime_stats_text in a table"
FORM_ERROR = "error"

_UNIT = r"(?:tok|tokens?)\s*/\s*s(?:ec)?"
_RATE = rf"(?:(?P<{{name}}>{NUM})\s*{_UNIT}|(?P<{{name}}_na>N/A)(?:\s*{_UNIT})?)"
_STATS = re.compile(
    r"prefill\s*:\s*" + _RATE.format(name="prefill") + r"\s*,\s*(?P<word>decoding|decode)\s*:\s*"
    + _RATE.format(name="decode")
)
_USAGE = re.compile(r"prompt tokens\s*:\s*(?P<prompt>\d+)\s*,\s*completion tokens\s*:\s*(?P<completion>\d+)"
                    r"(?:\s*,\s*total tokens\s*:\s*(?P<total>\d+))?", re.I)
_SECTION = re.compile(r"^\s*-{3,}\s*(?P<phase>prefill|decode)\s*-{3,}\s*$", re.I)
_THROUGHPUT = re.compile(rf"^\s*throughput\s*:\s*(?:(?P<value>{NUM})|N/A)\s*(?:{_UNIT})?", re.I)
_TOTAL_TOKENS = re.compile(r"^\s*total tokens\s*:\s*(?P<n>\d+)\s*(?:tok(?:ens)?)?\s*$", re.I)
#: the command that starts a run (2023's mlc_chat_cli, python -m mlc_chat, today's mlc_llm)
_COMMAND = re.compile(r"(?:^|[\s/$>])(?:mlc_chat_cli|mlc_llm\s+(?:chat|bench|serve)|python3?\s+-m\s+mlc_(?:chat|llm)"
                      r"|mlc_chat\s+chat)\b")
_MLC_MARK = re.compile(r"Use MLC config\s*:|mlc-chat-config\.json|\bmlc_chat_cli\b|\bmlc_llm\s+(?:chat|bench|serve)\b"
                       r"|\bpython3?\s+-m\s+mlc_(?:chat|llm)\b")
_ERROR = re.compile(r"\b(?:TVM|Internal|Runtime|Value)Error\b\s*:|\bCheck failed\b|\btvm\.error\.\w+")
_MODEL_ARG = re.compile(r"--(?:local-id|model)[=\s]+[\"']?(?P<model>[^\s\"']+)"
                        r"|\bmlc_llm\s+(?:chat|serve|bench)\s+[\"']?(?P<positional>[^\s\"'-][^\s\"']*)")
_DEVICE_ARG = re.compile(r"--device[=\s]+[\"']?(?P<device>[\w:]+)")
_LIBRARY = re.compile(r"Use model library\s*:\s*\"?(?P<path>[^\"\s]+)")
_LIBRARY_BACKEND = re.compile(r"-(?P<backend>vulkan|metal|cuda|rocm|opencl|webgpu|android|iphone)\.(?:so|dylib|dll|tar|wasm)\b")
#: an MLC model id on a line of its own (a heading above a pasted table): `...-q4f16_1[-MLC]`
_MODEL_ID_LINE = re.compile(r"^\s*(?P<model>[\w.\-]+-q\d+f\d+(?:_\d+)?(?:-MLC)?)\s*:?\s*$")
#: a user's label line naming the backend of what follows (`vulkan:`)
_BACKEND_LABEL = re.compile(r"^\s*(?P<backend>vulkan|rocm|metal|cuda|opencl|webgpu)\s*:?\s*$", re.I)
_SEPARATOR_CELL = re.compile(r"^\s*:?-+:?\s*$")
_FAILED_CELL = re.compile(r"crash|fail|error|out of memory|\boom\b", re.I)
_DEVICE_COLUMNS = ("machine", "device", "hardware", "phone", "gpu", "soc", "platform", "system")
_OS_COLUMNS = ("os",)
_MODEL_COLUMNS = ("model", "llm")


def detect(text: str) -> bool:
    """The text has an MLC/WebLLM stats line, the verbose stats block, or an MLC command or config line."""
    return any(_STATS.search(line) or _SECTION.match(line) or _MLC_MARK.search(line) for _, line in lines(text))


def _cells(line: str) -> list[str] | None:
    stripped = line.strip()
    if len(stripped) < 2 or not (stripped.startswith("|") and stripped.endswith("|")):
        return None
    return [c.strip() for c in stripped[1:-1].split("|")]


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for i, h in enumerate(header):
        if h.lower().strip(" *_") in names:
            return i
    return None


def _stats_run(m: re.Match, line_no: int, form: str) -> ToolRun:
    run = ToolRun(tool=TOOL, form=form)
    for name, key in (("prefill_tps", "prefill"), ("decode_tps", "decode")):
        if m[key] is not None:
            run.values[name] = float(m[key])
            run.source_lines[name] = line_no
        elif m[f"{key}_na"] is not None:
            run.notes.append(f"line {line_no}: {key} printed as N/A: no {name}")
    if not run.values:
        run.failed = "the stats line has no rates (prefill and decode N/A)"
    return run


class _Session:
    """What the text says about the run(s) of one command: identity so far, runs, its first error."""

    def __init__(self, started_by_command: bool) -> None:
        self.started_by_command = started_by_command
        self.identity: dict[str, str] = {}
        self.notes: list[str] = []
        self.runs = 0
        self.error: tuple[int, str] | None = None


def parse(text: str) -> list[ToolRun]:
    """Every stats line, verbose block and table row in file order, one ToolRun each; a session whose
    command ended in an error before any stats gives one failed ToolRun with the error line."""
    runs: list[ToolRun] = []
    session = _Session(False)
    header: list[str] | None = None
    previous_cells: list[str] | None = None
    table_model: str | None = None
    verbose: ToolRun | None = None
    phase: str | None = None
    skipped: list[str] = []

    def add(run: ToolRun) -> None:
        run.identity = {**session.identity, **run.identity}
        run.notes[:0] = session.notes
        runs.append(run)
        session.runs += 1

    def close_session() -> None:
        if session.runs == 0 and session.error is not None:
            line_no, message = session.error
            run = ToolRun(tool=TOOL, form=FORM_ERROR, failed=message,
                          notes=[f"line {line_no}: the run stopped with an error before any stats"])
            run.source_lines["failed"] = line_no
            add(run)

    for line_no, line in lines(text):
        try:
            cells = _cells(line)
            if cells is None:
                header = previous_cells = None
            elif all(_SEPARATOR_CELL.match(c) for c in cells if c) and previous_cells is not None:
                header, previous_cells = previous_cells, None
                continue
            elif header is not None:
                run = _table_row(cells, header, line_no, table_model)
                if run is not None:
                    verbose = None
                    add(run)
                continue
            else:
                previous_cells = cells

            if _COMMAND.search(line):
                close_session()
                session = _Session(True)
                verbose = None
            if m := _MODEL_ARG.search(line):
                session.identity["model"] = m["model"] or m["positional"]
            if m := _DEVICE_ARG.search(line):
                session.identity["backend"] = m["device"]
            if m := _LIBRARY.search(line):
                session.identity["model_lib"] = m["path"].replace("\\", "/").rsplit("/", 1)[-1]
                if b := _LIBRARY_BACKEND.search(m["path"]):
                    session.identity.setdefault("backend", b["backend"])
            if cells is None and (m := _MODEL_ID_LINE.match(line)):
                table_model = m["model"]
                continue
            if m := _BACKEND_LABEL.match(line):
                close_session()
                session = _Session(False)
                session.identity["backend"] = m["backend"].lower()
                session.notes.append(f"line {line_no}: backend {m['backend']!r} from a label line (the "
                                     "poster's, not the tool's)")
                continue
            if session.error is None and _ERROR.search(line):
                if session.started_by_command or re.search(r"tvm|mlc", line, re.I):
                    session.error = (line_no, line.strip())

            if m := _STATS.search(line):
                verbose = None
                form = FORM_WEBLLM if m["word"] == "decoding" else FORM_COMPACT
                run = _stats_run(m, line_no, form)
                if line.lstrip(" `").startswith("Statistics:"):
                    run.identity["printed_as"] = "Statistics: (mlc_chat_cli /stats, 2023)"
                add(run)
                continue
            if (m := _USAGE.search(line)) and runs and runs[-1].form in (FORM_COMPACT, FORM_WEBLLM) \
                    and "prompt_tokens" not in runs[-1].counts:
                last = runs[-1]
                for name, key in (("prompt_tokens", "prompt"), ("gen_tokens", "completion"),
                                  ("total_tokens", "total")):
                    if m[key] is not None:
                        last.counts[name] = int(m[key])
                        last.source_lines[name] = line_no
                continue
            if m := _SECTION.match(line):
                phase = m["phase"].lower()
                if verbose is None or (phase == "prefill" and verbose.source_lines) \
                        or (phase == "decode" and "decode_tps" in verbose.values):
                    verbose = ToolRun(tool=TOOL, form=FORM_VERBOSE)
                    add(verbose)
                continue
            if verbose is not None and phase is not None:
                if m := _THROUGHPUT.match(line):
                    name = f"{phase}_tps"
                    if m["value"] is not None:
                        verbose.values[name] = float(m["value"])
                        verbose.source_lines[name] = line_no
                    else:
                        verbose.notes.append(f"line {line_no}: {phase} throughput N/A: no {name}")
                    continue
                if m := _TOTAL_TOKENS.match(line):
                    name = "prompt_tokens" if phase == "prefill" else "gen_tokens"
                    verbose.counts[name] = int(m["n"])
                    verbose.source_lines[name] = line_no
                    continue
        except Exception as exc:  # noqa: BLE001 - one odd line never sinks a parse
            skipped.append(f"line {line_no} skipped: {type(exc).__name__}: {exc}")
    close_session()
    for run in runs:
        if run.form == FORM_VERBOSE and not run.values and run.failed is None:
            run.failed = "verbose stats block without any throughput line"
        run.notes.extend(skipped)
    return runs


def _table_row(cells: list[str], header: list[str], line_no: int, model: str | None) -> ToolRun | None:
    """A pasted table's data row: a run when a cell holds a stats string or says the run crashed."""
    device_col = _column(header, _DEVICE_COLUMNS)
    os_col = _column(header, _OS_COLUMNS)
    model_col = _column(header, _MODEL_COLUMNS)
    identity: dict[str, str] = {}
    if device_col is not None and device_col < len(cells) and cells[device_col]:
        identity["device"] = cells[device_col]
    if os_col is not None and os_col < len(cells) and cells[os_col]:
        identity["os"] = cells[os_col]
    if model_col is not None and model_col < len(cells) and cells[model_col]:
        identity["model"] = cells[model_col]
    elif model:
        identity["model"] = model
    own = {i for i in (device_col, os_col, model_col) if i is not None}
    for i, cell in enumerate(cells):
        if i in own:
            continue
        if m := _STATS.search(cell):
            run = _stats_run(m, line_no, FORM_TABLE)
            run.identity = identity
            return run
    for i, cell in enumerate(cells):
        if i not in own and _FAILED_CELL.search(cell):
            run = ToolRun(tool=TOOL, form=FORM_TABLE, identity=identity, failed=cell)
            run.source_lines["failed"] = line_no
            return run
    return None


PARSER = ToolParser(TOOL, detect, parse)
