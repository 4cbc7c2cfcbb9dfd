"""llama.cpp's text output (llama-cli, llama-completion, the llava/mtmd examples, llama-server): timing
blocks and the new llama-cli's one-line rates. llama-bench's tables stay with suite.importers.llama_bench.

Forms, by date (docs/engines-parsers-llamacpp-mlc-whisper.md has the lines they come from):
- `llama_print_timings:` block (to about Sept 2024): load, sample, prompt eval, eval, total (no count);
- `llama_perf_sampler_print:` / `llama_perf_context_print:` block (Sept 2024 on; 2025 adds
  `graphs reused` and a `llama_memory_breakdown_print` table in MiB);
- unprefixed `prompt eval time` / `eval time` / `total time` lines (llama-server's print_timing);
- the new interactive llama-cli (2026): `[ Prompt: X t/s | Generation: Y t/s ]`, no block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from suite.runtimes.outputs import ToolParser, ToolRun
from suite.runtimes.outputs._text import NUM, lines, to_float

TOOL = "llama.cpp"
FORM_PRINT_TIMINGS = "llama_print_timings"
FORM_PERF = "llama_perf_context_print"
FORM_ONE_LINE = "llama-cli one-line"
#: timing lines without a llama_* prefix (llama-server's `print_timing`, or the prefix lost)
FORM_UNPREFIXED = "timings"

_RATE = rf"{NUM}|[-+]?inf|nan"
#: the key is searched for and the prefix read back from the text before it (a prefix group in the
#: pattern would backtrack quadratically on a long line of word characters)
_TIMING = re.compile(
    r"(?<![A-Za-z])(?P<key>prompt\s+eval|eval|load|sample|sampling|total)\s+time\s*=\s*"
    rf"(?P<ms>{NUM})\s*ms"
    r"(?:\s*/\s*(?P<n>\d+)\s*(?P<unit>tokens?|runs?))?"
    rf"(?:\s*\(\s*(?:{_RATE})\s*ms\s+per\s+(?:token|run)\s*,\s*(?P<rate>{_RATE})\s*tokens\s+per\s+second)?",
    re.I,
)
_PREFIX_TAIL = re.compile(r"[A-Za-z_]\w{0,79}$")
_GRAPHS_REUSED = re.compile(r"llama_perf_context_print\s*:\s*graphs\s+reused\s*=\s*(\d+)", re.I)
_ONE_LINE = re.compile(
    rf"\[\s*Prompt\s*:\s*(?P<prefill>{NUM})\s*t/s\s*(?:\|\s*Generation\s*:\s*(?P<decode>{NUM})\s*t/s\s*)?\]"
    rf"|\[\s*Generation\s*:\s*(?P<decode_only>{NUM})\s*t/s\s*\]",
    re.I,
)
_MEMORY_ROW = re.compile(r"(?:llama|common)_memory_breakdown_print\s*:\s*\|\s*-\s*(?P<name>[^|]+?)\s*\|(?P<cells>[^|]*)\|")
_DEVICE_ROW = re.compile(
    r"^\s*(?P<total>\d+)\s*=\s*(?P<free>\d+)\s*\+\s*\(\s*(?P<self>\d+)\s*=\s*\d+\s*\+\s*\d+\s*\+\s*\d+\s*\)"
    r"\s*\+\s*(?P<unaccounted>-?\d+)\s*$"
)
_HOST_ROW = re.compile(r"^\s*(?P<self>\d+)\s*=\s*\d+\s*\+\s*\d+\s*\+\s*\d+\s*$")
_ERROR = re.compile(
    r"GGML_ASSERT|GGML_ABORT|\berror\s*:|failed to (?:load|initiali[sz]e|create|allocate)|terminate called"
    r"|Segmentation fault|\bAborted\b|CANNOT LINK EXECUTABLE|out of memory",
    re.I,
)
#: lines that only llama.cpp's own programs print while loading a model
_LLAMA_CONTEXT = re.compile(
    r"llama_model_loader\s*:|\bllama_model_load(?:_from_file\w*)?\s*:|\bllama_load_model_from_file\b"
    r"|\bload_tensors\s*:|\bllama_new_context_with_model\s*:|\bllama_context\s*:|\bllm_load_print_meta\s*:"
    r"|\bllama-(?:cli|completion|server|simple|mtmd-cli|llava-cli)\b"
)
#: llama-bench's own formats (md table header, csv/json fields): never this parser's
_LLAMA_BENCH = re.compile(
    r"^\s*\|\s*model\s*\|.*\|\s*t/s\s*\|\s*$|\"avg_ts\"\s*:|^\s*build_commit\s*,|\bavg_ts\b\s*,\s*stddev_ts\b", re.I
)

# identity lines (matched on cleaned lines)
_BUILD = re.compile(r"^\s*(?:\w+\s*:\s*)?build\s*[:=]\s*(?P<build>\S.*?)\s*(?:\bwith\b.*)?$", re.I)
_GENERAL_NAME = re.compile(r"\bgeneral\.name\s+(?:str\s+)?=\s*(?P<name>\S.*?)\s*$")
_NEW_UI_MODEL = re.compile(r"^\s*model\s*:\s*(?P<file>\S.*?)\s*$")
_META_FROM = re.compile(r"llama_model_loader\s*:\s*loaded meta data with .*? from (?P<file>\S+)")
_SYSTEM_INFO = re.compile(r"^\s*(?:\w+\s*:\s*)?system_info\s*:\s*(?P<info>\S.*?)\s*$")
_THREADS = re.compile(r"n_threads\s*=\s*(\d+)")
_LOAD_BACKEND = re.compile(r"load_backend\s*:\s*loaded\s+(?P<name>\S+)\s+backend\s+from\s+(?P<path>\S+)")
_HEXAGON_ARCH = re.compile(r"ggml-hex\s*:\s*Hexagon Arch version\s+(?P<arch>\w+)", re.I)
_HEXAGON_SESSION = re.compile(r"ggml-hex\s*:\s*new session\s*:\s*(?P<session>[\w-]+)", re.I)
_OPENCL_DEVICE = re.compile(r"ggml_opencl\s*:\s*device\s*:\s*'(?P<device>[^']+)'")
_VULKAN_DEVICE = re.compile(r"ggml_vulkan\s*:\s*\d+\s*=\s*(?P<device>[^(|]+?)\s*(?:\(|\|)")
_USING_DEVICE = re.compile(r"using device\s+(?P<device>\S+)\s*\((?P<desc>[^)]*)\)")
_CLIP = re.compile(rf"encode_image_with_clip\s*:\s*image encoded in\s*(?P<ms>{NUM})\s*ms")
_OFFLOADED = re.compile(r"load_tensors\s*:\s*offloaded\s+(?P<layers>\d+/\d+)\s+layers\s+to\s+GPU")


@dataclass
class _Block:
    """One timing block (or one one-line form) on its way to a ToolRun."""

    form: str
    start: int
    values: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    source_lines: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    closed: bool = False
    identity: dict[str, str] = field(default_factory=dict)
    memory: list[tuple[int, str, int, str]] = field(default_factory=list)

    def is_run(self) -> bool:
        """A llama_* block is a run even when cut short; unprefixed lines need prompt eval or eval."""
        return self.form != FORM_UNPREFIXED or bool(self.keys & {"prompt eval", "eval"})


def detect(text: str) -> bool:
    """The text has a llama.cpp timing line, the new llama-cli rates line, or llama.cpp's model
    loading log (an error run); llama-bench's tables and json are not this parser's."""
    found = False
    for _, line in lines(text):
        if _LLAMA_BENCH.search(line):
            return False
        if found:
            continue
        if _ONE_LINE.search(line):
            found = True
            continue
        m, prefix = _find_timing(line)
        if m and _accepts(m, prefix) and "llama_" in prefix.lower():
            found = True
        elif m and _accepts(m, prefix) and _key(m) in ("prompt eval", "eval") and m["rate"] is not None:
            found = True
        elif _LLAMA_CONTEXT.search(line):
            found = True
    return found


def _key(m: re.Match) -> str:
    return re.sub(r"\s+", " ", m["key"].lower())


def _find_timing(line: str) -> tuple[re.Match | None, str]:
    """The timing line's match and its prefix ('' when the key has no `name:` right before it)."""
    m = _TIMING.search(line)
    if m is None:
        return None, ""
    before = line[max(0, m.start() - 200):m.start()].rstrip()
    if not before.endswith(":"):
        return m, ""
    tail = _PREFIX_TAIL.search(before[:-1].rstrip()[-80:])
    return m, tail.group(0) if tail else ""


