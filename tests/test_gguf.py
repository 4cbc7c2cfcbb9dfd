"""GGUF reference models: layout, metadata, determinism, the shared artefact rules, and proof that
llama.cpp (through llama-cpp-python) loads every quant and decodes with it."""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import math
from collections import namedtuple
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize

from suite.catalog.cards import get_model_card
from suite.core.errors import ArtifactCorruptError, InsufficientDiskError, ModelBuildError
from suite.models import artifact as artifact_mod
from suite.models import artifact_dir, build_model, estimate_bytes, find_built, list_built, verify_artifact
from suite.models.gguf import BUILDER_VERSION, GGUFPlan, rope_freq_factors, synthetic_vocab

TINY = get_model_card("tiny")
TINY_QWEN2 = dataclasses.replace(TINY, id="tiny-qwen2", architecture="qwen2", qkv_bias=True, tie_word_embeddings=True,
                                 rms_norm_eps=1e-6, rope_theta=1e6)
# named like Phi-3: llama.cpp's vocab loader then looks up "<|endoftext|>" by text (it must exist)
TINY_PHI3 = dataclasses.replace(TINY, id="tiny-phi3", name="Tiny Phi-3", architecture="phi3", num_key_value_heads=4)
TINY_LLAMA3 = dataclasses.replace(
    TINY, id="tiny-llama3", tie_word_embeddings=True, max_position_embeddings=512, vocab_size=600,
    rope_scaling=(("rope_type", "llama3"), ("factor", 8.0), ("low_freq_factor", 1.0), ("high_freq_factor", 4.0),
                  ("original_max_position_embeddings", 64)))
# hidden 256: the output matrix of a Q4_0 file is Q6_K (llama-quantize's choice), as in the 7B/13B cards.
TINY_256 = dataclasses.replace(TINY, id="tiny-256", hidden_size=256, head_dim=64, intermediate_size=256)
VARIANTS = [TINY, TINY_QWEN2, TINY_PHI3, TINY_LLAMA3, TINY_256]
QUANTS = ["q4_0", "q8_0"]

#: sha256 of the tiny card's model.gguf (seed 0) for BUILDER_VERSION "gguf-synthetic/1" and gguf 0.19.0.
TINY_GOLDEN = {
    "q4_0": "d80604e5ce78cf9ba0701749b905f6291620cf7d4898d80eaf91905cc4cbf38d",
    "q8_0": "b8c25da3d06f7c041e86f0fea7b6ad90ae213b1ca178064fcb6fbcb844ff77e2",
}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gguf-models")


@pytest.fixture(scope="module")
def built(models_dir):
    """Every variant in every quant, built once for the module."""
    return {(c.id, q): build_model(c, fmt="gguf", quant=q, out_root=models_dir) for c in VARIANTS for q in QUANTS}


def _reader(b) -> gguf.GGUFReader:
    return gguf.GGUFReader(b.path / "model.gguf")


def _field(reader: gguf.GGUFReader, key: str):
    return reader.fields[key].contents()


# --- layout and manifest ----------------------------------------------------------------------------------------
def test_tiny_builds_the_documented_layout(built):
    b = built[("tiny", "q4_0")]
    assert b.path == artifact_dir("tiny", b.path.parents[1], fmt="gguf", quant="q4_0", seed=0)
    assert b.path.name == "gguf-q4_0-s0" and b.format == "gguf" and b.model_file == b.path / "model.gguf"
    assert sorted(p.name for p in b.path.iterdir()) == ["manifest.json", "model.gguf"]
    m = b.manifest
    assert m["options"] == {"format": "gguf", "quant": "q4_0", "seed": 0}
    assert m["builder_version"] == BUILDER_VERSION and m["synthetic_weights"] is True
    assert m["card"] == json.loads(json.dumps(TINY.to_dict())) and m["params"] == TINY.params()
    assert set(m["files"]) == {"model.gguf"} and m["total_bytes"] == m["files"]["model.gguf"]["bytes"]
    assert m["kv_cache_bytes_per_token_f16"] == 2 * 2 * 2 * 16 * 2  # K and V x layers x kv heads x head_dim x 2 B
    assert m["gguf"]["tensor_types"] == {"F32": 5, "Q4_0": 15, "Q8_0": 1}  # output: Q8_0 (64 % 256 != 0)
    assert json.loads((b.path / "manifest.json").read_text()) == m
    assert estimate_bytes(TINY, fmt="gguf") >= m["total_bytes"]


