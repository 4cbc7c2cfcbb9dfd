"""Statistics against values derived by hand."""

import math

import pytest

from suite.core.stats import metric, percentile, summarize


def test_summarize_five_samples_by_hand():
    # samples 10, 12, 11, 13, 14: sorted 10 11 12 13 14 -> median 12, mean 60/5 = 12.
    # deviations -2 0 -1 1 2 -> squares 4 0 1 1 4 = 10 -> sample variance 10/4 = 2.5,
    # stddev sqrt(2.5) = 1.5811. t(0.975, df=4) = 2.7764 (table value) ->
    # half width 2.7764 * 1.5811 / sqrt(5) = 1.9632. CV = 1.5811 / 12 = 0.1318 > 5%: unstable.
    s = summarize([10, 12, 11, 13, 14])
    assert s["median"] == 12 and s["value"] == 12
    assert s["mean"] == 12
    assert s["stddev"] == pytest.approx(math.sqrt(2.5))
    assert s["ci95"][0] == pytest.approx(12 - 1.9632, abs=1e-3)
    assert s["ci95"][1] == pytest.approx(12 + 1.9632, abs=1e-3)
    assert s["n"] == 5
    assert s["cv"] == pytest.approx(0.13176, abs=1e-4)
    assert s["unstable"] is True
    assert s["samples"] == [10.0, 12.0, 11.0, 13.0, 14.0]


def test_stable_when_cv_under_five_percent():
    # 100, 101, 99: mean 100, stddev 1 -> CV 1% -> stable.
    s = summarize([100, 101, 99])
    assert s["stddev"] == pytest.approx(1.0)
    assert s["unstable"] is False


def test_single_sample_has_no_interval():
    s = summarize([3.0])
    assert s["ci95"] is None and s["n"] == 1 and s["stddev"] == 0.0


def test_rejects_empty_and_non_finite():
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])


def test_metric_carries_unit_and_direction():
    m = metric("decode_tps", [1.0, 1.0])
    assert m["unit"] == "tok/s" and m["higher_is_better"] is True
    assert metric("ttft_s", 0.5) == {"unit": "s", "higher_is_better": False, "value": 0.5}
    with pytest.raises(KeyError, match="unknown metric"):
        metric("decode_tokens_per_second", 1.0)


def test_percentile_linear_interpolation():
    # 1..10: p90 position = 0.9 * 9 = 8.1 -> 9 + 0.1 * (10 - 9) = 9.1
    assert percentile(range(1, 11), 90) == pytest.approx(9.1)
    assert percentile(range(1, 11), 50) == pytest.approx(5.5)
