"""Model artefacts on disk: build (atomically, with a disk check), cache, verify, list.

Layouts: `<out_root>/<card_id>/onnx-<quant>-b<block>-s<seed>/` holding model.onnx, model.onnx.data,
genai_config.json and manifest.json; `<out_root>/<card_id>/gguf-<quant>-s<seed>/` holding model.gguf
and manifest.json (`suite/models/gguf.py`); `<out_root>/<card_id>/litertlm-<quant>-s<seed>/` holding
model.litertlm and manifest.json (`suite/models/litertlm_graph.py`); a speech card's
`<out_root>/<card_id>/ggml-<quant>-s<seed>/` holding whisper.cpp's ggml-model.bin and manifest.json
(`suite/models/whisper_ggml.py`, built by `build_speech_model`). A build writes into a temp folder beside the target and
renames it at the end, so a folder with that name is complete or absent. Every format goes through
`_build_artifact` (cache check, disk check, temp folder, manifest, atomic rename).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from suite.catalog.cards import ModelCard
from suite.catalog.speech import SpeechCard, get_card, get_speech_card
from suite.core.errors import ArtifactCorruptError, InsufficientDiskError, ModelBuildError
from suite.models import gguf, litertlm_graph, whisper_ggml
from suite.models.onnx_graph import GraphPlan, genai_config, write_model
from suite.models.recipe import ProgressFn, Recipe

log = logging.getLogger(__name__)

#: Bump when the bytes a build produces change for the same card and options.
BUILDER_VERSION = "onnx-synthetic/1"
MANIFEST_SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
QUANT_BITS = {"int4": 4, "int8": 8}
#: Artefact formats and the quant each builds by default.
#: "ggml" is whisper.cpp's own file, the one format of the speech cards (suite.catalog.speech).
FORMATS = ("onnx", "gguf", "litertlm", "ggml")
DEFAULT_QUANT = {"onnx": "int4", "gguf": "q4_0", "litertlm": "int8", "ggml": "f16"}
MODEL_FILE = {"onnx": "model.onnx", "gguf": "model.gguf", "litertlm": litertlm_graph.MODEL_FILE,
              "ggml": whisper_ggml.MODEL_FILE}
#: Room kept free beyond the artefact's own bytes when checking the disk.
DISK_HEADROOM_BYTES = 64 * 1024 * 1024
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class BuiltModel:
    """A complete artefact folder and its manifest (also a user's own model file: `file` then
    names the file to load, which need not carry the builder's file name)."""

    path: Path
    manifest: dict[str, Any]
    file: Path | None = None

    @property
    def card_id(self) -> str:
        return self.manifest["card"]["id"]

    @property
    def total_bytes(self) -> int:
        return self.manifest["total_bytes"]

    @property
    def format(self) -> str:
        return self.manifest.get("options", {}).get("format", "onnx")

    @property
    def model_file(self) -> Path:
        return self.file or self.path / MODEL_FILE[self.format]

    def files(self) -> dict[str, Path]:
        """name -> local path of every file the model needs (what to push to a device)."""
        return {name: self.path / name for name in self.manifest["files"]}


def default_models_dir() -> Path:
    """`$EDGEBENCH_CACHE_DIR/models`, else `~/.cache/edgebench/models`."""
    root = os.environ.get("EDGEBENCH_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "edgebench") / "models"


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ModelBuildError(f"unknown model format {fmt!r}; known: {', '.join(FORMATS)}", format=fmt)


def _check_kind(card: ModelCard | SpeechCard, fmt: str) -> None:
    """Speech cards build as ggml (whisper.cpp's file) only, and LLM cards never do (a usage error: exit 2)."""
    if isinstance(card, SpeechCard) and fmt != "ggml":
        raise ModelBuildError(f"{card.id} is a speech model: it builds only in whisper.cpp's format (ggml), "
                              f"not {fmt}", card=card.id, format=fmt, exit_code=2,
                              hint="build it as ggml (build_speech_model, or `edgebench models build ID` "
                                   "without --format)")
    if not isinstance(card, SpeechCard) and fmt == "ggml":
        raise ModelBuildError(f"{card.id} is a language model: ggml is the speech cards' format (whisper.cpp)",
                              card=card.id, format=fmt, exit_code=2, hint="build it as onnx, gguf or litertlm")


def artifact_name(quant: str, block_size: int, seed: int, fmt: str = "onnx") -> str:
    _check_format(fmt)
    if fmt in ("gguf", "litertlm", "ggml"):  # ggml quant types fix their own block size; LiteRT-LM's is per row
        return f"{fmt}-{quant}-s{seed}"
    return f"onnx-{quant}-b{block_size}-s{seed}"


def artifact_dir(card_id: str, out_root: Path, *, quant: str | None = None, block_size: int = 32, seed: int = 0,
                 fmt: str = "onnx") -> Path:
    _check_format(fmt)
    return Path(out_root) / card_id / artifact_name(quant or DEFAULT_QUANT[fmt], block_size, seed, fmt)


def _options(quant: str, block_size: int, seed: int) -> dict[str, Any]:
    return {"format": "onnx", "quant": quant, "block_size": block_size, "seed": seed}


def estimate_bytes(card: ModelCard | SpeechCard, *, quant: str | None = None, block_size: int = 32,
                   fmt: str = "onnx") -> int:
    """Bytes the artefact will take (the weights dominate; exact for them; exact for ggml)."""
    _check_format(fmt)
    _check_kind(card, fmt)
    if fmt == "ggml":
        return whisper_ggml.WhisperPlan(card, quant or DEFAULT_QUANT[fmt]).file_bytes()
    if fmt == "gguf":
        return gguf.GGUFPlan(card, quant or DEFAULT_QUANT[fmt]).estimate_bytes()
    if fmt == "litertlm":
        return litertlm_graph.LitertlmPlan(card, quant or DEFAULT_QUANT[fmt]).estimate_bytes()
    plan = GraphPlan(card, bits=QUANT_BITS[quant or "int4"], block_size=block_size)
    return plan.data_bytes() + 1024 * 1024  # + graph, config, manifest


# --- verification ---------------------------------------------------------------------------------
def read_manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(path) / MANIFEST).read_text())
    except FileNotFoundError:
        raise ArtifactCorruptError(f"{path}: no {MANIFEST}", file=str(Path(path) / MANIFEST)) from None
    except json.JSONDecodeError as exc:
        raise ArtifactCorruptError(f"{path}: unreadable {MANIFEST}: {exc}", file=str(Path(path) / MANIFEST)) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def verify_artifact(path: Path, deep: bool = False) -> dict[str, Any]:
    """Check every file the manifest lists: size always, sha256 when `deep`. Returns the manifest.

    Raises ArtifactCorruptError naming the file with the expected and found values."""
    path = Path(path)
    manifest = read_manifest(path)
    for name, rec in manifest["files"].items():
        f = path / name
        if not f.is_file():
            raise ArtifactCorruptError(f"{f}: missing", file=str(f), expected=rec["bytes"], found=None,
                                       hint="rebuild it: it will be rebuilt by build_model")
        size = f.stat().st_size
        if size != rec["bytes"]:
            raise ArtifactCorruptError(f"{f}: {size} bytes, manifest says {rec['bytes']} (truncated or replaced)",
                                       file=str(f), expected=rec["bytes"], found=size)
        if deep:
            found = _sha256(f)
            if found != rec["sha256"]:
                raise ArtifactCorruptError(f"{f}: sha256 {found}, manifest says {rec['sha256']}",
                                           file=str(f), expected=rec["sha256"], found=found)
    return manifest


