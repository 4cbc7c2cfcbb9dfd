"""What a build will cost, said before it starts: bytes checked against real builds of small cards, the
refusal against a real small file system (a tmpfs mounted for the test), never a mocked disk.
14B and 32B are only ever estimated here, never built."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from suite.catalog.cards import get_model_card
from suite.core.errors import InsufficientDiskError
from suite.models import build_model, estimate_build, estimate_builds
from suite.models.artifact import DISK_HEADROOM_BYTES
from suite.models.estimate import artifact_bytes
from suite.models.gguf import GGUFPlan

TINY = get_model_card("tiny")
TINY_QWEN2 = dataclasses.replace(TINY, id="tiny-qwen2", architecture="qwen2", qkv_bias=True, tie_word_embeddings=True,
                                 rms_norm_eps=1e-6, rope_theta=1e6)


@pytest.mark.parametrize("quant", ["q4_0", "q8_0"])
@pytest.mark.parametrize("card", [TINY, TINY_QWEN2, get_model_card("smollm2-135m")], ids=lambda c: c.id)
def test_gguf_bytes_are_exact_against_a_real_build(tmp_path, card, quant):
    expected, exact = artifact_bytes(card, fmt="gguf", quant=quant)
    built = build_model(card, fmt="gguf", quant=quant, out_root=tmp_path)
    assert exact and expected == built.model_file.stat().st_size == built.total_bytes


@pytest.mark.parametrize("fmt", ["onnx", "litertlm"])
def test_other_formats_give_the_builders_upper_bound(tmp_path, fmt):
    card = get_model_card("smollm2-135m")
    expected, exact = artifact_bytes(card, fmt=fmt)
    built = build_model(card, fmt=fmt, out_root=tmp_path)
    assert not exact
    assert built.total_bytes <= expected <= built.total_bytes * 1.05  # a bound, and a close one


def test_big_rungs_are_estimated_without_building(tmp_path):
    # 14B and 32B as Q4_0 GGUF: ~8.5 and ~18.6 GB (Q4_0 matrices, Q6_K output, f32 norms and biases).
    sizes = {c: artifact_bytes(get_model_card(c), fmt="gguf")[0] for c in ("qwen2.5-14b", "qwen2.5-32b")}
    assert 8.4e9 < sizes["qwen2.5-14b"] < 8.6e9 and 18.5e9 < sizes["qwen2.5-32b"] < 18.8e9
    for c, size in sizes.items():
        plan = GGUFPlan(get_model_card(c), "q4_0")
        assert plan.data_bytes() < size <= plan.estimate_bytes()  # exact sits under the disk check's bound
    est = estimate_build("qwen2.5-32b", fmt="gguf", out_root=tmp_path / "models", push_rate_bytes_per_s=40e6)
    assert est.artifact_bytes == sizes["qwen2.5-32b"] and est.exact and not est.cached
    assert est.push_s == pytest.approx(sizes["qwen2.5-32b"] / 40e6)
    assert est.out_dir == str(tmp_path) and est.free_bytes > 0  # the nearest existing folder's file system
    assert "push: about 8 min at 40.0 MB/s" in est.text()
    assert estimate_build("qwen2.5-14b", fmt="gguf", out_root=tmp_path).push_s is None  # no rate, no push time
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_built_model_is_cached(tmp_path):
    assert not estimate_build(TINY, fmt="gguf", out_root=tmp_path).cached
    build_model(TINY, fmt="gguf", out_root=tmp_path)
    est = estimate_build(TINY, fmt="gguf", out_root=tmp_path)
    assert est.cached and "already built" in est.text()
    assert not estimate_build(TINY, fmt="gguf", quant="q8_0", out_root=tmp_path).cached
    # several builds: each counts the ones before it; a forced rebuild needs its room again
    cached, forced = estimate_builds([TINY, TINY], fmt="gguf", out_root=tmp_path), \
        estimate_builds([TINY, "smollm2-135m"], fmt="gguf", out_root=tmp_path, force=True)
    assert [e.cached for e in cached] == [True, True] and cached[1].reserved_bytes == 0
    assert not forced[0].cached and forced[1].reserved_bytes == forced[0].needed_bytes


# --- a real small file system -----------------------------------------------------------------------
@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of a given size mounted under tmp_path (root only; skipped elsewhere), unmounted after."""
    mounted: list[Path] = []

    def mount(size_mib: int) -> Path:
        where = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
        where.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_estimate_reads_the_real_free_space_and_the_builder_refuses_before_writing(small_fs):
    fs = small_fs(16)
    est = estimate_build("qwen2.5-32b", fmt="gguf", out_root=fs / "models")
    assert est.out_dir == str(fs) and est.free_bytes == shutil.disk_usage(fs).free <= 16 * 2**20
    assert not est.fits and "does NOT fit" in est.text()
    with pytest.raises(InsufficientDiskError) as info:
        build_model("qwen2.5-32b", fmt="gguf", out_root=fs / "models")
    assert info.value.context["free_bytes"] == est.free_bytes
    assert info.value.context["needed_bytes"] == est.needed_bytes
    assert _files(fs) == []  # not even the card's folder


