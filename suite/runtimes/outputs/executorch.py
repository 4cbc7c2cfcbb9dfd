"""ExecuTorch output: `PyTorchObserver {json}` lines, the stats.h block (`Prompt Tokens: ...` with or
without ET_LOG prefixes; the QNN runner.cpp copy too), the Android benchmark app's JSON metric array,
and the LlamaDemo benchmarking activity's key: value file.

Observer values are derived from its epoch-ms fields exactly as extension/llm/runner/stats.h derives
the printed block (and its own `*_token_per_sec` fields):
  load_s     = model_load_end_ms - model_load_start_ms
  prefill_s  = prompt_eval_end_ms - inference_start_ms;  prefill_tps = prompt_tokens / prefill_s
  decode_s   = inference_end_ms - prompt_eval_end_ms;    decode_tps  = generated_tokens / decode_s
  ttft_s     = first_token_ms - inference_start_ms;      inference_s = inference_end_ms - inference_start_ms
(stats.h counts every generated token in the decode rate, the first included although the prefill
produced it; kept, so the numbers match the tool's). A zero load interval means the runner did not
time the load (multimodal runners print 0 for both): load_s is then absent, never 0.

stdout carries the observer and stderr the block; when both of one run are in the text (same token
counts and total time) they make one run, with the observer's exact values.
"""

from __future__ import annotations

import json
import math
import os
import re
from bisect import bisect_right
from dataclasses import dataclass, field

from suite.runtimes.outputs import ToolParser, ToolRun
from suite.runtimes.outputs._text import NUM, NUM_OR_INF, drop_nan, finite, lines, to_float

TOOL = "executorch"
FORM_OBSERVER = "PyTorchObserver"
FORM_STATS = "stats"
FORM_APP = "benchmark-app"
FORM_DEMO = "llamademo-results"
MIB = 1024 * 1024

_OBSERVER = re.compile(r"PyTorchObserver\s*(\{.*)$")
_FIELD = re.compile(rf'"(\w+)"\s*:\s*("?)({NUM_OR_INF})\2', re.I)
_TOKENS = re.compile(r"^\s*Prompt Tokens\s*:\s*(\d+)\s+Generated Tokens\s*:\s*(\d+)", re.I)
_LOAD = re.compile(rf"^\s*Model Load Time\s*:\s*({NUM_OR_INF})\s*\(seconds\)", re.I)
_TOTAL = re.compile(rf"^\s*Total inference time\s*:\s*({NUM_OR_INF})\s*\(seconds\)\s*Rate\s*:\s*({NUM_OR_INF})", re.I)
_PROMPT = re.compile(rf"^\s*Prompt evaluation\s*:\s*({NUM_OR_INF})\s*\(seconds\)\s*Rate\s*:\s*({NUM_OR_INF})", re.I)
_GEN = re.compile(rf"^\s*Generated\s+(\d+)\s+tokens\s*:\s*({NUM_OR_INF})\s*\(seconds\)\s*Rate\s*:\s*({NUM_OR_INF})",
                  re.I)
_TTFT = re.compile(rf"^\s*Time to first generated token\s*:\s*({NUM_OR_INF})\s*\(seconds\)", re.I)
_SAMPLING = re.compile(rf"^\s*Sampling time over\s+(\d+)\s+tokens\s*:\s*({NUM_OR_INF})\s*\(seconds\)", re.I)
_GPU_PEAK = re.compile(rf"^\s*GPU peak usage\s*:\s*({NUM_OR_INF})\s*MB", re.I)
_RSS = re.compile(rf"RSS after (loading model|prompt prefill|finishing text generation)\s*:\s*({NUM})\s*MiB", re.I)
_MAX_NEW = re.compile(r"Max new tokens\s+(\d+)\s+reached", re.I)
_RUNNER = re.compile(r"Creating \w+ runner\s*:\s*model_path\s*=\s*([^,\s]+)(?:\s*,\s*tokenizer_path\s*=\s*(\S+))?",
                     re.I)
_THREADS = re.compile(r"Resetting threadpool (?:with num threads\s*=\s*|to\s+)(\d+)", re.I)
_DEMO = re.compile(rf"^\s*(loadStart|loadEnd|generateStart|generateEnd|tokens/second)\s*:\s*(null|{NUM_OR_INF})\s*$",
                   re.I)