def _accepts(m: re.Match, prefix: str) -> bool:
    """A timing match this parser reads: any llama_* prefix; an unknown or missing prefix only for
    prompt eval / eval / total (llama-server); never whisper.cpp's whisper_print_timings."""
    prefix = prefix.lower()  # `in`, not startswith: generated text may run into the prefix
    if "whisper" in prefix:
        return False
    if "llama_" in prefix:
        return True
    return _key(m) in ("prompt eval", "eval", "total")


def _form(prefix: str) -> str:
    prefix = prefix.lower()
    if "llama_print_timings" in prefix:
        return FORM_PRINT_TIMINGS
    if "llama_perf" in prefix:
        return FORM_PERF
    return FORM_UNPREFIXED


def _rate(block: _Block, name: str, count_name: str, n: int, ms: float, printed: str | None, line_no: int,
          what: str) -> None:
    """tok/s from N tokens over X ms (the printed rate is rounded to 2 dp: compared, not stored)."""
    block.counts[count_name] = n
    block.source_lines[count_name] = line_no
    shown = to_float(printed)
    if n == 0:
        block.notes.append(f"line {line_no}: {what} over 0 tokens: no {name}")
        return
    if ms <= 0:
        if shown is not None:
            block.values[name] = shown
            block.source_lines[name] = line_no
        block.notes.append(f"line {line_no}: {what} of {n} tokens took {ms:g} ms: {name} as printed ({printed})")
        return
    computed = n / (ms / 1000.0)
    block.values[name] = computed
    block.source_lines[name] = line_no
    if shown is not None:
        # rounding: the printed rate to +-0.005, the printed ms to +-0.005 ms
        slack = 0.005 + computed * 0.005 / ms + 1e-9
        if abs(computed - shown) > slack * 1.01:
            block.notes.append(f"line {line_no}: {name} {computed:.2f} computed from {n} tokens / {ms:g} ms "
                               f"disagrees with the printed {printed} tokens per second")