def test_a_small_build_fits_a_small_disk_and_its_size_is_what_was_said(small_fs):
    fs = small_fs(72)  # tiny (~80 kB) + the 64 MiB headroom
    est = estimate_build(TINY, fmt="gguf", out_root=fs / "models")
    assert est.fits and est.needed_bytes + DISK_HEADROOM_BYTES <= est.free_bytes
    built = build_model(TINY, fmt="gguf", out_root=fs / "models")
    assert built.total_bytes == est.artifact_bytes


def _cli(*args, env=None):
    env = (env or os.environ) | {"COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "suite.cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_cli_shows_the_estimate_and_refuses_with_exit_3_before_writing(small_fs):
    fs = small_fs(16)
    proc = _cli("models", "build", "qwen2.5-32b", "--format", "gguf", "--push-rate", "35",
                "--models-dir", str(fs / "models"))
    assert proc.returncode == 3, proc.stderr
    assert "qwen2.5-32b (gguf q4_0): 18.64 GB" in proc.stdout
    assert "does NOT fit" in proc.stdout and "push: about 9 min at 35.0 MB/s" in proc.stdout
    assert "not enough disk for the model: needs 18.64 GB" in proc.stderr
    assert _files(fs) == []


def test_cli_counts_every_build_of_the_command_before_building_any(small_fs):
    # tiny fits alone, smollm2-135m (91 MB) does not fit after it: neither is built.
    fs = small_fs(96)
    proc = _cli("models", "build", "tiny", "smollm2-135m", "--format", "gguf", "--models-dir", str(fs / "models"))
    assert proc.returncode == 3, proc.stderr
    assert "smollm2-135m (gguf q4_0): 91.2 MB" in proc.stdout and "of the builds before it" in proc.stdout
    assert _files(fs) == []
    proc = _cli("models", "build", "tiny", "--format", "gguf", "--models-dir", str(fs / "models"))
    assert proc.returncode == 0, proc.stderr
    assert "built tiny" in proc.stdout and "free in" not in proc.stdout  # small: no estimate shown


def test_the_walk_past_ram_says_a_big_rung_s_cost_and_stops_before_building_what_the_disk_cannot_hold(small_fs):
    from types import SimpleNamespace

    from suite.scenarios.fit import run_fit
    from suite.session.local import RunRequest

    disk = small_fs(16)
    said: list[str] = []
    req = RunRequest(model_id="qwen2.5-14b", runtime="llama.cpp", models_dir=disk / "models", results_dir=disk / "r")
    summary = run_fit(SimpleNamespace(serial="phone"), req, models=["qwen2.5-14b"], status=said.append,
                      beyond_ram=True, floor_tps=1.0, rung_timeout_s=60)
    (rung,) = summary.rungs
    assert rung.outcome == "not_run" and rung.run_dir is None
    assert summary.stopped.startswith("qwen2.5-14b: not built:") and "GiB needed" in summary.stopped
    assert any("qwen2.5-14b (gguf q4_0): 8.52 GB" in m and "does NOT fit" in m for m in said), said
    assert not (disk / "models").exists() or not any((disk / "models").rglob("*.gguf"))
