"""The per-phone lab lock on a loopback phone through the real adb server: held, released,
stale (old heartbeat, dead pid, garbled owner), races between threads and between processes."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from suite.device.provision import WORK_DIR
from suite.lab.lock import DeviceLock, LockHeld, force_unlock, lock_path, read_lock
from suite.transport import AdbServerAddress, AdbTransport, quote

pytestmark = pytest.mark.loopback
LOCK = lock_path(WORK_DIR)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def phone(loopback_phone_factory):
    return loopback_phone_factory("galaxy-a15", data_size_bytes=16 << 20)


@pytest.fixture
def connect(phone, loopback_adb_server):
    """A new transport to the phone (each controller gets its own, as on two hosts)."""
    return lambda: AdbTransport(phone.serial, AdbServerAddress("127.0.0.1", loopback_adb_server.port))


def other(transport, **kw):
    """A controller on another host: its pid means nothing here."""
    return DeviceLock(transport, owner={"host": "lab-host-2", "pid": 4242, "plan": "other plan"}, **kw)


def rewrite_owner(transport, **changes):
    holder = read_lock(transport)
    owner = json.loads(holder["raw"]) | changes
    transport.shell(f"printf '%s\\n' {quote(json.dumps(owner))} > {quote(LOCK + '/owner')}", check=True)
    return holder


def test_a_second_controller_is_refused_with_the_holder_named_until_release(connect):
    t = connect()
    mine = DeviceLock(t, owner={"plan": "nightly; $(reboot) 'q'"})
    mine.acquire()
    theirs = other(connect())
    with pytest.raises(LockHeld) as exc:
        theirs.acquire()
    err = exc.value
    assert err.exit_code == 6 and err.context["holder"]["token"] == mine.token
    assert f"locked by host {mine.info['host']} pid {mine.info['pid']} (plan nightly; $(reboot) 'q') since" in err.message
    assert "heartbeat 0 s ago" in err.message and f"edgebench lab unlock {t.serial}" in err.hint
    assert theirs.release() is False and read_lock(t)["token"] == mine.token  # not theirs to remove
    assert mine.release() is True and read_lock(t) is None
    theirs.acquire()
    assert theirs.held and read_lock(t)["host"] == "lab-host-2" and theirs.broke_stale is None


def test_acquire_waits_for_the_holder_to_release(connect):
    holder = other(connect())
    holder.acquire()
    threading.Timer(0.4, holder.release).start()
    waiter = DeviceLock(connect())
    start = time.monotonic()
    waiter.acquire(wait_s=10, poll_s=0.1)
    assert 0.3 < time.monotonic() - start < 3 and waiter.broke_stale is None


def test_a_lock_whose_heartbeat_is_old_is_broken(connect):
    t = connect()
    old = other(connect())
    old.acquire()
    before = rewrite_owner(t, heartbeat=read_lock(t)["device_now"] - 400)
    mine = DeviceLock(t, stale_after_s=300)
    mine.acquire()
    assert mine.broke_stale["token"] == old.token and mine.broke_stale["reason"].startswith("no heartbeat for 40")
    assert mine.broke_stale["acquired"] == before["acquired"]
    # the old holder finds out at its next heartbeat and cannot remove the new lock
    assert old.heartbeat() is False and old.lost and not old.held
    assert old.release() is False and read_lock(t)["token"] == mine.token


def test_a_lock_whose_pid_is_gone_on_this_host_is_broken(connect):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    DeviceLock(connect(), owner={"pid": pid, "plan": "killed"}).acquire()
    mine = DeviceLock(connect())
    mine.acquire()
    assert mine.broke_stale["pid"] == pid and mine.broke_stale["reason"] == f"pid {pid} is gone on this host"


@pytest.mark.parametrize("content", ["garbage{\n", None])
def test_an_unreadable_owner_is_held_within_the_grace_then_broken(connect, content):
    t = connect()
    write = f"printf '%s' {quote(content)} > {quote(LOCK + '/owner')}" if content else "true"
    t.shell(f"mkdir -p {quote(LOCK)} && {write}", check=True)
    mine = DeviceLock(t, garbled_grace_s=30)
    with pytest.raises(LockHeld, match="unknown controller"):
        mine.acquire()
    t.shell(f'touch -d "@$(( $(date +%s) - 60 ))" {quote(LOCK)}', check=True)
    mine.acquire()
    assert mine.broke_stale["garbled"] and mine.broke_stale["reason"].startswith("owner file unreadable")
    assert read_lock(t)["token"] == mine.token


def race(locks):
    barrier = threading.Barrier(len(locks))
    outcome = {}

    def go(lock):
        barrier.wait()
        try:
            lock.acquire()
            outcome[lock.token] = "won"
        except LockHeld:
            outcome[lock.token] = "held"

    threads = [threading.Thread(target=go, args=(lk,)) for lk in locks]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    return [lk for lk in locks if outcome[lk.token] == "won"]


def test_two_threads_racing_for_a_free_lock_one_wins(connect):
    t = connect()
    for _ in range(5):
        winners = race([DeviceLock(connect()), other(connect())])
        assert len(winners) == 1 and read_lock(t)["token"] == winners[0].token
        assert winners[0].release()


def test_two_threads_racing_to_break_a_stale_lock_one_wins(connect):
    t = connect()
    for _ in range(3):
        other(connect()).acquire()
        rewrite_owner(t, heartbeat=0)
        locks = [DeviceLock(connect()), other(connect())]
        winners = race(locks)
        assert len(winners) == 1 and read_lock(t)["token"] == winners[0].token
        assert sum(lk.broke_stale is not None for lk in locks) == 1
        assert winners[0].release()


def test_the_heartbeat_thread_refreshes_and_survives_a_disconnect(phone, connect):
    t = connect()
    with DeviceLock(t, heartbeat_s=0.1) as lock:
        time.sleep(0.5)
        holder = read_lock(t)
        assert holder["heartbeat"] > holder["acquired"] and holder["heartbeat_age_s"] < 1.0
        assert not lock.errors
    assert read_lock(t) is None and not lock.held

    lock = DeviceLock(t, heartbeat_s=0.05)
    lock.__enter__()
    phone.kill()  # the cable is pulled
    time.sleep(0.5)
    assert lock.errors and lock._thread.is_alive() and lock.held
    seen = len(lock.errors)
    lock.__exit__(None, None, None)  # release fails on a gone phone: recorded, not raised
    assert len(lock.errors) > seen and lock._thread is None


def test_force_unlock_removes_any_holder(connect):
    t = connect()
    holder = other(connect())
    holder.acquire()
    assert force_unlock(t)["token"] == holder.token and read_lock(t) is None
    assert force_unlock(t) is None


CONTENDER = """
import os, sys, time
from suite.lab.lock import DeviceLock, LockHeld
from suite.transport import AdbServerAddress, AdbTransport
serial, port, go = sys.argv[1:]
lock = DeviceLock(AdbTransport(serial, AdbServerAddress("127.0.0.1", int(port))), owner={"plan": "proc"})
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.002)
try:
    lock.acquire()
