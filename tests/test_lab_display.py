"""The lab controller's live table, fed the events a worker sends (no phone needed)."""

import io
import multiprocessing as mp
import time

from rich.console import Console

from suite.lab.controller import DeviceRow, _follow


def _feed(events):
    q = mp.get_context("spawn").Queue()
    for ev in events:
        q.put(ev)
    deadline = time.monotonic() + 5
    while q.empty() and time.monotonic() < deadline:  # the feeder thread flushes asynchronously
        time.sleep(0.01)
    return q


def test_live_table_shows_state_job_phase_and_temperature_with_device_strings_escaped():
    serial = "[red]evil[/red]"
    q = _feed([
        {"serial": serial, "event": "plan", "total": 2, "already": 0},
        {"serial": serial, "event": "job", "label": "tiny ort-genai burst", "index": 0, "total": 2},
        {"serial": serial, "event": "status", "message": "cooling: 41.2 °C -> 35 °C"},
        {"serial": serial, "event": "summary", "counts": {"done": 2}, "state": "finished"},
    ])
    out = io.StringIO()
    rows = {serial: DeviceRow(serial, total=2)}
    _follow(q, {}, rows, Console(file=out, force_terminal=True, width=160, color_system=None), True)
    r = rows[serial]
    assert (r.state, r.phase, r.temp, r.counts, r.finished) == ("finished", "cooling", "41.2 °C", {"done": 2}, True)
    text = out.getvalue()
    assert "[red]evil[/red]" in text and "41.2 °C" in text and "tiny ort-genai" in text


def test_without_a_terminal_events_are_lines():
    q = _feed([{"serial": "S1", "event": "job", "label": "tiny ort-genai burst", "index": 0, "total": 1},
               {"serial": "S1", "event": "job_end", "status": "failed", "message": "the runner exited"}])
    out = io.StringIO()
    rows = {"S1": DeviceRow("S1", total=1)}
    _follow(q, {}, rows, Console(file=out, width=200), False)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    assert lines == ["S1: job 1/1: tiny ort-genai burst", "S1: tiny ort-genai burst: failed: the runner exited"]
