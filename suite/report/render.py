"""Render stored results into a static, self-contained, deterministic site.

Pages: `index.html` (tiers, fit matrix, rankings, lists), `devices/<id>.html`,
`models/<id>.html`, `runs/<run_id>.html`; links are relative, so the site works from
file:// and any static host. Every page: CSS inline, charts as inline SVG, no script, and
a Content-Security-Policy that forbids any fetch.

Deterministic: no render time, no absolute paths, sorted inputs, salted SVG ids, so the
same results give byte-identical files. Incremental: run, device and model pages are
cached in `out_dir/.cache/` under a key made of the content hash of their runs (run.json
+ samples.parquet bytes) and of the renderer's own code; a page is written only when its
bytes change, and pages of runs that are gone are deleted. `.cache/render-log.json` says
what the last render computed, reused, wrote and deleted. Pages the cache lacks are made by
a process pool (`jobs`); each is a pure function of its runs, so the bytes do not depend on
which process made them.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

import suite
from suite.analysis.paging import PAGING_METRICS
from suite.core.errors import EdgebenchError
from suite.core.schema import METRICS, Outcome
from suite.report import charts, tables
from suite.report.tables import (
    DECODE_TPS,
    LAT_P50,
    LAT_P90,
    LAT_P99,
    LOAD_S,
    PEAK_PSS,
    PEAK_RSS,
    PREFILL_TPS,
    ROOFLINE_DECODE,
    ROOFLINE_PREFILL,
    TOKENS_PER_J,
    TTFT_S,
    known_metrics,
)
from suite.store import RUN_JSON, SAMPLES_PARQUET, Results, load_results, run_samples

DEFAULT_TITLE = "edgebench report"
CACHE_DIR = ".cache"
RENDER_LOG = "render-log.json"
PAGE_DIRS = ("runs", "devices", "models")

THROUGHPUT = (PREFILL_TPS, DECODE_TPS)
LATENCY = (TTFT_S, LAT_P50, LAT_P90, LAT_P99)
ENERGY = known_metrics(
    "energy_j/prefill", "energy_j/decode", "j_per_token/prefill", "j_per_token/decode",
    "tokens_per_j/decode", "power_w/avg", "power_w/peak", "power_w/idle",
)
THERMAL = known_metrics("temp_c/max", "thermal_status/max", "stability_pct", "time_to_throttle_s")
#: Every metric some section shows; the rest go to "Other metrics".
_SHOWN = {
    *THROUGHPUT, *LATENCY, LOAD_S, PEAK_RSS, PEAK_PSS, *ENERGY, *THERMAL, ROOFLINE_DECODE, ROOFLINE_PREFILL,
    *PAGING_METRICS,
}
RANKED = (DECODE_TPS, PREFILL_TPS, TOKENS_PER_J)

PROVENANCE_TEXT = {
    "imported": "were imported from other tools' output ({tools}): numbers as those tools reported "
                "them, without edgebench's sensors or gating",
    "fixture": "are FIXTURE data written for tests (shapes and magnitudes from published numbers), "
               "not measurements",
    "synthetic-store": "are SYNTHETIC benchmark data generated to time the renderer, not measurements",
}


@cache
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("suite.report", "templates"),
        autoescape=True,  # every device string (model, SoC, hostname, getprop) is untrusted
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def renderer_fingerprint() -> str:
    """Hash of the renderer's code and templates: a change to either invalidates the cache."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256(suite.__version__.encode())
    for p in sorted([*here.glob("*.py"), *(here / "templates").iterdir()]):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def run_content_hash(record: dict) -> str:
    """sha256 of a run's stored bytes (run.json, then samples.parquet when present)."""
    h = hashlib.sha256()
    folder = Path(record["_path"])
    for name in (RUN_JSON, SAMPLES_PARQUET):
        p = folder / name
        h.update(name.encode() + b"\0")
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


