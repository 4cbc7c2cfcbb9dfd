"""Jobs on devices: resume keys, the journal, and what is done (issue 7).

A job is a plan's JobSpec on one device. Its key hashes everything that defines the
measurement: the JobSpec's identity (scenario + parameters, runtime, model id, repetition)
plus the device (`device_id`), the model's content (sha256 of the built artefact or the
user's file; a fit ladder is named by its card ids, seed and quant: the builds are
deterministic) and the runtime's version on that device (the device Python's module version,
or the llama-bench binary's sha256). Editing one line of a plan changes only the keys of
the jobs that line defines.

The journal (`<work_dir>/journal.jsonl`) is append-only, one JSON line per attempt end,
written with O_APPEND by the worker that made the attempt: it survives the controller's death.
A job is done when the journal says so, or when the results folder holds a run of its key
with a final outcome (a kill between the run's atomic write and its journal line).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ulid import ULID

from suite.core.errors import EdgebenchError
from suite.device.identity import lab_salt
from suite.lab.plan import JobSpec, Plan, job_key
from suite.runtimes import builds_own, get_runtime, is_native
from suite.runtimes.remote import find_python
from suite.transport import quote

#: Outcomes that answer the job's question (a model that does not fit is an answer).
FINAL_OUTCOMES = ("completed", "oom")
JOURNAL = "journal.jsonl"

# journal statuses
DONE, FAILED, SKIPPED, INTERRUPTED, LOST = "done", "failed", "skipped", "interrupted", "lost"


def runtime_format(runtime: str) -> str:
    """The format a reference card is built in for `runtime` (its first)."""
    return get_runtime(runtime).formats[0]


def model_build_key(spec: JobSpec) -> tuple[str, str, str | None, int] | None:
    """(model id, format, quant, seed) of the artefact a job runs; None for model files and fit."""
    if spec.model is None or spec.scenario == "fit":
        return None
    return (spec.model, runtime_format(spec.runtime), spec.params.get("quant"), int(spec.params.get("seed") or 0))


def model_identity(spec: JobSpec, digests: dict) -> dict[str, Any]:
    """What says which bytes the job runs: a digest, or (fit) the ladder's deterministic builds."""
    if spec.scenario == "fit":
        return {"ladder": list(spec.params.get("models") or []), "quant": spec.params.get("quant"),
                "seed": spec.params.get("seed"), "format": runtime_format(spec.runtime)}
    if spec.model_file is not None:
        return {"sha256": digests[str(spec.model_file)]}
    return {"sha256": digests[model_build_key(spec)]}


def runtime_version(ref, runtime: str, bundle: Path | None = None) -> str:
    """The runtime's version on the device: a native runtime's bundle digest, else the version of
    the module the device's Python imports ("unknown" when it cannot tell)."""
    rt = get_runtime(runtime)
    if is_native(rt):
        if bundle:
            return rt.bundle_version(bundle)
        return rt.own_version(ref.live()) if builds_own(rt) else "unknown"
    module = rt.python_module
    try:
        python = find_python(ref.transport(), ref.live().props, module)
        r = ref.transport().shell(f"{quote(python)} -c "
                                  + quote(f"import {module} as m; print(getattr(m, '__version__', '?'))"),
                                  timeout_s=60)
    except EdgebenchError:
        return "unknown"
    out = r.stdout.strip().splitlines()
    return out[-1] if r.exit_code == 0 and out else "unknown"


@dataclass(frozen=True)
class DeviceJob:
    """A JobSpec on one device, with its resume key."""

    spec: JobSpec
    key: str
    identity: dict[str, Any] = field(hash=False)
    ordinal: int = 0  # position in the plan's expansion

    def label(self) -> str:
        return job_label(self.spec)


def job_label(spec: JobSpec) -> str:
    """`model runtime scenario [#repetition]`, for tables and logs."""
    what = spec.model or (spec.model_file.name if spec.model_file else "ladder")
    rep = f" #{spec.repetition + 1}" if spec.repetition else ""
    return f"{what} {spec.runtime} {spec.scenario}{rep}"


def device_jobs(specs: Iterable[tuple[int, JobSpec]], device_id: str, digests: dict,
                runtime_versions: dict[str, str]) -> list[DeviceJob]:
    out = []
    for ordinal, spec in specs:
        ident = {**spec.identity(), "device_id": device_id, "model_content": model_identity(spec, digests),
                 "runtime_version": runtime_versions.get(spec.runtime, "unknown")}
        out.append(DeviceJob(spec, job_key(ident), ident, ordinal))
    return out


