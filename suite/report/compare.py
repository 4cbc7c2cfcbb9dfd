"""Compare two sets of runs: what changed between a baseline and a candidate, and is it real.

Rows are matched on the pooling key without the runtime version (`suite.analysis.pooling`:
device, model artefact, runtime name, backend and threads, scenario + parameters) and the
metric; the runtime *version* is what a comparison is usually about, so it is shown on each
side, not matched (a side holding two versions gives one row per version). Significance is
Welch's t-test on the raw repetition samples of each side (scipy.stats.ttest_ind,
equal_var=False); with fewer than 2 samples on a side there is no test and the row says
"insufficient samples". Within a side, runs are pooled only when their whole pooling key
(runtime version included) matches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from scipy import stats as st

from suite.analysis.pooling import PoolKey, pool_key
from suite.core.errors import EdgebenchError
from suite.core.schema import METRICS
from suite.report.tables import device_label, fmt_value
from suite.store import Results, load_results

ALPHA = 0.05
INSUFFICIENT = "insufficient samples"
COLUMNS = [
    "device_id", "device", "model_id", "model_sha256", "runtime", "scenario", "params", "metric", "unit",
    "baseline_runtime_version", "candidate_runtime_version", "baseline_median", "candidate_median",
    "change_pct", "p_value", "test", "n_baseline", "n_candidate", "significant", "direction",
]


def _load(spec: Iterable[str | Path], search: Iterable[Path] = ()) -> Results:
    """Folders load as they are; a bare string that is not a path is a run id looked up in `search`."""
    paths, ids = [], set()
    for s in spec:
        p = Path(s)
        (paths.append(p) if p.exists() else ids.add(str(s)))
    records: dict[str, dict] = {r["run_id"]: r for r in load_results(paths).records} if paths else {}
    if ids:
        pool = load_results(list(search) or [Path("results")]).records
        found = {r["run_id"]: r for r in pool if r["run_id"] in ids}
        missing = sorted(ids - set(found))
        if missing:
            raise EdgebenchError(f"no run with id {', '.join(missing)}",
                                 hint="pass result folders, or run ids present under the results folder")
        records |= found
    return Results(records=sorted(records.values(), key=lambda r: r["run_id"]))


def _label(dev: dict) -> str:
    return device_label(dev)


def _groups(results: Results) -> dict[tuple[PoolKey, str, str], dict]:
    """(pool key without the runtime version, metric, version) -> samples, pooled within one configuration."""
    out: dict[tuple[PoolKey, str, str], dict] = {}
    for r in results.records:
        if r.get("outcome") != "completed":
            continue
        dev, mod = r.get("device") or {}, r.get("model") or {}
        pk = pool_key(r)
        for name, m in (r.get("metrics") or {}).items():
            xs = [float(x) for x in m.get("samples") or []] or (
                [float(m.get("median", m.get("value")))] if m.get("median", m.get("value")) is not None else [])
            if not xs:
                continue
            key = (pk.without_version(), name, str(pk.runtime_version))
            g = out.setdefault(key, {"samples": [], "versions": set(), "device": _label(dev),
                                     "model_id": mod.get("id"), "unit": m.get("unit"),
                                     "hib": m.get("higher_is_better", METRICS[name].higher_is_better
                                                  if name in METRICS else None)})
            g["samples"] += xs
            g["versions"].add(str(pk.runtime_version))
    return out


def _order(kb: tuple[PoolKey, str, str], kc: tuple[PoolKey, str, str]) -> tuple[str, ...]:
    """Rows sort by device, model, runtime, backend, threads, scenario, params, metric, then the versions."""
    (k, name, version_b), version_c = kb, kc[-1]
    return tuple(map(str, (k.device_id, k.model_sha256, k.runtime, k.backend, k.threads, k.scenario, k.params,
                           name, version_b, version_c)))


def significance(a: list[float], b: list[float]) -> tuple[float | None, str]:
    """Welch's t-test p-value on raw samples; None with a reason when it cannot be computed."""
    if len(a) < 2 or len(b) < 2:
        return None, INSUFFICIENT
    if np.std(a) == 0 and np.std(b) == 0:
        return (1.0 if np.mean(a) == np.mean(b) else 0.0), "welch t (zero variance)"
    return float(st.ttest_ind(a, b, equal_var=False).pvalue), "welch t"


def compare(baseline: Iterable[str | Path], candidate: Iterable[str | Path], *,
            search: Iterable[Path] = (), alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (device, model, runtime, scenario params, metric) measured on both sides."""
    base, cand = _groups(_load(baseline, search)), _groups(_load(candidate, search))
    rows = []
    # matched on everything but the runtime version; each version on a side is its own group
    pairs = [(kb, kc) for kb in base for kc in cand if kb[:-1] == kc[:-1]]
    for kb, kc in sorted(pairs, key=lambda p: _order(*p)):
        (key, name, _), b, c = kb, base[kb], cand[kc]
        mb, mc = float(np.median(b["samples"])), float(np.median(c["samples"]))
        change = (mc - mb) / abs(mb) * 100 if mb else math.nan
        p, test = significance(b["samples"], c["samples"])
        sig = p is not None and p < alpha
        if not sig or mc == mb or b["hib"] is None:
            direction = "no significant change" if p is not None else "unknown"
        else:
            direction = "better" if (mc > mb) == bool(b["hib"]) else "worse"
        rows.append({
            "device_id": key.device_id, "device": b["device"], "model_id": b["model_id"],
            "model_sha256": key.model_sha256, "runtime": key.runtime, "scenario": key.scenario,
            "params": key.params, "metric": name, "unit": b["unit"],
            "baseline_runtime_version": ", ".join(sorted(b["versions"])),
            "candidate_runtime_version": ", ".join(sorted(c["versions"])),
            "baseline_median": mb, "candidate_median": mc, "change_pct": change, "p_value": p, "test": test,
            "n_baseline": len(b["samples"]), "n_candidate": len(c["samples"]), "significant": sig,
            "direction": direction,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def cli_compare(baseline: list[str], candidate: list[str], *, search: list[Path] | None = None,
                console=None) -> int:
    """Print the comparison as a rich table; exit 1 when any change is significantly worse."""
    console = console or Console()
    df = compare(baseline, candidate, search=search or ())
    if df.empty:
        console.print("no (device, model, runtime, scenario, metric) measured on both sides")
        return 0
    table = Table(title="edgebench compare: candidate vs baseline")
    for col in ("device", "model", "runtime (base → cand)", "metric", "baseline", "candidate", "change",
                "p (n)", "verdict"):
        table.add_column(col, justify="right" if col in ("baseline", "candidate", "change") else "left")
    style = {"better": "green", "worse": "red"}
    for r in df.itertuples(index=False):
        p = INSUFFICIENT if r.p_value is None or pd.isna(r.p_value) else f"{r.p_value:.3g}"
        table.add_row(
            escape(str(r.device)), escape(str(r.model_id)),
            escape(f"{r.runtime} {r.baseline_runtime_version} → {r.candidate_runtime_version}"),
            escape(str(r.metric)), escape(fmt_value(r.baseline_median, r.unit)),
            escape(fmt_value(r.candidate_median, r.unit)),
            "n/a" if pd.isna(r.change_pct) else f"{r.change_pct:+.1f}%",
            escape(f"{p} ({r.n_baseline} vs {r.n_candidate})"),
            f"[{style[r.direction]}]{r.direction}[/]" if r.direction in style else escape(r.direction),
        )
    console.print(table)
    return 1 if (df["direction"] == "worse").any() else 0
