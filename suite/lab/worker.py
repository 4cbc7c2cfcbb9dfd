"""One lab worker: a process per device that runs its jobs one after another (issue 7).

A process, not a thread: Ctrl-C and SIGTERM reach every worker, and each one stops its run the
way `edgebench run` does (the interrupted run is written, complete and marked; the device-side
runner is killed); a worker whose controller died (SIGKILL, a host crash) notices its parent is
gone and stops the same way. Never two runs on one device: the worker holds the device's lock
(suite.lab.lock) for as long as it works on it.

Events to the controller are dicts on a multiprocessing queue: {"serial", "event", ...}.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.core.errors import EdgebenchError
from suite.device import provision
from suite.device.select import attached
from suite.lab.jobs import (
    DONE,
    FAILED,
    FINAL_OUTCOMES,
    INTERRUPTED,
    SKIPPED,
    append_journal,
    job_states,
    jobs_on_device,
    journal_path,
    lab_runs,
    write_device_manifest,
)
from suite.lab.lock import DeviceLock, LockHeld
from suite.lab.plan import load_plan
from suite.runtimes import BurstParams
from suite.scenarios import get_scenario
from suite.session.gating import GateSkipped
from suite.transport import AdbServerAddress, DeviceError

#: how often a worker checks that its device is back after a disconnect
RECONNECT_POLL_S = 1.0


@dataclass
class WorkerArgs:
    plan_path: str
    serial: str
    server: tuple[str, int] | None
    ordinals: list[int]  # indexes into plan.expand() of this device's jobs
    digests: dict
    models_dir: str
    shuffle: bool = False
    present: bool = True  # False: the phone was not attached when the plan started
    controller: str = field(default_factory=socket.gethostname)


class _Stop(KeyboardInterrupt):
    """SIGTERM or the controller gone: stop like Ctrl-C."""


def _install_stops(parent_pid: int) -> None:
    def on_term(_sig, _frame):
        raise _Stop()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch_parent() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch_parent, name="edgebench-parent-watch", daemon=True).start()


def main(args: WorkerArgs, queue, push_gate, parent_pid: int) -> None:
    """The worker process's entry point (multiprocessing, spawn)."""
    _install_stops(parent_pid)
    w = _Worker(args, queue, push_gate)
    try:
        w.run()
    except KeyboardInterrupt:
        w.final_state = "stopped"
        w.emit("state", state="stopped", message="interrupted")
    except Exception as exc:  # noqa: BLE001 - a worker reports, never dies silently
        w.final_state = "error"
        w.emit("state", state="error", message=f"{type(exc).__name__}: {exc}",
               traceback=traceback.format_exc(limit=6))
    finally:
        w.finish()


