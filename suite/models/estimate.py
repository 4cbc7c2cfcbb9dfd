"""What a build will cost before it starts: the artefact's bytes, the room on the disk, and the push
time at a phone's measured rate.

No build time: the one rate at hand before a build, that of a small build timed here, was 2.5-4x
slower per byte than the large builds it would predict (llama-68m GGUF at 114 MB/s vs 290 MB/s for
Qwen2.5-1.5B and 450 MB/s for Llama-2-13B on a 2-core host: per-build and per-tensor costs dominate
small builds), so it is not shown; the progress bar's remaining time comes from the rate measured
while the weights stream to disk.

Large cards (Qwen2.5-14B/32B, 8.5 and 18.6 GB as Q4_0 GGUF) are built on demand; `edgebench models
build` shows this first and refuses, before writing anything, when the disk cannot hold the build
(the same rule and error as the builder's own check: suite.models.artifact.check_disk).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from suite.catalog.cards import ModelCard
from suite.catalog.speech import SpeechCard, get_card
from suite.models import artifact, gguf, whisper_ggml
from suite.models.artifact import DEFAULT_QUANT, DISK_HEADROOM_BYTES

#: `edgebench models build` shows the estimate for artefacts larger than this (and always when the
#: disk cannot hold one).
SHOW_ABOVE_BYTES = 2**30


@dataclass(frozen=True)
class BuildEstimate:
    """One build's cost, computed from the card before anything is written."""

    card_id: str
    format: str
    quant: str
    #: the artefact's bytes: exact for GGUF (the same writer, the header written into memory); for
    #: ONNX and LiteRT-LM the builder's upper bound (weights exact, graph and containers bounded)
    artifact_bytes: int
    exact: bool
    #: what the builder's disk check asks for (its bound on the artefact), to which the check adds
    #: DISK_HEADROOM_BYTES. One copy only: the build writes into a temp folder beside the target and
    #: renames it.
    needed_bytes: int
    #: bytes other builds of the same command take before this one (counted against the free space)
    reserved_bytes: int
    out_dir: str  # the folder whose file system was read (the nearest existing one)
    free_bytes: int
    fits: bool
    cached: bool  # a complete build with these options is there already: nothing to write
    push_s: float | None = None
    push_rate_bytes_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """What the CLI prints before a large build."""
        size = _size(self.artifact_bytes) + ("" if self.exact else " at most")
        lines = [f"{self.card_id} ({self.format} {self.quant}): {size}"]
        if self.cached:
            lines.append("  already built: nothing to write")
        else:
            others = f" after {_size(self.reserved_bytes)} of the builds before it" if self.reserved_bytes else ""
            verdict = "fits" if self.fits else "does NOT fit"
            lines.append(f"  disk: {_size(self.free_bytes)} free in {self.out_dir}; needs "
                         f"{_size(self.needed_bytes)} + {DISK_HEADROOM_BYTES // 2**20} MiB headroom{others}: "
                         f"{verdict}")
        if self.push_s is not None and self.push_rate_bytes_per_s is not None:
            lines.append(f"  push: about {_duration(self.push_s)} at {self.push_rate_bytes_per_s / 1e6:.1f} MB/s")
        return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def artifact_bytes(card: ModelCard | SpeechCard, *, fmt: str = "onnx", quant: str | None = None,
                   block_size: int = 32) -> tuple[int, bool]:
    """(bytes, exact) of the artefact `build_model` writes for these options, from the card alone.

    GGUF: exact (header, vocabulary and tensor infos as the writer packs them, then the tensors laid out
    and aligned as `write_gguf` streams them); ggml (speech cards): exact. ONNX and LiteRT-LM: the
    builder's own upper bound (`estimate_bytes`: the weights exact, the graph and container bounded)."""
    quant = quant or DEFAULT_QUANT.get(fmt)
    if fmt == "gguf":
        return gguf.GGUFPlan(card, quant).file_bytes(), True
    if fmt == "ggml" and isinstance(card, SpeechCard):
        return whisper_ggml.WhisperPlan(card, quant).file_bytes(), True
    return artifact.estimate_bytes(card, quant=quant, block_size=block_size, fmt=fmt), False


