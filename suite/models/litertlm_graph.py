"""LiteRT-LM reference models (`.litertlm`): a card's decoder as a TFLite graph with seeded random weights.

The graph is the layout LiteRT-LM's CPU executor loads (what ai-edge-torch exports for a decoder):
signatures `prefill_<T>` (one per prefill length) and `decode` (T = 1) over one set of weight buffers,
inputs `tokens` [1, T] int32, `input_pos` [T] int32, `mask` [1, 1, T, context] float32 and
`kv_cache_{k,v}_<i>` [1, context, kv_heads, head_dim] float32; outputs `logits` [1, T, vocab] and the
updated caches (DYNAMIC_UPDATE_SLICE at `input_pos[0]`). Per layer: RMSNorm, q/k/v projections
(FULLY_CONNECTED; qwen2 adds their biases), rotary embeddings in HF's rotate_half layout from cos/sin
tables of the context (Llama 3 rope scaling applied to the frequencies), grouped-query attention as two
BATCH_MATMULs over the whole cache with the additive mask, the output projection, RMSNorm and SwiGLU
(LOGISTIC, MUL). Tied cards share one table between the embedding lookup and the lm_head.

Quant `f32`: every weight float32. Quant `int8`: every matrix (q, k, v, o, gate, up, down, lm_head and the
embedding table) int8 with one float32 scale per output row (symmetric, zero point 0); the
FULLY_CONNECTEDs run dynamic-range (`asymmetric_quantize_inputs`: activations quantized on the fly, as
TFLite's dynamic-range quantization produces), and the embedding lookup gathers int8 rows and their
scales and dequantizes them (CAST, MUL). Norms, biases and rotary tables stay float32, as do the KV caches.

Weights are streamed: the TFLite flatbuffer holds the graph only, every weight buffer lives after it at
an offset the flatbuffer records (TFLite's `Buffer.offset/size`, the layout of models over 2 GB), so the
builder writes each tensor in chunks and its memory stays bounded whatever the model size. The
`.litertlm` container (the litert-lm-builder's format: header, metadata flatbuffer, 16 KiB-aligned
sections) is written here too, with the builder package's schema, so the bytes are deterministic: its
system metadata carries no random uuid and no creation time (the builder's CLI adds both). Sections: the
LlmMetadata proto (start token, a stop token outside the vocabulary, max_num_tokens = the context), a synthetic HF tokenizer.json
of exactly the card's vocabulary (zlib, as the builder writes it), the TFLite model (PREFILL_DECODE).

Each tensor has its own random stream keyed by (seed, tensor name); rotary tables use the C library's
cos/sin (suite.models.onnx_graph's rule). Same card + seed + quant -> byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import BinaryIO

import numpy as np

from suite.catalog.cards import ModelCard
from suite.core.errors import ModelBuildError
from suite.models.onnx_graph import rope_inv_freq
from suite.models.recipe import ProgressFn, Recipe

#: Bump when the bytes a build produces change for the same card and options.
BUILDER_VERSION = "litertlm-synthetic/1"
MODEL_FILE = "model.litertlm"
QUANTS = ("int8", "f32")
#: Architectures whose graph this builder writes exactly; others are refused (never a wrong graph).
ARCHITECTURES = ("llama", "qwen2")
REFUSED = {
    "phi3": "Phi-3's sliding-window attention (2047) and its fused qkv/gate_up are not written by the "
            "LiteRT-LM builder; build it as onnx or gguf",
}
#: The KV cache's length (positions) of an artefact: the card's context, capped (LiteRT-LM allocates the
#: whole cache, [1, context, kv_heads, head_dim] float32 per layer, at load).
CONTEXT_CAP = 2048
#: Prefill signatures; the executor splits a prompt into work groups of these lengths.
PREFILL_LENGTHS = (32, 128, 512)
#: Bytes generated per chunk while streaming a tensor (bounds the builder's memory).
CHUNK_BYTES = 16 * 1024 * 1024
#: Token ids of the synthetic tokenizer's specials. The LlmMetadata's stop token is none of them but the id
#: just past the vocabulary (`stop_token_id`): a random-weight model samples </s> now and then, and LiteRT-LM
#: stops there silently; edgebench measures a fixed number of decode steps (as min_length does for ort-genai).
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2


def stop_token_id(card: ModelCard) -> int:
    return card.vocab_size
#: Alignment of each weight buffer after the flatbuffer (XNNPACK reads them in place).
ALIGN = 64
#: The .litertlm container (litert_lm_builder.litertlm_core's constants, restated so a bump there is seen).
LITERTLM_VERSION = (1, 7, 0)


def _schema():
    try:  # lazy: optional packages (the `litert` extra)
        import flatbuffers
        from ai_edge_litert import schema_py_generated as tfl
        from litert_lm_builder import litertlm_core
        from litert_lm_builder import litertlm_header_schema_py_generated as lm
        from litert_lm_builder.runtime.proto import llm_metadata_pb2
    except ImportError as exc:
        raise ModelBuildError("building a .litertlm model needs ai-edge-litert and litert-lm-builder",
                              hint="pip install 'edgebench[litert]'") from exc
    return flatbuffers, tfl, lm, litertlm_core, llm_metadata_pb2


def builder_packages() -> dict[str, str]:
    """The versions of the packages whose schemas the artefact is written with."""
    return {name: _dist_version(name) for name in ("ai-edge-litert", "litert-lm-builder")}


@dataclass(frozen=True)
class Weight:
    """One stored tensor: name, shape, how it is stored and filled, what a decode step reads of it."""

    name: str
    shape: tuple[int, ...]
    kind: str  # "matrix" | "ones" | "bias" | "cos" | "sin"
    int8: bool = False
    fan_in: int = 0
    per_token: str = "all"  # "all" | "row" (embedding lookup) | "none" (rotary tables)

    @property
    def n(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.n * (1 if self.int8 else 4)

    @property
    def scale_bytes(self) -> int:
        return 4 * self.shape[0] if self.int8 else 0


def _rng(seed: int, name: str) -> np.random.Generator:
    words = np.frombuffer(hashlib.sha256(name.encode()).digest()[:16], dtype=np.uint32).tolist()
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *words])))


#: std of a uniform int8 code in [-127, 127]
_CODE_STD = math.sqrt((255**2 - 1) / 12)


class LitertlmPlan:
    """The weights (specs, not data), signatures and figures of one card's .litertlm in one quant."""

    def __init__(self, card: ModelCard, quant: str) -> None:
        if card.architecture in REFUSED:
            raise ModelBuildError(f"card {card.id}: architecture {card.architecture!r} is not built as litertlm: "
                                  f"{REFUSED[card.architecture]}", card=card.id)
        if card.architecture not in ARCHITECTURES:  # pragma: no cover - cards.ARCHITECTURES is the same set
            raise ModelBuildError(f"card {card.id}: architecture {card.architecture!r} is not built as litertlm",
                                  card=card.id)
        if quant not in QUANTS:
            raise ModelBuildError(f"unknown litertlm quant {quant!r}; known: {', '.join(QUANTS)}", quant=quant)
        if card.architecture == "qwen2" and not card.qkv_bias:  # pragma: no cover - a card error
            raise ModelBuildError(f"card {card.id}: a qwen2 card without q/k/v biases", card=card.id)
        try:
            rope_inv_freq(card)
        except ValueError as exc:
            raise ModelBuildError(str(exc), card=card.id) from None
        self.card, self.quant = card, quant
        self.context = min(card.max_position_embeddings, CONTEXT_CAP)
        self.prefill_lengths = tuple(t for t in PREFILL_LENGTHS if t <= self.context) or (self.context,)
        q8 = quant == "int8"
        c, d = card, card.hidden_size
        w: list[Weight] = [Weight("embed", (c.vocab_size, d), "matrix", q8, d, per_token="row")]
        for i in range(c.num_hidden_layers):
            w.append(Weight(f"l{i}.attn_norm", (d,), "ones"))
            for p, rows in (("q", c.q_size), ("k", c.kv_size), ("v", c.kv_size)):
                w.append(Weight(f"l{i}.{p}", (rows, d), "matrix", q8, d))
                if c.qkv_bias:
                    w.append(Weight(f"l{i}.{p}_bias", (rows,), "bias"))
            w.append(Weight(f"l{i}.o", (d, c.q_size), "matrix", q8, c.q_size))
            w.append(Weight(f"l{i}.ffn_norm", (d,), "ones"))
            w.append(Weight(f"l{i}.gate", (c.intermediate_size, d), "matrix", q8, d))
            w.append(Weight(f"l{i}.up", (c.intermediate_size, d), "matrix", q8, d))
            w.append(Weight(f"l{i}.down", (d, c.intermediate_size), "matrix", q8, c.intermediate_size))
        w.append(Weight("final_norm", (d,), "ones"))
        if not c.tie_word_embeddings:
            w.append(Weight("lm_head", (c.vocab_size, d), "matrix", q8, d))
        w += [Weight("rope_cos", (self.context, c.head_dim), "cos", per_token="none"),
              Weight("rope_sin", (self.context, c.head_dim), "sin", per_token="none")]
        self.weights = w
        self.by_name = {x.name: x for x in w}

    @property
    def head(self) -> str:
        return "embed" if self.card.tie_word_embeddings else "lm_head"

    def weight_bytes(self) -> int:
        return sum(x.nbytes + x.scale_bytes for x in self.weights)

    def estimate_bytes(self) -> int:
        """An upper bound on the file's size: weights (exact) + alignment, the graph and the container's
        sections, and each int8 matrix's per-row scale and zero point (float32 + int64), which every
        signature's subgraph repeats as the tensor's quantization parameters."""
        signatures = len(self.prefill_lengths) + 1
        quant_params = sum(12 * x.shape[0] for x in self.weights if x.int8) * signatures
        return (self.weight_bytes() + ALIGN * 2 * len(self.weights) + 4 * 1024 * 1024 + 40 * self.card.vocab_size
                + quant_params)

    def weight_bytes_read_per_token(self) -> int:
        """What one decode step streams from memory: every matrix (and its scales), norms and biases, one
        embedding row (tied: the lm_head reads the whole table anyway); rotary tables are a row each."""
        total = 0
        for x in self.weights:
            if x.per_token == "all":
                total += x.nbytes + x.scale_bytes
            elif x.per_token == "row" and not self.card.tie_word_embeddings:
                total += x.nbytes // x.shape[0] + (4 if x.int8 else 0)
        return total + 2 * 4 * self.card.head_dim  # the cos and sin rows of the step's position

    def tensor_types(self) -> dict[str, str]:
        return {"matrices": "int8 per-row scales" if self.quant == "int8" else "float32",
                "norms_biases_rope": "float32", "kv_cache": "float32", "activations": "float32"}


