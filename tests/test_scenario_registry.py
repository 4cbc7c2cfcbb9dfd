"""Scenarios are registered by name (suite.scenarios), like runtimes: the CLI's `run --scenario`,
its help, the lab plan's validation and the lab workers read the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from suite.core.errors import UnknownNameError
from suite.scenarios import SCENARIOS, ScenarioResult, get_scenario

EDGEBENCH = [sys.executable, "-m", "suite.cli.main"]


def test_the_registry_lists_burst_fit_sustained_voice():
    assert SCENARIOS.names() == ["burst", "fit", "sustained", "voice"]
    assert list(SCENARIOS) == ["burst", "fit", "sustained", "voice"]
    for name in SCENARIOS:
        assert SCENARIOS.about(name)


def test_an_unknown_scenario_names_the_registered_ones():
    with pytest.raises(UnknownNameError) as info:
        get_scenario("brst")
    e = info.value
    assert e.exit_code == 2
    assert e.message == "unknown scenario 'brst'; known: burst, fit, sustained, voice"
    assert e.hint == "did you mean burst?"


def test_each_entry_says_what_it_is():
    for name in SCENARIOS:
        entry = get_scenario(name)
        assert entry.name == name
        assert callable(entry.run)
        assert isinstance(entry.options, tuple) and isinstance(entry.single_run, bool)
        # the help text (the registry's `about`) says which need a phone: the CLI refuses `local` for those
        assert entry.needs_phone == ("on a phone" in SCENARIOS.about(name)), name
    assert not get_scenario("burst").needs_phone and get_scenario("burst").options == ()
    assert get_scenario("sustained").options == ("duration_s", "windows", "window_tokens", "min_window_s")
    assert get_scenario("fit").options == ("models", "beyond_ram", "floor_tps", "rung_timeout_s") and not get_scenario("fit").single_run


def test_sustained_without_duration_or_windows_is_refused_before_any_work():
    from suite.core.errors import EdgebenchError

    with pytest.raises(EdgebenchError) as info:  # no ref is touched: the check comes first
        get_scenario("sustained").run(None, None, options={"window_tokens": 64})
    assert info.value.exit_code == 2
    assert info.value.message == "the sustained scenario needs --duration or --windows"


def test_a_result_holds_runs_and_an_optional_summary(tmp_path):
    r = ScenarioResult(runs=[tmp_path])
    assert r.runs == [tmp_path] and r.summary is None and r.detail is None


def test_cli_help_lists_the_scenarios_and_refuses_an_unknown_one():
    env = os.environ | {"COLUMNS": "400"}
    proc = subprocess.run([*EDGEBENCH, "run", "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.replace("│", " ").split())
    assert SCENARIOS.describe() in text
    for name in ("burst", "fit", "sustained"):
        assert f"{name} (" in text
    proc = subprocess.run([*EDGEBENCH, "run", "--model", "tiny", "--scenario", "marathon"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "unknown scenario 'marathon'; known: burst, fit, sustained, voice" in proc.stderr


@pytest.mark.loopback
def test_cli_runs_each_scenario_on_a_phone_through_the_registry(loopback_phone_factory, loopback_adb_server,
                                                                tmp_path):
    """`run --scenario` on a loopback phone: sustained and a gated burst print their run's table, fit its
    ladder; a sustained run without --duration or --windows is refused before any work."""
    phone = loopback_phone_factory("galaxy-a15")
    env = os.environ | {"COLUMNS": "200", "EDGEBENCH_CACHE_DIR": str(tmp_path / "cache")}
    base = [*EDGEBENCH, "run", "--device", phone.serial, "--adb", f"127.0.0.1:{loopback_adb_server.port}",
            "--model", "tiny", "--prompt-tokens", "8", "--gen-tokens", "4", "--warmup", "0", "--threads", "1",
            "--idle", "0", "--no-probe", "--results-dir", str(tmp_path / "results")]

    def cli(*args):
        return subprocess.run([*base, *args], capture_output=True, text=True, env=env, timeout=600)

    proc = cli("--scenario", "sustained")
    assert proc.returncode == 2 and "the sustained scenario needs --duration or --windows" in proc.stderr
    proc = cli("--scenario", "sustained", "--windows", "2", "--window-tokens", "4")
    assert proc.returncode == 0, proc.stderr
    assert "tiny on" in proc.stdout and "completed" in proc.stdout and "run stored in" in proc.stdout
    proc = cli("--reps", "1", "--battery-floor", "0")  # a gated burst
    assert proc.returncode == 0, proc.stderr
    assert "completed" in proc.stdout and proc.stdout.count("run stored in") == 1
    proc = cli("--scenario", "fit", "--models", "tiny")
    assert proc.returncode == 0, proc.stderr
    assert f"fit on {phone.serial}:" in proc.stdout and "largest that runs: tiny" in proc.stdout
    assert "run stored in" not in proc.stdout  # fit prints its ladder, not each run's table

    recs = [json.loads((p / "run.json").read_text()) for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert sorted((r["scenario"] or {}).get("name", "burst") for r in recs) == ["burst", "fit", "sustained"]
    assert all(r["outcome"] == "completed" for r in recs)
    (gated,) = [r for r in recs if (r["scenario"] or {}).get("name", "burst") == "burst"]
    assert "battery_floor" in gated["conditions"]