def estimate_build(card: ModelCard | SpeechCard | str, *, fmt: str = "onnx", quant: str | None = None, seed: int = 0,
             block_size: int = 32, out_root: Path | None = None, reserved_bytes: int = 0,
             push_rate_bytes_per_s: float | None = None) -> BuildEstimate:
    """The cost of `build_model(card, fmt=, quant=, seed=, block_size=, out_root=)`, before it runs.

    `free_bytes` is read from the file system that holds `out_root` (default: default_models_dir());
    `fits` is the builder's own rule (artifact.has_room) for its `needed_bytes` plus `reserved_bytes`.
    `push_s` only with the phone's measured push rate (a provisioning report's `throughput_bytes_per_s`,
    the `provisioning` block of a run record); None -> no estimate."""
    if isinstance(card, str):
        card = get_card(card)
    quant = quant or DEFAULT_QUANT.get(fmt)
    recipe = artifact.build_recipe(card, fmt=fmt, quant=quant, seed=seed, block_size=block_size)
    size, exact = artifact_bytes(card, fmt=fmt, quant=quant, block_size=block_size)
    root = Path(out_root) if out_root is not None else artifact.default_models_dir()
    target = artifact.artifact_dir(card.id, root, quant=quant, block_size=block_size, seed=seed, fmt=fmt)
    probe, free = artifact.free_space(target.parent)
    needed = recipe.needed_bytes
    return BuildEstimate(
        card_id=card.id, format=fmt, quant=quant, artifact_bytes=size, exact=exact,
        needed_bytes=needed, reserved_bytes=reserved_bytes, out_dir=str(probe),
        free_bytes=free, fits=artifact.has_room(needed + reserved_bytes, free),
        cached=artifact.is_built(card, target, recipe),
        push_s=size / push_rate_bytes_per_s if push_rate_bytes_per_s else None,
        push_rate_bytes_per_s=push_rate_bytes_per_s or None,
    )


def card_format(card: ModelCard | SpeechCard, fmt: str | None = None) -> str:
    """The format a card builds in when `fmt` is not given: ggml (whisper.cpp's file) for a speech card,
    onnx for a language model; `fmt` itself when given (the builder refuses a mismatch)."""
    return fmt or ("ggml" if isinstance(card, SpeechCard) else "onnx")


def estimate_builds(cards: list[ModelCard | SpeechCard | str], *, fmt: str | None = "onnx", quant: str | None = None,
                    seed: int = 0, block_size: int = 32, out_root: Path | None = None, force: bool = False,
                    push_rate_bytes_per_s: float | None = None) -> list[BuildEstimate]:
    """`estimate_build` for builds made one after the other into one folder: each counts the bytes of the
    ones before it (`reserved_bytes`). With `force` nothing is cached: a rebuild keeps the old copy until
    the new one replaces it, so it needs the whole room again. `fmt=None`: each card's own default
    (`card_format`), so one list may hold language and speech models."""
    out, reserved = [], 0
    for card in cards:
        card = get_card(card) if isinstance(card, str) else card
        est = estimate_build(card, fmt=card_format(card, fmt), quant=quant, seed=seed, block_size=block_size,
                             out_root=out_root, reserved_bytes=reserved, push_rate_bytes_per_s=push_rate_bytes_per_s)
        if est.cached and force:
            est = replace(est, cached=False)
        if not est.cached:
            reserved += est.needed_bytes
        out.append(est)
    return out


def refuse_if_short(est: BuildEstimate) -> None:
    """Raise the builder's InsufficientDiskError (exit code 3: no room) when `est` does not fit."""
    if not est.fits and not est.cached:
        artifact.check_disk(Path(est.out_dir), est.needed_bytes + est.reserved_bytes)
