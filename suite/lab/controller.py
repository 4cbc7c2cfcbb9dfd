"""The lab controller: `edgebench lab run|status` (issue 7).

run_plan: load and validate the plan, find its devices (on every adb server it names), build
every model it needs once (their digests are part of the jobs' keys), then one worker process
per device (suite.lab.worker), a live table of what each one does, and a summary whose exit
code says whether every job is done. Re-running a plan is idempotent: done jobs are skipped.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queue_mod
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from suite.catalog.cards import get_model_card
from suite.core.errors import EdgebenchError
from suite.device.select import parse_filters, resolve
from suite.lab import worker
from suite.lab.jobs import DONE, device_manifests, job_label, job_states, jobs_on_device, model_build_key, spec_key
from suite.lab.plan import JobSpec, Plan
from suite.runtimes.remote import build_runner

Say = Callable[[str], None]


@dataclass
class DeviceRow:
    """What the live table shows for one device."""

    serial: str
    server: str = ""
    state: str = "starting"
    job: str = ""
    index: int = 0
    total: int = 0
    already: int = 0
    phase: str = ""
    progress: str = ""
    temp: str = ""
    message: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    finished: bool = False


@dataclass
class LabResult:
    rows: dict[str, DeviceRow]
    missing_selectors: list[str]
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        if self.interrupted or self.missing_selectors:
            return False
        for r in self.rows.values():
            c = r.counts
            if r.state in ("busy", "absent", "lost", "error", "stopped") or c.get("failed") or c.get("lost") \
                    or c.get("skipped") or c.get("pending"):
                return False
        return True


# --- devices and models ---------------------------------------------------------------------


def find_devices(plan: Plan) -> tuple[dict[str, Any], list[str]]:
    """serial -> DeviceRef of the plan's devices that are attached, and the serial selectors that
    are not (their workers wait for them)."""
    servers = list(plan.devices.adb) or None
    found: dict[str, Any] = {}
    missing: list[str] = []
    for sel in plan.devices.select:
        try:
            refs = resolve(sel, servers)
        except EdgebenchError:
            if sel != "all" and parse_filters(sel) is None:
                missing.append(sel)
            continue
        for r in refs:
            found.setdefault(r.serial, r)
    for serial in plan.devices.exclude:
        found.pop(serial, None)
    return found, [m for m in missing if m not in plan.devices.exclude]


def assign_jobs(plan: Plan, serials: list[str]) -> dict[str, list[int]]:
    """serial -> ordinals (in plan.expand()) of the jobs that run on it. A job's own `devices`
    narrow the plan's: each of its selectors is resolved once, against the attached phones (a
    phone not attached matches only by its serial)."""
    servers = list(plan.devices.adb) or None
    named: dict[str, set[str]] = {}

    def names(sel: str) -> set[str]:
        if sel not in named:
            try:
                named[sel] = {r.serial for r in resolve(sel, servers)}
            except EdgebenchError:
                named[sel] = set()
        return named[sel]

    specs = plan.expand()
    return {serial: [i for i, spec in enumerate(specs)
                     if not spec.devices or any(sel == serial or serial in names(sel) for sel in spec.devices)]
            for serial in serials}


def build_models(plan: Plan, models_dir: Path, say: Say) -> dict:
    """Build (or find built) every artefact the plan runs; {build key or model file: sha256}."""
    # lazy: suite.models loads onnx (~0.7 s), which `lab status` and the other plan commands never need
    from suite.models import build_model, default_models_dir
    from suite.models.record import model_record
    from suite.models.user_file import artefact_from_file
    from suite.models.user_file import model_record as file_record

    digests: dict = {}
    for spec in plan.expand():
        if spec.model_file is not None and str(spec.model_file) not in digests:
            card, built = artefact_from_file(spec.model_file)
            digests[str(spec.model_file)] = file_record(card, built)["sha256"]
        key = model_build_key(spec)
        if key is None or key in digests:
            continue
        model, fmt, quant, seed = key
        say(f"model {model} ({fmt}{' ' + quant if quant else ''}): building or checking")
        card = get_model_card(model)
        built = build_model(card, fmt=fmt, quant=quant, seed=seed, out_root=models_dir)
        digests[key] = model_record(card, built)["sha256"]
    build_runner(default_models_dir().parent / "runner")  # where run_device looks; one writer, before the workers
    return digests


# --- run --------------------------------------------------------------------------------------


def run_plan(plan: Plan, *, models_dir: Path, shuffle: bool = False, live: bool | None = None,
             console=None) -> LabResult:
    """Run every job of the plan that is not done yet; returns what each device did."""
    console = console or Console(stderr=True)
    live = console.is_terminal if live is None else live

    def say(msg: str) -> None:
        console.print(f"[dim]lab:[/] {_plain(msg)}", highlight=False)

    refs, missing = find_devices(plan)
    if not refs and not missing:
        raise EdgebenchError(f"no device of plan {plan.name!r} is attached (selectors: {', '.join(plan.devices.select)})",
                             hint="check `edgebench devices` and the plan's [devices] adb servers", exit_code=3)
    digests = build_models(plan, models_dir, say)
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    plan.output.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    push_gate = ctx.BoundedSemaphore(plan.run.max_parallel_pushes)
    rows: dict[str, DeviceRow] = {}
    procs: dict[str, Any] = {}
    everyone = [(s, r, True) for s, r in refs.items()] + [(s, None, False) for s in missing]
    assigned = assign_jobs(plan, [s for s, _, _ in everyone])
    for serial, ref, present in everyone:
        ordinals = assigned[serial]
        server = (ref.server.host, ref.server.port) if ref is not None and ref.server else (
            (plan.devices.adb[0].host, plan.devices.adb[0].port) if plan.devices.adb else None)
        rows[serial] = DeviceRow(serial, f"{server[0]}:{server[1]}" if server else "", total=len(ordinals))
        if not ordinals:
            rows[serial].state, rows[serial].finished = "no jobs", True
            continue
        args = worker.WorkerArgs(str(plan.path), serial, server, ordinals, digests, str(models_dir),
                                 shuffle=shuffle, present=present)
        p = ctx.Process(target=worker.main, args=(args, q, push_gate, os.getpid()), name=f"edgebench-lab-{serial}")
        p.start()
        procs[serial] = p
    result = LabResult(rows, missing)
    prev_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        _follow(q, procs, rows, console, live)
    except KeyboardInterrupt:
        result.interrupted = True
        console.print("[yellow]lab: stopping: each worker records its current run as interrupted[/]")
        for p in procs.values():
            if p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        try:
            _follow(q, procs, rows, console, False, deadline=deadline)
        except KeyboardInterrupt:
            pass
        for p in procs.values():
            if p.is_alive():
                p.kill()
    finally:
        signal.signal(signal.SIGTERM, prev_term)
    return result


def _raise_interrupt(_sig, _frame):
    raise KeyboardInterrupt()


def _follow(q, procs: dict, rows: dict[str, DeviceRow], console, live: bool, *, deadline: float | None = None) -> None:
    def alive() -> bool:
        return any(p.is_alive() for p in procs.values())

    def drain(timeout: float) -> None:
        try:
            ev = q.get(timeout=timeout)
        except queue_mod.Empty:
            return
        _apply(ev, rows, None if live else console)
        while True:
            try:
                _apply(q.get_nowait(), rows, None if live else console)
            except queue_mod.Empty:
                return

    view = Live(render_table(rows), console=console, refresh_per_second=4) if live else None
    with view or contextlib.nullcontext():
        while alive() or not q.empty():
            if deadline and time.monotonic() > deadline:
                return
            drain(0.25)
            if view is not None:
                view.update(render_table(rows))
    for p in procs.values():
        p.join(5)
    for serial, p in procs.items():
        if p.exitcode not in (0, None) and not rows[serial].finished:
            rows[serial].state = "error"
            rows[serial].message = rows[serial].message or f"worker exited with status {p.exitcode}"


def _apply(ev: dict, rows: dict[str, DeviceRow], log) -> None:
    r = rows.get(ev.get("serial"))
    if r is None:
        return
    kind = ev.get("event")
    line = None
    if kind == "state":
        r.state = ev.get("state", r.state)
        r.message = ev.get("message") or ""
        line = f"{r.state}" + (f": {r.message}" if r.message else "")
    elif kind == "plan":
        r.total, r.already = ev.get("total", r.total), ev.get("already", 0)
        r.state = "running"
        line = f"{r.total} job(s), {r.already} already done"
    elif kind == "job":
        r.job, r.index, r.phase, r.progress = ev.get("label", ""), ev.get("index", 0), "", ""
        r.message = ""
        line = f"job {r.index + 1}/{ev.get('total')}: {r.job}" + (f" (attempt {ev['attempt']})" if ev.get("attempt", 1) > 1 else "")
    elif kind == "job_end":
        st = ev.get("status")
        if st == DONE:
            r.counts[DONE] = r.counts.get(DONE, 0) + 1
        line = f"{r.job}: {st}" + (f": {ev['message']}" if ev.get("message") else "")
        r.message = line
    elif kind == "progress":
        r.phase = ev.get("phase", "")
        r.progress = f"{ev.get('done')}/{ev.get('total')}" if r.phase != "push" else (
            f"{ev.get('done', 0) / 1e6:.0f}/{ev.get('total', 0) / 1e6:.0f} MB")
    elif kind == "status":
        msg = ev.get("message", "")
        msg = msg[len(r.serial) + 2:] if msg.startswith(f"{r.serial}: ") else msg
        r.message = msg
        if "cooling" in msg or "°C" in msg or "degC" in msg:
            r.phase = "cooling"
            r.temp = _temp_of(msg) or r.temp
        elif msg.startswith("running "):
            r.phase = "running"
        elif msg.startswith("idle baseline"):
            r.phase = "idle"
        line = msg if log is not None and not msg.startswith("model ") else None
    elif kind == "summary":
        r.counts = dict(ev.get("counts") or {})
        r.finished = True
        if ev.get("state"):
            r.state = ev["state"]
    if log is not None and line:
        log.print(f"[dim]{_plain(r.serial)}:[/] {_plain(line)}", highlight=False)


def _temp_of(msg: str) -> str | None:
    m = re.search(r"(-?\d+(?:\.\d+)?)\s*°C", msg)
    return f"{m.group(1)} °C" if m else None


def render_table(rows: dict[str, DeviceRow]):
    t = Table(title="edgebench lab", expand=False)
    for col in ("device", "state", "job", "phase", "progress", "temp", "done", "failed", "note"):
        t.add_column(col, overflow="fold")
    for r in rows.values():
        c = r.counts
        t.add_row(_plain(r.serial), r.state, f"{r.index + 1}/{r.total - r.already} {_plain(r.job)}" if r.job else "",
                  r.phase, r.progress, r.temp, str(c.get("done", 0) + r.already), str(c.get("failed", 0)),
                  _plain(r.message)[:80])
    return t


def _plain(text: object) -> str:
    return escape(str(text))


# --- status and dry run -------------------------------------------------------------------------


@dataclass
class StatusRow:
    serial: str
    device_id: str | None
    job: str
    key: str | None
    status: str
    attempts: int = 0
    runs: int = 0
    message: str | None = None


def plan_status(plan: Plan) -> list[StatusRow]:
    """What is done, pending, failed, offline: each device's last job list (written by its worker:
    `<work_dir>/devices/<serial>.json`, keys included) against the journal and the results folder.
    A job whose definition changed since is pending; a device never run shows no rows."""
    rows: list[StatusRow] = []
    specs = plan.expand()
    for man in device_manifests(plan):
        known = {j["spec_key"]: j["key"] for j in man.get("jobs", [])}
        wanted = [(spec, known.get(spec_key(spec))) for spec in specs if _may_run_on(spec, man["serial"])]
        states = job_states(plan, [k for _, k in wanted if k])
        for spec, k in wanted:
            st = states.get(k) if k else None
            if st is None:
                rows.append(StatusRow(man["serial"], man.get("device_id"), job_label(spec), None, "pending",
                                      message="new or changed since the device's last run"))
            else:
                rows.append(StatusRow(man["serial"], man.get("device_id"), job_label(spec), k, st.status, st.attempts,
                                      len(st.run_ids), st.message))
    return rows


def _may_run_on(spec: JobSpec, serial: str) -> bool:
    return not spec.devices or serial in spec.devices or any("=" in d or d == "all" for d in spec.devices)


def dry_run(plan: Plan, *, models_dir: Path, say: Say) -> list[StatusRow]:
    """Which jobs would run where, with their keys and whether they are done; builds the models
    (their digests are in the keys) and reads each attached device's identity, runs nothing."""
    refs, missing = find_devices(plan)
    digests = build_models(plan, models_dir, say)
    specs = plan.expand()
    rows: list[StatusRow] = []
    assigned = assign_jobs(plan, list(refs))
    for serial, ref in refs.items():
        jobs = jobs_on_device(ref, [(o, specs[o]) for o in assigned[serial]], digests)
        states = job_states(plan, [j.key for j in jobs])
        for j in jobs:
            st = states[j.key]
            rows.append(StatusRow(serial, j.identity["device_id"], j.label(), j.key,
                                  "done (skip)" if st.status == DONE else f"would run ({st.status})",
                                  st.attempts, len(st.run_ids), st.message))
    for serial in missing:
        rows.append(StatusRow(serial, None, "*", None, "not attached: its jobs wait for it"))
    return rows