def test_weight_bytes_read_per_token_by_hand(built):
    # tiny, Q4_0 (18 bytes per 32 weights): per layer q 64x64, k and v 32x64, o 64x64, gate/up/down 64x128 x3;
    # output 256x64 in Q8_0 (34 bytes per 32); one token_embd row (64 weights, Q4_0); 5 norms of 64 f32.
    q4 = lambda n: n // 32 * 18  # noqa: E731
    layer = q4(64 * 64) + 2 * q4(32 * 64) + q4(64 * 64) + 3 * q4(64 * 128)
    expected = 2 * layer + 256 * 64 // 32 * 34 + q4(64) + 5 * 64 * 4
    assert built[("tiny", "q4_0")].manifest["weight_bytes_read_per_token"] == expected
    # tied (qwen2): the whole token_embd is the output matrix, plus the q/k/v biases.
    m = built[("tiny-qwen2", "q8_0")].manifest
    q8 = lambda n: n // 32 * 34  # noqa: E731
    layer = q8(64 * 64) + 2 * q8(32 * 64) + q8(64 * 64) + 3 * q8(64 * 128) + (64 + 32 + 32) * 4
    assert m["weight_bytes_read_per_token"] == 2 * layer + q8(256 * 64) + 5 * 64 * 4


@pytest.mark.parametrize("card", VARIANTS, ids=lambda c: c.id)
def test_tensor_names_shapes_and_types_are_llama_cpps(built, card):
    for quant in QUANTS:
        r = _reader(built[(card.id, quant)])
        tensors = {t.name: t for t in r.tensors}
        base = quant.upper()
        h, kv, ff = card.hidden_size, card.kv_size, card.intermediate_size
        assert _field(r, "general.architecture") == card.architecture
        arch = card.architecture
        assert _field(r, f"{arch}.embedding_length") == h
        assert _field(r, f"{arch}.block_count") == card.num_hidden_layers
        assert _field(r, f"{arch}.feed_forward_length") == ff
        assert _field(r, f"{arch}.attention.head_count") == card.num_attention_heads
        assert _field(r, f"{arch}.attention.head_count_kv") == card.num_key_value_heads
        assert _field(r, f"{arch}.context_length") == card.max_position_embeddings
        assert _field(r, f"{arch}.rope.dimension_count") == card.head_dim
        assert math.isclose(_field(r, f"{arch}.rope.freq_base"), card.rope_theta, rel_tol=1e-6)
        assert _field(r, "general.file_type") == int(gguf.LlamaFileType[f"MOSTLY_{base}"])
        # GGUF shapes are ne order: (row length, rows)
        shape = lambda n: [int(x) for x in tensors[n].shape]  # noqa: E731
        assert shape("token_embd.weight") == [h, card.vocab_size]
        assert ("output.weight" in tensors) is (not card.tie_word_embeddings)
        out_type = "Q8_0" if (quant == "q8_0" or h % 256) else "Q6_K"
        out_name = "token_embd.weight" if card.tie_word_embeddings else "output.weight"
        assert tensors[out_name].tensor_type.name == out_type
        for i in range(card.num_hidden_layers):
            b = f"blk.{i}"
            if arch == "phi3":
                assert shape(f"{b}.attn_qkv.weight") == [h, card.q_size + 2 * kv]
                assert shape(f"{b}.ffn_up.weight") == [h, 2 * ff] and f"{b}.ffn_gate.weight" not in tensors
            else:
                assert shape(f"{b}.attn_q.weight") == [h, card.q_size]
                assert shape(f"{b}.attn_k.weight") == shape(f"{b}.attn_v.weight") == [h, kv]
                assert shape(f"{b}.ffn_gate.weight") == shape(f"{b}.ffn_up.weight") == [h, ff]
                assert (f"{b}.attn_q.bias" in tensors) is card.qkv_bias
            assert shape(f"{b}.attn_output.weight") == [card.q_size, h]
            assert shape(f"{b}.ffn_down.weight") == [ff, h]
            assert tensors[f"{b}.ffn_down.weight"].tensor_type.name == base
            assert tensors[f"{b}.attn_norm.weight"].tensor_type.name == "F32"
        assert ("rope_freqs.weight" in tensors) is bool(card.rope_scaling)
        # the data section is aligned, tensors in the order the plan lists them
        assert all(t.data_offset % 32 == 0 for t in r.tensors)
        assert [t.name for t in r.tensors] == [s.name for s in GGUFPlan(card, quant).specs]


def test_synthetic_vocabulary_has_exactly_the_cards_size(built):
    for card in (TINY, TINY_LLAMA3):
        r = _reader(built[(card.id, "q4_0")])
        tokens = [bytes(r.fields["tokenizer.ggml.tokens"].parts[i]).decode()
                  for i in r.fields["tokenizer.ggml.tokens"].data]
        types = _field(r, "tokenizer.ggml.token_type")
        assert len(tokens) == len(set(tokens)) == card.vocab_size == len(types)
        assert _field(r, "tokenizer.ggml.model") == "llama"
        assert tokens[:3] == ["<unk>", "<s>", "</s>"] and tokens[3 + 0x0A] == "<0x0A>"
        assert types[3 + 0x0A] == gguf.TokenType.BYTE
        assert (_field(r, "tokenizer.ggml.bos_token_id"), _field(r, "tokenizer.ggml.eos_token_id")) == (1, 2)
    tokens, _, types = synthetic_vocab(152064)
    assert len(tokens) == len(set(tokens)) == 152064 and types.count(int(gguf.TokenType.BYTE)) == 256


