"""llama-bench output as edgebench runs: `edgebench import llama-bench FILE...`.

`import_llama_bench(paths, results_dir)` turns the rows of each file (parsed by
suite.runtimes.llama_bench_output.parse_llama_bench, the same parser a llama-bench run on a
device uses) into run folders (`origin: imported`) through `suite.store.write_run`.
docs/llama-bench.md has the field mapping and the grouping rule.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suite.catalog.socs import soc_named
from suite.core.record import Part, RunHead, build_record, unknown_conditions, utc_now
from suite.core.schema import METRICS, UNSTABLE_CV, Origin
from suite.core.stats import metric, summarize
from suite.runtimes.llama_bench_output import FLAG_NAMES, BenchRow, Problem, as_text, parse_llama_bench
from suite.store import write_run

# --- import into edgebench runs -----------------------------------------------------------------

RUNTIME_NAME = "llama.cpp"
SCENARIO_NAME = "llama-bench"
NO_SENSORS = "imported from llama-bench: no sensors"
NOT_REPORTED = "imported from llama-bench: not reported by llama-bench"

#: raw fields that describe the result, not the configuration (never part of a group key)
_RESULT_FIELDS = {"n_prompt", "n_gen", "n_depth", "test", "t/s", "test_time", "avg_ns", "stddev_ns",
                  "avg_ts", "stddev_ts", "samples_ns", "samples_ts", "n_drafts", "n_accepted",
                  "n_draft_total", "accept_rate", "mean_accept", "target_ppl_of_output"}
#: raw fields that are recorded elsewhere in the run (device, model, runtime)
_IDENTITY_FIELDS = {"build_commit", "build_number", "cpu_info", "gpu_info", "model_filename",
                    "model_type", "model_size", "model_n_params", "backends"} | FLAG_NAMES | {"rpc"}
_SENSOR_METRICS = ("peak_rss_bytes", "peak_pss_bytes", "energy_j/prefill", "energy_j/decode",
                   "j_per_token/prefill", "j_per_token/decode", "tokens_per_j/decode",
                   "power_w/avg", "power_w/peak", "power_w/idle", "temp_c/max", "thermal_status/max")


@dataclass
class FileReport:
    path: Path
    format: str
    rows: int
    problems: list[Problem]
    error_lines: list[Problem]
    runs: list[Path] = field(default_factory=list)
    unmapped_rows: int = 0  # pp+tg rows: no edgebench metric for a combined throughput
    status: str = "imported"  # imported | already_imported | no_rows | unreadable
    message: str = ""


@dataclass
class ImportReport:
    """The files of one import and how each went (FileReport here; suite.importers.generic's FileResult
    for the other tools: each has `runs` and `status`)."""

    files: list = field(default_factory=list)

    @property
    def runs(self) -> list[Path]:
        return [r for f in self.files for r in f.runs]

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status not in ("imported", "already_imported")]

    @property
    def ok(self) -> bool:
        return bool(self.files) and not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def _short_hash(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def _config(row: BenchRow) -> dict:
    return {k: v for k, v in row.raw.items() if k not in _RESULT_FIELDS and k not in _IDENTITY_FIELDS}


def _group_key(row: BenchRow, device: str) -> tuple:
    cfg = tuple(sorted((k, json.dumps(v, sort_keys=True, default=str)) for k, v in _config(row).items()))
    return (row.block, device, row.model_type, row.model_filename, row.size_bytes, row.params,
            row.backends, row.build_commit, row.build_number, row.n_depth, cfg)


def _split_runs(rows: list[BenchRow]) -> tuple[list[list[BenchRow]], list[BenchRow]]:
    """One config group -> runs (lists of pp/tg rows) and its pp+tg rows.

    At most one pp shape and one tg shape, each once: one run with prefill and decode.
    Anything more (a sweep of prompt sizes, a repeated test): one run per pp or tg row.
    """
    mixed = [r for r in rows if r.kind == "pp+tg"]
    pp = [r for r in rows if r.kind == "pp"]
    tg = [r for r in rows if r.kind == "tg"]
    if len(pp) <= 1 and len(tg) <= 1:
        runs = [pp + tg] if pp or tg else []
    else:
        runs = [[r] for r in rows if r.kind != "pp+tg"]
    return runs, mixed


def _metric_entry(name: str, row: BenchRow) -> dict:
    entry = metric(name, row.avg_ts)  # unit, direction, value = llama-bench's avg_ts (a mean)
    entry["mean"] = row.avg_ts
    if row.stddev_ts is not None:
        entry["stddev"] = row.stddev_ts
        if row.avg_ts:
            entry["cv"] = row.stddev_ts / abs(row.avg_ts)
            entry["unstable"] = bool(entry["cv"] > UNSTABLE_CV)
    if row.samples_ts:
        summ = summarize(row.samples_ts, positive=True)
        entry.update(median=summ["median"], ci95=summ["ci95"], n=summ["n"], samples=summ["samples"],
                     **{k: summ[k] for k in ("ci_method", "small_n") if k in summ})
    elif row.repetitions:
        entry["n"] = row.repetitions
    return entry


def _device_record(desc: str | None, rows: list[BenchRow], source_name: str, soc=None) -> dict:
    """The run's device block; `soc` (a catalog row the user named with --soc) places it in its tier."""
    known = desc is not None
    described = desc or f"unknown device (llama-bench {rows[0].format} from {source_name})"
    first = rows[0]
    why = "imported from llama-bench: not in its output"
    return {
        "device_id": _short_hash("llama-bench-device:" + described),
        "serial": None,
        "manufacturer": None,
        "model": described,
        "soc_vendor": soc.vendor if soc else None,
        "soc_model": soc.part if soc else None,
        "soc_name": soc.marketing_name if soc else None,
        "tier": soc.tier if soc else "unknown",
        **({"soc_placed_by": "--soc (the user's word: llama-bench does not say its SoC)"} if soc else {}),
        "ram_bytes": None,
        "os": {"name": None, "release": None, "android_release": None, "sdk": None,
               "fingerprint": None, "kernel": None},
        "abi": None,
        "cpu": {"model": first.cpu_info or None, "physical_cores": None, "logical_cores": None,
                "clusters": []},
        "gpu": {"model": first.gpu_info or None},
        "transport": "imported",
        "simulated": False,
        "unavailable": {
            **({} if known else {"model": "llama-bench markdown carries no cpu_info/gpu_info"}),
            "ram_bytes": why, "os": why, "abi": why, "cpu.clusters": why,
        },
    }


