"""Results on disk: `results/<run_id>/run.json` + `samples.parquet`, written atomically.

The loader reads any set of result folders (from many hosts) into tidy pandas tables,
upgrading older schema versions step by step and skipping broken runs with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from suite.core.errors import EdgebenchError, SchemaVersionError
from suite.core.schema import CI_T, RUN_FIELDS, SAMPLE_COLUMNS, SCHEMA_VERSION, SMALL_N

log = logging.getLogger(__name__)

RUN_JSON = "run.json"
SAMPLES_PARQUET = "samples.parquet"
_TMP_PREFIX = ".tmp-"

_SAMPLES_SCHEMA = pa.schema(
    [("t_s", pa.float64()), ("channel", pa.string()), ("value", pa.float64())]
)


def default_results_dir() -> Path:
    return Path(os.environ.get("EDGEBENCH_RESULTS_DIR", "results"))


class StoreWarning(UserWarning):
    """A result folder was skipped; the others still load."""


# --- writing ---------------------------------------------------------------------------


def write_run(
    results_dir: Path,
    record: dict,
    samples: pd.DataFrame | Sequence[tuple[float, str, float]] | None = None,
) -> Path:
    """Write one run folder atomically: a temp folder beside it, renamed at the end.

    A crash or Ctrl-C mid-write leaves only a `.tmp-*` folder, which loaders ignore and
    the next write of the same run removes.
    """
    missing = [k for k in RUN_FIELDS if k not in record]
    if missing:
        raise ValueError(f"run record lacks {missing}")
    run_id = record["run_id"]
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    final = results_dir / run_id
    if final.exists():
        raise EdgebenchError(f"run folder {final} exists already; results are append-only")
    tmp = results_dir / f"{_TMP_PREFIX}{run_id}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        ordered = {k: record[k] for k in RUN_FIELDS} | {
            k: v for k, v in record.items() if k not in RUN_FIELDS
        }
        text = json.dumps(ordered, indent=2, allow_nan=False, default=_json_default)
        (tmp / RUN_JSON).write_text(text + "\n", encoding="utf-8")
        table = _samples_table(samples)
        pq.write_table(table, tmp / SAMPLES_PARQUET, compression="zstd")
        _fsync_dir(tmp)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _json_default(obj: object) -> object:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _samples_table(samples) -> pa.Table:
    if samples is None:
        return _SAMPLES_SCHEMA.empty_table()
    if isinstance(samples, pd.DataFrame):
        df = samples.loc[:, list(SAMPLE_COLUMNS)]
    else:
        df = pd.DataFrame(list(samples), columns=list(SAMPLE_COLUMNS))
    df = df.astype({"t_s": "float64", "channel": "string", "value": "float64"})
    return pa.Table.from_pandas(df, schema=_SAMPLES_SCHEMA, preserve_index=False)


def _fsync_dir(path: Path) -> None:
    for child in path.iterdir():
        with open(child, "rb") as fh:
            os.fsync(fh.fileno())


# --- reading ---------------------------------------------------------------------------

def _v1_llama_names(record: dict) -> dict:
    """1 -> 2: one naming scheme for llama.cpp. Version 1 called the in-process Python binding
    `llama.cpp` and the benchmark binary `llama-bench`; version 2 calls the engine driven through its
    benchmark binary `llama.cpp` (imported llama-bench results always were) and the binding
    `llama-cpp-python`, so old and new runs never pool by accident. The old name is kept in
    `runtime.renamed_from`."""
    record = dict(record)
    runtime = dict(record.get("runtime") or {})
    name = runtime.get("name")
    new = None
    if name == "llama-bench":
        new = "llama.cpp"
    elif name == "llama.cpp" and record.get("origin") != "imported":
        new = "llama-cpp-python"
    if new is not None:
        record["runtime"] = runtime | {"name": new, "renamed_from": name}
    record["schema_version"] = 2
    return record


def _v2_ci_method(record: dict) -> dict:
    """2 -> 3: every interval says how it was computed. Version-2 intervals were Student-t intervals
    of the mean (which can reach below 0 for a throughput); they are kept as they were and say so."""
    record = dict(record)
    metrics = {}
    for name, entry in (record.get("metrics") or {}).items():
        if isinstance(entry, dict) and entry.get("ci95") and "ci_method" not in entry:
            entry = entry | {"ci_method": CI_T, "small_n": int(entry.get("n") or 0) < SMALL_N}
        metrics[name] = entry
    record["metrics"] = metrics
    record["schema_version"] = 3
    return record


def _v3_sustained_windows(record: dict) -> dict:
    """3 -> 4: sustained windows have a minimum duration and `stability_pct` is a percentage.

    Version-3 sustained runs made one window of every generation: their params say so
    (`min_window_s: 0`, so they never pool with runs of 2 s windows). A `stability_pct` stored as
    the worst/best FRACTION (0.813 under unit `%`) is recognised by the run's own windows
    (`thermal.window_tps`: the fraction, not the percentage, of worst / best) and multiplied by 100,
    with `upgraded_from: <old value>` in the entry; a value that cannot be checked is kept."""
    record = dict(record)
    scenario = record.get("scenario")
    if isinstance(scenario, dict) and scenario.get("name") == "sustained":
        params = scenario.get("params")
        if isinstance(params, dict) and "min_window_s" not in params:
            record["scenario"] = scenario | {"params": params | {"min_window_s": 0.0}}
    metrics = record.get("metrics")
    entry = metrics.get("stability_pct") if isinstance(metrics, dict) else None
    windows = (record.get("thermal") or {}).get("window_tps") if isinstance(record.get("thermal"), dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("value"), int | float) and windows:
        try:
            vals = [float(v) for _, v in windows]
            fraction = min(vals) / max(vals)
        except (TypeError, ValueError, ZeroDivisionError):
            fraction = None
        value = float(entry["value"])
        if fraction is not None and value <= 1.0 and abs(value - fraction) <= 1e-3 and abs(value - 100 * fraction) > 1e-3:
            record["metrics"] = metrics | {"stability_pct": entry | {"value": 100.0 * value, "unit": "%",
                                                                    "upgraded_from": value}}
    record["schema_version"] = 4
    return record


#: the metrics schema 5 added: a version-4 run did not measure them
V5_METRICS = ("rss_file_bytes/peak", "rss_anon_bytes/peak", "rss_file_bytes/decode_peak",
              "major_faults_per_token/decode", "storage_read_bytes_per_token/decode", "mem_available_bytes/min",
              "swap_delta_bytes")


def _v4_paging(record: dict) -> dict:
    """Version 5 measures memory by kind and paging. A version-4 run did not: each new metric is
    `unavailable` with that reason (never 0, never guessed), and it has no `paging` block."""
    record = dict(record)
    unavailable = dict(record.get("unavailable") or {})
    metrics = record.get("metrics") or {}
    for name in V5_METRICS:
        if name not in metrics:
            unavailable.setdefault(name, "not measured: recorded before edgebench read memory by kind and paging "
                                         "(schema 4)")
    record["unavailable"] = unavailable
    record["schema_version"] = 5
    return record


#: Upgrade steps: UPGRADES[n] turns a version-n record into a version-(n+1) record.
UPGRADES: dict[int, Callable[[dict], dict]] = {1: _v1_llama_names, 2: _v2_ci_method, 3: _v3_sustained_windows,
                                               4: _v4_paging}


def upgrade_record(record: dict, source: str = "record") -> dict:
    version = record.get("schema_version")
    if not isinstance(version, int):
        raise EdgebenchError(f"{source}: no integer schema_version")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{source} has schema_version {version}; this edgebench reads up to {SCHEMA_VERSION}",
            hint="upgrade edgebench (pip install -U edgebench) to read newer results",
        )
    while version < SCHEMA_VERSION:
        step = UPGRADES.get(version)
        if step is None:
            raise SchemaVersionError(f"{source}: no upgrade step from schema_version {version}")
        record = step(record)
        version = record["schema_version"]
    return record


def load_run(run_dir: Path) -> dict:
    """Read and upgrade one run.json; raises on a broken or future record."""
    path = Path(run_dir) / RUN_JSON
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgebenchError(f"cannot read {path}: {exc}") from exc
    if not isinstance(record, dict):
        raise EdgebenchError(f"{path}: not a JSON object")
    record = upgrade_record(record, str(path))
    if "run_id" not in record:
        raise EdgebenchError(f"{path}: no run_id")
    record.setdefault("_path", str(Path(run_dir)))
    return record


def find_run_dirs(paths: Iterable[Path]) -> list[Path]:
    """Run folders under the given paths: each path is a run folder or holds run folders."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / RUN_JSON).is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(
                sorted(
                    c
                    for c in p.iterdir()
                    if c.is_dir() and not c.name.startswith(_TMP_PREFIX) and (c / RUN_JSON).exists()
                )
            )
        else:
            raise EdgebenchError(f"no results at {p}", hint="pass a results folder or a run folder")
    return found


