"""Device identity: /proc/cpuinfo parsing on real phone captures and on this host, salted
device ids, and the local device record."""

from __future__ import annotations

import json
import os
import platform
import stat
from pathlib import Path

import psutil

from suite.device.identity import (
    DeviceInfo,
    device_id,
    lab_salt,
    local_device_info,
    parse_cpu_list,
    parse_cpuinfo,
    parse_os_release,
    read_cpufreq_clusters,
)

FIXTURES = Path(__file__).parent / "fixtures"


def capture(name: str) -> str:
    """A real capture without its `# source / # device / # command` header."""
    text = (FIXTURES / name).read_text()
    return "\n".join(line for line in text.splitlines() if not line.startswith("# ")) + "\n"


# --- /proc/cpuinfo ----------------------------------------------------------------------


def test_pixel8pro_cpuinfo_without_hardware_line_is_named_from_cpu_parts():
    # Tensor G3: 4x A510 (0xd46), 4x A715 (0xd4d), 1x X3 (0xd4e), no `Hardware` line; the
    # processor 5 block has BogoMIPS and Features merged on one line in the capture.
    parsed = parse_cpuinfo(capture("android/pixel8pro_tensor_g3_proc_cpuinfo.txt"))
    assert parsed.model == "4x Cortex-A510 + 4x Cortex-A715 + 1x Cortex-X3"
    assert parsed.vendor == "Arm"
    assert parsed.logical_cores == 9
    assert parsed.physical_cores == 9


def test_dimensity9300_cpuinfo_all_big_cores():
    parsed = parse_cpuinfo(capture("android/vivo_iqoo_neo9pro_dimensity9300_proc_cpuinfo.txt"))
    assert parsed.model == "4x Cortex-A720 + 4x Cortex-X4"
    assert parsed.logical_cores == 8


def test_qualcomm_hardware_line_wins_over_cpu_parts():
    # Qualcomm kernels print a global line after the processor blocks; this is the line
    # quoted in FACTS.md section 5 for an SM8350 (OnePlus 9 Pro).
    text = capture("android/vivo_iqoo_neo9pro_dimensity9300_proc_cpuinfo.txt")
    text += "\nHardware\t: Qualcomm Technologies, Inc SM8350\n"
    assert parse_cpuinfo(text).model == "Qualcomm Technologies, Inc SM8350"


def test_live_host_cpuinfo():
    text = Path("/proc/cpuinfo").read_text()
    parsed = parse_cpuinfo(text)
    assert parsed.logical_cores == psutil.cpu_count(logical=True)
    assert parsed.physical_cores == psutil.cpu_count(logical=False)
    if platform.machine() in ("x86_64", "AMD64"):
        first_model = next(line for line in text.splitlines() if line.startswith("model name"))
        assert parsed.model == first_model.split(":", 1)[1].strip()
    assert parsed.model


def test_parse_cpu_list_forms():
    assert parse_cpu_list("0-3,6\n") == (0, 1, 2, 3, 6)
    assert parse_cpu_list("4 5 6") == (4, 5, 6)
    online = parse_cpu_list(Path("/sys/devices/system/cpu/online").read_text())
    assert set(os.sched_getaffinity(0)) <= set(online)  # affinity may be narrower than online


def test_parse_os_release_live():
    text = Path("/etc/os-release").read_text()
    osr = parse_os_release(text)
    assert osr["NAME"] and '"' not in osr["NAME"]


# --- cpufreq ----------------------------------------------------------------------------