# --- weight bytes ----------------------------------------------------------------------------------------
def _chunks(x: Weight, seed: int, plan: LitertlmPlan) -> Iterator[np.ndarray]:
    """A weight's bytes (int8: the codes, then the per-row float32 scales are a separate buffer)."""
    if x.kind == "ones":
        yield np.ones(x.n, dtype="<f4").view(np.uint8)
    elif x.kind == "bias":  # uniform with std 0.1, as the other factories' biases
        u = _rng(seed, x.name).random(x.n, dtype=np.float32)
        yield ((u * np.float32(2) - np.float32(1)) * np.float32(math.sqrt(3.0) * 0.1)).astype("<f4").view(np.uint8)
    elif x.kind in ("cos", "sin"):
        yield from _rope_rows(plan, math.cos if x.kind == "cos" else math.sin)
    else:
        rng = _rng(seed, x.name)
        row = x.shape[1]
        rows_per = max(1, CHUNK_BYTES // (row * (1 if x.int8 else 4)))
        half_width = np.float32(math.sqrt(3.0) / math.sqrt(x.fan_in))  # uniform with std 1/sqrt(fan_in)
        for start in range(0, x.shape[0], rows_per):
            n = min(rows_per, x.shape[0] - start) * row
            if x.int8:
                yield rng.integers(-127, 128, size=n, dtype=np.int8).view(np.uint8)
            else:
                u = rng.random(n, dtype=np.float32)
                yield ((u * np.float32(2) - np.float32(1)) * half_width).astype("<f4").view(np.uint8)


def _scales(x: Weight, seed: int) -> np.ndarray:
    """Per-row scales of an int8 matrix: weight std ~ 1/sqrt(fan_in), +-25% per row."""
    u = _rng(seed, x.name + "#scale").random(x.shape[0], dtype=np.float32)
    base = np.float32(1.0 / (math.sqrt(x.fan_in) * _CODE_STD))
    return ((np.float32(0.75) + np.float32(0.5) * u) * base).astype("<f4")


def _rope_rows(plan: LitertlmPlan, fn) -> Iterator[np.ndarray]:
    """cos or sin [context, head_dim] in rotate_half layout (both halves alike), C-library cos/sin."""
    inv = rope_inv_freq(plan.card)
    rows = max(1, CHUNK_BYTES // (8 * len(inv)))
    for start in range(0, plan.context, rows):
        t = np.arange(start, min(start + rows, plan.context), dtype=np.float64)
        ang = np.outer(t, inv)
        half = np.fromiter(map(fn, ang.ravel().tolist()), dtype=np.float64, count=ang.size).reshape(ang.shape)
        yield np.concatenate([half, half], axis=1).astype("<f4").reshape(-1).view(np.uint8)


# --- the TFLite graph -------------------------------------------------------------------------------------
class _Model:
    """Operator codes and buffers shared by every signature's subgraph."""

    def __init__(self, tfl) -> None:
        self.tfl = tfl
        b0 = tfl.BufferT()
        self.buffers = [b0]  # buffer 0: the empty sentinel
        self.opcodes: dict[int, int] = {}
        self.opcode_list: list = []
        #: weight buffers, in file order: (buffer index, weight, "codes" | "scales")
        self.external: list[tuple[int, Weight, str]] = []
        self.weight_buffer: dict[tuple[str, str], int] = {}

    def opcode(self, code: int) -> int:
        if code not in self.opcodes:
            oc = self.tfl.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            self.opcodes[code] = len(self.opcode_list)
            self.opcode_list.append(oc)
        return self.opcodes[code]

    def inline(self, arr: np.ndarray) -> int:
        b = self.tfl.BufferT()
        b.data = np.frombuffer(np.ascontiguousarray(arr).tobytes(), dtype=np.uint8)
        self.buffers.append(b)
        return len(self.buffers) - 1

    def weight(self, x: Weight, part: str = "codes") -> int:
        key = (x.name, part)
        if key not in self.weight_buffer:
            b = self.tfl.BufferT()
            b.offset, b.size = 2, 2  # placeholders (> 1: "outside the flatbuffer"), set once the graph's size is known
            self.buffers.append(b)
            self.weight_buffer[key] = len(self.buffers) - 1
            self.external.append((len(self.buffers) - 1, x, part))
        return self.weight_buffer[key]


class _Graph:
    """One signature's subgraph, with the few op helpers a decoder needs."""

    def __init__(self, m: _Model, name: str) -> None:
        tfl = m.tfl
        self.m, self.tfl = m, tfl
        self.sg = tfl.SubGraphT()
        self.sg.name = name
        self.sg.tensors, self.sg.operators, self.sg.inputs, self.sg.outputs = [], [], [], []
        self.weights: dict[str, int] = {}

    def tensor(self, shape, dtype=None, name=None, buf=0) -> int:
        t = self.tfl.TensorT()
        t.shape = [int(s) for s in shape]
        t.type = self.tfl.TensorType.FLOAT32 if dtype is None else dtype
        t.buffer = buf
        t.name = name or f"t{len(self.sg.tensors)}"
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def shape(self, i: int) -> list[int]:
        return list(self.sg.tensors[i].shape)

    def const(self, arr) -> int:
        arr = np.asarray(arr)
        tt = self.tfl.TensorType
        dtype = {np.dtype(np.float32): tt.FLOAT32, np.dtype(np.int32): tt.INT32}[arr.dtype]
        return self.tensor(arr.shape, dtype, buf=self.m.inline(arr))

    def weight(self, x: Weight) -> int:
        """The weight's tensor in this subgraph (its buffer shared with every other subgraph)."""
        if x.name not in self.weights:
            tt = self.tfl.TensorType
            t = self.tensor(x.shape, tt.INT8 if x.int8 else tt.FLOAT32, x.name, self.m.weight(x))
            if x.int8:  # per-row scales as the tensor's quantization parameters (repeated in each signature)
                qp = self.tfl.QuantizationParametersT()
                qp.scale = _scales(x, self._seed).astype(np.float32)  # numpy: packed as one vector, fast
                qp.zeroPoint = np.zeros(x.shape[0], np.int64)
                qp.quantizedDimension = 0
                self.sg.tensors[t].quantization = qp
            self.weights[x.name] = t
        return self.weights[x.name]

    def scales(self, x: Weight) -> int:
        """An int8 table's per-row scales as a float32 tensor (the embedding lookup dequantizes with it)."""
        key = x.name + "#scale"
        if key not in self.weights:
            self.weights[key] = self.tensor([x.shape[0]], name=key, buf=self.m.weight(x, "scales"))
        return self.weights[key]

    def op(self, code, ins, out_shape, out_dtype=None, opt_type=0, opt=None, outs=None) -> int:
        out = outs if outs is not None else [self.tensor(out_shape, out_dtype)]
        o = self.tfl.OperatorT()
        o.opcodeIndex = self.m.opcode(code)
        o.inputs, o.outputs = list(ins), list(out)
        o.builtinOptionsType, o.builtinOptions = opt_type, opt
        self.sg.operators.append(o)
        return out[0]

    # --- helpers
    def reshape(self, x, shape):
        o = self.tfl.ReshapeOptionsT()
        o.newShape = list(shape)
        return self.op(self.B.RESHAPE, [x, self.const(np.array(shape, np.int32))], shape,
                       opt_type=self.O.ReshapeOptions, opt=o)

    def transpose(self, x, perm):
        shp = self.shape(x)
        return self.op(self.B.TRANSPOSE, [x, self.const(np.array(perm, np.int32))], [shp[i] for i in perm],
                       opt_type=self.O.TransposeOptions, opt=self.tfl.TransposeOptionsT())

    def _bshape(self, a, b):
        return list(np.broadcast_shapes(tuple(self.shape(a)), tuple(self.shape(b))))

    def mul(self, a, b):
        return self.op(self.B.MUL, [a, b], self._bshape(a, b), opt_type=self.O.MulOptions, opt=self.tfl.MulOptionsT())

    def add(self, a, b):
        return self.op(self.B.ADD, [a, b], self._bshape(a, b), opt_type=self.O.AddOptions, opt=self.tfl.AddOptionsT())

    def fc(self, x, w: Weight, bias: Weight | None = None):
        """x [..., in] @ w[out, in]^T (+ bias); an int8 w runs dynamic-range."""
        o = self.tfl.FullyConnectedOptionsT()
        o.keepNumDims = True
        if w.int8:
            o.asymmetricQuantizeInputs = True
        b = self.weight(bias) if bias is not None else -1
        return self.op(self.B.FULLY_CONNECTED, [x, self.weight(w), b], self.shape(x)[:-1] + [w.shape[0]],
                       opt_type=self.O.FullyConnectedOptions, opt=o)

    def bmm(self, a, b):
        return self.op(self.B.BATCH_MATMUL, [a, b], self.shape(a)[:-1] + [self.shape(b)[-1]],
                       opt_type=self.O.BatchMatMulOptions, opt=self.tfl.BatchMatMulOptionsT())

    def gather(self, table, idx, out_shape, dtype=None):
        go = self.tfl.GatherOptionsT()
        go.axis = 0
        return self.op(self.B.GATHER, [table, idx], out_shape, dtype, self.O.GatherOptions, go)

    def rmsnorm(self, x, gamma: Weight, eps: float):
        ro = self.tfl.ReducerOptionsT()
        ro.keepDims = True
        ms = self.op(self.B.MEAN, [self.mul(x, x), self.const(np.array([-1], np.int32))], self.shape(x)[:-1] + [1],
                     opt_type=self.O.ReducerOptions, opt=ro)
        r = self.op(self.B.RSQRT, [self.add(ms, self.const(np.array([eps], np.float32)))], self.shape(ms))
        return self.mul(self.mul(x, r), self.weight(gamma))

    def concat(self, xs, axis, dtype=None):
        shp = self.shape(xs[0])
        shp[axis] = sum(self.shape(x)[axis] for x in xs)
        o = self.tfl.ConcatenationOptionsT()
        o.axis = axis
        return self.op(self.B.CONCATENATION, xs, shp, dtype, self.O.ConcatenationOptions, o)

    def rope(self, x, cos, sin):  # x [1, T, H, hd]; cos/sin [1, T, 1, hd]: x*cos + rotate_half(x)*sin
        shp = self.shape(x)
        hs = shp[:-1] + [shp[-1] // 2]
        so = self.tfl.SplitOptionsT()
        so.numSplits = 2
        o1, o2 = self.tensor(hs), self.tensor(hs)
        self.op(self.B.SPLIT, [self.const(np.array(3, np.int32).reshape(())), x], None, opt_type=self.O.SplitOptions,
                opt=so, outs=[o1, o2])
        rot = self.concat([self.op(self.B.NEG, [o2], hs), o1], 3)
        return self.add(self.mul(x, cos), self.mul(rot, sin))

    def embed(self, tokens, table: Weight, t: int):
        d = table.shape[1]
        if not table.int8:
            return self.gather(self.weight(table), tokens, [1, t, d])
        tt = self.tfl.TensorType
        rows = self.gather(self.weight(table), tokens, [1, t, d], tt.INT8)
        self.sg.tensors[rows].quantization = None  # raw codes; dequantized with the row scales below
        rows = self.op(self.B.CAST, [rows], [1, t, d], opt_type=self.O.CastOptions, opt=self._cast(tt))
        scale = self.reshape(self.gather(self.scales(table), tokens, [1, t]), [1, t, 1])
        return self.mul(rows, scale)

    def _cast(self, tt):
        o = self.tfl.CastOptionsT()
        o.inDataType, o.outDataType = tt.INT8, tt.FLOAT32
        return o


def _signature(m: _Model, plan: LitertlmPlan, name: str, t: int, seed: int):
    tfl = m.tfl
    tt = tfl.TensorType
    c, ctx = plan.card, plan.context
    heads, kv, hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
    group = heads // kv
    g = _Graph(m, name)
    g.B, g.O, g._seed = tfl.BuiltinOperator, tfl.BuiltinOptions, seed
    W = plan.by_name
    tokens = g.tensor([1, t], tt.INT32, "tokens")
    pos = g.tensor([t], tt.INT32, "input_pos")
    mask = g.tensor([1, 1, t, ctx], tt.FLOAT32, "mask")
    kin = [(g.tensor([1, ctx, kv, hd], name=f"kv_cache_k_{i}"), g.tensor([1, ctx, kv, hd], name=f"kv_cache_v_{i}"))
           for i in range(c.num_hidden_layers)]
    x = g.embed(tokens, W["embed"], t)
    cos = g.reshape(g.gather(g.weight(W["rope_cos"]), pos, [t, hd]), [1, t, 1, hd])
    sin = g.reshape(g.gather(g.weight(W["rope_sin"]), pos, [t, hd]), [1, t, 1, hd])
    p0 = g.op(g.B.SLICE, [pos, g.const(np.array([0], np.int32)), g.const(np.array([1], np.int32))], [1], tt.INT32,
              g.O.SliceOptions, tfl.SliceOptionsT())
    start = g.concat([g.const(np.array([0], np.int32)), p0, g.const(np.array([0, 0], np.int32))], 0, tt.INT32)
    scale = g.const(np.array([1.0 / math.sqrt(hd)], np.float32))
    kout = []
    for i in range(c.num_hidden_layers):
        h = g.rmsnorm(x, W[f"l{i}.attn_norm"], c.rms_norm_eps)
        q, k, v = (g.fc(h, W[f"l{i}.{p}"], W.get(f"l{i}.{p}_bias")) for p in "qkv")
        q = g.rope(g.reshape(q, [1, t, heads, hd]), cos, sin)
        k = g.rope(g.reshape(k, [1, t, kv, hd]), cos, sin)
        v = g.reshape(v, [1, t, kv, hd])
        kc = g.op(g.B.DYNAMIC_UPDATE_SLICE, [kin[i][0], k, start], [1, ctx, kv, hd])
        vc = g.op(g.B.DYNAMIC_UPDATE_SLICE, [kin[i][1], v, start], [1, ctx, kv, hd])
        g.sg.tensors[kc].name, g.sg.tensors[vc].name = f"kv_cache_k_{i}_out", f"kv_cache_v_{i}_out"
        kout += [kc, vc]
        qh = g.reshape(g.transpose(q, [0, 2, 1, 3]), [1, kv, group * t, hd])  # query heads grouped by kv head
        sc = g.mul(g.bmm(qh, g.transpose(kc, [0, 2, 3, 1])), scale)  # [1, kv, group*t, ctx]
        sc = g.add(g.reshape(sc, [1, heads, t, ctx]), mask)
        so = tfl.SoftmaxOptionsT()
        so.beta = 1.0
        p = g.reshape(g.op(g.B.SOFTMAX, [sc], [1, heads, t, ctx], opt_type=g.O.SoftmaxOptions, opt=so),
                      [1, kv, group * t, ctx])
        a = g.reshape(g.bmm(p, g.transpose(vc, [0, 2, 1, 3])), [1, heads, t, hd])
        a = g.reshape(g.transpose(a, [0, 2, 1, 3]), [1, t, heads * hd])
        x = g.add(x, g.fc(a, W[f"l{i}.o"]))
        h = g.rmsnorm(x, W[f"l{i}.ffn_norm"], c.rms_norm_eps)
        gate, up = g.fc(h, W[f"l{i}.gate"]), g.fc(h, W[f"l{i}.up"])
        act = g.mul(g.mul(gate, g.op(g.B.LOGISTIC, [gate], g.shape(gate))), up)
        x = g.add(x, g.fc(act, W[f"l{i}.down"]))
    x = g.rmsnorm(x, W["final_norm"], c.rms_norm_eps)
    logits = g.fc(x, W[plan.head])
    g.sg.tensors[logits].name = "logits"
    g.sg.inputs = [tokens, pos, mask] + [a for pair in kin for a in pair]
    g.sg.outputs = [logits] + kout

    def tm(key, idx):
        m_ = tfl.TensorMapT()
        m_.name, m_.tensorIndex = key, idx
        return m_

    sd = tfl.SignatureDefT()
    sd.signatureKey = name
    sd.inputs = [tm("tokens", tokens), tm("input_pos", pos), tm("mask", mask)] + \
        [tm(f"kv_cache_{kind}_{i}", kin[i][j]) for i in range(c.num_hidden_layers) for j, kind in enumerate("kv")]
    sd.outputs = [tm("logits", logits)] + \
        [tm(f"kv_cache_{kind}_{i}", kout[2 * i + j]) for i in range(c.num_hidden_layers) for j, kind in enumerate("kv")]
    return g.sg, sd


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


def _buffer_bytes(x: Weight, part: str) -> int:
    return x.shape[0] * 4 if part == "scales" else x.nbytes


def tflite_graph(plan: LitertlmPlan, seed: int) -> tuple[bytes, list[tuple[int, Weight, str]]]:
    """The flatbuffer (graph, inline constants, the offsets of every weight buffer after it) and the
    weight buffers in file order: (offset, weight, part)."""
    flatbuffers, tfl, *_ = _schema()
    m = _Model(tfl)
    subgraphs, sigs = [], []
    names = [(f"prefill_{t}", t) for t in plan.prefill_lengths] + [("decode", 1)]
    for idx, (name, t) in enumerate(names):
        sg, sd = _signature(m, plan, name, t, seed)
        sd.subgraphIndex = idx
        subgraphs.append(sg)
        sigs.append(sd)
    model = tfl.ModelT()
    model.version = 3
    model.description = f"edgebench {plan.card.id} ({plan.quant}, synthetic weights)"
    model.operatorCodes, model.subgraphs, model.signatureDefs, model.buffers = m.opcode_list, subgraphs, sigs, m.buffers

    def pack() -> bytes:
        b = flatbuffers.Builder(1024 * 1024)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    size = len(pack())  # offsets are fixed-width fields: the size does not depend on their values
    layout, offset = [], _align(size)
    for buf, x, part in m.external:
        m.buffers[buf].offset, m.buffers[buf].size = offset, _buffer_bytes(x, part)
        layout.append((offset, x, part))
        offset = _align(offset + _buffer_bytes(x, part))
    graph = pack()
    if len(graph) != size:  # pragma: no cover - a flatbuffers change
        raise ModelBuildError("the TFLite flatbuffer changed size when its buffer offsets were set")
    return graph, layout


# --- the container ----------------------------------------------------------------------------------------
def synthetic_tokenizer(vocab_size: int) -> bytes:
    """An HF tokenizer.json of exactly `vocab_size` tokens: <unk>, <s>, </s>, the printable ASCII
    characters (one token each: a prompt of N characters is N tokens), then filler tokens."""
    if vocab_size < 3 + 95:
        raise ModelBuildError(f"vocab_size {vocab_size} too small for the synthetic tokenizer (needs >= 98)")
    specials = ["<unk>", "<s>", "</s>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in range(32, 127):
        vocab[chr(ch)] = len(vocab)
    for i in range(len(vocab), vocab_size):
        vocab[f"<t{i}>"] = i
    added = [{"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, tok in enumerate(specials)]
    doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
           "pre_tokenizer": None, "post_processor": None, "decoder": {"type": "Fuse"},
           "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                     "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                     "merges": []}}
    return json.dumps(doc, separators=(",", ":")).encode()


def llm_metadata(plan: LitertlmPlan) -> bytes:
    *_, pb = _schema()
    md = pb.LlmMetadata()
    md.start_token.token_ids.ids.append(BOS_ID)
    md.stop_tokens.add().token_ids.ids.append(stop_token_id(plan.card))
    md.max_num_tokens = plan.context
    md.llm_model_type.generic_model.SetInParent()
    return md.SerializeToString(deterministic=True)


def _kv(lm, key: str, value: str):
    s = lm.StringValueT()
    s.value = value
    kv = lm.KeyValuePairT()
    kv.key, kv.valueType, kv.value = key, lm.VData.StringValue, s
    return kv


def write_litertlm(plan: LitertlmPlan, path: Path, *, seed: int, progress: ProgressFn | None = None) -> str:
    """Write the .litertlm file; returns its sha256."""
    flatbuffers, _tfl, lm, core, _pb = _schema()
    if (core.LITERTLM_MAJOR_VERSION, core.LITERTLM_MINOR_VERSION, core.LITERTLM_PATCH_VERSION) != LITERTLM_VERSION:
        raise ModelBuildError(f"litert-lm-builder writes container version {core.LITERTLM_MAJOR_VERSION}."
                              f"{core.LITERTLM_MINOR_VERSION}; this builder writes {LITERTLM_VERSION}")
    graph, layout = tflite_graph(plan, seed)
    tokenizer = synthetic_tokenizer(plan.card.vocab_size)
    sections = [
        (lm.AnySectionDataType.LlmMetadataProto, [], [llm_metadata(plan)]),
        (lm.AnySectionDataType.HF_Tokenizer_Zlib, [],
         [len(tokenizer).to_bytes(8, "little"), zlib.compress(tokenizer, 9)]),
        (lm.AnySectionDataType.TFLiteModel, [_kv(lm, "model_type", "tf_lite_prefill_decode")], None),
    ]
    ident = uuid.uuid5(uuid.NAMESPACE_URL, f"edgebench:{plan.card.id}:{plan.quant}:{seed}:{BUILDER_VERSION}")
    system = lm.SystemMetadataT()
    system.entries = [_kv(lm, "author", "edgebench (synthetic weights)"), _kv(lm, "uuid", str(ident))]
    objects = []
    for dtype, items, _ in sections:
        o = lm.SectionObjectT()
        o.items, o.dataType, o.beginOffset, o.endOffset = items, dtype, 1, 1
        objects.append(o)
    meta = lm.LiteRTLMMetaDataT()
    meta.systemMetadata = system
    meta.sectionMetadata = lm.SectionMetadataT()
    meta.sectionMetadata.objects = objects

    def packed() -> bytes:
        b = flatbuffers.Builder(core.BLOCK_SIZE)
        b.Finish(meta.Pack(b))
        return bytes(b.Output())

    head = core.HEADER_BEGIN_BYTE_OFFSET
    total = sum(_buffer_bytes(x, part) for _, x, part in layout)
    done = 0
    with open(path, "wb") as f:
        offset = _align(head + len(packed()), core.BLOCK_SIZE)
        for (_, _, parts), obj in zip(sections, objects, strict=True):
            f.seek(offset)
            obj.beginOffset = offset
            if parts is not None:
                for p in parts:
                    f.write(p)
            else:  # the TFLite model: the graph, then every weight at its recorded offset
                f.write(graph)
                for off, x, part in layout:
                    _pad_to(f, offset + off)
                    chunks = [_scales(x, seed).view(np.uint8)] if part == "scales" else _chunks(x, seed, plan)
                    for chunk in chunks:
                        f.write(memoryview(chunk))
                        done += chunk.nbytes
                        if progress:
                            progress(done, total)
            obj.endOffset = f.tell()
            offset = _align(obj.endOffset, core.BLOCK_SIZE)
        meta_bytes = packed()
        f.seek(0)
        f.write(core.HEADER_MAGIC_BYTES)
        for v in LITERTLM_VERSION:
            f.write(v.to_bytes(4, "little"))
        f.write(b"\0" * (core.HEADER_END_LOCATION_BYTE_OFFSET - f.tell()))
        f.write((head + len(meta_bytes)).to_bytes(8, "little"))
        f.write(meta_bytes)
    return _sha256(path)


def _pad_to(f: BinaryIO, pos: int) -> None:
    here = f.tell()
    if pos < here:  # pragma: no cover - a layout error
        raise ModelBuildError(f"weight at {pos} overlaps the previous one (ends at {here})")
    f.write(b"\0" * (pos - here))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def recipe(card: ModelCard, *, quant: str, seed: int) -> Recipe:
    """What `suite.models.build_model(card, fmt="litertlm", ...)` needs to build this card's .litertlm."""
    plan = LitertlmPlan(card, quant)

    def write(tmp: Path, progress: ProgressFn | None) -> dict[str, str]:
        return {MODEL_FILE: write_litertlm(plan, tmp / MODEL_FILE, seed=seed, progress=progress)}

    return Recipe(
        options={"format": "litertlm", "quant": quant, "seed": seed},
        builder_version=BUILDER_VERSION,
        needed_bytes=plan.estimate_bytes(),
        write=write,
        manifest_fields={
            "weight_bytes_read_per_token": plan.weight_bytes_read_per_token(),
            "kv_cache_bytes_per_token_fp32": card.kv_cache_bytes_per_token(4),
            "litertlm": {"context": plan.context, "prefill_signatures": list(plan.prefill_lengths),
                         "tensor_types": plan.tensor_types(), "tokenizer": "HF BPE (synthetic, one token per "
                         "printable ASCII character)", "start_token": BOS_ID,
                         "stop_token": stop_token_id(card),
                         "writer": builder_packages()},
        },
    )
