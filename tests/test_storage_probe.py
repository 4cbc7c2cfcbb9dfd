"""The native storage read-bandwidth probe (suite/runtimes/build/probes/storage.c) and
suite.session.storage, with real parts only: zig builds, the probe run on this host and on the
loopback phones through the real adb transport (arm64 under qemu), real filesystems (a tmpfs
that cannot evict, the host's disk that can, a tmpfs too small to measure in), real df output.
No figure is compared with a speed: the machine is shared."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from suite.core.errors import EdgebenchError, InsufficientDiskError
from suite.device.elf import elf_machine
from suite.runtimes.build.probes import ensure_probes
from suite.runtimes.build.variants import ARM64, X86_64
from suite.session import storage
from suite.session.device import probe_command, probe_json
from suite.transport import AdbServerAddress, AdbTransport
from suite.transport.adb import parse_df_available_kib

MiB = 1 << 20
PROBES = "/data/local/tmp/edgebench/probes"
TMPFS_DIR = "/data/local/tmp/edgebench"  # the loopback phone's /data/local/tmp is a tmpfs
DISK_DIR = "/data/media/0/edgebench"  # its /data (and /sdcard) is this host's disk: eviction works


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        msg = f"{what} needs root (mount)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: this test must run)", pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def x86_probes():
    return ensure_probes(X86_64, "x86-64-v2")


def _transport(phone, server) -> AdbTransport:
    return AdbTransport(phone.serial, AdbServerAddress("127.0.0.1", server.port))


def _push_storage_probe(transport, built) -> None:
    transport.shell(f"mkdir -p {PROBES}/bin", check=True)
    transport.push(built.binary("storage"), f"{PROBES}/bin/edgebench-storage", mode=0o755)


def _leftovers(transport, folder: str) -> list[str]:
    return [n for n in transport.shell(["ls", "-a", folder]).stdout.split() if n.startswith(".edgebench-storage")]


def _check_probe_json(data: dict, nbytes: int) -> None:
    assert data["probe"] == "storage" and "error" not in data, data
    assert data["bytes"] == nbytes and isinstance(data["direct"], bool)
    for field in ("seq_bytes_per_s", "rand4k_bytes_per_s", "rand4k_iops", "write_bytes_per_s"):
        # %.6g: a figure with no fraction in 6 digits (17606) reads back as an int
        assert type(data[field]) in (int, float) and math.isfinite(data[field]) and data[field] > 0, field
    assert 0 < data["seq_bytes_read"] <= nbytes and 0 < data["rand4k_reads"] <= nbytes // 4096
    assert data["block_size"]["seq"] == MiB and data["block_size"]["rand4k"] == 4096
    assert set(data["resident_fraction_before"]) == {"seq", "rand4k"}
    assert set(data["seconds"]) == {"write", "seq", "rand4k"}


# --- the build --------------------------------------------------------------------------------


def test_the_storage_probe_builds_with_the_others_for_x86_64_and_arm64(x86_probes):
    arm = ensure_probes(ARM64, "armv8.0")
    for built, abi in ((x86_probes, X86_64), (arm, ARM64)):
        assert built.intact() and set(built.manifest["sha256"]) == {"membw", "peak", "storage"}
        assert "bin/edgebench-storage" in built.files()
        assert elf_machine(built.binary("storage")) == abi


# --- the probe on this host: the C side's promises -------------------------------------------------


def test_on_the_host_s_disk_the_cache_is_evicted_and_the_file_removed(x86_probes, tmp_path):
    r = subprocess.run([str(x86_probes.binary("storage")), str(tmp_path), str(64 * MiB + 123), "0.3"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    _check_probe_json(data, 64 * MiB)  # rounded down to whole MiB
    # a disk-backed filesystem: what was written was cached, and fadvise dropped it before each test
    assert data["resident_fraction_after_write"] > 0.5
    assert data["resident_fraction_before"] == {"seq": 0.0, "rand4k": 0.0}
    assert list(tmp_path.iterdir()) == []


def test_errors_are_one_json_line_and_a_non_zero_exit(x86_probes, tmp_path):
    binary = str(x86_probes.binary("storage"))
    r = subprocess.run([binary, str(tmp_path / "missing"), str(64 * MiB)], capture_output=True, text=True)
    assert r.returncode == 1
    err = json.loads(r.stdout)
    assert err["probe"] == "storage" and err["error"].startswith("cannot create the test file")
    r = subprocess.run([binary, str(tmp_path), "1000"], capture_output=True, text=True)
    assert r.returncode == 2 and "at least 1 MiB" in json.loads(r.stdout)["error"]


def test_sigterm_mid_write_removes_the_file(x86_probes, tmp_path):
    proc = subprocess.Popen([str(x86_probes.binary("storage")), str(tmp_path), str(4096 * MiB), "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(tmp_path.iterdir()), "the probe never created its file"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp_path.iterdir()) == []


# --- df -k as GNU coreutils and toybox print it ------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 64 MiB tmpfs under a long name, 5 MB of it used (mounted as root)."""
    _require_root("a tmpfs of known size")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "edgebench-test-filesystem-with-a-long-name",
                    str(mnt)], check=True)
    try:
        (mnt / "used.bin").write_bytes(os.urandom(5_000_000))
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("df", [["df", "-k"], ["toybox", "df", "-k"]], ids=["coreutils", "toybox"])
def test_df_k_outputs_parse_to_the_available_space(small_tmpfs, df):
    if shutil.which(df[0]) is None:
        msg = f"{df[0]} is not installed (Debian package {'toybox' if df[0] == 'toybox' else 'coreutils'})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    text = subprocess.run([*df, str(small_tmpfs)], capture_output=True, text=True, check=True).stdout
    st = os.statvfs(small_tmpfs)
    assert parse_df_available_kib(text) == st.f_bavail * st.f_frsize // 1024
    assert 55_000 < parse_df_available_kib(text) < 65_536  # 64 MiB less the 5 MB written


