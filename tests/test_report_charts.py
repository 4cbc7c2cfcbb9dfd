"""The report's charts read as a person reads them: every axis that carries data is labelled.

Built through the same Figure builders the report serialises to SVG, drawn, then inspected.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest

from suite.core.schema import CH_POWER_W, CH_RSS_BYTES, Phase, ch_phase, ch_temp_tz
from suite.core.stats import metric
from suite.report import charts, svg

EXAMPLE = Path(__file__).parent / "data" / "schema" / "run-v1.json"
SVG = "{http://www.w3.org/2000/svg}"
SIZES = {"smollm2-135m": 134_515_008, "qwen2.5-0.5b": 494_032_768}


def _run(i: int, model: str, decode: float) -> dict:
    """A completed run of `model` whose decode median is `decode` tok/s (prefill 3.3x)."""
    rec = json.loads(EXAMPLE.read_text())
    rec["run_id"] = f"01JDQ0000000000000000CHRT{i}"
    rec["model"] |= {"id": model, "name": model, "params": SIZES[model]}
    spread = [1.0, 1.01, 0.99, 1.02, 0.98]
    rec["metrics"] = {
        "prefill_tps": metric("prefill_tps", [decode * 3.3 * k for k in spread]),
        "decode_tps": metric("decode_tps", [decode * k for k in spread]),
        "peak_rss_bytes": metric("peak_rss_bytes", 400e6 + i * 1e6),
    }
    return rec


def labelled_ticks(ax, which: str) -> list[str]:
    """The tick labels (major and minor) a reader sees on one axis: non-empty, inside its limits."""
    lo, hi = sorted(getattr(ax, f"get_{which}lim")())
    k = 0 if which == "x" else 1
    labels = [*getattr(ax, f"get_{which}ticklabels")(), *getattr(ax, f"get_{which}ticklabels")(minor=True)]
    return [t.get_text() for t in labels
            if t.get_visible() and t.get_text().strip() and lo <= t.get_position()[k] <= hi]


ONE = [_run(1, "qwen2.5-0.5b", 22.6)]
TWO_CLOSE = [_run(1, "smollm2-135m", 24.1), _run(2, "qwen2.5-0.5b", 22.6)]


@pytest.mark.parametrize("records", [ONE, TWO_CLOSE], ids=["one point", "two close points"])
def test_every_log_axis_has_two_readable_labels(records):
    for fig in (charts.throughput_figure(records), charts.memory_figure(records, ram_lines=True)):
        fig.draw_without_rendering()
        axes = [ax for ax in fig.axes if ax.axison]
        assert axes
        for ax in axes:
            for which in ("x", "y"):
                labels = labelled_ticks(ax, which)
                assert len(labels) >= 2, (ax.get_title(), which, labels, getattr(ax, f"get_{which}lim")())
                if which == "y":  # plain numbers (20, 30, 50), never mathtext like 2x10^1
                    assert all("$" not in t and "times" not in t for t in labels), labels


def test_decode_axis_of_two_close_points_is_labelled_with_round_numbers():
    fig = charts.throughput_figure(TWO_CLOSE)
    fig.draw_without_rendering()
    decode = next(ax for ax in fig.axes if ax.get_title().startswith("Decode"))
    lo, hi = decode.get_ylim()
    assert lo <= 22.6 * 0.98 and 24.1 * 1.02 <= hi  # the data, whiskers included, stays in view
    assert labelled_ticks(decode, "y") == ["20", "30"]
    assert labelled_ticks(decode, "x") == ["135M", "494M"]  # the model sizes mark the x axis


# --- the sensor timeline, written as SVG without matplotlib ---------------------------------


def _timeline_samples(zone: str) -> pd.DataFrame:
    rows = []
    for k in range(101):
        t = k / 10
        rows += [(t, CH_RSS_BYTES, (100 + 10 * t) * 2**20), (t, ch_temp_tz(zone), 35 + t),
                 (t, CH_POWER_W, float("nan") if 4 <= t < 5 else 2.0 + (t > 2))]
    rows += [(1.5, ch_phase(Phase.PREFILL), 1.0), (2.0, ch_phase(Phase.PREFILL), 0.0), (2.0, ch_phase(Phase.DECODE), 1.0)]
    return pd.DataFrame(rows, columns=["t_s", "channel", "value"]).sample(frac=1, random_state=0)  # stored unsorted


def test_timeline_is_valid_svg_with_labelled_panels_and_escaped_names():
    zone = "<b>hot</b>"
    markup = charts.timeline_chart(_timeline_samples(zone), "RUN1")
    root = ElementTree.fromstring(str(markup))  # well-formed: the device's zone name was escaped
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for expected in ("RSS (MiB)", "temperature (°C)", "power (W)", "time since run start (s, device clock)",
                     "phases", "prefill", "decode", f"tz/{zone}"):
        assert expected in texts, expected
    for lo, hi in (("100", "200"), ("0", "10")):  # y ticks of the RSS panel, x ticks
        assert lo in texts and hi in texts
    # the RSS line starts at t=0, 100 MiB and ends at t=10, 200 MiB: both ends sit on their ticks
    lines = list(root.iter(f"{SVG}polyline"))
    assert len(lines) == 4  # RSS, temperature, and power broken in two by its gap
    first, *_, last = (tuple(map(float, p.split(","))) for p in lines[0].get("points").split())
    assert first[0] < last[0] and first[1] > last[1]  # time runs right, RSS grows upwards


def test_timeline_ticks_are_round_and_share_decimals():
    values, labels = svg.ticks(0.37, 2.41, 5)
    assert labels == ["0.5", "1.0", "1.5", "2.0"] and values == [0.5, 1.0, 1.5, 2.0]
    assert svg.ticks(-1.2, 1.2, 5)[1] == ["-1.0", "-0.5", "0.0", "0.5", "1.0"]
