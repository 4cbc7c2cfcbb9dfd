"""The adb transport against a real adb server and a loopback phone (real protocol)."""

import hashlib
import os
import threading
import time

import pytest

from suite.transport import (
    AdbServerAddress,
    AdbTransport,
    DeviceDisconnected,
    DeviceError,
    DeviceNotFound,
    DeviceTimeout,
    list_attached,
    quote,
)
from suite.transport.adb import parse_df_available_kib

pytestmark = pytest.mark.loopback


@pytest.fixture
def phone(loopback_phone_factory):
    return loopback_phone_factory("galaxy-a15")


@pytest.fixture
def transport(phone, loopback_adb_server):
    return AdbTransport(phone.serial, AdbServerAddress("127.0.0.1", loopback_adb_server.port))


def test_list_attached_sees_the_phone(phone, loopback_adb_server):
    found = list_attached([AdbServerAddress("127.0.0.1", loopback_adb_server.port)])
    assert (phone.serial, "device") in [(d.serial, d.state) for d in found]


def test_no_server_is_a_clear_error_and_starts_nothing():
    with pytest.raises(DeviceNotFound, match="no adb server at 127.0.0.1:9"):
        list_attached([AdbServerAddress("127.0.0.1", 9)])


def test_exit_codes_stdout_stderr(transport):
    r = transport.shell(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")
    with pytest.raises(DeviceError) as info:
        transport.shell(["sh", "-c", "exit 4"], check=True)
    assert info.value.exit_code == 4 and info.value.serial == transport.serial


def test_hostile_arguments_stay_inert(transport):
    evil = "a b; touch /data/local/tmp/pwned; $(touch /data/local/tmp/pwned2) `id` 'q' \"d\""
    r = transport.shell(["echo", evil])
    assert r.stdout == evil + "\n"
    assert not transport.exists("/data/local/tmp/pwned")
    assert not transport.exists("/data/local/tmp/pwned2")
    name = "/data/local/tmp/my model; rm -rf x.bin"
    transport.shell(f"echo hi > {quote(name)}", check=True)
    assert transport.shell(["cat", name]).stdout == "hi\n"


def test_stdin_reaches_the_command(transport):
    assert transport.shell("cat", stdin=b"hello\x00bytes").stdout == "hello\x00bytes"


def test_wall_clock_timeout(transport):
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout) as info:
        transport.shell(["sh", "-c", "echo started; sleep 30"], timeout_s=1.0)
    assert time.monotonic() - t0 < 5
    assert "started" in info.value.stdout


def test_stream_yields_lines_as_they_come(transport):
    s = transport.stream("for i in 1 2 3; do echo line$i; sleep 0.3; done; exit 7")
    t0, seen = time.monotonic(), []
    for line in s.lines():
        seen.append((line, time.monotonic() - t0))
    assert [s for s, _ in seen] == ["line1", "line2", "line3"]
    assert seen[0][1] < 0.25 and seen[2][1] > 0.5  # the first line came before the last was written
    assert s.exit_code == 7


def test_push_verifies_and_reports_progress(transport, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 123)
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    seen = []
    res = transport.push(src, "/data/local/tmp/eb/blob.bin", progress=lambda d, t: seen.append((d, t)))
    assert res.bytes == len(data) and seen[-1] == (len(data), len(data))
    assert len(seen) == -(-len(data) // (64 * 1024))  # one callback per 64 KiB DATA record
    remote = transport.shell(["sha256sum", "/data/local/tmp/eb/blob.bin"]).stdout.split()[0]
    assert remote == hashlib.sha256(data).hexdigest()
    back = tmp_path / "back.bin"
    transport.pull("/data/local/tmp/eb/blob.bin", back)
    assert back.read_bytes() == data


def test_pull_of_a_missing_file_raises_and_creates_nothing(transport, tmp_path):
    with pytest.raises(DeviceError, match="no file"):
        transport.pull("/data/local/tmp/none.bin", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_free_bytes(transport):
    free = transport.free_bytes("/data/local/tmp")
    assert 0 < free <= 1 << 30  # the profile's /data is size-limited to 1 GiB


def test_killed_phone_mid_shell_is_a_disconnect_with_partial_output(transport, phone):
    threading.Timer(0.8, phone.kill).start()
    with pytest.raises(DeviceDisconnected) as info:
        transport.shell(["sh", "-c", "echo partial; sleep 30"], timeout_s=20)
    assert info.value.serial == phone.serial


def test_killed_phone_mid_push_is_a_disconnect(transport, phone, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(64 * 1024 * 1024))
    killed = []

    def progress(done, total):
        if done > 8 * 1024 * 1024 and not killed:
            killed.append(done)
            phone.kill()

    with pytest.raises(DeviceDisconnected):
        transport.push(src, "/data/local/tmp/big.bin", progress=progress)


def test_df_parsing_by_hand():
    # toybox df -k on a phone: Available is the 4th column (here 1021312)
    text = ("Filesystem     1K-blocks  Used Available Use% Mounted on\n"
            "tmpfs            1048576 27264   1021312   3% /data\n")
    assert parse_df_available_kib(text) == 1021312
    # a long device name wraps onto its own line (busybox): read from the right
    wrapped = ("Filesystem           1K-blocks      Used Available Use% Mounted on\n"
               "/dev/block/very/long/name\n"
               "                       5000000   1000000   4000000  20% /data\n")
    assert parse_df_available_kib(wrapped) == 4000000