_ERROR = re.compile(r"(ET_CHECK|[Aa]ssert(?:ion)? failed|Segmentation fault|\bAborted\b|terminate called"
                    r"|Failed to (?:load|generate|create|read|open)|\bError\b.*\b(?:loading|load)\b)")
_ET_RAW = re.compile(r"(?:^|\s)[DIWEF]\s+\d\d:\d\d:\d\d\.\d+\s+executorch:[\w./+-]+:\d+\]")
_ET_RAW_ERROR = re.compile(r"(?:^|\s)E\s+\d\d:\d\d:\d\d\.\d+\s+executorch:[\w./+-]+:\d+\]\s*(.*)$")

_RSS_NAMES = {"loading model": "rss_after_load_bytes", "prompt prefill": "rss_after_prefill_bytes",
              "finishing text generation": "rss_after_generation_bytes"}


@dataclass
class _Event:
    form: str
    line: int
    run: ToolRun
    #: for pairing an observer with its stats block
    key: tuple[int, int] | None = None
    paired: bool = False
    #: LlamaDemo: key -> (printed value, line)
    raw: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass
class _Pending:
    values: dict[str, tuple[float, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def give(self, run: ToolRun) -> None:
        for k, (x, n) in self.values.items():
            run.values.setdefault(k, x)
            run.source_lines.setdefault(k, n)
        run.notes.extend(self.notes)
        self.values, self.notes = {}, []


def detect(text: str) -> bool:
    """A PyTorchObserver line, a stats block, ExecuTorch's log prefix, the benchmark app's metric JSON,
    or the LlamaDemo results file."""
    demo: set[str] = set()
    for raw in text.split("\n"):
        if raw.lstrip().startswith("#"):
            continue
        if _ET_RAW.search(raw) or ('"benchmarkModel"' in raw and '"actualValue"' in raw):
            return True
    for _, line in lines(text):
        if line.lstrip().startswith("#"):
            continue
        if (_OBSERVER.search(line) and "_ms" in line) or _TOKENS.match(line):
            return True
        m = _DEMO.match(line)
        if m:
            demo.add(m.group(1).lower())
    return {"loadstart", "generatestart"} <= demo or {"loadstart", "tokens/second"} <= demo


def _parse(text: str) -> list[ToolRun]:
    """Every run in `text`, in file order."""
    events: list[_Event] = []
    identity: dict[str, str] = {}
    pending = _Pending()
    stats: _Event | None = None
    demo: _Event | None = None
    errors: list[tuple[int, str]] = []
    et_log = False

    def new(form: str, n: int) -> _Event:
        ev = _Event(form, n, ToolRun(tool=TOOL, form=form, identity=dict(identity)))
        pending.give(ev.run)
        events.append(ev)
        return ev

    for raw_n, raw in enumerate(text.split("\n"), start=1):
        if raw.lstrip().startswith("#"):
            continue
        if _ET_RAW.search(raw):
            et_log = True
        m = _ET_RAW_ERROR.search(raw)
        if m:
            errors.append((raw_n, m.group(1).strip()))

    for n, line in lines(text):
        s = line.strip()
        if s.startswith("#"):
            continue
        try:
            m = _OBSERVER.search(line)
            if m:
                ev = new(FORM_OBSERVER, n)
                _observer(ev, m.group(1), n)
                stats = None
                continue
            m = _TOKENS.match(line)
            if m:
                stats = new(FORM_STATS, n)
                p, g = int(m.group(1)), int(m.group(2))
                stats.key = (p, g)
                c, src = stats.run.counts, stats.run.source_lines
                c["prompt_tokens"], c["gen_tokens"], src["prompt_tokens"], src["gen_tokens"] = p, g, n, n
                continue
            hit = _stats_line(line)
            if hit is not None:
                name = hit[0]
                if stats is None or name in stats.run.source_lines:
                    stats = new(FORM_STATS, n)
                    stats.run.notes.append(f"stats lines from line {n} without their 'Prompt Tokens' line")
                _stats_apply(stats, hit, n)
                continue
            m = _DEMO.match(line)
            if m:
                key = m.group(1).lower()
                if demo is None or key in demo.raw:
                    demo = new(FORM_DEMO, n)
                demo.raw[key] = (m.group(2), n)
                continue
            m = _RSS.search(line)
            if m:
                mib = float(m.group(2))
                name = _RSS_NAMES[m.group(1).lower()]
                if mib > 0:
                    pending.values[name] = (float(round(mib * MIB)), n)
                else:
                    pending.notes.append(f"line {n}: RSS 0 MiB (unsupported on this platform): absent")
                continue
            m = _MAX_NEW.search(line)
            if m:
                pending.notes.append(f"line {n}: generation stopped at max new tokens ({m.group(1)})")
                continue
            m = _RUNNER.search(line)
            if m:
                identity["model_path"] = m.group(1)
                identity["model"] = os.path.basename(m.group(1))
                if m.group(2):
                    identity["tokenizer"] = m.group(2)
                continue
            m = _THREADS.search(line)
            if m:
                identity["threads"] = m.group(1)
                continue
            if _ERROR.search(line):
                errors.append((n, s))
        except Exception as exc:  # one odd line never sinks a parse
            if events:
                events[-1].run.notes.append(f"line {n}: not understood ({type(exc).__name__})")

    for ev in events:
        if ev.form == FORM_DEMO:
            _demo_finish(ev)
    _pair(events)
    out = [(ev.line, ev.run) for ev in events if not ev.paired]
    out.extend(_app_runs(text))
    out.sort(key=lambda t: t[0])
    runs = [r for _, r in out]
    if not runs and (errors or et_log):
        if errors:
            n, msg = errors[-1]
            runs.append(ToolRun(tool=TOOL, form="log", identity=dict(identity), failed=msg[:200],
                                notes=[f"line {n}: no stats in the text; the last error line is the reason"]))
        else:
            runs.append(ToolRun(tool=TOOL, form="log", identity=dict(identity),
                                failed="no stats: neither a PyTorchObserver line nor a stats block",
                                notes=["a Release build without ET_LOG prints stats on stdout only; a cut log "
                                       "may have lost them"]))
    return runs


# --- PyTorchObserver ------------------------------------------------------------------------------------

def _observer(ev: _Event, body: str, n: int) -> None:
    run = ev.run
    fields: dict[str, float] = {}
    try:
        obj, _ = json.JSONDecoder().raw_decode(body)
        if not isinstance(obj, dict):
            raise ValueError
        for k, x in obj.items():
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                fields[k] = float(x)
    except ValueError:
        for m in _FIELD.finditer(body):
            x = to_float(m.group(3))
            if x is not None:
                fields[m.group(1)] = x
        cut = not body.rstrip().endswith("}")
        run.notes.append(f"line {n}: observer JSON {'cut short' if cut else 'not valid JSON'}: "
                         f"{len(fields)} field(s) read")
    v, c, src = run.values, run.counts, run.source_lines

    def put(name: str, x: float | None) -> None:
        if x is not None:
            v[name], src[name] = x, n

    scale = fields.get("SCALING_FACTOR_UNITS_PER_SECOND", 1000.0) or 1000.0
    for key, name in (("prompt_tokens", "prompt_tokens"), ("generated_tokens", "gen_tokens")):
        if key in fields and finite(fields[key]):
            c[name], src[name] = int(fields[key]), n
    if "prompt_tokens" in c and "gen_tokens" in c:
        ev.key = (c["prompt_tokens"], c["gen_tokens"])

    def interval(a: str, b: str) -> float | None:
        if a not in fields or b not in fields:
            return None
        if fields[a] <= 0 or fields[b] <= 0:
            run.notes.append(f"{a if fields[a] <= 0 else b} is 0: not recorded by this runner")
            return None
        if fields[b] < fields[a]:
            run.notes.append(f"{b} < {a}: interval ignored")
            return None
        return (fields[b] - fields[a]) / scale

    for key, name in (("model_load_start_ms", "load_start"), ("model_load_end_ms", "load_end"),
                      ("inference_start_ms", "inference_start"), ("prompt_eval_end_ms", "prefill_end"),
                      ("first_token_ms", "first_token"), ("inference_end_ms", "inference_end")):
        if finite(fields.get(key, math.nan)) and fields[key] > 0:
            run.clock[name] = fields[key] / scale
    if fields.get("model_load_start_ms") == 0 and fields.get("model_load_end_ms") == 0:
        run.notes.append("model_load_start_ms = model_load_end_ms = 0: the runner did not time the load "
                         "(load_s absent, not 0)")
    else:
        load = interval("model_load_start_ms", "model_load_end_ms")
        if load == 0:
            run.notes.append("model load interval is 0 ms: not a measurement (load_s absent)")
        else:
            put("load_s", load)
    prefill = interval("inference_start_ms", "prompt_eval_end_ms")
    decode = interval("prompt_eval_end_ms", "inference_end_ms")
    put("prefill_s", prefill)
    put("decode_s", decode)
    put("ttft_s", interval("inference_start_ms", "first_token_ms"))
    put("inference_s", interval("inference_start_ms", "inference_end_ms"))
    for rate, secs, count, printed in (("prefill_tps", prefill, "prompt_tokens", "prefill_token_per_sec"),
                                       ("decode_tps", decode, "gen_tokens", "decode_token_per_sec")):
        if secs is not None and count in c:
            if secs > 0:
                put(rate, c[count] / secs)
            else:
                put(rate, math.inf if c[count] > 0 else math.nan)
                run.notes.append(f"{rate}: {c[count]} tokens in 0 ms (infinite rate, as stats.h once printed)")
        if printed in fields:
            x = fields[printed]
            if rate not in v:
                put(rate, x)
            elif finite(v[rate]) and abs(v[rate] - x) > max(1e-3 * abs(x), 2e-3):
                run.notes.append(f"{printed} {x} disagrees with the timestamps ({v[rate]:.3f})")
    if "aggregate_sampling_time_ms" in fields:
        put("sampling_s", fields["aggregate_sampling_time_ms"] / scale)
    if "aggregate_model_execution_time_ms" in fields:
        put("model_execution_s", fields["aggregate_model_execution_time_ms"] / scale)
    for key in ("gpu_total_bytes", "gpu_free_before_load_bytes", "gpu_free_after_load_bytes",
                "gpu_free_after_generate_bytes"):
        if key in fields and fields[key] >= 0:
            put(key, fields[key])
    if "gpu_peak_usage_mb" in fields and fields["gpu_peak_usage_mb"] >= 0:
        put("gpu_peak_bytes", float(round(fields["gpu_peak_usage_mb"] * MIB)))
        run.notes.append("gpu_peak_bytes from gpu_peak_usage_mb (MB = 2^20 bytes, as stats.h prints it)")


# --- the stats block ------------------------------------------------------------------------------------

def _stats_line(line: str) -> tuple | None:
    for name, rx in (("load_s", _LOAD), ("inference_s", _TOTAL), ("prefill_s", _PROMPT), ("decode_s", _GEN),
                     ("ttft_s", _TTFT), ("sampling_s", _SAMPLING), ("gpu_peak_bytes", _GPU_PEAK)):
        m = rx.match(line)
        if m:
            return (name, m)
    return None


def _stats_apply(ev: _Event, hit: tuple, n: int) -> None:
    run = ev.run
    v, c, src = run.values, run.counts, run.source_lines
    name, m = hit
    if name == "load_s":
        x = to_float(m.group(1))
        src["load_s"] = n  # marks the line as seen even when the value is not kept
        if x is not None and x > 0:
            v["load_s"] = x
        else:
            del src["load_s"]
            run.notes.append(f"line {n}: Model Load Time {m.group(1)} s: not a measurement (load_s absent)")
    elif name == "inference_s":
        v["inference_s"], src["inference_s"] = to_float(m.group(1)), n
    elif name == "prefill_s":
        v["prefill_s"], v["prefill_tps"] = to_float(m.group(1)), to_float(m.group(2))
        src["prefill_s"] = src["prefill_tps"] = n
    elif name == "decode_s":
        gen = int(m.group(1))
        if "gen_tokens" in c and c["gen_tokens"] != gen:
            run.notes.append(f"line {n}: 'Generated {gen} tokens' but 'Generated Tokens: {c['gen_tokens']}'")
        c.setdefault("gen_tokens", gen)
        src.setdefault("gen_tokens", n)
        v["decode_s"], v["decode_tps"] = to_float(m.group(2)), to_float(m.group(3))
        src["decode_s"] = src["decode_tps"] = n
    elif name == "ttft_s":
        v["ttft_s"], src["ttft_s"] = to_float(m.group(1)), n
    elif name == "sampling_s":
        v["sampling_s"], src["sampling_s"] = to_float(m.group(2)), n
        c["sampled_tokens"], src["sampled_tokens"] = int(m.group(1)), n
    elif name == "gpu_peak_bytes":
        x = to_float(m.group(1))
        if x is not None and x >= 0:
            v["gpu_peak_bytes"], src["gpu_peak_bytes"] = float(round(x * MIB)), n
    for k in [k for k, x in v.items() if x is None]:
        del v[k]
        src.pop(k, None)
    if ev.key is None and "prompt_tokens" in c and "gen_tokens" in c:
        ev.key = (c["prompt_tokens"], c["gen_tokens"])


def _pair(events: list[_Event]) -> None:
    """An observer and a stats block of the same run become one run (the observer's values kept)."""
    observers = [e for e in events if e.form == FORM_OBSERVER]
    for st in (e for e in events if e.form == FORM_STATS):
        for ob in observers:
            if ob.paired or ob.key is None or ob.key != st.key:
                continue
            a, b = ob.run.values.get("inference_s"), st.run.values.get("inference_s")
            if a is not None and b is not None and abs(a - b) > 1.5e-3:
                continue
            _merge(ob, st)
            break


def _merge(ob: _Event, st: _Event) -> None:
    st.paired = True
    ob.paired = False
    run, other = ob.run, st.run
    other_lines = sorted(set(other.source_lines.values()))
    for k, x in other.values.items():
        if k not in run.values:
            run.values[k], run.source_lines[k] = x, other.source_lines[k]
        elif finite(x) and finite(run.values[k]) and abs(run.values[k] - x) > 1e-5 * max(1.0, abs(x)):
            # the block prints the same arithmetic with %f (6 dp): anything more is another run's figure
            run.notes.append(f"stats block {k} {x} differs from the observer's {run.values[k]:.6f}")
    for k, x in other.counts.items():
        if k not in run.counts:
            run.counts[k], run.source_lines[k] = x, other.source_lines[k]
    for k, x in other.identity.items():
        run.identity.setdefault(k, x)
    run.notes.extend(n for n in other.notes if n not in run.notes)
    span = f"{other_lines[0]}-{other_lines[-1]}" if other_lines else "?"
    run.notes.append(f"PyTorchObserver (line {ob.line}) and the stats block (lines {span}) are the same run: the "
                     "observer's exact epoch-ms values are used")


# --- LlamaDemo results file -----------------------------------------------------------------------------

def _demo_finish(ev: _Event) -> None:
    run, raw = ev.run, ev.raw

    def ms(key: str) -> float | None:
        x = to_float(raw[key][0]) if key in raw else None
        return x if x is not None and x > 0 else None

    for a, b, name in (("loadstart", "loadend", "load_s"), ("generatestart", "generateend", "generate_s")):
        ta, tb = ms(a), ms(b)
        if ta is not None and tb is not None and tb > ta:
            run.values[name], run.source_lines[name] = (tb - ta) / 1000.0, raw[b][1]
        elif a in raw or b in raw:
            run.notes.append(f"{a}/{b} do not make an interval: {name} absent")
    tps = raw.get("tokens/second")
    x = to_float(tps[0]) if tps else None
    if x is not None:
        run.values["decode_tps"], run.source_lines["decode_tps"] = x, tps[1]  # type: ignore[index]
        run.notes.append("tokens/second is the demo's onStats rate: generated tokens / (inference_end - "
                         "prompt_eval_end), i.e. the decode rate")
    if "generatestart" in raw and ms("generatestart") is None:
        run.failed = "generateStart is 0: the model did not load (no generation)"
    elif x is None:
        run.failed = "no tokens/second in the results file" if tps is None else f"tokens/second is {tps[0]}"


# --- Android benchmark app JSON -------------------------------------------------------------------------

def _app_runs(text: str) -> list[tuple[int, ToolRun]]:
    """The benchmark app's metric arrays: one run per model of an array, what is complete of a cut one."""
    if '"actualValue"' not in text:
        return []
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def line_of(pos: int) -> int:
        return bisect_right(starts, pos)

    out: list[tuple[int, ToolRun]] = []
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\[\s*(?=\{)", text):
        pos, metrics, cut = m.end(), [], None
        while pos < len(text):
            try:
                obj, end = decoder.raw_decode(text, pos)
            except ValueError:
                cut = line_of(pos)
                break
            if not (isinstance(obj, dict) and "metric" in obj and "actualValue" in obj):
                break
            metrics.append((line_of(pos), obj))
            rest = re.compile(r"\s*([,\]])").match(text, end)
            if rest is None or rest.group(1) == "]":
                break
            pos = rest.end()
        if not metrics:
            continue
        groups: dict[tuple, ToolRun] = {}
        firsts: dict[tuple, int] = {}
        for n, obj in metrics:
            model = obj.get("benchmarkModel") if isinstance(obj.get("benchmarkModel"), dict) else {}
            key = (model.get("name"), model.get("backend"), model.get("quantization"))
            if key not in groups:
                groups[key], firsts[key] = _app_run(model, obj.get("deviceInfo")), n
            _app_metric(groups[key], obj, n)
        if cut is not None:
            last = list(groups.values())[-1]
            last.notes.append(f"metric array cut at line {cut} after {len(metrics)} complete metric(s): "
                              "what is complete is kept")
        out.extend((firsts[k], r) for k, r in groups.items())
    return out


def _app_run(model: dict, device: object) -> ToolRun:
    run = ToolRun(tool=TOOL, form=FORM_APP)
    for key, name in (("name", "model"), ("backend", "backend"), ("quantization", "quantization")):
        if isinstance(model.get(key), str) and model[key]:
            run.identity[name] = model[key]
    if isinstance(device, dict):
        for key, name in (("device", "device"), ("arch", "device_model"), ("os", "os")):
            if isinstance(device.get(key), str) and device[key]:
                run.identity[name] = device[key]
        for key in ("totalMem", "availMem"):
            if isinstance(device.get(key), (int, float)) and device[key] > 0:
                run.identity[key] = str(device[key])
    return run


_APP_NAMES = {"model_load_time": "load_s", "llm_model_load_time": "load_s", "generate_time": "generate_s",
              "avg_inference_latency": "inference_latency_s", "first_inference_latency": "first_inference_latency_s",
              "token_per_sec": "decode_tps", "prefill_token_per_sec": "prefill_tps",
              "decode_token_per_sec": "decode_tps"}
_UNIT = re.compile(r"^\s*([\w.-]+?)\s*(?:\(\s*(\w+)\s*\))?\s*$")


def _app_metric(run: ToolRun, obj: dict, n: int) -> None:
    metric, x = obj.get("metric"), obj.get("actualValue")
    if not isinstance(metric, str) or not isinstance(x, (int, float)) or isinstance(x, bool):
        return
    m = _UNIT.match(metric)
    base, unit = (m.group(1), (m.group(2) or "").lower()) if m else (metric, "")
    if base == "load_status":
        if x != 0:
            run.failed = f"load_status {x:g} (the model did not load)"
        return
    scale = {"ms": 1e-3, "s": 1.0, "us": 1e-6}.get(unit, 1.0)
    name = _APP_NAMES.get(base) or (f"{base}_s" if unit in ("ms", "s", "us") else f"app/{metric}")
    run.values[name], run.source_lines[name] = float(x) * scale, n
    if base == "token_per_sec":
        run.notes.append("token_per_sec is generated tokens / (inference_end - prompt_eval_end): the decode rate")



def parse(text: str) -> list[ToolRun]:
    """Every run in `text`, in file order; never raises: a parser bug gives one failed run naming it."""
    try:
        return drop_nan(_parse(text))
    except Exception as exc:  # the contract: a capture never sinks an import
        return [ToolRun(tool=TOOL, form="unparsed", failed=f"parser error: {type(exc).__name__}: {exc}"[:300])]


PARSER = ToolParser("executorch", detect, parse)
