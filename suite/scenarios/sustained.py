"""The `sustained` scenario (issue 6): how a device holds its throughput under continuous decode.

ONE runner invocation decodes continuously: every repetition is one window of
`window_tokens` generated tokens (a fresh generation from a short prompt, so the KV cache
does not grow from window to window); the throughput of each window (tokens after the first
/ their time, as `decode_tps`) is stored as the `decode_tps_window` channel, stamped with
the window's end on the device clock (the clock of every other sample). With `duration_s`
the runner gets a large repetition cap and is stopped after the first window that ends past
the duration (that stop is the scenario's, not a failure). Metrics: `stability_pct`,
`time_to_throttle_s` (seconds from the start of the first window to the end of the first
window under 90% of the first window's throughput; `unavailable: did not throttle` else),
`temp_c/max`, `thermal_status/max`, the energy figures of a burst run; the record's
`thermal` block carries `throttled` with its evidence (suite.analysis.throttling.detect_throttling),
the lowest frequency caps and the energy over the whole sustained decode.

Gating (suite.session.gating) runs before the measured run when `gate` is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from suite.analysis import throttling as thermal
from suite.core.errors import EdgebenchError
from suite.core.record import Part
from suite.core.schema import CH_POWER_W
from suite.core.stats import metric
from suite.scenarios.base import ScenarioResult
from suite.session.device import ScenarioHooks
from suite.session.gating import Gate, apply_gate
from suite.session.local import Finishing, RunRequest, StopRun
from suite.session.run import run_device

Status = Callable[[str], None]

DEFAULT_WINDOWS = 20
DEFAULT_WINDOW_TOKENS = 64
#: repetition cap of a duration-bound sustained run (it is stopped by time long before)
DURATION_REPS_CAP = 100_000


def window_tps(reps, t0: float) -> list[tuple[float, float]]:
    """[(window end, s since t0 on the device clock), decode tok/s] of the measured repetitions."""
    out = []
    for r in reps:
        if r.warmup:
            continue
        lat = r.decode_latencies_s
        if lat and sum(lat) > 0:
            out.append((r.t_end - t0, len(lat) / sum(lat)))
    return out


def _energy_j(rows, a: float, b: float) -> tuple[float | None, int]:
    """Trapezoid of power_w over [a, b] (s since t0), samples inside only; (J, n samples)."""
    pts = sorted((t, v) for t, ch, v in rows if ch == CH_POWER_W and a <= t <= b)
    if len(pts) < 2:
        return None, len(pts)
    e = sum((t2 - t1) * (v1 + v2) / 2 for (t1, v1), (t2, v2) in zip(pts, pts[1:], strict=False))
    return e, len(pts)


def _sustained_finish(params: dict, stopped: dict) -> Callable[[Finishing], tuple[Part, list]]:
    def finish(run: Finishing) -> tuple[Part, list]:
        rows, t0 = run.rows, run.t0
        windows = window_tps(run.reps, t0)
        measured = [r for r in run.reps if not r.warmup]
        start = (measured[0].t_start - t0) if measured else None
        # relative to the start of the sustained decode for the summary (time to throttle)
        rel = [(t - start, v) for t, v in windows] if start is not None else []
        summary = thermal.sustained_summary(rel, rows)
        ev = thermal.detect_throttling(rows, window_tps=windows)
        m, un = {}, {}
        if summary["stability_pct"] is not None:
            m["stability_pct"] = metric("stability_pct", summary["stability_pct"])
        else:
            un["stability_pct"] = "no completed window"
        if summary["time_to_throttle_s"] is not None:
            m["time_to_throttle_s"] = metric("time_to_throttle_s", summary["time_to_throttle_s"])
        else:
            un["time_to_throttle_s"] = ("did not throttle: no window under 90% of the initial throughput" if len(rel) > 1
                                        else "fewer than two windows")
        if summary.get("max_thermal_status") is not None:
            m["thermal_status/max"] = metric("thermal_status/max", summary["max_thermal_status"])
        else:
            un["thermal_status/max"] = "no thermal status sampled"
        energy = n_power = None
        if measured:
            energy, n_power = _energy_j(rows, start, measured[-1].t_end - t0)
        block = {
            **ev.to_dict(),
            "window_tps": [[round(t, 4), round(v, 4)] for t, v in windows],
            "decode_start_t_s": start,
            "summary": summary,
            "min_freq_cap_khz": summary.get("min_freq_cap_khz"),
            "energy_j": energy,
            "energy_power_samples": n_power,
            "energy_unavailable": (None if energy is not None else
                                   run.sensors.get("unavailable", {}).get(CH_POWER_W)
                                   or "fewer than two power samples in the sustained decode"),
        }
        scenario: dict = {"params": {**params, "windows_done": len(windows)}}
        if stopped.get("by_duration") and measured:
            # the scenario stopped the runner at the duration: not a failure
            scenario["stopped"] = {"by": "duration", "after_s": params["duration_s"]}
        part = Part(metrics=m, unavailable=un, scenario=scenario, blocks={"thermal": block})
        return part, thermal.window_rows(windows)

    return finish


class _DurationReached(StopRun):
    """Raised from the rep callback when the duration is reached: the session hangs up the runner
    and stores the run as completed; the scenario's finish notes `scenario.stopped`."""


