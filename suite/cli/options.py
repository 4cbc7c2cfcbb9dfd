"""The options (and arguments) that several commands share, defined once: same flag, same help.

An option that only one command has stays with that command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ResultsDir = Annotated[Path, typer.Option("--results-dir", "-r", help="Folder that holds run folders.")]
ResultFolders = Annotated[list[Path] | None, typer.Argument(help="Result folders [default: results/].")]
ModelsDir = Annotated[
    Path | None,
    typer.Option("--models-dir", help="Where built models live [default: $EDGEBENCH_CACHE_DIR/models or "
                 "~/.cache/edgebench/models]."),
]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
AdbServers = Annotated[
    list[str] | None,
    typer.Option("--adb", help="adb server HOST:PORT (repeatable) [default: 127.0.0.1:5037].", show_default=False),
]
