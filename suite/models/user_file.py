"""`--model-file PATH`: describe a user's real checkpoint so a run (and its roofline) works
without a reference card.

- **GGUF** (llama.cpp, `llama-bench`): read with the `gguf` package: `general.architecture`,
  `general.name`, `general.file_type` (-> quant `q4_0`, `q4_k_m`...), `<arch>.embedding_length`,
  `.block_count`, `.attention.head_count(_kv)`, `.feed_forward_length`, `.context_length`,
  `.attention.key_length`, vocab size (`<arch>.vocab_size`, else the tokenizer's token list, else
  the embedding table's rows); parameters counted from the tensor shapes (rope factors excluded).
- **ONNX for onnxruntime-genai**: a folder with `genai_config.json` and the model files it names.
  Architecture numbers come from the config; parameters from the initializers' shapes (read
  without their external data): a `MatMulNBits` weight counts K x N (its packed codes, scales and
  zero points are not parameters), a tensor shared by two nodes (tied embeddings) counts once,
  integer constants are not parameters.

- **LiteRT-LM `.litertlm`** (the engine's own container, `LITERTLM` magic): not read; its architecture,
  parameter count and bytes read per token are None, and the roofline says it has no bound for it.
- **ExecuTorch `.pte`** (a flatbuffer program, file identifier `ET..` at byte 4): the graph is not read
  either; the delegates it was exported for are (their ids in the program's flatbuffer, before the
  segments: `XnnpackBackend` is the CPU, `VulkanBackend` the GPU, `QnnBackend` the NPU...), as
  `delegates` and the `backend` they imply.
- **A Genie config** (`genie_config.json`, Qualcomm's `genie-t2t-run -c`): a JSON file with a `dialog` (or
  `text-generator`) object. It is the model: every file it names (the context binaries, the tokenizer, the
  backend extensions config, and the files that one names) is part of it, found relative to the config's
  folder; a named file that is missing is refused with its key. Its backend comes from the engine's
  `backend.type` (`QnnHtp` is the NPU, `QnnGpu` the GPU, `QnnGenAiTransformer` the CPU).

`artefact_from_file(path) -> (FileModelCard, BuiltModel)` (with `file` set) gives what session code gets from
`get_model_card` + `build_model`: same attribute names (`card.id/name/architecture/params()/
kv_cache_bytes_per_token()/hidden_size/vocab_size/tie_word_embeddings`, `built.path/manifest/
model_file/format/total_bytes`), with `manifest["synthetic_weights"] = False`,
`weight_bytes_read_per_token`, `kv_cache_bytes_per_token_f16` (GGUF: llama.cpp's default
cache) or `_fp32` (ONNX on CPU), and `model_sha256` = the file's own sha256 (for a GGUF; for an
ONNX folder, sha256 over the files' hashes as for built artefacts).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from suite.core.errors import EdgebenchError
from suite.core.filehash import local_sha256
from suite.models.artifact import BuiltModel
from suite.models.record import model_record as base

GGUF_MAGIC = b"GGUF"
#: the LiteRT-LM container's first bytes (litert_lm_builder.litertlm_core.HEADER_MAGIC_BYTES)
LITERTLM_MAGIC = b"LITERTLM"
#: an ExecuTorch program's flatbuffer file identifier (bytes 4-8: "ET" and the schema version, "ET12")
PTE_IDENT = b"ET"
#: the optional extended header after it (exir/_serialize/_program.py): magic, its length (u32), the
#: program's size and the segments' base offset (u64 each)
PTE_HEADER_MAGIC = b"eh00"
#: ExecuTorch delegate ids -> where they run
PTE_DELEGATES = {"XnnpackBackend": "cpu", "KleidiAIBackend": "cpu", "VulkanBackend": "gpu", "MPSBackend": "gpu",
                 "QnnBackend": "npu", "NeuronBackend": "npu", "EnnBackend": "npu", "CoreMLBackend": "npu",
                 "EthosUBackend": "npu", "OpenvinoBackend": "cpu"}
#: the format name of a Genie model (its config and the QNN context binaries it names), as the importer names it
GENIE_FORMAT = "qnn-context-binary"
#: Genie engine backend types -> where they run
GENIE_BACKENDS = {"QnnHtp": "npu", "QnnGpu": "gpu", "QnnGenAiTransformer": "cpu", "QnnCpu": "cpu"}
#: Genie config keys whose values are file paths
GENIE_PATH_KEYS = frozenset({"path", "ctx-bins", "extensions", "model-bin", "lut-path", "bin-path", "file"})


class ModelFileError(EdgebenchError):
    exit_code = 2


@dataclass(frozen=True)
class FileModelCard:
    """A ModelCard-like description read from a checkpoint (not a reference card)."""

    id: str
    name: str
    architecture: str
    hidden_size: int | None
    num_hidden_layers: int | None
    num_attention_heads: int | None
    num_key_value_heads: int | None
    head_dim: int | None
    intermediate_size: int | None
    vocab_size: int | None
    max_position_embeddings: int | None
    tie_word_embeddings: bool
    param_count: int | None  # None: the file does not say (an opaque engine artefact such as .litertlm)
    quant: str | None
    format: str  # "gguf" | "onnx" | "litertlm" | "pte" | "qnn-context-binary"
    reference: bool = False
    source_file: str = ""

    def params(self) -> int | None:
        return self.param_count

    @property
    def q_size(self) -> int | None:
        return self.num_attention_heads * self.head_dim if self.num_attention_heads and self.head_dim else None

    @property
    def kv_size(self) -> int | None:
        return self.num_key_value_heads * self.head_dim if self.num_key_value_heads and self.head_dim else None

    def kv_cache_bytes_per_token(self, dtype_bytes: float) -> int:
        """Bytes of K and V one position adds across all layers (0 when the file does not say)."""
        if not (self.num_hidden_layers and self.kv_size):
            return 0
        return int(2 * self.num_hidden_layers * self.kv_size * dtype_bytes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    return local_sha256(Path(path))  # cached by (path, size, mtime, inode)


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() or c in "-._" else "-" for c in text.lower()).strip("-.")
    return out or "model"


# --- GGUF --------------------------------------------------------------------------------------


def _quant_name(file_type: int | None) -> str | None:
    if file_type is None:
        return None
    import gguf  # lazy: as in describe_gguf, which has imported it by now

    try:
        name = gguf.LlamaFileType(file_type).name  # MOSTLY_Q4_K_M, ALL_F32, MOSTLY_F16
    except ValueError:
        return f"file_type_{file_type}"
    return name.split("_", 1)[1].lower() if "_" in name else name.lower()


def describe_gguf(path: str | Path) -> tuple[FileModelCard, dict[str, Any]]:
    """(card-like, manifest fields) of a GGUF file."""
    try:
        import gguf  # lazy: a missing gguf becomes a ModelFileError with an install hint, here only
    except ImportError as exc:  # a core dependency; only a broken install lacks it
        raise ModelFileError("reading a GGUF needs the gguf package", hint="pip install 'gguf>=0.19,<0.20'") from exc
    p = Path(path)
    try:
        reader = gguf.GGUFReader(p, "r")
    except (ValueError, OSError) as exc:
        raise ModelFileError(f"{p} is not a readable GGUF file: {exc}") from exc

    def get(key: str, default=None):
        f = reader.fields.get(key)
        if f is None:
            return default
        try:
            return f.contents()
        except Exception:  # noqa: BLE001 - an odd field type: the file still describes itself otherwise
            return default

    arch = get("general.architecture")
    if not arch:
        raise ModelFileError(f"{p} has no general.architecture: not a llama.cpp model file")
    tensors = {t.name: t for t in reader.tensors}
    hidden = get(f"{arch}.embedding_length")
    heads = get(f"{arch}.attention.head_count")
    kv_heads = get(f"{arch}.attention.head_count_kv", heads)
    if isinstance(heads, list):  # per-layer counts (some hybrid models): the largest
        heads = max(heads)
    if isinstance(kv_heads, list):
        kv_heads = max(kv_heads)
    head_dim = get(f"{arch}.attention.key_length") or (hidden // heads if hidden and heads else None)
    vocab = get(f"{arch}.vocab_size")
    if vocab is None:
        tokens = reader.fields.get("tokenizer.ggml.tokens")
        vocab = len(tokens.data) if tokens is not None else None
    if vocab is None and "token_embd.weight" in tensors:
        vocab = int(tensors["token_embd.weight"].shape[-1])  # ggml order: ne0 = hidden, ne1 = vocab
    ff = get(f"{arch}.feed_forward_length")
    if isinstance(ff, list):
        ff = max(ff)
    tied = "output.weight" not in tensors
    params = sum(int(t.n_elements) for n, t in tensors.items() if not n.startswith("rope_freqs"))
    # one decode step streams every tensor but the embedding table, of which it reads one row
    # (the whole table when it is also the output matrix)
    wbytes = 0
    for n, t in tensors.items():
        if n == "token_embd.weight" and not tied:
            rows = int(t.shape[-1]) if len(t.shape) > 1 else 1
            wbytes += int(t.n_bytes) // max(rows, 1)
        else:
            wbytes += int(t.n_bytes)
    file_type = get("general.file_type")
    types: dict[str, int] = {}
    for t in tensors.values():
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    name = get("general.name") or p.stem
    card = FileModelCard(
        id=_slug(p.stem), name=str(name), architecture=str(arch), hidden_size=hidden,
        num_hidden_layers=get(f"{arch}.block_count"), num_attention_heads=heads, num_key_value_heads=kv_heads,
        head_dim=head_dim, intermediate_size=ff, vocab_size=vocab,
        max_position_embeddings=get(f"{arch}.context_length"), tie_word_embeddings=tied, param_count=params,
        quant=_quant_name(file_type), format="gguf", source_file=str(p.resolve()),
    )
    fields = {
        "weight_bytes_read_per_token": wbytes,
        "kv_cache_bytes_per_token_f16": card.kv_cache_bytes_per_token(2),  # llama.cpp's default cache type
        "kv_cache_bytes_per_token_fp32": card.kv_cache_bytes_per_token(4),
        "gguf": {"architecture": arch, "file_type": file_type, "tensor_types": dict(sorted(types.items())),
                 "n_tensors": len(tensors)},
    }
    return card, fields


# --- ONNX (onnxruntime-genai) --------------------------------------------------------------------

_QUANT_OPS = {"MatMulNBits": 0, "GatherBlockQuantized": 0}  # op -> index of the packed weight input


def _onnx_dir(path: Path) -> tuple[Path, dict]:
    folder = path if path.is_dir() else path.parent
    cfg_path = folder / "genai_config.json"
    if not cfg_path.is_file():
        raise ModelFileError(f"{path}: no genai_config.json next to it: not an onnxruntime-genai model",
                             hint="give the folder onnxruntime-genai's model builder wrote (genai_config.json + model.onnx)")
    try:
        return folder, json.loads(cfg_path.read_text())
    except ValueError as exc:
        raise ModelFileError(f"{cfg_path} is not valid JSON: {exc}") from exc


def describe_onnx(path: str | Path) -> tuple[FileModelCard, dict[str, Any], Path, list[str]]:
    """(card-like, manifest fields, the .onnx file, names of every model file) of an ort-genai folder."""
    folder, cfg = _onnx_dir(Path(path))
    m = cfg.get("model", {})
    dec = m.get("decoder", {})
    onnx_path = folder / dec.get("filename", "model.onnx")
    if not onnx_path.is_file():
        raise ModelFileError(f"{folder}: genai_config.json names {onnx_path.name}, which is missing")
    model = onnx.load(str(onnx_path), load_external_data=False)
    g = model.graph
    inits = {t.name: t for t in g.initializer}

    def nbytes(t) -> int:
        n = math.prod(t.dims) if t.dims else 1
        if t.data_type in (TensorProto.UINT4, TensorProto.INT4):
            return (n + 1) // 2
        return n * np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize

    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)
    quantized: dict[str, int] = {}  # packed weight -> parameters it holds
    aux: set[str] = set()  # scales / zero points of quantized weights
    untied_tables: list[str] = []
    rope: set[str] = set()
    inter = None
    for node in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "MatMulNBits" and node.input[1] in inits:
            quantized[node.input[1]] = int(attrs["K"]) * int(attrs["N"])
            aux.update(i for i in node.input[2:] if i)
            if inter is None and ("gate_proj" in node.name or "up_proj" in node.name):
                inter = int(attrs["N"])
        elif node.op_type in ("GroupQueryAttention", "RotaryEmbedding"):
            rope.update(i for i in node.input if i in inits)  # cos/sin caches: tables, not weights
        elif node.op_type == "GatherBlockQuantized":
            aux.update(i for i in node.input[2:] if i)
        elif node.op_type == "Gather" and node.input[0] in inits:
            untied_tables.append(node.input[0])
        elif node.op_type == "MatMul" and inter is None and ("gate_proj" in node.name or "up_proj" in node.name):
            w = inits.get(node.input[1])
            if w is not None and len(w.dims) == 2:
                inter = int(w.dims[1])
    params = 0
    for name, t in inits.items():
        if name in quantized:
            params += quantized[name]
        elif name not in aux and name not in rope and t.data_type in floats:
            params += math.prod(t.dims) if t.dims else 1
    hidden = dec.get("hidden_size")
    wbytes = sum(nbytes(t) for n, t in inits.items() if n not in rope)
    for name in untied_tables:  # a Gather reads one row of its table per token
        t = inits[name]
        rows = t.dims[0] if t.dims else 1
        wbytes -= nbytes(t) - nbytes(t) // max(rows, 1)
    files = sorted({"genai_config.json", onnx_path.name}
                   | {e.value for t in inits.values() for e in t.external_data if e.key == "location"})
    quant = None
    if quantized:
        bits = {helper.get_attribute_value(a) for n in g.node if n.op_type == "MatMulNBits"
                for a in n.attribute if a.name == "bits"}
        quant = "int" + "/".join(str(b) for b in sorted(bits)) if bits else "int4"
    heads = dec.get("num_attention_heads")
    card = FileModelCard(
        id=_slug(folder.name), name=folder.name, architecture=str(m.get("type", "unknown")), hidden_size=hidden,
        num_hidden_layers=dec.get("num_hidden_layers"), num_attention_heads=heads,
        num_key_value_heads=dec.get("num_key_value_heads", heads),
        head_dim=dec.get("head_size") or (hidden // heads if hidden and heads else None),
        intermediate_size=inter, vocab_size=m.get("vocab_size"), max_position_embeddings=m.get("context_length"),
        tie_word_embeddings=not untied_tables, param_count=params, quant=quant, format="onnx",
        source_file=str(folder.resolve()),
    )
    fields = {
        "weight_bytes_read_per_token": wbytes,
        # onnxruntime-genai keeps the KV cache in fp32 on CPU
        "kv_cache_bytes_per_token_fp32": card.kv_cache_bytes_per_token(4),
        "onnx": {"opset": [(o.domain or "ai.onnx", o.version) for o in model.opset_import],
                 "n_initializers": len(inits), "quantized_matmuls": len(quantized)},
    }
    for f in files:
        if not (folder / f).is_file():
            raise ModelFileError(f"{folder}: the model needs {f}, which is missing")
    return card, fields, onnx_path, files


# --- the API ---------------------------------------------------------------------------------


def detect_format(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir() or p.name == "genai_config.json" or p.suffix == ".onnx":
        return "onnx"
    try:
        with open(p, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelFileError(f"cannot read the model file {p}: {exc}") from exc
    if magic == GGUF_MAGIC:
        return "gguf"
    if magic == LITERTLM_MAGIC[:4] and _head(p, len(LITERTLM_MAGIC)) == LITERTLM_MAGIC:
        return "litertlm"
    head = _head(p, 8)
    if head[4:6] == PTE_IDENT and head[6:8].isdigit():
        return "pte"
    if _head(p, 256).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{" and _genie_config(p) is not None:
        return GENIE_FORMAT
    raise ModelFileError(f"{p}: not a GGUF file (magic {magic!r}), a LiteRT-LM .litertlm file, an ExecuTorch .pte "
                         "program, a Genie config nor an onnxruntime-genai folder",
                         hint="--model-file takes a .gguf, .litertlm or .pte file, or the folder holding "
                              "genai_config.json; --genie-config a genie_config.json")


def _head(p: Path, n: int) -> bytes:
    with open(p, "rb") as fh:
        return fh.read(n)


def describe_litertlm(p: Path) -> tuple[FileModelCard, dict]:
    """A LiteRT-LM container is the engine's own artefact: edgebench does not read its graph, so the
    architecture, parameter count and bytes read per token are unknown (the roofline says so); the
    record names the file, its size and its sha256."""
    stem = p.name[: -len(".litertlm")] if p.name.endswith(".litertlm") else p.stem
    card = _opaque_card(stem, p, "litertlm")
    fields = {"weight_bytes_read_per_token": None,
              "unknown": "a .litertlm file is LiteRT-LM's own artefact: its architecture, parameter count and "
                         "bytes read per token are not read by edgebench"}
    return card, fields


def _opaque_card(stem: str, p: Path, fmt: str, **arch) -> FileModelCard:
    return FileModelCard(
        id=stem, name=stem, architecture="unknown", hidden_size=arch.get("hidden_size"), num_hidden_layers=None,
        num_attention_heads=None, num_key_value_heads=None, head_dim=None, intermediate_size=None,
        vocab_size=arch.get("vocab_size"), max_position_embeddings=arch.get("max_position_embeddings"),
        tie_word_embeddings=False, param_count=None, quant=None, format=fmt, source_file=str(p))


def pte_delegates(p: Path) -> list[str]:
    """The delegate ids an ExecuTorch program holds, in PTE_DELEGATES order (none: portable CPU kernels):
    searched in its flatbuffer (up to the segments' base offset when the extended header gives it)."""
    with open(p, "rb") as fh:
        head = fh.read(32)
        limit = None
        if head[8:12] == PTE_HEADER_MAGIC and len(head) >= 32:
            program_size, segment_base = struct.unpack_from("<QQ", head, 16)
            limit = segment_base or program_size or None
        fh.seek(0)
        found: set[str] = set()
        tail = b""
        read = 0
        while limit is None or read < limit:
            chunk = fh.read(min(1 << 22, limit - read) if limit else 1 << 22)
            if not chunk:
                break
            read += len(chunk)
            window = tail + chunk
            found |= {name for name in PTE_DELEGATES if name.encode() in window}
            tail = window[-32:]
    return [name for name in PTE_DELEGATES if name in found]


def describe_pte(p: Path) -> tuple[FileModelCard, dict]:
    """An ExecuTorch program is the engine's own artefact (graph not read, as a .litertlm); its delegates are."""
    delegates = pte_delegates(p)
    kinds = sorted({PTE_DELEGATES[d] for d in delegates}, key=("npu", "gpu", "cpu").index)
    fields = {"weight_bytes_read_per_token": None, "delegates": delegates,
              "backend": kinds[0] if kinds else "cpu",
              "unknown": "a .pte file is ExecuTorch's own program: its architecture, parameter count and bytes read "
                         "per token are not read by edgebench"}
    return _opaque_card(p.stem, p, "pte"), fields


def _genie_config(p: Path) -> dict | None:
    """The Genie config in `p` (a JSON object with a dialog or text-generator object), else None."""
    try:
        obj = json.loads(Path(p).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if isinstance(obj, dict) and any(isinstance(obj.get(k), dict) for k in ("dialog", "text-generator")):
        return obj
    return None


def genie_files(config: Path) -> dict[str, Path]:
    """Every file a Genie config names, as written there -> where it is here (relative paths from the
    config's folder), the JSON files it names searched the same way; a ModelFileError names a missing one."""
    found: dict[str, Path] = {}
    seen: set[Path] = set()

    def walk(node, key: str, folder: Path, owner: Path) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k, folder, owner)
        elif isinstance(node, list):
            for v in node:
                walk(v, key, folder, owner)
        elif isinstance(node, str) and node:
            path = Path(node) if Path(node).is_absolute() else folder / node
            if path.is_file():
                found.setdefault(node, path)
                if path.suffix == ".json" and path.resolve() not in seen:
                    seen.add(path.resolve())
                    try:
                        walk(json.loads(path.read_text(encoding="utf-8")), "", path.parent, path)
                    except (ValueError, UnicodeDecodeError):
                        pass
            elif key in GENIE_PATH_KEYS:
                raise ModelFileError(f"{owner} names {node!r} ({key!r}), which is not there ({path})",
                                     hint="a Genie config's files are found relative to its folder: put them "
                                          "beside it, or give their absolute paths")

    seen.add(Path(config).resolve())
    obj = _genie_config(config)
    if obj is None:
        raise ModelFileError(f"{config} is not a Genie config (a JSON object with a dialog object)")
    walk(obj, "", Path(config).parent, Path(config))
    return found


def genie_remote_names(config: Path, files: dict[str, Path]) -> dict[str, str]:
    """Where each named file lands beside the config on a device: its path under the config's folder, or
    `_ext/<n>-<name>` for one outside it (the config pushed is rewritten to name these)."""
    root = Path(config).parent.resolve()
    out: dict[str, str] = {}
    for i, (written, path) in enumerate(sorted(files.items())):
        try:
            out[written] = path.resolve().relative_to(root).as_posix()
        except ValueError:
            out[written] = f"_ext/{i}-{path.name}"
    return out


def genie_backend(obj: dict) -> str | None:
    """Where a Genie config's engine runs (GENIE_BACKENDS), from its first engine's backend.type."""
    node = obj.get("dialog") or obj.get("text-generator") or {}
    engines = node.get("engine")
    for eng in (engines if isinstance(engines, list) else [engines]):
        btype = ((eng or {}).get("backend") or {}).get("type") if isinstance(eng, dict) else None
        if isinstance(btype, str):
            return GENIE_BACKENDS.get(btype, btype)
    return None


def describe_genie(p: Path) -> tuple[FileModelCard, dict]:
    obj = _genie_config(p) or {}
    node = obj.get("dialog") or obj.get("text-generator") or {}
    ctx = node.get("context") if isinstance(node.get("context"), dict) else {}
    stem = p.stem if p.stem not in ("genie_config", "config", "genie-config") else (p.parent.name or p.stem)
    ints = {k: v for k, v in ctx.items() if isinstance(v, int) and not isinstance(v, bool)}
    card = _opaque_card(stem, p, GENIE_FORMAT, vocab_size=ints.get("n-vocab"), max_position_embeddings=ints.get("size"))
    fields = {"weight_bytes_read_per_token": None, "backend": genie_backend(obj),
              "dialog_type": node.get("type") if isinstance(node.get("type"), str) else None,
              "unknown": "a Genie model is Qualcomm's compiled context binaries: its architecture, parameter count "
                         "and bytes read per token are not read by edgebench"}
    return card, fields


def artefact_from_file(path: str | Path) -> tuple[FileModelCard, BuiltModel]:
    """What session code needs in place of `get_model_card(...)` + `build_model(...)`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelFileError(f"no such model file: {p}")
    fmt = detect_format(p)
    if fmt == "gguf":
        card, fields = describe_gguf(p)
        folder, model_file, names = p.parent, p, [p.name]
    elif fmt in ("litertlm", "pte"):
        card, fields = describe_litertlm(p) if fmt == "litertlm" else describe_pte(p)
        folder, model_file, names = p.parent, p, [p.name]
    elif fmt == GENIE_FORMAT:
        card, fields = describe_genie(p)
        named = genie_files(p)
        remote = genie_remote_names(p, named)
        # the config and every file it names, under the names they get beside it on a device
        fields["genie_files"] = {p.name: str(p), **{remote[w]: str(named[w]) for w in named}}
        fields["genie_paths"] = remote
        folder, model_file = p.parent, p
    else:
        card, fields, model_file, names = describe_onnx(p)
        folder = model_file.parent
    if fmt == GENIE_FORMAT:
        files = {n: {"bytes": Path(f).stat().st_size, "sha256": file_sha256(Path(f))}
                 for n, f in fields["genie_files"].items()}
    else:
        files = {n: {"bytes": (folder / n).stat().st_size, "sha256": file_sha256(folder / n)} for n in names}
    if fmt in ("gguf", "litertlm", "pte"):
        digest = files[p.name]["sha256"]
    else:
        h = hashlib.sha256()
        for n, meta in sorted(files.items()):
            h.update(f"{n}:{meta['sha256']}\n".encode())
        digest = h.hexdigest()
    manifest = {
        "card_id": card.id,
        "card": card.to_dict(),
        "options": {"format": fmt, "quant": card.quant, "seed": None},
        "builder_version": None,
        "architecture": card.architecture,
        "params": card.params(),
        "synthetic_weights": False,
        "origin": "model-file",
        "model_sha256": digest,
        **fields,
        "files": files,
        "total_bytes": sum(f["bytes"] for f in files.values()),
    }
    return card, BuiltModel(folder, manifest, file=model_file)


def model_record(card: FileModelCard, built: BuiltModel) -> dict:
    """The run record's `model` for a user's file: a card's model_record with the file's own digest
    as `sha256` (a GGUF's sha256 is the file's; built artefacts hash their file list)."""
    rec = base(card, built)  # type: ignore[arg-type]
    rec["sha256"] = built.manifest["model_sha256"]
    rec["path"] = str(built.model_file)
    rec["source"] = "model-file"
    return rec
