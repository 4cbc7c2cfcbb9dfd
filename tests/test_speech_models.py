"""The speech ladder: Whisper cards, their whisper.cpp (ggml) builds, and the synthetic utterance."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from suite.catalog.cards import load_model_cards
from suite.catalog.speech import SpeechCard, get_speech_card, load_speech_cards, speech_cards
from suite.core.errors import UnknownNameError

REPO_SPEECH = Path(__file__).resolve().parent.parent / "models" / "speech"
SPEECH_IDS = ["whisper-tiny", "whisper-base", "whisper-small", "whisper-medium", "whisper-large-v3-turbo",
              "whisper-large-v3"]
CARDS = load_speech_cards()


# --- cards ------------------------------------------------------------------------------------------
def test_the_six_whisper_cards_load_smallest_first_and_stay_out_of_the_llm_ladder():
    assert [c.id for c in speech_cards()] == SPEECH_IDS
    assert not set(SPEECH_IDS) & set(load_model_cards())  # models/*.toml never sees models/speech/
    assert all(c.reference and c.architecture == "whisper" and c.license == "MIT" for c in CARDS.values())


@pytest.mark.parametrize("card_id", SPEECH_IDS)
def test_params_from_architecture_equal_the_published_exact_count(card_id):
    card = CARDS[card_id]
    assert card.params() == card.params_published
    assert card.params() == card.encoder_params() + card.decoder_params()


def test_whisper_tiny_counts_by_part():
    # The Hugging Face layout: the encoder slice (embed_positions included) is 8,208,384 parameters.
    tiny = CARDS["whisper-tiny"]
    assert tiny.encoder_params() == 8_208_384
    # the key projection has no bias: one bias vector of d fewer per attention block than q/v/out
    assert tiny.decoder_params() - dataclasses.replace(tiny, decoder_layers=3).decoder_params() \
        == 2 * (4 * 384 * 384 + 3 * 384) + (2 * 384 * 1536 + 1536 + 384) + 3 * 2 * 384


def test_large_v3_and_turbo_differ_from_the_others_where_the_configs_do():
    v3, turbo, medium = CARDS["whisper-large-v3"], CARDS["whisper-large-v3-turbo"], CARDS["whisper-medium"]
    assert (v3.num_mel_bins, v3.vocab_size, medium.num_mel_bins, medium.vocab_size) == (128, 51866, 80, 51865)
    assert turbo.decoder_layers == 4 and turbo.encoder_params() == v3.encoder_params()
    assert all(c.max_source_positions == 1500 and c.max_target_positions == 448 for c in CARDS.values())
    assert all(c.encoder_ffn_dim == c.decoder_ffn_dim == 4 * c.d_model for c in CARDS.values())


def test_cards_say_what_random_weights_mean_and_where_the_numbers_came_from():
    for card in CARDS.values():
        assert "fixed by the scenario" in card.notes
        assert card.config_source == f"https://huggingface.co/{card.hf_repo}/blob/main/config.json"
        assert card.params_published_source


def test_unknown_speech_id_suggests_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean") as info:
        get_speech_card("whisper-tiny.en")
    assert "whisper-tiny" in info.value.context["close"]


def test_card_files_are_plain_toml_named_by_id_and_round_trip():
    for path in REPO_SPEECH.glob("*.toml"):
        data = tomllib.loads(path.read_text())
        assert data["id"] == path.stem
        assert SpeechCard.from_dict(data) == CARDS[path.stem]
        assert SpeechCard.from_dict(CARDS[path.stem].to_dict()) == CARDS[path.stem]


def test_an_unknown_field_is_refused(tmp_path):
    (tmp_path / "whisper-tiny.toml").write_text((REPO_SPEECH / "whisper-tiny.toml").read_text() + "mystery = 1\n")
    with pytest.raises(ValueError, match="mystery"):
        load_speech_cards(tmp_path)