def _model_record(row: BenchRow) -> dict:
    ident = row.model_filename or row.model_type or "unknown"
    stem = Path(row.model_filename).name if row.model_filename else None
    if stem and stem.lower().endswith(".gguf"):
        stem = stem[:-5]
    return {
        "id": stem or (re.sub(r"[^a-z0-9.]+", "-", (row.model_type or "unknown").lower()).strip("-")),
        "name": row.model_type,
        "architecture": row.arch,
        "params": row.params,
        "quant": row.quant,
        "format": "gguf",
        "sha256": None,
        "bytes": row.size_bytes,
        "synthetic_weights": False,
        "seed": None,
        "weight_bytes_read_per_token": None,
        "kv_bytes_per_position": None,
        "path": row.model_filename,
        "identity": _short_hash(f"{ident}|{row.model_type}|{row.size_bytes}|{row.params}"),
        "size_label": row.size_label,
        "bytes_exact": row.size_exact,
        "params_exact": row.params_exact,
    }


def _run_record(run_rows: list[BenchRow], mixed: list[BenchRow], *, desc: str | None, path: Path, soc=None,
                file_sha: str, fmt: str, imported_at: str, problems: list[Problem] = ()) -> dict:
    first = run_rows[0]
    pp = next((r for r in run_rows if r.kind == "pp"), None)
    tg = next((r for r in run_rows if r.kind == "tg"), None)
    metrics: dict = {}
    unavailable: dict = {}
    if pp:
        metrics["prefill_tps"] = _metric_entry("prefill_tps", pp)
    else:
        unavailable["prefill_tps"] = "imported from llama-bench: no pp test in this group"
    if tg:
        metrics["decode_tps"] = _metric_entry("decode_tps", tg)
    else:
        unavailable["decode_tps"] = "imported from llama-bench: no tg test in this group"
    for name in METRICS:
        if name in metrics or name in unavailable:
            continue
        unavailable[name] = NO_SENSORS if name in _SENSOR_METRICS else NOT_REPORTED
    times = sorted(r.test_time for r in run_rows + mixed if r.test_time)
    reps = {r.repetitions for r in run_rows if r.repetitions}
    version = (f"b{first.build_number}" if first.build_number is not None else first.build_commit)
    cfg = _config(first)
    params = {
        "prompt_tokens": pp.n_prompt if pp else 0,
        "gen_tokens": tg.n_gen if tg else 0,
        "n_depth": first.n_depth,
        "reps": reps.pop() if len(reps) == 1 else None,
        "warmup": None,
        "threads": first.threads,
        "n_gpu_layers": first.ngl,
        "n_batch": first.n_batch,
        "n_ubatch": first.n_ubatch,
        "type_k": first.type_k,
        "type_v": first.type_v,
        "flash_attn": first.flash_attn,
        "tests": [r.test for r in run_rows],
        "config": cfg,
    }
    all_rows = run_rows + mixed
    head = RunHead(
        origin=Origin.IMPORTED,
        started_at=times[0] if times else None,
        device=_device_record(desc, run_rows, path.name, soc),
        model=_model_record(first),
        runtime={"name": RUNTIME_NAME, "version": version, "backend": ",".join(first.backends) or None,
                 "threads": first.threads,
                 "affinity": cfg.get("cpu_mask") if as_text(cfg.get("cpu_mask")) not in ("", "0x0") else None,
                 "build_commit": first.build_commit, "build_number": first.build_number,
                 "backends": list(first.backends)},
        scenario={"name": SCENARIO_NAME, "params": params},
        conditions=unknown_conditions(),
    )
    found = Part(
        sensors={"rate_hz": None, "achieved_rate_hz": None, "samples": 0, "sampler_cpu_s": None,
                 "available": [], "unavailable": {"all": NO_SENSORS}},
        metrics=metrics,
        unavailable=unavailable,
        blocks={"import": {
            "tool": "llama-bench",
            "file": path.name,
            "path": str(path),
            "file_sha256": file_sha,
            "format": fmt,
            "imported_at": imported_at,
            "lines": sorted({r.line_no for r in all_rows}),
            "value_is": "llama-bench avg_ts: mean over repetitions (stddev: llama-bench's stddev_ts)",
            "problems": [{"line": pr.line_no, "reason": pr.reason} for pr in problems
                         if any(r.line_no <= pr.line_no <= r.line_end for r in all_rows)],
            "rows": [
                {"line": r.line_no, "line_end": r.line_end, "test": r.test, "kind": r.kind,
                 "n_prompt": r.n_prompt, "n_gen": r.n_gen, "n_depth": r.n_depth,
                 "avg_ts": r.avg_ts, "stddev_ts": r.stddev_ts, "test_time": r.test_time,
                 "metric": {"pp": "prefill_tps", "tg": "decode_tps"}.get(r.kind) if r in run_rows else None}
                for r in all_rows
            ],
        }},
    )
    return build_record(head, found, ended_at=times[-1] if times else None)


