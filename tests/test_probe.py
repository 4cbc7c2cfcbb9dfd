"""Roofline probes on this host: DRAM read bandwidth and the int4 MatMulNBits peak."""

from __future__ import annotations

import time

import numpy as np
import pytest

from suite.sensors.probe import (
    MIB,
    dequantize_int4,
    last_level_cache_bytes,
    measure_compute_peak,
    measure_memory_bandwidth,
    parse_cache_size,
    usable_cpus,
)


def test_parse_cache_size_sysfs_forms():
    assert parse_cache_size("32768K\n") == 32 * MIB
    assert parse_cache_size("1M") == MIB
    assert parse_cache_size("512") == 512


def test_memory_bandwidth_live():
    t = time.perf_counter()
    result = measure_memory_bandwidth(repeats=5)
    elapsed = time.perf_counter() - t
    assert elapsed < 10, "the probe must take seconds, not minutes"
    assert result.threads == usable_cpus()
    llc = last_level_cache_bytes()
    if llc:
        assert result.size_bytes >= 8 * llc - 8 * result.threads  # reads come from DRAM
    assert len(result.samples) == 5 and result.bytes_per_s == max(result.samples)
    # Any DRAM since DDR3 reads faster than 1 GB/s and no host reads at 10 TB/s.
    assert 1e9 < result.bytes_per_s < 1e13
    assert "best of 5" in result.method


def test_memory_bandwidth_is_not_the_cache():
    # A buffer that fits in cache must read much faster than the DRAM-sized one: if not,
    # the big figure would be a cache figure too (or the reduction would not be bound by memory).
    llc = last_level_cache_bytes()
    if not llc:
        pytest.skip("no cache sizes in sysfs")
    dram = measure_memory_bandwidth(threads=1, repeats=3)
    cached = measure_memory_bandwidth(threads=1, size_bytes=llc // 4, repeats=20)
    assert cached.bytes_per_s > 1.2 * dram.bytes_per_s


def test_dequantize_int4_by_hand():
    # Byte 0x9F holds k=0 in its low nibble (0xF = 15) and k=1 in its high nibble (0x9 = 9);
    # symmetric zero point 8: w0 = (15 - 8) * 0.5 = 3.5, w1 = (9 - 8) * 0.5 = 0.5.
    packed = np.full((1, 1, 16), 0x9F, dtype=np.uint8)
    scales = np.array([[0.5]], dtype=np.float32)
    w = dequantize_int4(packed, scales)
    assert w.shape == (1, 32)
    assert w[0, :4].tolist() == [3.5, 0.5, 3.5, 0.5]


def test_compute_peak_small_problem():
    result = measure_compute_peak(threads=1, m=32, k=256, n=256, repeats=3)
    assert result.reason is None, result.reason
    assert result.flops_per_s == max(result.samples) and len(result.samples) == 3
    # 2*M*K*N = 4.19 MFLOP per run; any CPU from this decade does > 1 GFLOP/s on it.
    assert 1e9 < result.flops_per_s < 1e14
    assert "MatMulNBits" in result.method and "relative error" in result.method


def test_compute_peak_default_problem_live():
    # M=256, K=N=2048: 2.1 GFLOP per run, the shape of a 256-token prefill through one layer's matmul.
    result = measure_compute_peak()
    assert result.reason is None, result.reason
    assert (result.m, result.k, result.n, result.threads) == (256, 2048, 2048, usable_cpus())
    assert 3 <= len(result.samples) <= 20 and 1e9 < result.flops_per_s < 1e15


def test_compute_peak_unmeasurable_shape_gives_a_reason_not_a_number():
    result = measure_compute_peak(threads=1, k=100)
    assert result.flops_per_s is None and "block size 32" in result.reason and result.samples == ()
