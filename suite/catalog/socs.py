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
from suite.core.errors import EdgebenchError

#: `<repo>/devices/socs.csv`, the catalog edited by hand (see devices/README.md).
#: The file a user extends when a phone's SoC is not matched (named in hints).
SOCS_CSV_HINT_PATH = "devices/socs.csv"

TIER_UNKNOWN = "unknown"
TIERS = ("flagship", "mid", "entry", TIER_UNKNOWN)

#: Identity sources in the order of their specificity (issue 14): the SoC's own model property, the
#: vendor's chip name, the vendor's display string (HONOR and Huawei: `ro.config.cpu_info_display`),
#: /proc/cpuinfo's `Hardware` line, then the platform and board names several parts may share.
SPECIFIC_SOURCES = ("ro.soc.model", "ro.hardware.chipname", "ro.config.cpu_info_display")
CPUINFO_SOURCE = "/proc/cpuinfo Hardware"
PLATFORM_SOURCES = ("ro.board.platform", "ro.hardware", "ro.product.board", "ro.vendor.mediatek.platform",
                    "ro.boot.hardware")
#: a vendor's display string names the chip its maker sold; where it contradicts `ro.soc.model` (some
#: firmwares inherit a reference board's), it is the one believed
DISPLAY_SOURCES = ("ro.config.cpu_info_display",)
#: the CPU cluster configuration as a tie-breaker between candidates (core part numbers and counts)
CPU_SOURCE = "/proc/cpuinfo CPU parts"
#: ... and the fastest core's hardware max frequency (cpufreq `cpuinfo_max_freq`)
FREQ_SOURCE = "cpufreq max frequency"

#: display strings in Chinese (`高通骁龙695`, `华为麒麟820`) -> the catalog's English names
_DISPLAY_WORDS = (("高通", "Qualcomm "), ("骁龙", "Snapdragon "), ("华为", "HUAWEI "), ("海思", "HiSilicon "),
                  ("麒麟", "Kirin "), ("联发科", "MediaTek "), ("天玑", "Dimensity "), ("曦力", "Helio "),
                  ("紫光展锐", "Unisoc "), ("展锐", "Unisoc "), ("虎贲", "Tiger "), ("三星", "Samsung "),
                  ("猎户座", "Exynos "), ("谷歌", "Google "), ("处理器", ""), ("八核", ""))
#: vendor words a display string or a marketing form may lead with (`HUAWEI Kirin 820`)
_LEADING_VENDORS = ("qualcomm technologies, inc", "qualcomm", "huawei", "hisilicon", "mediatek", "samsung",
                    "google", "unisoc", "spreadtrum", "honor")

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


def soc_text(vendor: str | None, model: str | None) -> str:
    """`MediaTek MT6789`; the vendor once where the model already names it (this host: `AMD EPYC`)."""
    vendor, model = (vendor or "").strip(), (model or "").strip()
    if vendor and model.lower().startswith(vendor.lower()):
        return model
    return " ".join(x for x in (vendor, model) if x)


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
            if column == "marketing_name" and key.endswith((" 5g", " 4g")):  # phones often drop it
                out.append((key[:-3], column))
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
    what to do; `candidates` lists the catalogued parts an ambiguous id may be; `matched_on` is the
    evidence that decided; `conflicts` the sources that named another part (kept, not used)."""

    soc: Soc | None
    matched_on: str | None
    hint: str | None
    ambiguous: bool = False
    candidates: tuple[Soc, ...] = ()
    #: vendor / part as the phone reports them (used when the SoC is not catalogued).
    reported_vendor: str | None = None
    reported_model: str | None = None
    conflicts: tuple[str, ...] = ()
    #: an ambiguous match's tier when every part it may be shares it (None: they differ or are not all known)
    shared_tier: str | None = None

    @property
    def tier(self) -> str:
        if self.soc:
            return self.soc.tier
        return self.shared_tier or TIER_UNKNOWN

    @property
    def soc_vendor(self) -> str | None:
        if self.soc:
            return self.soc.vendor
        vendors = {s.vendor for s in self.candidates}
        return vendors.pop() if len(vendors) == 1 else self.reported_vendor

    @property
    def soc_model(self) -> str | None:
        return self.soc.part if self.soc else self.reported_model

    @property
    def soc_name(self) -> str | None:
        """The part's marketing name; for an ambiguous match, its candidates (`Helio G99 or Helio G100`)."""
        if self.soc:
            return self.soc.marketing_name
        return " or ".join(s.marketing_name for s in self.candidates) if self.candidates else None

    def common(self, attr: str):
        """An attribute of the part (`memory_type`), or of every candidate when they all agree; else None."""
        if self.soc:
            return getattr(self.soc, attr)
        values = {getattr(s, attr) for s in self.candidates}
        return values.pop() if len(values) == 1 else None

    def to_dict(self) -> dict[str, object]:
        return {
            "matched_on": self.matched_on,
            "ambiguous": self.ambiguous,
            "candidates": [s.marketing_name for s in self.candidates],
            "tier": self.tier,
            "conflicts": list(self.conflicts),
            "hint": self.hint,
        }