def test_random_codes_dequantize_to_the_intended_spread(built):
    """Every weight's std is ~1/sqrt(fan_in) (+-25% per block); embeddings ~1; norms ones."""
    cards = {c.id: c for c in VARIANTS}
    for key in (("tiny-256", "q4_0"), ("tiny-256", "q8_0"), ("tiny", "q4_0"), ("tiny-qwen2", "q4_0")):
        tied = cards[key[0]].tie_word_embeddings
        r = _reader(built[key])
        for t in r.tensors:
            w = dequantize(t.data, t.tensor_type)
            assert np.isfinite(w).all(), t.name
            if t.name.endswith("_norm.weight"):
                assert (w == 1).all()
                continue
            if t.tensor_type.name == "F32":
                continue
            # untied embeddings: std ~1 (a lookup); everything else, the tied table included: 1/sqrt(fan_in)
            target = 1.0 if t.name == "token_embd.weight" and not tied else 1 / math.sqrt(w.shape[-1])
            assert 0.8 * target < w.std() < 1.2 * target, (key, t.name, t.tensor_type.name, w.std(), target)


def test_llama3_rope_factors_are_convert_hf_to_gguf_s():
    factors = rope_freq_factors(TINY_LLAMA3)
    # head_dim 16 -> 8 frequencies theta^(-2i/16); original context 64, factor 8, low 1, high 4:
    # wavelength < 16 keeps 1, > 64 gets 8, between them the smooth blend.
    for i, f in enumerate(factors):
        wavelen = 2 * math.pi * 10000.0 ** (2 * i / 16)
        if wavelen < 64 / 4:
            assert f == pytest.approx(1.0)
        elif wavelen > 64 / 1:
            assert f == pytest.approx(8.0)
        else:
            smooth = (64 / wavelen - 1) / (4 - 1)
            assert f == pytest.approx(1 / ((1 - smooth) / 8 + smooth))


# --- determinism and the shared artefact rules --------------------------------------------------------------------
def test_same_card_seed_and_quant_give_identical_bytes(built, tmp_path):
    first = built[("tiny", "q4_0")]
    again = build_model(TINY, fmt="gguf", quant="q4_0", out_root=tmp_path)
    assert again.manifest["files"] == first.manifest["files"]
    data = (again.path / "model.gguf").read_bytes()
    assert hashlib.sha256(data).hexdigest() == again.manifest["files"]["model.gguf"]["sha256"]
    other = build_model(TINY, fmt="gguf", quant="q4_0", seed=1, out_root=tmp_path)
    assert other.path.name == "gguf-q4_0-s1"
    assert other.manifest["files"]["model.gguf"]["sha256"] != first.manifest["files"]["model.gguf"]["sha256"]
    assert other.manifest["files"]["model.gguf"]["bytes"] == first.manifest["files"]["model.gguf"]["bytes"]


def test_tiny_bytes_are_pinned(built):
    found = {q: built[("tiny", q)].manifest["files"]["model.gguf"]["sha256"] for q in QUANTS}
    assert found == TINY_GOLDEN


def test_cache_hit_corruption_and_rebuild(tmp_path, caplog):
    first = build_model(TINY, fmt="gguf", out_root=tmp_path)
    mtime = (first.path / "model.gguf").stat().st_mtime_ns
    assert build_model(TINY, fmt="gguf", out_root=tmp_path).manifest == first.manifest  # cache hit
    assert (first.path / "model.gguf").stat().st_mtime_ns == mtime
    f = first.path / "model.gguf"
    data = bytearray(f.read_bytes())
    data[-100] ^= 0xFF
    f.write_bytes(bytes(data))
    verify_artifact(first.path)  # sizes still right
    with pytest.raises(ArtifactCorruptError):
        verify_artifact(first.path, deep=True)
    rebuilt = build_model(TINY, fmt="gguf", out_root=tmp_path, deep=True)
    assert "corrupt" in caplog.text
    assert rebuilt.manifest["files"] == first.manifest["files"]
    verify_artifact(rebuilt.path, deep=True)


def test_interrupted_build_leaves_nothing(tmp_path):
    def interrupt(done, total):
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_model(TINY, fmt="gguf", out_root=tmp_path, progress=interrupt)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["tiny"]


