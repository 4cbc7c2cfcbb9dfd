"""Whisper reference models for whisper.cpp: a speech card's architecture with seeded random weights, in
whisper.cpp's own (legacy, pre-GGUF) ggml model file, `ggml-model.bin`.

The layout is what `whisper_model_load` (whisper.cpp/src/whisper.cpp) reads, as written by its
`models/convert-pt-to-ggml.py` (f16) and `examples/quantize` (q8_0, q5_0), all little-endian int32:

1. magic 0x67676d6c ("ggml"); the hparams n_vocab, n_audio_ctx, n_audio_state, n_audio_head,
   n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype. ftype is ggml's
   file type, plus GGML_QNT_VERSION x GGML_QNT_VERSION_FACTOR (2 x 1000) in a quantized file, as
   whisper-quantize writes it (f16: 1, as the converter writes it; q8_0: 2007; q5_0: 2008).
2. The mel filterbank: n_mel, n_fft (201 bins of a 400-point FFT), then n_mel x 201 float32. whisper.cpp
   computes the log-mel spectrogram from these, so they are a real filterbank (`mel_filters`): librosa's
   Slaney-style mel filters (16 kHz, n_fft 400, area-normalised), what OpenAI ships as mel_filters.npz;
   our 80-bin bank equals the one inside whisper.cpp's own test models to one float32 ulp.
3. The vocabulary: a count, then each token as a length and its bytes. Real multilingual files hold the
   50257 BPE tokens (ids 0..50256; English-only ones 50256) and whisper.cpp names the specials above them
   itself (it derives eot, sot, the language, task and timestamp tokens from n_vocab), so we write as
   many placeholder tokens: the 256 single bytes, then unique fillers.
4. The tensors, in the order of OpenAI's state dict: n_dims, name length, ggml type; the dims innermost
   first; the name; the data, unpadded.

Tensor types follow the converter and whisper-quantize: 2-D weight matrices (attention q/k/v/out, the
MLP's two layers, the token embedding, which is also the output projection) in the file's type (F16,
Q8_0 or Q5_0); the conv weights (3-D) in F16 (whisper.cpp loads them as F16 whatever the file type);
biases, LayerNorms, the positional tables and the conv biases (stored as [1, d]) in F32.

Weights: every matrix, conv kernel and positional table is uniform with std 0.02 (Whisper's init_std),
LayerNorm gains are 1, biases 0, so activations stay finite. Uniform rather than normal on purpose:
values come from 24-bit integers of a PCG64 stream with exact float32 arithmetic only (numpy's normal
sampler calls exp/log, which may differ in the last bit between C libraries), one stream per tensor
keyed by (card id, tensor name, seed), so the bytes do not depend on build order or host. Q8_0/Q5_0
blocks are made from the f16-rounded values by `gguf.quants` (bit-exact with ggml's reference
quantizers): a q8_0 build is byte for byte what whisper-quantize makes from our f16 build.
Tensors are generated and written in chunks of rows, hashed on the way: memory stays bounded.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version as _dist_version
from pathlib import Path

import numpy as np

from suite.catalog.speech import SpeechCard
from suite.core.errors import ModelBuildError
from suite.models.recipe import ProgressFn, Recipe

#: Bump when the bytes a build produces change for the same card and options.
BUILDER_VERSION = "whisper-ggml-synthetic/1"
FORMAT = "ggml"
MODEL_FILE = "ggml-model.bin"
QUANTS = ("f16", "q8_0", "q5_0")
GGML_FILE_MAGIC = 0x67676D6C
GGML_QNT_VERSION = 2
GGML_QNT_VERSION_FACTOR = 1000
#: ggml_ftype of each quant (GGML_FTYPE_MOSTLY_F16 / _Q8_0 / _Q5_0)
FTYPE = {"f16": 1, "q8_0": 7, "q5_0": 8}
#: ggml_type ids and (block elements, block bytes) of the tensor types written here
GGML_TYPE = {"F32": 0, "F16": 1, "Q5_0": 6, "Q8_0": 8}
BLOCK = {"F32": (1, 4), "F16": (1, 2), "Q5_0": (32, 22), "Q8_0": (32, 34)}
#: what whisper.cpp's mel spectrogram takes: 16 kHz audio, a 400-point FFT (201 bins)
SAMPLE_RATE = 16000
N_FFT = 400
#: tokens a multilingual file holds: the BPE ranks 0..50256 (an English-only one: 50256); whisper.cpp
#: adds the specials above them (end-of-text is the first id past them)
N_TEXT_TOKENS = 50257
WEIGHT_STD = 0.02
#: float32 elements generated per chunk while streaming a tensor (16 MB), bounding the builder's memory
CHUNK_ELEMENTS = 4 * 1024 * 1024


def gguf_package_version() -> str:
    return _dist_version("gguf")


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: its name, shape in numpy order (outermost first), ggml type and fill."""

    name: str
    shape: tuple[int, ...]
    ttype: str  # "F32" | "F16" | "Q8_0" | "Q5_0"
    fill: str  # "uniform" | "ones" | "zeros"

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def row_len(self) -> int:
        return self.shape[-1]

    @property
    def nbytes(self) -> int:
        block, size = BLOCK[self.ttype]
        return self.n_elements // block * size

    def header(self) -> bytes:
        """n_dims, name length, type; the dims innermost first (ggml's ne); the name."""
        name = self.name.encode()
        dims = tuple(reversed(self.shape))
        return struct.pack(f"<3i{len(dims)}i", len(dims), len(name), GGML_TYPE[self.ttype], *dims) + name


