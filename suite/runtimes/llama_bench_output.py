"""llama-bench's output, every format and every schema generation, as normalised rows.

`parse_llama_bench(text)` reads what llama-bench printed (md, csv, json, jsonl or sql,
2023 to 2026, with shell prompts, backend banners, log lines and error messages around
it) into normalised `BenchRow`s. It is tolerant line by line: a line it cannot use is
reported as a `Problem(line_no, line, reason)`, never raised. A llama-bench run on a device
(suite.runtimes.llama_bench) and `edgebench import llama-bench` (suite.importers.llama_bench)
both read through it.

Field meanings follow llama-bench's own source (tools/llama-bench/llama-bench.cpp, and
examples/llama-bench/ before 2025; ik_llama.cpp for its fork-only fields):
- `avg_ts` is the mean over repetitions of (n_prompt + n_gen) / time, so a `pp+tg` test
  reports one combined throughput; ik_llama.cpp's `tg N@pp M` counts only the N
  generated tokens, the M-token prompt being untimed context.
- markdown `size` is MiB below 1 GiB else GiB (binary), `params` is M below 1e9 else B
  (decimal), both printed with 2 decimals: sizes read from markdown are approximate.
- the markdown `backend` column (and the `backends` field) lists the backends the binary
  was built with, not where the test ran.
- 2023-2024 builds print per-backend booleans instead; `backends` is then what
  llama-bench's own markdown printer showed: the first true of cuda, opencl, vulkan,
  kompute, metal, sycl, gpu_blas, blas (else CPU), plus RPC when `rpc` is set.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

FORMATS = ("md", "csv", "json", "jsonl", "sql")

# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A line the parser could not use (1-based line number in the text parsed)."""

    line_no: int
    line: str
    reason: str


@dataclass(frozen=True)
class BenchRow:
    """One llama-bench test result, normalised across formats and schema generations.

    `None` means the capture does not say (markdown omits most configuration columns
    when they are at their defaults). `raw` keeps the original fields, names as printed.
    """

    kind: str  # "pp" | "tg" | "pp+tg"
    n_prompt: int
    n_gen: int
    n_depth: int
    avg_ts: float
    stddev_ts: float | None = None
    samples_ts: tuple[float, ...] | None = None
    samples_ns: tuple[int, ...] | None = None
    avg_ns: int | None = None
    stddev_ns: int | None = None
    test: str = ""  # the test label as llama-bench printed it (or would have)
    model_type: str | None = None  # llama-bench's model description, e.g. "llama 7B Q4_0"
    model_filename: str | None = None
    arch: str | None = None
    size_label: str | None = None  # "7B", "?B", "335M"
    quant: str | None = None  # "Q4_0", "Q4_K_M", ...
    size_bytes: int | None = None
    size_exact: bool = False  # False when read from a rounded markdown "3.56 GiB"
    params: int | None = None
    params_exact: bool = False
    backends: tuple[str, ...] = ()
    devices: str | None = None
    ngl: int | None = None
    threads: int | None = None
    n_batch: int | None = None
    n_ubatch: int | None = None
    type_k: str | None = None
    type_v: str | None = None
    flash_attn: str | None = None  # "on" | "off" | "auto"
    build_commit: str | None = None
    build_number: int | None = None
    cpu_info: str | None = None
    gpu_info: str | None = None
    test_time: str | None = None
    format: str = ""
    block: int = 0  # which table / header / array in the capture this row belongs to
    line_no: int = 0
    line_end: int = 0
    raw: Mapping = field(default_factory=dict, compare=False, hash=False)

    @property
    def repetitions(self) -> int | None:
        if self.samples_ts:
            return len(self.samples_ts)
        if self.samples_ns:
            return len(self.samples_ns)
        return None

    @property
    def device_description(self) -> str | None:
        parts = [p.strip() for p in (self.cpu_info, self.gpu_info) if p and p.strip()]
        return " + ".join(parts) if parts else None


@dataclass
class ParseResult:
    rows: list[BenchRow]
    problems: list[Problem]
    format: str  # md | csv | json | jsonl | sql, or "unknown" when nothing was recognised
    source: str = "<text>"
    headers: int = 0  # llama-bench table headers / csv headers / json documents seen
    error_lines: list[Problem] = field(default_factory=list)  # error messages in the capture

    @property
    def ok(self) -> bool:
        return bool(self.rows)


class _RowError(ValueError):
    pass


