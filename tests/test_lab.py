"""`edgebench lab` end to end with several loopback phones on a real adb server (issue 7):
parallel workers, resume after a kill, a phone lost mid-plan, two controllers contending,
validation errors, and the documented cron / systemd commands.

The jobs are dominated by the gate's fixed cooldown delay, so this 2-core host does not bound
how much the phones overlap."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from loopback_plugin import phone_ref

from suite.lab.jobs import read_journal
from suite.lab.plan import load_plan

pytestmark = pytest.mark.loopback

EDGEBENCH = [sys.executable, "-m", "suite.cli.main"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A private cache (models, runner) shared by the module's plans; workers find it by env."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["EDGEBENCH_CACHE_DIR"] = str(cache)
    yield cache / "models"
    os.environ.pop("EDGEBENCH_CACHE_DIR", None)


def write_plan(folder: Path, port: int, *, name="lab", delay="2s", repetitions=2, models=("tiny",), extra="",
               lost_timeout="60s", select='["all"]') -> Path:
    text = f"""version = 1
name = "{name}"
output = "results"

[devices]
select = {select}
adb = ["127.0.0.1:{port}"]

[defaults]
prompt_tokens = 8
gen_tokens = 4
reps = 1
warmup = 0
threads = 1
idle = 0
repetitions = {repetitions}

[gate]
cooldown_max_temp = 90
cooldown_delay = "{delay}"