def _boundary_prefix(value: str, key: str) -> bool:
    """`value` starts with `key` at an id boundary: `sm8650-ab`/`mt6897z_a/za`/`ums9230_1h10`
    yes; `sunfish` for key `sun`, `zumapro` for `zuma`, `sm86501` for `sm8650` no. Suffix letters
    only after a part number (`MT6789V`), never after a marketing name (`Kirin 9000` is not `Kirin 9000SL`)."""
    if not value.startswith(key) or len(value) == len(key):
        return False
    nxt = value[len(key)]
    if nxt.isdigit():
        return False
    if nxt.isalpha():  # suffix letters after a vendor part number only (not `kirin9000` -> `kirin9000sl`)
        return key[-1].isdigit() and _PART_RE.fullmatch(key) is not None
    return True


def display_forms(value: str) -> list[str]:
    """The forms a display string or marketing form may match as: `高通骁龙695` -> `Qualcomm Snapdragon
    695` -> `Snapdragon 695`; `HUAWEI Kirin 990 5G` -> `Kirin 990 5G` -> `Kirin 990`."""
    v = value
    for zh, en in _DISPLAY_WORDS:
        v = v.replace(zh, en)
    forms = [normalize_id(v)]
    bare = forms[0]
    for vendor in _LEADING_VENDORS:
        if bare.startswith(vendor + " "):
            bare = bare[len(vendor) + 1:].lstrip(" ,")
            break
    forms.append(bare)
    for suffix in (" 5g", " 4g"):
        if bare.endswith(suffix):
            forms.append(bare[: -len(suffix)])
    return list(dict.fromkeys(f for f in forms if f))


def _lookup(value: str, socs: Iterable[Soc]) -> tuple[list[Soc], str, list[tuple[Soc, str]]]:
    """Rows matching one identity string: (unique rows, how, shared hits)."""
    v = normalize_id(value)
    socs = list(socs)
    tries: list[tuple[str, str]] = [(f, "exact" if f == v else "display form") for f in display_forms(value)]
    if (m := _MTK_BOARD_RE.match(v)):
        tries.append((f"mt{m.group(1)}", "MediaTek board name"))
    for m in _PART_RE.finditer(v):
        if m.group(1) != v:
            tries.append((m.group(1).lower(), "part number inside"))
    for key, how in tries:
        # spacing is not identity: `Snapdragon 8+Gen1` (a display string) is `Snapdragon 8+ Gen 1`
        tight = key.replace(" ", "")
        exact = [s for s in socs if any(k == key or k.replace(" ", "") == tight for k, _ in s.ids())]
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


@dataclass(frozen=True)
class _Seen:
    """What one source said: the rows it names on its own (`rows`) and those it shares (`shared`)."""

    source: str
    value: str
    how: str
    rows: tuple[Soc, ...]
    shared: tuple[tuple[Soc, str], ...]

    @property
    def where(self) -> str:
        return f"{self.source}={self.value}"

    @property
    def unique(self) -> Soc | None:
        return self.rows[0] if len(self.rows) == 1 and not self.shared else None

    @property
    def candidates(self) -> tuple[Soc, ...]:
        return tuple(dict.fromkeys([s for s, _ in self.shared] + list(self.rows)))


def _cpu_signature(text: str | None) -> dict[str, int] | None:
    """`1x Cortex-X2 + 3x Cortex-A710 + 4x Cortex-A510` -> {"cortex-x2": 1, ...}; None if unparsable."""
    if not text:
        return None
    out: dict[str, int] = {}
    for part in text.split("+"):
        m = re.match(r"\s*(\d+)\s*x\s*(.+?)\s*$", part)
        if not m:
            return None
        name = normalize_id(re.sub(r"\s*\(.*\)", "", m.group(2)))
        out[name] = out.get(name, 0) + int(m.group(1))
    return out or None


def _top_ghz(cell: str | None) -> float | None:
    """The fastest cluster's clock from `cpu_max_ghz` (`3.2 / 2.8 / 2.0` -> 3.2); None if not a number."""
    try:
        return max(float(x) for x in (cell or "").split("/") if x.strip())
    except ValueError:
        return None


