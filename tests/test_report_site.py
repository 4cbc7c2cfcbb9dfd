"""The report site rendered from the FIXTURE result set (tests/fixtures/results/fixture_set.py).

Several devices across tiers (flagship x2, mid, entry, host, an imported llama-bench run)
plus a simulated loopback phone whose model name is `<script>alert(1)</script>`; every
record is labelled `fixture` and the pages badge it.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from browser import ARTIFACTS, assert_self_contained, chromium, open_page, require_chromium
from fixtures.results.fixture_set import HOSTILE_MODEL, PLAN, add_run, run_id, write_fixture_set

from suite.report import render_report
from suite.report.render import CACHE_DIR, RENDER_LOG

TITLE = "FIXTURE DATA: edgebench site test"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SIM_DEVICE = "devices/51a000000005.html"
SIM_RUN = f"runs/{run_id(15)}.html"  # PLAN[14]: the simulated phone, qwen2.5-0.5b
SUSTAINED_RUN = f"runs/{run_id(len(PLAN) + 1)}.html"
IMPORTED_RUN = f"runs/{run_id(len(PLAN) + 2)}.html"
PAGES = {"index": "index.html", "device": SIM_DEVICE, "model": "models/qwen2.5-0.5b.html", "run": SUSTAINED_RUN}


def site_files(root: Path) -> dict[str, bytes]:
    """Every file of the site (the cache folder excluded) -> its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and CACHE_DIR not in p.relative_to(root).parts}


def render_log(root: Path) -> dict:
    return json.loads((root / CACHE_DIR / RENDER_LOG).read_text())


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("site")
    return render_report([write_fixture_set(base / "results")], base / "out", title=TITLE).parent


def page(site: Path, rel: str) -> str:
    return (site / rel).read_text(encoding="utf-8")


def test_every_page_kind_exists_and_links_stay_inside(site):
    files = site_files(site)
    n_runs = len(PLAN) + 2
    assert len([f for f in files if f.startswith("runs/")]) == n_runs
    assert {"index.html", SIM_DEVICE, "models/llama-3.2-1b.html", IMPORTED_RUN} <= set(files)
    for rel, data in files.items():
        html = data.decode()
        assert "<script" not in html.lower() and "default-src 'none'" in html, rel
        for href in filter(None, re.findall(r'href="([^"#]*)', html)):  # '' is an in-page #fragment
            assert not re.match(r"^[a-z]+:|^/", href), (rel, href)  # relative only
            assert (site / rel).parent.joinpath(href).resolve().is_file(), (rel, href)


def test_index_shows_tiers_fit_and_rankings(site):
    html = page(site, "index.html")
    for expected in (
        "Tier: flagship", "Tier: mid", "Tier: entry", "Tier: host",
        "51.5 tok/s",  # the anchor: Llama-3.2-1B decode on the 8 Elite class phone (llama.cpp docs)
        "169.4 tok/s",  # and its prefill
        "13.6 tok/s",  # the imported Adreno 840 OpenCL decode (llama.cpp PR #22755)
        "OOM", "peak 3.6 GiB", "not tried", "runs (1)",
        "badge tie", "tied",  # the noisy Galaxy S24 overlaps the 8 Elite
        "FIXTURE data", 'class="badge prov">fixture', 'class="badge prov">imported', "synthetic weights",
        "RAM 16.0 GiB", "not charging", "power: battery", "29.5 °C",
    ):
        assert expected in html, expected


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    return html[start:html.index("</section>", start)]


def test_simulated_devices_never_enter_tier_aggregates_or_rankings(site):
    html = page(site, "index.html")
    mid = _section(html, "tier-mid")
    assert "1 device," in mid  # the Redmi K70E only: the simulated mid-tier phone is left out
    assert ESCAPED not in mid and "Loopback" not in mid
    rankings = _section(html, "rankings")
    assert "Loopback" not in rankings and ESCAPED not in rankings and "Redmi K70E" in rankings
    assert "Loopback" in _section(html, "simulated")  # shown, on its own, badged
    assert "Loopback" in _section(html, "fit")


