"""Command-line helpers behind `edgebench loopback start|stop|list` (and
`python -m suite.loopback`): detached loopback phones for demos and for
anyone without a phone.

A started phone keeps running after the command returns; its record (PIDs,
ports, state folder) is kept in $EDGEBENCH_LOOPBACK_HOME (default
/tmp/edgebench-loopback-registry) so `stop` can tear it down by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from .phone import AdbServer, LoopbackPhone, LoopbackUnavailable
from .profile import list_profiles, remove_state


def registry_dir() -> Path:
    d = Path(os.environ.get("EDGEBENCH_LOOPBACK_HOME", "/tmp/edgebench-loopback-registry"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def start(profile: str = "galaxy-a15", *, adb_port: int = 5037, time_scale: float = 1.0,
          ram_bytes: int | None = None, charging: bool | None = None, abi: str | None = None,
          storage: str = "tmpfs") -> dict:
    """Start a detached phone attached to the adb server on adb_port (started if absent)."""
    server = AdbServer(port=adb_port, detached=True)
    own_server = False
    # probe with a plain socket: adbutils would auto-start a server on 5037 instead
    try:
        socket.create_connection(("127.0.0.1", adb_port), timeout=1).close()
    except OSError:
        server.start()
        own_server = True
        (registry_dir() / f"adb-{adb_port}.server").write_text(json.dumps(
            {"pid": server.proc.pid, "home": str(server.home)}))
    phone = LoopbackPhone(profile, adb_server=server, time_scale=time_scale, ram_bytes=ram_bytes,
                          charging=charging, detached=True, abi=abi, storage=storage).start()
    rec = {"serial": phone.serial, "profile": profile, "abi": abi or "x86_64", "port": phone.port,
           "adb_port": server.port,
           "daemon_pid": phone.daemon.pid, "state_dir": str(phone.state_dir),
           "started": time.time()}
    (registry_dir() / f"{phone.port}.json").write_text(json.dumps(rec, indent=1))
    return rec


def _kill(pid: int | None) -> None:
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(60):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def records() -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted(registry_dir().glob("*.json"))]


def stop(serial: str | None = None) -> list[str]:
    """Stop one phone (by serial) or all; returns the serials stopped."""
    stopped = []
    for rec in records():
        if serial and rec["serial"] != serial:
            continue
        _kill(rec["daemon_pid"])
        remove_state(Path(rec["state_dir"]))
        (registry_dir() / f"{rec['port']}.json").unlink(missing_ok=True)
        stopped.append(rec["serial"])
        srv = registry_dir() / f"adb-{rec['adb_port']}.server"
        if srv.exists() and not any(r["adb_port"] == rec["adb_port"] for r in records()):
            # the adb server we started for these phones: stop it by PID
            info = json.loads(srv.read_text())
            _kill(info["pid"])
            shutil.rmtree(info["home"], ignore_errors=True)
            srv.unlink()
    return stopped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m suite.loopback",
                                 description="Loopback phones: ADB devices on 127.0.0.1")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start a phone and print its serial")
    s.add_argument("--profile", default="galaxy-a15", choices=list_profiles())
    s.add_argument("--adb-port", type=int, default=5037, help="adb server port (default 5037)")
    s.add_argument("--time-scale", type=float, default=1.0, help="phone seconds per real second")
    s.add_argument("--ram-bytes", type=int, default=None, help="memory limit (default: profile RAM)")
    s.add_argument("--charging", choices=["on", "off"], default=None)
    s.add_argument("--storage", choices=["tmpfs", "disk"], default="tmpfs",
                   help="/data/local/tmp in memory (tmpfs, size-limited) or on this host's disk (a mapped model "
                        "larger than --ram-bytes is then read from storage as it runs)")
    t = sub.add_parser("stop", help="stop a phone (default: all)")
    t.add_argument("serial", nargs="?")
    sub.add_parser("list", help="list running phones")
    sub.add_parser("profiles", help="list profiles")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "start":
            rec = start(a.profile, adb_port=a.adb_port, time_scale=a.time_scale, ram_bytes=a.ram_bytes,
                        charging=None if a.charging is None else a.charging == "on", storage=a.storage)
            print(rec["serial"])
        elif a.cmd == "stop":
            for sn in stop(a.serial):
                print(f"stopped {sn}")
        elif a.cmd == "list":
            for rec in records():
                print(f"{rec['serial']}\t{rec['profile']}\tadb:{rec['adb_port']}\tpid:{rec['daemon_pid']}")
        else:
            print("\n".join(list_profiles()))
    except LoopbackUnavailable as e:
        print(f"loopback phone unavailable: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
