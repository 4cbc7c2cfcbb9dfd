"""The one pooling key: which runs may be pooled into one set of numbers.

DESIGN.md section 2: results are never pooled across device, model sha256, runtime name,
version, backend and threads, the native binary that ran, or scenario and its parameters. `pool_key` is that rule, once;
the report's tables, `compare` and `export` all read it from here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class PoolKey:
    """What must match for runs to be pooled; `params` is the scenario's parameters as canonical JSON."""

    device_id: str | None
    model_sha256: str | None
    runtime: str | None
    runtime_version: str | None
    backend: str | None
    threads: int | None
    scenario: str | None
    params: str
    #: the sha256 of the native binary that ran (a native runtime's `runtime.bundle.sha256`): two builds
    #: of one llama.cpp commit (CPU variants, toolchains, a user's bundle) never pool
    binary: str | None = None
    #: what keeps a run apart from the rest although it measured the same thing: `throttled` (its
    #: prefill or decode ran under a falling frequency ceiling: the record's `throttling` block) and/or
    #: `cold` (the first run after a fresh push, which built the engine's caches); None for the rest
    condition: str | None = None

    def without_version(self) -> PoolKey:
        """The same key with `runtime_version` and `binary` cleared (None): what `compare` matches a
        baseline and a candidate on, since the runtime's version or build is usually what a
        comparison is about."""
        return replace(self, runtime_version=None, binary=None)

    def digest(self) -> str:
        """A short stable text form for tables: the first 16 hex digits of the sha256 of the
        fields as canonical JSON (sorted keys, no spaces); `binary` only when known, so the digests of
        runs without one stay what they were before it joined the key."""
        fields = asdict(self)
        for optional in ("binary", "condition"):
            if fields[optional] is None:
                del fields[optional]
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def pool_key(record: dict) -> PoolKey:
    """The pooling key of a run record (DESIGN.md section 2: never pool across device, model
    sha256, runtime name/version/backend/threads, scenario + parameters). Run id, times,
    conditions and outcome are not part of it."""
    dev, mod, rt, sc = (record.get(k) or {} for k in ("device", "model", "runtime", "scenario"))
    return PoolKey(
        device_id=dev.get("device_id"),
        model_sha256=mod.get("sha256"),
        runtime=rt.get("name"),
        runtime_version=rt.get("version"),
        backend=rt.get("backend"),
        threads=rt.get("threads"),
        scenario=sc.get("name"),
        params=json.dumps(sc.get("params") or {}, sort_keys=True),
        binary=(rt.get("bundle") or {}).get("sha256"),
        condition=run_condition(record),
    )


def run_condition(record: dict) -> str | None:
    """`throttled`, `cold`, both (comma-separated) or None: see PoolKey.condition."""
    found = []
    if (record.get("throttling") or {}).get("throttled"):
        found.append("throttled")
    if (record.get("conditions") or {}).get("cold"):
        found.append("cold")
    return ",".join(found) or None
