"""The LiteRT-LM model format (suite/models/litertlm_graph.py): built from the cards, deterministic, loaded
by LiteRT's interpreter and by LiteRT-LM's engine, and numerically the card's architecture."""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np
import pytest

from suite.catalog.cards import ModelCard, get_model_card
from suite.core.errors import ModelBuildError
from suite.models import build_model, find_built, verify_artifact
from suite.models import litertlm_graph as lg

pytest.importorskip("litert_lm_builder", reason="litert-lm-builder is in the [test] extra")
from ai_edge_litert import schema_py_generated as tfl  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from litert_lm_builder import litertlm_header_schema_py_generated as lm  # noqa: E402

TINY = get_model_card("tiny")
TINY_QWEN2 = dataclasses.replace(TINY, id="tiny-qwen2", architecture="qwen2", qkv_bias=True, tie_word_embeddings=True,
                                 rms_norm_eps=1e-6, rope_theta=1e6)
TINY_LLAMA3 = dataclasses.replace(
    TINY, id="tiny-llama3", tie_word_embeddings=True, max_position_embeddings=512,
    rope_scaling=(("rope_type", "llama3"), ("factor", 8.0), ("low_freq_factor", 1.0), ("high_freq_factor", 4.0),
                  ("original_max_position_embeddings", 64)))


def _sections(path) -> dict[int, bytes]:
    """The .litertlm container's sections by data type, read with the builder package's schema."""
    data = open(path, "rb").read()
    assert data[:8] == b"LITERTLM"
    end = int.from_bytes(data[24:32], "little")
    meta = lm.LiteRTLMMetaData.GetRootAs(data[32:end], 0).SectionMetadata()
    out = {}
    for i in range(meta.ObjectsLength()):
        o = meta.Objects(i)
        out[o.DataType()] = data[o.BeginOffset():o.EndOffset()]
    return out


def _tflite(path, tmp_path):
    f = tmp_path / "model.tflite"
    f.write_bytes(_sections(path)[lm.AnySectionDataType.TFLiteModel])
    return f


def _weights(tflite_bytes: bytes) -> dict[str, np.ndarray]:
    """Every named constant of the decode subgraph as float64, dequantized from the file itself (int8 codes
    times their per-row quantization scales), read through TFLite's own schema (not the builder's code)."""
    model = tfl.ModelT.InitFromPackedBuf(tflite_bytes, 0)
    sg = model.subgraphs[-1]
    out = {}
    for t in sg.tensors:
        buf = model.buffers[t.buffer]
        name = t.name.decode() if isinstance(t.name, bytes) else t.name
        if t.buffer == 0 or buf.offset <= 1 or name.startswith("t"):
            continue
        raw = tflite_bytes[buf.offset:buf.offset + buf.size]
        if t.type == tfl.TensorType.INT8:
            codes = np.frombuffer(raw, np.int8).reshape(t.shape).astype(np.float64)
            out[name] = codes * np.asarray(t.quantization.scale, np.float64)[:, None]
        else:
            out[name] = np.frombuffer(raw, "<f4").reshape(t.shape).astype(np.float64)
    return out