def _timing_line(block: _Block, m: re.Match, line_no: int) -> None:
    key = _key(m)
    ms = float(m["ms"])
    n = int(m["n"]) if m["n"] is not None else None
    block.keys.add(key)
    if key == "prompt eval":
        if n is None:
            block.notes.append(f"line {line_no}: prompt eval time without a token count: no prefill_tps")
        else:
            _rate(block, "prefill_tps", "prompt_tokens", n, ms, m["rate"], line_no, "prompt eval")
    elif key == "eval":
        if n is None:
            block.notes.append(f"line {line_no}: eval time without a run count: no decode_tps")
        else:
            _rate(block, "decode_tps", "gen_tokens", n, ms, m["rate"], line_no, "eval")
    elif key == "load":
        block.values["load_s"] = ms / 1000.0
        block.source_lines["load_s"] = line_no
    elif key in ("sample", "sampling"):
        if n is not None:
            block.counts["sample_runs"] = n
            block.source_lines["sample_runs"] = line_no
    elif key == "total":
        if n is not None:
            block.counts["total_tokens"] = n
            block.source_lines["total_tokens"] = line_no
        block.closed = True


def _identity(line: str, line_no: int, found: dict[str, str], backends: list[str]) -> None:
    """Identity a line states (model, build, backend, threads), kept in `found` (later lines win)."""
    if m := _LOAD_BACKEND.search(line):
        library = m["path"].replace("\\", "/").rsplit("/", 1)[-1]
        entry = f"{m['name']} ({library})"
        if entry not in backends:
            backends.append(entry)
        found["backends_loaded"] = ", ".join(backends)
        return
    if m := _HEXAGON_ARCH.search(line):
        found["backend"] = "Hexagon"
        found["hexagon_arch"] = m["arch"]
        return
    if m := _HEXAGON_SESSION.search(line):
        found["backend"] = "Hexagon"
        found["device"] = m["session"]
        return
    if m := _OPENCL_DEVICE.search(line):
        found["backend"] = "OpenCL"
        found["device"] = m["device"].strip()
        return
    if m := _VULKAN_DEVICE.search(line):
        found["backend"] = "Vulkan"
        found["device"] = m["device"].strip()
        return
    if m := _USING_DEVICE.search(line):
        found["device"] = f"{m['device']} ({m['desc'].strip()})"
        return
    if m := _OFFLOADED.search(line):
        found["offloaded_layers"] = m["layers"]
        return
    if m := _GENERAL_NAME.search(line):
        found["model"] = m["name"]
        return
    if m := _META_FROM.search(line):
        found["model_file"] = m["file"].replace("\\", "/").rsplit("/", 1)[-1]
        return
    if m := _SYSTEM_INFO.match(line):
        found["system_info"] = m["info"]
        if t := _THREADS.search(m["info"]):
            found["threads"] = t[1]
        return
    if "ggml_opencl" in line or "ggml_vulkan" in line:
        return  # their own `build:` lines are the driver's, not llama.cpp's
    if m := _BUILD.match(line):
        found["build"] = m["build"]
        return
    if m := _NEW_UI_MODEL.match(line):
        found["model_file"] = m["file"].replace("\\", "/").rsplit("/", 1)[-1]