def _matches(manifest: dict[str, Any], card: ModelCard, options: dict[str, Any],
             builder_version: str = BUILDER_VERSION) -> bool:
    return (manifest.get("builder_version") == builder_version and manifest.get("options") == options
            and manifest.get("card") == json.loads(json.dumps(card.to_dict())))


def is_built(card: ModelCard, target: Path, recipe: Recipe) -> bool:
    """A complete build of `recipe` is at `target` (manifest matching, files of the recorded sizes):
    what `build_model` reuses without writing."""
    if not Path(target).is_dir():
        return False
    try:
        manifest = verify_artifact(target)
    except ArtifactCorruptError:
        return False
    return _matches(manifest, card, recipe.options, recipe.builder_version)


# --- listing -----------------------------------------------------------------------------------------
def list_built(out_root: Path | None = None) -> list[BuiltModel]:
    """Every complete artefact under `out_root` (manifest present, files of the recorded sizes)."""
    root = Path(out_root) if out_root is not None else default_models_dir()
    found = []
    for manifest_path in sorted(root.glob(f"*/*/{MANIFEST}")):
        folder = manifest_path.parent
        if folder.name.startswith("."):
            continue
        try:
            found.append(BuiltModel(folder, verify_artifact(folder)))
        except ArtifactCorruptError as exc:
            log.warning("skipping corrupt artefact: %s", exc)
    return found


