"""GGUF reference models for llama.cpp: a card's architecture with seeded random quantized weights.

Written with the `gguf` package (the GGUF writer of llama.cpp's own gguf-py): its `GGUFWriter`
writes the header, the metadata and the tensor infos from shapes alone; the data section is then
streamed tensor by tensor (each tensor's bytes generated in chunks, hashed on the way), so memory
stays bounded whatever the model size.

Tensor names and metadata keys are those llama.cpp's loader expects (`gguf.TENSOR_NAMES`,
`src/models/{llama,qwen2,phi3}.cpp`): `token_embd`, `blk.N.attn_norm`, `attn_q/k/v` (qwen2: with
biases; phi3: one fused `attn_qkv`), `attn_output`, `ffn_norm`, `ffn_gate/up/down` (phi3: a fused
`ffn_up` of 2 x n_ff, no `ffn_gate`), `output_norm`, `output` (absent when embeddings are tied: llama.cpp
then reuses `token_embd`), and `rope_freqs` for Llama 3 rope scaling.

Quant types follow what `llama-quantize` produces for the file type: every matrix in Q4_0 (or Q8_0)
except the output matrix (the token embeddings when tied), which llama-quantize keeps in Q6_K for a Q4_0
file (Q8_0 when the row length is not a multiple of 256) and in Q8_0 for a Q8_0 file; norms, biases and
rope factors in F32. So artefact sizes match the community's Q4_0/Q8_0 files of the same models.

Weights are random codes written straight into the blocks (no float weights, no quantizer): Q4_0 is
32 elements as an fp16 scale + 16 bytes of nibbles, Q8_0 an fp16 scale + 32 int8, Q6_K 256 elements
as 128 + 64 bytes of 6-bit codes, 16 int8 sub-scales and an fp16 scale. Scales are set so a weight's std
is about 1/sqrt(fan_in) (+-25% per block), as in the ONNX factory: activations keep their size and
logits stay finite. The vocabulary is synthetic, of exactly the card's size: a SentencePiece-style
("llama") vocabulary of <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF> and filler tokens.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version as _dist_version
from pathlib import Path

import numpy as np

from suite.catalog.cards import ModelCard
from suite.core.errors import ModelBuildError
from suite.models.onnx_graph import rope_inv_freq
from suite.models.recipe import ProgressFn, Recipe

#: Bump when the bytes a build produces change for the same card and options.
BUILDER_VERSION = "gguf-synthetic/1"
MODEL_FILE = "model.gguf"
#: Quant types this factory writes (the file type's name in lower case).
QUANTS = ("q4_0", "q8_0")
#: Asked for but not buildable: the reason (a K-quant mix needs a quantizer the gguf package lacks).
UNSUPPORTED_QUANTS = {
    "q4_k_m": "Q4_K_M is a K-quant mix chosen by llama-quantize; the gguf package only dequantizes K-quants "
              "(gguf.quants has no Q4_K/Q6_K quantizer), so edgebench does not build it",
}
ARCH_NAMES = {"llama": "llama", "qwen2": "qwen2", "phi3": "phi3"}
#: Bytes generated per chunk while streaming a tensor (bounds the builder's memory).
CHUNK_BYTES = 16 * 1024 * 1024
#: Token ids of the synthetic vocabulary's specials (SentencePiece / Llama 2 convention).
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2



def _gguf():
    try:
        import gguf  # lazy: a missing gguf becomes a ModelBuildError with an install hint, here only
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ModelBuildError("the gguf package is not importable", hint="pip install gguf") from exc
    return gguf


def gguf_package_version() -> str:
    return _dist_version("gguf")


def code_std(bits: int) -> float:
    """Std of a uniform code of `bits` bits around its zero point 2^(bits-1): sqrt((4^b - 1)/12 + 1/4)."""
    return math.sqrt(((1 << bits) ** 2 - 1) / 12 + 0.25)


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: name, shape in numpy order (rows, row length), GGML type name, how to fill it."""

    name: str
    shape: tuple[int, ...]
    qtype: str  # "Q4_0" | "Q8_0" | "Q6_K" | "F32"
    kind: str  # "weight" | "ones" | "bias" | "rope_freqs"
    fan_in: int = 0
    std: float | None = None  # target std of a weight (default 1/sqrt(fan_in))
    per_token: str = "all"  # bytes read per decode step: "all" | "row" (embedding lookup) | "none"

    @property
    def row_len(self) -> int:
        return self.shape[-1]

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        gguf = _gguf()
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[self.qtype]]
        return self.n_elements // block * size

    @property
    def row_bytes(self) -> int:
        return self.nbytes // (self.n_elements // self.row_len)


