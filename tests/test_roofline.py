"""Roofline arithmetic, checked against numbers derived by hand in each test."""

from __future__ import annotations

import pytest

from suite.analysis.roofline import (
    decode_bound_tps,
    decode_bytes_per_token,
    mean_decode_context,
    prefill_bound_tps,
    roofline_fraction,
)
from suite.core.errors import RooflineError


def test_mean_decode_context():
    # 128 generated tokens after a 512-token prompt: step i attends to 512 + i positions,
    # i = 0..127, so the mean is 512 + 127/2 = 575.5.
    assert mean_decode_context(512, 128) == 575.5
    # One generated token reads exactly the prompt.
    assert mean_decode_context(512, 1) == 512
    with pytest.raises(ValueError):
        mean_decode_context(512, 0)


def test_decode_bytes_per_token_llama_1b_shape():
    # A Llama-3.2-1B-shaped model: 16 layers, 8 KV heads of dim 64, fp16 KV cache:
    # KV bytes per position = 16 layers * 2 (K and V) * 8 heads * 64 dims * 2 bytes = 32768.
    kv_per_position = 16 * 2 * 8 * 64 * 2
    assert kv_per_position == 32768
    # With 0.75e9 weight bytes and a mean context of 575.5 positions:
    # 0.75e9 + 32768 * 575.5 = 750_000_000 + 18_857_984 = 768_857_984 bytes.
    assert decode_bytes_per_token(0.75e9, kv_per_position, 575.5) == 768_857_984
    assert decode_bytes_per_token(0.75e9, kv_per_position, 0) == 0.75e9


def test_decode_bound_tps():
    # 35.7 GB/s read bandwidth, 768_857_984 bytes per token: 35.7e9 / 768_857_984 = 46.43 tok/s.
    assert decode_bound_tps(768_857_984, 35.7e9) == pytest.approx(46.4327, rel=1e-5)
    assert decode_bound_tps(1e9, 50e9) == 50.0
    with pytest.raises(ValueError):
        decode_bound_tps(0, 50e9)


def test_prefill_bound_tps():
    # 1.24e9 params, 2 FLOPs each per token = 2.48e9 FLOP/token; at 264 GFLOP/s:
    # 264e9 / 2.48e9 = 106.45 tok/s.
    assert prefill_bound_tps(1.24e9, 264e9) == pytest.approx(106.4516, rel=1e-5)
    assert prefill_bound_tps(1e9, 200e9) == 100.0


def test_roofline_fraction_and_the_impossible():
    assert roofline_fraction(25.0, 50.0) == 0.5
    assert roofline_fraction(50.0, 50.0) == 1.0
    with pytest.raises(RooflineError) as err:
        roofline_fraction(51.0, 50.0)
    message = str(err.value)
    assert "51" in message and "50" in message and "1.020" in message
    assert err.value.context["fraction"] == pytest.approx(1.02)


def test_above_the_bound_is_an_error_except_under_emulation():
    from types import SimpleNamespace

    from suite.analysis.derive import roofline_part
    from suite.core.measure import BurstParams
    from suite.core.stats import metric

    model = {"weight_bytes_read_per_token": 1e6, "kv_bytes_per_position": 0}
    bw = SimpleNamespace(bytes_per_s=1e8, source="catalog", method="catalog peak", threads=None, samples=())
    fast = {"decode_tps": metric("decode_tps", [500.0, 500.0])}  # bound: 1e8 / 1e6 = 100 tok/s
    params = BurstParams(prompt_tokens=16, gen_tokens=8)
    real = roofline_part(model, fast, None, params, bw, None, None)
    assert "roofline_fraction/decode" not in real.metrics and real.errors[0]["type"] == "RooflineError"
    emu = roofline_part(model, fast, None, params, bw, None, None, emulated="qemu-aarch64")
    got = emu.metrics["roofline_fraction/decode"]
    assert got["value"] == pytest.approx(5.0) and got["emulated"] == "qemu-aarch64" and not emu.errors
