"""The HTML report, rendered from a FIXTURE result set written through the real store.

The fixture runs are derived from tests/data/schema/run-v1.json: three models, a host and
a simulated phone whose model name and getprop values are hostile strings, one OOM run.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from suite.core.errors import EdgebenchError
from suite.core.schema import (
    CH_CPU_UTIL_PCT,
    CH_POWER_W,
    CH_RSS_BYTES,
    Outcome,
    Phase,
    ch_cpufreq_cur,
    ch_phase,
    ch_temp_tz,
)
from suite.core.stats import metric
from suite.report import render_report
from suite.report.charts import phase_spans
from suite.store import write_run

EXAMPLE = Path(__file__).parent / "data" / "schema" / "run-v1.json"
TITLE = "FIXTURE DATA: report test"
HOSTILE_MODEL = "<script>alert(1)</script>"
HOSTILE_PROP = "\"'&;$(reboot)"
HOSTILE_ZONE = "<b>hot</b>"

MODELS = {  # card id -> (params, file bytes)
    "smollm2-135m": (134_515_008, 85_000_000),
    "qwen2.5-0.5b": (494_032_768, 320_000_000),
    "llama-3.2-1b": (1_235_814_400, 760_000_000),
}


def _spread(median: float, rel: float = 0.01) -> list[float]:
    """Five samples whose median is exactly `median`."""
    return [median, median * (1 + rel), median * (1 - rel), median * (1 + 2 * rel), median * (1 - 2 * rel)]


def _phone(record: dict) -> dict:
    record["device"] |= {
        "device_id": "a1b2c3d4e5f6",
        "serial": "loopback-1",
        "manufacturer": "Acme",
        "model": HOSTILE_MODEL,
        "soc_vendor": "acme",
        "soc_model": "AX1",
        "soc_name": HOSTILE_PROP,
        "tier": "mid",
        "ram_bytes": 8 * 2**30,
        "os": {"name": "Android", "release": None, "android_release": "14", "sdk": 34,
               "fingerprint": HOSTILE_PROP, "kernel": "5.15.0"},
        "abi": "x86_64",
        "cpu": {"model": "AX1", "physical_cores": 8, "logical_cores": 8, "clusters": [
            {"policy": "policy0", "cpus": [0, 1, 2, 3], "max_khz": 1_800_000, "governor": "schedutil"},
            {"policy": "policy4", "cpus": [4, 5, 6, 7], "max_khz": 2_400_000, "governor": "schedutil"},
        ]},
        "transport": "adb",
        "simulated": True,
        "unavailable": {},
    }
    record["host"]["hostname"] = "lab<i>1</i>"
    record["roofline"] |= {"bandwidth_bytes_per_s": 51.2e9, "bandwidth_source": "catalog",
                           "bandwidth_method": "devices/ AX1 entry (LPDDR5, 4 channels)"}
    record["conditions"] |= {"battery_level_start": 81, "battery_level_end": 79, "charging": False,
                             "thermal_status_start": 0}
    return record


def _run(i: int, model: str, *, phone: bool, decode: float, outcome: str = Outcome.COMPLETED) -> dict:
    rec = json.loads(EXAMPLE.read_text())
    rec["run_id"] = f"01JDQ00000000000000000RUN{i}"
    params, size = MODELS[model]
    sha = hashlib.sha256(model.encode()).hexdigest()  # one artefact per card, shared by devices
    rec["model"] |= {"id": model, "name": model, "params": params, "bytes": size, "sha256": sha,
                     "weight_bytes_read_per_token": size}
    if phone:
        rec = _phone(rec)
    bandwidth = rec["roofline"]["bandwidth_bytes_per_s"]
    rec["roofline"] |= {"decode_bytes_per_token": float(size), "decode_bound_tps": round(bandwidth / size, 1)}
    rec["outcome"] = outcome
    prefill = round(decode * 3.3, 1)
    rec["metrics"] = {
        "prefill_tps": metric("prefill_tps", _spread(prefill)),
        "decode_tps": metric("decode_tps", _spread(decode, 0.05 if i == 2 else 0.01)),
        "ttft_s": metric("ttft_s", _spread(round(128 / prefill, 3))),
        "peak_rss_bytes": metric("peak_rss_bytes", size * 1.3),
        "roofline_fraction/decode": metric("roofline_fraction/decode", round(decode * size / bandwidth, 3)),
    }
    if phone:
        rec["metrics"] |= {
            "decode_latency_s/p50": metric("decode_latency_s/p50", round(1 / decode, 4)),
            "decode_latency_s/p90": metric("decode_latency_s/p90", round(1.2 / decode, 4)),
            "decode_latency_s/p99": metric("decode_latency_s/p99", round(1.6 / decode, 4)),
            "power_w/avg": metric("power_w/avg", 3.25),
        }
        rec["unavailable"] = {"roofline_fraction/prefill": "no TOPS figure for SoC AX1 in the catalog"}
    if outcome != Outcome.COMPLETED:
        rec["metrics"] = {"peak_rss_bytes": metric("peak_rss_bytes", 7.5 * 2**30)}
        rec["unavailable"] = {"decode_tps": "runtime killed by the low-memory killer before decode"}
        rec["errors"] = [
            {"type": "RuntimeFailure", "message": "process killed (lmkd)", "stderr": "<oom> & exit 137"}
        ]
    return rec


def _samples(phone: bool, failed: bool) -> pd.DataFrame:
    rows = []
    end = 4.0 if failed else 10.0
    for k in range(int(end * 10) + 1):
        t = k / 10
        rows += [(t, CH_RSS_BYTES, 1e8 + 2e7 * t), (t, CH_CPU_UTIL_PCT, 60 + 30 * (t > 2))]
        rows.append((t, ch_cpufreq_cur("policy0"), 1_800_000 - 20_000 * t))
        if phone:
            rows += [(t, ch_temp_tz(HOSTILE_ZONE), 35 + t), (t, CH_POWER_W, 2 + (t > 2))]
    for phase, start, stop in ((Phase.WARMUP, 0.0, 1.0), (Phase.PREFILL, 1.5, 2.0), (Phase.DECODE, 2.0, 9.0)):
        rows += [(start, ch_phase(phase), 1.0)] + ([(stop, ch_phase(phase), 0.0)] if stop < end else [])
    return pd.DataFrame(rows, columns=["t_s", "channel", "value"])


FIXTURE_RUNS = [  # (model, phone, decode tok/s, outcome)
    ("smollm2-135m", False, 125.0, Outcome.COMPLETED),
    ("qwen2.5-0.5b", False, 48.6, Outcome.COMPLETED),  # RUN2: unstable (CV > 5%)
    ("llama-3.2-1b", False, 21.7, Outcome.COMPLETED),
    ("smollm2-135m", True, 61.3, Outcome.COMPLETED),
    ("qwen2.5-0.5b", True, 23.4, Outcome.COMPLETED),
    ("llama-3.2-1b", True, 9.8, Outcome.OOM),
]


def write_fixture(results_dir: Path) -> Path:
    for i, (model, phone, decode, outcome) in enumerate(FIXTURE_RUNS, start=1):
        failed = outcome != Outcome.COMPLETED
        record = _run(i, model, phone=phone, decode=decode, outcome=outcome)
        write_run(results_dir, record, _samples(phone, failed))
    return results_dir


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("report")
    return render_report([write_fixture(base / "results")], base / "out", title=TITLE)


def site_pages(index: Path, kinds=("runs", "devices", "models")) -> dict[str, str]:
    """Every page of the site (index first), by path relative to the site root."""
    root = index.parent
    pages = {"index.html": index.read_text(encoding="utf-8")}
    for kind in kinds:
        pages |= {f"{kind}/{p.name}": p.read_text(encoding="utf-8") for p in sorted((root / kind).glob("*.html"))}
    return pages


def site_text(index: Path, kinds=("runs", "devices", "models")) -> str:
    return "\n".join(site_pages(index, kinds).values())


@pytest.fixture(scope="module")
def html(report) -> str:
    return site_text(report)


def test_report_shows_key_numbers(report, html):
    assert report.name == "index.html" and (report.parent / "runs" / "01JDQ00000000000000000RUN1.html").exists()
    for expected in (
        TITLE, "6 runs", "5 completed", "1 oom",
        "412.5 tok/s", "125.0 tok/s", "48.6 tok/s", "23.4 tok/s",  # prefill = 3.3 x decode
        "0.531",  # roofline fraction decode of RUN1: 125 * 85e6 / 20e9
        "20.00 GB/s", "probe: numpy multi-threaded read, best of 5", "51.20 GB/s", "catalog: devices/",
        "16.3 ms",  # decode p50 of RUN4: 1 / 61.3
        "3.25 W", "7.5 GiB",
        "unavailable: no RAPL powercap, battery or NVML on this host",
        "unavailable: no TOPS figure for SoC AX1 in the catalog",
        "unavailable: runtime killed by the low-memory killer before decode",
        "not measured: run ended oom",
        "RuntimeFailure: process killed (lmkd)", "stderr: &lt;oom&gt; &amp; exit 137",
        "policy4: cpus 4,5,6,7 · max 2.40 GHz · schedutil",
        "simulated", "synthetic weights", "unstable",
        "Not recorded for any run:",
    ):
        assert expected in html, expected


def test_unstable_flag_follows_cv(report):
    # only RUN2's decode has CV > 5% (samples spread by 5%, CV 7.9%)
    flagged = [row for row in site_text(report, ("devices", "models")).split("<tr>")
               if 'class="badge unstable" title=' in row]
    assert flagged and all("RUN2" in row for row in flagged)


def test_device_strings_are_escaped(html):
    assert "<script" not in html.lower()  # the page carries no script at all
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE_PROP not in html
    assert "&#34;&#39;&amp;;$(reboot)" in html
    assert "<i>1</i>" not in html and "lab&lt;i&gt;1&lt;/i&gt;" in html
    assert HOSTILE_ZONE not in html and "&lt;b&gt;hot&lt;/b&gt;" in html  # inside the SVG legend


def test_page_is_self_contained(html):
    assert "Content-Security-Policy" in html
    for attr in ('src="http', "src='http", 'href="http', "url(http", "@import"):
        assert attr not in html
    assert "<svg" in html and "<?xml" not in html and "<metadata>" not in html


def test_element_ids_are_unique_across_charts(report):
    for name, page in site_pages(report).items():
        ids = re.findall(r'\sid="([^"]+)"', page)
        assert len(ids) == len(set(ids)), name


def test_render_is_deterministic_and_path_free(report, html, tmp_path):
    moved = tmp_path / "elsewhere" / "results"
    shutil.copytree(report.parent.parent / "results", moved)
    again = render_report([moved], tmp_path / "out", title=TITLE)
    assert site_pages(again) == site_pages(report)  # a cold render elsewhere: same pages
    for name in site_pages(report):
        assert (again.parent / name).read_bytes() == (report.parent / name).read_bytes(), name
    assert str(report.parent.parent) not in html
    assert "loopback-1" not in html  # the device serial stays in local results (DESIGN.md section 2)


def test_no_runs_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgebenchError) as err:
        render_report([tmp_path / "empty"], tmp_path / "out")
    assert "no runs found" in err.value.message and err.value.hint
    assert not (tmp_path / "out").exists()


def test_phase_spans_close_at_the_last_sample():
    df = _samples(phone=False, failed=True)  # decode opens at 2.0, run ends at 4.0
    assert phase_spans(df) == [("warmup", 0.0, 1.0), ("prefill", 1.5, 2.0), ("decode", 2.0, 4.0)]


def test_single_run_renders(tmp_path):
    rec = json.loads(EXAMPLE.read_text())
    write_run(tmp_path / "r", rec)
    html = site_text(render_report([tmp_path / "r"], tmp_path / "out"))
    assert "edgebench report" in html and "1 run:" in html and "410.2 tok/s" in html
    assert "no sensor samples stored for this run" in html


def test_failed_runs_only_and_unknown_metrics(tmp_path):
    """No chart can be drawn; the page says so, and a metric outside the schema still shows."""
    rec = _run(1, "smollm2-135m", phone=True, decode=1.0, outcome=Outcome.LOAD_FAILED)
    rec["metrics"] = {"_vendor_npu_tps": {"value": 7.25}}
    rec["errors"] = ["model load failed: unsupported op MatMulNBits"]
    write_run(tmp_path / "r", rec)
    html = site_text(render_report([tmp_path / "r"], tmp_path / "out"))
    assert "0 completed" not in html and "1 load_failed" in html
    assert "No chart: no run measured prefill or decode throughput" in html
    assert "model load failed: unsupported op MatMulNBits" in html
    assert "_vendor_npu_tps" in html and "7.25" in html


# The browser checks of the site (console, outgoing requests with a control page, overflow,
# DOM numbers, screenshots) live in tests/test_report_site.py, on the larger fixture set.
