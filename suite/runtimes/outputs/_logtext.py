"""Text helpers shared by the tool parsers: numbered lines without log prefixes, numbers, absl durations.

Standard library only: the parsers run on any capture, so nothing here may raise on odd text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

#: logcat threadtime: `10-07 16:10:31.763  8218  8218 I native  : `
_LOGCAT = re.compile(r"^\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEFA]\s+[^:]*?\s*:\s?")
#: logcat brief: `I/native  ( 8218): `
_LOGCAT_BRIEF = re.compile(r"^[VDIWEFA]/[^(:]*\(\s*\d+\):\s?")
#: absl / glog: `I0000 00:00:1791357031.763486    8218 litert_lm_lib.cc:477] ` (before absl::InitializeLog the
#: clock part is `00:00:<epoch seconds>`), `W0310 14:02:11.123456  123 file.cc:9] `
_ABSL = re.compile(r"^[IWEF]\d{4}\s+\d\d:\d\d:\d+\.\d+\s+\d+\s+[\w./+-]+:\d+\]\s?")
#: ExecuTorch ET_LOG: `I 00:00:05.882600 executorch:stats.h:111] `, tokenizers: `I tokenizers:regex.cpp:40] `
_ET_LOG = re.compile(r"^[DIWEF]\s+(?:\d\d:\d\d:\d\d\.\d+\s+)?[\w.-]+:[\w./+-]+:\d+\]\s?")
_PREFIXES = (_LOGCAT, _LOGCAT_BRIEF, _ABSL, _ET_LOG)

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
#: a number as C's printf or an ostream may write it, `inf`/`nan` included
NUM_OR_INF = r"(?:[-+]?(?:inf(?:inity)?|nan)|" + NUM + r")"


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


def numbered(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, content without log prefixes) for every line of `text`.

    Lines split on LF only, so numbers match an editor's; CRLF endings are dropped, and a line with
    carriage returns inside (a spinner, an overwritten progress line) yields each CR-separated
    segment under the same number."""
    for i, raw in enumerate(text.split("\n"), start=1):
        raw = raw.rstrip("\r")
        for seg in raw.split("\r") if "\r" in raw else (raw,):
            if seg.strip():
                yield i, strip_prefixes(seg)


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
