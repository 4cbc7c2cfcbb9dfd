"""sha256 of host files, cached: a multi-GB model or binary is hashed once while it is unchanged."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def _hash_cache_file() -> Path:
    root = os.environ.get("EDGEBENCH_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "edgebench") / "sha256-cache.json"


def local_sha256(path: Path, cache_file: Path | None = None) -> str:
    """sha256 of a local file, cached by (realpath, size, mtime_ns, inode)."""
    path = Path(path)
    st = path.stat()
    key = os.path.realpath(path)
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    cache_file = cache_file or _hash_cache_file()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    hit = cache.get(key)
    if isinstance(hit, dict) and hit.get("stamp") == stamp:
        return hit["sha256"]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    cache[key] = {"stamp": stamp, "sha256": digest}
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a cache we cannot write only costs time
    return digest