def jobs_on_device(ref, specs: list[tuple[int, JobSpec]], digests: dict) -> list[DeviceJob]:
    """The device's jobs with their keys: reads its identity and each runtime's version on it."""
    device_id = ref.info(lab_salt()).to_dict()["device_id"]
    bundles = {spec.runtime: spec.runtime_bundle for _, spec in specs}
    versions = {rt: runtime_version(ref, rt, bundle) for rt, bundle in bundles.items()}
    return device_jobs(specs, device_id, digests, versions)


# --- the journal ----------------------------------------------------------------------------


def journal_path(plan: Plan) -> Path:
    return plan.work_dir / JOURNAL


def append_journal(path: Path, entry: dict[str, Any]) -> None:
    """One line, one write, O_APPEND, fsync: concurrent workers never interleave a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps({"t": time.time(), **entry}, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every complete line; a torn last line (a kill mid-write) is ignored."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "key" in entry:
            out.append(entry)
    return out


def lab_runs(output: Path, since: float | None = None) -> dict[str, list[dict[str, Any]]]:
    """job key -> [{run_id, outcome, attempt, scenario}] of the lab runs in a results folder.

    `since` (epoch s): only runs made from then on. Run folders are named by their ULID, whose
    first 10 characters are its millisecond timestamp, so older folders are skipped by name
    without reading them (a worker asks after every attempt)."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    if not output.is_dir():
        return by_key
    floor = str(ULID.from_timestamp(since))[:10] if since is not None else None
    for run_json in output.glob("*/run.json"):
        name = run_json.parent.name
        if name.startswith(".") or (floor is not None and (len(name) != 26 or name[:10] < floor)):
            continue
        try:
            rec = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        lab = rec.get("lab") or {}
        if lab.get("job_key"):
            by_key.setdefault(lab["job_key"], []).append(
                {"run_id": rec.get("run_id"), "outcome": rec.get("outcome"), "attempt": lab.get("attempt"),
                 "scenario": (rec.get("scenario") or {}).get("name")})
    return by_key


@dataclass
class JobState:
    status: str  # done | failed | skipped | interrupted | lost | pending
    attempts: int = 0
    run_ids: list[str] = field(default_factory=list)
    message: str | None = None


def job_states(plan: Plan, keys: Iterable[str]) -> dict[str, JobState]:
    """The state of each key from the journal and the results folder."""
    wanted = set(keys)
    states = {k: JobState("pending") for k in wanted}
    for e in read_journal(journal_path(plan)):
        k = e["key"]
        if k not in wanted:
            continue
        st = states[k]
        if st.status == DONE:
            continue
        st.status = e.get("status", st.status)
        st.attempts = max(st.attempts, int(e.get("attempt") or 0))
        st.run_ids += [r for r in e.get("run_ids") or [] if r not in st.run_ids]
        st.message = e.get("message")
    for k, runs in lab_runs(plan.output).items():
        if k not in wanted:
            continue
        st = states[k]
        for r in runs:
            if r["run_id"] not in st.run_ids:
                st.run_ids.append(r["run_id"])
        # a fit walk is done only when its journal line says so (its rungs end in oom by design)
        if st.status != DONE and any(r["outcome"] in FINAL_OUTCOMES and r["scenario"] != "fit" for r in runs):
            st.status = DONE
    return states


def spec_key(spec: JobSpec) -> str:
    """The key of a job's definition alone (no device, digest or version): which plan line it is."""
    return job_key(spec.identity())


def _manifest_file(plan: Plan, serial: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in serial)
    return plan.work_dir / "devices" / f"{safe}.json"


def write_device_manifest(plan: Plan, serial: str, device_id: str, server: str | None, jobs: list[DeviceJob]) -> None:
    """The jobs a device's worker computed (their keys need the device: `lab status` reads this)."""
    path = _manifest_file(plan, serial)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"serial": serial, "device_id": device_id, "server": server, "updated": time.time(),
            "jobs": [{"spec_key": spec_key(j.spec), "key": j.key, "label": j.label()} for j in jobs]}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def device_manifests(plan: Plan) -> list[dict[str, Any]]:
    folder = plan.work_dir / "devices"
    out = []
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and data.get("serial"):
            out.append(data)
    return out
