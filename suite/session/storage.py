"""A device's storage read bandwidth, measured with the native probe `edgebench-storage`
(suite/runtimes/build/probes/storage.c), for models larger than memory (issue 17): llama.cpp maps
GGUF weights with mmap, so a model larger than RAM pages weights in from flash on every token and
its decode speed is bounded by 1 / (resident bytes / DRAM bandwidth + streamed bytes / storage
bandwidth).

`storage_bandwidth(transport, remote_probes_dir, key, work_dir, say)` measures the filesystem
holding `work_dir` (where edgebench puts models: provision.WORK_DIR), no root needed:
- the test file is min(2 GiB, free / 4) bytes, free being the free space there (`df -k`, the
  transport's `free_bytes`); below 64 MiB (less than 256 MiB free) it refuses before writing
  anything (InsufficientDiskError with `free_bytes` and `needed_bytes`): a small file would be
  served by the flash controller's own caches;
- the probe writes pseudo-random bytes, fsync()s, evicts the file from the page cache
  (posix_fadvise DONTNEED) before each test and reads the file's residency with mincore(); it
  reads with O_DIRECT where the filesystem takes it (`direct`), then deletes the file;
- returns `storage_read_bw_bytes_per_s/seq` (1 MiB sequential reads) and
  `storage_read_bw_bytes_per_s/rand4k` (4 KiB random reads, one thread, queue depth 1) in bytes/s,
  higher is better, with `rand4k_iops` and how they were measured (`method`, `direct`, `bytes`,
  `resident_fraction_before`, `evicted`, `probe`: the probe's own JSON line). When the page cache
  still held more than 5% of the file before a test (tmpfs, for one, cannot evict: the loopback
  phone's /data/local/tmp), that metric is None and `unavailable` says why: a page-cache figure is
  memory bandwidth, and it would make a beyond-RAM bound wildly optimistic.

Results are cached per (device serial, probe build key, work dir, test limits) in
`$EDGEBENCH_CACHE_DIR/storage-bandwidth/`: a second call returns the stored figures (`cached`:
true) without running anything on the device; `refresh=True` measures again.

The metric names are constants here (SEQ_METRIC, RAND4K_METRIC) until the fit scenario records
them in runs; suite.core.schema will own them then.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

from suite.core.errors import EdgebenchError, InsufficientDiskError
from suite.core.record import utc_now
from suite.runtimes.build.cmake_build import cache_root
from suite.session.device import probe_command, probe_json
from suite.transport import quote

SEQ_METRIC = "storage_read_bw_bytes_per_s/seq"
RAND4K_METRIC = "storage_read_bw_bytes_per_s/rand4k"
#: the largest test file: past it a phone's flash is measured, not its caches
MAX_FILE_BYTES = 2 << 30
#: the smallest test file worth measuring; the file may take at most 1 / FREE_FRACTION of the free space
MIN_FILE_BYTES = 64 << 20
FREE_FRACTION = 4
#: page-cache residency above which a test read memory rather than storage
MAX_RESIDENT_FRACTION = 0.05
CACHE_FOLDER = "storage-bandwidth"
#: the probe's file name pattern (storage.c): removed after every run, a probe killed by SIGKILL included
LEFTOVER_GLOB = ".edgebench-storage-*.tmp"


def file_bytes_for(free_bytes: int, max_file_bytes: int = MAX_FILE_BYTES) -> int | None:
    """The test file's size for `free_bytes` of free space (whole MiB), or None when too small."""
    size = min(max_file_bytes, free_bytes // FREE_FRACTION) // (1 << 20) * (1 << 20)
    return size if size >= MIN_FILE_BYTES else None


def cache_file(serial: str, key: str, work_dir: str, cache_dir: Path | None = None, *,
               seconds_per_test: float = 3.0, max_file_bytes: int = MAX_FILE_BYTES) -> Path:
    """Where the figures of (device, probe build, work dir, test limits) are kept."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial)[:64]
    material = [serial, key, work_dir, seconds_per_test, max_file_bytes]
    digest = hashlib.sha256(json.dumps(material).encode()).hexdigest()[:12]
    return (cache_dir or cache_root() / CACHE_FOLDER) / f"{safe}-{key}-{digest}.json"


def _load(path: Path, serial: str, key: str, work_dir: str) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or (data.get("serial"), data.get("probe_key"), data.get("work_dir")) != (
            serial, key, work_dir):
        return None
    return data


def _store(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _rate(data: dict, field: str) -> float:
    value = data.get(field)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise EdgebenchError(f"the storage probe gave no usable {field}: {value!r}", probe=data)
    return float(value)


def _figures(data: dict) -> dict:
    """The metrics from the probe's JSON line, each None with a reason where the cache was not evicted."""
    seq, rand, iops = _rate(data, "seq_bytes_per_s"), _rate(data, "rand4k_bytes_per_s"), _rate(data, "rand4k_iops")
    before = data.get("resident_fraction_before") or {}
    figures = {SEQ_METRIC: seq, RAND4K_METRIC: rand, "rand4k_iops": iops}
    unavailable = {}
    for metric, test in ((SEQ_METRIC, "seq"), (RAND4K_METRIC, "rand4k")):
        frac = before.get(test)
        if isinstance(frac, (int, float)) and frac > MAX_RESIDENT_FRACTION:
            figures[metric] = None
            unavailable[metric] = (f"the page cache still held {frac:.0%} of the test file before the {test} test "
                                   f"(measured {data[f'{test}_bytes_per_s']:.3g} bytes/s is memory, not storage): "
                                   "this filesystem cannot evict it (tmpfs?)")
    if figures[RAND4K_METRIC] is None:
        figures["rand4k_iops"] = None
    fracs = [before.get(t) for t in ("seq", "rand4k")]
    known = all(isinstance(f, (int, float)) for f in fracs)
    evicted = (not unavailable) if known or unavailable else None  # None: mincore did not say
    return {**figures, "unavailable": unavailable, "evicted": evicted}


def _method(data: dict, evicted: bool | None, seconds: float) -> str:
    reads = "O_DIRECT reads" if data.get("direct") else "buffered reads (O_DIRECT refused)"
    cache = {True: "evicted", False: "NOT evicted", None: "dropped, unverified (mincore failed)"}[evicted]
    return (f"on-device: edgebench-storage, {data.get('bytes', 0) / 2**20:.0f} MiB file, {reads}, page cache "
            f"{cache} (posix_fadvise DONTNEED) before each test, 1 MiB sequential and 4 KiB random reads "
            f"(1 thread, queue depth 1), at most {seconds:g} s per test")


def storage_bandwidth(transport, remote_probes_dir: str, key: str, work_dir: str,
                      say: Callable[[str], None] = lambda _m: None, *, cache_dir: Path | None = None,
                      refresh: bool = False, seconds_per_test: float = 3.0,
                      max_file_bytes: int = MAX_FILE_BYTES) -> dict:
    """The storage read bandwidth of the filesystem holding `work_dir` on the device, measured by the
    pushed probe (`remote_probes_dir`/bin/edgebench-storage, build `key`) or read from the cache.

    Returns SEQ_METRIC and RAND4K_METRIC (bytes/s, or None with `unavailable[metric]` saying why),
    `rand4k_iops`, `method`, `direct`, `evicted`, `bytes`, `free_bytes`, `resident_fraction_before`,
    `seconds_per_test`, `work_dir`, `serial`, `probe_key`, `measured_at`, `probe` (the probe's JSON)
    and `cached`. `max_file_bytes` caps the test file below MAX_FILE_BYTES (quicker, less honest:
    the flash's own caches weigh more). Raises InsufficientDiskError before writing anything when
    `work_dir` has too little free space, EdgebenchError when the probe fails.
    """
    serial = transport.serial
    path = cache_file(serial, key, work_dir, cache_dir, seconds_per_test=seconds_per_test,
                      max_file_bytes=max_file_bytes)
    if not refresh:
        stored = _load(path, serial, key, work_dir)
        if stored is not None:
            return {**stored, "cached": True}

    transport.shell(f"mkdir -p {quote(work_dir)}", timeout_s=30)
    free = transport.free_bytes(work_dir)
    size = file_bytes_for(free, max_file_bytes)
    if size is None:
        needed = MIN_FILE_BYTES * FREE_FRACTION
        raise InsufficientDiskError(
            f"{serial}: not enough free space in {work_dir} to measure storage bandwidth: {free:,} bytes free, "
            f"{needed:,} needed (a test file of at least {MIN_FILE_BYTES:,} bytes, at most 1/{FREE_FRACTION} "
            "of the free space)",
            hint=f"free space on the device, or measure in another folder; `edgebench devices clean {serial}` "
                 "removes edgebench's old files",
            needed_bytes=needed, free_bytes=free, serial=serial, work_dir=work_dir)

    say(f"{serial}: measuring storage read bandwidth in {work_dir} ({size / 2**20:.0f} MiB test file, "
        f"page cache evicted; {free / 2**30:.1f} GiB free)")
    command = probe_command(remote_probes_dir, "storage", [work_dir, str(size), f"{seconds_per_test:g}"], None)
    try:
        data = probe_json(transport, command, "storage")
    finally:  # a probe killed with SIGKILL (or a timeout) cannot remove its own file
        try:
            transport.shell(f"rm -f -- {quote(work_dir)}/{LEFTOVER_GLOB}", timeout_s=60)
        except EdgebenchError as exc:  # the device went away: the probe's own error (if any) is the story
            say(f"{serial}: could not remove leftover test files in {work_dir}: {exc}")
    if "error" in data:
        raise EdgebenchError(f"{serial}: the storage probe failed in {work_dir}: {data['error']}",
                             serial=serial, command=command, probe=data)

    figures = _figures(data)
    result = {**figures, "method": _method(data, figures["evicted"], seconds_per_test),
              "direct": bool(data.get("direct")),
              "bytes": data.get("bytes"), "free_bytes": free,
              "resident_fraction_before": data.get("resident_fraction_before"),
              "seconds_per_test": seconds_per_test, "work_dir": work_dir, "serial": serial, "probe_key": key,
              "measured_at": utc_now(), "probe": data}
    _store(path, result)
    return {**result, "cached": False}


def device_storage_bandwidth(ref, say: Callable[[str], None] = lambda _m: None, *, refresh: bool = False,
                             max_file_bytes: int = MAX_FILE_BYTES) -> dict:
    """The storage read bandwidths of the device `ref` names, where its models live (edgebench's work folder):
    the probes built for its ABI and the CPU variant its cpuinfo allows, pushed through the provisioning cache,
    then `storage_bandwidth` (cached per device)."""
    from suite.device import provision
    from suite.runtimes.build.probes import ensure_probes
    from suite.runtimes.build.variants import device_variant
    from suite.session.device import PROBES_DIR

    transport, live = ref.transport(), ref.live()
    abi, _note, choice = device_variant(live)
    probes = ensure_probes(abi, choice.variant.name)
    provision.ensure_files(transport, {f"{PROBES_DIR}/{k}": v for k, v in probes.files().items()})
    return storage_bandwidth(transport, f"{provision.WORK_DIR}/{PROBES_DIR}", probes.manifest["key"],
                             provision.WORK_DIR, say, refresh=refresh, max_file_bytes=max_file_bytes)