# --- contexts --------------------------------------------------------------------------


def _present(records: list[dict], names: Iterable[str]) -> tuple[str, ...]:
    """The names that at least one run measured or declared unavailable."""
    return tuple(n for n in names if any(tables.has_any(r, (n,)) for r in records))


def _other_metrics(records: list[dict]) -> tuple[str, ...]:
    """Metrics no section covers (new schema names, imported extras): shown, never dropped."""
    names = {n for r in records for n in (*(r.get("metrics") or {}), *(r.get("unavailable") or {}))}
    return tuple(sorted(names - _SHOWN))


def _better(name: str) -> str:
    return f"{'higher' if METRICS[name].higher_is_better else 'lower'} is better" if name in METRICS else ""


def _metric_section(records: list[dict], names: tuple[str, ...]) -> dict:
    rows = tables.metric_rows(records, names)
    by_id = {r["run_id"]: r for r in records}
    for row in rows:
        row["conditions"] = tables.conditions_brief(by_id[row["run_id"]])
    return {"names": names, "better": {n: _better(n) for n in names}, "rows": rows}


def build_context(records: list[dict]) -> dict:
    """The per-run sections of a device or model page, as plain text rows and SVG charts."""
    return {
        "runs": tables.run_rows(records),
        "failed": tables.failed_rows(records),
        "conditions": tables.conditions_table(records),
        "throughput": _metric_section(records, THROUGHPUT),
        "throughput_chart": charts.throughput_chart(records),
        "latency": _metric_section(records, LATENCY + _present(records, (LOAD_S,))),
        "latency_chart": charts.latency_chart(records),
        "memory": _metric_section(records, (PEAK_RSS, *_present(records, (PEAK_PSS, *PAGING_METRICS)))),
        "memory_chart": charts.memory_chart(records, ram_lines=True),
        "beyond_ram_chart": charts.beyond_ram_chart(records),
        "energy": _metric_section(records, _present(records, ENERGY + THERMAL)),
        "energy_chart": charts.energy_chart(records),
        "roofline": tables.roofline_rows(records),
        "roofline_chart": charts.roofline_chart(records),
        "other": _metric_section(records, _other_metrics(records)),
    }


def _common(records: list[dict], title: str, root: str, kind: str, page_title: str) -> dict:
    labels = Counter(label for r in records for label in tables.labels_of(r))
    return {
        "title": title,
        "version": suite.__version__,
        "root": root,
        "kind": kind,
        "page_title": page_title,
        "any_simulated": any(tables.is_simulated(r) for r in records),
        "any_synthetic": any((r.get("model") or {}).get("synthetic_weights") for r in records),
        "provenance": sorted(labels.items()),
        "provenance_text": {**PROVENANCE_TEXT, "imported": PROVENANCE_TEXT["imported"].format(tools=", ".join(sorted(
            {str((r.get("import") or {}).get("tool") or "?") for r in records if r.get("origin") == "imported"})))},
    }


def _with_conditions(row: dict, record: dict) -> dict:
    return {**row, "conditions": tables.conditions_brief(record)}