# --- value helpers -------------------------------------------------------------------------

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TS_RE = re.compile(rf"^({_NUM}|nan|inf|-nan|-inf)\s*(?:±|Â±|\+/-|\+-)\s*({_NUM}|nan|-nan|inf)$", re.I)
_SIZE_RE = re.compile(rf"^({_NUM})\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$", re.I)
_PARAMS_RE = re.compile(rf"^({_NUM})\s*([KMBT]?)$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]{6,40}$")
_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
_BUILD_RE = re.compile(r"^build:\s*(\S+)\s*\((\d+)\)\s*$")
_ERROR_RE = re.compile(
    r"(\berror\b|\babort(ed)?\b|\bfatal\b|\bfailed\b|segmentation fault|core dumped|"
    r"GGML_ASSERT|out of memory|\bterminate called\b|\bKilled\b|\bexception\b)",
    re.I,
)

_SIZE_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
               "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_PARAM_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def as_text(v) -> str:
    return "" if v is None else str(v).strip()


def _int(v) -> int | None:
    if v is None or isinstance(v, bool):
        return int(v) if isinstance(v, bool) else None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if math.isfinite(v) and v == int(v) else None
    s = as_text(v)
    if re.fullmatch(r"[-+]?\d+", s):
        return int(s)
    if re.fullmatch(r"[-+]?\d+\.0*", s):
        return int(s.split(".")[0])
    return None


def _float(v) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    s = as_text(v)
    if re.fullmatch(_NUM, s) or s.lower() in ("nan", "-nan", "inf", "-inf"):
        return float(s.replace("-nan", "nan"))
    return None


def _bool(v) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    s = as_text(v).lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    return None


def _decimal_scale(num: str, mult: int) -> int:
    try:
        return int((Decimal(num) * mult).to_integral_value())
    except InvalidOperation as exc:
        raise _RowError(f"not a number: {num!r}") from exc


def parse_size(text: str) -> int | None:
    """'3.56 GiB' -> bytes (binary units, as llama-bench prints them); None if not a size."""
    m = _SIZE_RE.match(as_text(text))
    if not m:
        return None
    return _decimal_scale(m.group(1), _SIZE_UNITS[m.group(2).lower()])


def parse_params(text: str) -> int | None:
    """'1.24 B' -> 1_240_000_000, '566.70 M' -> 566_700_000 (decimal units)."""
    m = _PARAMS_RE.match(as_text(text))
    if not m:
        return None
    return _decimal_scale(m.group(1), _PARAM_UNITS[m.group(2)])


def parse_ts(text: str) -> tuple[float, float | None] | None:
    """'2242.06 ± 24.26' -> (2242.06, 24.26); a bare number -> (value, None)."""
    s = as_text(text)
    m = _TS_RE.match(s)
    if m:
        avg = float(m.group(1).replace("-nan", "nan"))
        sd = float(m.group(2).replace("-nan", "nan"))
        return avg, (sd if math.isfinite(sd) else None)
    f = _float(s)
    return (f, None) if f is not None else None


_TEST_RE = [
    (re.compile(r"^pp\s*(\d+)\s*\+\s*tg\s*(\d+)$", re.I), "pp+tg"),
    (re.compile(r"^tg\s*(\d+)\s*@\s*pp\s*(\d+)$", re.I), "tg@pp"),
    (re.compile(r"^pp\s*(\d+)$", re.I), "pp"),
    (re.compile(r"^tg\s*(\d+)$", re.I), "tg"),
]
_DEPTH_RE = re.compile(r"^(.*?)\s*@\s*d\s*(\d+)$", re.I)


def parse_test_name(text: str) -> tuple[str, int, int, int] | None:
    """A test label -> (kind, n_prompt, n_gen, n_depth).

    `pp 512` / `pp512` -> pp; `tg 128` / `tg128` -> tg; `pp4096+tg128` -> pp+tg;
    `pp512 @ d512` -> depth 512; ik_llama.cpp's `tg64@pp8192` (64 tokens generated after
    an untimed 8192-token prompt) -> tg with n_gen 64 at depth 8192.
    """
    s = as_text(text)
    depth = 0
    m = _DEPTH_RE.match(s)
    if m:
        s, depth = m.group(1).strip(), int(m.group(2))
    for rx, kind in _TEST_RE:
        m = rx.match(s)
        if not m:
            continue
        if kind == "pp+tg":
            return "pp+tg", int(m.group(1)), int(m.group(2)), depth
        if kind == "tg@pp":
            return "tg", 0, int(m.group(1)), depth + int(m.group(2))
        if kind == "pp":
            return "pp", int(m.group(1)), 0, depth
        return "tg", 0, int(m.group(1)), depth
    return None


