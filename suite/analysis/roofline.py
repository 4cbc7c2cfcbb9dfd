"""Physical limits of LLM inference: decode is bounded by memory bandwidth, prefill by
compute (DESIGN.md section 3). Pure functions; inputs in bytes, bytes/s, FLOP/s."""

from __future__ import annotations

from suite.core.errors import RooflineError

#: FLOPs per parameter per token of a dense transformer forward pass (one multiply-add).
FLOPS_PER_PARAM_PER_TOKEN = 2


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def mean_decode_context(prompt_tokens: int, generated_tokens: int) -> float:
    """Mean KV position read by the decode steps of a run that decodes positions
    prompt .. prompt + generated - 1 (each step attends to all positions before it)."""
    if prompt_tokens < 0 or generated_tokens < 1:
        raise ValueError(f"need prompt >= 0 and generated >= 1, got {prompt_tokens}, {generated_tokens}")
    return prompt_tokens + (generated_tokens - 1) / 2


def decode_bytes_per_token(
    weight_bytes_read_per_token: float,
    kv_bytes_per_token_position: float,
    context_tokens: float,
) -> float:
    """Bytes one decode step reads: every weight once, plus the KV cache of the
    `context_tokens` positions before it. For a whole run pass the mean context
    (`mean_decode_context`), since the KV read grows linearly with position."""
    if weight_bytes_read_per_token <= 0 or kv_bytes_per_token_position < 0 or context_tokens < 0:
        raise ValueError(
            "need weight bytes > 0, KV bytes per position >= 0 and context >= 0, got "
            f"{weight_bytes_read_per_token}, {kv_bytes_per_token_position}, {context_tokens}"
        )
    return weight_bytes_read_per_token + kv_bytes_per_token_position * context_tokens


def decode_bound_tps(bytes_per_token: float, bandwidth_bytes_per_s: float) -> float:
    """Highest decode rate the memory system allows: bandwidth / bytes read per token."""
    _positive("bytes_per_token", bytes_per_token)
    _positive("bandwidth_bytes_per_s", bandwidth_bytes_per_s)
    return bandwidth_bytes_per_s / bytes_per_token


def prefill_bound_tps(params: float, flops_per_s: float) -> float:
    """Highest prefill rate the compute peak allows: FLOP/s / (2 x params) per token.
    Attention FLOPs (which grow with the prompt) are left out, so the bound is an upper one."""
    _positive("params", params)
    _positive("flops_per_s", flops_per_s)
    return flops_per_s / (FLOPS_PER_PARAM_PER_TOKEN * params)


def roofline_fraction(measured_tps: float, bound_tps: float) -> float:
    """measured / bound. Above 1.0 is impossible: the probe or the byte count is wrong."""
    _positive("bound_tps", bound_tps)
    if measured_tps < 0:
        raise ValueError(f"measured_tps must be >= 0, got {measured_tps!r}")
    fraction = measured_tps / bound_tps
    if fraction > 1.0:
        raise RooflineError(
            f"measured {measured_tps:.4g} tok/s exceeds the roofline bound {bound_tps:.4g} tok/s "
            f"(fraction {fraction:.3f} > 1.0)",
            hint="the bandwidth/compute probe underestimates the device, or the bytes/FLOPs per "
            "token are overcounted (weights shared or cached?); this is a bug, not a result",
            measured_tps=measured_tps,
            bound_tps=bound_tps,
            fraction=fraction,
        )
    return fraction