def find_built(card_id: str, out_root: Path | None = None, *, quant: str | None = None,
               block_size: int | None = None, seed: int | None = None, fmt: str | None = None) -> list[BuiltModel]:
    """Complete artefacts of one card, optionally filtered by options (`fmt`: "onnx" or "gguf")."""
    out = []
    for built in list_built(out_root):
        opts = built.manifest["options"]
        if built.card_id != card_id:
            continue
        if (quant is not None and opts.get("quant") != quant) \
                or (block_size is not None and opts.get("block_size") != block_size) \
                or (seed is not None and opts.get("seed") != seed) \
                or (fmt is not None and opts.get("format", "onnx") != fmt):
            continue
        out.append(built)
    return out


# --- building ----------------------------------------------------------------------------------------
def _clean_stale_temps(parent: Path) -> None:
    """Remove temp folders left by builds whose process is gone (killed, power cut)."""
    if not parent.is_dir():
        return
    for d in parent.iterdir():
        m = re.match(rf"{re.escape(_TMP_PREFIX)}.*-p(\d+)-", d.name)
        if m and d.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_space(parent: Path) -> tuple[Path, int]:
    """(the nearest existing folder at or above `parent`, the free bytes of its file system)."""
    probe = Path(parent)
    while not probe.exists():
        probe = probe.parent
    return probe, shutil.disk_usage(probe).free


def has_room(needed: int, free: int) -> bool:
    """The disk rule, one copy: the artefact's bytes plus DISK_HEADROOM_BYTES. A build writes into a
    temp folder beside its target and renames it, so it never holds two copies on the disk."""
    return free >= needed + DISK_HEADROOM_BYTES


def check_disk(parent: Path, needed: int) -> None:
    """Refuse before writing anything when the file system holding `parent` lacks the room."""
    probe, free = free_space(parent)
    if not has_room(needed, free):
        raise InsufficientDiskError(
            f"not enough disk for the model: needs {needed / 1e9:.2f} GB (+{DISK_HEADROOM_BYTES // 2**20} MiB headroom),"
            f" {free / 1e9:.2f} GB free in {probe}",
            hint="free some space or pass another output folder (EDGEBENCH_CACHE_DIR)",
            needed_bytes=needed, free_bytes=free, path=str(probe))


def build_model(card: ModelCard | str, *, quant: str | None = None, seed: int = 0, block_size: int = 32,
                out_root: Path | None = None, progress: ProgressFn | None = None, force: bool = False,
                deep: bool = False, fmt: str = "onnx") -> BuiltModel:
    """Build (or reuse) the artefact of `card` with seeded random weights.

    `fmt="onnx"` (default; quant "int4" or "int8", `block_size`), `fmt="gguf"` (quant "q4_0" or
    "q8_0") or `fmt="litertlm"` (quant "int8" or "f32"; llama and qwen2 cards); `block_size` is ONNX's only. A matching complete artefact is reused after a size check
    (`deep=True`: a sha256 check too); a corrupt one is rebuilt with a warning.
    `progress(done_bytes, total_bytes)` is called as the weights stream to disk; an exception raised
    from it (KeyboardInterrupt included) aborts the build and leaves nothing behind."""
    if isinstance(card, str):
        card = get_card(card)
    _check_format(fmt)
    _check_kind(card, fmt)
    quant = quant or DEFAULT_QUANT[fmt]
    out_root = Path(out_root) if out_root is not None else default_models_dir()
    recipe = build_recipe(card, fmt=fmt, quant=quant, seed=seed, block_size=block_size)
    target = artifact_dir(card.id, out_root, quant=quant, block_size=block_size, seed=seed, fmt=fmt)
    return _build_artifact(card, target, recipe, progress=progress, force=force, deep=deep)


def build_speech_model(card: SpeechCard | str, *, quant: str = "f16", seed: int = 0, out_root: Path | None = None,
                       progress: ProgressFn | None = None, force: bool = False, deep: bool = False) -> BuiltModel:
    """Build (or reuse) a speech card's whisper.cpp model file (`ggml-model.bin`) with seeded random weights.

    `quant` "f16" (default), "q8_0" or "q5_0". The same cache, disk check, temp folder, manifest and
    atomic rename as `build_model`; `BuiltModel.model_file` is the .bin, `BuiltModel.format` "ggml"."""
    if isinstance(card, str):
        card = get_speech_card(card)
    _check_kind(card, "ggml")
    out_root = Path(out_root) if out_root is not None else default_models_dir()
    recipe = whisper_ggml.recipe(card, quant=quant, seed=seed)
    target = artifact_dir(card.id, out_root, quant=recipe.options["quant"], seed=seed, fmt="ggml")
    return _build_artifact(card, target, recipe, progress=progress, force=force, deep=deep)