def label_for(kind: str, n_prompt: int, n_gen: int, n_depth: int) -> str:
    base = {"pp": f"pp{n_prompt}", "tg": f"tg{n_gen}"}.get(kind, f"pp{n_prompt}+tg{n_gen}")
    return f"{base} @ d{n_depth}" if n_depth else base


# llama.cpp's llama_model_ftype_name() strings -> the usual quant token (src/llama-model-loader.cpp).
_FTYPES = {
    "all F32": "F32", "F16": "F16", "BF16": "BF16", "Q4_0": "Q4_0", "Q4_1": "Q4_1",
    "Q5_0": "Q5_0", "Q5_1": "Q5_1", "Q8_0": "Q8_0", "MXFP4 MoE": "MXFP4_MOE",
    "Q2_K - Medium": "Q2_K", "Q2_K - Small": "Q2_K_S", "Q3_K - Small": "Q3_K_S",
    "Q3_K - Medium": "Q3_K_M", "Q3_K - Large": "Q3_K_L", "Q4_K - Small": "Q4_K_S",
    "Q4_K - Medium": "Q4_K_M", "Q5_K - Small": "Q5_K_S", "Q5_K - Medium": "Q5_K_M",
    "Q6_K": "Q6_K", "TQ1_0 - 1.69 bpw ternary": "TQ1_0", "TQ2_0 - 2.06 bpw ternary": "TQ2_0",
    "IQ2_XXS - 2.0625 bpw": "IQ2_XXS", "IQ2_XS - 2.3125 bpw": "IQ2_XS", "IQ2_S - 2.5 bpw": "IQ2_S",
    "IQ2_M - 2.7 bpw": "IQ2_M", "IQ3_XS - 3.3 bpw": "IQ3_XS", "IQ3_XXS - 3.0625 bpw": "IQ3_XXS",
    "IQ1_S - 1.5625 bpw": "IQ1_S", "IQ1_M - 1.75 bpw": "IQ1_M", "IQ4_NL - 4.5 bpw": "IQ4_NL",
    "IQ4_XS - 4.25 bpw": "IQ4_XS", "IQ3_S - 3.4375 bpw": "IQ3_S", "IQ3_S mix - 3.66 bpw": "IQ3_M",
}
_MODEL_RE = re.compile(r"^(\S+)\s+(\S+)\s+(.+)$")


def split_model_type(desc: str | None) -> tuple[str | None, str | None, str | None]:
    """llama_model_desc() is '<arch> <size class> <ftype>' -> (arch, size label, quant)."""
    m = _MODEL_RE.match(as_text(desc))
    if not m:
        return (as_text(desc) or None), None, None
    arch, size, ftype = m.group(1), m.group(2), m.group(3).strip()
    ftype = re.sub(r"^(mostly|\(guessed\))\s+", "", ftype, flags=re.I).strip()
    quant = _FTYPES.get(ftype)
    if quant is None:  # fork-only or newer types: "IQ4_K_R4 - 4.5 bpw", "Q4_0_4_8"
        tok = ftype.split(" - ")[0].split()[0] if ftype else ""
        quant = tok if re.fullmatch(r"[A-Za-z0-9_]+", tok) else None
    return arch, size, quant


# --- canonical field names ------------------------------------------------------------------

#: markdown display names (any generation, forks included) -> the json/csv field name
_MD_NAMES = {
    "model": "model_type", "size": "model_size", "params": "model_n_params",
    "backend": "backends", "ngl": "n_gpu_layers", "n_gpu_layers": "n_gpu_layers",
    "threads": "n_threads", "n_threads": "n_threads", "sm": "split_mode",
    "nkvo": "no_kv_offload", "fa": "flash_attn", "mmq": "mul_mat_q", "ts": "tensor_split",
    "ot": "tensor_buft_overrides", "dev": "devices", "embd": "embeddings", "mmap": "use_mmap",
    "nopo": "no_op_offload", "noh": "no_host", "lm": "load_mode", "fitt": "fit_target",
    "fitc": "fit_min_ctx", "mla": "mla_attn", "fmoe": "fused_moe", "rtr": "repack",
    "test": "test", "t/s": "t/s",
}
_BACKEND_FLAGS = (("cuda", "CUDA"), ("opencl", "OpenCL"), ("vulkan", "Vulkan"), ("kompute", "Kompute"),
                  ("metal", "Metal"), ("sycl", "SYCL"), ("gpu_blas", "GPU BLAS"), ("blas", "BLAS"))
