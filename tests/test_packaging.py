"""The wheel: every package of the source tree, and the catalog's one copy of its data."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DATA_PACKAGES = {"suite.catalog.devices": "devices", "suite.catalog.models": "models"}


def test_the_package_list_names_every_package_of_the_tree():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    tree = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "suite").rglob("__init__.py")}
    assert listed - set(DATA_PACKAGES) == tree
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == DATA_PACKAGES


@pytest.mark.slow
def test_the_wheel_carries_the_catalog_folders_templates_and_profiles(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("edgebench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("devices", "models"):  # subfolders too (models/speech/: the Whisper cards)
        for f in (ROOT / name).rglob("*"):
            if f.is_file():
                assert f"suite/catalog/{name}/{f.relative_to(ROOT / name).as_posix()}" in names, f
    assert {"suite/report/templates/base.html.j2", "suite/report/templates/report.css",
            "suite/sensors/android_loop.sh", "suite/loopback/profiles/galaxy-a15/profile.json",
            "suite/runtimes/build/zig-toolchain.cmake", "suite/runtimes/build/zig-wrapper.sh",
            "suite/runtimes/build/probes/membw.c", "suite/runtimes/build/probes/peak.c",
            "suite/runtimes/build/whisper/edgebench_whisper.cpp", "suite/runtimes/build/whisper/CMakeLists.txt"} <= names
    assert any(n.startswith("suite/loopback/profiles/qcom-flagship/captures/") for n in names)
    # one copy: nothing of the catalog's data sits elsewhere in the package
    assert not [n for n in names if n.endswith((".csv", ".toml")) and not n.startswith("suite/catalog/")]
