"""One controller per phone: a lock directory in the device's work dir (issue 7).

`mkdir lab.lock` is atomic on every shell and filesystem, so one controller holds a phone even
against other hosts. `lab.lock/owner` is one line of JSON (token, host, pid, controller, plan,
acquired, heartbeat), times on the device's clock, the one clock all controllers share. Stale:
heartbeat older than `stale_after_s`; or host is this host and pid is gone; or owner unreadable
and the dir older than `garbled_grace_s`. A stale lock is moved aside (`mv` is atomic) only if it
still looks the same in that shell call, then mkdir is retried. Release and heartbeat check the
per-lock `token`, so no lock ever removes another's, even in one process.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from suite.core.errors import EdgebenchError
from suite.device.provision import WORK_DIR
from suite.transport.base import DeviceError, Transport, quote

LOCK_NAME = "lab.lock"
#: identifies this controller process in owner files (`lab status` shows it)
CONTROLLER_ID = uuid.uuid4().hex
_TIMEOUT_S = 15.0
# the device's realtime clock: mksh's $EPOCHREALTIME, else toybox/coreutils `date +%s`
_NOW = 'now=${EPOCHREALTIME:-$(date +%s)}'


class LockHeld(EdgebenchError):
    """Another controller holds the phone; the message names it."""

    exit_code = 6


def lock_path(work_dir: str = WORK_DIR) -> str:
    return f"{work_dir.rstrip('/')}/{LOCK_NAME}"


def _state_script(lock: str) -> str:
    """Prints: held|free, device now, lock dir mtime (or -), then the owner file."""
    q = quote(lock)
    return (f"if [ -d {q} ]; then echo held; else echo free; fi; {_NOW}; echo \"$now\"; "
            f"stat -c %Y {q} 2>/dev/null || echo -; cat {quote(lock + '/owner')} 2>/dev/null; exit 0")


def _parse_state(lines: list[str]) -> dict[str, Any] | None:
    """The holder as `read_lock` returns it; None when free (or gone mid-read)."""
    try:
        if lines[0] != "held":
            return None
        now, mtime = float(lines[1]), float(lines[2])
    except (IndexError, ValueError):  # gone between the test and the stat
        return None
    raw = "\n".join(lines[3:]).rstrip("\n")
    try:
        owner = json.loads(raw)
        if not isinstance(owner, dict) or not isinstance(owner.get("heartbeat"), (int, float)):
            raise ValueError("no heartbeat")
    except ValueError:
        return {"garbled": True, "raw": raw, "mtime": mtime, "device_now": now, "dir_age_s": now - mtime}
    acquired = owner.get("acquired")
    return {**owner, "raw": raw, "mtime": mtime, "device_now": now, "heartbeat_age_s": now - owner["heartbeat"],
            "age_s": now - acquired if isinstance(acquired, (int, float)) else None}


def read_lock(transport: Transport, work_dir: str = WORK_DIR) -> dict[str, Any] | None:
    """Who holds the phone (owner fields plus `heartbeat_age_s`), or None when it is free."""
    r = transport.shell(_state_script(lock_path(work_dir)), timeout_s=_TIMEOUT_S, check=True)
    return _parse_state(r.stdout.splitlines())


def force_unlock(transport: Transport, work_dir: str = WORK_DIR) -> dict[str, Any] | None:
    """Remove the lock whoever holds it (`edgebench lab unlock`); returns the holder it removed."""
    holder, lock = read_lock(transport, work_dir), lock_path(work_dir)
    aside = quote(f"{lock}.stale.{uuid.uuid4().hex}")
    transport.shell(f"if [ -d {quote(lock)} ]; then mv {quote(lock)} {aside} && rm -rf {aside}; fi",
                    timeout_s=_TIMEOUT_S, check=True)
    return holder


def describe(holder: Mapping[str, Any]) -> str:
    """`host X pid N (plan P) since T; heartbeat Ns ago`, in the device's clock."""
    if holder.get("garbled"):
        return f"an unknown controller (owner file unreadable; lock created {holder['dir_age_s']:.0f} s ago)"
    since = holder.get("acquired")
    since_text = (datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
                  if isinstance(since, (int, float)) else "?")
    return (f"host {holder.get('host', '?')} pid {holder.get('pid', '?')} (plan {holder.get('plan') or '-'}) "
            f"since {since_text} device clock; heartbeat {holder['heartbeat_age_s']:.0f} s ago")


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # cannot tell: assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        pass
    return True


