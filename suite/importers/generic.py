"""Other engines' output as edgebench runs: `edgebench import [TOOL] FILE...` (issue 16).

The tool is recognised from the text (suite.runtimes.outputs: LiteRT-LM, ExecuTorch, Genie,
llama.cpp's timing blocks, MLC, whisper.cpp; llama-bench's own formats go to
suite.importers.llama_bench as `import llama-bench` would), or named. Each parsed `ToolRun`
becomes one run (`origin: imported`) through `suite.store.write_run`.

Validity (DESIGN section 3): a run whose text says it failed, or with zero turns, zero tokens,
zero or negative durations or rates, or a rate that is not finite, is stored with outcome `failed`
and the reason, its numbers kept in the `import` block only: never a metric, never a row in a
report (a LiteRT-LM NPU run printed "No prefill turns recorded" and "succeeded").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from suite.catalog.socs import soc_named
from suite.core.errors import EdgebenchError
from suite.core.record import Failure, Part, RunHead, build_record, unknown_conditions, utc_now
from suite.core.schema import METRICS, Origin, Outcome
from suite.core.stats import metric
from suite.importers.llama_bench import ImportReport, already_imported, import_llama_bench
from suite.runtimes.outputs import TOOL_PARSERS, ToolRun, invalid_reason
from suite.store import write_run

SCENARIO_NAME = "imported"
NO_SENSORS = "imported: no sensors"
#: what an imported run's metrics that are not in the text are
NOT_REPORTED = "imported from {tool}: not in its output"
#: the artefact each engine runs (a user's .litertlm or .pte is not edgebench's GGUF: never ranked as one model)
ARTEFACT_FORMAT = {"litert-lm": "litertlm", "executorch": "pte", "genie": "qnn-context-binary", "mlc": "mlc",
                   "llama.cpp": "gguf", "whisper.cpp": "ggml", "llama-bench": "gguf"}
LLAMA_BENCH = "llama-bench"


def tools() -> list[str]:
    """Every tool `import` recognises (llama-bench first: its formats are the oldest here)."""
    return [LLAMA_BENCH, *TOOL_PARSERS.names()]


def _is_llama_bench(text: str) -> bool:
    from suite.runtimes.llama_bench_output import parse_llama_bench  # lazy: pandas-free but large

    res = parse_llama_bench(text, source="detect")
    return bool(res.rows)


def detect(text: str) -> list[str]:
    """The tools whose output `text` carries (several when the text is ambiguous, none when unknown)."""
    found = [name for name in TOOL_PARSERS.names() if TOOL_PARSERS.get(name).detect(text)]
    if _is_llama_bench(text):
        # a llama-bench table also matches llama.cpp's text parser at most by accident: the table wins
        found = [LLAMA_BENCH, *(n for n in found if n != "llama.cpp")]
    return found


@dataclass
class FileResult:
    path: Path
    tool: str | None
    runs: list[Path] = field(default_factory=list)
    failed_runs: int = 0
    status: str = "imported"  # imported | already_imported | no_results | unknown_tool | ambiguous | unreadable
    message: str = ""
    forms: list[str] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "unknown"


def _short_hash(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _device(run: ToolRun, device: str | None, soc, source: str) -> dict:
    named = run.identity.get("device") or device
    described = named or f"unknown device ({run.tool} output from {source})"
    why = f"imported from {run.tool}: not in its output"
    return {
        "device_id": _short_hash(f"{run.tool}-device:" + described),
        "serial": None, "manufacturer": None, "model": described,
        "soc_vendor": soc.vendor if soc else None,
        "soc_model": soc.part if soc else None,
        "soc_name": soc.marketing_name if soc else None,
        "tier": soc.tier if soc else "unknown",
        **({"soc_placed_by": f"--soc (the user's word: {run.tool} does not say its SoC)"} if soc else {}),
        "ram_bytes": None,
        "os": {"name": None, "release": None, "android_release": None, "sdk": None, "fingerprint": None,
               "kernel": None},
        "abi": None,
        "cpu": {"model": run.identity.get("cpu"), "physical_cores": None, "logical_cores": None, "clusters": []},
        "gpu": {"model": run.identity.get("gpu")},
        "transport": "imported",
        "simulated": False,
        "unavailable": {**({} if named else {"model": f"{run.tool} output does not name the device (give --device)"}),
                        "ram_bytes": why, "os": why, "abi": why, "cpu.clusters": why},
    }


def _model(run: ToolRun) -> dict:
    name = run.identity.get("model")
    return {
        "id": _slug(Path(name).name) if name else "unknown",
        "name": name,
        "architecture": None, "params": None, "quant": run.identity.get("quant"),
        "format": ARTEFACT_FORMAT.get(run.tool),
        "sha256": None, "bytes": None, "synthetic_weights": False, "seed": None,
        "weight_bytes_read_per_token": None, "kv_bytes_per_position": None,
        "path": name,
        "identity": _short_hash(f"{run.tool}|{name}"),
        # the engine's own artefact, not edgebench's reference model: never ranked as one of its rungs
        "artefact": f"{run.tool}'s own ({ARTEFACT_FORMAT.get(run.tool) or 'unknown format'})",
    }


def _record(run: ToolRun, *, path: Path, file_sha: str, index: int, device: str | None, soc,
            imported_at: str) -> dict:
    reason = invalid_reason(run)
    metrics: dict = {}
    unavailable: dict = {}
    if reason is None:
        for name, value in run.values.items():
            if name in METRICS and value > 0:
                metrics[name] = metric(name, value) | {"n": 1}
            elif name in METRICS:
                unavailable[name] = f"{run.tool} printed {value:g}: not measured in this run"
    for name in METRICS:
        if name not in metrics and name not in unavailable:
            unavailable[name] = (f"run failed: {reason}" if reason else NOT_REPORTED.format(tool=run.tool))
    head = RunHead(
        origin=Origin.IMPORTED,
        started_at=None,
        device=_device(run, device, soc, path.name),
        model=_model(run),
        runtime={"name": run.tool, "version": run.identity.get("version"), "backend": run.identity.get("backend"),
                 "threads": _int(run.identity.get("threads")), "affinity": None},
        scenario={"name": SCENARIO_NAME, "params": {
            "tool": run.tool, "form": run.form,
            "prompt_tokens": run.counts.get("prompt_tokens"), "gen_tokens": run.counts.get("gen_tokens")}},
        conditions=unknown_conditions(),
    )
    part = Part(
        sensors={"rate_hz": None, "achieved_rate_hz": None, "samples": 0, "sampler_cpu_s": None, "available": [],
                 "unavailable": {"all": NO_SENSORS}},
        metrics=metrics, unavailable=unavailable,
        blocks={"import": {
            "tool": run.tool, "form": run.form, "file": path.name, "path": str(path), "file_sha256": file_sha,
            "run_in_file": index, "imported_at": imported_at,
            "values": dict(run.values), "counts": dict(run.counts), "identity": dict(run.identity),
            "lines": dict(run.source_lines), "notes": list(run.notes),
            "value_is": "the tool's own figure for one run (n = 1): no interval",
        }},
    )
    failures = [Failure(Outcome.FAILED, "invalid", reason)] if reason else []
    return build_record(head, part, failures=failures)


def _int(v) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def import_files(paths: Iterable[Path | str], results_dir: Path | str, *, tool: str | None = None,
                 device: str | None = None, soc: str | None = None) -> ImportReport:
    """Import each file as the named `tool`'s output, or the tool its text shows."""
    if tool is not None and tool != LLAMA_BENCH:
        tool = TOOL_PARSERS.check(tool)
    soc_row = soc_named(soc) if soc else None  # before any file is read: a bad name loses nothing
    results_dir = Path(results_dir)
    out = ImportReport()
    for p in map(Path, paths):
        try:
            data = p.read_bytes()
        except OSError as exc:
            out.files.append(FileResult(p, tool, status="unreadable", message=f"cannot read {p}: {exc.strerror or exc}"))
            continue
        text = data.decode("utf-8", errors="replace")
        name = tool
        if name is None:
            found = detect(text)
            if not found:
                out.files.append(FileResult(p, None, status="unknown_tool", message=(
                    f"no known tool's output recognised (known: {', '.join(tools())}); "
                    "name it: edgebench import TOOL FILE")))
                continue
            if len(found) > 1:
                out.files.append(FileResult(p, None, status="ambiguous", message=(
                    f"looks like the output of {' and '.join(found)}: name the tool: "
                    f"edgebench import {found[0]} {p}")))
                continue
            name = found[0]
        if name == LLAMA_BENCH:
            rep = import_llama_bench([p], results_dir, device=device, soc=soc)
            for f in rep.files:
                out.files.append(FileResult(p, LLAMA_BENCH, runs=list(f.runs), status=f.status, message=f.message,
                                            forms=[f.format]))
            continue
        fr = FileResult(p, name)
        out.files.append(fr)
        runs = TOOL_PARSERS.get(name).parse(text)
        fr.forms = sorted({r.form for r in runs})
        if not runs:
            fr.status, fr.message = "no_results", f"no {name} results in the file"
            continue
        file_sha = hashlib.sha256(data).hexdigest()
        done = already_imported(results_dir, file_sha)
        if done:
            fr.status, fr.runs = "already_imported", done
            fr.message = f"already imported ({len(done)} run(s) with this file's sha256); nothing written"
            continue
        imported_at = utc_now()
        for i, run in enumerate(runs):
            rec = _record(run, path=p, file_sha=file_sha, index=i, device=device, soc=soc_row, imported_at=imported_at)
            fr.failed_runs += rec["outcome"] != Outcome.COMPLETED
            fr.runs.append(write_run(results_dir, rec))
        if fr.failed_runs == len(fr.runs):
            fr.message = "every run in the file failed the validity rules (see each run's errors)"
    return out