def _memory_row(line: str) -> tuple[str, int, str] | None:
    """(buffer name, self MiB, how it reads) for one memory breakdown row; None for the header."""
    m = _MEMORY_ROW.search(line)
    if not m or m["name"].strip().lower().startswith("memory breakdown"):
        return None
    cells = m["cells"]
    if d := _DEVICE_ROW.match(cells):
        return m["name"], int(d["self"]), f"{d['self']} of {d['total']} total, {d['free']} free"
    if h := _HOST_ROW.match(cells):
        return m["name"], int(h["self"]), h["self"]
    return None


def _memory_note(rows: list[tuple[int, str, int, str]]) -> str:
    described = "; ".join(f"{name} {how} (line {n})" for n, name, _, how in rows)
    total = sum(self_mib for _, _, self_mib, _ in rows)
    return (f"memory breakdown [MiB], self = model + context + compute: {described}; {total} MiB of llama.cpp "
            "buffers in all: not the process's peak memory, so no peak_rss_bytes")


def parse(text: str) -> list[ToolRun]:
    """Every timing block and one-line rates line in file order, one ToolRun each; a llama.cpp log with
    neither gives one failed ToolRun (its error line, or the output stopped before any timing)."""
    blocks: list[_Block] = []
    current: _Block | None = None
    found: dict[str, str] = {}
    backends: list[str] = []
    pending_memory: list[tuple[int, str, int, str]] = []
    table: list[tuple[int, str, int, str]] | None = None  # the memory table being read
    pending_notes: list[str] = []  # said before a block, about it
    error: tuple[int, str] | None = None
    context_seen = False
    skipped: list[str] = []
    # identity as each block starts, and what later lines add until the next block starts
    starts: list[dict[str, str]] = []
    after: list[dict[str, str]] = []

    for line_no, line in lines(text):
        try:
            if _LLAMA_CONTEXT.search(line):
                context_seen = True
            if error is None and _ERROR.search(line):
                error = (line_no, line.strip())
            before = dict(found)
            _identity(line, line_no, found, backends)
            if blocks and found != before:
                for k, v in found.items():
                    if before.get(k) != v:
                        after[-1].setdefault(k, v)

            row = _memory_row(line)
            if row is not None:
                if table is None:
                    # a table after a block belongs to it; one before any block (the new llama-cli prints
                    # it ahead of its rates line) waits for the next block
                    table = blocks[-1].memory if blocks and not blocks[-1].memory else pending_memory
                table.append((line_no, *row))
                continue
            if "memory_breakdown_print" not in line:
                table = None
            if c := _CLIP.search(line):
                pending_notes.append(f"line {line_no}: the image was encoded (CLIP) in {c['ms']} ms before the "
                                     "block: not part of its prompt eval time")
                continue
            if (g := _GRAPHS_REUSED.search(line)) and current is not None:
                current.counts["graphs_reused"] = int(g[1])
                current.source_lines["graphs_reused"] = line_no
                continue

            for m in _ONE_LINE.finditer(line):
                block = _Block(FORM_ONE_LINE, line_no)
                if m["prefill"] is not None:
                    block.values["prefill_tps"] = float(m["prefill"])
                    block.source_lines["prefill_tps"] = line_no
                decode = m["decode"] if m["decode"] is not None else m["decode_only"]
                if decode is not None:
                    block.values["decode_tps"] = float(decode)
                    block.source_lines["decode_tps"] = line_no
                block.notes.append("rates as llama-cli printed them, rounded to 0.1 tok/s; no token counts or times")
                if pending_memory:
                    block.memory, pending_memory = pending_memory, []
                block.notes[:0], pending_notes = pending_notes, []
                blocks.append(block)
                starts.append(dict(found))
                after.append({})
                current = None

            m, prefix = _find_timing(line)
            if m is None or not _accepts(m, prefix):
                continue
            key = _key(m)
            form = _form(prefix)
            if current is None or current.closed or key in current.keys or current.form != form:
                current = _Block(form, line_no)
                if pending_memory:
                    current.memory, pending_memory = pending_memory, []
                current.notes[:0], pending_notes = pending_notes, []
                blocks.append(current)
                starts.append(dict(found))
                after.append({})
            _timing_line(current, m, line_no)
        except Exception as exc:  # noqa: BLE001 - one odd line never sinks a parse
            skipped.append(f"line {line_no} skipped: {type(exc).__name__}: {exc}")

    runs = []
    for block, start_identity, later in zip(blocks, starts, after):
        if not block.is_run():
            continue  # a lone total/sampling line: not a run
        identity = {**later, **start_identity}
        if pending_memory and block is blocks[-1] and not block.memory:
            block.memory, pending_memory = pending_memory, []
        notes = list(block.notes)
        if block.memory:
            notes.append(_memory_note(block.memory))
        if block.form != FORM_ONE_LINE and not block.keys & {"prompt eval", "eval"}:
            notes.append("timing block without prompt eval / eval lines (cut short?)")
        runs.append(ToolRun(tool=TOOL, form=block.form, values=block.values, counts=block.counts,
                            source_lines=block.source_lines, identity=identity, notes=notes + skipped))
    if not runs and context_seen:
        if error is not None:
            reason = error[1]
            identity = dict(found)
            notes = [f"line {error[0]}: the run stopped with an error, before any timing"]
        else:
            reason = "no timing block or [ Prompt | Generation ] line: the output stops before any (cut short?)"
            identity = dict(found)
            notes = []
        run = ToolRun(tool=TOOL, form="log", identity=identity, failed=reason, notes=notes + skipped)
        if error is not None:
            run.source_lines["failed"] = error[0]
        runs.append(run)
    return runs


PARSER = ToolParser(TOOL, detect, parse)