FLAG_NAMES = {k for k, _ in _BACKEND_FLAGS}

_INT_FIELDS = {"build_number", "n_batch", "n_ubatch", "n_threads", "poll", "model_size",
               "model_n_params", "n_gpu_layers", "main_gpu", "n_prompt", "n_gen", "n_depth",
               "avg_ns", "stddev_ns", "n_cpu_moe", "mla_attn", "attn_max_batch", "fit_target",
               "fit_min_ctx", "no_op_offload"}
_BOOL_FIELDS = FLAG_NAMES | {"f16_kv", "mul_mat_q", "no_kv_offload", "use_mmap", "embeddings",
                              "cpu_strict", "no_host", "repack", "fused_moe", "low_vram"}
_FLOAT_FIELDS = {"avg_ts", "stddev_ts", "defrag_thold"}


def _valid(name: str, value) -> int:
    """+1 when a value has the type its field must have, -1 when it cannot be, 0 unknown."""
    s = as_text(value)
    if name in _INT_FIELDS:
        ok = _int(s) is not None
    elif name == "flash_attn":
        ok = _int(s) is not None or _bool(s) is not None or s in ("auto", "on", "off")
    elif name in _BOOL_FIELDS:
        ok = _bool(s) is not None
    elif name in _FLOAT_FIELDS:
        ok = _float(s) is not None
    elif name == "build_commit":
        ok = bool(_HEX_RE.match(s)) or s == "unknown"
    elif name == "test_time":
        ok = bool(_TIME_RE.match(s))
    elif name in ("cpu_info", "gpu_info", "model_filename", "model_type", "backends"):
        ok = _float(s) is None and _bool(s) is None and not _TIME_RE.match(s)
        if name == "gpu_info" and s == "":
            ok = True
    elif name == "cpu_mask":
        ok = s.lower().startswith("0x")
    elif name in ("type_k", "type_v"):
        ok = bool(re.fullmatch(r"(f16|f32|bf16|q\d\w*|iq\d\w*)", s, re.I))
    elif name == "split_mode":
        ok = s in ("none", "layer", "row", "tensor")
    elif name == "tensor_split":
        ok = bool(re.fullmatch(r"[\d.]+(/[\d.]+)*", s))
    elif name == "test":
        ok = parse_test_name(s) is not None
    elif name == "t/s":
        ok = parse_ts(s) is not None
    else:
        return 0
    return 1 if ok else -1


def _valid_md(name: str, value) -> int:
    if name == "model_size":
        return 1 if parse_size(value) is not None else -1
    if name == "model_n_params":
        return 1 if parse_params(value) is not None else -1
    return _valid(name, value)


def align(names: list[str], values: list, valid=_valid) -> tuple[dict, list[str]]:
    """Pair a header with a row of a different length, best effort.

    Tries every position for the missing (or extra) columns, keeps the positions whose
    values best fit the fields' types, and drops every field whose value would differ
    between those equally good positions. Returns (mapping, dropped field names).
    """
    nh, nv = len(names), len(values)
    if nh == nv:
        return dict(zip(names, values, strict=True)), []
    k = abs(nv - nh)
    best: list[int] = []
    best_score = None
    for s in range(0, min(nh, nv) + 1):
        m = _assign(names, values, s, k)
        score = sum(valid(n, v) for n, v in m.items())
        if best_score is None or score > best_score:
            best_score, best = score, [s]
        elif score == best_score:
            best.append(s)
    lo, hi = min(best), max(best)
    m = _assign(names, values, best[0], k)
    # fields whose value depends on where the gap is, among the best positions
    unstable = set(names[lo:hi]) if nv > nh else set(names[lo:hi + k])
    if nv < nh:
        unstable |= set(names[best[0]:best[0] + k])  # never had a value
    dropped = [n for n in names if n in unstable]
    return {n: v for n, v in m.items() if n not in unstable}, dropped


def _assign(names, values, s, k) -> dict:
    if len(values) > len(names):  # k extra values, dropped at position s
        return {n: (values[i] if i < s else values[i + k]) for i, n in enumerate(names)}
    out = {}
    for i, n in enumerate(names):  # k missing values, at fields s .. s+k-1
        if i < s:
            out[n] = values[i]
        elif i >= s + k:
            out[n] = values[i - k]
    return out


# --- building rows ----------------------------------------------------------------------------


