"""The SoC catalog (`devices/socs.csv`) and matching a phone's identity strings against it.

Phones name their SoC inconsistently: `ro.soc.model` (Android 12+) may be a part number
(`SM8650`, `MT6789`, `MT6897Z_A/ZA`), a Samsung lowercase id (`s5e9945`) or a marketing
string (`Tensor G3`); older phones only have codenames (`ro.board.platform=pineapple`,
`ro.hardware=mt6789`) or /proc/cpuinfo's `Hardware` line. `match_soc` tries each source in
a fixed order, case-insensitively, with aliases and suffixed part numbers, and says
"ambiguous" instead of guessing when an id is shared by several parts (`parrot`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from suite.catalog.data import data_dir

#: `<repo>/devices/socs.csv`, the catalog edited by hand (see devices/README.md).
#: The file a user extends when a phone's SoC is not matched (named in hints).
SOCS_CSV_HINT_PATH = "devices/socs.csv"

TIER_UNKNOWN = "unknown"
TIERS = ("flagship", "mid", "entry", TIER_UNKNOWN)

#: Identity sources in the order they are tried: most specific first.
PROP_SOURCES = (
    "ro.soc.model",
    "ro.board.platform",
    "ro.hardware",
    "ro.product.board",
    "ro.vendor.mediatek.platform",
    "ro.hardware.chipname",
    "ro.boot.hardware",
)
CPUINFO_SOURCE = "/proc/cpuinfo Hardware"

#: Values that name a vendor or a family, not a part: never matched.
GENERIC_IDS = frozenset({"qcom", "qualcomm", "mt", "mtk", "mediatek", "exynos", "samsung", "google",
                         "unisoc", "spreadtrum", "sprd", "default", "unknown", "placeholder"})

#: `ro.soc.manufacturer` spellings -> catalog vendor.
VENDOR_ALIASES = {
    "qti": "Qualcomm", "qualcomm": "Qualcomm", "qualcomm technologies, inc": "Qualcomm",
    "qcom": "Qualcomm", "mediatek": "MediaTek", "mtk": "MediaTek", "google": "Google",
    "samsung": "Samsung", "samsung electronics": "Samsung", "spreadtrum": "Unisoc",
    "unisoc": "Unisoc", "apple": "Apple",
}

#: Leading part-number forms inside longer strings (`SM8650-AB`, `MT6897Z_A/ZA`,
#: `Qualcomm Technologies, Inc SM8350`).
_PART_RE = re.compile(r"(?<![a-z0-9])(sm\d{4}|sdm\d{3}|msm\d{4}|mt\d{4}|s5e\d{4}|gs\d{3}|ums\d{3,4}|t\d{3})(?!\d)",
                      re.IGNORECASE)
#: MediaTek reference-board names: `k6897v1_64` -> mt6897.
_MTK_BOARD_RE = re.compile(r"^k(\d{4})v\d", re.IGNORECASE)


def normalize_id(value: str) -> str:
    """Lowercase, trimmed, inner whitespace collapsed."""
    return " ".join(value.strip().lower().split())


def normalize_vendor(value: str | None) -> str | None:
    """`Mediatek` -> `MediaTek`, `QTI` -> `Qualcomm`, `Spreadtrum` -> `Unisoc`; others as given."""
    if not value or not value.strip():
        return None
    return VENDOR_ALIASES.get(normalize_id(value).rstrip("."), value.strip())


def _float(cell: str) -> float | None:
    try:
        return float(cell) if cell.strip() else None
    except ValueError:
        return None


def _strip_paren(cell: str) -> str:
    """`MT6769 (MT6768 family; ...)` -> `MT6769`; `(iOS)` -> ``."""
    return re.sub(r"\s*\(.*\)\s*$", "", cell).strip()


@dataclass(frozen=True)
class Soc:
    """One catalog row. Empty cells are None (unknown), never 0."""

    vendor: str
    marketing_name: str
    soc_model: str
    board_platform: str | None
    ro_hardware: str | None
    aliases: tuple[str, ...]
    #: id -> description, for ids this part shares with others (matching them is ambiguous).
    shared_ids: Mapping[str, str] = field(compare=False)
    tier: str
    memory_type: str | None
    peak_dram_bw_gbps: float | None
    npu_int8_tops: float | None
    #: the full CSV row, provenance columns included.
    row: Mapping[str, str] = field(repr=False, compare=False)

    @property
    def peak_dram_bw_bytes_per_s(self) -> float | None:
        return self.peak_dram_bw_gbps * 1e9 if self.peak_dram_bw_gbps is not None else None

    @property
    def part(self) -> str | None:
        """The id a phone reports (soc_model without notes); None for rows with none (iOS)."""
        return _strip_paren(self.soc_model) or None

    def ids(self) -> list[tuple[str, str]]:
        """(normalised id, which column) for every unshared identifier of this row."""
        out: list[tuple[str, str]] = []
        for value, column in [(self.part or "", "soc_model"), (self.board_platform or "", "board_platform"),
                              (self.ro_hardware or "", "ro_hardware"), (self.marketing_name, "marketing_name"),
                              *((a, "alias") for a in self.aliases)]:
            key = normalize_id(_strip_paren(value))
            if key and key not in self.shared_ids and (key, column) not in out:
                out.append((key, column))
        return out


def _parse_shared(cell: str) -> dict[str, str]:
    """`parrot: SM6450, SM7435, SM6475; mt6768: ...` -> {"parrot": "SM6450, SM7435, SM6475", ...}."""
    out: dict[str, str] = {}
    for part in cell.split(";"):
        key, sep, desc = part.partition(":")
        if sep and key.strip():
            out[normalize_id(key)] = desc.strip()
    return out


def default_socs_csv() -> Path:
    """The catalog's `devices/socs.csv` (the only copy; suite.catalog.data finds it)."""
    return data_dir("devices") / "socs.csv"


