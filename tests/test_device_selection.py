"""Device selection (`local`, serial, `all`, tier=/soc= filters) across adb servers, and its errors."""

import json

import pytest
from typer.testing import CliRunner

from suite.cli.devices import devices_app
from suite.core.errors import EdgebenchError, UnknownNameError
from suite.device.select import DeviceRef, DeviceUnavailable, parse_filters, parse_servers, resolve, resolve_one
from suite.loopback import AdbServer, LoopbackPhone
from suite.transport import TRANSPORTS, AdbServerAddress, AdbTransport, DeviceNotFound, LocalTransport


@pytest.fixture(autouse=True)
def _salt(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEBENCH_LAB_SALT", "test-salt")


def _addr(server) -> AdbServerAddress:
    return AdbServerAddress("127.0.0.1", server.port)


def test_parsing():
    assert parse_filters("tier=entry, soc=SM8650") == {"tier": "entry", "soc": "SM8650"}
    assert parse_filters("R5CT12345") is None
    with pytest.raises(EdgebenchError, match="bad device filter"):
        parse_filters("ram=8G")
    assert parse_servers(None) == [AdbServerAddress("127.0.0.1", 5037)]
    assert parse_servers(["10.0.0.5:5038", "h", "10.0.0.5:5038"]) == [
        AdbServerAddress("10.0.0.5", 5038), AdbServerAddress("h", 5037)]


def test_local_needs_no_adb_server():
    (ref,) = resolve("local", [AdbServerAddress("127.0.0.1", 9)])
    assert ref.kind == "local" and ref.transport().kind == "local"
    assert ref.info().transport == "local"


def test_a_ref_gets_the_transport_its_kind_registers():
    assert TRANSPORTS.names() == ["adb", "local"]
    assert (TRANSPORTS.get("adb"), TRANSPORTS.get("local")) == (AdbTransport, LocalTransport)
    server = AdbServerAddress("127.0.0.1", 9)  # building an adb transport connects to nothing
    for kind in TRANSPORTS:
        t = DeviceRef("R5CT1", kind, server).transport()
        assert type(t) is TRANSPORTS.get(kind) and t.kind == kind
    t = DeviceRef("R5CT1", "adb", server).transport()
    assert (t.serial, t.server) == ("R5CT1", server)
    with pytest.raises(UnknownNameError, match="unknown transport 'ssh'; known: adb, local"):
        DeviceRef("host1", "ssh").transport()


def test_unauthorized_and_offline_states_say_what_to_do():
    s = AdbServerAddress()
    devs = [DeviceRef("R5CT1", "adb", s, "unauthorized"), DeviceRef("R5CT2", "adb", s, "offline")]
    with pytest.raises(DeviceUnavailable) as info:
        resolve("R5CT1", [s], attached_devices=devs)
    assert "unauthorized" in info.value.message and "RSA" in info.value.hint
    with pytest.raises(DeviceUnavailable) as info:
        resolve("R5CT2", [s], attached_devices=devs)
    assert "offline" in info.value.message and "replug" in info.value.hint
    with pytest.raises(DeviceUnavailable, match="no usable phone: R5CT1 \\(unauthorized\\), R5CT2 \\(offline\\)"):
        resolve("all", [s], attached_devices=devs)


@pytest.fixture
def two_phones(loopback_phone_factory):
    return loopback_phone_factory("galaxy-a15"), loopback_phone_factory("pixel-tensor")


@pytest.mark.loopback
def test_serial_all_and_filters(two_phones, loopback_adb_server):
    a15, pixel = two_phones
    servers = [_addr(loopback_adb_server)]
    (ref,) = resolve(a15.serial, servers)
    assert ref.serial == a15.serial and ref.ready
    assert ref.info().soc_model == "MT6789" and ref.info() is ref.info()  # read once
    assert {r.serial for r in resolve("all", servers)} == {a15.serial, pixel.serial}
    assert [r.serial for r in resolve("tier=entry", servers)] == [a15.serial]
    assert [r.serial for r in resolve("soc=mt6789", servers)] == [a15.serial]
    assert [r.serial for r in resolve("soc=Helio G99,tier=entry", servers)] == [a15.serial]
    assert [r.serial for r in resolve("soc=zuma", servers)] == [pixel.serial]  # codename of Tensor G3
    with pytest.raises(DeviceNotFound, match="no attached phone matches 'soc=SM8650'") as info:
        resolve("soc=SM8650", servers)
    assert a15.serial in info.value.hint and "MT6789" in info.value.hint
    with pytest.raises(EdgebenchError, match="unknown tier"):
        resolve("tier=huge", servers)
    with pytest.raises(EdgebenchError, match="names 2 devices"):
        resolve_one("all", servers)


@pytest.mark.loopback
def test_serial_not_found_lists_the_attached_ones(two_phones, loopback_adb_server):
    a15, pixel = two_phones
    with pytest.raises(DeviceNotFound) as info:
        resolve("R5CT999", [_addr(loopback_adb_server)])
    assert "R5CT999" in info.value.message
    assert f"{a15.serial} (device)" in info.value.hint and f"{pixel.serial} (device)" in info.value.hint


@pytest.mark.loopback
def test_no_device_attached_and_no_server():
    with AdbServer() as empty:
        with pytest.raises(DeviceNotFound, match="no phone attached") as info:
            resolve("all", [_addr(empty)])
        assert "adb connect" in info.value.hint
        with pytest.raises(DeviceNotFound, match="no phone attached"):
            resolve("R5CT1", [_addr(empty)])
    with pytest.raises(DeviceNotFound, match="no adb server at 127.0.0.1:9"):
        resolve("all", [AdbServerAddress("127.0.0.1", 9)])


@pytest.mark.loopback
def test_unplugged_phone_is_offline(loopback_phone_factory, loopback_adb_server):
    phone = loopback_phone_factory("galaxy-a15")
    phone.kill()
    with pytest.raises(DeviceUnavailable, match="offline"):
        resolve(phone.serial, [_addr(loopback_adb_server)])
    r = CliRunner().invoke(devices_app, ["--adb", f"127.0.0.1:{loopback_adb_server.port}", "--json"])
    (row,) = [x for x in json.loads(r.stdout) if x.get("serial") == phone.serial]
    assert row["state"] == "offline" and "replug" in row["hint"]


@pytest.mark.loopback
def test_phones_on_several_adb_servers(loopback_phone_factory, loopback_adb_server):
    here = loopback_phone_factory("galaxy-a15")
    with AdbServer() as other_server, LoopbackPhone("qcom-flagship", adb_server=other_server) as there:
        servers = [_addr(loopback_adb_server), _addr(other_server)]
        refs = resolve("all", servers)
        assert {(r.serial, r.server) for r in refs} == {(here.serial, servers[0]), (there.serial, servers[1])}
        assert resolve(there.serial, servers)[0].server == servers[1]
        r = CliRunner().invoke(devices_app, ["--adb", str(servers[0]), "--adb", str(servers[1]), "--json"])
        assert r.exit_code == 0, r.output
        rows = {x["serial"]: x for x in json.loads(r.stdout)[1:]}
        assert rows[here.serial]["tier"] == "entry" and rows[here.serial]["adb_server"] == str(servers[0])
        assert rows[there.serial]["adb_server"] == str(servers[1]) and rows[there.serial]["simulated"] is True
