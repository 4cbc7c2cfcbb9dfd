"""The verbatim captures of other engines' output in ../shared/fixtures/runtimes (issue 16).

They are not copied into the repository: they are found, in this order, under $EDGEBENCH_SHARED,
next to the repository (`<repo>/../shared`, as /work/main has it) or at /work/shared. Without
them the tests that read them skip, naming the places tried; under CI=true they fail instead,
because a CI run that silently skipped every capture would prove nothing.

Line numbers in the tests count the capture's `# source:` ... `# note:` header lines, as an
editor shows the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "EDGEBENCH_SHARED"


def candidates() -> list[Path]:
    out = []
    if os.environ.get(ENV):
        out.append(Path(os.environ[ENV]) / "fixtures" / "runtimes")
    out.append(Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "runtimes")
    out.append(Path("/work/shared/fixtures/runtimes"))
    return out


def runtimes_dir() -> Path | None:
    for path in candidates():
        if path.is_dir():
            return path
    return None


def require_runtimes() -> Path:
    """The captures' folder, else a loud skip (a failure under CI=true)."""
    path = runtimes_dir()
    if path is None:
        reason = ("runtime captures not found (tried " + ", ".join(str(p) for p in candidates())
                  + f"); set {ENV} to the shared folder that holds fixtures/runtimes")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def capture(name: str) -> str:
    return (require_runtimes() / name).read_text(encoding="utf-8")


def all_captures() -> list[str]:
    """Every capture's file name (empty when the folder is absent: the tests using it then skip)."""
    path = runtimes_dir()
    return sorted(p.name for p in path.glob("*.txt")) if path else []


def line(text: str, n: int) -> str:
    """Line `n` (1-based) of `text`."""
    return text.split("\n")[n - 1]