def load_socs(path: Path | None = None) -> tuple[Soc, ...]:
    """Read the catalog (default `devices/socs.csv`). Rows keep every CSV column in `row`."""
    path = path or default_socs_csv()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        socs = []
        for n, r in enumerate(reader, start=2):
            tier = (r.get("tier") or "").strip().lower() or TIER_UNKNOWN
            if tier not in TIERS:
                raise ValueError(f"{path}:{n}: tier {tier!r} not one of {TIERS}")
            socs.append(Soc(
                vendor=r["vendor"].strip(),
                marketing_name=r["marketing_name"].strip(),
                soc_model=r["soc_model"].strip(),
                board_platform=r.get("board_platform", "").strip() or None,
                ro_hardware=r.get("ro_hardware", "").strip() or None,
                aliases=tuple(a.strip() for a in (r.get("aliases") or "").split("|") if a.strip()),
                shared_ids=_parse_shared(r.get("shared_ids") or ""),
                tier=tier,
                memory_type=(r.get("memory_type") or "").strip() or None,
                peak_dram_bw_gbps=_float(r.get("peak_dram_bw_gbps") or ""),
                npu_int8_tops=_float(r.get("npu_int8_tops") or ""),
                row=dict(r),
            ))
    return tuple(socs)


@dataclass(frozen=True)
class SocMatch:
    """The outcome of matching. `soc` is None when unknown or ambiguous; `hint` says why and
    what to do; `candidates` lists the catalogued parts an ambiguous id may be."""

    soc: Soc | None
    matched_on: str | None
    hint: str | None
    ambiguous: bool = False
    candidates: tuple[Soc, ...] = ()
    #: vendor / part as the phone reports them (used when the SoC is not catalogued).
    reported_vendor: str | None = None
    reported_model: str | None = None

    @property
    def tier(self) -> str:
        return self.soc.tier if self.soc else TIER_UNKNOWN

    @property
    def soc_vendor(self) -> str | None:
        return self.soc.vendor if self.soc else self.reported_vendor

    @property
    def soc_model(self) -> str | None:
        return self.soc.part if self.soc else self.reported_model

    @property
    def soc_name(self) -> str | None:
        return self.soc.marketing_name if self.soc else None

    def to_dict(self) -> dict[str, object]:
        return {
            "matched_on": self.matched_on,
            "ambiguous": self.ambiguous,
            "candidates": [s.marketing_name for s in self.candidates],
            "hint": self.hint,
        }


def _boundary_prefix(value: str, key: str) -> bool:
    """`value` starts with `key` at an id boundary: `sm8650-ab`/`mt6897z_a/za`/`ums9230_1h10`
    yes; `sunfish` for key `sun`, `zumapro` for `zuma`, `sm86501` for `sm8650` no."""
    if not value.startswith(key) or len(value) == len(key):
        return False
    nxt = value[len(key)]
    if nxt.isdigit():
        return False
    if nxt.isalpha():
        return key[-1].isdigit()  # part-number suffix letters (MT6789V, MT6897Z); not codenames
    return True