[run]
retries = 1
lost_timeout = "{lost_timeout}"
{extra}
[[jobs]]
scenario = "burst"
models = [{", ".join(f'"{m}"' for m in models)}]
"""
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def lab(*args, models_dir, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGEBENCH, "lab", *map(str, args), *(["--models-dir", str(models_dir)]
                                                                 if args[0] == "run" else [])],
                          capture_output=True, text=True, timeout=timeout, **kw)


def start_lab(plan: Path, models_dir) -> subprocess.Popen:
    return subprocess.Popen([*EDGEBENCH, "lab", "run", str(plan), "--models-dir", str(models_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(pred, timeout=120, poll=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def runs(folder: Path) -> list[dict]:
    out = []
    for f in sorted((folder / "results").glob("*/run.json")):
        out.append(json.loads(f.read_text()))
    return out


def journal(plan: Path) -> list[dict]:
    return read_journal(load_plan(plan).work_dir / "journal.jsonl")


def _t(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def assert_one_completed_run_per_key(records: list[dict], n_keys: int) -> None:
    done: dict[str, list[str]] = {}
    for r in records:
        if r["outcome"] == "completed":
            done.setdefault(r["lab"]["job_key"], []).append(r["run_id"])
    assert len(done) == n_keys, done
    assert all(len(v) == 1 for v in done.values()), f"duplicated results: {done}"


def assert_never_two_runs_on_one_device(records: list[dict]) -> None:
    by_dev: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        by_dev.setdefault(r["device"]["device_id"], []).append((_t(r["started_at"]), _t(r["ended_at"])))
    for spans in by_dev.values():
        spans.sort()
        for (_, a1), (b0, _) in zip(spans, spans[1:], strict=False):
            assert b0 >= a1, f"two runs overlap on one device: {spans}"


def test_three_phones_run_in_parallel_and_a_rerun_does_nothing(loopback_phone_factory, loopback_adb_server,
                                                               models_dir, tmp_path):
    phones = [loopback_phone_factory("qcom-flagship", charging=False) for _ in range(3)]
    plan = write_plan(tmp_path, loopback_adb_server.port, delay="4s", repetitions=2)
    dry = lab("run", plan, "--dry-run", models_dir=models_dir)
    assert dry.returncode == 0 and "6 would run (pending)" in dry.stdout, dry.stdout + dry.stderr[-2000:]
    assert not (tmp_path / "results").exists() or runs(tmp_path) == []
    t0 = time.monotonic()
    r = lab("run", plan, models_dir=models_dir)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    records = runs(tmp_path)
    assert len(records) == 6 and all(x["outcome"] == "completed" for x in records)
    assert {x["lab"]["plan"] for x in records} == {"lab"}
    assert_one_completed_run_per_key(records, 6)
    assert_never_two_runs_on_one_device(records)
    # every job waited its 4 s cooldown: the serial sum is >= 24 s; three workers overlap them
    entries = [e for e in journal(plan) if e["status"] == "done"]
    serial_sum = sum(e["seconds"] for e in entries)
    assert len(entries) == 6 and serial_sum >= 24
    assert wall < 0.75 * serial_sum + 10, (wall, serial_sum)
    lab_elapsed = max(e["t"] for e in entries) - min(e["t"] - e["seconds"] for e in entries)
    assert lab_elapsed < 0.6 * serial_sum, (lab_elapsed, serial_sum)
    assert {e["serial"] for e in entries} == {p.serial for p in phones}
    for rec in records:  # the gate's wait is recorded with the run
        assert rec["conditions"]["cooldown_waited_s"] >= 4.0

    # idempotent: everything is done, nothing runs, exit 0
    again = lab("run", plan, models_dir=models_dir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(runs(tmp_path)) == 6
    assert "0 done now, 6 already done, 0 failed" in again.stdout, again.stdout
    status = lab("status", plan, models_dir=models_dir)
    assert status.returncode == 0 and "6 done" in status.stdout, status.stdout
    assert "6 done (skip)" in lab("run", plan, "--dry-run", models_dir=models_dir).stdout


def test_killed_controller_resumes_without_duplicates(loopback_phone_factory, loopback_adb_server, models_dir,
                                                      tmp_path):
    from suite.lab.lock import read_lock

    phones = [loopback_phone_factory("qcom-flagship", charging=False) for _ in range(2)]
    plan = write_plan(tmp_path, loopback_adb_server.port, delay="2s", repetitions=3)
    # 1. SIGTERM (systemd stop) once the first job is done: workers stop their runs cleanly
    proc = start_lab(plan, models_dir)
    wait_for(lambda: any(e["status"] == "done" for e in journal(plan)), what="a first job done")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err[-2000:]
    # 2. SIGKILL (host crash) of the controller alone: its workers notice and stop by themselves
    proc = start_lab(plan, models_dir)
    n_done = len([e for e in journal(plan) if e["status"] == "done"])
    wait_for(lambda: len([e for e in journal(plan) if e["status"] == "done"]) > n_done, what="one more job")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    for p in phones:  # the orphaned workers release their locks: no controller holds the phones
        ref = phone_ref(p)
        wait_for(lambda ref=ref: read_lock(ref.transport()) is None, timeout=60, what="the lock released")
    assert not list((tmp_path / "results").glob(".tmp-*"))
    # 3. run again: only what is left runs, nothing is duplicated, nothing is lost
    r = lab("run", plan, models_dir=models_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    records = runs(tmp_path)
    assert_one_completed_run_per_key(records, 6)
    assert_never_two_runs_on_one_device(records)
    # what was cut short is kept and marked, never counted as done
    assert all(x["outcome"] in ("completed", "interrupted") for x in records)
    statuses = [e["status"] for e in journal(plan)]
    assert statuses.count("done") == 6


def test_a_phone_lost_mid_plan_waits_for_it_while_the_others_finish(loopback_phone_factory, loopback_adb_server,
                                                                     models_dir, tmp_path):
    from suite.loopback.phone import LoopbackPhone

    phones = [loopback_phone_factory("qcom-flagship", charging=False) for _ in range(3)]
    victim = phones[0]
    plan = write_plan(tmp_path, loopback_adb_server.port, delay="3s", repetitions=2, lost_timeout="90s")
    proc = start_lab(plan, models_dir)
    # pull the cable once the victim's first job is in its cooldown wait
    wait_for(lambda: any(victim.serial in line and "cooling" in line for line in _stderr_so_far(proc)),
             what="the victim busy")
    victim.kill()
    # the other two finish their jobs while the victim is away
    wait_for(lambda: len({e["serial"] for e in journal(plan) if e["status"] == "done"} - {victim.serial}) == 2
             and all(len([e for e in journal(plan) if e["serial"] == p.serial and e["status"] == "done"]) == 2
                     for p in phones[1:]), timeout=120, what="the other phones done")
    # plug it back (same serial): its jobs go on
    back = LoopbackPhone("qcom-flagship", adb_server=loopback_adb_server, port=victim.port, charging=False).start()
    try:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, (err + _collected(proc))[-3000:]
        records = runs(tmp_path)
        assert_one_completed_run_per_key(records, 6)
        failed = [e for e in journal(plan) if e["status"] == "failed"]
        assert failed and all(e["serial"] == victim.serial for e in failed)
        assert "lost" in (err + _collected(proc))
    finally:
        back.stop()


def test_a_phone_that_stays_lost_fails_the_plan_and_the_others_finish(loopback_phone_factory, loopback_adb_server,
                                                                       models_dir, tmp_path):
    phones = [loopback_phone_factory("qcom-flagship", charging=False) for _ in range(2)]
    victim = phones[0]
    plan = write_plan(tmp_path, loopback_adb_server.port, delay="2s", repetitions=2, lost_timeout="3s")
    proc = start_lab(plan, models_dir)
    wait_for(lambda: any(victim.serial in line and "cooling" in line for line in _stderr_so_far(proc)),
             what="the victim busy")
    victim.kill()
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err[-2000:]
    done = [e for e in journal(plan) if e["status"] == "done"]
    assert len([e for e in done if e["serial"] == phones[1].serial]) == 2
    assert victim.serial in out and "lost" in out  # the summary names the lost phone
    status = lab("status", plan, models_dir=models_dir)
    assert "pending" in status.stdout or "failed" in status.stdout


def test_two_controllers_never_share_a_phone(loopback_phone_factory, loopback_adb_server, models_dir, tmp_path):
    loopback_phone_factory("qcom-flagship", charging=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_plan(tmp_path / "a", loopback_adb_server.port, name="first", delay="4s", repetitions=2)
    b = write_plan(tmp_path / "b", loopback_adb_server.port, name="second", delay="0s", repetitions=1)
    first = start_lab(a, models_dir)
    wait_for(lambda: any("gate" in line or "cooling" in line or "running" in line for line in _stderr_so_far(first)),
             what="the first controller busy")
    second = lab("run", b, models_dir=models_dir)
    assert second.returncode == 1, second.stderr[-2000:]
    assert "busy" in second.stdout and "locked by" in second.stdout and "first" in second.stdout
    assert runs(tmp_path / "b") == []
    out, err = first.communicate(timeout=180)
    assert first.returncode == 0, err[-2000:]
    assert len(runs(tmp_path / "a")) == 2
    # the phone is free again: the second controller now runs
    assert lab("run", b, models_dir=models_dir).returncode == 0
    assert len(runs(tmp_path / "b")) == 1


def test_documented_cron_and_systemd_commands_are_idempotent(loopback_phone_factory, loopback_adb_server,
                                                             models_dir, tmp_path):
    loopback_phone_factory("qcom-flagship", charging=False)
    doc = (ROOT / "docs" / "lab.md").read_text()
    cron = re.search(r"```crontab\n(.*?)\n```", doc, re.S).group(1)
    line = next(ln for ln in cron.splitlines() if ln.strip() and not ln.startswith("#"))
    command = line.split(None, 5)[5]  # after minute hour day month weekday
    unit = re.search(r"```ini\n# edgebench-lab.service\n(.*?)\n```", doc, re.S).group(1)
    exec_start = next(ln.split("=", 1)[1] for ln in unit.splitlines() if ln.startswith("ExecStart="))
    workdir = next(ln.split("=", 1)[1] for ln in unit.splitlines() if ln.startswith("WorkingDirectory="))
    timer = re.search(r"```ini\n# edgebench-lab.timer\n(.*?)\n```", doc, re.S).group(1)
    assert re.search(r"^OnCalendar=\S+", timer, re.M) and "Persistent=true" in timer
    plan = write_plan(tmp_path, loopback_adb_server.port, name="nightly", delay="0s", repetitions=1)
    exe = shlex.join(EDGEBENCH)
    env = dict(os.environ, EDGEBENCH_CACHE_DIR=str(models_dir.parent))

    def as_here(cmd: str, folder: str) -> str:
        return cmd.replace(folder, str(tmp_path)).replace("/usr/local/bin/edgebench", exe).replace(
            "edgebench lab", f"{exe} lab")

    for cmd, folder in ((command, "/srv/edgebench-lab"), (exec_start, workdir)):
        first = subprocess.run(["sh", "-c", as_here(cmd, folder)], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=300)
        assert first.returncode == 0, (cmd, first.stderr[-2000:])
    assert len(runs(tmp_path)) == 1  # the second scheduled run found the job done
    log = tmp_path / "lab.log"
    assert log.is_file() and "0 done now, 1 already done" in log.read_text()
    assert plan.exists()


_OUTPUT: dict[int, list[str]] = {}


def _stderr_so_far(proc: subprocess.Popen) -> list[str]:
    """Lines the controller printed so far (read without blocking)."""
    import selectors

    buf = _OUTPUT.setdefault(proc.pid, [])
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    while sel.select(timeout=0):
        line = proc.stderr.readline()
        if not line:
            break
        buf.append(line)
    sel.close()
    return buf


def _collected(proc: subprocess.Popen) -> str:
    return "".join(_OUTPUT.get(proc.pid, []))


def test_one_controller_drives_phones_on_two_adb_servers(loopback_phone_factory, loopback_adb_server, models_dir,
                                                         tmp_path):
    from suite.loopback.phone import AdbServer, LoopbackPhone

    here = loopback_phone_factory("qcom-flagship", charging=False)
    with AdbServer() as other_host:  # a second lab host's `adb -a -P PORT server nodaemon`
        there = LoopbackPhone("galaxy-a15", adb_server=other_host, charging=False).start()
        try:
            plan = write_plan(tmp_path, loopback_adb_server.port, delay="0s", repetitions=1)
            text = plan.read_text().replace(f'adb = ["127.0.0.1:{loopback_adb_server.port}"]',
                                            f'adb = ["127.0.0.1:{loopback_adb_server.port}", '
                                            f'"127.0.0.1:{other_host.port}"]')
            plan.write_text(text)
            r = lab("run", plan, models_dir=models_dir)
            assert r.returncode == 0, r.stderr[-3000:]
            records = runs(tmp_path)  # one results folder for both hosts
            assert len(records) == 2 and len({x["device"]["device_id"] for x in records}) == 2
            assert {e["serial"] for e in journal(plan)} == {here.serial, there.serial}
        finally:
            there.stop()
