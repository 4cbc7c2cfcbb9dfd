"""Render stored results into one self-contained, deterministic HTML page.

Self-contained: CSS inline, charts as inline SVG, no script, and a Content-Security-Policy
that forbids any fetch. Deterministic: no render time, no absolute paths, sorted inputs,
salted SVG ids, so the same results give byte-identical HTML.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

import suite
from suite.errors import EdgebenchError
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
    TTFT_S,
    known_metrics,
)
from suite.schema import METRICS, Outcome
from suite.store import Results, load_results

DEFAULT_TITLE = "edgebench report"

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
}


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("suite.report", "templates"),
        autoescape=True,  # every device string (model, SoC, hostname, getprop) is untrusted
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _present(records: list[dict], names: Iterable[str]) -> tuple[str, ...]:
    """The names that at least one run measured or declared unavailable."""
    return tuple(n for n in names if any(tables.has_any(r, (n,)) for r in records))


def _other_metrics(records: list[dict]) -> tuple[str, ...]:
    """Metrics no section covers (new schema names, imported extras): shown, never dropped."""
    names = {n for r in records for n in (*(r.get("metrics") or {}), *(r.get("unavailable") or {}))}
    return tuple(sorted(names - _SHOWN))


def _metric_section(records: list[dict], names: tuple[str, ...]) -> dict:
    better = {
        n: (f"{'higher' if METRICS[n].higher_is_better else 'lower'} is better" if n in METRICS else "")
        for n in names
    }
    return {"names": names, "better": better, "rows": tables.metric_rows(records, names)}


def _timelines(results: Results) -> list[dict]:
    out = []
    for r in results.records:
        samples = results.samples([r["run_id"]])
        out.append(
            {
                **tables.run_ref(r),
                "outcome": r.get("outcome"),
                "sensors": tables.sensor_summary(r),
                "chart": charts.timeline_chart(samples, r["run_id"]) if len(samples) else None,
            }
        )
    return out


def build_context(results: Results, title: str | None = None) -> dict:
    """Everything the template shows, as plain text rows and SVG charts."""
    records = results.records
    outcomes = Counter(r.get("outcome") or "unknown" for r in records)
    versions = sorted({str((r.get("host") or {}).get("edgebench_version")) for r in records})
    return {
        "title": title or DEFAULT_TITLE,
        "version": suite.__version__,
        "run_versions": versions,
        "n_runs": len(records),
        "outcomes": sorted(outcomes.items(), key=lambda kv: (kv[0] != Outcome.COMPLETED, kv[0])),
        "any_simulated": any((r.get("device") or {}).get("simulated") for r in records),
        "any_synthetic": any((r.get("model") or {}).get("synthetic_weights") for r in records),
        "skipped": [(Path(p).name, why) for p, why in results.skipped],
        "runs": tables.run_rows(records),
        "failed": tables.failed_rows(records),
        "devices": tables.device_rows(records),
        "models": tables.model_rows(records),
        "conditions": tables.conditions_table(records),
        "throughput": _metric_section(records, THROUGHPUT),
        "throughput_chart": charts.throughput_chart(records),
        "latency": _metric_section(records, LATENCY + _present(records, (LOAD_S,))),
        "latency_chart": charts.latency_chart(records),
        "memory": _metric_section(records, (PEAK_RSS, *_present(records, (PEAK_PSS,)))),
        "memory_chart": charts.memory_chart(records),
        "energy": _metric_section(records, _present(records, ENERGY + THERMAL)),
        "roofline": tables.roofline_rows(records),
        "roofline_chart": charts.roofline_chart(records),
        "other": _metric_section(records, _other_metrics(records)),
        "timelines": _timelines(results),
    }


def render_html(results: Results, title: str | None = None) -> str:
    return _env().get_template("report.html.j2").render(**build_context(results, title))


def render_report(result_paths: list[Path], out_dir: Path, *, title: str | None = None) -> Path:
    """Render the runs under `result_paths` to `out_dir/index.html` and return its path."""
    results = load_results(result_paths)
    if not results.records:
        where = ", ".join(str(p) for p in result_paths) or "(no paths given)"
        skipped = f"; {len(results.skipped)} broken run folder(s) skipped" if results.skipped else ""
        raise EdgebenchError(
            f"no runs found in {where}{skipped}",
            hint="run a benchmark first (edgebench run ...), or pass the folder that holds the run folders",
        )
    html = render_html(results, title)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "index.html"
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees half a page
    return out
