"""The `fit` scenario: which models of the reference ladder a device can run.

Walk the ladder upward (suite.catalog.cards.reference_cards(), by size), one run_device run
per rung, each record's `scenario` = {"name": "fit", ...}; the outcome of each rung
(`completed` / `oom` / `load_failed` / ...) and the largest model that ran.

**Beyond RAM** (`beyond_ram`, issue 17): the walk runs llama.cpp with its weights mapped from storage
(`mmap` on) and CPU weight repacking off (repacked weights are anonymous memory, which cannot page), so a
model larger than the phone's RAM pages its weights in as it decodes instead of being killed; it keeps going
past the first such model. Each rung says whether it ran `offloaded` (the record's `paging` block); the
device's storage read bandwidth is measured once first (the storage probe), the bound of an offloaded
decode. The walk stops at the first rung that does not complete (with its outcome: `oom`, `timeout` past
`rung_timeout_s`...), the first whose decode is slower than `floor_tps`, or the top of the ladder; the
summary says which (`stopped`).

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
from suite.models.estimate import SHOW_ABOVE_BYTES, estimate_build
from suite.scenarios.base import ScenarioResult
from suite.session.device import ScenarioHooks
from suite.session.gating import Gate, apply_gate
from suite.session.local import RunRequest
from suite.session.run import run_device
from suite.session.storage import device_storage_bandwidth

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
    #: the model file's bytes, the decode's speed, and whether it ran offloaded (None: unknown)
    model_bytes: int | None = None
    decode_tps: float | None = None
    offloaded: bool | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class FitSummary:
    device: str
    rungs: list[Rung] = field(default_factory=list)
    #: why the walk ended where it did (None: it ran the whole ladder)
    stopped: str | None = None
    beyond_ram: bool = False
    ram_bytes: int | None = None
    #: the storage probe's figures (beyond RAM)
    storage: dict | None = None

    @property
    def largest(self) -> str | None:
        """The largest model whose run completed (None: none did)."""
        ok = [r for r in self.rungs if r.outcome == Outcome.COMPLETED.value]
        return max(ok, key=lambda r: r.params).model_id if ok else None

    @property
    def largest_in_ram(self) -> str | None:
        """The largest model that completed and was seen not to offload (None: none was)."""
        ok = [r for r in self.rungs if r.outcome == Outcome.COMPLETED.value and r.offloaded is False]
        return max(ok, key=lambda r: r.params).model_id if ok else None

    def to_dict(self) -> dict:
        out = {"scenario": "fit", "device": self.device, "largest": self.largest,
               "rungs": [r.to_dict() for r in self.rungs], "stopped": self.stopped}
        if self.beyond_ram:
            out |= {"beyond_ram": True, "largest_in_ram": self.largest_in_ram, "ram_bytes": self.ram_bytes,
                    "storage": self.storage}
        return out

    def text(self) -> str:
        lines = [f"fit on {self.device}" + (" (beyond RAM: weights mapped from storage)" if self.beyond_ram else "")
                 + ":"]
        for r in self.rungs:
            rss = f", peak RSS {r.peak_rss_bytes / 2**20:.0f} MiB" if r.peak_rss_bytes else ""
            load = f", load {r.load_s:.2f} s" if r.load_s is not None else ""
            how = ""
            if r.outcome == Outcome.COMPLETED.value and r.offloaded:
                how = f" offloaded, at {r.decode_tps:.2f} tok/s" if r.decode_tps else " offloaded"
            elif r.outcome == Outcome.COMPLETED.value and r.decode_tps and self.beyond_ram:
                where = " in RAM," if r.offloaded is False else " (offloaded: unknown)"
                how = f"{where} at {r.decode_tps:.2f} tok/s"
            lines.append(f"  {r.model_id:16s} {r.params / 1e9:6.3f} B  {r.outcome}{how}{rss}{load}")
        lines.append(f"largest that runs: {self.largest or 'none'}"
                     + (f" (in RAM: {self.largest_in_ram or 'none seen'})" if self.beyond_ram else ""))
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        return "\n".join(lines)


def ladder(models: list[str] | None = None, *, beyond_ram: bool = False) -> list:
    """Reference cards by size (`beyond_ram`: the rungs past 13B too); `models` restricts (and may reorder
    nothing: size order kept)."""
    cards = reference_cards(beyond_ram=beyond_ram)
    if models is None:
        return cards
    by_id = {c.id: c for c in cards}
    chosen = [by_id.get(m) or get_model_card(m) for m in models]
    return sorted(chosen, key=lambda c: c.params())


def _read_rung(path: Path, rung: Rung) -> dict:
    """The rung's figures from its record (returned: the walk reads the device's RAM and push rate there)."""
    rec = json.loads((path / "run.json").read_text())
    rung.outcome = rec["outcome"]
    m = rec.get("metrics", {})
    rung.peak_rss_bytes = (m.get("peak_rss_bytes") or {}).get("value") or rec["sensors"].get("runtime_vm_hwm_bytes")
    rung.load_s = (m.get("load_s") or {}).get("value")
    rung.decode_tps = (m.get("decode_tps") or {}).get("value")
    rung.model_bytes = (rec.get("model") or {}).get("bytes")
    rung.offloaded = (rec.get("paging") or {}).get("offloaded")
    if rec.get("errors"):
        rung.message = rec["errors"][-1].get("message")
    return rec


def run_fit(ref, req_template: RunRequest, models: list[str] | None = None, *, status: Status | None = None,
            continue_after_fail: int = 0, gate: Gate | None = None, summary_path: Path | None = None,
            beyond_ram: bool = False, floor_tps: float | None = None, rung_timeout_s: float | None = None,
            storage: dict | None = None) -> FitSummary:
    """Walk the ladder upward, one run_device run per model; stop after the first rung that does not
    complete (or `continue_after_fail` more rungs), or (`floor_tps`) whose decode is slower than the floor.
    `beyond_ram`: the request is llama.cpp's with mmap on and repacking off (`beyond_ram_request`), each
    invocation limited to `rung_timeout_s`, and `storage` (the storage probe's figures) bounds offloaded
    rungs. The summary is also written as JSON to `summary_path` (default:
    `<results_dir>/fit-<serial>-<first run id>.json`)."""
    say = status or (lambda _m: None)
    cards = ladder(models, beyond_ram=beyond_ram)
    ids = [c.id for c in cards]
    serial = getattr(ref, "serial", None) or ref.transport().serial
    summary = FitSummary(device=serial, beyond_ram=beyond_ram, storage=storage)
    if beyond_ram:
        req_template = beyond_ram_request(req_template, rung_timeout_s)
    failures = 0
    push_rate = None  # the phone's measured push rate, from the rungs before: the push estimate of the next
    for i, card in enumerate(cards):
        rung = Rung(card.id, card.params(), outcome="not_run")
        summary.rungs.append(rung)
        scenario = {"name": "fit", "params": {**req_template.params.to_dict(), "rung": i, "ladder": ids}}
        if beyond_ram:
            scenario["params"] |= {"beyond_ram": True, "floor_tps": floor_tps, "rung_timeout_s": rung_timeout_s}
        req = dataclasses.replace(req_template, model_id=card.id)
        rec: dict = {}
        say(f"fit: {card.id} ({card.params() / 1e9:.3f} B)")
        if beyond_ram:  # the large rungs: what building and pushing them costs, said first
            est = estimate_build(card, fmt="gguf", quant=req.quant, seed=req.seed, out_root=req.models_dir,
                                 push_rate_bytes_per_s=push_rate)
            if est.artifact_bytes >= SHOW_ABOVE_BYTES or not est.fits:
                say(est.text())
            if not est.fits:
                rung.message = (f"not built: {_gib(est.needed_bytes)} needed, {_gib(est.free_bytes)} free in "
                                f"{est.out_dir}")
                summary.stopped = f"{card.id}: {rung.message}"
                break
        try:
            hooks = ScenarioHooks(scenario=scenario, conditions=apply_gate(ref, gate, status), storage=storage)
            path = run_device(ref, req, status=status, hooks=hooks)
            rec = _read_rung(path, rung)
        except EdgebenchError as exc:
            path = exc.context.get("run_dir")  # the session recorded the failed run there
            if path is not None and (Path(path) / "run.json").exists():
                rec = _read_rung(path, rung)
            else:  # no run made: provisioning (free space), gating, device errors
                rung.outcome = "not_run"
                rung.message = exc.message
        rung.run_dir = str(path) if path is not None else None
        if rec:
            push_rate = (rec.get("provisioning") or {}).get("throughput_bytes_per_s") or push_rate
            summary.ram_bytes = summary.ram_bytes or (rec.get("device") or {}).get("ram_bytes")
        say(f"fit: {card.id}: {rung.outcome}" + (" (offloaded)" if rung.offloaded else ""))
        if rung.outcome != Outcome.COMPLETED.value:
            failures += 1
            if failures > continue_after_fail:
                summary.stopped = (f"{card.id} did not complete ({rung.outcome}"
                                   + (f": {rung.message}" if rung.message else "") + ")")
                break
        elif floor_tps and (rung.decode_tps or 0.0) < floor_tps:
            summary.stopped = (f"{card.id} decoded at {rung.decode_tps or 0:.2f} tok/s, under the floor of "
                               f"{floor_tps:g} tok/s: larger models would be slower still")
            break
    say(f"fit: largest that runs: {summary.largest or 'none'}" + (f"; {summary.stopped}" if summary.stopped else ""))
    target = summary_path
    if target is None and summary.rungs:
        first = next((r.run_dir for r in summary.rungs if r.run_dir), None)
        name = f"fit-{serial.replace(':', '_')}-{Path(first).name if first else 'none'}.json"
        target = Path(req_template.results_dir) / name
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


#: beyond RAM: how long one llama-bench invocation of a rung may run unless the run says
RUNG_TIMEOUT_S = 15 * 60.0


def beyond_ram_request(req: RunRequest, rung_timeout_s: float | None) -> RunRequest:
    """The request a beyond-RAM rung runs: llama.cpp (llama-bench) with the weights mapped from storage
    (mmap on) and CPU weight repacking off, each invocation limited to the rung timeout."""
    if req.runtime not in ("llama.cpp", "llama-bench"):
        raise EdgebenchError(f"fit --beyond-ram runs llama.cpp (it maps GGUF weights from storage); not {req.runtime}",
                             hint="--runtime llama.cpp (or no --runtime)", exit_code=2)
    if req.params.mmap is False or req.params.repack is True:
        raise EdgebenchError("fit --beyond-ram maps the weights (mmap on) and turns repacking off: "
                             "--mmap 0 or --repack 1 contradict it", exit_code=2)
    return dataclasses.replace(req, runtime="llama.cpp", timeout_s=rung_timeout_s or RUNG_TIMEOUT_S,
                               params=dataclasses.replace(req.params, mmap=True, repack=False))


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def measure_storage(ref, status: Status | None) -> dict | None:
    """The device's storage read bandwidths (the storage probe), or None (said) when they cannot be measured:
    the offloaded rungs then have no bound, with that reason."""
    say = status or (lambda _m: None)
    say("fit: measuring the storage's read bandwidth (the bound of offloaded rungs)")
    try:
        return device_storage_bandwidth(ref, say)
    except EdgebenchError as exc:
        say(f"fit: no storage bandwidth ({exc.message}): offloaded rungs will have no bound")
        return None


class FitScenario:
    """The registry's entry (suite.scenarios): `run_fit` with its options."""

    name = "fit"
    needs_phone = True
    options = ("models", "beyond_ram", "floor_tps", "rung_timeout_s")
    single_run = False  # a ladder: a run that failed is one rung's answer, not the job's

    def run(self, ref, req: RunRequest, *, gate: Gate | None = None, status: Status | None = None, on_rep=None,
            push_progress=None, options: Mapping[str, Any] | None = None) -> ScenarioResult:
        """`options`: models, the ladder (None or empty: every reference card); beyond_ram, floor_tps,
        rung_timeout_s (the walk past RAM: the storage probe first). `on_rep` and `push_progress` are not
        passed on (one run per rung)."""
        opts = dict(options or {})
        models = list(opts.get("models") or []) or None
        beyond = bool(opts.get("beyond_ram"))
        storage = None
        if beyond:
            beyond_ram_request(req, opts.get("rung_timeout_s"))  # refuse a contradicting request before any work
            storage = measure_storage(ref, status)
        summary = run_fit(ref, req, models, status=status, gate=gate, beyond_ram=beyond,
                          floor_tps=opts.get("floor_tps") if beyond else None,
                          rung_timeout_s=opts.get("rung_timeout_s"), storage=storage)
        runs = [Path(r.run_dir) for r in summary.rungs if r.run_dir and Path(r.run_dir).is_dir()]
        return ScenarioResult(runs=runs, summary=summary.text(), detail=summary)
