"""Model cards: they load, their parameter counts match the published figures, lookups help."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from suite.catalog import cards as catalog
from suite.catalog.cards import ModelCard, get_model_card, load_model_cards, reference_cards
from suite.core.errors import UnknownNameError

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
REFERENCE_IDS = {
    "llama-68m", "smollm2-135m", "qwen2.5-0.5b", "llama-3.2-1b", "qwen2.5-1.5b", "llama-3.2-3b", "phi-3-mini",
    "qwen2.5-7b", "llama-2-7b", "llama-3-8b", "llama-3.1-8b", "llama-2-13b", "qwen2.5-14b", "qwen2.5-32b",
}
#: reference cards past a phone's RAM: named to be built, never on the default ladder
BEYOND_RAM_IDS = {"qwen2.5-14b", "qwen2.5-32b"}
CARDS = load_model_cards()


def test_every_reference_card_is_there_and_tiny_is_not_reference():
    assert {c.id for c in CARDS.values() if c.reference} == REFERENCE_IDS
    assert CARDS["tiny"].reference is False


@pytest.mark.parametrize("card_id", sorted(REFERENCE_IDS))
def test_params_from_architecture_equal_published(card_id):
    card = CARDS[card_id]
    assert card.params_published is not None
    assert card.params() == card.params_published


def test_params_counts_tied_embeddings_once_and_qwen_biases():
    card = CARDS["qwen2.5-0.5b"]
    untied = dataclasses.replace(card, tie_word_embeddings=False)
    assert untied.params() - card.params() == card.vocab_size * card.hidden_size
    no_bias = dataclasses.replace(card, qkv_bias=False)
    assert card.params() - no_bias.params() == card.num_hidden_layers * (card.q_size + 2 * card.kv_size)


@pytest.mark.parametrize("card", CARDS.values(), ids=lambda c: c.id)
def test_card_is_consistent(card: ModelCard):
    assert card.num_attention_heads % card.num_key_value_heads == 0
    assert card.head_dim * card.num_attention_heads == card.hidden_size  # true for every family here
    assert card.qkv_bias == (card.architecture == "qwen2")
    assert card.rms_norm_eps in (1e-5, 1e-6)
    if card.reference:
        assert card.hf_repo and card.config_source and card.license and card.gated is not None


def test_kv_cache_bytes_per_token():
    # Llama-2-7B, fp16 cache: 2 (K,V) x 32 layers x 32 kv heads x 128 x 2 bytes = 512 KiB per token.
    assert CARDS["llama-2-7b"].kv_cache_bytes_per_token(2) == 524288
    # GQA shrinks it: Llama-3-8B has 8 kv heads.
    assert CARDS["llama-3-8b"].kv_cache_bytes_per_token(2) == 131072


def test_unknown_id_suggests_close_matches():
    with pytest.raises(UnknownNameError) as info:
        get_model_card("llama-2-7")
    err = info.value
    assert "llama-2-7b" in err.context["close"]
    assert "did you mean" in str(err) and "llama-2-7b" in str(err)
    assert isinstance(err, KeyError)


def test_reference_cards_are_ordered_by_size():
    sizes = [c.params() for c in reference_cards(beyond_ram=True)]
    assert sizes == sorted(sizes) and len(sizes) == len(REFERENCE_IDS)


def test_default_ladder_leaves_the_beyond_ram_rungs_out():
    # The fit scenario, the lab's fit jobs and doctor walk reference_cards(): an 8.5 / 18.6 GB build
    # happens only when someone names the card.
    assert {c.id for c in CARDS.values() if c.beyond_ram} == BEYOND_RAM_IDS
    assert {c.id for c in reference_cards()} == REFERENCE_IDS - BEYOND_RAM_IDS
    assert [c.id for c in reference_cards(beyond_ram=True)][-2:] == ["qwen2.5-14b", "qwen2.5-32b"]
    assert all(CARDS[i].reference and not CARDS[i].in_default_ladder for i in BEYOND_RAM_IDS)


def test_beyond_ram_is_left_out_of_the_dict_when_false():
    # Manifests of every earlier build recorded card.to_dict(); the build cache compares it.
    assert "beyond_ram" not in CARDS["llama-2-13b"].to_dict()
    assert CARDS["qwen2.5-14b"].to_dict()["beyond_ram"] is True
    assert ModelCard.from_dict(CARDS["qwen2.5-32b"].to_dict()) == CARDS["qwen2.5-32b"]


def test_dict_round_trip_keeps_rope_scaling():
    card = CARDS["llama-3.2-1b"]
    again = ModelCard.from_dict(card.to_dict())
    assert again == card
    assert card.rope_scaling_dict()["rope_type"] == "llama3"


def test_unknown_field_in_a_card_is_refused(tmp_path):
    text = (REPO_MODELS / "tiny.toml").read_text() + 'mystery = 3\n'
    (tmp_path / "tiny.toml").write_text(text)
    with pytest.raises(ValueError, match="mystery"):
        load_model_cards(tmp_path)


def test_cards_are_read_from_the_one_models_folder():
    """No copy in the package: the checkout's models/ is where the cards come from."""
    from suite.catalog.data import data_dir

    assert data_dir("models") == REPO_MODELS
    assert not list(Path(catalog.__file__).resolve().parents[1].rglob("*.toml")), "a card copied into suite/"


def test_cards_are_plain_toml_with_snake_case_keys():
    for path in REPO_MODELS.glob("*.toml"):
        data = tomllib.loads(path.read_text())
        assert all(k == k.lower() and "-" not in k for k in data), path