except LockHeld:
    print("held", flush=True)
    sys.exit(0)
print("won", lock.token, flush=True)
time.sleep(1.0)
lock.release()
"""


def test_two_processes_contending_one_holds(phone, connect, loopback_adb_server, tmp_path):
    go = tmp_path / "go"
    args = [sys.executable, "-c", CONTENDER, phone.serial, str(loopback_adb_server.port), str(go)]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    go.touch()
    firsts = [p.stdout.readline().split() for p in procs]
    outcomes = sorted(f[0] for f in firsts)
    assert outcomes == ["held", "won"]
    winner = next(f[1] for f in firsts if f[0] == "won")
    assert read_lock(connect())["token"] == winner
    for p in procs:
        assert p.wait(20) == 0
    assert read_lock(connect()) is None


def test_devices_clean_leaves_a_locked_phone_alone_unless_forced(phone, connect, loopback_adb_server):
    t = connect()
    held = other(t)
    held.acquire()
    cmd = [sys.executable, "-m", "suite.cli.main", "devices", "clean", phone.serial, "--adb",
           f"127.0.0.1:{loopback_adb_server.port}"]
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 6, refused.stderr
    said = " ".join(refused.stderr.split())  # rich wraps long lines
    assert "in use by a lab controller: host lab-host-2 pid 4242 (plan other plan)" in said
    assert f"edgebench lab unlock {phone.serial}" in said
    assert read_lock(t)["token"] == held.token  # nothing removed
    forced = subprocess.run([*cmd, "--force"], capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0, forced.stderr
    assert read_lock(t) is None
