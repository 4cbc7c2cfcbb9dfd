"""An Android phone's `DeviceInfo` (the run.json `device` block) from its snapshot dict.

The record has the same shape as `suite.device.identity.local_device_info()`; fields the phone did
not give are None, with the reason under the same dotted key in `unavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from suite.device.identity import CpuCluster, CpuInfo, DeviceInfo, OsInfo, device_id

TRANSPORT_ADB = "adb"

# snapshot `unavailable` keys -> DeviceInfo's dotted keys
_KEY_MAP = {
    "android_release": "os.android_release", "sdk": "os.sdk", "fingerprint": "os.fingerprint",
    "cpu_clusters": "cpu.clusters", "cpu_clusters.max_khz": "cpu.clusters.max_khz",
}
_DEVICE_KEYS = ("manufacturer", "model", "soc_vendor", "soc_model", "soc_name", "tier", "ram_bytes", "abi")


def android_device_info(
    snapshot: Mapping[str, Any],
    *,
    serial: str,
    salt: str,
    transport: str = TRANSPORT_ADB,
    simulated: bool = False,
    kernel: str | None = None,
) -> DeviceInfo:
    """`kernel` is `uname -r` from the live phone (getprop has no reliable kernel key)."""
    unavailable = {}
    for key, why in snapshot.get("unavailable", {}).items():
        if key in _DEVICE_KEYS or key in _KEY_MAP:
            unavailable[_KEY_MAP.get(key, key)] = why
    clusters = tuple(
        CpuCluster(c["policy"], tuple(c["cpus"]), c.get("max_khz"), c.get("governor"))
        for c in snapshot.get("cpu_clusters", []) if c.get("policy")
    )
    kernel = kernel or snapshot.get("kernel")
    if kernel is None:
        unavailable["os.kernel"] = "not in the snapshot (`uname -r` not recorded)"
    cpu = snapshot.get("cpu", {})
    logical = cpu.get("logical_cores")
    if logical is None:
        unavailable["cpu.logical_cores"] = "no per-core blocks in /proc/cpuinfo"
    return DeviceInfo(
        device_id=device_id(serial, salt),
        serial=serial,
        manufacturer=snapshot.get("manufacturer"),
        model=snapshot.get("model"),
        soc_vendor=snapshot.get("soc_vendor"),
        soc_model=snapshot.get("soc_model"),
        soc_name=snapshot.get("soc_name"),
        tier=snapshot.get("tier") or "unknown",
        ram_bytes=snapshot.get("ram_bytes"),
        os=OsInfo(
            name="Android",
            release=snapshot.get("android_release"),
            android_release=snapshot.get("android_release"),
            sdk=snapshot.get("sdk"),
            fingerprint=snapshot.get("fingerprint"),
            kernel=kernel,
        ),
        abi=snapshot.get("abi"),
        cpu=CpuInfo(
            model=cpu.get("cores") or snapshot.get("soc_name"),
            physical_cores=logical,  # no SMT on phone cores
            logical_cores=logical,
            clusters=clusters,
        ),
        transport=transport,
        simulated=simulated,
        unavailable=dict(sorted(unavailable.items())),
        soc_match=snapshot.get("soc_match"),
    )
