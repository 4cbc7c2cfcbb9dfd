"""Device profiles and the per-phone state folder they are laid out in.

A profile is `profiles/<name>/profile.json` plus verbatim captures in
`profiles/<name>/captures/` (each with its `# source/# device/# command`
header, stripped when served). `materialize()` lays a profile out as a state
folder: system/ (sh = mksh, toybox applets, getprop, dumpsys), data/ (with a
size-limited /data/local/tmp), sys/ (battery, thermal zones, cpufreq, ODPM)
and proc/{cpuinfo,meminfo}. The thermal model keeps sys/ and the dumpsys
answers current while the phone runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .cgroups import PhoneCgroup
from .sandbox import SHELL_UID

PROFILES_DIR = Path(__file__).parent / "profiles"
LOOPBACK_PROPS = {"ro.edgebench.loopback": "1"}


def list_profiles() -> list[str]:
    return sorted(p.parent.name for p in PROFILES_DIR.glob("*/profile.json"))


def load_profile(name: str) -> dict:
    f = PROFILES_DIR / name / "profile.json"
    if not f.exists():
        raise KeyError(f"unknown loopback profile {name!r}; known: {', '.join(list_profiles())}")
    prof = json.loads(f.read_text())
    prof["_dir"] = str(f.parent)
    return prof


def capture_text(prof: dict, rel: str) -> str:
    """A capture with its leading '# ...' provenance header removed."""
    lines = (Path(prof["_dir"]) / rel).read_text().splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].startswith("# "):
        i += 1
    return "".join(lines[i:])


#: ABIs a loopback phone can take: the host's (x86_64, native) or arm64 under qemu-user (binfmt_misc)
EMULATED_ABIS = {"arm64-v8a": {"ro.product.cpu.abi": "arm64-v8a", "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
                               "ro.product.cpu.abilist64": "arm64-v8a", "ro.product.cpu.abilist32": "armeabi-v7a,armeabi",
                               "ro.edgebench.loopback.emulated": "qemu-aarch64"}}


def props(prof: dict, abi: str | None = None) -> dict[str, str]:
    """getprop answers: the capture (or generated set), loopback renames, host ABI, marker.

    `abi="arm64-v8a"`: a phone as most are, arm64 and without Python: its native binaries run
    under qemu-aarch64 (binfmt_misc), and there is no interpreter for edgebench's runner."""
    out: dict[str, str] = {}
    if prof.get("getprop"):
        for line in capture_text(prof, prof["getprop"]).splitlines():
            m = re.match(r"^\[(.+?)\]: \[(.*)\]$", line.rstrip("\r"))
            if m:
                out[m.group(1)] = m.group(2)
    out.update(prof.get("props", {}))
    out.update(prof.get("props_override", {}))
    out.update({"ro.product.cpu.abi": "x86_64", "ro.product.cpu.abilist": "x86_64",
                "ro.product.cpu.abilist64": "x86_64", "ro.product.cpu.abilist32": ""})
    out.update(LOOPBACK_PROPS)
    out["ro.edgebench.loopback.profile"] = prof["name"]
    out["ro.edgebench.loopback.synthesized"] = "1" if prof.get("synthesized") else "0"
    # the sandbox binds the host's Python environment read-only: this is its interpreter,
    # so edgebench's device-side runner can run inside the phone (a phone has no Python)
    out["ro.edgebench.python"] = sys.executable
    if abi is not None:
        out.update(EMULATED_ABIS[abi])
        del out["ro.edgebench.python"]  # a stock phone has no Python
    out["ro.serialno"] = out.get("ro.serialno", "loopback")
    return dict(sorted(out.items()))


def cpuinfo(prof: dict) -> str:
    if prof.get("cpuinfo"):
        return capture_text(prof, prof["cpuinfo"])
    spec = prof["cpus"]
    feats = spec.get("features")
    if not feats and spec.get("features_from"):
        m = re.search(r"^Features\s*:\s*(.*)$", capture_text(prof, spec["features_from"]), re.M)
        feats = m.group(1).strip() if m else ""
    blocks, n = [], 0
    for part, count, _name in spec["spec"]:
        for _ in range(count):
            blocks.append(f"processor\t: {n}\nBogoMIPS\t: {spec.get('bogomips', '26.00')}\n"
                          f"Features\t: {feats}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
                          f"CPU variant\t: 0x1\nCPU part\t: {part}\nCPU revision\t: 0\n")
            n += 1
    return "\n".join(blocks) + "\n"