def test_device_strings_escaped_on_every_page_kind(site):
    for kind, rel in {"index": "index.html", "device": SIM_DEVICE, "model": "models/qwen2.5-0.5b.html",
                      "run": SIM_RUN}.items():
        html = page(site, rel)
        assert ESCAPED in html and HOSTILE_MODEL not in html, kind


def test_run_pages_show_sustained_curve_and_sensors(site):
    html = page(site, SUSTAINED_RUN)
    assert "Sustained decode" in html and "throttles at 120 s" in html
    assert "Sensor timeline" in html and "<svg" in html and "120 s" in html
    imported = page(site, IMPORTED_RUN)
    assert "imported" in imported and "llama-bench does not report memory" in imported


def test_incremental_render_and_stale_pages(site, tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    shutil.copytree(site.parent / "results", results)
    shutil.copytree(site, out)
    before = {rel: (out / rel).stat().st_mtime_ns for rel in site_files(out)}
    time.sleep(0.02)
    new = add_run(results, 99)
    render_report([results], out, title=TITLE)
    log = render_log(out)
    # only the new run's page, its device and model pages and the index are computed
    assert log["rendered"] == sorted(["index.html", f"runs/{new}.html", "devices/3f2a9c41d07e.html",
                                      "models/llama-3.2-3b.html"])
    changed = {rel for rel, t in before.items() if (out / rel).stat().st_mtime_ns != t}
    assert changed <= {"index.html", "devices/3f2a9c41d07e.html", "models/llama-3.2-3b.html"}
    assert "index.html" in changed
    # removing the run again deletes its page and brings back the original bytes
    shutil.rmtree(results / new)
    render_report([results], out, title=TITLE)
    assert render_log(out)["deleted"] == [f"runs/{new}.html"]
    assert site_files(out) == site_files(site)


def test_parallel_render_writes_the_same_bytes_as_a_serial_one(site, tmp_path):
    results = site.parent / "results"
    serial = render_report([results], tmp_path / "serial", title=TITLE, jobs=1).parent
    parallel = render_report([results], tmp_path / "parallel", title=TITLE, jobs=3).parent

    def every_file(root: Path) -> dict[str, bytes]:  # the cache and the render log included
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    files = every_file(serial)
    assert len([f for f in files if f.startswith("runs/")]) == len(PLAN) + 2
    assert every_file(parallel) == files
    assert render_log(parallel)["rendered"] == render_log(serial)["rendered"]


# --- in a real browser -----------------------------------------------------------------

DOM = {
    "index": ("51.5 tok/s", "169.4 tok/s", "OOM", "not tried", "tied", HOSTILE_MODEL),
    "device": (HOSTILE_MODEL, "simulated", "RAM 6.0 GiB"),
    "model": ("80.2 tok/s", "Redmi K70E", "fixture"),
    "run": ("throttles", "80.2 tok/s", "not charging", "59 %"),
}


@pytest.mark.browser
def test_site_in_chromium(site):
    require_chromium()
    visits = {}
    with chromium() as browser:
        for kind, rel in PAGES.items():
            visits[kind] = open_page(browser, site / rel, screenshot=ARTIFACTS / f"site-{kind}.png")
        control = site / "control.html"
        control.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
        caught = open_page(browser, control)
        control.unlink()
    for kind, visit in visits.items():
        assert_self_contained(visit)
        assert visit.page_width <= 1280 and not visit.clipped, (kind, visit.clipped)
        for expected in DOM[kind]:
            assert expected in visit.text, (kind, expected)
    assert "http://127.0.0.1:9/x.png" in caught.outgoing
    with pytest.raises(AssertionError, match="outgoing request"):
        assert_self_contained(caught)
