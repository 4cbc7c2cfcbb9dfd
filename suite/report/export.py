"""Export the tidy tables of a set of runs: runs, metrics, unavailable, samples.

    export([Path("results")], Path("export"), "parquet")
    # -> export/runs.parquet, metrics.parquet, unavailable.parquet, samples.parquet

csv and parquet write one file per table; json writes one JSON array (records) per table.
Column names are the store's (suite.store.RUN_COLUMNS, METRIC_COLUMNS); samples are long
format (run_id, t_s, channel, value). Device serials and local paths are left out. The runs
table adds `pool_key`, the digest of `suite.analysis.pooling.pool_key`: runs with equal
`pool_key` may be pooled, others never (the same rule the report and compare use).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape

from suite.analysis.pooling import pool_key
from suite.core.errors import EdgebenchError
from suite.store import load_results

FORMATS = ("csv", "parquet", "json")
TABLES = ("runs", "metrics", "unavailable", "samples")


def tables(paths: list[Path]) -> dict[str, pd.DataFrame]:
    results = load_results(paths)
    if not results.records:
        raise EdgebenchError(f"no runs found in {', '.join(map(str, paths))}")
    runs = results.runs.drop(columns=["path"])
    runs["pool_key"] = [pool_key(r).digest() for r in results.records]  # runs rows follow records
    return {"runs": runs, "metrics": results.metrics, "unavailable": results.unavailable,
            "samples": results.samples()}


def export(paths: list[Path], out: Path, fmt: str = "parquet") -> list[Path]:
    """Write the four tables under `out`; return the files written."""
    if fmt not in FORMATS:
        raise EdgebenchError(f"unknown export format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables(paths).items():
        path = out / f"{name}.{fmt}"
        tmp = out / f".{name}.{fmt}.tmp"
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        elif fmt == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_json(tmp, orient="records", indent=1)
        tmp.replace(path)
        written.append(path)
    return written


def cli_export(paths: list[Path], out: Path, fmt: str = "parquet", console=None) -> int:
    console = console or Console()
    for p in export(paths, out, fmt):
        console.print(f"wrote {escape(str(p))}")
    return 0
