"""The exit-code table (suite/cli/exits.py): every code the source gives is in it, main() exits
through it, and the README lists it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import suite.cli.main as cli_main
from suite.cli import exits
from suite.cli.exits import EXIT_CODES
from suite.core.errors import EdgebenchError, InsufficientDiskError, UnknownNameError
from suite.lab.lock import LockHeld
from suite.session.gating import GateSkipped, GateTimeout
from suite.transport.base import DeviceError

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suite"


def _constants(node: ast.AST) -> list[int] | None:
    """The ints a literal code can be: `4`, `exits.USAGE`, or `1 if ... else 4`; None for anything computed."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return [node.value]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "exits":
        return [getattr(exits, node.attr)]  # the table's names (an unknown one fails here)
    if isinstance(node, ast.IfExp):
        body, orelse = _constants(node.body), _constants(node.orelse)
        return None if body is None or orelse is None else body + orelse
    return None


def _is_exit_call(func: ast.AST) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "Exit") or (isinstance(func, ast.Name) and func.id == "Exit")


def source_codes() -> dict[int, list[str]]:
    """code -> where: `exit_code = N` in a class body, `exit_code=N` in a call, `typer.Exit(N)`."""
    found: dict[int, list[str]] = {}
    for path in sorted(SUITE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            hits: list[int] | None = None
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
                    if value is not None and any(isinstance(t, ast.Name) and t.id == "exit_code" for t in targets):
                        for code in _constants(value) or ():
                            found.setdefault(code, []).append(f"{path.relative_to(ROOT)}:{stmt.lineno} {node.name}")
                continue
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "exit_code":
                        hits = _constants(kw.value)
                if _is_exit_call(node.func) and node.args:
                    hits = _constants(node.args[0])
            for code in hits or ():
                found.setdefault(code, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_source_scan_sees_the_known_codes():
    found = source_codes()
    # a few that must be seen, or the scan is broken
    assert any("LockHeld" in w for w in found[6]) and any("GateSkipped" in w for w in found[5])
    assert any("InsufficientDiskError" in w for w in found[3]) and 4 in found and 130 in found
    assert len([w for ws in found.values() for w in ws]) >= 30


def test_every_exit_code_in_the_source_is_in_the_table():
    missing = {code: where for code, where in source_codes().items() if code not in EXIT_CODES}
    assert not missing, f"exit codes not in suite/cli/exits.py's table: {missing}"


def test_the_table_names_no_code_the_cli_cannot_return():
    # 0 is success; 1 and 2 are also click's own (an abort; a usage error)
    assert set(EXIT_CODES) == {0, 1, 2} | set(source_codes())
    assert all(text.strip() for text in EXIT_CODES.values())


def test_the_readme_lists_the_table():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n### ", 1)[0]
    listed = {int(c): text for c, text in re.findall(r"^- `(\d+)` (.+)$", section, flags=re.M)}
    assert listed == EXIT_CODES


def _exit_of(monkeypatch, capsys, exc: BaseException) -> int:
    def app():
        raise exc

    def exit_now(code):  # an interrupted run ends the process at once (os._exit): here, as SystemExit
        raise SystemExit(code)

    monkeypatch.setattr(cli_main, "app", app)
    monkeypatch.setattr(cli_main.os, "_exit", exit_now)
    with pytest.raises(SystemExit) as info:
        cli_main.main()
    assert "error:" in capsys.readouterr().err
    return info.value.code


@pytest.mark.parametrize("code", sorted(c for c in EXIT_CODES if c != 0))
def test_main_exits_with_the_errors_code_from_the_table(monkeypatch, capsys, code):
    assert _exit_of(monkeypatch, capsys, EdgebenchError("boom", exit_code=code)) == code


@pytest.mark.parametrize("exc, code", [
    (UnknownNameError("model", "lama", ["llama"]), exits.USAGE),
    (InsufficientDiskError("full"), exits.NO_DEVICE),
    (GateSkipped("battery low"), exits.GATE_SKIPPED),
    (GateTimeout("still hot"), exits.GATE_SKIPPED),
    (LockHeld("held by pid 1"), exits.DEVICE_BUSY),
])
def test_main_exits_with_the_error_classes_code(monkeypatch, capsys, exc, code):
    assert _exit_of(monkeypatch, capsys, exc) == code


@pytest.mark.parametrize("bad", [7, 127, 255, -1, 0, None, "2", True])
def test_main_refuses_a_code_outside_the_table(monkeypatch, capsys, bad):
    exc = EdgebenchError("boom")
    exc.exit_code = bad
    assert _exit_of(monkeypatch, capsys, exc) == exits.FAILED


def test_a_device_commands_own_status_is_not_the_clis(monkeypatch, capsys):
    # DeviceError carries the device command's exit status (None when there was none)
    assert _exit_of(monkeypatch, capsys, DeviceError("gone", serial="X", exit_code=None)) == exits.FAILED
    assert _exit_of(monkeypatch, capsys, DeviceError("failed", serial="X", exit_code=127)) == exits.FAILED


def test_the_real_cli_exits_through_the_table(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "suite.cli.main", "lab", "validate", str(tmp_path / "none.toml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == exits.USAGE and "no plan file" in proc.stderr