def cli_import(paths: list[Path], results_dir: Path, *, tool: str | None = None, device: str | None = None,
               soc: str | None = None) -> int:
    """`edgebench import [TOOL] FILE...`: import, print a summary, return the exit code."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    try:
        result = import_files(paths, results_dir, tool=tool, device=device, soc=soc)
    except EdgebenchError:
        raise
    table = Table(title="import")
    for col in ("file", "tool", "form", "runs", "failed", "status"):
        table.add_column(col, justify="right" if col in ("runs", "failed") else "left")
    for f in result.files:
        style = "red" if f in result.failed else "green"
        table.add_row(escape(f.path.name), escape(f.tool or "?"), escape(", ".join(f.forms)), str(len(f.runs)),
                      str(f.failed_runs), f"[{style}]{escape(f.status)}[/{style}]")
    console.print(table)
    for f in result.files:
        if f.message:
            colour = "red" if f in result.failed else "yellow"
            console.print(f"[{colour}]{escape(str(f.path))}[/{colour}]: {escape(f.message)}", soft_wrap=True)
    console.print(f"{len(result.runs)} run(s) written to {escape(str(results_dir))}", soft_wrap=True)
    return result.exit_code


__all__ = ["FileResult", "cli_import", "detect", "import_files", "tools"]
