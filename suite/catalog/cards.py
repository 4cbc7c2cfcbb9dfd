"""Reference model cards: the architecture of each model edgebench builds, from its public config.

The cards are `models/<id>.toml` at the repository root, the only copy (a wheel carries the
folder itself: suite.catalog.data).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.catalog.data import data_dir
from suite.core.errors import UnknownNameError

ARCHITECTURES = ("llama", "qwen2", "phi3")


@dataclass(frozen=True)
class ModelCard:
    """One model's architecture (a public config's numbers) plus where they came from."""

    id: str
    name: str
    architecture: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    rope_theta: float
    rms_norm_eps: float
    qkv_bias: bool
    reference: bool = True
    #: a rung past RAM (Qwen2.5-14B/32B): a reference card, but not on the default ladder (the fit
    #: scenario, the lab's fit jobs, doctor's space check); built only when named
    beyond_ram: bool = False
    hf_repo: str | None = None
    params_published: int | None = None
    license: str | None = None
    gated: bool | None = None
    config_source: str | None = None
    notes: str | None = None
    #: rope scaling as (key, value) pairs, e.g. Llama 3's ("rope_type", "llama3"), ("factor", 32.0)...
    rope_scaling: tuple[tuple[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"card {self.id}: architecture {self.architecture!r} not in {ARCHITECTURES}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"card {self.id}: heads {self.num_attention_heads} not a multiple of kv heads")

    @property
    def in_default_ladder(self) -> bool:
        """On the ladder a fit walks when no models are named: reference cards that fit in RAM somewhere."""
        return self.reference and not self.beyond_ram

    # --- derived figures -----------------------------------------------------------------
    @property
    def q_size(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_key_value_heads * self.head_dim

    def rope_scaling_dict(self) -> dict[str, Any] | None:
        return dict(self.rope_scaling) if self.rope_scaling else None

    def params(self) -> int:
        """Parameter count from the architecture: embeddings counted once when tied,
        q/k/v biases where the family has them (qwen2), two RMSNorms per layer plus the final one."""
        h, i = self.hidden_size, self.intermediate_size
        attn = h * self.q_size + 2 * h * self.kv_size + self.q_size * h
        if self.qkv_bias:
            attn += self.q_size + 2 * self.kv_size
        mlp = 3 * h * i
        per_layer = attn + mlp + 2 * h
        embeddings = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return embeddings + self.num_hidden_layers * per_layer + h

    def kv_cache_bytes_per_token(self, dtype_bytes: float) -> int:
        """Bytes of K and V cache one token adds across all layers."""
        return int(2 * self.num_hidden_layers * self.num_key_value_heads * self.head_dim * dtype_bytes)

    def flops_per_token(self) -> int:
        """Forward-pass FLOPs per token for the weight matmuls (2 x matmul params); attention excluded."""
        return 2 * (self.params() - self.vocab_size * self.hidden_size * (0 if self.tie_word_embeddings else 1))

    def to_dict(self) -> dict[str, Any]:
        """The card as plain data (what a manifest records); absent values are left out, and so is
        `beyond_ram` when false: the cards without it keep the dict their builds' manifests recorded
        (the build cache compares them)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None or (f.name == "beyond_ram" and not v):
                continue
            out[f.name] = dict(v) if f.name == "rope_scaling" else v
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> ModelCard:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown card fields {unknown}")
        if "head_dim" not in data and "hidden_size" in data and "num_attention_heads" in data:
            data["head_dim"] = data["hidden_size"] // data["num_attention_heads"]
        if isinstance(data.get("rope_scaling"), Mapping):
            data["rope_scaling"] = tuple(data["rope_scaling"].items())
        for key in ("rope_theta", "rms_norm_eps"):
            if key in data:
                data[key] = float(data[key])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"{source}: {exc}") from None


def _card_files(path: Path | None) -> list[tuple[str, str]]:
    """(source name, TOML text) for every card in `path`, else in the catalog's `models/` folder."""
    folder = Path(path) if path is not None else data_dir("models")
    return [(str(p), p.read_text()) for p in sorted(folder.glob("*.toml"))]


def load_model_cards(path: Path | str | None = None) -> dict[str, ModelCard]:
    """All cards by id. Default: the catalog's `models/` folder."""
    cards: dict[str, ModelCard] = {}
    for source, text in _card_files(Path(path) if path is not None else None):
        card = ModelCard.from_dict(tomllib.loads(text), source=source)
        expected = Path(source).stem
        if card.id != expected:
            raise ValueError(f"{source}: id {card.id!r} does not match the file name {expected!r}")
        cards[card.id] = card
    return cards


def get_model_card(card_id: str, path: Path | str | None = None) -> ModelCard:
    cards = load_model_cards(path)
    try:
        return cards[card_id]
    except KeyError:
        raise UnknownNameError("model", card_id, cards) from None


def reference_cards(path: Path | str | None = None, *, beyond_ram: bool = False) -> list[ModelCard]:
    """The default ladder, ordered by size (smallest first): reference cards, without the
    beyond-RAM rungs unless `beyond_ram` (those are walked only when named)."""
    cards = load_model_cards(path).values()
    return sorted((c for c in cards if c.in_default_ladder or (beyond_ram and c.reference)), key=ModelCard.params)


if __name__ == "__main__":  # python -m suite.catalog.cards: the cards by size
    for c in sorted(load_model_cards().values(), key=ModelCard.params):
        print(f"{c.id:16s} {c.architecture:6s} {c.params() / 1e9:7.3f} B")