# --- the fixed parts: mel filters, vocabulary -------------------------------------------------------
def _hz_to_mel(f: float) -> float:
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    return 15.0 + math.log(f / 1000.0) / (math.log(6.4) / 27.0) if f >= 1000.0 else f / (200.0 / 3)


def _mel_to_hz(m: float) -> float:
    return 1000.0 * math.exp(math.log(6.4) / 27.0 * (m - 15.0)) if m >= 15.0 else m * (200.0 / 3)


def mel_filters(n_mels: int, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] float32 triangular filters, area-normalised ("slaney"): librosa's
    `filters.mel(sr=16000, n_fft=400, n_mels=n)`, from which OpenAI's mel_filters.npz was made.
    The band edges use the C library's log/exp (Python's math), not numpy's CPU-specific SIMD versions;
    the rest is exact float64 arithmetic."""
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lo, hi = _hz_to_mel(0.0), _hz_to_mel(sample_rate / 2)
    mel_f = np.array([_mel_to_hz(m) for m in np.linspace(lo, hi, n_mels + 2).tolist()])
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        weights[i] = np.maximum(0.0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype("<f4")


def placeholder_vocab(n_tokens: int = N_TEXT_TOKENS) -> list[bytes]:
    """The text tokens a file carries: the 256 single bytes, then unique fillers (b" w256", ...).
    whisper.cpp adds eot, sot, languages, tasks and timestamps above them from n_vocab."""
    return [bytes([i]) for i in range(min(256, n_tokens))] + [f" w{i}".encode() for i in range(256, n_tokens)]


# --- the plan: tensors and sizes --------------------------------------------------------------------
class WhisperPlan:
    """The tensors (specs, not data) and hparams of one speech card's ggml file in one quant."""

    def __init__(self, card: SpeechCard, quant: str) -> None:
        quant = quant.lower()
        if quant not in QUANTS:
            hint = "q4_0 is an LLM (GGUF) quant" if quant in ("q4_0", "int4", "int8") else None
            raise ModelBuildError(f"unknown whisper.cpp quant {quant!r}; known: {', '.join(QUANTS)}",
                                  quant=quant, card=card.id, hint=hint or f"use one of {', '.join(QUANTS)}")
        d = card.d_model
        # whisper.cpp's loader fixes these (one state size for both halves, 4 x d MLPs, one head count each)
        if card.encoder_ffn_dim != 4 * d or card.decoder_ffn_dim != 4 * d:
            raise ModelBuildError(f"card {card.id}: whisper.cpp needs ffn dims of 4 x d_model ({4 * d}), got "
                                  f"{card.encoder_ffn_dim}/{card.decoder_ffn_dim}", card=card.id)
        if quant != "f16" and d % 32:
            raise ModelBuildError(f"card {card.id}: d_model {d} is not a multiple of 32 ({quant} blocks)",
                                  card=card.id)
        self.card, self.quant = card, quant
        self.wtype = quant.upper()
        self.specs: list[TensorSpec] = []
        self._build()

    @property
    def n_text_tokens(self) -> int:
        """The BPE tokens the file holds: whisper.cpp's end-of-text id (50257 multilingual, 50256 English-only)."""
        return N_TEXT_TOKENS if self.card.multilingual else N_TEXT_TOKENS - 1

    @property
    def ftype(self) -> int:
        """The hparams' ftype field as whisper.cpp's tools write it."""
        if self.quant == "f16":
            return FTYPE["f16"]  # convert-pt-to-ggml.py writes 1, with no quantization version
        return GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + FTYPE[self.quant]

    def hparams(self) -> tuple[int, ...]:
        c = self.card
        return (c.vocab_size, c.max_source_positions, c.d_model, c.encoder_attention_heads, c.encoder_layers,
                c.max_target_positions, c.d_model, c.decoder_attention_heads, c.decoder_layers, c.num_mel_bins,
                self.ftype)

    def _add(self, name: str, shape: tuple[int, ...], ttype: str, fill: str = "uniform") -> None:
        self.specs.append(TensorSpec(name, shape, ttype, fill))

    def _matrix(self, name: str, rows: int, cols: int) -> None:
        self._add(name, (rows, cols), self.wtype)

    def _norm(self, prefix: str, d: int) -> None:
        self._add(f"{prefix}.weight", (d,), "F32", "ones")
        self._add(f"{prefix}.bias", (d,), "F32", "zeros")

    def _attention(self, prefix: str, d: int) -> None:
        self._matrix(f"{prefix}.query.weight", d, d)
        self._add(f"{prefix}.query.bias", (d,), "F32", "zeros")
        self._matrix(f"{prefix}.key.weight", d, d)  # no bias: Whisper's key projection has none
        self._matrix(f"{prefix}.value.weight", d, d)
        self._add(f"{prefix}.value.bias", (d,), "F32", "zeros")
        self._matrix(f"{prefix}.out.weight", d, d)
        self._add(f"{prefix}.out.bias", (d,), "F32", "zeros")

    def _mlp(self, prefix: str, d: int, ff: int) -> None:
        self._matrix(f"{prefix}.mlp.0.weight", ff, d)
        self._add(f"{prefix}.mlp.0.bias", (ff,), "F32", "zeros")
        self._matrix(f"{prefix}.mlp.2.weight", d, ff)
        self._add(f"{prefix}.mlp.2.bias", (d,), "F32", "zeros")

    def _build(self) -> None:
        """OpenAI's state-dict order (what convert-pt-to-ggml.py walks); whisper.cpp looks tensors up by name."""
        c, d = self.card, self.card.d_model
        conv = "F16"  # whisper.cpp's vtype: F16 for every file type but an all-F32 one (not built here)
        self._add("encoder.positional_embedding", (c.max_source_positions, d), "F32")
        self._add("encoder.conv1.weight", (d, c.num_mel_bins, 3), conv)
        self._add("encoder.conv1.bias", (d, 1), "F32", "zeros")
        self._add("encoder.conv2.weight", (d, d, 3), conv)
        self._add("encoder.conv2.bias", (d, 1), "F32", "zeros")
        for i in range(c.encoder_layers):
            b = f"encoder.blocks.{i}"
            self._attention(f"{b}.attn", d)
            self._norm(f"{b}.attn_ln", d)
            self._mlp(b, d, c.encoder_ffn_dim)
            self._norm(f"{b}.mlp_ln", d)
        self._norm("encoder.ln_post", d)
        self._add("decoder.positional_embedding", (c.max_target_positions, d), "F32")
        self._matrix("decoder.token_embedding.weight", c.vocab_size, d)
        for i in range(c.decoder_layers):
            b = f"decoder.blocks.{i}"
            self._attention(f"{b}.attn", d)
            self._norm(f"{b}.attn_ln", d)
            self._attention(f"{b}.cross_attn", d)
            self._norm(f"{b}.cross_attn_ln", d)
            self._mlp(b, d, c.decoder_ffn_dim)
            self._norm(f"{b}.mlp_ln", d)
        self._norm("decoder.ln", d)

    # --- sizes ---------------------------------------------------------------------------------
    def head_bytes(self) -> int:
        """Magic, hparams, mel filters and vocabulary: everything before the first tensor."""
        n_mels = self.card.num_mel_bins
        vocab = sum(4 + len(t) for t in placeholder_vocab(self.n_text_tokens))
        return 4 + 11 * 4 + 8 + n_mels * (N_FFT // 2 + 1) * 4 + 4 + vocab

    def weight_bytes(self, prefix: str = "") -> int:
        """Bytes of tensor data (of the tensors whose name starts with `prefix`)."""
        return sum(s.nbytes for s in self.specs if s.name.startswith(prefix))

    def file_bytes(self) -> int:
        """The exact size of the file `write_whisper_ggml` writes."""
        return self.head_bytes() + sum(len(s.header()) + s.nbytes for s in self.specs)

    def decoder_weight_bytes_read_per_token(self) -> int:
        """Weights one decoder step streams in whisper.cpp: every decoder tensor except the cross-attention
        key/value projection and value bias (applied once per encode, to the encoder output:
        whisper_build_graph_cross), with one row of the positional table and the whole token embedding (it
        is the output projection)."""
        d = self.card.d_model
        once_per_encode = ("cross_attn.key.weight", "cross_attn.value.weight", "cross_attn.value.bias")
        total = 0
        for s in self.specs:
            if not s.name.startswith("decoder.") or s.name.endswith(once_per_encode):
                continue
            total += d * 4 if s.name == "decoder.positional_embedding" else s.nbytes
        return total

    def cross_kv_bytes_f16(self) -> int:
        """The cross-attention cache every decoder step reads: K and V of the encoder output, per decoder
        layer, n_audio_ctx x d in f16 (whisper.cpp's default cache type)."""
        c = self.card
        return 2 * c.decoder_layers * c.max_source_positions * c.d_model * 2

    def tensor_types(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.specs:
            out[s.ttype] = out.get(s.ttype, 0) + 1
        return dict(sorted(out.items()))


# --- the data -----------------------------------------------------------------------------------------
def _rng(card_id: str, name: str, seed: int) -> np.random.Generator:
    # A stream per tensor, keyed by card and name: the bytes do not depend on build order.
    words = np.frombuffer(hashlib.sha256(f"{card_id}/{name}".encode()).digest()[:16], dtype="<u4").tolist()
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *words])))


