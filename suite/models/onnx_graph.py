"""The ONNX graph of a decoder-only LLM in the layout onnxruntime-genai loads, with seeded
random weights streamed straight into the external-data file.

Ops are the ORT contrib ops onnxruntime-genai's own model builder emits for CPU int4:
MatMulNBits (accuracy_level 4), GroupQueryAttention (packed QKV, do_rotary), SimplifiedLayerNormalization
/ SkipSimplifiedLayerNormalization, GatherBlockQuantized for tied embeddings. Logits are computed for the
last position only. Weights are random quantized codes drawn directly (no float weights, no quantizer):
speed and memory traffic are those of the real model, the outputs are not.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from suite.catalog.cards import ModelCard
from suite.models.recipe import ProgressFn

MS = "com.microsoft"
#: Each tensor starts at a multiple of this in model.onnx.data (lets ORT mmap it).
ALIGN = 4096
#: Bytes generated per chunk while streaming a tensor (bounds the builder's memory).
CHUNK_BYTES = 32 * 1024 * 1024
#: Standard deviation of a uniform symmetric code (zero point 2^(bits-1)): sqrt(((2^b)^2 - 1)/12 + 1/4).
CODE_STD = {bits: math.sqrt(((1 << bits) ** 2 - 1) / 12 + 0.25) for bits in (4, 8)}


@dataclass(frozen=True)
class TensorSpec:
    """One initializer: its bytes come from `chunks()` (deterministic for a seed)."""

    name: str
    dtype: int  # onnx TensorProto data type
    shape: tuple[int, ...]
    kind: str  # "codes" | "scales" | "uniform" | "ones" | "bias" | "cos" | "sin"
    fan_in: int = 0  # K of a quantized matmul (sets the scale)
    bits: int = 4
    matmul: bool = False  # streamed on every decode step (weight_bytes_read_per_token)

    @property
    def nbytes(self) -> int:
        itemsize = 1 if self.dtype == TensorProto.UINT8 else 4
        return int(np.prod(self.shape, dtype=np.int64)) * itemsize


def _rng(seed: int, name: str) -> np.random.Generator:
    # A stream per tensor, keyed by name: the bytes do not depend on build order or chunking.
    words = np.frombuffer(hashlib.sha256(name.encode()).digest()[:16], dtype=np.uint32).tolist()
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *words])))


def rope_inv_freq(card: ModelCard) -> np.ndarray:
    """Rotary inverse frequencies [head_dim/2], with Llama 3 rope scaling applied when the card has it."""
    half = card.head_dim // 2
    inv_freq = 1.0 / (card.rope_theta ** (np.arange(0, half, dtype=np.float64) * 2 / card.head_dim))
    rs = card.rope_scaling_dict()
    if rs and rs.get("rope_type") == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old_ctx = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        low_wl, high_wl = old_ctx / low, old_ctx / high
        smooth = (old_ctx / wavelen - low) / (high - low)
        scaled = np.where(wavelen > low_wl, inv_freq / factor, inv_freq)
        mid = (wavelen <= low_wl) & (wavelen >= high_wl)
        inv_freq = np.where(mid, (1 - smooth) * inv_freq / factor + smooth * inv_freq, scaled)
    elif rs:
        raise ValueError(f"card {card.id}: rope_scaling {rs.get('rope_type')!r} not supported")
    return inv_freq


def _rope_rows(card: ModelCard, fn: Callable[[float], float]) -> Iterator[np.ndarray]:
    """cos or sin cache [context, head_dim/2] (HF rotate_half layout), in row chunks.

    Uses the C library's cos/sin (math) rather than numpy's, whose SIMD versions differ by an ulp
    between CPUs: the bytes, hence the sha256, must not depend on the machine that builds them."""
    inv_freq = rope_inv_freq(card)
    rows = max(1, CHUNK_BYTES // (8 * len(inv_freq)))
    for start in range(0, card.max_position_embeddings, rows):
        t = np.arange(start, min(start + rows, card.max_position_embeddings), dtype=np.float64)
        angles = np.outer(t, inv_freq).ravel()  # IEEE multiplications: exact everywhere
        yield _u8(np.fromiter(map(fn, angles.tolist()), dtype=np.float64, count=angles.size).astype("<f4"))


def _u8(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1).view(np.uint8)


def _chunks(spec: TensorSpec, seed: int, card: ModelCard, block_size: int) -> Iterator[np.ndarray]:
    """The tensor's bytes as uint8 arrays of at most CHUNK_BYTES (no copies into `bytes`)."""
    rng = _rng(seed, spec.name)
    total = spec.nbytes
    if spec.kind == "codes":
        # Uniform random codes: raw 64-bit generator output (the fastest stream numpy has), as bytes;
        # both nibbles of a random byte are uniform too.
        for start in range(0, total, CHUNK_BYTES):
            n = min(CHUNK_BYTES, total - start)
            raw = rng.bit_generator.random_raw(-(-n // 8)).astype("<u8", copy=False)
            yield raw.view(np.uint8)[:n]
    elif spec.kind == "scales":
        # Weight std ~ 1/sqrt(K) (activations keep their size through each matmul), +-25% per block.
        base = 1.0 / (CODE_STD[spec.bits] * math.sqrt(spec.fan_in))
        n = total // 4
        step = CHUNK_BYTES // 4
        for start in range(0, n, step):
            u = rng.random(min(step, n - start), dtype=np.float32)
            yield _u8(((0.75 + 0.5 * u) * np.float32(base)).astype("<f4"))
    elif spec.kind in ("uniform", "bias"):
        # Uniform with std 1 (embeddings) or 0.1 (biases): plain IEEE arithmetic, same bytes on every machine.
        half_width = np.float32(math.sqrt(3.0) * (1.0 if spec.kind == "uniform" else 0.1))
        n = total // 4
        step = CHUNK_BYTES // 4
        for start in range(0, n, step):
            u = rng.random(min(step, n - start), dtype=np.float32)
            yield _u8(((u * np.float32(2) - np.float32(1)) * half_width).astype("<f4"))
    elif spec.kind == "ones":
        yield _u8(np.ones(spec.shape, dtype="<f4"))
    elif spec.kind in ("cos", "sin"):
        yield from _rope_rows(card, math.cos if spec.kind == "cos" else math.sin)
    else:  # pragma: no cover - programming error
        raise ValueError(spec.kind)


class GraphPlan:
    """Nodes, inputs/outputs and the list of initializers (specs, not data) for one card."""

    def __init__(self, card: ModelCard, *, bits: int, block_size: int) -> None:
        self.card, self.bits, self.block = card, bits, block_size
        self.nodes: list[onnx.NodeProto] = []
        self.specs: list[TensorSpec] = []
        self.inline: list[onnx.TensorProto] = []  # tiny constants kept in model.onnx
        self._build()

    # --- helpers ---------------------------------------------------------------------------
    def _spec(self, name: str, dtype: int, shape: tuple[int, ...], kind: str, **kw: object) -> str:
        self.specs.append(TensorSpec(name, dtype, tuple(int(s) for s in shape), kind, **kw))  # type: ignore[arg-type]
        return name

    def _const(self, name: str, values: list[int], dtype: int = TensorProto.INT64) -> str:
        self.inline.append(helper.make_tensor(name, dtype, [len(values)], values))
        return name

    def _node(self, op: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs: object) -> None:
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))

    def _quant_weight(self, prefix: str, k: int, n: int) -> tuple[str, str]:
        blocks = k // self.block
        w = self._spec(f"{prefix}.weight_Q{self.bits}", TensorProto.UINT8, (n, blocks, self.block * self.bits // 8),
                       "codes", bits=self.bits, matmul=True)
        s = self._spec(f"{prefix}.weight_scales", TensorProto.FLOAT, (n, blocks), "scales",
                       fan_in=k, bits=self.bits, matmul=True)
        return w, s

    def _matmul(self, x: str, prefix: str, k: int, n: int) -> str:
        w, s = self._quant_weight(prefix, k, n)
        out = f"{prefix}/output_0"
        self._node("MatMulNBits", [x, w, s], [out], prefix, MS, K=k, N=n, bits=self.bits,
                   block_size=self.block, accuracy_level=4)
        return out

    # --- the graph -----------------------------------------------------------------------------
    def _build(self) -> None:
        c = self.card
        h, L = c.hidden_size, c.num_hidden_layers
        if any(dim % self.block for dim in (h, c.intermediate_size, c.q_size)):
            raise ValueError(f"card {c.id}: hidden/intermediate/q sizes must be multiples of block_size {self.block}")
        f32, i64 = TensorProto.FLOAT, TensorProto.INT64
        kv_shape = ["batch_size", c.num_key_value_heads, "past_sequence_length", c.head_dim]
        kv_out_shape = ["batch_size", c.num_key_value_heads, "total_sequence_length", c.head_dim]
        self.inputs = [
            helper.make_tensor_value_info("input_ids", i64, ["batch_size", "sequence_length"]),
            helper.make_tensor_value_info("attention_mask", i64, ["batch_size", "total_sequence_length"]),
        ]
        self.outputs = [helper.make_tensor_value_info("logits", f32, ["batch_size", 1, c.vocab_size])]
        for i in range(L):
            for kv in ("key", "value"):
                self.inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", f32, kv_shape))
                self.outputs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", f32, kv_out_shape))

        # Attention bookkeeping shared by every layer.
        self._node("ReduceSum", ["attention_mask", self._const("/model/constants/axes_1", [1])],
                   ["/model/attn_mask_reformat/seqlens_sum"], "/model/attn_mask_reformat/ReduceSum", keepdims=0)
        self._node("Sub", ["/model/attn_mask_reformat/seqlens_sum", self._const("/model/constants/one", [1])],
                   ["/model/attn_mask_reformat/seqlens_minus1"], "/model/attn_mask_reformat/Sub")
        self._node("Cast", ["/model/attn_mask_reformat/seqlens_minus1"], ["seqlens_k"],
                   "/model/attn_mask_reformat/Cast_seqlens", to=TensorProto.INT32)
        self._node("Shape", ["attention_mask"], ["/model/attn_mask_reformat/shape"], "/model/attn_mask_reformat/Shape")
        self._node("Gather", ["/model/attn_mask_reformat/shape", self._const("/model/constants/idx_1", [1])],
                   ["/model/attn_mask_reformat/total_len_1d"], "/model/attn_mask_reformat/Gather", axis=0)
        self._node("Squeeze", ["/model/attn_mask_reformat/total_len_1d"], ["/model/attn_mask_reformat/total_len_i64"],
                   "/model/attn_mask_reformat/Squeeze")
        self._node("Cast", ["/model/attn_mask_reformat/total_len_i64"], ["total_seq_len"],
                   "/model/attn_mask_reformat/Cast_total", to=TensorProto.INT32)
        half = c.head_dim // 2
        cos = self._spec("cos_cache", f32, (c.max_position_embeddings, half), "cos")
        sin = self._spec("sin_cache", f32, (c.max_position_embeddings, half), "sin")

        # Embeddings.
        emb = "/model/embed_tokens/output_0"
        if c.tie_word_embeddings:
            lm_w, lm_s = self._quant_weight("lm_head.MatMul", h, c.vocab_size)
            self._node("Reshape", [lm_w, self._const("/model/constants/emb_shape", [c.vocab_size, h * self.bits // 8])],
                       ["/model/embed_tokens/weight_2d"], "/model/embed_tokens/Reshape")
            self._node("GatherBlockQuantized", ["/model/embed_tokens/weight_2d", "input_ids", lm_s], [emb],
                       "/model/embed_tokens/GatherBlockQuantized", MS, bits=self.bits, block_size=self.block,
                       gather_axis=0, quantize_axis=1)
        else:
            w = self._spec("model.embed_tokens.weight", f32, (c.vocab_size, h), "uniform")
            self._node("Gather", [w, "input_ids"], [emb], "/model/embed_tokens/Gather", axis=0)

        eps = float(c.rms_norm_eps)
        residual, pending = emb, None  # pending: the previous sublayer output not yet added
        for i in range(L):
            p = f"/model/layers.{i}"
            ln_w = self._spec(f"model.layers.{i}.input_layernorm.weight", f32, (h,), "ones")
            x = f"{p}/input_layernorm/output_0"
            if pending is None:
                self._node("SimplifiedLayerNormalization", [residual, ln_w], [x], f"{p}/input_layernorm/LayerNorm",
                           axis=-1, epsilon=eps, stash_type=1)
            else:
                new_res = f"{p}/input_layernorm/output_3"
                self._node("SkipSimplifiedLayerNormalization", [pending, residual, ln_w], [x, "", "", new_res],
                           f"{p}/input_layernorm/SkipLayerNorm", MS, epsilon=eps)
                residual = new_res
            # Attention: packed QKV projection -> GQA (rotary inside) -> o_proj.
            qkv_n = c.q_size + 2 * c.kv_size
            qkv = self._matmul(x, f"{p}/attn/qkv_proj/MatMul", h, qkv_n)
            if c.qkv_bias:
                b = self._spec(f"model.layers.{i}.attn.qkv_proj.bias", f32, (qkv_n,), "bias")
                self._node("Add", [qkv, b], [f"{p}/attn/qkv_proj/Add/output_0"], f"{p}/attn/qkv_proj/Add")
                qkv = f"{p}/attn/qkv_proj/Add/output_0"
            attn = f"{p}/attn/GroupQueryAttention/output_0"
            self._node("GroupQueryAttention",
                       [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", "seqlens_k",
                        "total_seq_len", cos, sin],
                       [attn, f"present.{i}.key", f"present.{i}.value"], f"{p}/attn/GroupQueryAttention", MS,
                       num_heads=c.num_attention_heads, kv_num_heads=c.num_key_value_heads, do_rotary=1,
                       rotary_interleaved=0, scale=1.0 / math.sqrt(c.head_dim), local_window_size=-1)
            o = self._matmul(attn, f"{p}/attn/o_proj/MatMul", c.q_size, h)
            # Post-attention norm; output 3 is the residual sum.
            post_w = self._spec(f"model.layers.{i}.post_attention_layernorm.weight", f32, (h,), "ones")
            x2, res2 = f"{p}/post_attention_layernorm/output_0", f"{p}/post_attention_layernorm/output_3"
            self._node("SkipSimplifiedLayerNormalization", [o, residual, post_w], [x2, "", "", res2],
                       f"{p}/post_attention_layernorm/SkipLayerNorm", MS, epsilon=eps)
            residual = res2
            # SwiGLU MLP.
            gate = self._matmul(x2, f"{p}/mlp/gate_proj/MatMul", h, c.intermediate_size)
            up = self._matmul(x2, f"{p}/mlp/up_proj/MatMul", h, c.intermediate_size)
            self._node("Sigmoid", [gate], [f"{p}/mlp/act_fn/Sigmoid/output_0"], f"{p}/mlp/act_fn/Sigmoid")
            self._node("Mul", [gate, f"{p}/mlp/act_fn/Sigmoid/output_0"], [f"{p}/mlp/act_fn/Mul/output_0"],
                       f"{p}/mlp/act_fn/Mul")
            self._node("Mul", [f"{p}/mlp/act_fn/Mul/output_0", up], [f"{p}/mlp/Mul/output_0"], f"{p}/mlp/Mul")
            pending = self._matmul(f"{p}/mlp/Mul/output_0", f"{p}/mlp/down_proj/MatMul", c.intermediate_size, h)

        # Final norm, last position only, lm_head.
        norm_w = self._spec("model.norm.weight", f32, (h,), "ones")
        self._node("SkipSimplifiedLayerNormalization", [pending, residual, norm_w], ["/model/norm/output_0"],
                   "/model/norm/SkipLayerNorm", MS, epsilon=eps)
        self._node("Slice", ["/model/norm/output_0", self._const("/model/constants/last_start", [-1]),
                             self._const("/model/constants/last_end", [2**62]),
                             self._const("/model/constants/axes_1b", [1])],
                   ["/model/norm/last_position"], "/model/norm/SliceLast")
        if c.tie_word_embeddings:
            self._node("MatMulNBits", ["/model/norm/last_position", lm_w, lm_s], ["logits"], "/lm_head/MatMul", MS,
                       K=h, N=c.vocab_size, bits=self.bits, block_size=self.block, accuracy_level=4)
        else:
            w, s = self._quant_weight("lm_head.MatMul", h, c.vocab_size)
            self._node("MatMulNBits", ["/model/norm/last_position", w, s], ["logits"], "/lm_head/MatMul", MS,
                       K=h, N=c.vocab_size, bits=self.bits, block_size=self.block, accuracy_level=4)

    # --- sizes --------------------------------------------------------------------------------
    def layout(self) -> list[tuple[TensorSpec, int]]:
        """(spec, offset) of every initializer in model.onnx.data, aligned."""
        out, offset = [], 0
        for spec in self.specs:
            offset = -(-offset // ALIGN) * ALIGN
            out.append((spec, offset))
            offset += spec.nbytes
        return out

    def data_bytes(self) -> int:
        spec, offset = self.layout()[-1]
        return offset + spec.nbytes

    def weight_bytes_read_per_token(self) -> int:
        """Weights one decode step streams: every MatMulNBits weight + scales (lm_head included),
        norms and biases, and one embedding row (a fp32 row when untied; the tied table is the lm_head)."""
        total = sum(s.nbytes for s in self.specs if s.matmul or s.kind in ("ones", "bias"))
        if not self.card.tie_word_embeddings:
            total += self.card.hidden_size * 4
        return total


def write_model(plan: GraphPlan, out_dir: Path, *, seed: int, progress: ProgressFn | None = None) -> dict[str, str]:
    """Write model.onnx.data (streamed) and model.onnx into `out_dir`; returns name -> sha256."""
    data_name = "model.onnx.data"
    total = plan.data_bytes()
    digest = hashlib.sha256()
    initializers = []
    # Hashing runs on a second thread while the main one generates and writes (both release the GIL);
    # at most one chunk waits to be hashed, so memory stays bounded.
    with open(out_dir / data_name, "wb") as f, ThreadPoolExecutor(max_workers=1) as hasher:
        pending = None

        def emit(chunk: np.ndarray | bytes) -> None:
            nonlocal pending
            f.write(chunk)
            if pending is not None:
                pending.result()
            pending = hasher.submit(digest.update, chunk)

        for spec, offset in plan.layout():
            pad = offset - f.tell()
            if pad:
                emit(b"\0" * pad)
            written = 0
            for chunk in _chunks(spec, seed, plan.card, plan.block):
                emit(chunk)
                written += chunk.nbytes
                if progress is not None:
                    progress(offset + written, total)
            if written != spec.nbytes:  # pragma: no cover - programming error
                raise RuntimeError(f"{spec.name}: wrote {written} bytes, expected {spec.nbytes}")
            initializers.append(_external_tensor(spec, data_name, offset))
        if pending is not None:
            pending.result()
    hashes = {data_name: digest.hexdigest()}

    graph = helper.make_graph(plan.nodes, "edgebench_synthetic_llm", plan.inputs, plan.outputs,
                              initializer=plan.inline + initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(MS, 1)],
                              producer_name="edgebench", ir_version=10)
    blob = model.SerializeToString(deterministic=True)
    (out_dir / "model.onnx").write_bytes(blob)
    hashes["model.onnx"] = hashlib.sha256(blob).hexdigest()
    return hashes


def _external_tensor(spec: TensorSpec, location: str, offset: int) -> onnx.TensorProto:
    t = onnx.TensorProto()
    t.name = spec.name
    t.data_type = spec.dtype
    t.dims.extend(spec.shape)
    t.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(spec.nbytes))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def genai_config(card: ModelCard) -> dict:
    """genai_config.json for the graph above (no tokenizer: callers feed token ids)."""
    return {
        "model": {
            "bos_token_id": 1,
            "context_length": card.max_position_embeddings,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": "model.onnx",
                "head_size": card.head_dim,
                "hidden_size": card.hidden_size,
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
                "num_attention_heads": card.num_attention_heads,
                "num_hidden_layers": card.num_hidden_layers,
                "num_key_value_heads": card.num_key_value_heads,
            },
            "eos_token_id": 2,
            "pad_token_id": 0,
            "type": card.architecture,
            "vocab_size": card.vocab_size,
        },
        "search": {
            "diversity_penalty": 0.0,
            "do_sample": False,
            "early_stopping": True,
            "length_penalty": 1.0,
            # KV buffers are sized by max_length up front: a modest default, runtimes set their own.
            "max_length": min(card.max_position_embeddings, 2048),
            "min_length": 0,
            "no_repeat_ngram_size": 0,
            "num_beams": 1,
            "num_return_sequences": 1,
            "past_present_share_buffer": True,
            "repetition_penalty": 1.0,
            "temperature": 1.0,
            "top_k": 1,
            "top_p": 1.0,
        },
    }
