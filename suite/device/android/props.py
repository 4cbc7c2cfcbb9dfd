"""`adb shell getprop` output: `[key]: [value]` lines.

Values may contain spaces and brackets (`Galaxy S24 [5G]`), span several lines, and the
output may have CRLF line ends. Values are kept as inert strings: nothing here evaluates,
unescapes or executes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_KEY_LINE = re.compile(r"^\[([^\[\]\s]+)\]: \[(.*)$")


@dataclass(frozen=True)
class Getprop:
    props: dict[str, str]
    #: where -> what (e.g. "line 7": "not a [key]: [value] line; ignored")
    problems: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        """The value, or None when absent or empty (getprop prints unset props as [])."""
        value = self.props.get(key)
        return value if value else None


def parse_getprop(text: str) -> Getprop:
    """Parse getprop output. A value whose line does not end in `]` continues on the next
    lines until one does; an unterminated value at the next key (or the end) is kept as read
    and reported. A repeated key keeps its first value."""
    props: dict[str, str] = {}
    problems: dict[str, str] = {}
    key: str | None = None
    parts: list[str] = []
    start = 0

    def close(line_no: int) -> None:
        nonlocal key, parts
        if key is None:
            return
        while len(parts) > 1 and not parts[-1].strip():
            parts.pop()  # blank lines after an unterminated value belong to nothing
        value = "\n".join(parts)
        if value.endswith("]"):
            value = value[:-1]
        else:
            problems[f"line {start}"] = f"value of [{key}] not terminated by ']' before line {line_no}; kept as read"
        if key in props:
            problems.setdefault(f"line {start}", f"[{key}] repeated; first value kept")
        else:
            props[key] = value
        key, parts = None, []

    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for n, line in enumerate(lines, start=1):
        m = _KEY_LINE.match(line)
        if m:
            close(n)
            key, parts, start = m.group(1), [m.group(2)], n
            continue
        if key is not None and not parts[-1].endswith("]"):
            parts.append(line)  # continuation of a multi-line value
            continue
        if line.strip():
            problems[f"line {n}"] = "not a [key]: [value] line; ignored"
    close(len(lines) + 1)
    return Getprop(props, problems)
