"""Provisioning on the loopback phone through the real adb server: manifest cache, truncation,
disk full, hostile names, unplug mid-push, clean."""

import os

import pytest

from suite.core.errors import InsufficientDiskError
from suite.core.filehash import local_sha256
from suite.device.provision import (
    MANIFEST,
    WORK_DIR,
    ProvisionError,
    check_name,
    clean,
    ensure_files,
    read_manifest,
)
from suite.device.settings import prepare, restore
from suite.transport import AdbServerAddress, AdbTransport, DeviceDisconnected

pytestmark = pytest.mark.loopback
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path / "cache"))


def _transport(phone, server):
    return AdbTransport(phone.serial, AdbServerAddress("127.0.0.1", server.port))


@pytest.fixture
def phone(loopback_phone_factory):
    return loopback_phone_factory("galaxy-a15", data_size_bytes=64 * MiB)


@pytest.fixture
def transport(phone, loopback_adb_server):
    return _transport(phone, loopback_adb_server)


def blob(path, n):
    path.write_bytes(os.urandom(n))
    return path


def test_names_are_checked():
    for bad in ("", "/abs", "a/../b", "./a", "a//b", "a\nb", MANIFEST):
        with pytest.raises(ProvisionError):
            check_name(bad)
    assert check_name("models/x y;'z\".onnx") == "models/x y;'z\".onnx"


def test_local_hash_is_cached_by_stat(tmp_path):
    f = blob(tmp_path / "a", 100_000)
    cache = tmp_path / "h.json"
    first = local_sha256(f, cache)
    assert local_sha256(f, cache) == first and cache.exists()
    f.write_bytes(b"other")
    assert local_sha256(f, cache) != first


def test_cache_hit_then_miss_after_truncation_on_the_device(transport, tmp_path):
    files = {"models/m.onnx": blob(tmp_path / "m.onnx", 3 * MiB), "models/genai_config.json": blob(tmp_path / "c", 1000)}
    seen = []
    r1 = ensure_files(transport, files, progress=lambda d, t: seen.append((d, t)))
    assert [f.name for f in r1.pushed] == list(files) and not r1.cached
    assert r1.bytes_pushed == 3 * MiB + 1000 and r1.throughput_bytes_per_s > 0
    assert seen[-1] == (3 * MiB + 1000, 3 * MiB + 1000)
    man = read_manifest(transport)
    assert man["models/m.onnx"]["sha256"] == local_sha256(files["models/m.onnx"])
    r2 = ensure_files(transport, files)
    assert not r2.pushed and [f.why for f in r2.cached] == ["cached", "cached"]
    assert r2.seconds < 1.0
    transport.shell(["truncate", "-s", "1000", f"{WORK_DIR}/models/m.onnx"], check=True)
    r3 = ensure_files(transport, files)
    assert [f.name for f in r3.pushed] == ["models/m.onnx"]
    assert "changed on the device" in r3.pushed[0].why
    assert transport.shell(["sha256sum", f"{WORK_DIR}/models/m.onnx"]).stdout.split()[0] == local_sha256(files["models/m.onnx"])
    # a local change is a miss too
    blob(files["models/genai_config.json"], 1001)
    assert [f.name for f in ensure_files(transport, files).pushed] == ["models/genai_config.json"]


def test_not_enough_space_is_refused_with_numbers_before_pushing(loopback_phone_factory, loopback_adb_server, tmp_path):
    small = loopback_phone_factory("galaxy-a15", data_size_bytes=24 * MiB)
    t = _transport(small, loopback_adb_server)
    big = blob(tmp_path / "big.onnx", 20 * MiB)
    with pytest.raises(InsufficientDiskError) as info:
        ensure_files(t, {"big.onnx": big})
    msg = info.value.message
    assert "20,971,520 bytes" in msg and "free" in msg and info.value.exit_code == 3
    assert info.value.context["free_bytes"] <= 24 * MiB and f"{info.value.context['free_bytes']:,}" in msg
    assert not t.exists(f"{WORK_DIR}/big.onnx")  # nothing pushed


def test_hostile_names_are_quoted_never_executed(transport, tmp_path):
    name = "my model; touch /data/local/tmp/pwned $(touch /data/local/tmp/pwned2) `id` 'q' \"d\".onnx"
    f = blob(tmp_path / "m", 10_000)
    r = ensure_files(transport, {name: f, f"dir with space/{name}": f})
    assert len(r.pushed) == 2
    assert transport.exists(f"{WORK_DIR}/{name}") and transport.exists(f"{WORK_DIR}/dir with space/{name}")
    assert not transport.exists("/data/local/tmp/pwned") and not transport.exists("/data/local/tmp/pwned2")
    assert set(read_manifest(transport)) == {name, f"dir with space/{name}"}
    assert not ensure_files(transport, {name: f}).pushed


def test_unplug_mid_push_leaves_no_claimed_partial_file(phone, transport, tmp_path):
    small = blob(tmp_path / "tok.json", 5000)
    model = blob(tmp_path / "m.onnx", 2 * MiB)
    ensure_files(transport, {"tok.json": small, "m.onnx": model})
    assert set(read_manifest(transport)) == {"tok.json", "m.onnx"}
    blob(model, 24 * MiB)  # a new version of the model

    def unplug(done, total):
        if done > 4 * MiB:
            phone.kill()

    with pytest.raises(DeviceDisconnected) as info:
        ensure_files(transport, {"tok.json": small, "m.onnx": model}, progress=unplug)
    assert info.value.serial == phone.serial
    phone.start_daemon()  # plugged back in
    phone.connect()
    assert set(read_manifest(transport)) == {"tok.json"}  # the old claim went before the push
    r = ensure_files(transport, {"tok.json": small, "m.onnx": model})
    assert [f.name for f in r.pushed] == ["m.onnx"] and [f.name for f in r.cached] == ["tok.json"]


def test_clean_removes_everything_and_respects_a_prepared_phone(transport, tmp_path):
    ensure_files(transport, {"a b/c.bin": blob(tmp_path / "c", 200_000)})
    prepare(transport, steps=["stay_awake"])
    with pytest.raises(ProvisionError, match="prepared"):
        clean(transport)
    restore(transport)
    rep = clean(transport)
    assert rep.existed and rep.bytes_removed >= 200_000
    assert not transport.exists(WORK_DIR)
    assert not clean(transport).existed