# --- suite.session.storage on the loopback phones --------------------------------------------------


def test_the_file_size_follows_the_free_space():
    assert storage.file_bytes_for(100 << 30) == 2 << 30
    assert storage.file_bytes_for(1 << 30) == 256 * MiB
    assert storage.file_bytes_for(300 * MiB + 5) == 75 * MiB
    assert storage.file_bytes_for(255 * MiB) is None


@pytest.mark.loopback
def test_the_probe_through_adb_on_the_x86_64_loopback_phone(loopback_phone_factory, loopback_adb_server,
                                                            x86_probes, tmp_path):
    t = _transport(loopback_phone_factory("galaxy-a15"), loopback_adb_server)
    _push_storage_probe(t, x86_probes)
    # the probe's own promises, through the real shell: one JSON line, its file gone
    t.shell(f"mkdir -p {DISK_DIR}", check=True)
    data = probe_json(t, probe_command(PROBES, "storage", [DISK_DIR, str(32 * MiB), "0.3"], None), "storage")
    _check_probe_json(data, 32 * MiB)
    assert data["resident_fraction_before"] == {"seq": 0.0, "rand4k": 0.0}
    assert _leftovers(t, DISK_DIR) == []

    # on the host's disk (through the sandbox, as uid 2000): the figures, and how they were measured
    said: list[str] = []
    res = storage.storage_bandwidth(t, PROBES, x86_probes.manifest["key"], DISK_DIR, said.append,
                                    cache_dir=tmp_path, seconds_per_test=0.3, max_file_bytes=64 * MiB)
    for metric in (storage.SEQ_METRIC, storage.RAND4K_METRIC, "rand4k_iops"):
        assert math.isfinite(res[metric]) and res[metric] > 0
    assert res["evicted"] is True and res["unavailable"] == {} and res["cached"] is False
    assert res["bytes"] == 64 * MiB and res["free_bytes"] > 256 * MiB
    assert res["method"].startswith("on-device: edgebench-storage, 64 MiB file, ") and "page cache evicted" in res["method"]
    assert res["serial"] == t.serial and res["probe"]["probe"] == "storage"
    assert any("measuring storage read bandwidth" in m for m in said)
    assert _leftovers(t, DISK_DIR) == []

    # on the 1 GiB tmpfs, default sizing: a quarter of it; the cache cannot be evicted there, so the
    # metrics are None with the reason, and the page-cache figures stay in the probe's JSON
    res = storage.storage_bandwidth(t, PROBES, x86_probes.manifest["key"], TMPFS_DIR, cache_dir=tmp_path,
                                    seconds_per_test=0.3)
    assert res["bytes"] == storage.file_bytes_for(res["free_bytes"]) and res["bytes"] >= 200 * MiB
    assert res["evicted"] is False and res[storage.SEQ_METRIC] is None and res[storage.RAND4K_METRIC] is None
    assert "cannot evict" in res["unavailable"][storage.SEQ_METRIC]
    assert "page cache NOT evicted" in res["method"]
    assert res["probe"]["seq_bytes_per_s"] > 0 and res["probe"]["resident_fraction_before"]["seq"] > 0.9
    assert _leftovers(t, TMPFS_DIR) == []


