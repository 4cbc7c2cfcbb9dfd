"""The one builder of a run record (DESIGN.md section 2; docs/schema.md): every block present,
in one order, whoever makes the run (a measurement here, or another tool's output imported).

Callers pass the parts; what is not known stays null or empty, never invented. The measured
blocks (`metrics`, `unavailable`, `sensors`, `roofline`) start empty for a run about to be
measured and are filled as it is derived; an import passes them whole.
"""

from __future__ import annotations

import copy
import platform
import socket
from datetime import UTC, datetime
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


def build_record(*, origin: Origin, device: dict, model: dict, runtime: dict, scenario: dict, conditions: dict,
                 started_at: str | None, ended_at: str | None = None, outcome: Outcome = Outcome.COMPLETED,
                 sensors: dict | None = None, metrics: dict | None = None, unavailable: dict | None = None,
                 lab: dict | None = None, extra: dict[str, Any] | None = None) -> dict:
    """A run record from its parts. `lab`: the lab job the run belongs to; `extra`: optional
    top-level blocks that docs/schema.md names (e.g. `import`), appended after the standard ones."""
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(),
        "started_at": started_at,
        "ended_at": ended_at,
        "outcome": Outcome(outcome).value,
        "errors": [],
        "origin": Origin(origin).value,
        "host": host_block(),
        "device": device,
        "model": model,
        "runtime": runtime,
        "scenario": scenario,
        "conditions": conditions,
        "roofline": {},
        "sensors": sensors if sensors is not None else {},
        "metrics": metrics if metrics is not None else {},
        "unavailable": unavailable if unavailable is not None else {},
    }
    if extra:
        record.update(extra)
    if lab is not None:
        record["lab"] = copy.deepcopy(lab)
    return record