def _flash(v) -> str | None:
    if v is None or as_text(v) == "":
        return None
    s = as_text(v).lower()
    if s in ("auto", "-1"):
        return "auto"
    b = _bool(s)
    if b is None:
        return s
    return "on" if b else "off"


def _backends(f: Mapping, dropped: Iterable[str]) -> tuple[str, ...]:
    if as_text(f.get("backends")):
        return tuple(b.strip() for b in as_text(f["backends"]).split(",") if b.strip())
    flags = [k for k, _ in _BACKEND_FLAGS if k in f]
    if not flags or FLAG_NAMES & set(dropped):
        return ()
    out: list[str] = []
    for key, name in _BACKEND_FLAGS:  # llama-bench's own get_backend(): the first true flag
        if _bool(f.get(key)):
            out.append(name)
            break
    if not out:
        out.append("CPU")
    rpc = f.get("rpc")
    if rpc is not None and _bool(rpc) is not False and as_text(rpc) not in ("", "0"):
        out.append("RPC")
    return tuple(out)


def _tuple_of(v, conv) -> tuple | None:
    if not isinstance(v, list):
        return None
    out = []
    for x in v:
        c = conv(x)
        if c is None:
            return None
        out.append(c)
    return tuple(out)


def build_row(f: Mapping, *, fmt: str, block: int, line_no: int, line_end: int | None = None,
              dropped: Iterable[str] = ()) -> BenchRow:
    """Canonical-named fields (json/csv names; markdown's `size`/`params`/`t/s`/`test`
    already mapped) -> a BenchRow. Raises _RowError when the row has no usable result."""
    dropped = list(dropped)
    raw = dict(f)
    # throughput
    avg = stddev = None
    if "t/s" in f:
        ts = parse_ts(f["t/s"])
        if ts is None:
            raise _RowError(f"t/s value {as_text(f['t/s'])!r} is not 'value ± stddev'")
        avg, stddev = ts
    else:
        avg, stddev = _float(f.get("avg_ts")), _float(f.get("stddev_ts"))
    if avg is None:
        raise _RowError("no avg_ts / t/s value")
    if not math.isfinite(avg):
        raise _RowError(f"non-finite throughput {avg!r}")
    if stddev is not None and not math.isfinite(stddev):
        stddev = None
    # test shape
    label = as_text(f.get("test"))
    shape = parse_test_name(label) if label else None
    if label and shape is None and fmt == "md":
        raise _RowError(f"test name {label!r} is not pp/tg/pp+tg")
    if shape is None:
        n_prompt, n_gen = _int(f.get("n_prompt")), _int(f.get("n_gen"))
        if n_prompt is None or n_gen is None:
            raise _RowError("no test name and no n_prompt/n_gen")
        depth = _int(f.get("n_depth")) or 0
        if n_prompt > 0 and n_gen == 0:
            shape = ("pp", n_prompt, 0, depth)
        elif n_gen > 0 and n_prompt == 0:
            shape = ("tg", 0, n_gen, depth)
        elif n_gen > 0 and n_prompt > 0:
            shape = ("pp+tg", n_prompt, n_gen, depth)
        else:
            raise _RowError("n_prompt and n_gen are both 0")
    kind, n_prompt, n_gen, depth = shape
    if fmt != "md" and not label:
        label = label_for(kind, n_prompt, n_gen, depth)
    # model
    model_type = as_text(f.get("model_type")) or None
    arch, size_label, quant = split_model_type(model_type)
    size_exact = params_exact = False
    size = _int(f.get("model_size"))
    if size is not None:
        size_exact = True
    elif as_text(f.get("model_size")):
        size = parse_size(f["model_size"])
    params = _int(f.get("model_n_params"))
    if params is not None:
        params_exact = True
    elif as_text(f.get("model_n_params")):
        params = parse_params(f["model_n_params"])
    samples_ts = _tuple_of(f.get("samples_ts"), _float)
    samples_ns = _tuple_of(f.get("samples_ns"), _int)
    if samples_ts is not None and not all(math.isfinite(x) for x in samples_ts):
        samples_ts = None
    return BenchRow(
        kind=kind, n_prompt=n_prompt, n_gen=n_gen, n_depth=depth,
        avg_ts=avg, stddev_ts=stddev, samples_ts=samples_ts or None, samples_ns=samples_ns or None,
        avg_ns=_int(f.get("avg_ns")), stddev_ns=_int(f.get("stddev_ns")), test=label,
        model_type=model_type, model_filename=as_text(f.get("model_filename")) or None,
        arch=arch, size_label=size_label, quant=quant,
        size_bytes=size, size_exact=size_exact, params=params, params_exact=params_exact,
        backends=_backends(f, dropped), devices=as_text(f.get("devices")) or None,
        ngl=_int(f.get("n_gpu_layers")), threads=_int(f.get("n_threads")),
        n_batch=_int(f.get("n_batch")), n_ubatch=_int(f.get("n_ubatch")),
        type_k=as_text(f.get("type_k")) or None, type_v=as_text(f.get("type_v")) or None,
        flash_attn=_flash(f.get("flash_attn")),
        build_commit=as_text(f.get("build_commit")) or None, build_number=_int(f.get("build_number")),
        cpu_info=as_text(f.get("cpu_info")) if f.get("cpu_info") is not None else None,
        gpu_info=as_text(f.get("gpu_info")) if f.get("gpu_info") is not None else None,
        test_time=as_text(f.get("test_time")) or None,
        format=fmt, block=block, line_no=line_no, line_end=line_end or line_no, raw=raw,
    )