@pytest.mark.loopback
def test_too_little_free_space_is_refused_before_writing(loopback_phone_factory, loopback_adb_server,
                                                         x86_probes, tmp_path):
    phone = loopback_phone_factory("galaxy-a15", data_size_bytes=200 * MiB)  # a real 200 MiB tmpfs
    t = _transport(phone, loopback_adb_server)
    _push_storage_probe(t, x86_probes)
    free = t.free_bytes(TMPFS_DIR)
    with pytest.raises(InsufficientDiskError) as info:
        storage.storage_bandwidth(t, PROBES, x86_probes.manifest["key"], TMPFS_DIR, cache_dir=tmp_path)
    err = info.value
    assert err.context["free_bytes"] == free and err.context["needed_bytes"] == 256 * MiB
    assert f"{free:,} bytes free" in err.message and f"{256 * MiB:,} needed" in err.message
    assert t.free_bytes(TMPFS_DIR) == free and _leftovers(t, TMPFS_DIR) == []  # nothing was written
    assert list(tmp_path.iterdir()) == []  # and nothing cached


@pytest.mark.loopback
def test_a_second_call_reads_the_cache_and_refresh_measures_again(loopback_phone_factory, loopback_adb_server,
                                                                   x86_probes, tmp_path):
    t = _transport(loopback_phone_factory("galaxy-a15"), loopback_adb_server)
    _push_storage_probe(t, x86_probes)
    key = x86_probes.manifest["key"]
    kw = dict(cache_dir=tmp_path, seconds_per_test=0.2, max_file_bytes=64 * MiB)
    first = storage.storage_bandwidth(t, PROBES, key, DISK_DIR, **kw)
    assert first["cached"] is False
    # without the probe on the device, a second call can only be answered from the cache
    t.shell(f"rm -f {PROBES}/bin/edgebench-storage", check=True)
    said: list[str] = []
    second = storage.storage_bandwidth(t, PROBES, key, DISK_DIR, said.append, **kw)
    assert second["cached"] is True and said == []
    assert {k: v for k, v in second.items() if k != "cached"} == {k: v for k, v in first.items() if k != "cached"}
    # other limits or another folder are another measurement; refresh runs the probe (absent: it fails)
    assert storage.cache_file(t.serial, key, DISK_DIR, tmp_path) != storage.cache_file(t.serial, key, TMPFS_DIR,
                                                                                       tmp_path)
    with pytest.raises(EdgebenchError, match="storage probe gave no result"):
        storage.storage_bandwidth(t, PROBES, key, DISK_DIR, refresh=True, **kw)
    _push_storage_probe(t, x86_probes)
    third = storage.storage_bandwidth(t, PROBES, key, DISK_DIR, refresh=True, **kw)
    assert third["cached"] is False and third["measured_at"] >= first["measured_at"]
    assert [p.name for p in tmp_path.iterdir()] == [storage.cache_file(t.serial, key, DISK_DIR, tmp_path,
                                                                        seconds_per_test=0.2,
                                                                        max_file_bytes=64 * MiB).name]


@pytest.mark.loopback
@pytest.mark.timeout(1800)
def test_the_arm64_probe_on_an_arm64_loopback_phone_under_emulation(loopback_phone_factory, loopback_adb_server,
                                                                    tmp_path):
    """The arm64 bytes a phone would run, through adb, under qemu-aarch64: the figures exist and the
    file is gone; under emulation they mean nothing as speeds."""
    arm = ensure_probes(ARM64, "armv8.0")
    t = _transport(loopback_phone_factory("galaxy-a15", abi="arm64-v8a", charging=False), loopback_adb_server)
    _push_storage_probe(t, arm)
    res = storage.storage_bandwidth(t, PROBES, arm.manifest["key"], DISK_DIR, cache_dir=tmp_path,
                                    seconds_per_test=0.3, max_file_bytes=64 * MiB)
    assert res["evicted"] is True and res[storage.SEQ_METRIC] > 0 and res[storage.RAND4K_METRIC] > 0
    assert _leftovers(t, DISK_DIR) == []


def test_the_cache_file_name_is_safe_for_any_serial(tmp_path):
    p = storage.cache_file("127.0.0.1:5555/../x", "abc", "/data/local/tmp", tmp_path)
    assert p.parent == tmp_path and "/" not in p.name and p.name.startswith("127.0.0.1_5555_.._x-abc-")
    assert Path(p).suffix == ".json"
