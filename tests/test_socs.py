"""The SoC catalog (devices/socs.csv) and matching phone identity strings against it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from suite.catalog.socs import SOCS_CSV_HINT_PATH, TIER_UNKNOWN, load_socs, match_soc

REPO_SOCS_CSV = Path(__file__).resolve().parents[1] / "devices" / "socs.csv"
SHARED_CSV = Path(__file__).resolve().parents[2] / "shared" / "catalog" / "socs.csv"


@pytest.fixture(scope="module")
def socs():
    return load_socs()


def by_name(socs, name):
    return next(s for s in socs if s.marketing_name == name)


def test_catalog_loads_with_provenance(socs):
    assert len(socs) == 29
    assert {s.tier for s in socs} <= {"flagship", "mid", "entry"}
    with open(REPO_SOCS_CSV, newline="") as f:
        header = next(csv.reader(f))
    for col in ("sources", "soc_model_evidence", "board_platform_evidence", "bw_basis", "confidence",
                "aliases", "shared_ids", "aliases_evidence"):
        assert col in header
    g99 = next(s for s in socs if s.part == "MT6789")
    assert g99.memory_type == "LPDDR4X" and g99.peak_dram_bw_gbps is None  # empty stays unknown
    assert g99.npu_int8_tops is None
    d9300 = next(s for s in socs if s.part == "MT6989")
    assert d9300.peak_dram_bw_gbps == 76.8 and d9300.peak_dram_bw_bytes_per_s == 76.8e9
    assert by_name(socs, "Exynos 1380").npu_int8_tops == 4.9


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="../shared/catalog not present")
def test_catalog_keeps_every_shared_cell():
    """devices/socs.csv = the shared catalog + alias columns; no shared cell changed."""
    shared = list(csv.DictReader(open(SHARED_CSV, newline="")))
    ours = list(csv.DictReader(open(REPO_SOCS_CSV, newline="")))
    assert len(shared) == len(ours)
    for a, b in zip(shared, ours, strict=True):
        assert {k: b[k] for k in a} == a


@pytest.mark.parametrize(
    ("props", "cpuinfo_hw", "name", "matched_on"),
    [
        ({"ro.soc.model": "MT6789", "ro.soc.manufacturer": "Mediatek"}, None, "Helio G99", "ro.soc.model"),
        ({"ro.soc.model": "SM8650"}, None, "Snapdragon 8 Gen 3", "ro.soc.model"),
        ({"ro.soc.model": "sm8650-ab"}, None, "Snapdragon 8 Gen 3", "ro.soc.model"),
        ({"ro.soc.model": "SM8650-AC"}, None, "Snapdragon 8 Gen 3", "ro.soc.model"),
        ({"ro.board.platform": "pineapple"}, None, "Snapdragon 8 Gen 3", "ro.board.platform"),
        ({"ro.board.platform": "PINEAPPLE "}, None, "Snapdragon 8 Gen 3", "ro.board.platform"),
        ({"ro.soc.model": "MT6989"}, None, "Dimensity 9300", "ro.soc.model"),
        ({"ro.soc.model": "MT6897Z_A/ZA"}, None, "Dimensity 8300 (incl. 8300-Ultra)", "ro.soc.model"),
        ({"ro.soc.model": "MT6897Z_B/ZB"}, None, "Dimensity 8300 (incl. 8300-Ultra)", "ro.soc.model"),
        ({"ro.soc.model": "MT6789V/CD"}, None, "Helio G99", "ro.soc.model"),
        ({"ro.soc.model": "s5e9945", "ro.soc.manufacturer": "Samsung"}, None, "Exynos 2400", "ro.soc.model"),
        ({"ro.soc.model": "Tensor G3", "ro.soc.manufacturer": "Google"}, None, "Tensor G3", "ro.soc.model"),
        ({"ro.board.platform": "zuma"}, None, "Tensor G3", "ro.board.platform"),
        ({"ro.board.platform": "zumapro"}, None, "Tensor G4", "ro.board.platform"),
        ({"ro.soc.model": "GS201"}, None, "Tensor G2", "ro.soc.model"),
        ({"ro.hardware": "mt6897", "ro.product.board": "k6897v1_64"}, None, "Dimensity 8300 (incl. 8300-Ultra)",
         "ro.hardware"),
        ({"ro.product.board": "k6989v1_64"}, None, "Dimensity 9300", "ro.product.board"),
        ({"ro.soc.model": "T616", "ro.soc.manufacturer": "Spreadtrum"}, None, "Tiger T616", "ro.soc.model"),
        ({"ro.hardware": "qcom"}, "Qualcomm Technologies, Inc SM8550", "Snapdragon 8 Gen 2",
         "/proc/cpuinfo Hardware"),
        ({"ro.soc.model": "MT6769V/CZ"}, None, "Helio G85", "ro.soc.model"),
        # Android 11 (no ro.soc.*): falls back to the board platform
        ({"ro.soc.model": "", "ro.board.platform": "kalama", "ro.hardware": "qcom"}, None, "Snapdragon 8 Gen 2",
         "ro.board.platform"),
    ],
)
def test_match_forms(socs, props, cpuinfo_hw, name, matched_on):
    m = match_soc(props, cpuinfo_hw, socs)
    assert m.soc is not None, m.hint
    assert m.soc.marketing_name == name
    assert m.matched_on.startswith(matched_on)
    assert not m.ambiguous and m.tier == m.soc.tier


def test_match_a15_props(socs):
    props = {"ro.soc.manufacturer": "Mediatek", "ro.soc.model": "MT6789", "ro.board.platform": "mt6789",
             "ro.hardware": "mt6789", "ro.product.board": "a15"}  # A15 getprop capture L39, L40, L9, L20, L25
    m = match_soc(props, None, socs)
    assert (m.soc_vendor, m.soc_model, m.soc_name, m.tier) == ("MediaTek", "MT6789", "Helio G99", "entry")


def test_no_false_prefix_matches(socs):
    # Pixel 4a: ro.hardware=sunfish must not match `sun` (SM8750); `sm86501` is not SM8650
    assert match_soc({"ro.hardware": "sunfish"}, None, socs).soc is None
    assert match_soc({"ro.soc.model": "SM86501"}, None, socs).soc is None
    assert match_soc({"ro.board.platform": "zumapro"}, None, socs).soc.marketing_name == "Tensor G4"


@pytest.mark.parametrize(
    ("props", "candidate"),
    [
        ({"ro.board.platform": "parrot"}, "Snapdragon 6 Gen 1"),
        ({"ro.soc.model": "MT6769V/CB"}, "Helio G85"),  # Helio G70 per freqbench: same MT6769 base
        ({"ro.board.platform": "mt6768"}, "Helio G85"),
        ({"ro.board.platform": "ums9230"}, "Tiger T616"),
    ],
)
def test_shared_codenames_are_ambiguous(socs, props, candidate):
    m = match_soc(props, None, socs)
    assert m.soc is None and m.ambiguous and m.tier == TIER_UNKNOWN
    assert [c.marketing_name for c in m.candidates] == [candidate]
    assert "shared" in m.hint and SOCS_CSV_HINT_PATH in m.hint


def test_ambiguity_settled_by_a_more_specific_source(socs):
    m = match_soc({"ro.soc.model": "SM6450", "ro.board.platform": "parrot"}, None, socs)
    assert m.soc.marketing_name == "Snapdragon 6 Gen 1" and not m.ambiguous


def test_unknown_soc(socs):
    m = match_soc({"ro.soc.manufacturer": "QTI", "ro.soc.model": "SM8350", "ro.board.platform": "lahaina"},
                  "Qualcomm Technologies, Inc SM8350", socs)
    assert m.soc is None and m.tier == "unknown" and not m.ambiguous
    assert m.soc_vendor == "Qualcomm" and m.soc_model == "SM8350" and m.soc_name is None
    assert SOCS_CSV_HINT_PATH in m.hint and "lahaina" in m.hint


def test_no_identity_at_all(socs):
    m = match_soc({}, None, socs)
    assert m.soc is None and m.tier == "unknown" and SOCS_CSV_HINT_PATH in m.hint


def test_hostile_values_do_not_match_or_break(socs):
    m = match_soc({"ro.soc.model": "<script>alert(1)</script>", "ro.board.platform": "$(reboot);"}, None, socs)
    assert m.soc is None and m.soc_model == "<script>alert(1)</script>"
    assert "$(reboot);" in m.hint  # shown as given (repr-quoted), never run


def test_vendor_mismatch_is_noted(socs):
    m = match_soc({"ro.soc.manufacturer": "QTI", "ro.soc.model": "MT6789"}, None, socs)
    assert m.soc.marketing_name == "Helio G99" and "ro.soc.manufacturer" in m.hint


def test_bad_tier_rejected(tmp_path):
    bad = tmp_path / "socs.csv"
    rows = list(csv.DictReader(open(REPO_SOCS_CSV, newline="")))
    rows[0]["tier"] = "ultra"
    with open(bad, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[:1])
    with pytest.raises(ValueError, match="tier 'ultra'"):
        load_socs(bad)


def test_the_catalog_is_read_from_the_one_devices_folder():
    from suite.catalog.socs import default_socs_csv

    assert default_socs_csv() == REPO_SOCS_CSV
    assert not list(Path(load_socs.__code__.co_filename).resolve().parents[1].rglob("*.csv")), "a csv copied into suite/"
