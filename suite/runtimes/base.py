"""What a runtime is: load a model artefact, run the burst scenario, report raw timings.

A runtime measures; it does not summarise. Timings are read around the runtime's own calls
with a monotonic clock, and every repetition keeps its raw timestamps so the session can
place phase markers on the sensor timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from suite.core.measure import BurstParams, BurstResult, Repetition
from suite.core.registry import Registry


#: Called by a runtime as it moves between phases: (phase name, "start" | "end", t_monotonic).
PhaseCallback = Callable[[str, str, float], None]
#: Called after each repetition with (index, total, the repetition): partial results survive.
RepCallback = Callable[[int, int, "Repetition"], None]


class Runtime(Protocol):
    name: str
    formats: tuple[str, ...]

    def version(self) -> str: ...

    def run_burst(
        self,
        artefact: Path,
        params: BurstParams,
        *,
        on_phase: PhaseCallback | None = None,
        on_rep: RepCallback | None = None,
    ) -> BurstResult: ...


RUNTIMES: Registry[type[Runtime]] = Registry("runtime")


def run_repetitions(
    params: BurstParams, one: Callable[[bool], Repetition], on_rep: RepCallback | None = None
) -> list[Repetition]:
    """Warmups then measured repetitions, each reported as soon as it ends."""
    total = params.warmup + params.reps
    reps: list[Repetition] = []
    for i in range(total):
        reps.append(one(i < params.warmup))
        if on_rep:
            on_rep(i, total, reps[-1])
    return reps


__all__ = ["RUNTIMES", "BurstParams", "BurstResult", "PhaseCallback", "RepCallback", "Repetition", "Runtime",
           "run_repetitions"]