def _uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    """n float32 values uniform on [-a, a), std WEIGHT_STD: the top 24 bits of each 32-bit half of the
    raw 64-bit outputs, then exact float32 steps and one rounded multiply (the same bits on any host)."""
    raw = rng.bit_generator.random_raw(-(-n // 2)).astype("<u8", copy=False).view("<u4")[:n]
    u = (raw >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24) - np.float32(0.5)
    return u * np.float32(2 * math.sqrt(3.0) * WEIGHT_STD)


def _quantize(values: np.ndarray, ttype: str) -> np.ndarray:
    import gguf  # the package's quantizers are bit-exact with ggml's reference ones

    return gguf.quants.quantize(values, gguf.GGMLQuantizationType[ttype])


def tensor_values(spec: TensorSpec, card_id: str, seed: int) -> Iterator[np.ndarray]:
    """The tensor's float32 source values, in chunks of whole rows (flattened), before any rounding."""
    rows = spec.n_elements // spec.row_len
    per_chunk = max(1, CHUNK_ELEMENTS // spec.row_len)
    rng = _rng(card_id, spec.name, seed) if spec.fill == "uniform" else None
    for start in range(0, rows, per_chunk):
        n = min(per_chunk, rows - start) * spec.row_len
        if rng is not None:
            yield _uniform(rng, n)
        else:
            yield np.full(n, 1.0 if spec.fill == "ones" else 0.0, dtype=np.float32)


def tensor_chunks(spec: TensorSpec, card_id: str, seed: int) -> Iterator[bytes | np.ndarray]:
    """The tensor's bytes as written, chunk by chunk."""
    for values in tensor_values(spec, card_id, seed):
        if spec.ttype == "F32":
            yield values.astype("<f4", copy=False)
        elif spec.ttype == "F16":
            yield values.astype("<f2")
        else:  # quantized from the f16-rounded values, as whisper-quantize does from an f16 file
            rounded = values.astype("<f2").astype(np.float32)
            yield _quantize(rounded.reshape(-1, spec.row_len), spec.ttype)


def write_whisper_ggml(plan: WhisperPlan, path: Path, *, seed: int, progress: ProgressFn | None = None) -> str:
    """Write the ggml file, tensor by tensor in chunks (never the whole model in memory). Returns its sha256."""
    digest = hashlib.sha256()
    total = plan.weight_bytes()
    with open(path, "wb") as f, ThreadPoolExecutor(max_workers=1) as hasher:
        # hashing runs on a second thread while this one generates and writes (both release the GIL);
        # at most one chunk waits to be hashed, so memory stays bounded
        pending = None

        def emit(chunk) -> None:
            nonlocal pending
            data = memoryview(chunk).cast("B") if isinstance(chunk, np.ndarray) else chunk
            f.write(data)
            if pending is not None:
                pending.result()
            pending = hasher.submit(digest.update, data)

        c = plan.card
        emit(struct.pack("<I11i", GGML_FILE_MAGIC, *plan.hparams()))
        filters = mel_filters(c.num_mel_bins)
        emit(struct.pack("<2i", *filters.shape) + filters.tobytes())
        vocab = placeholder_vocab(plan.n_text_tokens)
        emit(struct.pack("<i", len(vocab)) + b"".join(struct.pack("<I", len(t)) + t for t in vocab))
        done = 0
        for spec in plan.specs:
            emit(spec.header())
            written = 0
            for chunk in tensor_chunks(spec, c.id, seed):
                chunk = np.ascontiguousarray(chunk)
                emit(chunk)
                written += chunk.nbytes
                if progress is not None:
                    progress(done + written, total)
            if written != spec.nbytes:  # pragma: no cover - programming error
                raise RuntimeError(f"{spec.name}: wrote {written} bytes, expected {spec.nbytes}")
            done += written
        if pending is not None:
            pending.result()
    return digest.hexdigest()


def recipe(card: SpeechCard, *, quant: str, seed: int) -> Recipe:
    """What `suite.models.build_speech_model(card, quant=..., seed=...)` needs to build this card's file."""
    plan = WhisperPlan(card, quant)

    def write(tmp: Path, progress: ProgressFn | None) -> dict[str, str]:
        return {MODEL_FILE: write_whisper_ggml(plan, tmp / MODEL_FILE, seed=seed, progress=progress)}

    return Recipe(
        options={"format": FORMAT, "quant": plan.quant, "seed": seed},
        builder_version=BUILDER_VERSION,
        needed_bytes=plan.file_bytes() + 4096,  # the file exactly, and the manifest
        write=write,
        manifest_fields={
            "weight_bytes": plan.weight_bytes(),
            "encoder_weight_bytes": plan.weight_bytes("encoder."),
            "decoder_weight_bytes": plan.weight_bytes("decoder."),
            "decoder_weight_bytes_read_per_token": plan.decoder_weight_bytes_read_per_token(),
            "cross_kv_bytes_f16": plan.cross_kv_bytes_f16(),
            "n_mels": card.num_mel_bins,
            "n_vocab": card.vocab_size,
            "audio_ctx": card.max_source_positions,
            "text_ctx": card.max_target_positions,
            "ggml": {"file": "whisper.cpp ggml (legacy, magic 'ggml')", "ftype": plan.ftype,
                     "tensor_types": plan.tensor_types(), "n_tensors": len(plan.specs),
                     "mel_filters": f"slaney, {N_FFT}-point FFT at {SAMPLE_RATE} Hz",
                     "vocab": f"{plan.n_text_tokens} placeholder tokens (whisper.cpp adds the specials)",
                     "writer": f"edgebench (quantizers: gguf {gguf_package_version()})"},
        },
    )