class DeviceLock:
    """The lab's hold on one phone. `with lock:` acquires, heartbeats in a thread, releases."""

    def __init__(self, transport: Transport, *, owner: Mapping[str, Any] | None = None,
                 stale_after_s: float = 300.0, heartbeat_s: float = 30.0, garbled_grace_s: float = 30.0,
                 work_dir: str = WORK_DIR) -> None:
        self.transport = transport
        self.token = uuid.uuid4().hex
        owner = dict(owner or {})
        # token first: it is what release and heartbeat look for
        self.info = {"token": self.token, "host": owner.pop("host", socket.gethostname()),
                     "pid": owner.pop("pid", os.getpid()), "controller": owner.pop("controller", CONTROLLER_ID),
                     "plan": owner.pop("plan", None), **owner}
        self.stale_after_s, self.heartbeat_s, self.garbled_grace_s = stale_after_s, heartbeat_s, garbled_grace_s
        self.work_dir, self.path = work_dir, lock_path(work_dir)
        self.held, self.lost = False, False  # lost: a heartbeat found the lock no longer ours
        self.acquired: str | None = None  # device time, as written
        self.broke_stale: dict[str, Any] | None = None  # the previous owner of a stale lock we broke
        self.errors: list[Exception] = []  # heartbeat/release failures in the background, kept not raised
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write_owner(self, acquired: str | None) -> str:
        """Write the owner file through a temp file and rename; `$now` is the heartbeat."""
        head = json.dumps(self.info)[:-1] + ', "acquired": '
        parts = ([quote(head), '"$now"', quote(', "heartbeat": ')] if acquired is None
                 else [quote(f'{head}{acquired}, "heartbeat": ')]) + ['"$now"', quote("}")]
        tmp, owner = quote(self.path + "/owner.tmp"), quote(self.path + "/owner")
        return f"printf '{'%s' * len(parts)}\\n' {' '.join(parts)} > {tmp} && mv -f {tmp} {owner}"

    def _ours(self) -> str:
        return f"grep -qF {quote(json.dumps({'token': self.token})[1:-1])} {quote(self.path + '/owner')} 2>/dev/null"

    def acquire(self, wait_s: float = 0.0, poll_s: float = 1.0) -> None:
        """Take the lock, breaking a stale one; LockHeld when it is still held after `wait_s`."""
        if self.held:
            return
        deadline = time.monotonic() + wait_s
        lock = quote(self.path)
        script = (f"{_NOW}; mkdir -p {quote(self.work_dir)} 2>/dev/null; if mkdir {lock} 2>/dev/null; then "
                  f"{{ {self._write_owner(None)} && echo \"acquired $now\"; }} || {{ rm -rf {lock}; echo failed; }}; "
                  f"else echo busy; {_state_script(self.path)}; fi")
        quick = 0  # retries without sleeping, after a lock vanished or was broken
        while True:
            r = self.transport.shell(script, timeout_s=_TIMEOUT_S, check=True)
            lines = r.stdout.splitlines()
            if lines and lines[0].startswith("acquired "):
                self.acquired = str(float(lines[0].split()[1]))  # the heartbeat rewrites it as written
                self.held, self.lost = True, False
                return
            if not lines or lines[0] != "busy":
                raise DeviceError(f"cannot create the lock {self.path}", serial=self.transport.serial,
                                  command=r.command, stdout=r.stdout, stderr=r.stderr)
            holder = _parse_state(lines[1:])
            reason = self._stale_reason(holder) if holder else None
            if holder is None or (reason and self._break(holder, reason)):
                quick += 1
                if quick <= 5:
                    continue
            if time.monotonic() >= deadline:
                raise LockHeld(
                    f"{self.transport.serial} is locked by {describe(holder)}" if holder
                    else f"{self.transport.serial}: the lock keeps changing hands",
                    hint=f"a lock with no heartbeat for {self.stale_after_s:.0f} s is broken by the next controller; "
                         f"if its controller is gone, remove it now: `edgebench lab unlock {self.transport.serial}`",
                    serial=self.transport.serial, holder=holder)
            time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))

    def _stale_reason(self, holder: Mapping[str, Any]) -> str | None:
        if holder.get("garbled"):
            age = holder["dir_age_s"]
            return f"owner file unreadable, lock {age:.0f} s old" if age > self.garbled_grace_s else None
        if holder["heartbeat_age_s"] > self.stale_after_s:
            return f"no heartbeat for {holder['heartbeat_age_s']:.0f} s"
        if holder.get("host") == socket.gethostname() and not _pid_alive(holder.get("pid")):
            return f"pid {holder['pid']} is gone on this host"
        return None

    def _break(self, holder: dict[str, Any], reason: str) -> bool:
        """Move the lock aside only if it is still the one judged stale (same shell call)."""
        lock, aside = quote(self.path), quote(f"{self.path}.stale.{self.token}")
        same = (f"[ \"$(stat -c %Y {lock} 2>/dev/null)\" = {holder['mtime']:.0f} ]" if holder.get("garbled")
                else f"[ \"$(cat {quote(self.path + '/owner')} 2>/dev/null)\" = {quote(holder['raw'])} ]")
        r = self.transport.shell(f"if {same}; then rm -rf {aside}; mv {lock} {aside} && echo broken; "
                                 f"rm -rf {aside}; fi; exit 0", timeout_s=_TIMEOUT_S, check=True)
        if "broken" not in r.stdout.split():
            return False
        self.broke_stale = {k: v for k, v in holder.items() if k != "raw"} | {"reason": reason}
        return True

    def release(self) -> bool:
        """Remove the lock if the owner file still carries our token; never someone else's."""
        self.stop_heartbeat()
        lock, aside = quote(self.path), quote(f"{self.path}.released.{self.token}")
        r = self.transport.shell(f"if {self._ours()}; then mv {lock} {aside} && rm -rf {aside} && echo released; "
                                 f"fi; exit 0", timeout_s=_TIMEOUT_S, check=True)
        self.held = False
        return "released" in r.stdout.split()

    def heartbeat(self) -> bool:
        """Refresh the heartbeat time; False (and `lost`) when the lock is no longer ours."""
        if not self.held:
            return False
        r = self.transport.shell(f"{_NOW}; if {self._ours()}; then {self._write_owner(self.acquired)} && echo ok; "
                                 f"else echo lost; fi", timeout_s=_TIMEOUT_S, check=True)
        if "lost" in r.stdout.split():
            self.held, self.lost = False, True
        return self.held

    def start_heartbeat(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name=f"lock-{self.transport.serial}", daemon=True)
            self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(_TIMEOUT_S + 5)
        self._thread = None

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self.heartbeat():
                    return
            except Exception as exc:  # a disconnected phone: keep trying, the lab sees `errors`
                self.errors.append(exc)
                del self.errors[:-20]

    def __enter__(self) -> DeviceLock:
        self.acquire()
        self.start_heartbeat()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.release()
        except EdgebenchError as err:  # the phone went away: a lock left behind goes stale
            self.errors.append(err)