# --- the parsers ------------------------------------------------------------------------------


class _Acc:
    """What one format's pass over the text collects."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.rows: list[BenchRow] = []
        self.problems: list[Problem] = []
        self.headers = 0

    def problem(self, line_no: int, line: str, reason: str) -> None:
        self.problems.append(Problem(line_no, line.rstrip("\r\n"), reason))

    def add(self, fields: Mapping, line_no: int, line: str, *, block: int, line_end=None,
            dropped=(), note: str | None = None) -> None:
        try:
            row = build_row(fields, fmt=self.fmt, block=block, line_no=line_no,
                            line_end=line_end, dropped=dropped)
        except _RowError as exc:
            self.problem(line_no, line, str(exc) + (f" ({note})" if note else ""))
            return
        if note:
            self.problem(line_no, line, note)
        self.rows.append(row)


def _mismatch_note(nh: int, nv: int, dropped: list[str]) -> str:
    what = f"header has {nh} columns, row has {nv} values"
    if dropped:
        return f"{what}: aligned by value types, dropped ambiguous {', '.join(dropped)}"
    return f"{what}: aligned by value types"


def _md_cells(s: str) -> list[str]:
    body = s.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    return [c.strip() for c in body.split("|")]


_SEP_CELL = re.compile(r"^:?-{1,}:?$")


def _is_sep(cells: list[str]) -> bool:
    return bool(cells) and all(_SEP_CELL.match(c) for c in cells if c != "") and any(cells)


def _parse_md(lines: list[str]) -> _Acc:
    acc = _Acc("md")
    header: list[str] | None = None
    foreign = False
    block = 0
    pending: tuple[int, str] | None = None  # a row wrapped over lines: (first line no, text so far)
    blocks_build: dict[int, tuple[str, int]] = {}
    block_rows: dict[int, int] = {}
    pending_build: tuple[str, int] | None = None

    def canon(n: str) -> str:
        return _MD_NAMES.get(n, n)

    def emit(line_no: int, text: str, line_end: int) -> None:
        cells = _md_cells(text)
        assert header is not None
        if len(cells) == len(header) + 1 and cells[-1] == "":
            cells = cells[:-1]  # '||' at the end of the row
        names = [canon(h) for h in header]
        dropped: list[str] = []
        note = None
        if len(cells) != len(names):
            mapping, dropped = align(names, cells, valid=_valid_md)
            note = _mismatch_note(len(names), len(cells), dropped)
        else:
            mapping = dict(zip(names, cells, strict=True))
        acc.add(mapping, line_no, text, block=block, line_end=line_end, dropped=dropped, note=note)
        block_rows[block] = block_rows.get(block, 0) + 1

    for i, line in enumerate(lines):
        n = i + 1
        s = line.strip()
        if pending is not None:
            p_no, p_text = pending
            if s and not s.startswith("|") and "|" in s and header is not None:
                joined = p_text + s  # a terminal-wrapped row: the rest of it
                if len(_md_cells(joined)) >= len(header) or n - p_no >= 3:
                    pending = None
                    emit(p_no, joined, n)
                else:
                    pending = (p_no, joined)
                continue
            pending = None
            emit(p_no, p_text, p_no)  # a short row after all: aligned, with a problem
        if not s:
            continue
        if s.startswith("|"):
            cells = _md_cells(s)
            if _is_sep(cells):
                continue
            low = [c.lower() for c in cells]
            if "t/s" in low and ("test" in low or "model" in low):
                header = low
                foreign = False
                block += 1
                acc.headers += 1
                if pending_build is not None:
                    blocks_build[block] = pending_build
                    pending_build = None
                continue
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            fits = header is not None and len(cells) == len(header)
            if not fits and nxt.startswith("|") and _is_sep(_md_cells(nxt)):
                acc.problem(n, line, "markdown table without 'test' and 't/s' columns: not llama-bench output")
                header, foreign = None, True
                continue
            if foreign:
                continue
            if header is None:
                acc.problem(n, line, "table row before any llama-bench header")
                continue
            if len(cells) < len(header):
                pending = (n, s)
                continue
            emit(n, s, n)
            continue
        m = _BUILD_RE.match(s)
        if m:
            build = (m.group(1), int(m.group(2)))
            if block and block_rows.get(block) and block not in blocks_build:
                blocks_build[block] = build
            else:
                pending_build = build
    if pending is not None:
        emit(pending[0], pending[1], pending[0])
    if blocks_build:
        acc.rows = [
            replace(r, build_commit=blocks_build[r.block][0], build_number=blocks_build[r.block][1])
            if r.block in blocks_build and r.build_commit is None else r
            for r in acc.rows
        ]
    return acc


def _is_csv_header(s: str) -> list[str] | None:
    if s.startswith(('"', "|", "{", "[")) or "," not in s:
        return None
    names = [c.strip() for c in s.split(",")]
    if "avg_ts" in names or ("build_commit" in names and "n_prompt" in names):
        return names
    return None


def _parse_csv(lines: list[str]) -> _Acc:
    acc = _Acc("csv")
    header: list[str] | None = None
    block = 0
    for i, line in enumerate(lines):
        n = i + 1
        s = line.strip()
        names = _is_csv_header(s)
        if names:
            header, block = names, block + 1
            acc.headers += 1
            continue
        if not s.startswith('"'):
            continue
        if header is None:
            acc.problem(n, line, "CSV row before a llama-bench CSV header")
            continue
        try:
            values = next(csv.reader([s], strict=True))
        except (csv.Error, StopIteration) as exc:
            acc.problem(n, line, f"not a CSV row: {exc}")
            continue
        dropped: list[str] = []
        note = None
        if len(values) != len(header):
            mapping, dropped = align(header, values)
            note = _mismatch_note(len(header), len(values), dropped)
        else:
            mapping = dict(zip(header, values, strict=True))
        acc.add(mapping, n, line, block=block, dropped=dropped, note=note)
    return acc


_INSERT_RE = re.compile(r"^INSERT\s+INTO\s+(\w+)\s*\((.*?)\)\s*VALUES\s*\((.*)\)\s*;?\s*$", re.I)


def _sql_values(text: str) -> list[str] | None:
    t = text.strip()
    if not (t.startswith("'") and t.endswith("'")):
        return None
    # llama-bench quotes every value and escapes nothing: split on the quote-comma-quote seams
    return re.split(r"'\s*,\s*'", t[1:-1])


def _parse_sql(lines: list[str]) -> _Acc:
    acc = _Acc("sql")
    block = 0
    for i, line in enumerate(lines):
        n = i + 1
        s = line.strip()
        if re.match(r"^CREATE\s+TABLE", s, re.I):
            block += 1
            acc.headers += 1
            continue
        if not re.match(r"^INSERT\s+INTO\b", s, re.I):
            continue
        m = _INSERT_RE.match(s)
        values = _sql_values(m.group(3)) if m else None
        if m is None or values is None:
            acc.problem(n, line, "INSERT statement not in llama-bench's form")
            continue
        cols = [c.strip() for c in m.group(2).split(",")]
        dropped: list[str] = []
        note = None
        if len(values) != len(cols):
            mapping, dropped = align(cols, values)
            note = _mismatch_note(len(cols), len(values), dropped)
        else:
            mapping = dict(zip(cols, values, strict=True))
        acc.add(mapping, n, line, block=max(block, 1), dropped=dropped, note=note)
    return acc


def _brace_delta(s: str, state: list) -> int:
    """Net '{' minus '}' outside JSON strings; state = [in_string, escaped] carried across lines."""
    depth = 0
    in_str, esc = state
    for ch in s:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
    state[0], state[1] = in_str, esc
    return depth


def _parse_json(lines: list[str]) -> _Acc:
    """json (an array printed over many lines) and jsonl (one object a line) alike."""
    acc = _Acc("json")
    multi = False
    arrays = 0
    start: int | None = None
    buf: list[str] = []
    depth = 0
    state = [False, False]

    def finish(end: int) -> None:
        nonlocal multi
        text = "\n".join(buf).strip().rstrip(",").strip()
        if end > start:
            multi = True
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            try:  # '[{...}]' on one line, or the last object followed by ']'
                obj = json.loads(text.rstrip().removesuffix("]").rstrip().rstrip(","))
            except (ValueError, RecursionError):
                acc.problem(start, buf[0], f"not a JSON object: {exc}")
                return
        if not isinstance(obj, dict):
            acc.problem(start, buf[0], "JSON value is not an object")
            return
        acc.add(obj, start, buf[0], block=max(arrays, 1) if arrays else 0, line_end=end)

    for i, line in enumerate(lines):
        n = i + 1
        s = line.strip()
        if start is None:
            if s == "[" or s.startswith("[") and s[1:].strip().startswith("{"):
                arrays += 1
                acc.headers += 1
                s = s[1:].strip()
                if not s:
                    continue
            if not s.startswith("{"):
                continue
            if s.endswith(("}", "},")):  # the jsonl case: one whole object on the line
                try:
                    obj = json.loads(s.rstrip(","))
                except (ValueError, RecursionError):
                    obj = None
                if isinstance(obj, dict):
                    acc.add(obj, n, s, block=arrays if arrays else 0, line_end=n)
                    continue
            start, buf, depth, state = n, [s], 0, [False, False]
            depth = _brace_delta(s, state)
        else:
            state = [False, False]  # a JSON string never spans lines
            if s.startswith("{"):
                # llama-bench never nests objects: the open one was broken
                acc.problem(start, buf[0], "JSON object not closed before the next one")
                start, buf, state = n, [s], [False, False]
                depth = _brace_delta(s, state)
            else:
                buf.append(s)
                depth += _brace_delta(s, state)
        if start is not None and depth <= 0:
            finish(n)
            start = None
        elif start is not None and n - start > 500:
            acc.problem(start, buf[0], "JSON object longer than 500 lines")
            start = None
    if start is not None:
        acc.problem(start, buf[0], "JSON object not closed at the end of the text")
    if not multi and arrays == 0:
        acc.fmt = "jsonl"
        acc.rows = [replace(r, format="jsonl") for r in acc.rows]
    elif acc.rows:
        acc.headers = max(acc.headers, 1)
    return acc


_SIGNATURES = {
    "sql": re.compile(r"^\s*(INSERT\s+INTO\s+\w+\s*\(|CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS)", re.I),
    "json": re.compile(r'^\s*(\[\s*$|\[?\s*\{|"build_commit"\s*:|"avg_ts"\s*:)'),
    "csv": re.compile(r"^\s*\w+(,\w+)*,avg_ts\b|^\s*build_commit,"),
    "md": re.compile(r"^\s*\|.*\|"),
}
_PARSERS = {"sql": _parse_sql, "json": _parse_json, "csv": _parse_csv, "md": _parse_md}


def parse_llama_bench(text: str, *, source: str = "<text>") -> ParseResult:
    """Parse llama-bench output of any format; the format is detected from the content.

    Every format whose signature appears is tried; the one that yields the most rows wins
    (ties: sql, json/jsonl, csv, md). Problems come from the winning format's pass, plus
    every error message found in the capture (`error_lines`, also listed in `problems`).
    """
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", errors="replace")
    lines = text.splitlines()
    candidates = [f for f, rx in _SIGNATURES.items() if any(rx.match(ln) for ln in lines)]
    best: _Acc | None = None
    for fmt in candidates:
        try:
            acc = _PARSERS[fmt](lines)
        except Exception as exc:  # noqa: BLE001 - tolerant by contract; report, never raise
            acc = _Acc(fmt)
            acc.problem(0, "", f"{fmt} parser failed: {type(exc).__name__}: {exc}")
        if best is None or len(acc.rows) > len(best.rows) or (
            not best.rows and not acc.rows and acc.headers > best.headers
        ):
            best = acc
    errors = [
        Problem(i + 1, ln.rstrip(), "error message in the capture")
        for i, ln in enumerate(lines)
        if not ln.lstrip().startswith(("#", '"', "{", "|", "INSERT")) and _ERROR_RE.search(ln)
    ]
    if best is None:
        return ParseResult(rows=[], problems=errors, format="unknown", source=source, error_lines=errors)
    problems = sorted(best.problems + errors, key=lambda p: p.line_no)
    return ParseResult(rows=best.rows, problems=problems, format=best.fmt, source=source,
                       headers=best.headers, error_lines=errors)
