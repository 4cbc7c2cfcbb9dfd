"""The live Android layer on the loopback phone through the real adb server: identity,
snapshot == live, the `devices` CLI (listing, show, snapshot, prepare/restore), inert strings."""

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from suite.cli.devices import devices_app
from suite.core.errors import EdgebenchError
from suite.device import live
from suite.device.android.snapshot import SNAPSHOT_FILES, parse_snapshot
from suite.device.provision import PREPARED_FILE
from suite.device.settings import current_values, prepare, read_record, restore
from suite.transport import AdbServerAddress, AdbTransport, DeviceNotFound

HOSTILE = "[red]x[/red] <script>alert(1)</script> $(reboot); `id` 'q' \"d\""


@pytest.fixture(autouse=True)
def _salt(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEBENCH_LAB_SALT", "test-salt")
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def phone(loopback_phone_factory):
    return loopback_phone_factory("galaxy-a15")


@pytest.fixture
def addr(loopback_adb_server):
    return f"127.0.0.1:{loopback_adb_server.port}"


@pytest.fixture
def transport(phone, loopback_adb_server):
    return AdbTransport(phone.serial, AdbServerAddress("127.0.0.1", loopback_adb_server.port))


def set_prop(phone, key: str, value: str) -> None:
    """Rewrite one getprop answer of a running loopback phone (host side, as root)."""
    f = Path(phone.state_dir) / "system/etc/loopback/getprop.txt"
    lines = [ln for ln in f.read_text().splitlines() if not ln.startswith(f"[{key}]:")]
    lines.append(f"[{key}]: [{value}]")
    os.chmod(f, 0o644)
    f.write_text("\n".join(lines) + "\n")


def cli(*args: str):
    return CliRunner().invoke(devices_app, list(args), env={"COLUMNS": "400"}, catch_exceptions=True)


# --- pure: the batch splitter ------------------------------------------------------------


def test_batch_split_is_exact_and_ignores_fake_markers():
    nonce = "abc"
    out = ("@@eb-abc BEGIN a\nno newline at end\n@@eb-abc END a\n"
           "@@eb-abc BEGIN b\n@@eb-xyz END b\nline\n\n\n@@eb-abc END b\n"
           "@@eb-abc BEGIN c\n\n@@eb-abc END c\n")
    assert live._split_batch(out, ["a", "b", "c"], nonce) == {
        "a": "no newline at end", "b": "@@eb-xyz END b\nline\n\n", "c": ""}
    assert live._split_batch(out, ["a", "z"], nonce) is None


def test_settings_failures_are_read_from_text_as_well_as_exit_codes():
    from suite.device.settings import _failure
    from suite.transport import ShellResult

    assert _failure(ShellResult("settings put global x 1", 0, "", "", 0.1)) is None
    # some builds print the exception and still exit 0
    why = _failure(ShellResult("c", 0, "", "Security exception: Permission denial: writing to settings requires:"
                               "android.permission.WRITE_SECURE_SETTINGS\n\tat ...", 0.1))
    assert why.startswith("exit code 0: Security exception: Permission denial")
    assert _failure(ShellResult("cmd foo", 20, "", "cmd: Can't find service: foo\n", 0.1)) == (
        "exit code 20: cmd: Can't find service: foo")


# --- live identity -----------------------------------------------------------------------


@pytest.mark.loopback
def test_live_texts_are_the_snapshot_files_and_parse_like_a_saved_folder(transport, tmp_path):
    texts = live.collect_snapshot_texts(transport)
    assert set(texts) == set(SNAPSHOT_FILES)
    assert texts["getprop.txt"].startswith("[") and "MemTotal:" in texts["proc_meminfo.txt"]
    # the A15's zone folders are not traversable by shell: every zone listed, temps unreadable
    zones = texts["thermal_zones.txt"].splitlines()
    assert zones and all(z.endswith(" - -") for z in zones) and zones[0].startswith("thermal_zone")
    saved = live.save_snapshot(transport, tmp_path / "snap")
    assert parse_snapshot(tmp_path / "snap") == saved
    assert sorted(p.name for p in (tmp_path / "snap").iterdir()) == sorted(SNAPSHOT_FILES)


@pytest.mark.loopback
def test_live_device_info(transport):
    info = live.live_device_info(transport, "s").to_dict()
    assert (info["manufacturer"], info["soc_model"], info["soc_name"], info["tier"]) == ("samsung", "MT6789", "Helio G99 or Helio G100 (incl. G100 Ultra) or Helio G200", "entry")
    assert info["transport"] == "adb" and info["simulated"] is True and info["abi"] == "x86_64"
    assert info["os"]["kernel"] and info["os"]["sdk"] == 36
    assert [(c["policy"], c["governor"], c["max_khz"]) for c in info["cpu"]["clusters"]] == [
        ("policy0", "schedutil", 2000000), ("policy6", "schedutil", 2200000)]
    assert info["serial"] == transport.serial and len(info["device_id"]) == 16


# --- CLI: listing, snapshot, show ---------------------------------------------------------


@pytest.mark.loopback
def test_devices_lists_local_and_the_phone_with_inert_strings(phone, addr):
    set_prop(phone, "ro.product.model", HOSTILE)
    r = cli("--adb", addr, "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert rows[0]["transport"] == "local"
    (p,) = [x for x in rows if x.get("serial") == phone.serial]
    assert p["model"] == HOSTILE  # the exact string, nothing evaluated
    assert (p["manufacturer"], p["soc_vendor"], p["soc_model"], p["tier"], p["state"]) == (
        "samsung", "MediaTek", "MT6789", "entry", "device")
    assert p["ram_bytes"] > 0 and p["os"]["android_release"] == "16" and p["abi"] == "x86_64"
    assert p["battery"]["level"] is not None and p["battery"]["temp_c"] is not None and p["battery"]["status"]
    assert p["adb_server"] == addr and p["simulated"] is True
    r = cli("--adb", addr)
    assert r.exit_code == 0, r.output
    assert HOSTILE in r.stdout  # markup printed literally, not interpreted
    assert "Helio G99" in r.stdout and phone.serial in r.stdout


@pytest.mark.loopback
def test_snapshot_then_show_gives_the_same_json_as_the_live_phone(phone, addr, tmp_path):
    set_prop(phone, "ro.product.model", HOSTILE)
    out = tmp_path / "snap"
    r = cli("snapshot", phone.serial, "-o", str(out), "--adb", addr, "--json")
    assert r.exit_code == 0, r.output
    saved = json.loads(r.stdout)
    r = cli("show", "--snapshot", str(out), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == saved
    r = cli("show", phone.serial, "--adb", addr, "--json")
    assert r.exit_code == 0, r.output
    live_json = json.loads(r.stdout)
    # the phone's thermal/battery model moves between two reads; identity does not
    volatile = {"battery", "thermal", "mem_available_bytes", "cpu_clusters", "unavailable", "problems"}
    assert {k: v for k, v in live_json.items() if k not in volatile} == {
        k: v for k, v in saved.items() if k not in volatile}
    assert live_json["model"] == HOSTILE
    r = cli("show", phone.serial, "--adb", addr)
    assert r.exit_code == 0 and HOSTILE in r.stdout


@pytest.mark.loopback
def test_show_needs_exactly_one_source(addr):
    r = cli("show")
    assert isinstance(r.exception, EdgebenchError) and "SERIAL" in r.exception.message


@pytest.mark.loopback
def test_unknown_serial_lists_the_attached_ones(phone, addr):
    r = cli("show", "NOPE123", "--adb", addr)
    assert isinstance(r.exception, DeviceNotFound)
    assert "NOPE123" in r.exception.message and phone.serial in r.exception.hint


# --- prepare / restore -------------------------------------------------------------------


BEFORE = {"stay_awake": "0", "brightness_mode": "1", "brightness": "102", "airplane": "0", "adaptive_battery": "1"}
PREPARED = {"stay_awake": "7", "brightness_mode": "0", "brightness": "64", "airplane": "1", "adaptive_battery": "0"}


@pytest.mark.loopback
def test_prepare_restore_round_trip_via_cli(phone, addr, transport):
    assert current_values(transport) == BEFORE
    r = cli("prepare", phone.serial, "--adb", addr, "--json")
    assert r.exit_code == 0, r.output
    state = json.loads(r.stdout)
    assert {s["step"]: (s["previous"], s["applied"]) for s in state["steps"]} == {
        k: (v, True) for k, v in BEFORE.items()}
    assert current_values(transport) == PREPARED
    on_device = read_record(transport)  # recorded on the phone too
    assert on_device is not None and on_device.to_dict()["steps"] == state["steps"]
    # preparing twice keeps the values from before the first prepare
    assert {s.step: s.previous for s in prepare(transport).steps} == BEFORE
    r = cli("restore", phone.serial, "--adb", addr)
    assert r.exit_code == 0, r.output
    assert current_values(transport) == BEFORE
    assert not transport.exists(f"/data/local/tmp/edgebench/{PREPARED_FILE}")
    with pytest.raises(EdgebenchError, match="not prepared"):
        restore(transport)


@pytest.mark.loopback
def test_a_refused_setting_is_recorded_not_fatal(phone, transport):
    # the loopback `settings` refuses keys listed in its `denied` file, as a phone without
    # WRITE_SECURE_SETTINGS does
    denied = Path(phone.state_dir) / "data/loopback/settings/denied"
    denied.write_text("global/adaptive_battery_management_enabled\n")
    state = prepare(transport)
    assert state.applied == ["stay_awake", "brightness_mode", "brightness", "airplane"]
    assert "Permission denial" in state.not_applied["adaptive_battery"]
    assert current_values(transport)["adaptive_battery"] == "1"
    back = restore(transport)
    assert {s.step: s.restored for s in back.steps} == {
        "stay_awake": True, "brightness_mode": True, "brightness": True, "airplane": True, "adaptive_battery": None}
    assert current_values(transport) == BEFORE


@pytest.mark.loopback
def test_airplane_is_skipped_over_wifi_adb_unless_simulated(transport):
    # a loopback phone is TCP but no radio link: auto mode applies airplane; forcing off skips it
    state = prepare(transport, airplane=False)
    assert "Wi-Fi ADB" in state.not_applied["airplane"]
    restore(transport)


@pytest.mark.loopback
def test_recorded_state_for_runs(transport):
    from suite.device.settings import recorded_state

    assert recorded_state(transport) == {"prepared": False, "prepared_at": None, "not_applied": {},
                                         "settings": BEFORE}
    prepare(transport, airplane=False)
    rec = recorded_state(transport)
    assert rec["prepared"] and rec["prepared_at"] and list(rec["not_applied"]) == ["airplane"]
    assert rec["settings"] == PREPARED | {"airplane": "0"}
    restore(transport)