def test_cpufreq_clusters_from_a_policy_tree(tmp_path):
    # No phone cpufreq dump was captured (FACTS.md section 3 gap); the tree uses the
    # kernel-documented layout: policy<first cpu>/{related_cpus, cpuinfo_max_freq (kHz), scaling_governor}.
    base = tmp_path / "devices/system/cpu/cpufreq"
    for policy, cpus, max_khz, gov in (("policy0", "0 1 2 3", "2100000", "sugov_ext"), ("policy4", "4 5 6 7", "3250000", "sugov_ext")):
        (base / policy).mkdir(parents=True)
        (base / policy / "related_cpus").write_text(cpus + "\n")
        (base / policy / "cpuinfo_max_freq").write_text(max_khz + "\n")
        (base / policy / "scaling_governor").write_text(gov + "\n")
    clusters, reason = read_cpufreq_clusters(tmp_path)
    assert reason is None
    assert [(c.policy, c.cpus, c.max_khz, c.governor) for c in clusters] == [
        ("policy0", (0, 1, 2, 3), 2100000, "sugov_ext"),
        ("policy4", (4, 5, 6, 7), 3250000, "sugov_ext"),
    ]


def test_cpufreq_absent_says_why(tmp_path):
    clusters, reason = read_cpufreq_clusters(tmp_path)
    assert clusters == () and "no " in reason
    (tmp_path / "devices/system/cpu/cpufreq").mkdir(parents=True)
    clusters, reason = read_cpufreq_clusters(tmp_path)
    assert clusters == () and "no cpufreq policies" in reason


# --- ids --------------------------------------------------------------------------------


def test_device_id_is_short_salted_and_hides_the_serial():
    a = device_id("R58M12ABCDE", "lab-a")
    assert a == device_id("R58M12ABCDE", "lab-a")
    assert a != device_id("R58M12ABCDE", "lab-b")
    assert len(a) == 16 and int(a, 16) >= 0
    assert "R58M12ABCDE" not in a


def test_lab_salt_env_wins_and_file_is_created_once(tmp_path):
    salt_file = tmp_path / "cfg/edgebench/salt"
    assert lab_salt({"EDGEBENCH_LAB_SALT": "s3cret"}, salt_file) == "s3cret"
    assert not salt_file.exists()
    first = lab_salt({}, salt_file)
    assert len(first) == 32
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    assert lab_salt({}, salt_file) == first


# --- the local device -------------------------------------------------------------------


def test_local_device_info_live_host():
    info = local_device_info(salt="test-salt")
    assert info.tier == "host" and info.transport == "local" and info.simulated is False
    assert info.ram_bytes == psutil.virtual_memory().total
    assert info.abi == platform.machine()
    assert info.os.kernel == platform.release()
    assert info.cpu.logical_cores == psutil.cpu_count(logical=True)
    assert info.device_id == device_id(info.serial, "test-salt")
    policies = Path("/sys/devices/system/cpu/cpufreq")
    has_policies = policies.is_dir() and any(p.name.startswith("policy") for p in policies.iterdir())
    assert bool(info.cpu.clusters) == has_policies
    assert ("cpu.clusters" in info.unavailable) != has_policies

    # Every field we could not fill says why.
    d = info.to_dict()
    for key in ("serial", "manufacturer", "model", "soc_vendor", "soc_model", "soc_name", "abi"):
        if d[key] is None:
            assert info.unavailable.get(key), key
    for key, value in d["os"].items():
        if value is None:
            assert info.unavailable.get(f"os.{key}"), key

    assert DeviceInfo.from_dict(json.loads(json.dumps(d))) == info
    assert info.public_dict()["serial"] is None


def test_local_device_info_from_a_bare_tree(tmp_path):
    # An empty /sys and /etc: nothing crashes, every gap has a reason.
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(capture("android/pixel8pro_tensor_g3_proc_cpuinfo.txt"))
    info = local_device_info(proc_root=tmp_path / "proc", sys_root=tmp_path / "sys", etc_root=tmp_path / "etc", salt="x")
    assert info.cpu.model == "4x Cortex-A510 + 4x Cortex-A715 + 1x Cortex-X3"
    assert info.serial is None and "machine-id" in info.unavailable["serial"]
    assert "os.release" in info.unavailable
    assert "cpu.clusters" in info.unavailable