def _freq_tiebreak(cands: tuple[Soc, ...], cpu_max_khz: int | None) -> tuple[Soc, ...]:
    """The candidates whose fastest catalogued clock is the phone's fastest core's hardware max (within
    2%, cpufreq's rounding); all of them when that cannot tell (no reading, a clock not catalogued)."""
    if not cpu_max_khz:
        return cands
    tops = [(s, _top_ghz(s.row.get("cpu_max_ghz"))) for s in cands]
    if any(t is None for _, t in tops):
        return cands
    ghz = cpu_max_khz / 1e6
    same = tuple(s for s, t in tops if abs(t - ghz) <= 0.02 * t)
    return same or cands


def _cpu_tiebreak(cands: tuple[Soc, ...], cpu_cores: Iterable[str] | None) -> tuple[Soc, ...]:
    """The candidates whose catalogued CPU configuration is the phone's (core names and counts from
    /proc/cpuinfo's part numbers); all of them when that cannot tell (no parts, no configuration)."""
    names = [normalize_id(c) for c in (cpu_cores or ()) if c]
    if not names or any(not n.startswith("cortex-") for n in names):
        return cands  # a vendor's own core names (Kryo parts) say nothing a catalog row can compare
    phone: dict[str, int] = {}
    for n in names:
        phone[n] = phone.get(n, 0) + 1
    known = [(s, _cpu_signature(s.row.get("cpu_config"))) for s in cands]
    if any(sig is None for _, sig in known):
        return cands
    same = tuple(s for s, sig in known if sig == phone)
    return same or cands


def _all_named(descriptions: Iterable[str], rows: Iterable[Soc]) -> bool:
    """Whether every part the shared ids' descriptions name (`SM6450, SM7435, SM6475`) is one of `rows`."""
    rows = list(rows)
    names = ({k for s in rows for k, _ in s.ids()} | {normalize_id(s.part) for s in rows if s.part}
             | {normalize_id(s.marketing_name) for s in rows})
    for desc in descriptions:
        for token in re.split(r"[,/;]| and ", re.sub(r"\([^)]*\)?", "", desc)):  # notes in parentheses: not parts
            token = normalize_id(token)
            if token and not any(token == n or _boundary_prefix(token, n) or n.endswith(" " + token) for n in names):
                return False
    return True


def _shared_tier(cands: tuple[Soc, ...], descriptions: Iterable[str]) -> str | None:
    """The tier every candidate has, when the parts the shared ids name are all catalogued
    candidates (an uncatalogued part sharing the id may have another tier: then None)."""
    tiers = {s.tier for s in cands}
    if len(tiers) != 1 or TIER_UNKNOWN in tiers or not _all_named(descriptions, cands):
        return None
    return tiers.pop()


