"""The `burst` scenario: one measured run (prefill, decode, TTFT), gated when a gate is given.

The gate (suite.session.gating) runs first; its results become the record's `conditions`
(ScenarioHooks). Ungated, it is exactly `suite.session.run.run`, on this host or a phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from suite.scenarios.base import ScenarioResult, Status
from suite.session.device import ScenarioHooks
from suite.session.gating import Gate, apply_gate
from suite.session.local import RunRequest
from suite.session.run import run


class BurstScenario:
    name = "burst"
    needs_phone = False  # a gate needs one (the CLI checks that)
    options: tuple[str, ...] = ()
    single_run = True

    def run(self, ref, req: RunRequest, *, gate: Gate | None = None, status: Status | None = None, on_rep=None,
            push_progress=None, options: Mapping[str, Any] | None = None) -> ScenarioResult:
        conditions = apply_gate(ref, gate, status)
        path = run(ref, req, status=status, on_rep=on_rep, push_progress=push_progress,
                   hooks=ScenarioHooks(conditions=conditions))
        return ScenarioResult(runs=[path])