def _rng(seed: int, name: str) -> np.random.Generator:
    # A stream per tensor, keyed by name: the bytes do not depend on build order.
    words = np.frombuffer(hashlib.sha256(name.encode()).digest()[:16], dtype=np.uint32).tolist()
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *words])))


def _f16_table(base: float, lo: float = 0.75, hi: float = 1.25) -> np.ndarray:
    """256 fp16 scales spread over base*[lo, hi] (Python floats: the same bytes on every machine)."""
    return np.array([base * (lo + (hi - lo) * k / 255) for k in range(256)], dtype="<f2").view("<u2")


def _raw_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.bit_generator.random_raw(-(-n // 8)).astype("<u8", copy=False).view(np.uint8)[:n]


def _block_chunks(spec: TensorSpec, seed: int) -> Iterator[np.ndarray]:
    """A quantized tensor's bytes in chunks of whole blocks: random codes, then the scales set in place."""
    gguf = _gguf()
    block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[spec.qtype]]
    rng = _rng(seed, spec.name)
    n_blocks = spec.n_elements // block
    per_chunk = max(1, CHUNK_BYTES // size)
    std = spec.std if spec.std is not None else 1.0 / math.sqrt(spec.fan_in)
    if spec.qtype == "Q4_0":  # value = d * (q - 8), q a nibble
        table = _f16_table(std / code_std(4))
    elif spec.qtype == "Q8_0":  # value = d * q, q an int8
        table = _f16_table(std / code_std(8))
    elif spec.qtype == "Q6_K":  # value = d * sc[j] * (q - 32), q 6 bits; sc in 24..40 (32 +-25%)
        d = np.array([std / code_std(6) / 32], dtype="<f2").view("<u2")
    else:  # pragma: no cover - programming error
        raise ValueError(spec.qtype)
    for start in range(0, n_blocks, per_chunk):
        nb = min(per_chunk, n_blocks - start)
        raw = _raw_bytes(rng, nb * size).reshape(nb, size)
        if spec.qtype == "Q6_K":
            raw[:, 192:208] = (24 + _raw_bytes(rng, nb * 16) % 17).reshape(nb, 16)
            raw[:, 208:210] = d.view(np.uint8)
        else:  # the fp16 scale heads each block: set it through a record view (a strided uint16 store)
            raw.reshape(-1).view(np.dtype([("d", "<u2"), ("qs", "u1", (size - 2,))]))["d"] = table[_raw_bytes(rng, nb)]
        yield raw.reshape(-1)


def rope_freq_factors(card: ModelCard) -> list[float]:
    """Llama 3 rope scaling as llama.cpp takes it: `rope_freqs.weight`, the divisor of each frequency
    (what convert_hf_to_gguf.py writes: 1, `factor`, or the smooth blend between them)."""
    base = 1.0 / (card.rope_theta ** (np.arange(0, card.head_dim // 2, dtype=np.float64) * 2 / card.head_dim))
    return [float(b / s) for b, s in zip(base, rope_inv_freq(card), strict=True)]


def _chunks(spec: TensorSpec, seed: int, card: ModelCard) -> Iterator[np.ndarray]:
    if spec.qtype != "F32":
        yield from _block_chunks(spec, seed)
    elif spec.kind == "ones":
        yield np.ones(spec.n_elements, dtype="<f4").view(np.uint8)
    elif spec.kind == "bias":  # uniform with std 0.1, as the ONNX factory's biases
        u = _rng(seed, spec.name).random(spec.n_elements, dtype=np.float32)
        yield ((u * np.float32(2) - np.float32(1)) * np.float32(math.sqrt(3.0) * 0.1)).astype("<f4").view(np.uint8)
    elif spec.kind == "rope_freqs":
        yield np.array(rope_freq_factors(card), dtype="<f4").view(np.uint8)
    else:  # pragma: no cover - programming error
        raise ValueError(spec.kind)


#: Control tokens llama.cpp looks up by text for some families (its vocab loader calls
#: token_to_id.at("<|endoftext|>") when general.name contains "phi-3" or "phi3").
EXTRA_CONTROL_TOKENS = {"phi3": ("<|endoftext|>",)}


def synthetic_vocab(n_vocab: int, architecture: str = "llama") -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of a SentencePiece ("llama") vocabulary of exactly `n_vocab` tokens:
    <unk>, <s>, </s>, the family's extra control tokens, then byte tokens <0x00>..<0xFF> (as many as fit),
    then unique filler tokens."""
    gguf = _gguf()
    T = gguf.TokenType
    if n_vocab < 3 + 16:
        raise ModelBuildError(f"vocab_size {n_vocab} too small for a synthetic vocabulary (needs >= 19)")
    tokens = ["<unk>", "<s>", "</s>", *EXTRA_CONTROL_TOKENS.get(architecture, ())]
    types = [int(T.UNKNOWN)] + [int(T.CONTROL)] * (len(tokens) - 1)
    for b in range(min(256, n_vocab - len(tokens))):
        tokens.append(f"<0x{b:02X}>")
        types.append(int(T.BYTE))
    n_fill = n_vocab - len(tokens)
    tokens += [f"\u2581t{i}" for i in range(n_fill)]
    types += [int(T.NORMAL)] * n_fill
    scores = [0.0] * (n_vocab - n_fill) + [-float(i) for i in range(n_fill)]
    return tokens, scores, types


class GGUFPlan:
    """The tensors (specs, not data) and metadata of one card's GGUF in one quant."""

    def __init__(self, card: ModelCard, quant: str) -> None:
        quant = quant.lower()
        if quant in UNSUPPORTED_QUANTS:
            raise ModelBuildError(f"GGUF quant {quant!r} not supported: {UNSUPPORTED_QUANTS[quant]}",
                                  hint=f"build one of {', '.join(QUANTS)}, or benchmark a real {quant.upper()} "
                                       "file made by llama.cpp's llama-quantize", quant=quant)
        if quant not in QUANTS:
            raise ModelBuildError(f"unknown GGUF quant {quant!r}; known: {', '.join(QUANTS)}", quant=quant)
        if card.architecture not in ARCH_NAMES:
            raise ModelBuildError(f"card {card.id}: architecture {card.architecture!r} has no GGUF layout",
                                  card=card.id)
        self.card, self.quant = card, quant
        self.base_type = quant.upper()
        self.specs: list[TensorSpec] = []
        self._build()

    @property
    def arch(self) -> str:
        return ARCH_NAMES[self.card.architecture]

    def output_type(self) -> str:
        """llama-quantize's choice for the output matrix: Q6_K in a Q4_0 file (Q8_0 when the row length is
        not a multiple of 256), Q8_0 in a Q8_0 file."""
        if self.base_type == "Q8_0" or self.card.hidden_size % 256:
            return "Q8_0"
        return "Q6_K"

    def _w(self, name: str, rows: int, fan_in: int, qtype: str | None = None, **kw) -> None:
        qtype = qtype or self.base_type
        block = 256 if qtype == "Q6_K" else 32
        if fan_in % block:
            raise ModelBuildError(f"card {self.card.id}: {name} row length {fan_in} is not a multiple of "
                                  f"{block} ({qtype} blocks)", card=self.card.id)
        self.specs.append(TensorSpec(name, (rows, fan_in), qtype, "weight", fan_in=fan_in, **kw))

    def _f32(self, name: str, n: int, kind: str) -> None:
        self.specs.append(TensorSpec(name, (n,), "F32", kind))

    def _build(self) -> None:
        c = self.card
        h, ff, q, kv = c.hidden_size, c.intermediate_size, c.q_size, c.kv_size
        tied = c.tie_word_embeddings
        # Token embeddings: a lookup (one row per token) when untied, the output matrix too when tied.
        if tied:
            self._w("token_embd.weight", c.vocab_size, h, self.output_type())
        else:
            self._w("token_embd.weight", c.vocab_size, h, std=1.0, per_token="row")
        if c.rope_scaling_dict():
            self._f32("rope_freqs.weight", c.head_dim // 2, "rope_freqs")
        for i in range(c.num_hidden_layers):
            b = f"blk.{i}"
            self._f32(f"{b}.attn_norm.weight", h, "ones")
            if c.architecture == "phi3":  # Phi-3 ships fused qkv and gate_up projections
                self._w(f"{b}.attn_qkv.weight", q + 2 * kv, h)
            else:
                self._w(f"{b}.attn_q.weight", q, h)
                self._w(f"{b}.attn_k.weight", kv, h)
                self._w(f"{b}.attn_v.weight", kv, h)
                if c.qkv_bias:
                    self._f32(f"{b}.attn_q.bias", q, "bias")
                    self._f32(f"{b}.attn_k.bias", kv, "bias")
                    self._f32(f"{b}.attn_v.bias", kv, "bias")
            self._w(f"{b}.attn_output.weight", h, q)
            self._f32(f"{b}.ffn_norm.weight", h, "ones")
            if c.architecture == "phi3":
                self._w(f"{b}.ffn_up.weight", 2 * ff, h)
            else:
                self._w(f"{b}.ffn_gate.weight", ff, h)
                self._w(f"{b}.ffn_up.weight", ff, h)
            self._w(f"{b}.ffn_down.weight", h, ff)
        self._f32("output_norm.weight", h, "ones")
        if not tied:
            self._w("output.weight", c.vocab_size, h, self.output_type())

    # --- sizes --------------------------------------------------------------------------------
    def data_bytes(self) -> int:
        """Bytes of the data section (each tensor padded to the GGUF alignment)."""
        align = _gguf().GGUF_DEFAULT_ALIGNMENT
        return sum(-(-s.nbytes // align) * align for s in self.specs)

    def estimate_bytes(self) -> int:
        """The file's size, header and vocabulary included (an upper bound on the header; the disk
        check's figure, known without building the vocabulary)."""
        return self.data_bytes() + self.card.vocab_size * 48 + 1024 * 1024

    def header_bytes(self) -> int:
        """The exact length of the header (metadata, synthetic vocabulary, tensor infos): the writer
        `write_gguf` uses, set up the same way, writes it into memory."""
        gguf = _gguf()
        writer = _writer(self, None)
        buf = io.BytesIO()
        writer.fout, writer.state = [buf], gguf.WriterState.EMPTY
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        return buf.tell()

    def file_bytes(self) -> int:
        """The exact size of the file `write_gguf` writes: the header padded to the alignment, then
        the data section."""
        align = _gguf().GGUF_DEFAULT_ALIGNMENT
        return -(-self.header_bytes() // align) * align + self.data_bytes()

    def weight_bytes_read_per_token(self) -> int:
        """Weights one decode step streams: every matrix (output included), norms, biases, rope factors,
        and one row of the token embeddings (the whole table when it is also the output matrix)."""
        total = 0
        for s in self.specs:
            total += s.row_bytes if s.per_token == "row" else s.nbytes
        return total

    def tensor_types(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.specs:
            out[s.qtype] = out.get(s.qtype, 0) + 1
        return dict(sorted(out.items()))

    # --- metadata -------------------------------------------------------------------------------
    def add_metadata(self, w) -> None:
        """Metadata keys llama.cpp reads for this architecture, plus the synthetic vocabulary."""
        gguf = _gguf()
        c = self.card
        w.add_name(c.name)
        w.add_type("model")
        w.add_description(f"edgebench synthetic weights (seeded random codes) for card {c.id}; "
                          "architecture-exact, outputs are meaningless")
        w.add_file_type(int(gguf.LlamaFileType[f"MOSTLY_{self.base_type}"]))
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        w.add_vocab_size(c.vocab_size)
        w.add_context_length(c.max_position_embeddings)
        w.add_embedding_length(c.hidden_size)
        w.add_block_count(c.num_hidden_layers)
        w.add_feed_forward_length(c.intermediate_size)
        w.add_head_count(c.num_attention_heads)
        w.add_head_count_kv(c.num_key_value_heads)
        w.add_rope_dimension_count(c.head_dim)
        if c.head_dim != c.hidden_size // c.num_attention_heads:
            w.add_key_length(c.head_dim)
            w.add_value_length(c.head_dim)
        w.add_rope_freq_base(float(c.rope_theta))
        w.add_layer_norm_rms_eps(float(c.rms_norm_eps))
        tokens, scores, types = synthetic_vocab(c.vocab_size, c.architecture)
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_unk_token_id(UNK_ID)
        w.add_bos_token_id(BOS_ID)
        w.add_eos_token_id(EOS_ID)
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)


def _writer(plan: GGUFPlan, path: Path | None):
    """A `gguf.GGUFWriter` holding the plan's metadata and tensor infos (nothing written yet)."""
    gguf = _gguf()
    writer = gguf.GGUFWriter(path, plan.arch)
    plan.add_metadata(writer)
    for spec in plan.specs:
        if spec.qtype == "F32":
            writer.add_tensor_info(spec.name, spec.shape, np.dtype(np.float32), spec.nbytes)
        else:  # a byte shape: the writer turns the last dimension into elements for the quant type
            byte_shape = (*spec.shape[:-1], spec.row_bytes)
            writer.add_tensor_info(spec.name, byte_shape, np.dtype(np.uint8), spec.nbytes,
                                   raw_dtype=gguf.GGMLQuantizationType[spec.qtype])
    return writer


def write_gguf(plan: GGUFPlan, path: Path, *, seed: int, progress: ProgressFn | None = None) -> str:
    """Write the GGUF file: header, metadata and tensor infos through `gguf.GGUFWriter`, then the data
    section streamed tensor by tensor (never the whole model in memory). Returns the file's sha256."""
    writer = _writer(plan, path)
    align = writer.data_alignment
    digest = hashlib.sha256()
    total = plan.data_bytes()
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        f = writer.fout[0]
        f.flush()
        header_len = f.tell()
        with open(path, "rb") as back:  # the header is small (the vocabulary dominates): hash it from disk
            digest.update(back.read(header_len))
        # Hashing runs on a second thread while this one generates and writes (both release the GIL);
        # at most one chunk waits to be hashed, so memory stays bounded.
        with ThreadPoolExecutor(max_workers=1) as hasher:
            pending = None

            def emit(chunk) -> None:
                nonlocal pending
                f.write(chunk)
                if pending is not None:
                    pending.result()
                pending = hasher.submit(digest.update, chunk)

            pad = -header_len % align
            if pad:
                emit(b"\0" * pad)
            done = 0
            for spec in plan.specs:
                written = 0
                for chunk in _chunks(spec, seed, plan.card):
                    emit(chunk)
                    written += chunk.nbytes
                    if progress is not None:
                        progress(done + written, total)
                if written != spec.nbytes:  # pragma: no cover - programming error
                    raise RuntimeError(f"{spec.name}: wrote {written} bytes, expected {spec.nbytes}")
                pad = -written % align
                if pad:
                    emit(b"\0" * pad)
                done += written + pad
            if pending is not None:
                pending.result()
    finally:
        writer.close()
    return digest.hexdigest()


def recipe(card: ModelCard, *, quant: str, seed: int):
    """What `suite.models.build_model(card, fmt="gguf", ...)` needs to build this card's GGUF."""
    plan = GGUFPlan(card, quant)

    def write(tmp: Path, progress: ProgressFn | None) -> dict[str, str]:
        return {MODEL_FILE: write_gguf(plan, tmp / MODEL_FILE, seed=seed, progress=progress)}

    return Recipe(
        options={"format": "gguf", "quant": plan.quant, "seed": seed},
        builder_version=BUILDER_VERSION,
        needed_bytes=plan.estimate_bytes(),
        write=write,
        manifest_fields={
            "weight_bytes_read_per_token": plan.weight_bytes_read_per_token(),
            "kv_cache_bytes_per_token_fp32": card.kv_cache_bytes_per_token(4),
            # llama.cpp's default KV cache type is f16
            "kv_cache_bytes_per_token_f16": card.kv_cache_bytes_per_token(2),
            "gguf": {"architecture": plan.arch, "file_type": f"MOSTLY_{plan.base_type}",
                     "tensor_types": plan.tensor_types(), "tokenizer": "llama (synthetic)",
                     "writer": f"gguf {gguf_package_version()}"},
        },
    )
