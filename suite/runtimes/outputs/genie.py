"""Qualcomm Genie output: genie-t2t-run's console KPI lines (libGenie 1.0) and its `--profile` JSON.

Console (libGenie 1.0, 2024): after `[BEGIN]: ... [END]`, `Prompt processing: <N> us` and
`Token generation: <N> us, <R> tokens/s`. Later libGenie versions print no KPIs without `--profile`.

Profile (`artifact_type: GENIE_PROFILE`): components[] of events; `GenieDialog_create` carries
`init-time`, `GenieDialog_query` the query KPIs, each `{value, unit}` (times in us, rates in
toks/sec, counts with unit ""). Events are found by their type, never by position (a profile may hold
several queries, or a `GeniePipeline_create`/`GeniePipeline_execute` pair): one run per query event,
with the init time of the create event before it. A profile cut short is read by pattern as far as it
goes; it may sit in a file after other lines.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right

from suite.runtimes.outputs import ToolParser, ToolRun
from suite.runtimes.outputs._text import NUM, NUM_OR_INF, drop_nan, lines, seconds, to_float

TOOL = "genie"
FORM_PROFILE = "profile-json"
FORM_CONSOLE = "console"

_VERSION = re.compile(r"Using libGenie\.so version\s+(\S+)", re.I)
_CONFIG = re.compile(r"genie-t2t-run\b.*?(?:\s-c|\s--config)[=\s]+(\S+)")
_PROMPT_KPI = re.compile(rf"^\s*Prompt processing\s*:\s*({NUM})\s*(us|µs|ms|s)\b", re.I)
_GEN_KPI = re.compile(rf"^\s*Token generation\s*:\s*({NUM})\s*(us|µs|ms|s)\s*,\s*({NUM_OR_INF})\s*tok(?:en)?s?\s*/\s*s",
                      re.I)
_BEGIN = re.compile(r"^\s*\[(?:BEGIN|PROMPT)\]\s*:", re.I)
_ERROR = re.compile(r"^\s*(?:\[ERROR\]|ERROR\s*:|Error\s*:)\s*(.*)$|(Failed to .*|failure.*)", re.I)
_PROFILE_START = re.compile(r"\{\s*\"(?:header|components|metadata)\"\s*:")
_EVENT_TYPE = re.compile(r"\"type\"\s*:\s*\"(Genie\w+)\"")
_KPI_OBJ = re.compile(r"\"([\w-]+)\"\s*:\s*\{([^{}]*)\}")
_KPI_VALUE = re.compile(rf"\"value\"\s*:\s*\"?({NUM_OR_INF})\"?", re.I)
_KPI_UNIT = re.compile(r"\"unit\"\s*:\s*\"([^\"]*)\"")

_RATE_UNITS = {"toks/sec", "tokens/sec", "tok/s", "tokens/s", "toks/s", "t/s", "tokens per second"}
#: KPI name -> (edgebench name, kind)
_KPIS = {
    "time-to-first-token": ("ttft_s", "time"),
    "token-generation-time": ("decode_s", "time"),
    "prompt-processing-time": ("prefill_s", "time"),
    "init-time": ("load_s", "time"),
    "prompt-processing-rate": ("prefill_tps", "rate"),
    "token-generation-rate": ("decode_tps", "rate"),
    "num-prompt-tokens": ("prompt_tokens", "count"),
    "num-generated-tokens": ("gen_tokens", "count"),
    "token-acceptance-rate": ("token_acceptance_rate", "plain"),
    "lora-adapter-switching-time": ("lora_switch_s", "time"),
}


def detect(text: str) -> bool:
    """Genie's profile JSON, its version banner or command, or the libGenie 1.0 console KPI lines."""
    prompt = gen = False
    for raw in text.split("\n"):
        if raw.lstrip().startswith("#"):
            continue
        if ("GENIE_PROFILE" in raw or re.search(r"\"Genie(?:Dialog|Pipeline)_\w+\"", raw) or _VERSION.search(raw)
                or re.search(r"(?:^|[\s/])genie-t2t-run\b", raw)):
            return True
    for _, line in lines(text):
        prompt = prompt or bool(_PROMPT_KPI.match(line))
        gen = gen or bool(_GEN_KPI.match(line))
    return prompt and gen


