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


def test_a_throughput_interval_never_reaches_below_zero():
    """Issue 15: n=3 decode samples with a spread gave `22.63 tok/s, 95% CI [-2.876, 40.67]`. A positive
    quantity's interval is taken on the log scale (of the geometric mean): below 0 is impossible."""
    xs = [5.0, 22.63, 40.0]
    plain = summarize(xs)
    assert plain["ci95"][0] < 0 and plain["ci_method"].startswith("t: ")  # the mean's interval
    m = metric("decode_tps", xs)
    lo, hi = m["ci95"]
    # by hand: logs 1.6094, 3.1192, 3.6889 -> mean 2.8059, sd 1.0746; t(0.975, 2) = 4.3027 ->
    # half 4.3027 * 1.0746 / sqrt(3) = 2.6694 -> exp(0.1365) = 1.146, exp(5.4753) = 238.7
    assert lo == pytest.approx(1.146, abs=0.005) and hi == pytest.approx(238.7, abs=0.5)
    assert 0 < lo < m["value"] < hi and m["ci_method"].startswith("t on the log scale") and m["small_n"] is True
    assert m["samples"] == xs and m["value"] == 22.63  # the raw samples and the median as they were


def test_differences_and_temperatures_keep_the_interval_of_the_mean():
    above = metric("power_w/avg_above_idle", [-0.2, 0.1, 0.4])  # can be below 0: the mean's interval
    assert above["ci_method"].startswith("t: ") and above["ci95"][0] < 0
    assert metric("temp_c/max", [40.0, 41.0, 43.0])["ci_method"].startswith("t: ")
    assert metric("decode_tps", [10.0] * 6)["small_n"] is False