def print_rows(rows: list[StatusRow], console, title: str) -> None:
    t = Table(title=title)
    for col in ("device", "job", "key", "status", "attempts", "runs", "note"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(_plain(r.serial), _plain(r.job), r.key or "", r.status, str(r.attempts), str(r.runs),
                  _plain(r.message or "")[:80])
    console.print(t)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    console.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no jobs", highlight=False)


def print_summary(result: LabResult, console) -> None:
    t = Table(title="lab summary")
    for col in ("device", "state", "done", "already done", "failed", "skipped", "waiting/lost", "note"):
        t.add_column(col, overflow="fold")
    for r in result.rows.values():
        c = r.counts
        t.add_row(_plain(r.serial), r.state, str(c.get("done", 0)), str(c.get("already", r.already)),
                  str(c.get("failed", 0)), str(c.get("skipped", 0)), str(c.get("lost", 0) + c.get("pending", 0)),
                  _plain(r.message)[:100])
    console.print(t)
    for r in result.rows.values():
        if r.state in ("busy", "absent", "lost", "error", "stopped") and r.message:
            console.print(f"[yellow]{_plain(r.serial)}[/] {r.state}: {_plain(r.message)}", highlight=False)
    for sel in result.missing_selectors:
        console.print(f"[yellow]{_plain(sel)}[/]: not attached at the start", highlight=False)
    tot = {k: sum(r.counts.get(k, 0) for r in result.rows.values()) for k in
           ("done", "already", "failed", "skipped", "lost", "pending")}
    console.print(f"{tot['done']} done now, {tot['already']} already done, {tot['failed']} failed, "
                  f"{tot['skipped']} skipped, {tot['lost'] + tot['pending']} waiting for their device"
                  + (" (interrupted)" if result.interrupted else ""), highlight=False)


__all__ = ["LabResult", "StatusRow", "dry_run", "find_devices", "plan_status", "print_rows", "print_summary",
           "run_plan"]