def _parse(text: str) -> list[ToolRun]:
    """Every query in `text`, in file order: profile queries, else console KPI blocks."""
    identity: dict[str, str] = {}
    errors: list[tuple[int, str]] = []
    console: list[ToolRun] = []
    cur: ToolRun | None = None
    for n, line in lines(text):
        if line.lstrip().startswith("#"):
            continue
        try:
            segs = [line]
            if "[END]" in line:  # the KPI line may follow the generated text without a newline
                segs = [line.split("[END]", 1)[0], line.split("[END]", 1)[1]]
            for seg in segs:
                m = _VERSION.search(seg)
                if m:
                    identity["version"] = f"libGenie {m.group(1)}"
                m = _CONFIG.search(seg)
                if m:
                    identity["config"] = m.group(1).strip("\"'")
                if _BEGIN.match(seg) and cur is not None and cur.values:
                    cur = None
                m = _PROMPT_KPI.match(seg)
                if m:
                    if cur is None or "prefill_s" in cur.values:
                        cur = ToolRun(tool=TOOL, form=FORM_CONSOLE, identity=dict(identity))
                        console.append(cur)
                    x = seconds(float(m.group(1)), m.group(2))
                    if x is not None:
                        cur.values["prefill_s"], cur.source_lines["prefill_s"] = x, n
                    continue
                m = _GEN_KPI.match(seg)
                if m:
                    if cur is None or "decode_s" in cur.values:
                        cur = ToolRun(tool=TOOL, form=FORM_CONSOLE, identity=dict(identity))
                        console.append(cur)
                    x = seconds(float(m.group(1)), m.group(2))
                    if x is not None:
                        cur.values["decode_s"], cur.source_lines["decode_s"] = x, n
                    rate = to_float(m.group(3))
                    if rate is not None:
                        cur.values["decode_tps"], cur.source_lines["decode_tps"] = rate, n
                    continue
                m = _ERROR.match(seg)
                if m and (m.group(1) or m.group(2)):
                    errors.append((n, (m.group(1) or m.group(2)).strip()))
        except Exception as exc:  # one odd line never sinks a parse
            if cur is not None:
                cur.notes.append(f"line {n}: not understood ({type(exc).__name__})")
    for run in console:
        run.identity = {**identity, **run.identity}
        run.notes.append("console KPIs (libGenie 1.0): no token counts, no prefill rate, no TTFT printed")

    profile = _profiles(text)
    for run in profile:
        for k in ("version", "config"):
            if k in identity:
                run.identity.setdefault(k, identity[k])
    runs = profile
    if console and profile:
        if len(console) == len(profile):
            for p, c in zip(profile, console):
                for k, x in c.values.items():
                    if k not in p.values:
                        p.values[k], p.source_lines[k] = x, c.source_lines[k]
                p.notes.append("console KPI lines of the same query merged; the profile's values kept")
        else:
            runs = sorted(profile + console, key=lambda r: min(r.source_lines.values() or [0]))
    elif console:
        runs = console
    if not runs and (errors or identity):
        if errors:
            n, msg = errors[-1]
            runs = [ToolRun(tool=TOOL, form=FORM_CONSOLE, identity=identity, failed=msg[:200] or "error",
                            notes=[f"line {n}: no KPIs; the last error line is the reason"])]
        else:
            runs = [ToolRun(tool=TOOL, form=FORM_CONSOLE, identity=identity,
                            failed="no KPIs: genie-t2t-run prints them only with --profile (libGenie > 1.0)")]
    return runs


# --- --profile JSON -------------------------------------------------------------------------------------

def _profiles(text: str) -> list[ToolRun]:
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def line_of(pos: int) -> int:
        return bisect_right(starts, pos)

    runs: list[ToolRun] = []
    decoder = json.JSONDecoder()
    pos = 0
    cut_at: int | None = None
    while True:
        m = _PROFILE_START.search(text, pos)
        if m is None:
            break
        try:
            obj, end = decoder.raw_decode(text, m.start())
        except ValueError:
            if cut_at is None and _EVENT_TYPE.search(text, m.start()):
                cut_at = m.start()
            pos = m.end()
            continue
        if isinstance(obj, dict) and isinstance(obj.get("components"), list):
            runs.extend(_walk(obj, text, m.start(), end, line_of))
        pos = end
    if not runs and cut_at is not None:
        runs = _by_pattern(text, cut_at, line_of)
    return runs


