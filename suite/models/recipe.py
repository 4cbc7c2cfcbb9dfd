"""What one model format contributes to a build (suite.models.artifact does the rest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: progress(done_bytes, total_bytes) while the weights stream to disk.
ProgressFn = Callable[[int, int], None]
#: Writes an artefact's files into a (temp) folder; returns file name -> sha256.
WriteFn = Callable[[Path, "ProgressFn | None"], dict[str, str]]


@dataclass
class Recipe:
    """What one format contributes to a build; `_build_artifact` does the rest (shared by ONNX and GGUF)."""

    options: dict[str, Any]
    builder_version: str
    needed_bytes: int  # for the disk check, before anything is written
    write: WriteFn
    #: manifest fields after `params`/`synthetic_weights` (weight_bytes_read_per_token, ...)
    manifest_fields: dict[str, Any] = field(default_factory=dict)
