"""The SoC catalog (devices/socs.csv) and matching phone identity strings against it."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from suite.catalog.socs import CPU_SOURCE, SOCS_CSV_HINT_PATH, TIER_UNKNOWN, load_socs, match_soc

REPO_SOCS_CSV = Path(__file__).resolve().parents[1] / "devices" / "socs.csv"
SHARED_CSV = Path(__file__).resolve().parents[2] / "shared" / "catalog" / "socs.csv"


@pytest.fixture(scope="module")
def socs():
    return load_socs()


def by_name(socs, name):
    return next(s for s in socs if s.marketing_name == name)


def test_catalog_loads_with_provenance(socs):
    assert 150 <= len(socs) <= 250  # the phone SoCs of 2019-2026 (issue 14)
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


#: the shared catalog's specification columns: kept as they are (the catalog grows around them)
SPEC_COLUMNS = ("cpu_config", "gpu", "memory_type", "memory_max_mtps", "memory_bus_bits", "peak_dram_bw_gbps",
                "npu_int8_tops", "bw_basis")
NUMBER_COLUMNS = ("cpu_max_ghz", "npu_int8_tops", "memory_max_mtps", "memory_bus_bits", "peak_dram_bw_gbps")


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="../shared/catalog not present")
def test_catalog_keeps_every_shared_row_and_its_specifications():
    """devices/socs.csv grew from the shared catalog: every shared row is still there with its
    specifications; identifiers and tiers may be revised (shared codenames, the tier rule)."""
    if os.environ.get("CI") == "true":
        assert SHARED_CSV.exists()
    shared = list(csv.DictReader(open(SHARED_CSV, newline="")))
    ours = {r["marketing_name"]: r for r in csv.DictReader(open(REPO_SOCS_CSV, newline=""))}
    for a in shared:
        b = ours[a["marketing_name"]]
        assert {k: b[k] for k in SPEC_COLUMNS} == {k: a[k] for k in SPEC_COLUMNS}, a["marketing_name"]
        assert b["vendor"] == a["vendor"] and b["sources"].startswith(a["sources"][:40])


def test_every_filled_number_has_a_source_in_its_row_and_bandwidth_says_how():
    """Empty stays empty; a number someone filled in names where it comes from."""
    for n, r in enumerate(csv.DictReader(open(REPO_SOCS_CSV, newline="")), start=2):
        where = f"devices/socs.csv line {n} ({r['marketing_name']})"
        filled = [c for c in NUMBER_COLUMNS if r[c].strip()]
        if filled:
            assert "http" in r["sources"], f"{where}: {filled} filled without a source URL"
        for c in filled:
            float(r[c].split("/")[0])  # a number, not a note (several clusters: `2.84 / 2.42`)
        if r["peak_dram_bw_gbps"].strip():
            assert r["bw_basis"].strip(), f"{where}: bandwidth without its basis"
            if r["memory_max_mtps"].strip() and r["memory_bus_bits"].strip():
                derived = float(r["memory_max_mtps"]) * float(r["memory_bus_bits"]) / 8 / 1000
                assert abs(derived - float(r["peak_dram_bw_gbps"])) < 0.06 * derived, where
        assert r["tier"] in ("flagship", "mid", "entry"), where
        assert r["tier_reasoning"].strip(), f"{where}: a tier without its reason"


@pytest.mark.parametrize(
    ("props", "cpuinfo_hw", "name", "matched_on"),
    [
        ({"ro.soc.model": "SM8650"}, None, "Snapdragon 8 Gen 3", "ro.soc.model"),
        ({"ro.soc.model": "sm8650-ab"}, None, "Snapdragon 8 Gen 3", "ro.soc.model"),
        ({"ro.soc.model": "SM8650-AC"}, None, "Snapdragon 8 Gen 3", "ro.soc.model"),
        ({"ro.soc.model": "SM8635", "ro.board.platform": "pineapple"}, None, "Snapdragon 8s Gen 3", "ro.soc.model"),
        ({"ro.soc.model": "s5e9945", "ro.soc.manufacturer": "Samsung"}, None, "Exynos 2400", "ro.soc.model"),
        ({"ro.soc.model": "Tensor G3", "ro.soc.manufacturer": "Google"}, None, "Tensor G3", "ro.soc.model"),
        ({"ro.soc.model": "Tensor", "ro.board.platform": "gs101"}, None, "Tensor G1", "ro.soc.model"),
        ({"ro.board.platform": "zuma"}, None, "Tensor G3", "ro.board.platform"),
        ({"ro.board.platform": "zumapro"}, None, "Tensor G4", "ro.board.platform"),
        ({"ro.soc.model": "GS201"}, None, "Tensor G2", "ro.soc.model"),
        ({"ro.soc.model": "T616", "ro.soc.manufacturer": "Spreadtrum"}, None, "Tiger T616", "ro.soc.model"),
        ({"ro.hardware": "qcom"}, "Qualcomm Technologies, Inc SM8550", "Snapdragon 8 Gen 2",
         "/proc/cpuinfo Hardware"),
        ({"ro.soc.model": "SM8350", "ro.board.platform": "lahaina"}, "Qualcomm Technologies, Inc SM8350",
         "Snapdragon 888 / 888+", "ro.soc.model"),
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


@pytest.mark.parametrize(
    ("props", "candidate", "tier"),
    [
        # ids several parts report: ambiguous, the tier kept only when they all share it
        ({"ro.soc.model": "MT6789", "ro.soc.manufacturer": "Mediatek"}, "Helio G99", "entry"),
        ({"ro.soc.model": "MT6789V/CD"}, "Helio G99", "entry"),
        ({"ro.soc.model": "MT6989"}, "Dimensity 9300", "flagship"),
        ({"ro.product.board": "k6989v1_64"}, "Dimensity 9300", "flagship"),
        ({"ro.soc.model": "MT6897Z_A/ZA"}, "Dimensity 8300 (incl. 8300-Ultra)", "mid"),
        ({"ro.hardware": "mt6897", "ro.product.board": "k6897v1_64"}, "Dimensity 8300 (incl. 8300-Ultra)", "mid"),
        ({"ro.board.platform": "pineapple"}, "Snapdragon 8 Gen 3", TIER_UNKNOWN),  # or an 8s Gen 3 (mid)
        ({"ro.board.platform": "PINEAPPLE "}, "Snapdragon 8s Gen 3", TIER_UNKNOWN),
        ({"ro.board.platform": "taro"}, "Snapdragon 7 Gen 1", TIER_UNKNOWN),  # 8 Gen 1, 8+ Gen 1 or 7 Gen 1
        ({"ro.board.platform": "kona", "ro.soc.model": "SM8250"}, "Snapdragon 870", TIER_UNKNOWN),
    ],
)
def test_shared_ids_are_ambiguous_and_keep_only_a_tier_they_all_share(socs, props, candidate, tier):
    m = match_soc(props, None, socs)
    assert m.soc is None and m.ambiguous, m
    assert candidate in [c.marketing_name for c in m.candidates] and candidate in m.soc_name
    assert m.tier == tier, m.hint


def test_match_a15_props(socs):
    props = {"ro.soc.manufacturer": "Mediatek", "ro.soc.model": "MT6789", "ro.board.platform": "mt6789",
             "ro.hardware": "mt6789", "ro.product.board": "a15"}  # A15 getprop capture L39, L40, L9, L20, L25
    m = match_soc(props, None, socs)
    # MT6789 is also the Helio G100 and G200: ambiguous, but every one of them is entry
    assert (m.soc_vendor, m.soc_model, m.tier, m.ambiguous) == ("MediaTek", "MT6789", "entry", True)
    assert m.soc_name == "Helio G99 or Helio G100 (incl. G100 Ultra) or Helio G200"


def test_no_false_prefix_matches(socs):
    # Pixel 4a: ro.hardware=sunfish must not match `sun` (SM8750); `sm86501` is not SM8650
    assert match_soc({"ro.hardware": "sunfish"}, None, socs).soc is None
    assert match_soc({"ro.soc.model": "SM86501"}, None, socs).soc is None
    assert match_soc({"ro.board.platform": "zumapro"}, None, socs).soc.marketing_name == "Tensor G4"


@pytest.mark.parametrize(
    ("props", "candidates", "tier"),
    [
        # parrot is also SM6450Q, SM6435 and SG6150, which the catalog does not hold: no tier
        ({"ro.board.platform": "parrot"}, {"Snapdragon 6 Gen 1", "Snapdragon 7s Gen 2", "Snapdragon 6 Gen 3"},
         TIER_UNKNOWN),
        ({"ro.board.platform": "mt6768"}, {"Helio G85", "Helio G70", "Helio P65"}, "entry"),  # all entry
        ({"ro.board.platform": "ums9230"}, {"Tiger T616"}, TIER_UNKNOWN),  # T612 shares it, uncatalogued
        ({"ro.board.platform": "lahaina"}, {"Snapdragon 888 / 888+", "Snapdragon 778G / 778G+ / 782G"}, TIER_UNKNOWN),
    ],
)
def test_shared_codenames_are_ambiguous(socs, props, candidates, tier):
    m = match_soc(props, None, socs)
    assert m.soc is None and m.ambiguous and m.tier == tier
    assert candidates <= {c.marketing_name for c in m.candidates}
    assert "shared" in m.hint and SOCS_CSV_HINT_PATH in m.hint


def test_ambiguity_settled_by_a_more_specific_source(socs):
    m = match_soc({"ro.soc.model": "SM6450", "ro.board.platform": "parrot"}, None, socs)
    assert m.soc.marketing_name == "Snapdragon 6 Gen 1" and not m.ambiguous


def test_unknown_soc(socs):
    # a Snapdragon 845 (2018): older than the catalog
    m = match_soc({"ro.soc.manufacturer": "QTI", "ro.soc.model": "SDM845", "ro.board.platform": "sdm845"},
                  "Qualcomm Technologies, Inc SDM845", socs)
    assert m.soc is None and m.tier == "unknown" and not m.ambiguous
    assert m.soc_vendor == "Qualcomm" and m.soc_model == "SDM845" and m.soc_name is None
    assert SOCS_CSV_HINT_PATH in m.hint and "sdm845" in m.hint


def test_no_identity_at_all(socs):
    m = match_soc({}, None, socs)
    assert m.soc is None and m.tier == "unknown" and SOCS_CSV_HINT_PATH in m.hint


def test_hostile_values_do_not_match_or_break(socs):
    m = match_soc({"ro.soc.model": "<script>alert(1)</script>", "ro.board.platform": "$(reboot);"}, None, socs)
    assert m.soc is None and m.soc_model == "<script>alert(1)</script>"
    assert "$(reboot);" in m.hint  # shown as given (repr-quoted), never run


def test_vendor_mismatch_is_noted(socs):
    m = match_soc({"ro.soc.manufacturer": "QTI", "ro.soc.model": "MT6983"}, None, socs)
    assert m.soc is None or "ro.soc.manufacturer" in m.hint
    m = match_soc({"ro.soc.manufacturer": "QTI", "ro.soc.model": "s5e9945"}, None, socs)
    assert m.soc.marketing_name == "Exynos 2400" and "ro.soc.manufacturer" in m.hint


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


def _catalog(tmp_path, rows: list[dict]) -> tuple:
    """A small catalog with the real header (test data for the matching logic, not SoC facts)."""
    with open(REPO_SOCS_CSV, newline="") as f:
        header = next(csv.reader(f))
    path = tmp_path / "socs.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" for k in header} | r)
    return load_socs(path)


def _row(name, part, tier, platform="", shared="", cpu="", aliases=""):
    return {"vendor": "Qualcomm", "marketing_name": name, "soc_model": part, "board_platform": platform,
            "shared_ids": shared, "tier": tier, "cpu_config": cpu, "aliases": aliases}


def test_a_shared_codename_never_decides_a_tier_unless_all_its_parts_share_one(tmp_path):
    socs = _catalog(tmp_path, [
        _row("Snapdragon 8 Gen 1", "SM8450", "flagship", shared="taro: SM8450, SM7450",
             cpu="1x Cortex-X2 + 3x Cortex-A710 + 4x Cortex-A510"),
        _row("Snapdragon 7 Gen 1", "SM7450", "mid", shared="taro: SM8450, SM7450",
             cpu="1x Cortex-A710 + 3x Cortex-A710 + 4x Cortex-A510"),
        _row("Snapdragon 8 Gen 3", "SM8650", "flagship", shared="pineapple: SM8650, SM8635"),
        _row("Snapdragon 8s Gen 3", "SM8635", "mid", shared="pineapple: SM8650, SM8635"),
        _row("Snapdragon 4 Gen 1", "SM4375", "entry", shared="holi: SM4375, SM4350"),
        _row("Snapdragon 480", "SM4350", "entry", shared="holi: SM4375, SM4350"),
    ])
    taro = match_soc({"ro.board.platform": "taro"}, None, socs)
    assert taro.ambiguous and taro.soc is None and taro.tier == TIER_UNKNOWN  # a 7 Gen 1 phone is no flagship
    assert {c.marketing_name for c in taro.candidates} == {"Snapdragon 8 Gen 1", "Snapdragon 7 Gen 1"}
    pine = match_soc({"ro.board.platform": "pineapple", "ro.hardware": "qcom"}, None, socs)
    assert pine.ambiguous and pine.tier == TIER_UNKNOWN and "tier stays unknown" in pine.hint
    holi = match_soc({"ro.board.platform": "holi"}, None, socs)
    assert holi.ambiguous and holi.soc is None and holi.tier == "entry"  # both parts are entry
    assert holi.to_dict()["tier"] == "entry"
    # a more specific id settles it; the CPU cluster configuration too (core parts from /proc/cpuinfo)
    assert match_soc({"ro.soc.model": "SM7450", "ro.board.platform": "taro"}, None, socs).tier == "mid"
    cores = ["Cortex-A510"] * 4 + ["Cortex-A710"] * 3 + ["Cortex-X2"]
    m = match_soc({"ro.board.platform": "taro"}, None, socs, cpu_cores=cores)
    assert m.soc.marketing_name == "Snapdragon 8 Gen 1" and CPU_SOURCE in m.matched_on
    # Kryo part numbers say nothing a catalog row can compare: still ambiguous
    kryo = match_soc({"ro.board.platform": "taro"}, None, socs, cpu_cores=["Qualcomm part 0x805"] * 8)
    assert kryo.ambiguous


def test_a_shared_id_with_an_uncatalogued_part_keeps_the_tier_unknown(tmp_path):
    socs = _catalog(tmp_path, [_row("Snapdragon 6 Gen 1", "SM6450", "mid", shared="parrot: SM6450, SM7435")])
    m = match_soc({"ro.board.platform": "parrot"}, None, socs)
    assert m.ambiguous and m.soc is None and m.tier == TIER_UNKNOWN


def test_display_strings_match_and_outrank_a_contradicting_soc_model(tmp_path):
    socs = _catalog(tmp_path, [
        _row("Snapdragon 695 5G", "SM6375", "mid"),
        _row("Snapdragon 680 4G", "SM6225", "mid"),
        {"vendor": "HiSilicon", "marketing_name": "Kirin 820", "soc_model": "", "board_platform": "kirin820",
         "tier": "mid"},
        {"vendor": "HiSilicon", "marketing_name": "Kirin 9000", "soc_model": "", "tier": "flagship"},
        {"vendor": "HiSilicon", "marketing_name": "Kirin 9000SL", "soc_model": "", "tier": "mid"},
    ])
    zh = match_soc({"ro.config.cpu_info_display": "高通骁龙695"}, None, socs)
    assert zh.soc.marketing_name == "Snapdragon 695 5G" and "cpu_info_display" in zh.matched_on
    assert match_soc({"ro.config.cpu_info_display": "HUAWEI Kirin 820"}, None, socs).soc.marketing_name == "Kirin 820"
    assert match_soc({"ro.config.cpu_info_display": "Kirin 9000SL"}, None, socs).tier == "mid"  # not Kirin 9000
    # a firmware inheriting a reference board's ro.soc.model: the display string is believed, both kept
    wrong = match_soc({"ro.soc.model": "SM6225", "ro.config.cpu_info_display": "高通骁龙695"}, None, socs)
    assert wrong.soc.marketing_name == "Snapdragon 695 5G"
    assert wrong.conflicts == ("ro.soc.model=SM6225 names Snapdragon 680 4G",) and "conflict" in wrong.hint


def test_a_platform_naming_another_part_is_kept_as_a_conflict(tmp_path):
    socs = _catalog(tmp_path, [_row("Snapdragon 888", "SM8350", "flagship", platform="lahaina"),
                               _row("Snapdragon 778G", "SM7325", "mid", platform="yupik")])
    m = match_soc({"ro.soc.model": "SM7325", "ro.board.platform": "lahaina"}, None, socs)
    assert m.soc.marketing_name == "Snapdragon 778G" and m.matched_on.startswith("ro.soc.model=SM7325")
    assert m.conflicts == ("ro.board.platform=lahaina names Snapdragon 888",)


def test_the_fastest_core_tells_an_870_from_an_865(tmp_path):
    socs = _catalog(tmp_path, [
        _row("Snapdragon 865", "SM8250", "flagship", shared="sm8250: SM8250, SM8250-AC; kona: SM8250, SM8250-AC")
        | {"cpu_max_ghz": "2.84 / 2.42 / 1.8"},
        _row("Snapdragon 870", "SM8250-AC", "mid", shared="sm8250: SM8250, SM8250-AC; kona: SM8250, SM8250-AC")
        | {"cpu_max_ghz": "3.2 / 2.42 / 1.8"},
    ])
    both = match_soc({"ro.soc.model": "SM8250", "ro.board.platform": "kona"}, None, socs)
    assert both.ambiguous and both.tier == TIER_UNKNOWN
    fast = match_soc({"ro.soc.model": "SM8250", "ro.board.platform": "kona"}, None, socs, cpu_max_khz=3187200)
    assert fast.soc.marketing_name == "Snapdragon 870" and fast.tier == "mid" and "cpufreq" in fast.matched_on
    slow = match_soc({"ro.board.platform": "kona"}, None, socs, cpu_max_khz=2841600)
    assert slow.soc.marketing_name == "Snapdragon 865"


IDENTITIES = Path(__file__).parent / "data" / "soc_identities.json"


def test_real_phone_identities_get_their_tier_or_unknown_never_a_wrong_one(socs):
    """Identity properties of real phones (public getprop dumps, build.prop files, stock-derived device
    trees: each entry names its source). Many carry only a shared platform name, so `unknown` (an
    honest ambiguity) is allowed; a wrong tier never is."""
    import json

    phones = json.loads(IDENTITIES.read_text())
    right = []
    for e in phones:
        assert e["source"], e["phone"]
        m = match_soc(e["props"], e["cpuinfo_hardware"], socs)
        if e["expected_tier"] is None:  # the phone itself does not say enough
            assert m.tier == TIER_UNKNOWN, (e["phone"], m.tier)
            continue
        assert m.tier in (e["expected_tier"], TIER_UNKNOWN), (e["phone"], m.tier, m.hint)
        right.append(m.tier == e["expected_tier"])
    assert len(phones) >= 40 and sum(right) >= 0.65 * len(right), f"{sum(right)} of {len(right)}"


def test_the_readme_states_every_row_s_tier():
    readme = (REPO_SOCS_CSV.parent / "README.md").read_text()
    table = readme[readme.index("## Every row's tier"):]
    for r in csv.DictReader(open(REPO_SOCS_CSV, newline="")):
        name = " ".join(r["marketing_name"].replace("|", "/").split())
        assert f"| {name} |" in table and f"| {r['tier']} |" in table.split(f"| {name} |", 1)[1].split("\n")[0], name


@pytest.mark.parametrize(("display", "name", "tier"), [
    ("高通骁龙8+Gen1", "Snapdragon 8+ Gen 1", "flagship"),
    ("Qualcomm Snapdragon 778G", "Snapdragon 778G / 778G+ / 782G", "mid"),
    ("HUAWEI Kirin 9000E", "Kirin 9000E", "flagship"),
    ("HUAWEI Kirin 9000SL", "Kirin 9000SL", "mid"),
    ("麒麟710A", "Kirin 710A", "mid"),
])
def test_vendor_display_strings_of_the_catalog(socs, display, name, tier):
    m = match_soc({"ro.config.cpu_info_display": display, "ro.board.platform": "kirin710"}, None, socs)
    assert (m.soc.marketing_name, m.tier) == (name, tier), m.hint


def test_soc_text_names_the_vendor_once():
    from suite.catalog.socs import soc_text

    assert soc_text("AMD", "AMD EPYC") == "AMD EPYC"  # this host: the model names its vendor already
    assert soc_text("MediaTek", "MT6789") == "MediaTek MT6789"
    assert soc_text(None, "SM8650") == "SM8650" and soc_text("Qualcomm", None) == "Qualcomm" and soc_text(None, None) == ""


def test_the_report_device_table_names_the_host_s_vendor_once():
    from suite.report.tables import device_rows

    (row,) = device_rows([{"device": {"device_id": "h", "soc_vendor": "AMD", "soc_model": "AMD EPYC", "cpu": {}}}])
    assert row["soc"] == "AMD EPYC"


def test_the_bandwidth_bound_says_which_statistic_it_is():
    """Issue 15: the table showed the probe's best sample beside an interval of the mean that did not
    contain it. The record names the statistic; the report shows it with the median beside."""
    from suite.core.stats import metric
    from suite.report.tables import metric_cell

    entry = metric("memory_bandwidth_bytes_per_s", [3.0e10, 4.2e10, 4.766e10]) | {"value": 4.766e10,
                                                                                 "statistic": "best of 3"}
    cell = metric_cell({"metrics": {"memory_bandwidth_bytes_per_s": entry}}, "memory_bandwidth_bytes_per_s")
    assert cell.text == "47.66 GB/s (best of 3)" and cell.detail[0] == "median 42.00 GB/s"
