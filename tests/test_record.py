"""The one record builder: a record is built once from frozen parts (suite.core.record)."""

from __future__ import annotations

import dataclasses

import pytest

from suite.core.record import Failure, Part, RunHead, build_record, superseding
from suite.core.schema import RUN_FIELDS, Origin, Outcome


def head(**kw) -> RunHead:
    return RunHead(origin=Origin.MEASURED, device={"serial": "x"}, model={"id": "tiny"},
                   runtime={"name": "rt", "version": None}, scenario={"name": "burst", "params": {"reps": 3}},
                   conditions={"charging": False}, started_at="2026-12-02T07:00:00.000Z", **kw)


def test_every_field_in_order_and_completed_without_a_failure():
    rec = build_record(head(), ended_at="2026-12-02T07:01:00.000Z")
    assert list(rec)[:len(RUN_FIELDS)] == list(RUN_FIELDS)
    assert rec["outcome"] == "completed" and rec["errors"] == []
    assert rec["ended_at"] == "2026-12-02T07:01:00.000Z" and "lab" not in rec


def test_parts_merge_in_order_and_a_sensor_reason_stays_the_reason():
    sensors = Part(sensors={"available": []}, gaps={"energy_j/decode": "charging: USB"},
                   unavailable={"peak_rss_bytes": "no RSS"})
    energy = Part(gaps={"energy_j/decode": "fewer than two power samples"},
                  metrics={"temp_c/max": {"value": 40.0}})
    roof = Part(unavailable={"roofline_fraction/decode": "no probe"}, roofline={"decode_bound_tps": 9.0},
                errors=({"type": "RooflineError", "message": "m"},))
    runtime = Part(runtime={"version": "1.2"}, metrics={"decode_tps": {"value": 5.0}},
                   scenario={"stopped": {"by": "duration"}}, blocks={"thermal": {"throttled": False}})
    rec = build_record(head(lab={"job": "a"}), sensors, energy, roof, runtime)
    assert rec["unavailable"] == {"energy_j/decode": "charging: USB", "peak_rss_bytes": "no RSS",
                                  "roofline_fraction/decode": "no probe"}
    assert rec["runtime"] == {"name": "rt", "version": "1.2"}
    assert rec["scenario"] == {"name": "burst", "params": {"reps": 3}, "stopped": {"by": "duration"}}
    assert rec["roofline"] == {"decode_bound_tps": 9.0} and rec["thermal"] == {"throttled": False}
    assert rec["errors"] == [{"type": "RooflineError", "message": "m"}] and rec["outcome"] == "completed"
    assert rec["lab"] == {"job": "a"} and list(rec)[-1] == "lab"


def test_a_metric_that_exists_is_never_also_unavailable():
    rec = build_record(head(), Part(unavailable={"peak_rss_bytes": "no RSS"}),
                       Part(metrics={"peak_rss_bytes": {"value": 1.0}}))
    assert "peak_rss_bytes" in rec["metrics"] and rec["unavailable"] == {}


def test_the_last_failure_is_the_outcome_and_carries_the_completed_reps():
    rec = build_record(head(), Part(errors=({"type": "PowerMeterError", "message": "bad log"},)),
                       failures=[Failure(Outcome.CRASHED, "RuntimeFailure", "boom"),
                                 Failure(Outcome.INTERRUPTED, "KeyboardInterrupt", "stop", "tb")],
                       completed_reps=2)
    assert rec["outcome"] == "interrupted"
    assert rec["errors"] == [{"type": "RuntimeFailure", "message": "boom"},
                             {"type": "KeyboardInterrupt", "message": "stop", "traceback": "tb", "completed_reps": 2},
                             {"type": "PowerMeterError", "message": "bad log"}]


def test_parts_are_frozen_and_the_record_owns_its_data():
    nested = {"a": [1, 2]}
    part = Part(blocks={"x": nested})
    with pytest.raises(dataclasses.FrozenInstanceError):
        part.metrics = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        part.blocks["y"] = 1  # type: ignore[index]
    rec = build_record(head(), part)
    rec["x"]["a"].append(3)
    assert nested == {"a": [1, 2]} and part.blocks["x"] == {"a": [1, 2]}
    h = head()
    with pytest.raises(TypeError):
        h.conditions["charging"] = True  # type: ignore[index]


def test_superseding_keeps_the_measurement_under_a_new_id():
    old = build_record(head(), Part(metrics={"decode_tps": {"value": 5.0}}))
    new = superseding(old, power_meter={"file": "m.csv"})
    assert new["supersedes"] == old["run_id"] and new["run_id"] != old["run_id"]
    assert new["metrics"] == old["metrics"] and new["power_meter"] == {"file": "m.csv"} and "power_meter" not in old