def index_context(results: Results, title: str) -> dict:
    records = results.records
    outcomes = Counter(r.get("outcome") or "unknown" for r in records)
    real = [r for r in records if not tables.is_simulated(r)]
    by_tier: dict[str, list[dict]] = {}
    for r in real:
        by_tier.setdefault(tables.tier_of(r), []).append(r)
    tiers = []
    for tier in sorted(by_tier, key=tables.tier_sort_key):
        recs = by_tier[tier]
        tid = tables.slug(tier)
        tiers.append({
            "id": tid, "name": tier,
            "n_devices": len({tables.device_key(r) for r in recs}), "n_runs": len(recs),
            "summary": tables.tier_summary(recs, THROUGHPUT),
            "throughput_chart": charts.throughput_chart(recs, f"tier-{tid}-throughput"),
            "energy_chart": charts.energy_chart(recs, f"tier-{tid}-energy"),
            "memory_chart": charts.memory_chart(recs, f"tier-{tid}-memory", ram_lines=True),
            "roofline_chart": charts.roofline_scatter(recs, f"tier-{tid}-roofline"),
        })
    sim = [r for r in records if tables.is_simulated(r)]
    devices: dict[str, dict] = {}
    counts = Counter(tables.device_key(r) for r in records)
    for d, r in zip(tables.device_rows(records), _first_per(records, tables.device_key), strict=True):
        devices[d["device_id"]] = {**tables.run_ref(r), **d, "n_runs": counts[tables.device_key(r)]}
    models = []
    mcounts = Counter(tables.model_key(r) for r in records)
    for r in sorted(_first_per(records, tables.model_key), key=tables.model_sort_key):
        mod = r.get("model") or {}
        shas = {(x.get("model") or {}).get("sha256") for x in records if tables.model_key(x) == tables.model_key(r)}
        models.append({
            **tables.run_ref(r), "architecture": mod.get("architecture") or tables.NOT_RECORDED,
            "params": tables.fmt_params(mod["params"]) if mod.get("params") else tables.NOT_RECORDED,
            "artefacts": f"{len(shas)} artefact{'s' if len(shas) > 1 else ''} (by sha256)",
            "n_runs": mcounts[tables.model_key(r)],
        })
    runs = [
        {**row, "decode": tables.metric_cell(r, DECODE_TPS).text}
        for row, r in zip(tables.run_rows(records), records, strict=True)
    ]
    return {
        **_common(records, title, "", "index", title),
        "run_versions": sorted({str((r.get("host") or {}).get("edgebench_version")) for r in records}),
        "n_runs": len(records),
        "outcomes": sorted(outcomes.items(), key=lambda kv: (kv[0] != Outcome.COMPLETED, kv[0])),
        "skipped": [(Path(p).name, why) for p, why in results.skipped],
        "summary_names": THROUGHPUT,
        "tiers": tiers,
        "simulated": {"throughput_chart": charts.throughput_chart(sim, "simulated-throughput")} if sim else None,
        "fit": tables.fit_matrix(records),
        "voice": tables.voice_matrix(records),
        "rankings": [t for name in RANKED for t in tables.rankings(records, name)],
        "devices": sorted(devices.values(), key=lambda d: (tables.tier_sort_key(d["tier"]), d["device"])),
        "models": models,
        "runs": runs,
    }


def _first_per(records: list[dict], key) -> list[dict]:
    seen: dict[str, dict] = {}
    for r in records:
        seen.setdefault(key(r), r)
    return list(seen.values())


def device_context(records: list[dict], title: str) -> dict:
    d = tables.device_rows(records)[0]
    facts = [
        f"tier {d['tier']} · SoC {d['soc']} · RAM {d['ram']} · {d['os']} · ABI {d['abi']} · transport {d['transport']}",
        f"CPU {d['cpu']} ({d['cores']})" + (": " + "; ".join(d["clusters"]) if d["clusters"] else ""),
        f"device id {d['device_id']} · {len(records)} run{'s' if len(records) != 1 else ''}",
    ]
    page_title = d["device"] + (" (simulated)" if d["simulated"] else "")
    return {
        **_common(records, title, "../", "device", page_title),
        "facts": facts, "unavailable": d["unavailable"],
        "s": build_context(records), "rankings": [],
    }


def model_context(records: list[dict], title: str) -> dict:
    facts = [
        f"{m['architecture']} · {m['params']} params ({m['params_exact']}) · {m['quant']} {m['format']} · "
        f"file {m['bytes']} · sha256 {m['sha256'][:16]}…" + (" · synthetic weights" if m["synthetic"] else "")
        for m in tables.model_rows(records)
    ]
    return {
        **_common(records, title, "../", "model", tables.model_key(records[0])),
        "facts": facts, "unavailable": [],
        "s": build_context(records),
        "rankings": [t for name in RANKED for t in tables.rankings(records, name)],
    }