def build_recipe(card: ModelCard | SpeechCard, *, fmt: str = "onnx", quant: str | None = None, seed: int = 0,
                 block_size: int = 32) -> Recipe:
    """What `build_model` (`build_speech_model` for ggml) will write for these options (options, the disk
    check's `needed_bytes`, the writer); nothing is written. Raises ModelBuildError on options the format
    does not take."""
    _check_format(fmt)
    _check_kind(card, fmt)
    quant = quant or DEFAULT_QUANT[fmt]
    if fmt == "ggml":
        return whisper_ggml.recipe(card, quant=quant, seed=seed)
    if fmt == "gguf":
        return gguf.recipe(card, quant=quant, seed=seed)
    if fmt == "litertlm":
        return litertlm_graph.recipe(card, quant=quant, seed=seed)
    return _onnx_recipe(card, quant=quant, seed=seed, block_size=block_size)


def _onnx_recipe(card: ModelCard, *, quant: str, seed: int, block_size: int) -> Recipe:
    if quant not in QUANT_BITS:
        hint = f"{quant} is a GGUF quant: build_model(..., fmt='gguf')" if quant.lower() in ("q4_0", "q8_0") else None
        raise ModelBuildError(f"unknown quant {quant!r}; known: {', '.join(QUANT_BITS)}", quant=quant, hint=hint)
    if block_size not in (16, 32, 64, 128):
        raise ModelBuildError(f"block_size {block_size} not supported (16, 32, 64 or 128)", block_size=block_size)
    try:
        plan = GraphPlan(card, bits=QUANT_BITS[quant], block_size=block_size)
    except ValueError as exc:
        raise ModelBuildError(str(exc), card=card.id) from None

    def write(tmp: Path, progress: ProgressFn | None) -> dict[str, str]:
        hashes = write_model(plan, tmp, seed=seed, progress=progress)
        config = json.dumps(genai_config(card), indent=2, sort_keys=True).encode() + b"\n"
        (tmp / "genai_config.json").write_bytes(config)
        hashes["genai_config.json"] = hashlib.sha256(config).hexdigest()
        return hashes

    return Recipe(
        options=_options(quant, block_size, seed),
        builder_version=BUILDER_VERSION,
        needed_bytes=plan.data_bytes() + 1024 * 1024,
        write=write,
        manifest_fields={
            "weight_bytes_read_per_token": plan.weight_bytes_read_per_token(),
            "kv_cache_bytes_per_token_fp32": card.kv_cache_bytes_per_token(4),
        },
    )


def _build_artifact(card: ModelCard | SpeechCard, target: Path, recipe: Recipe, *, progress: ProgressFn | None,
                    force: bool, deep: bool) -> BuiltModel:
    """Cache check, disk check, write into a temp folder, manifest, atomic rename."""
    options = recipe.options
    if target.exists() and not force:
        try:
            manifest = verify_artifact(target, deep=deep)
            if _matches(manifest, card, options, recipe.builder_version):
                return BuiltModel(target, manifest)
            log.warning("artefact %s was built from another card or builder version: rebuilding", target)
        except ArtifactCorruptError as exc:
            log.warning("artefact %s is corrupt (%s): rebuilding", target, exc)
        shutil.rmtree(target)  # corrupt or stale: its room counts as free for the disk check

    _clean_stale_temps(target.parent)
    check_disk(target.parent, recipe.needed_bytes)  # before any folder or file is made
    target.parent.mkdir(parents=True, exist_ok=True)

    tmp = target.parent / f"{_TMP_PREFIX}{target.name}-p{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        hashes = recipe.write(tmp, progress)
        files = {name: {"bytes": (tmp / name).stat().st_size, "sha256": hashes[name]} for name in sorted(hashes)}
        manifest = {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "card_id": card.id,
            "card": card.to_dict(),
            "options": options,
            "builder_version": recipe.builder_version,
            "architecture": card.architecture,
            "params": card.params(),
            "synthetic_weights": True,
            **recipe.manifest_fields,
            "files": files,
            "total_bytes": sum(f["bytes"] for f in files.values()),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            if not force:  # a concurrent build of the same artefact finished first: keep it
                try:
                    existing = verify_artifact(target)
                    if _matches(existing, card, options, recipe.builder_version):
                        shutil.rmtree(tmp)
                        return BuiltModel(target, existing)
                except ArtifactCorruptError:
                    pass
            shutil.rmtree(target)
        os.replace(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelBuildError(f"building {card.id} into {target} failed: {exc}", card=card.id, path=str(target)) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuiltModel(target, manifest)