def _lookup(value: str, socs: Iterable[Soc]) -> tuple[list[Soc], str, list[tuple[Soc, str]]]:
    """Rows matching one identity string: (unique rows, how, shared hits)."""
    v = normalize_id(value)
    socs = list(socs)
    tries: list[tuple[str, str]] = [(v, "exact")]
    if (m := _MTK_BOARD_RE.match(v)):
        tries.append((f"mt{m.group(1)}", "MediaTek board name"))
    for m in _PART_RE.finditer(v):
        if m.group(1) != v:
            tries.append((m.group(1).lower(), "part number inside"))
    for key, how in tries:
        exact = [s for s in socs if any(k == key for k, _ in s.ids())]
        shared = [(s, s.shared_ids[key]) for s in socs if key in s.shared_ids]
        if exact or shared:
            cols = sorted({c for s in exact for k, c in s.ids() if k == key})
            return exact, f"{how} {'/'.join(cols) or 'shared id'}", shared
    # boundary prefixes: suffixed part numbers and board variants
    exact = []
    shared: list[tuple[Soc, str]] = []
    for s in socs:
        if any(_boundary_prefix(v, k) for k, _ in s.ids()):
            exact.append(s)
        shared.extend((s, d) for k, d in s.shared_ids.items() if _boundary_prefix(v, k))
    for m in _PART_RE.finditer(v):
        p = m.group(1).lower()
        for s in socs:
            if s not in exact and any(_boundary_prefix(p, k) for k, _ in s.ids()):
                exact.append(s)
    return exact, "prefix", shared


def match_soc(
    props: Mapping[str, str],
    cpuinfo_hardware: str | None = None,
    socs: Iterable[Soc] | None = None,
) -> SocMatch:
    """Match getprop values (and /proc/cpuinfo's Hardware line) against the catalog.

    Sources in order: ro.soc.model, ro.board.platform, ro.hardware, ro.product.board, a few
    vendor props, then cpuinfo Hardware. The first source with one catalogued match wins;
    an id shared by several parts is reported as ambiguous unless a later source settles it.
    """
    socs = tuple(socs) if socs is not None else load_socs()
    reported_vendor = normalize_vendor(props.get("ro.soc.manufacturer"))
    reported_model = (props.get("ro.soc.model") or "").strip() or None
    sources = [(k, props.get(k)) for k in PROP_SOURCES] + [(CPUINFO_SOURCE, cpuinfo_hardware)]
    tried: list[str] = []
    pending_ambiguity: tuple[str, tuple[Soc, ...], str] | None = None
    conflicts: list[str] = []

    for source, raw in sources:
        if raw is None or not str(raw).strip():
            continue
        value = str(raw).strip()
        if normalize_id(value) in GENERIC_IDS:
            tried.append(f"{source}={value!r} (generic)")
            continue
        tried.append(f"{source}={value!r}")
        rows, how, shared = _lookup(value, socs)
        if reported_vendor and len(rows) > 1:
            same = [s for s in rows if s.vendor.lower() == reported_vendor.lower()]
            rows = same or rows
        if len(rows) == 1 and not shared:
            soc = rows[0]
            if pending_ambiguity and soc not in pending_ambiguity[1] and pending_ambiguity[1]:
                conflicts.append(f"{pending_ambiguity[0]} suggested {', '.join(s.marketing_name for s in pending_ambiguity[1])}")
            if reported_vendor and soc.vendor.lower() != reported_vendor.lower():
                conflicts.append(f"ro.soc.manufacturer says {reported_vendor!r}, catalog row is {soc.vendor}")
            return SocMatch(soc, f"{source}={value} ({how})", "; ".join(conflicts) or None,
                            reported_vendor=reported_vendor, reported_model=reported_model)
        if shared or len(rows) > 1:
            cands = tuple(dict.fromkeys([s for s, _ in shared] + rows))
            desc = "; ".join(sorted({d for _, d in shared})) or ", ".join(s.marketing_name for s in rows)
            if pending_ambiguity is None:
                pending_ambiguity = (f"{source}={value}", cands, desc)

    if pending_ambiguity:
        where, cands, desc = pending_ambiguity
        hint = (f"{where} is shared by several SoCs ({desc}); catalogued candidates: "
                f"{', '.join(f'{s.marketing_name} ({s.tier})' for s in cands)}. A more specific id "
                f"(ro.soc.model) would tell them apart; add it to the aliases of the right row in "
                f"{SOCS_CSV_HINT_PATH}")
        return SocMatch(None, where, hint, ambiguous=True, candidates=cands,
                        reported_vendor=reported_vendor, reported_model=reported_model)
    seen = "; ".join(tried) if tried else "no SoC identity (no ro.soc.*, ro.board.platform, ro.hardware, cpuinfo Hardware)"
    hint = (f"SoC not in the catalog ({seen}): add a row or an alias to {SOCS_CSV_HINT_PATH} "
            f"(see devices/README.md); tier stays '{TIER_UNKNOWN}' until then")
    return SocMatch(None, None, hint, reported_vendor=reported_vendor, reported_model=reported_model)