def run_samples(record: dict) -> pd.DataFrame | None:
    """One run's samples (t_s, channel, value) as stored; None when it stored no samples file."""
    path = Path(record["_path"]) / SAMPLES_PARQUET
    return pq.read_table(path).to_pandas() if path.exists() else None


@dataclass
class Results:
    """Tidy views of a set of runs. `records` are the upgraded run.json dicts."""

    records: list[dict]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: run ids left out because a later run supersedes them
    superseded: list[str] = field(default_factory=list)

    @property
    def runs(self) -> pd.DataFrame:
        return pd.DataFrame([_run_row(r) for r in self.records], columns=RUN_COLUMNS)

    @property
    def metrics(self) -> pd.DataFrame:
        rows = []
        for r in self.records:
            for name, m in (r.get("metrics") or {}).items():
                ci = m.get("ci95") or [None, None]
                rows.append(
                    {
                        "run_id": r["run_id"],
                        "metric": name,
                        "value": m.get("value"),
                        "unit": m.get("unit"),
                        "higher_is_better": m.get("higher_is_better"),
                        "median": m.get("median", m.get("value")),
                        "mean": m.get("mean"),
                        "stddev": m.get("stddev"),
                        "ci_low": ci[0],
                        "ci_high": ci[1],
                        "n": m.get("n", 1),
                        "cv": m.get("cv"),
                        "unstable": bool(m.get("unstable", False)),
                    }
                )
        return pd.DataFrame(rows, columns=METRIC_COLUMNS)

    @property
    def unavailable(self) -> pd.DataFrame:
        rows = [
            {"run_id": r["run_id"], "metric": k, "reason": v}
            for r in self.records
            for k, v in (r.get("unavailable") or {}).items()
        ]
        return pd.DataFrame(rows, columns=["run_id", "metric", "reason"])

    def samples(self, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Samples of the chosen runs (all by default), long format plus run_id."""
        wanted = set(run_ids) if run_ids is not None else None
        frames = []
        for r in self.records:
            if wanted is not None and r["run_id"] not in wanted:
                continue
            df = run_samples(r)
            if df is None:
                continue
            df.insert(0, "run_id", r["run_id"])
            frames.append(df)
        if not frames:
            return pd.DataFrame(columns=["run_id", *SAMPLE_COLUMNS])
        return pd.concat(frames, ignore_index=True)


RUN_COLUMNS = [
    "run_id", "started_at", "ended_at", "outcome", "origin", "device_id", "manufacturer",
    "device_model", "soc_name", "tier", "simulated", "ram_bytes", "model_id", "params",
    "quant", "format", "model_sha256", "synthetic_weights", "runtime", "runtime_version",
    "backend", "threads", "scenario", "path",
]
METRIC_COLUMNS = [
    "run_id", "metric", "value", "unit", "higher_is_better", "median", "mean", "stddev",
    "ci_low", "ci_high", "n", "cv", "unstable",
]


def _run_row(r: dict) -> dict:
    dev, mod, rt = r.get("device") or {}, r.get("model") or {}, r.get("runtime") or {}
    return {
        "run_id": r["run_id"],
        "started_at": r.get("started_at"),
        "ended_at": r.get("ended_at"),
        "outcome": r.get("outcome"),
        "origin": r.get("origin"),
        "device_id": dev.get("device_id"),
        "manufacturer": dev.get("manufacturer"),
        "device_model": dev.get("model"),
        "soc_name": dev.get("soc_name"),
        "tier": dev.get("tier"),
        "simulated": bool(dev.get("simulated", False)),
        "ram_bytes": dev.get("ram_bytes"),
        "model_id": mod.get("id"),
        "params": mod.get("params"),
        "quant": mod.get("quant"),
        "format": mod.get("format"),
        "model_sha256": mod.get("sha256"),
        "synthetic_weights": mod.get("synthetic_weights"),
        "runtime": rt.get("name"),
        "runtime_version": rt.get("version"),
        "backend": rt.get("backend"),
        "threads": rt.get("threads"),
        "scenario": (r.get("scenario") or {}).get("name"),
        "path": r.get("_path"),
    }


def load_results(paths: Iterable[Path]) -> Results:
    """Load every run under `paths`; a broken run is skipped with a StoreWarning.

    Runs are merged by run_id: the same run copied into two folders counts once.
    A future schema_version is not skipped silently: it raises SchemaVersionError. A run that
    another run `supersedes` is left out (listed in `Results.superseded`).
    """
    records: dict[str, dict] = {}
    skipped: list[tuple[str, str]] = []
    for run_dir in find_run_dirs(paths):
        try:
            rec = load_run(run_dir)
        except SchemaVersionError:
            raise
        except EdgebenchError as exc:
            skipped.append((str(run_dir), exc.message))
            warnings.warn(f"skipped {run_dir}: {exc.message}", StoreWarning, stacklevel=2)
            continue
        records.setdefault(rec["run_id"], rec)
    # a run re-derived from another (e.g. with an external meter's log) replaces it
    replaced = {r["supersedes"] for r in records.values() if r.get("supersedes")}
    ordered = sorted((r for r in records.values() if r["run_id"] not in replaced), key=lambda r: r["run_id"])
    return Results(records=ordered, skipped=skipped, superseded=sorted(replaced & records.keys()))