def match_soc(
    props: Mapping[str, str],
    cpuinfo_hardware: str | None = None,
    socs: Iterable[Soc] | None = None,
    cpu_cores: Iterable[str] | None = None,
    cpu_max_khz: int | None = None,
) -> SocMatch:
    """Match a phone's identity against the catalog, using every source it gives.

    Sources by specificity: ro.soc.model, ro.hardware.chipname, the vendor's display string
    (ro.config.cpu_info_display), /proc/cpuinfo's Hardware line, then the platform and board names
    (ro.board.platform, ro.hardware, ro.product.board, ...). The most specific source that names one
    catalogued part decides (a display string over a contradicting ro.soc.model); sources that name
    another part are kept as `conflicts`. An id several parts share is `ambiguous` unless other
    sources or the CPU configuration (`cpu_cores`: each core's name from /proc/cpuinfo) narrow it to
    one, then the fastest core's max frequency (`cpu_max_khz`, from cpufreq: an 870 is an 865 at 3.2 GHz);
    an ambiguous match keeps a tier only when every part it may be shares it.
    """
    socs = tuple(socs) if socs is not None else load_socs()
    reported_vendor = normalize_vendor(props.get("ro.soc.manufacturer"))
    reported_model = (props.get("ro.soc.model") or "").strip() or None
    sources = ([(k, props.get(k)) for k in SPECIFIC_SOURCES] + [(CPUINFO_SOURCE, cpuinfo_hardware)]
               + [(k, props.get(k)) for k in PLATFORM_SOURCES])
    tried: list[str] = []
    seen: list[_Seen] = []
    for source, raw in sources:
        if raw is None or not str(raw).strip():
            continue
        value = " ".join(str(raw).split())[:200]
        if normalize_id(value) in GENERIC_IDS:
            tried.append(f"{source}={value!r} (generic)")
            continue
        tried.append(f"{source}={value!r}")
        rows, how, shared = _lookup(value, socs)
        if reported_vendor and len(rows) > 1:
            same = [s for s in rows if s.vendor.lower() == reported_vendor.lower()]
            rows = same or rows
        if rows or shared:
            seen.append(_Seen(source, value, how, tuple(rows), tuple(shared)))

    def found(soc: Soc, evidence: str, conflicts: list[str]) -> SocMatch:
        if reported_vendor and soc.vendor.lower() != reported_vendor.lower():
            conflicts.append(f"ro.soc.manufacturer says {reported_vendor!r}, the catalog row is {soc.vendor}")
        hint = ("; ".join(f"conflict: {c}" for c in conflicts) + f" (decided by {evidence})") if conflicts else None
        return SocMatch(soc, evidence, hint, reported_vendor=reported_vendor, reported_model=reported_model,
                        conflicts=tuple(conflicts))

    unique = [x for x in seen if x.unique is not None]
    if unique:
        first = unique[0]
        display = next((x for x in unique if x.source in DISPLAY_SOURCES), None)
        if display is not None and first.source == "ro.soc.model" and display.unique != first.unique:
            first = display  # the maker's display string over a reference board's ro.soc.model
        soc = first.unique
        conflicts = [f"{x.where} names {x.unique.marketing_name}" for x in unique if x.unique != soc]
        conflicts += [f"{x.where} may be {', '.join(c.marketing_name for c in x.candidates)}" for x in seen
                      if x.unique is None and soc not in x.candidates]
        return found(soc, f"{first.where} ({first.how})", conflicts)

    if seen:
        # only shared ids: what every source allows, then the CPU configuration
        cands = seen[0].candidates
        used = [seen[0].where]
        for x in seen[1:]:
            narrower = tuple(s for s in cands if s in x.candidates)
            if narrower:
                if narrower != cands:
                    used.append(x.where)
                cands = narrower
        by_cpu = _cpu_tiebreak(cands, cpu_cores)
        if len(by_cpu) < len(cands):
            used.append(CPU_SOURCE)
        by_freq = _freq_tiebreak(by_cpu, cpu_max_khz)
        if len(by_freq) < len(by_cpu):
            used.append(FREQ_SOURCE)
        cands = by_freq
        # one part left decides only when every part the ids are shared with is catalogued (else an
        # uncatalogued one is still possible)
        all_descs = {d for x in seen for _, d in x.shared}
        if len(cands) == 1 and _all_named(all_descs, socs):
            return found(cands[0], " + ".join(used) + " (shared ids narrowed to one part)", [])
        descs = all_descs
        tier = _shared_tier(cands, descs)
        desc = "; ".join(sorted(descs)) or ", ".join(s.marketing_name for s in cands)
        hint = (f"{' + '.join(used)} is shared by several SoCs ({desc}); catalogued candidates: "
                f"{', '.join(f'{s.marketing_name} ({s.tier})' for s in cands)}; "
                + (f"they are all {tier}, so the tier stands. " if tier else "the tier stays unknown. ")
                + f"A more specific id (ro.soc.model) would tell them apart; add it to the aliases of the "
                  f"right row in {SOCS_CSV_HINT_PATH}")
        return SocMatch(None, " + ".join(used), hint, ambiguous=True, candidates=cands,
                        reported_vendor=reported_vendor, reported_model=reported_model, shared_tier=tier)
    listed = "; ".join(tried) if tried else "no SoC identity (no ro.soc.*, ro.board.platform, ro.hardware, cpuinfo Hardware)"
    hint = (f"SoC not in the catalog ({listed}): add a row or an alias to {SOCS_CSV_HINT_PATH} "
            f"(see devices/README.md); tier stays '{TIER_UNKNOWN}' until then")
    return SocMatch(None, None, hint, reported_vendor=reported_vendor, reported_model=reported_model)


def soc_named(value: str, socs: Iterable[Soc] | None = None) -> Soc:
    """The catalog row a person names (`--soc`: a part number, codename, marketing name or alias);
    an EdgebenchError (exit 2) for an unknown name, or a shared one with its candidates."""
    m = match_soc({"ro.soc.model": value}, None, socs)
    if m.soc is not None:
        return m.soc
    if m.ambiguous:
        names = ", ".join(f"{c.marketing_name} ({c.part or '-'}, {c.tier})" for c in m.candidates)
        raise EdgebenchError(f"{value!r} names several SoCs: {names}",
                             hint="give the part number or the marketing name of one of them", exit_code=2)
    raise EdgebenchError(f"{value!r} is no SoC the catalog knows",
                         hint=f"give a part number (SM8650), a codename or a marketing name from {SOCS_CSV_HINT_PATH}",
                         exit_code=2)