def run_context(record: dict, title: str) -> dict:
    samples = run_samples(record)
    has_samples = samples is not None and len(samples) > 0
    ref = _with_conditions(tables.run_ref(record), record)
    names = [n for n in METRICS if tables.has_any(record, (n,))]
    names += sorted(n for n in {*(record.get("metrics") or {}), *(record.get("unavailable") or {})}
                    if n not in METRICS)
    metrics = []
    for n in names:
        spec = METRICS.get(n)
        unit = ((record.get("metrics") or {}).get(n) or {}).get("unit") or (spec.unit if spec else "unit not recorded")
        metrics.append({"name": n, "cell": tables.metric_cell(record, n), "unit": unit, "better": _better(n),
                        "description": spec.description if spec else "not in the schema"})
    roof = tables.roofline_rows([record])
    page_title = f"{ref['model']} on {ref['device']} · {ref['runtime']}"
    cond = record.get("conditions") or {}
    return {
        **_common([record], title, "../", "run", page_title),
        "ref": ref,
        "run": tables.run_rows([record])[0],
        "errors": [tables.error_text(e) for e in record.get("errors") or []],
        "conditions": [(k, tables._condition_text(v)) for k, v in cond.items()],
        "metrics": metrics,
        "sensors": tables.sensor_summary(record),
        "timeline_chart": charts.timeline_chart(samples, record["run_id"]) if has_samples else None,
        "sustained_chart": charts.sustained_chart(samples, record["run_id"]) if has_samples else None,
        "roofline": roof[0] if roof else None,
    }


def _render(template: str, context: dict) -> bytes:
    return _env().get_template(template).render(**context).encode("utf-8")


# --- the site --------------------------------------------------------------------------


#: What a page is made from: (template, context builder); a builder takes (records or
#: results, title). Module-level, so a worker process finds it by name.
_PAGE_KINDS = {
    "run": ("run.html.j2", lambda recs, title: run_context(recs[0], title)),
    "device": ("group.html.j2", device_context),
    "model": ("group.html.j2", model_context),
    "index": ("index.html.j2", index_context),
}


def make_page(kind: str, source: list[dict] | Results, title: str) -> bytes:
    """One page's bytes: a pure function of its records (or, for the index, all results)."""
    template, context = _PAGE_KINDS[kind]
    return _render(template, context(source, title))


def _make_task(task: tuple[str, object, str]) -> bytes:
    return make_page(*task)


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity, which a container or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _make_pages(tasks: list[tuple[str, object, str]], jobs: int) -> Iterator[bytes]:
    """Each task's page, in task order: in this process, or spread over `jobs` processes.

    A page is a pure function of its task, so where it is made does not change a byte.
    Workers come from a forkserver that imports the renderer once (not fork: the caller
    may hold threads, e.g. pyarrow's pool); where there is none, spawn.
    """
    jobs = max(1, min(jobs, len(tasks)))
    if jobs == 1:
        yield from map(_make_task, tasks)
        return
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        # the renderer, and the rankings' statistics (scipy, which tables imports lazily): once,
        # in the server, instead of once per worker
        ctx.set_forkserver_preload([__name__, "suite.core.stats"])
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        try:
            yield from pool.map(_make_task, tasks)
        finally:  # a failed write or Ctrl-C in the caller: drop the pages not started yet
            pool.shutdown(cancel_futures=True)