def test_insufficient_disk_is_refused_before_writing(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(artifact_mod.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(InsufficientDiskError) as info:
        build_model(get_model_card("llama-2-13b"), fmt="gguf", out_root=tmp_path)
    assert info.value.context["needed_bytes"] > 7e9
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_formats_sit_side_by_side_and_are_found_by_format(tmp_path):
    onnx = build_model(TINY, out_root=tmp_path)
    q4 = build_model(TINY, fmt="gguf", out_root=tmp_path)
    q8 = build_model(TINY, fmt="gguf", quant="q8_0", out_root=tmp_path)
    assert [b.path for b in list_built(tmp_path)] == sorted([onnx.path, q4.path, q8.path])
    assert [b.path for b in find_built("tiny", tmp_path, fmt="gguf", quant="q8_0")] == [q8.path]
    assert [b.path for b in find_built("tiny", tmp_path, fmt="onnx")] == [onnx.path]
    assert onnx.model_file.name == "model.onnx" and q4.model_file.name == "model.gguf"


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ModelBuildError, match="Q4_K_M") as info:
        build_model(TINY, fmt="gguf", quant="q4_k_m", out_root=tmp_path)
    assert "llama-quantize" in str(info.value)
    with pytest.raises(ModelBuildError, match="unknown GGUF quant"):
        build_model(TINY, fmt="gguf", quant="int4", out_root=tmp_path)
    with pytest.raises(ModelBuildError, match="unknown model format"):
        build_model(TINY, fmt="safetensors", out_root=tmp_path)
    with pytest.raises(ModelBuildError, match="multiple of 32"):
        build_model(dataclasses.replace(TINY, intermediate_size=100), fmt="gguf", out_root=tmp_path)
    assert list(tmp_path.rglob("*.gguf")) == []


# --- proof it loads: llama.cpp through llama-cpp-python ------------------------------------------------------------
@pytest.fixture(scope="module")
def llama_cpp():
    lib = pytest.importorskip("llama_cpp", reason="llama-cpp-python is in the [test] extra")
    from suite.runtimes.llama_cpp_python import _llama

    return _llama()  # backend initialised, logs routed through logging


def _decode_greedy(lib, path: Path, prompt: list[int], n_gen: int) -> tuple[list[int], int, int]:
    mparams = lib.llama_model_default_params()
    model = lib.llama_model_load_from_file(str(path).encode(), mparams)
    assert model, f"llama.cpp refused {path}"
    try:
        cparams = lib.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_threads, cparams.n_threads_batch = 64, 64, 1, 1
        ctx = lib.llama_init_from_model(model, cparams)
        assert ctx
        try:
            n_vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(model))
            arr = (lib.llama_token * len(prompt))(*prompt)
            assert lib.llama_decode(ctx, lib.llama_batch_get_one(arr, len(prompt))) == 0
            out = []
            one = (lib.llama_token * 1)()
            for _ in range(n_gen):
                logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
                assert np.isfinite(logits).all() and logits.std() > 0
                out.append(int(logits.argmax()))
                one[0] = out[-1]
                assert lib.llama_decode(ctx, lib.llama_batch_get_one(one, 1)) == 0
            return out, n_vocab, lib.llama_model_n_params(model)
        finally:
            lib.llama_free(ctx)
    finally:
        lib.llama_model_free(model)


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("card", VARIANTS, ids=lambda c: c.id)
def test_llama_cpp_loads_and_decodes(built, llama_cpp, card, quant):
    b = built[(card.id, quant)]
    prompt = [5, 17, 42, 99, 7, 130, 64, 33]
    tokens, n_vocab, n_params = _decode_greedy(llama_cpp, b.model_file, prompt, n_gen=8)
    assert n_vocab == card.vocab_size
    assert len(tokens) == 8 and all(0 <= t < card.vocab_size for t in tokens)
    # llama.cpp counts every element it loaded: the card's parameters (+ rope factors when present)
    assert n_params == card.params() + (card.head_dim // 2 if card.rope_scaling else 0)
    # deterministic: the same prompt decodes to the same tokens
    assert _decode_greedy(llama_cpp, b.model_file, prompt, n_gen=8)[0] == tokens


def test_llama_cpp_reads_the_file_type(built, llama_cpp):
    for quant in QUANTS:
        b = built[("tiny", quant)]
        model = llama_cpp.llama_model_load_from_file(str(b.model_file).encode(), llama_cpp.llama_model_default_params())
        try:
            assert llama_cpp.llama_model_ftype(model) == int(gguf.LlamaFileType[f"MOSTLY_{quant.upper()}"])
            buf = ctypes.create_string_buffer(256)
            llama_cpp.llama_model_desc(model, buf, 256)
            assert quant.upper() in buf.value.decode()
        finally:
            llama_cpp.llama_model_free(model)
