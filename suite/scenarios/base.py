"""What every scenario is and gives back (suite.scenarios registers them by name).

A scenario is a class with:

- `name`, and `needs_phone`: True when it runs on a phone only (the CLI refuses `--device local`
  for it; a gate needs a phone too, whatever the scenario). A scenario that does not need a phone
  is, ungated, one plain run of the model (`suite.session.run.run`), which the CLI shows with its
  own progress display;
- `options`: the names of its own parameters (sustained: `duration_s`, `windows`,
  `window_tokens`; fit: `models`). The CLI and the lab pass it these, and only these;
- `single_run`: True when it makes one run, so that a failure whose run still has a final outcome
  (`oom`, ...) is the answer to a lab job, not a failure to retry (fit walks a ladder: False);
- `run(ref, req, *, gate, status, on_rep, push_progress, options) -> ScenarioResult`: the gate
  (suite.session.gating) before each measured run, then its run(s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from suite.session.gating import Gate
    from suite.session.local import RunRequest

Status = Callable[[str], None]


@dataclass
class ScenarioResult:
    """What a scenario made: its run folders, in order, and a text to show instead of each run's
    table when the scenario has one (fit's ladder); `detail` is the scenario's own object (FitSummary)."""

    runs: list[Path] = field(default_factory=list)
    summary: str | None = None
    detail: Any = None


class Scenario(Protocol):
    name: ClassVar[str]
    needs_phone: ClassVar[bool]
    options: ClassVar[tuple[str, ...]]
    single_run: ClassVar[bool]

    def run(self, ref, req: RunRequest, *, gate: Gate | None = None, status: Status | None = None, on_rep=None,
            push_progress=None, options: Mapping[str, Any] | None = None) -> ScenarioResult: ...
