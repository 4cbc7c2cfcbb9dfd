"""Where the engine could actually run: its process's `Cpus_allowed_list` against the mask asked for
and the device's CPU clusters (issue 16: on one phone a mask across the performance and prime
clusters cut llama.cpp decode from 105.6 to 15.0 tok/s)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def parse_cpu_list(text: str) -> set[int]:
    """`0-3,6` -> {0, 1, 2, 3, 6}; ValueError on anything else."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if b < a:
            raise ValueError(f"bad cpu range {part!r}")
        cpus.update(range(a, b + 1))
    return cpus


def affinity_check(allowed_seen: Mapping[str, int] | None, asked: Sequence[int] | None,
                   clusters: Sequence[Mapping] | None) -> dict:
    """The record's `runtime.affinity` additions: `allowed` (each Cpus_allowed_list read of the
    runtime process), `matches_asked` (every reading equals the cpus asked for; None when nothing was
    asked or read) and `spans_clusters` (a warning when the engine could run on clusters of
    different maximum frequency), or {} when no reading was made."""
    if not allowed_seen:
        return {}
    readings: list[tuple[str, set[int]]] = []
    for text in allowed_seen:
        try:
            readings.append((text, parse_cpu_list(text)))
        except ValueError:
            continue
    if not readings:
        return {"allowed": sorted(allowed_seen)}
    out: dict = {"allowed": [t for t, _ in readings]}
    out["matches_asked"] = (all(cpus == set(asked) for _, cpus in readings) if asked else None)
    union = set().union(*(cpus for _, cpus in readings))
    speeds = sorted({int(c["max_khz"]) for c in clusters or () if c.get("max_khz")
                     and union & set(c.get("cpus") or ())})
    if len(speeds) > 1:
        out["spans_clusters"] = (
            f"the engine could run on cpus {','.join(t for t, _ in readings)}, across clusters of "
            + ", ".join(f"{k / 1e6:.2f} GHz" for k in speeds)
            + ": threads on the slower cluster hold the faster ones back (a mask across clusters once cut "
              "llama.cpp decode from 105.6 to 15.0 tok/s)")
    return out


__all__ = ["affinity_check", "parse_cpu_list"]
