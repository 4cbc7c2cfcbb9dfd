"""The run record's `model` block for a reference card's build: what pools results (the digest)
and what the roofline needs (bytes read per token, KV bytes per position)."""

from __future__ import annotations

import hashlib

from suite.catalog.cards import ModelCard
from suite.models.artifact import BuiltModel


def artefact_digest(manifest: dict) -> str:
    """The model's identity for pooling results: sha256 over the artefact's file hashes."""
    h = hashlib.sha256()
    for name, meta in sorted(manifest["files"].items()):
        h.update(f"{name}:{meta['sha256']}\n".encode())
    return h.hexdigest()


def kv_bytes_per_position(card: ModelCard, manifest: dict) -> int:
    """KV cache bytes one position adds, in the dtype the runtime keeps it in: the manifest
    says (fp32 for onnxruntime-genai on CPU, f16 for llama.cpp's default cache)."""
    for key in ("kv_cache_bytes_per_token_f16", "kv_cache_bytes_per_token_fp32"):
        if manifest.get(key):
            return int(manifest[key])
    return card.kv_cache_bytes_per_token(4)


def model_record(card: ModelCard, built: BuiltModel) -> dict:
    m = built.manifest
    opts = m.get("options", {})
    return {
        "id": card.id,
        "name": card.name,
        "architecture": card.architecture,
        "params": m.get("params", card.params()),
        "quant": opts.get("quant"),
        "format": opts.get("format", "onnx"),
        "sha256": artefact_digest(m),
        "bytes": m.get("total_bytes"),
        "synthetic_weights": bool(m.get("synthetic_weights", True)),
        "seed": opts.get("seed"),
        "weight_bytes_read_per_token": m.get("weight_bytes_read_per_token"),
        "kv_bytes_per_position": kv_bytes_per_position(card, m),
        "path": str(built.path),
    }
