"""Metrics from raw timings and samples, with expected values derived by hand."""

import pandas as pd
import pytest

from suite.analysis.metrics import (
    burst_metrics,
    energy_j,
    energy_metrics,
    integrate,
    intervals_from_samples,
    phase_intervals,
    phase_rows,
)
from suite.runtimes.base import BurstParams, Repetition


def rep(t0, prefill, first, steps, warm=False):
    times, t = [], t0 + prefill + first
    for s in steps:
        t += s
        times.append(t)
    return Repetition(warmup=warm, t_start=t0, t_prefill_end=t0 + prefill,
                      t_first_token=t0 + prefill + first, token_times=times)


def test_burst_metrics_by_hand():
    p = BurstParams(prompt_tokens=100, gen_tokens=5, reps=2, warmup=1)
    reps = [
        rep(0.0, 9.0, 0.0, [9, 9, 9, 9], warm=True),  # discarded
        rep(10.0, 0.5, 0.01, [0.1, 0.1, 0.1, 0.1]),  # prefill 100/0.5 = 200 tok/s; decode 4/0.4 = 10
        rep(20.0, 0.25, 0.01, [0.2, 0.2, 0.2, 0.2]),  # prefill 400 tok/s; decode 4/0.8 = 5
    ]
    m = burst_metrics(reps, p, load_s=1.5)
    assert m["prefill_tps"]["samples"] == pytest.approx([200.0, 400.0])
    assert m["prefill_tps"]["median"] == pytest.approx(300.0)
    assert m["decode_tps"]["samples"] == pytest.approx([10.0, 5.0])
    assert m["ttft_s"]["samples"] == pytest.approx([0.51, 0.26])
    # pooled latencies: four 0.1 and four 0.2 -> p50 = 0.15 (between 4th and 5th), p90 = 0.2
    assert m["decode_latency_s/p50"]["value"] == pytest.approx(0.15)
    assert m["decode_latency_s/p90"]["value"] == pytest.approx(0.2)
    assert m["decode_latency_s/p50"]["n"] == 8
    assert m["load_s"]["value"] == 1.5


def test_no_measured_reps_gives_only_load():
    assert burst_metrics([], BurstParams(), load_s=2.0) == {"load_s": {"unit": "s", "higher_is_better": False, "value": 2.0}}


def test_phase_rows_roundtrip():
    reps = [rep(10.0, 0.5, 0.1, [0.2, 0.2], warm=True), rep(11.0, 0.5, 0.1, [0.2, 0.2])]
    rows = phase_rows(phase_intervals(reps), t0=10.0)
    df = pd.DataFrame(rows, columns=["t_s", "channel", "value"])
    assert intervals_from_samples(df, "warmup") == [(0.0, pytest.approx(1.0))]
    assert intervals_from_samples(df, "prefill") == [(1.0, pytest.approx(1.6))]
    assert intervals_from_samples(df, "decode") == [(pytest.approx(1.6), pytest.approx(2.0))]


def test_integrate_linear_power_exact():
    # p(t) = t W sampled at 0..10 s; energy over [1, 3] = (3^2 - 1^2) / 2 = 4 J.
    t = list(range(11))
    assert integrate(t, t, 1.0, 3.0) == pytest.approx(4.0)
    # edges between samples are interpolated: [0.5, 2.5] = (6.25 - 0.25) / 2 = 3 J
    assert integrate(t, t, 0.5, 2.5) == pytest.approx(3.0)


def test_integrate_refuses_to_extrapolate():
    assert integrate([1, 2, 3], [1, 1, 1], 0.0, 2.0) is None
    assert integrate([1, 2, 3], [1, 1, 1], 2.0, 4.0) is None
    assert integrate([1], [1], 1.0, 1.0) is None


def test_energy_metrics_constant_power():
    # 2 W constant from 0 to 10 s (synthetic trace, labelled as such here).
    # prefill [1, 3] -> 4 J over 100 tokens = 0.04 J/tok; decode [3, 8] -> 10 J over 4 tokens.
    power = [(t / 10, "power_w", 2.0) for t in range(0, 101)]
    marks = [(1.0, "phase/prefill", 1.0), (3.0, "phase/prefill", 0.0),
             (3.0, "phase/decode", 1.0), (8.0, "phase/decode", 0.0)]
    df = pd.DataFrame(power + marks, columns=["t_s", "channel", "value"])
    p = BurstParams(prompt_tokens=100, gen_tokens=5, reps=1)
    m, missing = energy_metrics(df, p, n_reps=1)
    assert m["energy_j/prefill"]["value"] == pytest.approx(4.0)
    assert m["energy_j/decode"]["value"] == pytest.approx(10.0)
    assert m["j_per_token/prefill"]["value"] == pytest.approx(0.04)
    assert m["j_per_token/decode"]["value"] == pytest.approx(2.5)
    assert m["tokens_per_j/decode"]["value"] == pytest.approx(0.4)
    assert m["power_w/avg"]["value"] == pytest.approx(2.0)
    assert missing == {}


def test_no_power_is_unavailable_never_zero():
    df = pd.DataFrame([(1.0, "phase/prefill", 1.0), (2.0, "phase/prefill", 0.0)],
                      columns=["t_s", "channel", "value"])
    m, missing = energy_metrics(df, BurstParams(), n_reps=1)
    assert m == {}
    assert missing["energy_j/decode"] == "no power samples"
    assert energy_j(df, [(1.0, 2.0)]) is None