def _identity(obj: dict) -> dict[str, str]:
    ident: dict[str, str] = {}
    header = obj.get("header") if isinstance(obj.get("header"), dict) else {}
    if isinstance(header.get("artifact_type"), str):
        ident["artifact"] = header["artifact_type"]
    ver = header.get("version")
    if isinstance(ver, dict):
        ident["profile_version"] = ".".join(str(ver.get(k, "?")) for k in ("major", "minor", "patch"))
    return ident


def _event_spans(text: str, start: int, end: int) -> list[list[tuple[int, int]]]:
    """The text span of every event object, per `"events": [...]` array, in order."""
    decoder = json.JSONDecoder()
    out = []
    for m in re.finditer(r"\"events\"\s*:\s*\[", text[:end]):
        if m.start() < start:
            continue
        spans, pos = [], m.end()
        while True:
            ws = re.compile(r"\s*").match(text, pos)
            pos = ws.end() if ws else pos
            if pos >= end or text[pos] != "{":
                break
            try:
                _, ev_end = decoder.raw_decode(text, pos)
            except ValueError:
                break
            spans.append((pos, ev_end))
            sep = re.compile(r"\s*,").match(text, ev_end)
            if sep is None:
                break
            pos = sep.end()
        out.append(spans)
    return out


def _walk(obj: dict, text: str, start: int, end: int, line_of) -> list[ToolRun]:
    spans = iter(_event_spans(text, start, end))
    runs: list[ToolRun] = []
    ident = _identity(obj)
    for comp in obj["components"]:
        if not isinstance(comp, dict) or not isinstance(comp.get("events"), list):
            continue
        comp_spans = next(spans, [])
        create: tuple[float, int] | None = None
        create_ev: dict = {}
        for i, ev in enumerate(comp["events"]):
            if not isinstance(ev, dict) or not isinstance(ev.get("type"), str):
                continue
            etype = ev["type"]
            lo, hi = comp_spans[i] if i < len(comp_spans) else (start, end)

            def line_for(key: str, lo: int = lo, hi: int = hi) -> int:
                m = re.compile(rf"\"{re.escape(key)}\"\s*:").search(text, lo, hi)
                return line_of(m.start() if m else lo)

            kpis = {k: (v, line_for(k)) for k, v in ev.items() if isinstance(v, dict)}
            if etype.endswith("_create"):
                create = _init_time(ev, kpis, line_for)
                create_ev = ev
            elif etype.endswith(("_query", "_execute")):
                run = ToolRun(tool=TOOL, form=FORM_PROFILE, identity={**ident, "event": etype})
                if isinstance(comp.get("name"), str):
                    run.identity["component"] = comp["name"]
                for name, (kpi, n) in kpis.items():
                    _kpi(run, name, kpi.get("value"), kpi.get("unit"), n)
                _finish(run, create)
                _clock(run, ev, create_ev)
                runs.append(run)
        if create is not None and not any(r.identity.get("component") == comp.get("name") for r in runs):
            run = ToolRun(tool=TOOL, form=FORM_PROFILE, identity=dict(ident),
                          failed="no query event in the profile (init only)")
            _finish(run, create)
            runs.append(run)
    return runs


def _clock(run: ToolRun, query: dict, create: dict) -> None:
    """The events' own start and stop (bare integers, us on the profiler's monotonic clock) as `clock`
    seconds: the dialog's create is the load, its query the inference, the prefill ending at the first token."""
    def us(ev: dict, key: str) -> float | None:
        x = ev.get(key)
        return x * 1e-6 if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 else None

    for ev, a, b in ((create, "load_start", "load_end"), (query, "inference_start", "inference_end")):
        start, stop = us(ev, "start"), us(ev, "stop")
        if start is not None and stop is not None and stop >= start:
            run.clock[a], run.clock[b] = start, stop
    ttft = run.values.get("ttft_s")
    if "inference_start" in run.clock and ttft is not None and math.isfinite(ttft) and ttft > 0:
        run.clock["prefill_end"] = run.clock["first_token"] = run.clock["inference_start"] + ttft