def _rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def _rope(x, pos, card: ModelCard):
    hd = card.head_dim
    inv = 1.0 / card.rope_theta ** (np.arange(0, hd // 2) * 2 / hd)
    if card.rope_scaling:  # Llama 3 frequency-dependent scaling, written from the HF formula
        s = dict(card.rope_scaling)
        wl = 2 * np.pi / inv
        lo, hi, f, old = s["low_freq_factor"], s["high_freq_factor"], s["factor"], s["original_max_position_embeddings"]
        smooth = (old / wl - lo) / (hi - lo)
        inv = np.where(wl > old / lo, inv / f, np.where(wl < old / hi, inv, (1 - smooth) * inv / f + smooth * inv))
    ang = np.outer(pos, inv)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)  # HF rotate_half


def _reference_logits(card: ModelCard, w: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """The architecture in float64 numpy (HF's Llama / Qwen2): last position's logits."""
    nh, nkv, hd, eps = card.num_attention_heads, card.num_key_value_heads, card.head_dim, card.rms_norm_eps
    x = w["embed"][ids]
    s, pos = len(ids), np.arange(len(ids))
    for i in range(card.num_hidden_layers):
        n = _rms(x, w[f"l{i}.attn_norm"], eps)
        q, k, v = (n @ w[f"l{i}.{p}"].T + (w[f"l{i}.{p}_bias"] if card.qkv_bias else 0) for p in "qkv")
        q, k = _rope(q.reshape(s, nh, hd), pos, card), _rope(k.reshape(s, nkv, hd), pos, card)
        k, v = np.repeat(k, nh // nkv, axis=1), np.repeat(v.reshape(s, nkv, hd), nh // nkv, axis=1)
        att = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + np.triu(np.full((s, s), -np.inf), 1)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + np.einsum("hqk,khd->qhd", att, v).reshape(s, nh * hd) @ w[f"l{i}.o"].T
        n2 = _rms(x, w[f"l{i}.ffn_norm"], eps)
        g, u = n2 @ w[f"l{i}.gate"].T, n2 @ w[f"l{i}.up"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[f"l{i}.down"].T
    head = w["embed"] if card.tie_word_embeddings else w["lm_head"]
    return _rms(x, w["final_norm"], eps)[-1] @ head.T


def _run(runner, card, ctx, ids, start, caches):
    t = len(ids)
    mask = np.full((1, 1, t, ctx), -1e30, np.float32)  # LiteRT-LM's executor passes a large negative too
    for r in range(t):
        mask[0, 0, r, : start + r + 1] = 0
    feeds = {"tokens": np.array([ids], np.int32), "input_pos": np.arange(start, start + t, dtype=np.int32),
             "mask": mask, **caches}
    return runner(**feeds)


@pytest.mark.parametrize(("card", "quant"), [(TINY, "f32"), (TINY, "int8"), (TINY_QWEN2, "f32"),
                                             (TINY_QWEN2, "int8"), (TINY_LLAMA3, "f32")],
                         ids=lambda v: getattr(v, "id", v))
def test_logits_match_a_numpy_forward_pass(tmp_path, card, quant):
    """A 7-token prefill through `prefill_32` (padded, masked), then one step of `decode` fed the returned
    caches, in LiteRT's interpreter, against float64 numpy on the weights read back from the file.

    f32: fp32 rounding only (seen ~1e-6): tolerance 1e-4 on logits of std ~1; a wrong rotary layout or a
    missing bias misses by ~1. int8: the FULLY_CONNECTEDs quantize their activations per row on the fly
    (dynamic range), which moves logits by a few hundredths: tolerance 0.15."""
    built = build_model(card, fmt="litertlm", quant=quant, out_root=tmp_path)
    path = _tflite(built.model_file, tmp_path)
    w = _weights(path.read_bytes())
    ctx = built.manifest["litertlm"]["context"]
    it = Interpreter(model_path=str(path))
    lengths = built.manifest["litertlm"]["prefill_signatures"]
    assert set(it.get_signature_list()) == {f"prefill_{t}" for t in lengths} | {"decode"}
    prompt, nxt = [3, 141, 59, 26, 5, 35, 89], 79
    empty = np.zeros((1, ctx, card.num_key_value_heads, card.head_dim), np.float32)
    caches = {f"kv_cache_{kv}_{i}": empty for i in range(card.num_hidden_layers) for kv in "kv"}
    prefill = it.get_signature_runner("prefill_32")
    ids = prompt + [0] * (32 - len(prompt))  # padding past the prompt: masked for the prompt's rows, overwritten later
    out = _run(prefill, card, ctx, ids, 0, caches)
    tol = 1e-4 if quant == "f32" else 0.15
    np.testing.assert_allclose(out["logits"][0, len(prompt) - 1], _reference_logits(card, w, prompt), atol=tol, rtol=0)
    caches = {k: v for k, v in out.items() if k.startswith("kv_cache")}
    step = _run(it.get_signature_runner("decode"), card, ctx, [nxt], len(prompt), caches)
    np.testing.assert_allclose(step["logits"][0, 0], _reference_logits(card, w, prompt + [nxt]), atol=tol, rtol=0)


def test_same_card_seed_and_quant_give_identical_bytes(tmp_path):
    a = build_model("tiny", fmt="litertlm", quant="int8", seed=0, out_root=tmp_path / "a")
    b = build_model("tiny", fmt="litertlm", quant="int8", seed=0, out_root=tmp_path / "b")
    other = build_model("tiny", fmt="litertlm", quant="int8", seed=1, out_root=tmp_path / "a")
    assert a.path.name == "litertlm-int8-s0" and other.path.name == "litertlm-int8-s1"
    assert a.model_file.read_bytes() == b.model_file.read_bytes()
    sha = a.manifest["files"][lg.MODEL_FILE]["sha256"]
    assert sha == hashlib.sha256(a.model_file.read_bytes()).hexdigest()
    assert other.manifest["files"][lg.MODEL_FILE]["sha256"] != sha
    assert {k: v for k, v in a.manifest.items() if k != "created_at"} == \
        {k: v for k, v in b.manifest.items() if k != "created_at"}
    assert find_built("tiny", tmp_path / "a", fmt="litertlm", seed=0)[0].path == a.path
    assert verify_artifact(a.path, deep=True)["options"] == {"format": "litertlm", "quant": "int8", "seed": 0}


#: sha256 of the tiny card's model.litertlm (seed 0) for BUILDER_VERSION "litertlm-synthetic/1". A builder
#: change that alters bytes must bump BUILDER_VERSION and these.
TINY_GOLDEN = {
    "int8": "a6c932e4a299c1a3a1ca75392b811664350a06f8626e3491085a58cfde9db5c7",
    "f32": "a6e1a500f6e2bd327eb2fbef795b72ada963acb4b9db2c1e7c4de102f8553552",
}


@pytest.mark.parametrize("quant", ["int8", "f32"])
def test_tiny_bytes_are_pinned(tmp_path, quant):
    built = build_model("tiny", fmt="litertlm", quant=quant, out_root=tmp_path)
    assert lg.BUILDER_VERSION == "litertlm-synthetic/1"
    assert built.manifest["files"][lg.MODEL_FILE]["sha256"] == TINY_GOLDEN[quant]


def test_manifest_records_what_the_artefact_is(tmp_path):
    built = build_model("tiny", fmt="litertlm", out_root=tmp_path)  # int8 by default
    m = built.manifest
    card = TINY
    assert m["options"] == {"format": "litertlm", "quant": "int8", "seed": 0}
    assert m["synthetic_weights"] is True and m["architecture"] == "llama"
    assert m["litertlm"]["context"] == 256 and m["litertlm"]["prefill_signatures"] == [32, 128]
    # decode reads every int8 matrix and its per-row scales, the norms, one f32 embedding row... : by hand
    d, i, v, L, q, kv = 64, 128, 256, 2, 64, 32
    mats = L * (d * q + 2 * d * kv + q * d + 3 * d * i) + v * d  # + the untied lm_head
    scales = 4 * (L * (q + 2 * kv + d + 2 * i + d) + v)
    norms = 4 * (2 * L * d + d)
    embed_row = d + 4
    rope_rows = 2 * 4 * 16
    assert m["weight_bytes_read_per_token"] == mats + scales + norms + embed_row + rope_rows
    assert m["kv_cache_bytes_per_token_fp32"] == card.kv_cache_bytes_per_token(4) == 2 * L * 2 * 16 * 4
    sections = _sections(built.model_file)
    assert set(sections) == {lm.AnySectionDataType.LlmMetadataProto, lm.AnySectionDataType.HF_Tokenizer_Zlib,
                             lm.AnySectionDataType.TFLiteModel}


def test_architectures_not_built_are_refused(tmp_path):
    phi3 = get_model_card("phi-3-mini")
    with pytest.raises(ModelBuildError, match="phi3.*not built as litertlm"):
        build_model(phi3, fmt="litertlm", out_root=tmp_path)
    with pytest.raises(ModelBuildError, match="unknown litertlm quant 'int4'"):
        build_model("tiny", fmt="litertlm", quant="int4", out_root=tmp_path)
    assert not any(tmp_path.rglob("*.litertlm"))


def test_llama_68m_builds_deterministically_and_loads_in_litert_lm(tmp_path):
    """A reference card: built twice to the same bytes, and LiteRT-LM's own benchmark runs it."""
    litert_lm = pytest.importorskip("litert_lm", reason="litert-lm-api is in the [test] extra")
    a = build_model("llama-68m", fmt="litertlm", quant="int8", out_root=tmp_path / "a")
    b = build_model("llama-68m", fmt="litertlm", quant="int8", out_root=tmp_path / "b")
    assert a.manifest["files"] == b.manifest["files"]
    card = get_model_card("llama-68m")
    # int8: a byte per parameter, plus each signature's quantization parameters (a scale and a zero point
    # per row, in all 4 subgraphs: ~4 MB here), the rotary tables and the tokenizer
    assert card.params() < a.total_bytes < 1.1 * card.params()
    info = litert_lm.Benchmark(str(a.model_file), backend=litert_lm.interfaces.CPU(thread_count=2), prefill_tokens=32,
                               decode_tokens=8, cache_dir=":nocache").run()
    assert (info.last_prefill_token_count, info.last_decode_token_count) == (32, 8)
    assert math.isfinite(info.last_decode_tokens_per_second) and info.last_decode_tokens_per_second > 0