def run_sustained(ref, req: RunRequest, *, duration_s: float | None = None, windows: int | None = None,
                  window_tokens: int = DEFAULT_WINDOW_TOKENS, status: Status | None = None, on_rep=None,
                  gate: Gate | None = None, push_progress=None) -> Path:
    """Decode continuously on the device; one run record (scenario `sustained`). Returns its folder.

    `windows`: the number of windows; `duration_s`: stop after the first window ending past it
    (then `windows`, if given, is a cap). Neither: DEFAULT_WINDOWS windows. `req.params` gives
    the prompt length, threads, warmup and seed; gen_tokens/reps are the scenario's.
    """
    if windows is not None and windows < 1:
        raise EdgebenchError("--windows must be at least 1", exit_code=2)
    if duration_s is not None and duration_s <= 0:
        raise EdgebenchError("--duration must be positive", exit_code=2)
    if window_tokens < 2:
        raise EdgebenchError("a window needs at least 2 tokens (decode excludes the first)", exit_code=2)
    n = windows if windows is not None else (DURATION_REPS_CAP if duration_s else DEFAULT_WINDOWS)
    params = dataclasses.replace(req.params, gen_tokens=window_tokens, reps=n)
    req = dataclasses.replace(req, params=params)
    conditions = apply_gate(ref, gate, status)
    scen_params = {**params.to_dict(), "duration_s": duration_s, "windows": windows,
                   "window_tokens": window_tokens}
    stopped: dict = {}
    first_start: list[float] = []

    def rep_seen(i: int, total: int, rep) -> None:
        if on_rep:
            on_rep(i, total, rep)
        if duration_s is None or rep.warmup:
            return
        if not first_start:
            first_start.append(rep.t_start)
        if rep.t_end - first_start[0] >= duration_s and not stopped:
            stopped["by_duration"] = True
            raise _DurationReached()

    hooks = ScenarioHooks(scenario={"name": "sustained", "params": scen_params}, conditions=conditions,
                          finish=_sustained_finish(scen_params, stopped), windows=True)
    return run_device(ref, req, status=status, on_rep=rep_seen, push_progress=push_progress, hooks=hooks)


class SustainedScenario:
    """The registry's entry (suite.scenarios): `run_sustained` with its options."""

    name = "sustained"
    needs_phone = True
    options = ("duration_s", "windows", "window_tokens")
    single_run = True

    def run(self, ref, req: RunRequest, *, gate: Gate | None = None, status: Status | None = None, on_rep=None,
            push_progress=None, options: Mapping[str, Any] | None = None) -> ScenarioResult:
        """`options`: duration_s and/or windows (one is needed), window_tokens. `on_rep` and
        `push_progress` are not passed on: a window is a repetition, and a run bound by duration
        has a cap of DURATION_REPS_CAP of them, not a total to show."""
        opts = options or {}
        duration_s, windows = opts.get("duration_s"), opts.get("windows")
        if duration_s is None and windows is None:
            raise EdgebenchError("the sustained scenario needs --duration or --windows", exit_code=2)
        path = run_sustained(ref, req, duration_s=duration_s, windows=windows,
                             window_tokens=opts.get("window_tokens") or DEFAULT_WINDOW_TOKENS, status=status,
                             gate=gate)
        return ScenarioResult(runs=[path])