def _init_time(ev: dict, kpis: dict, line_for) -> tuple[float, int] | None:
    if "init-time" in kpis:
        kpi, n = kpis["init-time"]
        x = to_float(str(kpi.get("value")))
        s = seconds(x, str(kpi.get("unit", "us"))) if x is not None else None
        return (s, n) if s is not None else None
    if isinstance(ev.get("duration"), (int, float)):  # GeniePipeline_create: the event's own duration (us)
        return (ev["duration"] * 1e-6, line_for("duration"))
    return None


def _kpi(run: ToolRun, name: str, value: object, unit: object, n: int) -> None:
    spec = _KPIS.get(name)
    x = to_float(str(value)) if value is not None else None
    if spec is None or x is None:
        if spec is None and x is not None:
            run.notes.append(f"line {n}: KPI {name!r} not used")
        return
    key, kind = spec
    unit = str(unit or "").strip()
    if kind == "time":
        s = seconds(x, unit or "us")
        if s is None:
            run.notes.append(f"line {n}: {name} in unknown unit {unit!r}: not used")
            return
        run.values[key], run.source_lines[key] = s, n
    elif kind == "rate":
        if unit and unit.lower() not in _RATE_UNITS:
            run.notes.append(f"line {n}: {name} in unknown unit {unit!r}: not used")
            return
        run.values[key], run.source_lines[key] = x, n
    elif kind == "count":
        if math.isfinite(x):
            run.counts[key], run.source_lines[key] = int(x), n
    else:
        run.values[key], run.source_lines[key] = x, n


def _finish(run: ToolRun, create: tuple[float, int] | None) -> None:
    if create is not None:
        run.values["load_s"], run.source_lines["load_s"] = create
        run.notes.append("load_s: init-time of the dialog's create event (once per dialog, shared by its queries)")


def _by_pattern(text: str, start: int, line_of) -> list[ToolRun]:
    """A profile cut short: events and KPI objects read by pattern, as far as the text goes."""
    anchors = [(m.start(), m.group(1)) for m in _EVENT_TYPE.finditer(text, start)]
    runs: list[ToolRun] = []
    create: tuple[float, int] | None = None
    for i, (pos, etype) in enumerate(anchors):
        hi = anchors[i + 1][0] if i + 1 < len(anchors) else len(text)
        kpis = {}
        for m in _KPI_OBJ.finditer(text, pos, hi):
            v, u = _KPI_VALUE.search(m.group(2)), _KPI_UNIT.search(m.group(2))
            kpis[m.group(1)] = ({"value": v.group(1) if v else None, "unit": u.group(1) if u else ""},
                                line_of(m.start()))
        if etype.endswith("_create"):
            create = _init_time({}, kpis, lambda key: line_of(pos))
        elif etype.endswith(("_query", "_execute")):
            run = ToolRun(tool=TOOL, form=FORM_PROFILE, identity={"event": etype})
            for name, (kpi, n) in kpis.items():
                _kpi(run, name, kpi["value"], kpi["unit"], n)
            _finish(run, create)
            run.notes.append(f"profile JSON is not complete (cut?): read by pattern from line {line_of(start)}")
            runs.append(run)
    if not runs and create is not None:
        run = ToolRun(tool=TOOL, form=FORM_PROFILE, failed="no query event in the profile (cut?)")
        _finish(run, create)
        runs.append(run)
    return runs



def parse(text: str) -> list[ToolRun]:
    """Every run in `text`, in file order; never raises: a parser bug gives one failed run naming it."""
    try:
        return drop_nan(_parse(text))
    except Exception as exc:  # the contract: a capture never sinks an import
        return [ToolRun(tool=TOOL, form="unparsed", failed=f"parser error: {type(exc).__name__}: {exc}"[:300])]


PARSER = ToolParser("genie", detect, parse)
