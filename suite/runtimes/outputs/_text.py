"""Text helpers shared by every tool parser: numbered lines cleaned of what a console or a log adds
(CRLF, carriage-return overwrites, spinner backspaces, ANSI colours, control bytes, logcat / absl / ET_LOG
prefixes, the `# source:` ... headers of a capture), numbers, absl durations, units.

Standard library only: the parsers run on any capture, so nothing here may raise on odd text.
"""

from __future__ import annotations

import math
import re

#: a number as the tools print it (ints, decimals, exponents)
NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
#: a number as C's printf or an ostream may write it, `inf`/`nan` included
NUM_OR_INF = r"(?:[-+]?(?:inf(?:inity)?|nan)|" + NUM + r")"

#: the `# source:` / `# device:` / `# tool version:` / `# note:` lines that head a capture: not tool output
_HEADER = re.compile(r"^\s*#\s*(?:source|device|tool version|note)\s*:", re.I)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: logcat: brief `I/tag( 1234): ` (pid optional), threadtime `12-15 10:00:00.123  1234  1234 I tag  : `,
#: time `12-15 10:00:00.123 I/tag( 1234): `
_LOGCAT_TAG = r"[VDIWEFA]/[^\s(:]{1,64}\s*(?:\(\s*\d+\s*\))?\s*:\s?"
_LOGCAT = re.compile(
    r"^\s*(?:\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+(?:\d+\s+\d+\s+[VDIWEFA]\s+[^:]{0,64}?\s*:\s?|" + _LOGCAT_TAG
    + ")|" + _LOGCAT_TAG + ")")
#: absl / glog: `I0000 00:00:1791357031.763486    8218 litert_lm_lib.cc:477] ` (before absl::InitializeLog the
#: clock part is `00:00:<epoch seconds>`), `W0310 14:02:11.123456  123 file.cc:9] `
_ABSL = re.compile(r"^[IWEF]\d{4}\s+\d\d:\d\d:\d+\.\d+\s+\d+\s+[\w./+-]+:\d+\]\s?")
#: ExecuTorch ET_LOG: `I 00:00:05.882600 executorch:stats.h:111] `, tokenizers: `I tokenizers:regex.cpp:40] `
_ET_LOG = re.compile(r"^[DIWEF]\s+(?:\d\d:\d\d:\d\d\.\d+\s+)?[\w.-]+:[\w./+-]+:\d+\]\s?")
_PREFIXES = (_LOGCAT, _ABSL, _ET_LOG)


def strip_prefixes(line: str) -> str:
    """The line without its logcat, absl or ET_LOG prefixes (a logcat line may carry an absl one too)."""
    for _ in range(4):
        for rx in _PREFIXES:
            m = rx.match(line)
            if m:
                line = line[m.end():]
                break
        else:
            return line
    return line


def clean(segment: str) -> str:
    """One piece of a line without ANSI escapes, backspaced characters, control bytes or log prefixes."""
    segment = _ANSI.sub("", segment)
    if "\x08" in segment:
        kept: list[str] = []
        for char in segment:  # a backspace takes back the character before it, as a terminal shows it
            if char != "\x08":
                kept.append(char)
            elif kept:
                kept.pop()
        segment = "".join(kept)
    return strip_prefixes(_CONTROL.sub("", segment))


def lines(text: str | bytes) -> list[tuple[int, str]]:
    """(1-based line number, cleaned text) for every piece of every line, capture headers left out.

    Lines split on LF only, so numbers match an editor's; CRLF endings are dropped, and a carriage
    return inside a line (a spinner, an overwritten progress line) splits it into pieces that keep the
    line's number: what a tool printed after the `\\r` is still read."""
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", errors="replace")
    out = []
    for number, line in enumerate(text.split("\n"), start=1):
        if _HEADER.match(line):
            continue
        for piece in line.rstrip("\r").split("\r"):
            piece = clean(piece)
            if piece.strip():
                out.append((number, piece))
    return out



def to_float(s: str | None) -> float | None:
    """A float from printed text (`inf`, `-nan` included), None when it is not a number."""
    if s is None:
        return None
    try:
        return float(s.strip())
    except (ValueError, AttributeError):
        return None


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


_DUR_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
_DUR_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|μs|ns|m|s)")


def absl_duration(s: str) -> float | None:
    """Seconds from an absl::FormatDuration string (`819.9514ms`, `8.7038005s`, `41.911us`,
    `1m2.5s`, `2h0m`, `0`, `inf`); None when `s` is not one."""
    s = s.strip()
    if not s:
        return None
    sign = -1.0 if s.startswith("-") else 1.0
    body = s.lstrip("+-")
    if body == "0":
        return 0.0
    if body.lower() == "inf":
        return sign * math.inf
    pos, total = 0, 0.0
    for m in _DUR_PART.finditer(body):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(body) or pos == 0:
        return None
    return sign * total


_TIME_UNITS = {"us": 1e-6, "µs": 1e-6, "μs": 1e-6, "usec": 1e-6, "microseconds": 1e-6, "ms": 1e-3, "msec": 1e-3,
               "milliseconds": 1e-3, "s": 1.0, "sec": 1.0, "secs": 1.0, "seconds": 1.0, "ns": 1e-9}


def seconds(value: float, unit: str) -> float | None:
    """`value` in `unit` (us, ms, s, ns and their spellings) as seconds; None for another unit."""
    factor = _TIME_UNITS.get(unit.strip().lower())
    return None if factor is None else value * factor


def drop_nan(runs: list) -> list:
    """Runs without NaN values (`nan` printed for 0/0 is no measurement), each drop noted."""
    for run in runs:
        for key in [k for k, x in run.values.items() if isinstance(x, float) and math.isnan(x)]:
            del run.values[key]
            line = run.source_lines.pop(key, None)
            run.notes.append(f"{key} is nan (line {line}): absent")
    return runs