def already_imported(results_dir: Path, file_sha: str) -> list[Path]:
    """Run folders already holding an import of a file with this sha256 (re-import is a no-op)."""
    if not results_dir.is_dir():
        return []
    needle = f'"file_sha256": "{file_sha}"'
    found = []
    for run_json in sorted(results_dir.glob("*/run.json")):
        if run_json.parent.name.startswith(".tmp-"):
            continue
        try:
            if needle in run_json.read_text(encoding="utf-8", errors="replace"):
                found.append(run_json.parent)
        except OSError:
            continue
    return found


def import_llama_bench(paths: Iterable[Path | str], results_dir: Path | str, *,
                       device: str | None = None, soc: str | None = None) -> ImportReport:
    """Import llama-bench captures as edgebench runs; one FileReport per path.

    `device` describes the device when the capture does not (markdown has no cpu_info); `soc` names
    its SoC (any identifier the catalog matches; a shared one is refused with its candidates), so
    the runs enter that SoC's tier.
    Grouping: see docs/llama-bench.md ("one run per ...").
    """
    soc_row = soc_named(soc) if soc else None  # before any file is read: a bad name loses nothing
    report = ImportReport()
    results_dir = Path(results_dir)
    for p in map(Path, paths):
        try:
            data = p.read_bytes()
        except OSError as exc:
            report.files.append(FileReport(p, "unknown", 0, [], [], status="unreadable",
                                           message=f"cannot read {p}: {exc.strerror or exc}"))
            continue
        text = data.decode("utf-8", errors="replace")
        res = parse_llama_bench(text, source=str(p))
        fr = FileReport(p, res.format, len(res.rows), res.problems, res.error_lines)
        report.files.append(fr)
        if not res.rows:
            fr.status = "no_rows"
            if res.error_lines:
                e = res.error_lines[0]
                fr.message = f"no result rows; error at line {e.line_no}: {e.line.strip()}"
            elif res.headers:
                fr.message = f"no result rows: {res.format} header found but no results after it"
            else:
                fr.message = "no result rows: no llama-bench output recognised"
            continue
        file_sha = hashlib.sha256(data).hexdigest()
        done = already_imported(results_dir, file_sha)
        if done:
            fr.status, fr.runs = "already_imported", done
            fr.message = f"already imported ({len(done)} run(s) with this file's sha256); nothing written"
            continue
        imported_at = utc_now()
        groups: dict[tuple, list[BenchRow]] = {}
        for r in res.rows:
            desc = r.device_description or device
            groups.setdefault(_group_key(r, desc or ""), []).append(r)
        for rows in groups.values():
            desc = rows[0].device_description or device
            runs, mixed = _split_runs(rows)
            if not runs:
                fr.unmapped_rows += len(mixed)
                continue
            fr.unmapped_rows += len(mixed)
            for k, run_rows in enumerate(runs):
                rec = _run_record(run_rows, mixed if k == 0 else [], desc=desc, path=p,
                                  file_sha=file_sha, fmt=res.format, imported_at=imported_at,
                                  problems=res.problems, soc=soc_row)
                fr.runs.append(write_run(results_dir, rec))
        if not fr.runs:
            fr.status = "no_rows"
            fr.message = "only pp+tg rows: edgebench has no metric for a combined throughput"
    return report


