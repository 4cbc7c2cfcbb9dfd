"""suite.models.user_file: a user's GGUF / ort-genai checkpoint read back into a card-like description.

The files are the project's own factory builds of the tiny card (and variants), so every figure
read back is compared with the card and the factory's manifest."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from suite.catalog.cards import get_model_card
from suite.models import build_model
from suite.models.user_file import ModelFileError, artefact_from_file, detect_format, model_record

TINY = get_model_card("tiny")
TINY_TIED = dataclasses.replace(TINY, id="tiny-tied-qwen2", architecture="qwen2", qkv_bias=True,
                                tie_word_embeddings=True)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.mark.parametrize("card,quant,file_type", [(TINY, "q4_0", 2), (TINY, "q8_0", 7), (TINY_TIED, "q8_0", 7)])
def test_gguf_reads_back_the_card(models_dir, card, quant, file_type):
    built = build_model(card, fmt="gguf", quant=quant, seed=0, out_root=models_dir)
    c, art = artefact_from_file(built.model_file)
    assert detect_format(built.model_file) == "gguf"
    assert c.architecture == card.architecture and c.format == "gguf"
    assert c.quant == quant
    assert art.manifest["gguf"]["file_type"] == file_type
    assert c.params() == card.params() == built.manifest["params"]
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim,
            c.intermediate_size, c.vocab_size, c.max_position_embeddings, c.tie_word_embeddings) == (
        card.hidden_size, card.num_hidden_layers, card.num_attention_heads, card.num_key_value_heads,
        card.head_dim, card.intermediate_size, card.vocab_size, card.max_position_embeddings,
        card.tie_word_embeddings)
    m = art.manifest
    assert m["synthetic_weights"] is False
    assert m["weight_bytes_read_per_token"] == built.manifest["weight_bytes_read_per_token"]
    assert m["kv_cache_bytes_per_token_f16"] == card.kv_cache_bytes_per_token(2)
    digest = hashlib.sha256(built.model_file.read_bytes()).hexdigest()
    assert m["model_sha256"] == digest == built.manifest["files"]["model.gguf"]["sha256"]
    assert art.model_file == built.model_file and list(art.files()) == ["model.gguf"]
    assert art.total_bytes == built.model_file.stat().st_size


def test_model_record_uses_the_file_digest_and_is_not_synthetic(models_dir):
    built = build_model(TINY, fmt="gguf", quant="q4_0", seed=0, out_root=models_dir)
    c, art = artefact_from_file(built.model_file)
    rec = model_record(c, art)
    assert rec["sha256"] == hashlib.sha256(built.model_file.read_bytes()).hexdigest()
    assert rec["synthetic_weights"] is False
    assert rec["params"] == TINY.params() and rec["quant"] == "q4_0" and rec["format"] == "gguf"
    assert rec["weight_bytes_read_per_token"] > 0
    assert rec["kv_bytes_per_position"] == TINY.kv_cache_bytes_per_token(2)


@pytest.mark.parametrize("card,quant", [(TINY, "int4"), (TINY_TIED, "int8")])
def test_onnx_genai_folder_reads_back_the_card(models_dir, card, quant):
    built = build_model(card, fmt="onnx", quant=quant, seed=0, out_root=models_dir)
    for given in (built.path, built.path / "model.onnx", built.path / "genai_config.json"):
        c, art = artefact_from_file(given)
        assert c.format == "onnx" and c.architecture == card.architecture
        assert c.params() == card.params()
        assert c.quant == quant
        assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                c.intermediate_size, c.vocab_size, c.tie_word_embeddings) == (
            card.hidden_size, card.num_hidden_layers, card.num_attention_heads, card.num_key_value_heads,
            card.head_dim, card.intermediate_size, card.vocab_size, card.tie_word_embeddings)
        m = art.manifest
        assert m["synthetic_weights"] is False
        assert m["kv_cache_bytes_per_token_fp32"] == card.kv_cache_bytes_per_token(4)
        assert set(m["files"]) == set(built.manifest["files"])
        assert m["total_bytes"] == built.manifest["total_bytes"]
        # the factory's count plus the few bytes of shape constants in the graph
        assert 0 <= m["weight_bytes_read_per_token"] - built.manifest["weight_bytes_read_per_token"] < 256


def test_refusals(tmp_path):
    junk = tmp_path / "x.bin"
    junk.write_bytes(b"NOPE" * 10)
    with pytest.raises(ModelFileError, match="not a GGUF"):
        artefact_from_file(junk)
    with pytest.raises(ModelFileError, match="no such model file"):
        artefact_from_file(tmp_path / "missing.gguf")
    d = tmp_path / "onnx"
    d.mkdir()
    with pytest.raises(ModelFileError, match="genai_config.json"):
        artefact_from_file(d)
    (d / "genai_config.json").write_text(json.dumps({"model": {"decoder": {"filename": "model.onnx"}}}))
    with pytest.raises(ModelFileError, match="missing"):
        artefact_from_file(d)
