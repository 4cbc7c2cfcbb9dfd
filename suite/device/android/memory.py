"""Memory texts: /proc/meminfo, /proc/<pid>/smaps_rollup and `dumpsys meminfo <pkg>`.

All three print kB (KiB); everything here is converted to bytes (x1024)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_KB_LINE = re.compile(r"^\s*([A-Za-z0-9_()\-.]+):\s+(-?\d+)\s*(kB)?\s*$")


@dataclass(frozen=True)
class Meminfo:
    total_bytes: int | None
    available_bytes: int | None
    #: every `Key: N kB` line, in bytes; counts without a unit (HugePages_Total) as they are
    fields: dict[str, int]
    problems: dict[str, str] = field(default_factory=dict)


def _kb_fields(text: str, problems: dict[str, str], *, skip_first_if: re.Pattern[str] | None = None) -> dict[str, int]:
    out: dict[str, int] = {}
    for n, line in enumerate(text.replace("\r", "").split("\n"), start=1):
        if not line.strip():
            continue
        if skip_first_if is not None and skip_first_if.match(line):
            continue
        m = _KB_LINE.match(line)
        if not m:
            problems[f"line {n}"] = "not a 'Key: N kB' line; ignored"
            continue
        value = int(m.group(2))
        out.setdefault(m.group(1), value * 1024 if m.group(3) else value)
    return out


def parse_meminfo(text: str) -> Meminfo:
    problems: dict[str, str] = {}
    fields = _kb_fields(text, problems)
    total = fields.get("MemTotal")
    avail = fields.get("MemAvailable")
    if total is None:
        problems["MemTotal"] = "no MemTotal line"
    if avail is None:
        problems["MemAvailable"] = "no MemAvailable line (kernel older than 3.14?)"
    return Meminfo(total, avail, fields, problems)


@dataclass(frozen=True)
class SmapsRollup:
    rss_bytes: int | None
    pss_bytes: int | None
    swap_pss_bytes: int | None
    #: Pss_Anon / Pss_File / Pss_Shmem exist on newer kernels only: None + problem otherwise
    pss_anon_bytes: int | None
    pss_file_bytes: int | None
    pss_shmem_bytes: int | None
    fields: dict[str, int]
    problems: dict[str, str] = field(default_factory=dict)


_ROLLUP_HEADER = re.compile(r"^[0-9a-f]+-[0-9a-f]+\s")


def parse_smaps_rollup(text: str) -> SmapsRollup:
    problems: dict[str, str] = {}
    fields = _kb_fields(text, problems, skip_first_if=_ROLLUP_HEADER)
    if "Pss" not in fields:
        problems["Pss"] = "no Pss line"
    for key in ("Pss_Anon", "Pss_File", "Pss_Shmem"):
        if key not in fields:
            problems.setdefault(key, f"no {key} line (kernel without the Pss split)")
    return SmapsRollup(fields.get("Rss"), fields.get("Pss"), fields.get("SwapPss"), fields.get("Pss_Anon"),
                       fields.get("Pss_File"), fields.get("Pss_Shmem"), fields, problems)


@dataclass(frozen=True)
class AppMeminfo:
    pid: int | None
    process: str | None
    total_pss_bytes: int | None
    total_rss_bytes: int | None
    total_swap_pss_bytes: int | None
    #: App Summary rows (Java Heap, Native Heap, Code, Stack, Graphics, ...): Pss in bytes
    summary_pss_bytes: dict[str, int]
    problems: dict[str, str] = field(default_factory=dict)


_PID_LINE = re.compile(r"\*\* MEMINFO in pid (\d+) \[(.*)\] \*\*")
_TOTALS = {
    "TOTAL PSS": "total_pss_bytes", "TOTAL RSS": "total_rss_bytes", "TOTAL SWAP PSS": "total_swap_pss_bytes",
}
_SUMMARY_ROW = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?):\s+(\d+)")


def parse_dumpsys_meminfo(text: str) -> AppMeminfo:
    """`dumpsys meminfo <pkg|pid>`: TOTAL PSS/RSS/SWAP PSS (App Summary, KB) with the
    table's `TOTAL` row as a fallback for PSS; the App Summary Pss column."""
    problems: dict[str, str] = {}
    pid = process = None
    totals: dict[str, int] = {}
    summary: dict[str, int] = {}
    table_total: int | None = None
    in_summary = False
    pss_end: int | None = None  # column where App Summary's "Pss(KB)" header ends
    rss_end: int | None = None
    for line in text.replace("\r", "").split("\n"):
        if (m := _PID_LINE.search(line)):
            pid, process = int(m.group(1)), m.group(2)
            continue
        if line.strip().startswith("No process found"):
            problems["process"] = line.strip()
            continue
        if "TOTAL PSS:" in line:
            for label, attr in _TOTALS.items():
                if (m := re.search(rf"{label}:\s+(\d+)", line)):
                    totals[attr] = int(m.group(1)) * 1024
            in_summary = False
            continue
        words = line.split()
        if words[:1] == ["TOTAL"] and len(words) > 1 and words[1].isdigit() and table_total is None:
            table_total = int(words[1]) * 1024
            continue
        if line.strip() == "App Summary":
            in_summary = True
            continue
        if in_summary and "Pss(KB)" in line:
            pss_end = line.index("Pss(KB)") + len("Pss(KB)")
            rss_end = line.index("Rss(KB)") + len("Rss(KB)") if "Rss(KB)" in line else None
            continue
        if in_summary and (m := _SUMMARY_ROW.match(line)):
            # Rows may hold Pss only, Rss only ("Unknown:" on Android 16) or both: assign each
            # number to the header column its right edge is nearest to.
            for num in re.finditer(r"\d+", line[m.end(1) + 1:]):
                end = m.end(1) + 1 + num.end()
                is_pss = pss_end is None or rss_end is None or abs(end - pss_end) <= abs(end - rss_end)
                if is_pss:
                    summary.setdefault(m.group(1).strip(), int(num.group()) * 1024)
                break
    if "total_pss_bytes" not in totals:
        if table_total is not None:
            totals["total_pss_bytes"] = table_total
            problems["total_pss_bytes"] = "no 'TOTAL PSS:' summary line; taken from the TOTAL table row"
        else:
            problems["total_pss_bytes"] = "no TOTAL PSS in the output"
    for attr in ("total_rss_bytes", "total_swap_pss_bytes"):
        if attr not in totals:
            problems.setdefault(attr, "not in the output (older Android prints no App Summary totals)")
    if pid is None:
        problems.setdefault("pid", "no '** MEMINFO in pid N [name] **' line")
    return AppMeminfo(pid, process, totals.get("total_pss_bytes"), totals.get("total_rss_bytes"),
                      totals.get("total_swap_pss_bytes"), summary, problems)