class _Worker:
    def __init__(self, args: WorkerArgs, queue, push_gate) -> None:
        self.args = args
        self.queue = queue
        self.plan = load_plan(args.plan_path)
        self.serial = args.serial
        provision.PUSH_GATE = push_gate
        self.counts = {"done": 0, "failed": 0, "skipped": 0, "already": 0, "lost": 0, "pending": 0}
        self.lock = None
        self.final_state = "finished"

    # --- events -------------------------------------------------------------------------------

    def emit(self, event: str, **kw: Any) -> None:
        try:
            self.queue.put({"serial": self.serial, "event": event, "t": time.time(), **kw})
        except (OSError, ValueError):  # the controller is gone: the journal still has everything
            pass

    def say(self, msg: str) -> None:
        self.emit("status", message=msg)

    def unlock(self) -> None:
        """Let go of the lock (ours only: a lock another controller took meanwhile stays)."""
        lock, self.lock = self.lock, None
        if lock is not None:
            lock.stop_heartbeat()
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - a phone still away: the lock goes stale by itself
                pass

    def lock_device(self, ref) -> str | None:
        """Take the device's lock (heartbeat running); None, or who holds it instead."""
        self.unlock()
        lock = DeviceLock(ref.transport(), owner={"plan": self.plan.name, "controller_host": self.args.controller})
        try:
            lock.__enter__()
        except LockHeld as exc:
            return exc.message
        self.lock = lock
        if lock.broke_stale:
            self.say(f"broke a stale lock: {lock.broke_stale.get('reason')}")
        return None

    def finish(self) -> None:
        self.unlock()
        self.emit("summary", counts=dict(self.counts), state=self.final_state)

    # --- the device ---------------------------------------------------------------------------

    def ref(self, wait_s: float = 0.0):
        """The device's ref, waiting up to `wait_s` for it to be attached and ready."""
        servers = [AdbServerAddress(*self.args.server)] if self.args.server else None
        deadline = time.monotonic() + wait_s
        while True:
            try:
                for ref in attached(servers):
                    if ref.serial == self.serial and ref.ready:
                        return ref
            except EdgebenchError:
                pass
            if time.monotonic() >= deadline:
                return None
            time.sleep(RECONNECT_POLL_S)

    def wait_back(self, why: str):
        timeout = self.plan.run.lost_timeout_s
        self.emit("state", state="lost", message=f"{why}; waiting up to {timeout:.0f} s for it")
        ref = self.ref(wait_s=timeout)
        if ref is not None:
            self.emit("state", state="running", message="back")
        return ref

    # --- the jobs -----------------------------------------------------------------------------

    def run(self) -> None:
        ref = self.ref(wait_s=0 if self.args.present else self.plan.run.lost_timeout_s)
        while True:
            if ref is None:
                self.counts["lost"] = len(self.args.ordinals)
                self.final_state = "lost" if self.args.present else "absent"
                self.emit("state", state=self.final_state,
                          message=f"not attached within {self.plan.run.lost_timeout_s:.0f} s")
                return
            try:
                jobs = self.setup(ref)
                break
            except DeviceError as exc:  # gone while locking or reading its identity
                if self.ref() is not None:
                    raise
                ref = self.wait_back(f"{self.serial} disconnected ({exc.message})")
        if jobs is None:
            return
        states = job_states(self.plan, [j.key for j in jobs])
        todo = [j for j in jobs if states[j.key].status != DONE]
        self.counts["already"] = len(jobs) - len(todo)
        self.emit("plan", total=len(jobs), already=self.counts["already"],
                  jobs=[{"key": j.key, "label": j.label(), "ordinal": j.ordinal} for j in jobs])
        for n, job in enumerate(todo):
            ref = self.run_job(ref, job, n, len(todo))
            if ref is None:  # lost for good: the rest waits for the next run of the plan
                left = len(todo) - n - 1
                self.counts["lost"] += left
                self.final_state = "lost"
                self.emit("state", state="lost", message=f"did not come back; {left} job(s) left for the next run")
                return
        self.emit("state", state="finished")

    def setup(self, ref):
        """Lock the device, read its identity and runtime versions: its jobs with their keys, in
        the order to run them (None: the device is another controller's)."""
        self.emit("state", state="locking")
        held = self.lock_device(ref)
        if held is not None:
            self.counts["pending"] = len(self.args.ordinals)
            self.final_state = "busy"
            self.emit("state", state="busy", message=held)
            return None
        self.emit("state", state="identity")
        specs = self.plan.expand()
        jobs = jobs_on_device(ref, [(i, specs[i]) for i in self.args.ordinals], self.args.digests)
        device_id = jobs[0].identity["device_id"]
        server = f"{self.args.server[0]}:{self.args.server[1]}" if self.args.server else None
        write_device_manifest(self.plan, self.serial, device_id, server, jobs)
        if self.args.shuffle or self.plan.run.order == "shuffle":
            seed = self.plan.run.shuffle_seed
            rng = random.Random(f"{seed}:{device_id}" if seed is not None else None)
            rng.shuffle(jobs)
        return jobs

    def run_job(self, ref, job, n: int, total: int):
        """Run one job with its retries; the ref to go on with (None: the device is gone)."""
        journal = journal_path(self.plan)

        for attempt in range(1, self.plan.run.retries + 2):
            self.emit("job", key=job.key, label=job.label(), index=n, total=total, attempt=attempt)
            t0 = time.time()
            base = {"key": job.key, "serial": self.serial, "device_id": job.identity["device_id"],
                    "job": job.label(), "ordinal": job.ordinal, "attempt": attempt}

            def new(since: float = t0) -> dict[str, str]:
                """run id -> outcome of the runs this attempt made"""
                return {r["run_id"]: r["outcome"] for r in lab_runs(self.plan.output, since).get(job.key, [])}

            try:
                self.execute(ref, job, attempt)
            except KeyboardInterrupt:
                append_journal(journal, {**base, "status": INTERRUPTED, "seconds": time.time() - t0,
                                         "run_ids": sorted(new())})
                raise
            except GateSkipped as exc:
                append_journal(journal, {**base, "status": SKIPPED, "message": exc.message})
                self.counts["skipped"] += 1
                self.emit("job_end", key=job.key, status=SKIPPED, message=exc.message)
                return ref
            except Exception as exc:  # noqa: BLE001 - record, retry, go on
                made = new()
                msg = exc.message if isinstance(exc, EdgebenchError) else f"{type(exc).__name__}: {exc}"
                if made and all(o in FINAL_OUTCOMES for o in made.values()) and self.single_run(job):
                    # e.g. `oom`: the run is the answer (the model does not fit), not a failure to retry
                    append_journal(journal, {**base, "status": DONE, "message": msg, "seconds": time.time() - t0,
                                             "run_ids": sorted(made)})
                    self.counts["done"] += 1
                    self.emit("job_end", key=job.key, status=DONE, message=msg, run_ids=sorted(made))
                    return ref
                append_journal(journal, {**base, "status": FAILED, "message": msg, "seconds": time.time() - t0,
                                         "run_ids": sorted(made)})
                self.emit("job_end", key=job.key, status=FAILED, message=msg, attempt=attempt)
                back = self.ref()
                if back is None:
                    back = self.wait_back(f"{self.serial} disconnected")
                    if back is None:
                        self.counts["failed"] += 1
                        return None
                    held = self.lock_device(back)  # a phone that restarted lost our lock
                    if held is not None:
                        self.counts["failed"] += 1
                        self.final_state = "busy"
                        self.emit("state", state="busy", message=f"back, but {held}")
                        return None
                ref = back
                continue
            made = sorted(new())
            append_journal(journal, {**base, "status": DONE, "seconds": time.time() - t0, "run_ids": made})
            self.counts["done"] += 1
            self.emit("job_end", key=job.key, status=DONE, run_ids=made, seconds=time.time() - t0)
            return ref
        self.counts["failed"] += 1
        return ref

    @staticmethod
    def single_run(job) -> bool:
        """Whether the job's scenario makes one run (a ladder's failed rung is not the job's answer)."""
        return get_scenario(job.spec.scenario).single_run

    def execute(self, ref, job, attempt: int) -> None:
        """One attempt: the gate and the measured run(s), records stamped with the lab job."""
        # lazy: the session loads pandas, scipy and onnx (~1.8 s); the controller imports this module
        # for `lab status` and `lab run --dry-run`, which run no job
        from suite.session.local import RunRequest

        spec, p, plan = job.spec, job.spec.params, self.plan
        lab = {"plan": plan.name, "plan_sha256": plan.text_sha256, "job_key": job.key, "attempt": attempt,
               "job": job.label(), "line": spec.line, "controller": self.args.controller}
        params = BurstParams(prompt_tokens=p["prompt_tokens"], gen_tokens=p["gen_tokens"], reps=p["reps"],
                             warmup=p["warmup"], threads=p.get("threads"), seed=p.get("seed") or 0,
                             depth=p.get("depth") or 0, backend=p.get("backend") or "cpu", mmap=p.get("mmap"),
                             repack=p.get("repack"))
        model = spec.model or (spec.model_file.stem if spec.model_file else (p.get("models") or ["?"])[0])
        req = RunRequest(model_id=model, runtime=spec.runtime, device=self.serial, params=params,
                         quant=p.get("quant"), seed=p.get("seed") or 0, models_dir=Path(self.args.models_dir),
                         results_dir=plan.output, sample_rate_hz=p.get("rate") or 10.0,
                         probe=bool(p.get("probe")), model_file=spec.model_file,
                         idle_s=float(p.get("idle_s") or 0.0), runtime_bundle=spec.runtime_bundle,
                         inputs={"tokenizer": spec.tokenizer} if spec.tokenizer else {}, lab=lab)
        gate = plan.gate
        say = self.say

        def on_rep(i: int, total: int, rep) -> None:
            self.emit("progress", done=i + 1, total=total, phase="warmup" if rep.warmup else "measure")

        def push(done: int, total: int) -> None:
            self.emit("progress", done=done, total=total, phase="push")

        entry = get_scenario(spec.scenario)
        entry.run(ref, req, gate=gate, status=say, on_rep=on_rep, push_progress=push,
                  options={name: p.get(name) for name in entry.options})
