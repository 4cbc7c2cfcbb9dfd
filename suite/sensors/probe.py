"""Roofline probes of the local host: achievable DRAM read bandwidth and int4 matmul peak.

These give a host its physical limits (DESIGN.md section 3): decode is bounded by memory
bandwidth, prefill by compute. Both take the best of several runs as "achievable peak"
and keep every sample.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIB = 2**20
#: Bandwidth buffer: at least this, and at least LLC_MULTIPLE x the last-level cache, so
#: the reads come from DRAM and not from cache.
MIN_BANDWIDTH_BYTES = 512 * MIB
LLC_MULTIPLE = 8
FALLBACK_LLC_BYTES = 32 * MIB


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_cache_size(text: str) -> int:
    """sysfs cache `size` ('32768K', '1M', '512') -> bytes."""
    text = text.strip().upper()
    mult = {"K": 1024, "M": MIB, "G": 2**30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * mult


def last_level_cache_bytes(sys_root: Path = Path("/sys")) -> int | None:
    """Largest cache of cpu0 (the LLC), from sysfs; None if not exposed."""
    sizes = []
    for index in (sys_root / "devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            sizes.append(parse_cache_size((index / "size").read_text()))
        except (OSError, ValueError):
            continue
    return max(sizes) if sizes else None


def _load_note() -> str:
    """Other work on the machine lowers every sample: say how busy it was."""
    try:
        return f"1-min load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    except OSError:
        return "load average unknown"


# --- memory bandwidth -------------------------------------------------------------------


@dataclass(frozen=True)
class BandwidthResult:
    """Achievable DRAM read bandwidth: the best of `samples` (bytes/s each)."""

    bytes_per_s: float
    threads: int
    size_bytes: int
    samples: tuple[float, ...]
    method: str

    def to_dict(self) -> dict[str, object]:
        return {
            "bytes_per_s": self.bytes_per_s,
            "threads": self.threads,
            "size_bytes": self.size_bytes,
            "samples": list(self.samples),
            "method": self.method,
        }


def default_bandwidth_size(sys_root: Path = Path("/sys")) -> int:
    llc = last_level_cache_bytes(sys_root) or FALLBACK_LLC_BYTES
    return max(MIN_BANDWIDTH_BYTES, LLC_MULTIPLE * llc)


def measure_memory_bandwidth(
    threads: int | None = None,
    size_bytes: int | None = None,
    repeats: int = 10,
) -> BandwidthResult:
    """Multi-threaded DRAM read bandwidth: each thread OR-reduces its own slice of a
    buffer much larger than the last-level cache (numpy releases the GIL in the loop)."""
    threads = threads or usable_cpus()
    size_bytes = size_bytes or default_bandwidth_size()
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    words = size_bytes // 8 // threads * threads
    buf = np.empty(words, dtype=np.uint64)
    buf.fill(0x0101010101010101)  # touch every page so no read hits a zero page or faults
    slices = np.array_split(buf, threads)
    size_bytes = buf.nbytes

    start = threading.Barrier(threads + 1)
    done = threading.Barrier(threads + 1)
    stop = False

    def worker(part: np.ndarray) -> None:
        while True:
            start.wait()
            if stop:
                return
            np.bitwise_or.reduce(part)
            done.wait()

    pool = [threading.Thread(target=worker, args=(s,), daemon=True) for s in slices]
    for t in pool:
        t.start()
    samples = []
    try:
        for i in range(repeats + 1):
            t_start = time.perf_counter()
            start.wait()
            done.wait()
            elapsed = time.perf_counter() - t_start
            if i > 0:  # the first pass warms the threads and the TLB: discarded
                samples.append(size_bytes / elapsed)
    finally:
        stop = True
        start.wait()
        for t in pool:
            t.join()
    return BandwidthResult(
        bytes_per_s=max(samples),
        threads=threads,
        size_bytes=size_bytes,
        samples=tuple(samples),
        method=(
            f"numpy bitwise_or.reduce over a {size_bytes // MIB} MiB uint64 buffer split across "
            f"{threads} threads; best of {repeats} after 1 warmup; {_load_note()}"
        ),
    )


# --- compute peak -----------------------------------------------------------------------


@dataclass(frozen=True)
class ComputePeakResult:
    """Achievable int4 matmul FLOP/s, or None and `reason` when it cannot be measured."""

    flops_per_s: float | None
    threads: int
    m: int
    k: int
    n: int
    samples: tuple[float, ...]
    method: str
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "flops_per_s": self.flops_per_s,
            "threads": self.threads,
            "m": self.m,
            "k": self.k,
            "n": self.n,
            "samples": list(self.samples),
            "method": self.method,
            "reason": self.reason,
        }


BLOCK_SIZE = 32
BITS = 4
ACCURACY_LEVEL = 4  # int8 activations x int4 weights: the kernel onnxruntime-genai uses on CPU
#: Relative L2 error allowed against a float64 reference (int8 activation quantisation).
MAX_RELATIVE_ERROR = 0.05
CHECK_ROWS = 16


def int4_weights(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random symmetric 4-bit weights in MatMulNBits layout: B uint8 [N, K/32, 16] (two
    nibbles per byte, low nibble first), scales fp32 [N, K/32]."""
    blocks = k // BLOCK_SIZE
    packed = rng.integers(0, 256, size=(n, blocks, BLOCK_SIZE // 2), dtype=np.uint8)
    scales = rng.uniform(0.005, 0.02, size=(n, blocks)).astype(np.float32)
    return packed, scales


def dequantize_int4(packed: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """W [N, K] float64 from MatMulNBits data; symmetric, so the zero point is 8."""
    low = (packed & 0x0F).astype(np.int16)
    high = (packed >> 4).astype(np.int16)
    q = np.stack([low, high], axis=-1).reshape(packed.shape[0], packed.shape[1], BLOCK_SIZE)
    w = (q - 8).astype(np.float64) * scales[..., None].astype(np.float64)
    return w.reshape(packed.shape[0], -1)


def matmul_nbits_model(m: int, k: int, n: int, packed: np.ndarray, scales: np.ndarray) -> bytes:
    """A one-node ONNX model Y[M,N] = A[M,K] x dequant(B)^T using com.microsoft MatMulNBits."""
    from onnx import TensorProto, helper, numpy_helper  # lazy: runs on phones; only numpy/stdlib at top

    node = helper.make_node(
        "MatMulNBits",
        ["A", "B", "scales"],
        ["Y"],
        domain="com.microsoft",
        K=k,
        N=n,
        bits=BITS,
        block_size=BLOCK_SIZE,
        accuracy_level=ACCURACY_LEVEL,
    )
    graph = helper.make_graph(
        [node],
        "int4_prefill_probe",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
        initializer=[numpy_helper.from_array(packed, "B"), numpy_helper.from_array(scales, "scales")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    return model.SerializeToString()


def measure_compute_peak(
    threads: int | None = None,
    m: int = 256,
    k: int = 2048,
    n: int = 2048,
    repeats: int = 20,
    seed: int = 0,
    max_seconds: float = 5.0,
) -> ComputePeakResult:
    """Best-of-N FLOP/s (2*M*K*N per run) of onnxruntime's int4 MatMulNBits kernel, the
    matmul of an int4 prefill. The output is checked against a float64 reference first:
    a kernel that does not compute the product gives no peak. Timing stops early after
    `max_seconds` (keeping at least 3 samples) so large shapes stay quick."""
    threads = threads or usable_cpus()
    method = (
        f"onnxruntime MatMulNBits bits={BITS} block_size={BLOCK_SIZE} accuracy_level={ACCURACY_LEVEL} "
        f"symmetric, M={m} K={k} N={n}, intra_op_num_threads={threads}, best of up to {repeats} after 1 warmup"
    )

    def unavailable(reason: str) -> ComputePeakResult:
        return ComputePeakResult(None, threads, m, k, n, (), method, reason)

    if k % BLOCK_SIZE or min(m, k, n) < 1:
        return unavailable(f"K={k} is not a positive multiple of the block size {BLOCK_SIZE} (or M, N < 1)")
    try:
        import onnxruntime as ort  # lazy: runs on phones, where it may be absent; only numpy/stdlib at top
    except ImportError as exc:
        return unavailable(f"onnxruntime is not importable: {exc}")
    method += f", onnxruntime {ort.__version__}"

    rng = np.random.default_rng(seed)
    packed, scales = int4_weights(n, k, rng)
    a = rng.standard_normal((m, k)).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            matmul_nbits_model(m, k, n, packed, scales), opts, providers=["CPUExecutionProvider"]
        )
        y = session.run(None, {"A": a})[0]
    except Exception as exc:  # noqa: BLE001 - any ORT failure means "cannot measure"
        return unavailable(f"onnxruntime cannot run MatMulNBits: {type(exc).__name__}: {exc}")

    rows = min(m, CHECK_ROWS)  # a few rows check the whole weight matrix at a fraction of the cost
    reference = a[:rows].astype(np.float64) @ dequantize_int4(packed, scales).T
    rel_err = float(np.linalg.norm(y[:rows] - reference) / np.linalg.norm(reference))
    if not np.isfinite(rel_err) or rel_err > MAX_RELATIVE_ERROR:
        return unavailable(
            f"MatMulNBits output differs from the float64 reference (relative error {rel_err:.3g} > "
            f"{MAX_RELATIVE_ERROR}): its timing would not be of this product"
        )

    flops = 2.0 * m * k * n
    samples = []
    deadline = time.perf_counter() + max_seconds
    for _ in range(repeats):
        t = time.perf_counter()
        session.run(None, {"A": a})
        samples.append(flops / (time.perf_counter() - t))
        if len(samples) >= 3 and time.perf_counter() > deadline:
            break
    method += f" ({len(samples)} timed), relative error {rel_err:.2g} vs float64 on {rows} rows; {_load_note()}"
    return ComputePeakResult(max(samples), threads, m, k, n, tuple(samples), method)
