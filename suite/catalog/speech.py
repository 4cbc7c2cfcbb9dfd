"""Speech model cards: the Whisper ladder (tiny to large-v3), from the public Hugging Face configs.

The cards are `models/speech/<id>.toml` at the repository root, the only copy (a wheel carries the
folder: suite.catalog.data). A subfolder, so the LLM cards' loader (`models/*.toml`) never sees them.
Built as whisper.cpp's ggml file by `suite.models.build_speech_model`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.catalog.cards import ModelCard, load_model_cards
from suite.catalog.data import data_dir
from suite.core.errors import UnknownNameError

SPEECH_DIR = "speech"
ARCHITECTURES = ("whisper",)


@dataclass(frozen=True)
class SpeechCard:
    """One Whisper model's architecture (the numbers of its public config.json) plus where they came from."""

    id: str
    name: str
    architecture: str
    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_attention_heads: int
    decoder_attention_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    num_mel_bins: int
    vocab_size: int
    max_source_positions: int
    max_target_positions: int
    reference: bool = True
    hf_repo: str | None = None
    params_published: int | None = None
    params_published_source: str | None = None
    license: str | None = None
    config_source: str | None = None
    notes: str | None = None

    kind = "speech"  # a class constant (not a field): what `edgebench models list` shows in its kind column

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"card {self.id}: architecture {self.architecture!r} not in {ARCHITECTURES}")
        for heads in (self.encoder_attention_heads, self.decoder_attention_heads):
            if self.d_model % heads:
                raise ValueError(f"card {self.id}: d_model {self.d_model} not a multiple of {heads} heads")

    @property
    def multilingual(self) -> bool:
        """whisper.cpp's rule (whisper_vocab::is_multilingual): n_vocab >= 51865."""
        return self.vocab_size >= 51865

    # --- parameter count ---------------------------------------------------------------------
    def encoder_params(self) -> int:
        """conv1 (n_mels -> d, kernel 3) and conv2 (d -> d, kernel 3) with biases; the 1500 x d positional
        table (a fixed sinusoid in OpenAI's checkpoint, but a stored weight in Hugging Face's, which the
        published counts come from); per layer q, k, v, o (k without bias), fc1/fc2 with biases and two
        LayerNorms; the final LayerNorm."""
        d, ff = self.d_model, self.encoder_ffn_dim
        convs = self.num_mel_bins * d * 3 + d + d * d * 3 + d
        per_layer = _attention(d) + _mlp(d, ff) + 2 * 2 * d
        return convs + self.max_source_positions * d + self.encoder_layers * per_layer + 2 * d

    def decoder_params(self) -> int:
        """The token embedding (also the output projection: tied, counted once), the learned 448 x d
        positions; per layer self-attention, cross-attention, fc1/fc2 and three LayerNorms; the final one."""
        d, ff = self.d_model, self.decoder_ffn_dim
        per_layer = 2 * _attention(d) + _mlp(d, ff) + 3 * 2 * d
        return self.vocab_size * d + self.max_target_positions * d + self.decoder_layers * per_layer + 2 * d

    def params(self) -> int:
        """Parameter count from the architecture, counted as Hugging Face's WhisperForConditionalGeneration
        stores it (the published exact counts): encoder_params() + decoder_params()."""
        return self.encoder_params() + self.decoder_params()

    def to_dict(self) -> dict[str, Any]:
        """The card as plain data (what a manifest records); absent values are left out."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> SpeechCard:
        data = dict(data)
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"{source}: unknown speech card fields {unknown}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"{source}: {exc}") from None


def _attention(d: int) -> int:
    """q, k, v, out projections of d x d; q, v and out have biases, k has none (Whisper's choice)."""
    return 4 * d * d + 3 * d


def _mlp(d: int, ff: int) -> int:
    return 2 * d * ff + ff + d


def speech_dir(path: Path | str | None = None) -> Path:
    return Path(path) if path is not None else data_dir("models") / SPEECH_DIR


def load_speech_cards(path: Path | str | None = None) -> dict[str, SpeechCard]:
    """All speech cards by id. Default: the catalog's `models/speech/` folder."""
    cards: dict[str, SpeechCard] = {}
    for p in sorted(speech_dir(path).glob("*.toml")):
        card = SpeechCard.from_dict(tomllib.loads(p.read_text()), source=str(p))
        if card.id != p.stem:
            raise ValueError(f"{p}: id {card.id!r} does not match the file name {p.stem!r}")
        cards[card.id] = card
    return cards


def get_speech_card(card_id: str, path: Path | str | None = None) -> SpeechCard:
    cards = load_speech_cards(path)
    try:
        return cards[card_id]
    except KeyError:
        raise UnknownNameError("speech model", card_id, cards) from None


def is_speech_id(card_id: str, path: Path | str | None = None) -> bool:
    return card_id in load_speech_cards(path)


def get_card(card_id: str) -> ModelCard | SpeechCard:
    """A card of either ladder by id (the ids do not overlap: a test checks it); UnknownNameError with
    the close ids of both ladders otherwise."""
    speech, llm = load_speech_cards(), load_model_cards()
    if card_id in speech:
        return speech[card_id]
    try:
        return llm[card_id]
    except KeyError:
        raise UnknownNameError("model", card_id, [*llm, *speech]) from None


def speech_cards(path: Path | str | None = None) -> list[SpeechCard]:
    """The speech ladder, smallest first."""
    return sorted(load_speech_cards(path).values(), key=SpeechCard.params)


if __name__ == "__main__":  # python -m suite.catalog.speech: the cards by size
    for c in speech_cards():
        print(f"{c.id:24s} {c.params() / 1e6:8.1f} M  (published {c.params_published})")
