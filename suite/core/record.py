"""The one builder of a run record (DESIGN.md section 2; docs/schema.md): every block present,
in one order, whoever makes the run (a measurement here, or another tool's output imported).

A record is built once, at the end, from typed parts that do not change once made:

- `RunHead`: what is known when the run starts (device, model, runtime, scenario, conditions);
- `Part`: what one step found (the runtime's repetitions, the sensors, a scenario's own
  analysis, the derivation of energy and roofline), merged in the order given;
- `Failure`: why the run did not complete (the last one sets the outcome).

What is not known stays null or empty, never invented.
"""

from __future__ import annotations

import copy
import platform
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from ulid import ULID

import suite
from suite.core.schema import SCHEMA_VERSION, Origin, Outcome

#: The `conditions` keys every record has (null: not known for this run).
CONDITION_KEYS = ("battery_level_start", "battery_level_end", "battery_temp_c_start", "battery_temp_c_end",
                  "charging", "thermal_status_start", "cooldown_waited_s", "power_source", "screen", "prepared")


def new_run_id() -> str:
    """A time-sortable, collision-free id (ULID): runs from many hosts merge by copying."""
    return str(ULID())


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def host_block() -> dict:
    """The host that made (or imported) the run."""
    return {"hostname": socket.gethostname(), "edgebench_version": suite.__version__,
            "python": platform.python_version()}


def unknown_conditions() -> dict:
    return dict.fromkeys(CONDITION_KEYS)


def _freeze(obj, names: tuple[str, ...]) -> None:
    """Read-only views of a frozen dataclass's mapping fields (a part is not edited once made)."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and not isinstance(value, MappingProxyType):
            object.__setattr__(obj, name, MappingProxyType(dict(value)))


@dataclass(frozen=True)
class RunHead:
    """What is known when a run starts. `blocks`: optional top-level blocks that docs/schema.md
    names (`provisioning`, `import`...); `lab`: the lab job the run belongs to."""

    origin: Origin
    device: Mapping[str, Any]
    model: Mapping[str, Any]
    runtime: Mapping[str, Any]
    scenario: Mapping[str, Any]
    conditions: Mapping[str, Any]
    started_at: str | None
    lab: Mapping[str, Any] | None = None
    blocks: Mapping[str, Any] = field(default_factory=dict)
    run_id: str = field(default_factory=new_run_id)

    def __post_init__(self) -> None:
        _freeze(self, ("device", "model", "runtime", "scenario", "conditions", "lab", "blocks"))


@dataclass(frozen=True)
class Part:
    """What one step of a run found. Merged in order: `metrics`, `sensors`, `conditions`,
    `runtime`, `scenario` and `blocks` (other top-level blocks) key by key, a later part winning;
    `unavailable` reasons replace an earlier reason, `gaps` keep an earlier one (a sensor's own
    reason stays the reason); `roofline` replaces the block; `errors` are appended."""

    metrics: Mapping[str, Mapping] = field(default_factory=dict)
    unavailable: Mapping[str, str] = field(default_factory=dict)
    gaps: Mapping[str, str] = field(default_factory=dict)
    sensors: Mapping[str, Any] = field(default_factory=dict)
    conditions: Mapping[str, Any] = field(default_factory=dict)
    runtime: Mapping[str, Any] = field(default_factory=dict)
    scenario: Mapping[str, Any] = field(default_factory=dict)
    roofline: Mapping[str, Any] | None = None
    errors: tuple[Mapping[str, Any], ...] = ()
    blocks: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _freeze(self, ("metrics", "unavailable", "gaps", "sensors", "conditions", "runtime", "scenario", "roofline",
                       "blocks"))
        object.__setattr__(self, "errors", tuple(self.errors))


@dataclass(frozen=True)
class Failure:
    """Why a run did not complete: its outcome and the error recorded for it."""

    outcome: Outcome
    type: str
    message: str
    traceback: str | None = None

    def error(self) -> dict:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.traceback:
            err["traceback"] = self.traceback
        return err


def _plain(value):
    """A deep, mutable copy (read-only views become dicts): the record owns its data."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def build_record(head: RunHead, *parts: Part, failures: tuple[Failure, ...] | list[Failure] = (),
                 ended_at: str | None = None, completed_reps: int = 0) -> dict:
    """The run record of `head` and its `parts`. The outcome is the last failure's (completed
    without one); `completed_reps`: the measured repetitions a failed run had finished, noted on
    its error. A metric that exists is never also listed as unavailable."""
    metrics: dict = {}
    unavailable: dict = {}
    sensors: dict = {}
    conditions = _plain(head.conditions)
    runtime = _plain(head.runtime)
    scenario = _plain(head.scenario)
    roofline: dict = {}
    blocks = _plain(head.blocks)
    errors = [f.error() for f in failures]
    if errors and completed_reps:
        errors[-1]["completed_reps"] = completed_reps
    for part in parts:
        metrics.update(_plain(part.metrics))
        unavailable.update(_plain(part.unavailable))
        for name, reason in part.gaps.items():
            unavailable.setdefault(name, reason)
        sensors.update(_plain(part.sensors))
        conditions.update(_plain(part.conditions))
        runtime.update(_plain(part.runtime))
        scenario.update(_plain(part.scenario))
        if part.roofline is not None:
            roofline = _plain(part.roofline)
        errors.extend(_plain(e) for e in part.errors)
        blocks.update(_plain(part.blocks))
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": head.run_id,
        "started_at": head.started_at,
        "ended_at": ended_at,
        "outcome": (Outcome(failures[-1].outcome) if failures else Outcome.COMPLETED).value,
        "errors": errors,
        "origin": Origin(head.origin).value,
        "host": host_block(),
        "device": _plain(head.device),
        "model": _plain(head.model),
        "runtime": runtime,
        "scenario": scenario,
        "conditions": conditions,
        "roofline": roofline,
        "sensors": sensors,
        "metrics": metrics,
        "unavailable": {k: v for k, v in unavailable.items() if k not in metrics},
        **blocks,
    }
    if head.lab is not None:
        record["lab"] = _plain(head.lab)
    return record


def superseding(record: Mapping[str, Any], **blocks: Any) -> dict:
    """A new record that replaces a stored one (results are append-only): the same measurement
    re-derived, with `blocks` replaced, a new id, and `supersedes` naming the old one."""
    new = {**_plain(record), **_plain(blocks)}
    new["supersedes"] = record["run_id"]
    new["run_id"] = new_run_id()
    return new