def meminfo(prof: dict, ram_bytes: int) -> str:
    """The captured /proc/meminfo, every kB field scaled when RAM differs from the capture."""
    text = capture_text(prof, prof["meminfo"])
    m = re.search(r"^MemTotal:\s+(\d+) kB", text, re.M)
    total_kb = int(m.group(1)) if m else 0
    want_kb = ram_bytes // 1024
    if not total_kb or abs(total_kb - want_kb) < 1024:
        return text
    f = want_kb / total_kb

    def scale(mm: re.Match) -> str:
        key, pad, val = mm.group(1), mm.group(2), int(mm.group(3))
        if key.startswith(("Vmalloc", "Swap", "CommitLimit", "Committed_AS")):
            return mm.group(0)
        new = str(int(val * f))
        return f"{key}:{' ' * max(1, len(pad) + len(str(val)) - len(new))}{new} kB"
    return re.sub(r"^([^:\n]+):(\s+)(\d+) kB", scale, text, flags=re.M)


def _write(path: Path, text: str, mode: int = 0o444, uid: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.chown(tmp, uid, uid)
    os.replace(tmp, path)


GETPROP_SH = r"""#!/system/bin/sh
# loopback getprop: answers from the profile's captured properties
f=/system/etc/loopback/getprop.txt
if [ $# -eq 0 ]; then cat "$f"; exit 0; fi
while IFS= read -r line; do
  case "$line" in
    "[$1]: ["*) v=${line#"[$1]: ["}; echo "${v%]}"; exit 0 ;;
  esac
done < "$f"
echo "$2"
"""

DUMPSYS_SH = r"""#!/system/bin/sh
# loopback dumpsys: answers from verbatim captures, kept current by the thermal model
d=/system/etc/loopback/dumpsys
if [ $# -eq 0 ] || [ "$1" = -l ]; then
  echo "Currently running services:"
  for f in "$d"/*.txt; do n=${f##*/}; echo "  ${n%.txt}"; done
  exit 0
fi
svc=$1; shift
if [ ! -f "$d/$svc.txt" ]; then echo "Can't find service: $svc" >&2; exit 0; fi
if [ "$svc" = battery ] && [ "$1" = get ] && [ -n "$2" ]; then
  while IFS= read -r line; do
    case "$line" in "  $2: "*) echo "${line#"  $2: "}"; exit 0 ;; esac
  done < "$d/battery.txt"
  exit 0
fi
cat "$d/$svc.txt"
"""


# `settings` and `cmd` (issue 4, devices prepare/restore): a phone's SettingsProvider is a
# system service; here a small persisted store stands in for it: one `key=value` file per
# namespace under /data/loopback/settings (host: <state>/data/loopback/settings). Values survive
# across commands (and an unplug), not across phones. Unlike a phone, the shell user can read
# the store directly; edgebench never does. Test hook: `ns/key` lines in `denied` make `put`
# and `delete` of those keys fail as a phone without WRITE_SECURE_SETTINGS does (exit 255).
SETTINGS_DIR = "data/loopback/settings"
#: what a freshly booted phone reports (AOSP defaults; screen_brightness as on the A15 capture's class)
DEFAULT_SETTINGS = {
    "global": {"stay_on_while_plugged_in": "0", "airplane_mode_on": "0",
               "adaptive_battery_management_enabled": "1"},
    "system": {"screen_brightness_mode": "1", "screen_brightness": "102", "screen_off_timeout": "30000"},
    "secure": {},
}

SETTINGS_SH = r"""#!/system/bin/sh
# loopback settings: get/put/delete/list on a persisted key=value store (see profile.py)
d=/data/loopback/settings
if [ "$1" = --user ]; then shift 2; fi
verb=$1 ns=$2 key=$3
case "$verb" in get|put|delete|list) ;; *)
  echo "usage:  settings [--user <USER_ID> | current] get namespace key" >&2
  echo "        settings [--user <USER_ID> | current] put namespace key value" >&2
  echo "        settings [--user <USER_ID> | current] delete namespace key" >&2
  echo "        settings [--user <USER_ID> | current] list namespace" >&2
  exit 255 ;;
esac
case "$ns" in global|system|secure) ;; *) echo "Invalid namespace '$ns'" >&2; exit 255 ;; esac
f=$d/$ns
[ -f "$f" ] || : >"$f"
if [ "$verb" = list ]; then cat "$f"; exit 0; fi
if [ -z "$key" ]; then echo "Missing key" >&2; exit 255; fi
if [ "$verb" = get ]; then
  while IFS= read -r line; do
    case "$line" in "$key="*) echo "${line#*=}"; exit 0 ;; esac
  done <"$f"
  echo null; exit 0
fi
if [ -f "$d/denied" ]; then
  while IFS= read -r line; do
    if [ "$line" = "$ns/$key" ]; then
      echo "Security exception: Permission denial: writing to settings requires:android.permission.WRITE_SECURE_SETTINGS" >&2
      exit 255
    fi
  done <"$d/denied"
fi
if [ "$verb" = put ] && [ $# -lt 4 ]; then echo "Missing value" >&2; exit 255; fi
n=0
: >"$f.tmp"
while IFS= read -r line; do
  case "$line" in "$key="*) n=1 ;; *) echo "$line" >>"$f.tmp" ;; esac
done <"$f"
if [ "$verb" = put ]; then echo "$key=$4" >>"$f.tmp"; fi
mv "$f.tmp" "$f"
if [ "$verb" = delete ]; then echo "Deleted $n rows"; fi
exit 0
"""

CMD_SH = r"""#!/system/bin/sh
# loopback cmd: only `cmd connectivity airplane-mode [enable|disable]` (Android 11+), on the
# settings store; any other service is missing, as `cmd` says on a phone
if [ "$1" = connectivity ] && [ "$2" = airplane-mode ]; then
  case "$3" in
    enable) exec settings put global airplane_mode_on 1 ;;
    disable) exec settings put global airplane_mode_on 0 ;;
    "") if [ "$(settings get global airplane_mode_on)" = 1 ]; then echo enabled; else echo disabled; fi; exit 0 ;;
    *) echo "Error: Invalid argument: $3" >&2; exit 255 ;;
  esac
fi
echo "cmd: Can't find service: $1" >&2
exit 20
"""


def write_settings_store(state_dir: Path, overrides: dict | None = None) -> None:
    """The initial settings of a loopback phone (AOSP defaults + the profile's `settings`)."""
    d = Path(state_dir) / SETTINGS_DIR
    d.mkdir(parents=True, exist_ok=True)
    for parent in (d.parent, d):
        os.chown(parent, SHELL_UID, SHELL_UID)
        os.chmod(parent, 0o700)
    for ns, values in DEFAULT_SETTINGS.items():
        merged = {**values, **(overrides or {}).get(ns, {})}
        _write(d / ns, "".join(f"{k}={v}\n" for k, v in merged.items()), 0o600, SHELL_UID)


def toybox_applets() -> list[str]:
    try:
        out = subprocess.run(["toybox"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return []
    return [a for a in out.split() if a not in ("sh", "toysh", "getprop", "dumpsys", "toybox", "settings", "cmd")]


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem `path` is on (/proc/self/mounts: the longest mount point above it)."""
    best, kind = "", None
    target = os.path.realpath(path)
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3:
            mnt = parts[1].replace("\\040", " ")
            if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, parts[2]
    return kind


def materialize(prof: dict, state_dir: Path, *, ram_bytes: int, data_size_bytes: int,
                cpu_cores: float, time_scale: float, serial: str, cgroup: dict | None,
                charging: bool | None = None, ambient_c: float | None = None,
                battery_overrides: dict | None = None, abi: str | None = None,
                qemu_cpu: str | None = None, storage: str = "tmpfs") -> dict:
    """Lay the profile out under state_dir and write phone.json; returns its content. `storage`: what
    /data/local/tmp is, "tmpfs" (size-limited, in memory) or "disk" (a folder on the host's own block
    filesystem: a memory-mapped file there is read from storage when its pages are evicted, as on a phone's
    flash; no size limit of its own)."""
    sd = Path(state_dir)
    for d in ("system/bin", "system/etc/loopback/dumpsys", "data/local/tmp", "data/media/0",
              "sys", "proc", "root"):
        (sd / d).mkdir(parents=True, exist_ok=True)
    os.chmod(sd / "data", 0o771)
    os.chmod(sd / "data/local", 0o751)
    os.chmod(sd / "system", 0o755)
    bin_ = sd / "system/bin"
    os.symlink("/usr/bin/mksh", bin_ / "sh")
    for a in toybox_applets():
        if not (bin_ / a).exists():
            os.symlink("/usr/bin/toybox", bin_ / a)
    _write(bin_ / "getprop", GETPROP_SH, 0o755)
    _write(bin_ / "dumpsys", DUMPSYS_SH, 0o755)
    _write(bin_ / "settings", SETTINGS_SH, 0o755)
    _write(bin_ / "cmd", CMD_SH, 0o755)
    write_settings_store(sd, prof.get("settings"))
    p = props(prof, abi)
    p["ro.serialno"] = serial
    _write(sd / "system/etc/loopback/getprop.txt", "".join(f"[{k}]: [{v}]\n" for k, v in p.items()))
    _write(sd / "system/build.prop", "".join(f"{k}={v}\n" for k, v in p.items()), 0o644)
    _write(sd / "proc/cpuinfo", cpuinfo(prof))
    # the shell user, so `id` prints uid=2000(shell) as on a phone
    for name, line in (("passwd", f"shell:x:{SHELL_UID}:{SHELL_UID}:shell:/:/system/bin/sh\n"),
                       ("group", f"shell:x:{SHELL_UID}:\n")):
        host = Path("/etc", name).read_text() if Path("/etc", name).exists() else ""
        _write(sd / "etc" / name, host + line, 0o444)
    _write(sd / "proc/meminfo", meminfo(prof, ram_bytes))
    # /data/local/tmp: a size-limited tmpfs when we may mount, else a plain folder
    tmp = sd / "data/local/tmp"
    mounts = []
    if storage == "disk":
        fs = filesystem_type(tmp)
        if fs in ("tmpfs", "ramfs", None):
            raise ValueError(f"storage 'disk' needs the phone's folder on a block filesystem; {tmp} is on "
                             f"{fs or 'an unknown filesystem'} (give the phone a workdir on a disk)")
    else:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            f"size={data_size_bytes},mode=0771,uid={SHELL_UID},gid={SHELL_UID}",
                            "edgebench-loopback", str(tmp)], capture_output=True, text=True)
        if r.returncode == 0:
            mounts.append(str(tmp))
    os.chown(tmp, SHELL_UID, SHELL_UID)
    os.chmod(tmp, 0o771)
    for d in (sd / "data/media", sd / "data/media/0"):
        os.chown(d, SHELL_UID, SHELL_UID)
        os.chmod(d, 0o771)
    th = prof["thermal"]
    batt = {**prof["battery"], **(battery_overrides or {})}
    if charging is not None:
        batt["charging"] = charging
    info = {
        "profile": prof["name"], "synthesized": bool(prof.get("synthesized")),
        "description": prof.get("description", ""), "provenance": prof.get("provenance", {}),
        "serial": serial, "banner": prof["banner"], "ram_bytes": ram_bytes,
        "profile_ram_bytes": prof.get("ram_bytes"), "data_size_bytes": data_size_bytes,
        "data_tmp_is_tmpfs": bool(mounts), "storage": storage, "mounts": mounts, "cgroup": cgroup,
        # the emulated CPU of an arm64 phone's binaries (qemu-user reads QEMU_CPU; default: `max`)
        "env": {"QEMU_CPU": qemu_cpu} if qemu_cpu else {},
        "model": {
            "time_scale": time_scale, "cpu_cores": cpu_cores,
            "ambient_c": th["ambient_c"] if ambient_c is None else ambient_c,
            "thermal": th, "power": prof["power"], "battery": batt,
            "cpus": prof["cpus"], "odpm": prof.get("odpm"),
            "dumpsys_thermal": capture_text(prof, th["dumpsys"]),
            "dumpsys_battery": capture_text(prof, batt["dumpsys"]),
            "uevent_template": capture_text(prof, batt["uevent_template"]) if batt.get("uevent_template") else None,
            "odpm_template": capture_text(prof, prof["odpm"]["template"]) if prof.get("odpm") else None,
        },
    }
    (sd / "phone.json").write_text(json.dumps(info, indent=1))
    (sd / "control.json").write_text(json.dumps({"charging": batt.get("charging", False), "faults": {}}))
    return info


def remove_state(state_dir: Path) -> None:
    """Undo `materialize`: kill what is left in the phone's cgroup, drop the groups,
    unmount /data/local/tmp and delete the folder."""
    sd = Path(state_dir)
    try:
        info = json.loads((sd / "phone.json").read_text())
    except (OSError, ValueError):
        info = {}
    if info.get("cgroup"):
        PhoneCgroup.from_json(info["cgroup"]).destroy()
    for m in info.get("mounts", []):
        subprocess.run(["umount", "-l", m], capture_output=True)
    shutil.rmtree(sd, ignore_errors=True)
