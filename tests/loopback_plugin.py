"""pytest fixtures for loopback phones.

Register with `pytest_plugins = ["loopback_plugin"]` in
tests/conftest.py (or `-p loopback_plugin`).

A loopback test (marked `loopback` or using these fixtures) that cannot run
here (not root, no bubblewrap/mksh/toybox, no usable cgroups, no adb) SKIPS
with the reason, except when CI=true, where it errors at setup (pytest exits
non-zero): CI must provide what it needs.
"""

from __future__ import annotations

import os

import pytest

from suite.device.select import resolve
from suite.loopback.phone import AdbServer, LoopbackPhone, requirements_problems
from suite.transport import AdbServerAddress


def require_loopback(abi: str | None = None) -> None:
    """Skip (or, under CI=true, fail) when this host cannot run a loopback phone (of `abi`:
    "arm64-v8a" needs qemu-aarch64 registered with binfmt_misc)."""
    problems = requirements_problems(abi)
    if problems:
        msg = "loopback phone unavailable: " + "; ".join(problems)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: loopback tests must run)", pytrace=False)
        pytest.skip(msg)


def phone_ref(phone: LoopbackPhone):
    """edgebench's DeviceRef for a loopback phone, found on its adb server as `--device SERIAL` does."""
    (ref,) = resolve(phone.serial, [AdbServerAddress("127.0.0.1", phone.server.port)])
    return ref


def pytest_runtest_setup(item):
    """Every test marked `loopback` checks the host first, fixture or not."""
    if item.get_closest_marker("loopback") is not None:
        require_loopback()


@pytest.fixture(scope="module")
def loopback_adb_server():
    """One private adb server shared by the phones of a test module."""
    require_loopback()
    with AdbServer() as server:
        yield server


@pytest.fixture
def loopback_phone_factory(loopback_adb_server):
    """Call with LoopbackPhone's keyword arguments; every phone is stopped after the test."""
    phones: list[LoopbackPhone] = []

    def make(profile: str = "galaxy-a15", **kw) -> LoopbackPhone:
        kw.setdefault("adb_server", loopback_adb_server)
        if kw.get("abi"):
            require_loopback(kw["abi"])
        phone = LoopbackPhone(profile, **kw).start()
        phones.append(phone)
        return phone

    yield make
    for p in reversed(phones):
        p.stop()


@pytest.fixture
def loopback_phone(loopback_phone_factory, request):
    """A galaxy-a15 loopback phone (parametrize indirectly with a profile name to change it)."""
    profile = getattr(request, "param", "galaxy-a15")
    return loopback_phone_factory(profile)
