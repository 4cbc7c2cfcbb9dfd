"""The `sustained` scenario (issue 6): how a device holds its throughput under continuous decode.

ONE runner invocation decodes continuously: every repetition is one generation of
`window_tokens` tokens (a fresh generation from a short prompt, so the KV cache does not grow);
consecutive generations are grouped into windows of at least `min_window_s` seconds on the device
clock (MIN_WINDOW_S = 2 s: the number of tokens per window adapts to the model's speed; an 80 ms
window of a tiny model measures the scheduler, not the device). The throughput of each window
(decoded tokens after each generation's first / their decode time) is stored as the
`decode_tps_window` channel, stamped with the window's end on the device clock (the clock of every
other sample). The runner gets a large repetition cap and is stopped after the window that
completes the count (`windows`) or ends past `duration_s` (that stop is the scenario's, not a
failure); generations after the last complete window are kept in the samples but not in a window.
Metrics: `stability_pct`, `time_to_throttle_s` (seconds from the start of the sustained decode to
the end of the first of PERSIST_WINDOWS consecutive windows under 90% of the initial throughput;
`unavailable: did not throttle` else),
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
#: the shortest window (device-clock seconds from its first generation's start to its last one's end)
MIN_WINDOW_S = 2.0
#: repetition cap of a sustained run (it is stopped by its window count or duration long before)
DURATION_REPS_CAP = 100_000


@dataclasses.dataclass
class Window:
    """Consecutive measured generations: device-clock span, decoded tokens (after each
    generation's first) and their decode time."""

    t_start: float
    t_end: float
    tokens: int = 0
    decode_s: float = 0.0
    generations: int = 0

    @property
    def tps(self) -> float:
        return self.tokens / self.decode_s


class WindowGrouper:
    """Groups measured repetitions, as they end, into windows of at least `min_s` seconds.
    `add` returns the window a repetition completes, else None; `pending` is the open window."""

    def __init__(self, min_s: float) -> None:
        self.min_s = float(min_s)
        self.pending: Window | None = None

    def add(self, rep) -> Window | None:
        lat = rep.decode_latencies_s
        if rep.warmup or not lat or sum(lat) <= 0:
            return None
        w = self.pending or Window(rep.t_start, rep.t_end)
        w.t_end, w.tokens, w.decode_s, w.generations = (rep.t_end, w.tokens + len(lat), w.decode_s + sum(lat),
                                                        w.generations + 1)
        if w.t_end - w.t_start >= self.min_s:
            self.pending = None
            return w
        self.pending = w
        return None


def windows_of(reps, min_s: float = 0.0) -> tuple[list[Window], Window | None]:
    """The complete windows of the measured repetitions, and the incomplete tail (or None)."""
    g = WindowGrouper(min_s)
    done = [w for w in (g.add(r) for r in reps) if w is not None]
    return done, g.pending


def window_tps(reps, t0: float, min_s: float = 0.0) -> list[tuple[float, float]]:
    """[(window end, s since t0 on the device clock), decode tok/s] of the complete windows of at
    least `min_s` seconds (0: every measured repetition is a window)."""
    return [(w.t_end - t0, w.tps) for w in windows_of(reps, min_s)[0]]


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
        grouped, tail = windows_of(run.reps, params["min_window_s"])
        windows = [(w.t_end - t0, w.tps) for w in grouped]
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
            un["time_to_throttle_s"] = (f"did not throttle: never {thermal.PERSIST_WINDOWS} consecutive windows under "
                                        "90% of the initial throughput" if len(rel) > 1 else "fewer than two windows")
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
            "window_generations": [w.generations for w in grouped],
            "window_tokens": [w.tokens for w in grouped],
            # generations after the last complete window (shorter than min_window_s): kept out of windows
            "tail_generations": tail.generations if tail else 0,
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


class _EnoughWindows(StopRun):
    """Raised from the rep callback when the window count or the duration is reached: the session
    hangs up the runner and stores the run as completed; the scenario's finish notes
    `scenario.stopped` when it was the duration."""


def run_sustained(ref, req: RunRequest, *, duration_s: float | None = None, windows: int | None = None,
                  window_tokens: int = DEFAULT_WINDOW_TOKENS, min_window_s: float = MIN_WINDOW_S,
                  status: Status | None = None, on_rep=None, gate: Gate | None = None, push_progress=None) -> Path:
    """Decode continuously on the device; one run record (scenario `sustained`). Returns its folder.

    `windows`: the number of windows; `duration_s`: stop after the first window ending past it
    (then `windows`, if given, is a cap). Neither: DEFAULT_WINDOWS windows. A window is as many
    consecutive generations of `window_tokens` as span `min_window_s` seconds (0: one each).
    `req.params` gives the prompt length, threads, warmup and seed; gen_tokens/reps are the scenario's.
    """
    if windows is not None and windows < 1:
        raise EdgebenchError("--windows must be at least 1", exit_code=2)
    if duration_s is not None and duration_s <= 0:
        raise EdgebenchError("--duration must be positive", exit_code=2)
    if window_tokens < 2:
        raise EdgebenchError("a window needs at least 2 tokens (decode excludes the first)", exit_code=2)
    if not min_window_s >= 0:
        raise EdgebenchError("--min-window cannot be negative", exit_code=2)
    target = windows if windows is not None else (None if duration_s else DEFAULT_WINDOWS)
    # one generation per window and a known count: the runner's own repetition count ends it;
    # otherwise the window count or the duration stops it (rep_seen)
    n = target if (target is not None and min_window_s == 0 and not duration_s) else DURATION_REPS_CAP
    params = dataclasses.replace(req.params, gen_tokens=window_tokens, reps=n)
    req = dataclasses.replace(req, params=params)
    conditions = apply_gate(ref, gate, status)
    scen_params = {**params.to_dict(), "duration_s": duration_s, "windows": windows,
                   "window_tokens": window_tokens, "min_window_s": min_window_s}
    stopped: dict = {}
    first_start: list[float] = []
    grouper = WindowGrouper(min_window_s)
    done = [0]

    def rep_seen(i: int, total: int, rep) -> None:
        if on_rep:
            on_rep(i, total, rep)
        if rep.warmup:
            return
        if not first_start:
            first_start.append(rep.t_start)
        w = grouper.add(rep)
        if w is None or stopped:
            return
        done[0] += 1
        if duration_s is not None and w.t_end - first_start[0] >= duration_s:
            stopped["by_duration"] = True
            raise _EnoughWindows()
        if target is not None and done[0] >= target and n != target:
            stopped["by_windows"] = True
            raise _EnoughWindows()

    hooks = ScenarioHooks(scenario={"name": "sustained", "params": scen_params}, conditions=conditions,
                          finish=_sustained_finish(scen_params, stopped), windows=True)
    return run_device(ref, req, status=status, on_rep=rep_seen, push_progress=push_progress, hooks=hooks)


class SustainedScenario:
    """The registry's entry (suite.scenarios): `run_sustained` with its options."""

    name = "sustained"
    needs_phone = True
    options = ("duration_s", "windows", "window_tokens", "min_window_s")
    single_run = True

    def run(self, ref, req: RunRequest, *, gate: Gate | None = None, status: Status | None = None, on_rep=None,
            push_progress=None, options: Mapping[str, Any] | None = None) -> ScenarioResult:
        """`options`: duration_s and/or windows (one is needed), window_tokens, min_window_s. `on_rep` and
        `push_progress` are not passed on: a window is a repetition, and a run bound by duration
        has a cap of DURATION_REPS_CAP of them, not a total to show."""
        opts = options or {}
        duration_s, windows = opts.get("duration_s"), opts.get("windows")
        if duration_s is None and windows is None:
            raise EdgebenchError("the sustained scenario needs --duration or --windows", exit_code=2)
        path = run_sustained(ref, req, duration_s=duration_s, windows=windows,
                             window_tokens=opts.get("window_tokens") or DEFAULT_WINDOW_TOKENS,
                             min_window_s=MIN_WINDOW_S if opts.get("min_window_s") is None else opts["min_window_s"],
                             status=status, gate=gate)
        return ScenarioResult(runs=[path])
