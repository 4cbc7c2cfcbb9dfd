"""The `fit` scenario: which models of the reference ladder a device can run.

Walk the ladder upward (suite.catalog.cards.reference_cards(), by size), one run_device run
per rung, each record's `scenario` = {"name": "fit", ...}; the outcome of each rung
(`completed` / `oom` / `load_failed` / ...) and the largest model that ran.

Gating (suite.session.gating) runs before each measured run when `gate` is given.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.catalog.cards import get_model_card, reference_cards
from suite.core.errors import EdgebenchError
from suite.core.schema import Outcome
from suite.scenarios.base import ScenarioResult
from suite.session.device import ScenarioHooks
from suite.session.gating import Gate, apply_gate
from suite.session.local import RunRequest
from suite.session.run import run_device

Status = Callable[[str], None]


@dataclass
class Rung:
    model_id: str
    params: int
    outcome: str
    run_dir: str | None = None
    peak_rss_bytes: float | None = None
    load_s: float | None = None
    message: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class FitSummary:
    device: str
    rungs: list[Rung] = field(default_factory=list)

    @property
    def largest(self) -> str | None:
        """The largest model whose run completed (None: none did)."""
        ok = [r for r in self.rungs if r.outcome == Outcome.COMPLETED.value]
        return max(ok, key=lambda r: r.params).model_id if ok else None

    def to_dict(self) -> dict:
        return {"scenario": "fit", "device": self.device, "largest": self.largest,
                "rungs": [r.to_dict() for r in self.rungs]}

    def text(self) -> str:
        lines = [f"fit on {self.device}:"]
        for r in self.rungs:
            rss = f", peak RSS {r.peak_rss_bytes / 2**20:.0f} MiB" if r.peak_rss_bytes else ""
            load = f", load {r.load_s:.2f} s" if r.load_s is not None else ""
            lines.append(f"  {r.model_id:16s} {r.params / 1e9:6.3f} B  {r.outcome}{rss}{load}")
        lines.append(f"largest that runs: {self.largest or 'none'}")
        return "\n".join(lines)


def ladder(models: list[str] | None = None) -> list:
    """Reference cards by size; `models` restricts (and may reorder nothing: size order kept)."""
    cards = reference_cards()
    if models is None:
        return cards
    by_id = {c.id: c for c in cards}
    chosen = [by_id.get(m) or get_model_card(m) for m in models]
    return sorted(chosen, key=lambda c: c.params())


def _read_rung(path: Path, rung: Rung) -> None:
    rec = json.loads((path / "run.json").read_text())
    rung.outcome = rec["outcome"]
    m = rec.get("metrics", {})
    rung.peak_rss_bytes = (m.get("peak_rss_bytes") or {}).get("value") or rec["sensors"].get("runtime_vm_hwm_bytes")
    rung.load_s = (m.get("load_s") or {}).get("value")
    if rec.get("errors"):
        rung.message = rec["errors"][-1].get("message")


def run_fit(ref, req_template: RunRequest, models: list[str] | None = None, *, status: Status | None = None,
            continue_after_fail: int = 0, gate: Gate | None = None, summary_path: Path | None = None) -> FitSummary:
    """Walk the ladder upward, one run_device run per model; stop after the first rung that does not
    complete (or `continue_after_fail` more rungs). The summary is also written as JSON to
    `summary_path` (default: `<results_dir>/fit-<serial>-<first run id>.json`)."""
    say = status or (lambda _m: None)
    cards = ladder(models)
    ids = [c.id for c in cards]
    serial = getattr(ref, "serial", None) or ref.transport().serial
    summary = FitSummary(device=serial)
    failures = 0
    for i, card in enumerate(cards):
        rung = Rung(card.id, card.params(), outcome="not_run")
        summary.rungs.append(rung)
        scenario = {"name": "fit", "params": {**req_template.params.to_dict(), "rung": i, "ladder": ids}}
        req = dataclasses.replace(req_template, model_id=card.id)
        say(f"fit: {card.id} ({card.params() / 1e9:.3f} B)")
        try:
            hooks = ScenarioHooks(scenario=scenario, conditions=apply_gate(ref, gate, status))
            path = run_device(ref, req, status=status, hooks=hooks)
            _read_rung(path, rung)
        except EdgebenchError as exc:
            path = exc.context.get("run_dir")  # the session recorded the failed run there
            if path is not None and (Path(path) / "run.json").exists():
                _read_rung(path, rung)
            else:  # no run made: provisioning (free space), gating, device errors
                rung.outcome = "not_run"
                rung.message = exc.message
        rung.run_dir = str(path) if path is not None else None
        say(f"fit: {card.id}: {rung.outcome}")
        if rung.outcome != Outcome.COMPLETED.value:
            failures += 1
            if failures > continue_after_fail:
                break
    say(f"fit: largest that runs: {summary.largest or 'none'}")
    target = summary_path
    if target is None and summary.rungs:
        first = next((r.run_dir for r in summary.rungs if r.run_dir), None)
        name = f"fit-{serial.replace(':', '_')}-{Path(first).name if first else 'none'}.json"
        target = Path(req_template.results_dir) / name
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


class FitScenario:
    """The registry's entry (suite.scenarios): `run_fit` with its options."""

    name = "fit"
    needs_phone = True
    options = ("models",)
    single_run = False  # a ladder: a run that failed is one rung's answer, not the job's

    def run(self, ref, req: RunRequest, *, gate: Gate | None = None, status: Status | None = None, on_rep=None,
            push_progress=None, options: Mapping[str, Any] | None = None) -> ScenarioResult:
        """`options`: models, the ladder (None or empty: every reference card). `on_rep` and
        `push_progress` are not passed on (one run per rung)."""
        models = list((options or {}).get("models") or []) or None
        summary = run_fit(ref, req, models, status=status, gate=gate)
        runs = [Path(r.run_dir) for r in summary.rungs if r.run_dir and Path(r.run_dir).is_dir()]
        return ScenarioResult(runs=runs, summary=summary.text(), detail=summary)