def cli_import(paths: list[Path], results_dir: Path, *, device: str | None = None, soc: str | None = None) -> int:
    """`edgebench import llama-bench FILE...`: import, print a summary, return the exit code."""
    console = Console()
    report = import_llama_bench(paths, results_dir, device=device, soc=soc)
    table = Table(title="llama-bench import")
    for col in ("file", "format", "rows", "runs", "problems", "status"):
        table.add_column(col, justify="right" if col in ("rows", "runs", "problems") else "left")
    for f in report.files:
        style = "red" if f in report.failed else "green"
        table.add_row(escape(f.path.name), f.format, str(f.rows), str(len(f.runs)), str(len(f.problems)),
                      f"[{style}]{escape(f.status)}[/{style}]")
    console.print(table)
    for f in report.files:
        if not (f.message or f.problems or f.unmapped_rows):
            continue
        colour = "red" if f in report.failed else "yellow"
        console.print(f"[{colour}]{escape(str(f.path))}[/{colour}]" + (f": {escape(f.message)}" if f.message else ""),
                      soft_wrap=True)
        for pr in f.problems[:5]:
            console.print(f"  line {pr.line_no}: {escape(pr.reason)}: {escape(pr.line.strip()[:100])}",
                          soft_wrap=True)
        if len(f.problems) > 5:
            console.print(f"  ... and {len(f.problems) - 5} more problem lines")
        if f.unmapped_rows:
            console.print(f"  {f.unmapped_rows} pp+tg row(s) kept in the record's import.rows only "
                          "(edgebench has no metric for a combined pp+tg throughput)", soft_wrap=True)
    console.print(f"{len(report.runs)} run(s) written to {escape(str(results_dir))}", soft_wrap=True)
    return report.exit_code
