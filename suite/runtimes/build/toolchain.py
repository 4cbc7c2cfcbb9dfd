"""The build toolchain, all from the Python package index: zig (`ziglang`) as the C/C++ compiler
for static musl binaries of every target, CMake (`cmake`) and Ninja (`ninja`).

The CMake toolchain file and the compiler wrappers are project files beside this module; a build
copies the wrappers into its own folder (the wheel does not keep execute bits) with the zig binary
and target filled in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from suite.core.errors import EdgebenchError

HERE = Path(__file__).parent
TOOLCHAIN_FILE = HERE / "zig-toolchain.cmake"
WRAPPER = HERE / "zig-wrapper.sh"

#: what to install when a tool is missing (the project's own dependencies bring all three)
INSTALL_HINT = "pip install ziglang cmake ninja (edgebench's own install brings them: pip install edgebench)"


@dataclass(frozen=True)
class Toolchain:
    zig: Path
    zig_version: str
    cmake: Path
    cmake_version: str
    ninja: Path

    def to_dict(self) -> dict:
        return {"compiler": f"zig {self.zig_version}", "cmake": self.cmake_version}


def _zig() -> Path:
    try:
        import ziglang  # the wheel's zig binary; imported here: a build is rare, start-up is not
    except ImportError:
        raise EdgebenchError("the zig toolchain is not installed (the PyPI package ziglang)",
                             hint=INSTALL_HINT, exit_code=1) from None
    exe = Path(ziglang.__file__).parent / ("zig.exe" if os.name == "nt" else "zig")
    if not exe.is_file():
        raise EdgebenchError(f"the ziglang package has no zig binary at {exe}", hint=INSTALL_HINT, exit_code=1)
    return exe


def _tool(name: str) -> Path:
    """A console tool of this Python's environment (cmake, ninja), else of PATH."""
    here = Path(sys.executable).parent / name
    found = here if here.is_file() else shutil.which(name)
    if not found:
        raise EdgebenchError(f"{name} is not installed", hint=INSTALL_HINT, exit_code=1)
    return Path(found)


def _version(argv: list[str]) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise EdgebenchError(f"{argv[0]} does not run: {r.stderr.strip()[-300:]}", hint=INSTALL_HINT, exit_code=1)
    return r.stdout.strip().splitlines()[0] if r.stdout.strip() else "unknown"


@cache
def find_toolchain() -> Toolchain:
    """zig, cmake and ninja, with their versions (part of every build's cache key)."""
    zig = _zig()
    cmake, ninja = _tool("cmake"), _tool("ninja")
    return Toolchain(zig, _version([str(zig), "version"]), cmake,
                     _version([str(cmake), "--version"]).removeprefix("cmake version "), ninja)


def zig_env(global_cache: Path, local_cache: Path) -> dict[str, str]:
    """The environment of a build: zig's caches where edgebench keeps them (the C library it
    builds once per target lives in `global_cache`), and no SOURCE_DATE_EPOCH (ggml turns the x86
    instruction sets off when it is set)."""
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(global_cache), "ZIG_LOCAL_CACHE_DIR": str(local_cache)}
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


def write_wrappers(folder: Path, tc: Toolchain, target: str) -> Path:
    """zig-cc, zig-c++, zig-ar and zig-ranlib for `target` in `folder` (returned)."""
    folder.mkdir(parents=True, exist_ok=True)
    template = WRAPPER.read_text()
    for name, tool, args in (("zig-cc", "cc", f"-target {target}"), ("zig-c++", "c++", f"-target {target}"),
                             ("zig-ar", "ar", ""), ("zig-ranlib", "ranlib", "")):
        path = folder / name
        path.write_text(template.replace("@ZIG@", str(tc.zig)).replace("@TOOL@", tool).replace("@TARGET_ARGS@", args))
        path.chmod(0o755)
    return folder
