"""`edgebench doctor`: one screen that says whether a phone is ready and what to fix, through the
real CLI and a real adb server, on loopback phones (the arm64 one runs its binaries under qemu)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

EDGEBENCH = [sys.executable, "-m", "suite.cli.main"]


def doctor(phone, *args):
    env = os.environ | {"COLUMNS": "200"}
    return subprocess.run([*EDGEBENCH, "doctor", phone.serial, "--adb", f"127.0.0.1:{phone.server.port}", *args],
                          capture_output=True, text=True, env=env, timeout=3600)


@pytest.mark.loopback
@pytest.mark.timeout(3600)  # builds the arm64 llama-bench when it is not cached (.ci/run builds it first)
def test_a_stock_arm64_phone_that_charges_is_ready_with_a_warning(loopback_phone_factory, loopback_adb_server):
    phone = loopback_phone_factory("galaxy-a15", abi="arm64-v8a", charging=True, data_size_bytes=8 << 30)
    r = doctor(phone, "--json")
    assert r.returncode == 0, r.stderr
    (d,) = json.loads(r.stdout)
    checks = {c["check"]: c for c in d["checks"]}
    assert d["ready"] is True
    assert checks["runtime"]["detail"].startswith("a run uses llama.cpp: ") and "no Python" in checks["runtime"]["detail"]
    assert checks["abi"] == {"check": "abi", "status": "ok", "detail": "arm64-v8a", "fix": None}
    assert checks["cpu"]["detail"].startswith("variant dotprod") and "cpus 6,7 report asimddp" in checks["cpu"]["detail"]
    assert checks["binary"]["status"] == "ok" and "starts on the phone" in checks["binary"]["detail"]
    assert checks["space"]["status"] == "ok"
    assert checks["battery"]["status"] == "warn" and "unavailable" in checks["battery"]["detail"]
    assert "adb tcpip" in checks["battery"]["fix"]
    assert checks["sensors"]["status"] == "ok" and "temp_c/battery" in checks["sensors"]["detail"]
    # the table says the same to a person
    table = doctor(phone)
    assert table.returncode == 0 and "ready" in table.stdout and "fix:" in table.stdout


@pytest.mark.loopback
def test_a_phone_without_room_is_not_ready_and_says_what_to_do(loopback_phone_factory, loopback_adb_server):
    phone = loopback_phone_factory("galaxy-a15", charging=False, data_size_bytes=24 << 20)
    r = doctor(phone, "--json", "--no-build")
    assert r.returncode == 1, r.stderr
    (d,) = json.loads(r.stdout)
    space = next(c for c in d["checks"] if c["check"] == "space")
    assert d["ready"] is False and space["status"] == "fail" and "not even the smallest model fits" in space["detail"]
    assert f"edgebench devices clean {phone.serial}" in space["fix"]
    assert next(c for c in d["checks"] if c["check"] == "battery")["status"] == "ok"


@pytest.mark.loopback
def test_doctor_without_a_phone_or_a_server_is_a_clear_error(loopback_adb_server):
    r = subprocess.run([*EDGEBENCH, "doctor", "--adb", f"127.0.0.1:{loopback_adb_server.port}"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 3 and "no phone attached" in r.stderr and "USB debugging" in r.stderr
    r = subprocess.run([*EDGEBENCH, "doctor", "--adb", "127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no adb server at 127.0.0.1:1" in r.stderr
