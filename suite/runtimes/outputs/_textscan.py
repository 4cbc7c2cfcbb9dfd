"""Line cleaning shared by the llama.cpp, MLC and whisper.cpp parsers: what a console or logcat adds to a
tool's lines (CRLF, carriage-return overwrites, spinner backspaces, ANSI colours, logcat prefixes) is
taken off, and each piece keeps the 1-based number of the line it came from."""

from __future__ import annotations

import re

#: a number as the tools print it (ints, decimals, exponents)
NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"

#: the `# source:` / `# device:` / `# tool version:` / `# note:` lines that head a capture: not tool output
_HEADER = re.compile(r"^\s*#\s*(?:source|device|tool version|note)\s*:", re.I)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: logcat prefixes: brief `I/tag( 1234): `, threadtime `12-15 10:00:00.123  1234  1234 I tag  : `,
#: time `12-15 10:00:00.123 I/tag( 1234): `
_LOGCAT_TAG = r"[VDIWEF]/[^\s(:]{1,64}\s*(?:\(\s*\d+\s*\))?\s*:\s?"
_LOGCAT = re.compile(
    r"^\s*(?:\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+(?:\d+\s+\d+\s+[VDIWEF]\s+[^:]{0,64}?\s*:\s?|" + _LOGCAT_TAG + ")|"
    + _LOGCAT_TAG + ")"
)


def clean(segment: str) -> str:
    """One piece of a line without control characters, ANSI escapes or a logcat prefix."""
    segment = _ANSI.sub("", segment)
    if "\x08" in segment:
        kept: list[str] = []
        for char in segment:  # a backspace takes back the character before it, as a terminal shows it
            if char != "\x08":
                kept.append(char)
            elif kept:
                kept.pop()
        segment = "".join(kept)
    segment = _CONTROL.sub("", segment)
    return _LOGCAT.sub("", segment, count=1)


def lines(text: str | bytes) -> list[tuple[int, str]]:
    """(line number, cleaned text) for every piece of every line, capture headers left out.

    A carriage return inside a line (a progress bar or spinner overwriting itself) splits it into
    pieces that keep the line's number: what a tool printed after the `\\r` is still read.
    """
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


def number(text: str | None) -> float | None:
    """A printed number, `inf` and `nan` included; None for anything else (`N/A`, empty)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