class _Site:
    """Writes pages under out_dir, reusing cached bytes by key, and logs what it did."""

    def __init__(self, out_dir: Path) -> None:
        self.out = out_dir
        self.cache = out_dir / CACHE_DIR / "pages"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.log: dict[str, list[str]] = {"rendered": [], "reused": [], "written": [], "deleted": []}
        self.keys_used: set[str] = set()
        self.pages: set[str] = set()

    def cached(self, key_parts: Iterable[str]) -> Path:
        key = hashlib.sha256("\0".join([renderer_fingerprint(), *key_parts]).encode()).hexdigest()
        return self.cache / f"{key}.html"

    def reuse(self, rel: str, cached: Path) -> None:
        self.log["reused"].append(rel)
        self.keys_used.add(cached.name)
        self.write(rel, cached.read_bytes())

    def rendered(self, rel: str, cached: Path | None, data: bytes) -> None:
        if cached is not None:
            _atomic_write(cached, data)
            self.keys_used.add(cached.name)
        self.log["rendered"].append(rel)
        self.write(rel, data)

    def write(self, rel: str, data: bytes) -> None:
        self.pages.add(rel)
        path = self.out / rel
        if path.exists() and path.read_bytes() == data:
            return  # unchanged: mtime kept, a static host re-uploads nothing
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, data)
        self.log["written"].append(rel)

    def finish(self) -> None:
        for d in PAGE_DIRS:
            for p in sorted((self.out / d).glob("*.html")) if (self.out / d).is_dir() else []:
                rel = f"{d}/{p.name}"
                if rel not in self.pages:
                    p.unlink()
                    self.log["deleted"].append(rel)
        for p in self.cache.glob("*.html"):
            if p.name not in self.keys_used:
                p.unlink()
        log = {k: sorted(v) for k, v in self.log.items()}
        _atomic_write(self.out / CACHE_DIR / RENDER_LOG, (json.dumps(log, indent=1) + "\n").encode())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a reader never sees half a page


def render_report(result_paths: list[Path], out_dir: Path, *, title: str | None = None,
                  jobs: int | None = None) -> Path:
    """Render the runs under `result_paths` as a site in `out_dir`; return `out_dir/index.html`.

    Pages not in the cache are made by `jobs` processes (default: every CPU this process
    may use; 1 renders in this process); the files are the same bytes either way.
    """
    results = load_results(result_paths)
    if not results.records:
        where = ", ".join(str(p) for p in result_paths) or "(no paths given)"
        skipped = f"; {len(results.skipped)} broken run folder(s) skipped" if results.skipped else ""
        raise EdgebenchError(
            f"no runs found in {where}{skipped}",
            hint="run a benchmark first (edgebench run ...), or pass the folder that holds the run folders",
        )
    title = title or DEFAULT_TITLE
    site = _Site(Path(out_dir))
    records = results.records
    hashes = {r["run_id"]: run_content_hash(r) for r in records}
    # (href, cache key parts, kind, records), group pages first: the costliest tasks start first
    pages: list[tuple[str, tuple[str, ...], str, list[dict]]] = []
    for key_of, href_of, kind in ((tables.device_key, tables.device_href, "device"),
                                  (tables.model_key, tables.model_href, "model")):
        groups: dict[str, list[dict]] = {}
        for r in records:
            groups.setdefault(key_of(r), []).append(r)
        for recs in groups.values():
            pages.append((href_of(recs[0]), (kind, title, *sorted(hashes[r["run_id"]] for r in recs)), kind, recs))
    pages += [(tables.run_href(r), ("run", title, hashes[r["run_id"]]), "run", [r]) for r in records]
    todo: list[tuple[str, Path | None]] = [("index.html", None)]  # the index is always made: it lists everything
    tasks: list[tuple[str, object, str]] = [("index", results, title)]
    for rel, parts, kind, recs in pages:
        cached = site.cached(parts)
        if cached.exists():
            site.reuse(rel, cached)
        else:
            todo.append((rel, cached))
            tasks.append((kind, recs, title))
    for (rel, cached), data in zip(todo, _make_pages(tasks, default_jobs() if jobs is None else jobs), strict=True):
        site.rendered(rel, cached, data)
    site.finish()
    return site.out / "index.html"
