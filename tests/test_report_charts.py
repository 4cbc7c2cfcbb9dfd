"""The report's charts read as a person reads them: every axis that carries data is labelled.

Built through the same Figure builders the report serialises to SVG, drawn, then inspected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suite.core.stats import metric
from suite.report import charts

EXAMPLE = Path(__file__).parent / "data" / "schema" / "run-v1.json"
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
