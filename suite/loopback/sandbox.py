"""The bubblewrap sandbox each shell command of a loopback phone runs in.

Layout inside (see ../shared/notes/loopback-facts.md): a tmpfs root; the host's
/usr, /bin, /lib, /lib64, /etc and the Python environment read-only; the
phone's system/ (read-only), data/ and sys/ trees on /system, /data and /sys;
a fresh /proc with the profile's cpuinfo and meminfo bound over it; the
command runs as the shell uid 2000 through setpriv.

All shells of one phone share ONE pid namespace, as every adb shell of a real phone does
(`PidNamespace`: a holder process started once per phone; each shell joins it with bwrap's
`--pidns FD`), so a process one shell starts is visible in another's /proc: the sampling loop reads
a native runtime's /proc/PID/status, stat and io as it does on a phone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SHELL_UID = 2000
ANDROID_PATH = "/system/bin:/system/xbin:/usr/local/bin:/usr/bin:/bin"


def missing_tools() -> list[str]:
    """Host tools the sandbox needs that are not installed (Debian package names)."""
    need = {"bwrap": "bubblewrap", "mksh": "mksh", "toybox": "toybox", "setpriv": "util-linux"}
    return [pkg for exe, pkg in need.items() if shutil.which(exe) is None]


def python_roots() -> list[str]:
    """Folders that make up the Python environment edgebench runs in."""
    roots = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    # the source tree, for editable installs
    roots.add(str(Path(__file__).resolve().parents[3]))
    return sorted(r for r in roots if r not in ("/", "/usr") and os.path.isdir(r))


class PidNamespace:
    """The phone's one pid namespace: a holder (`sleep` under bwrap's pid-1 reaper, dying with this
    process) started once, and an open fd of its namespace that each shell's bwrap joins (`--pidns`)."""

    def __init__(self) -> None:
        read, write = os.pipe()
        try:
            self.holder = subprocess.Popen(
                [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--unshare-pid", "--ro-bind", "/", "/",
                 "--info-fd", str(write), "--", "sleep", "infinity"],
                pass_fds=(write,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True)
            os.close(write)
            write = -1
            with os.fdopen(read, "rb") as info:
                read = -1
                text = info.read(4096)  # bwrap closes it once the namespace is up
            child = json.loads(text.decode() or "{}").get("child-pid")
            if not child:
                err = self.holder.stderr.read(2000).decode(errors="replace") if self.holder.poll() is not None else ""
                raise OSError(f"bwrap gave no pid namespace: {err.strip() or text!r}")
            self.fd = os.open(f"/proc/{child}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            for fd in (read, write):
                if fd >= 0:
                    os.close(fd)

    def close(self) -> None:
        os.close(self.fd)
        self.holder.kill()
        self.holder.wait()


def bwrap_argv(state_dir: Path, command: str, env: dict[str, str] | None = None,
               interactive: bool = False, pidns_fd: int | None = None) -> list[str]:
    """argv running `command` with /system/bin/sh inside the phone's sandbox; in the pid namespace of
    `pidns_fd` when given (the phone's PidNamespace: pass the fd on to bwrap), else a new one."""
    state_dir = Path(state_dir)
    pid = ["--pidns", str(pidns_fd)] if pidns_fd is not None else ["--unshare-pid"]
    argv = [shutil.which("bwrap") or "bwrap", "--die-with-parent", *pid,
            "--unshare-ipc", "--unshare-uts", "--hostname", "localhost", "--tmpfs", "/"]
    for p in ("/usr", "/bin", "/lib", "/lib64", "/etc"):
        if os.path.exists(p):
            argv += ["--ro-bind", p, p]
    # /tmp first: the Python environment may live under /tmp (a CI clone), and a tmpfs
    # mounted after its bind would hide it
    argv += ["--tmpfs", "/tmp"]
    made = {"/tmp"}
    for r in python_roots():
        # bwrap copies the host's mode for missing parents (/root is 0700): make them 0755
        for anc in reversed(Path(r).parents):
            a = str(anc)
            if a != "/" and a not in made and not any(a == p or a.startswith(p + "/") for p in
                                                      ("/usr", "/bin", "/lib", "/lib64", "/etc")):
                argv += ["--perms", "0755", "--dir", a]
                made.add(a)
        argv += ["--ro-bind", r, r]
    argv += ["--ro-bind", str(state_dir / "system"), "/system",
             "--bind", str(state_dir / "data"), "/data",
             "--bind", str(state_dir / "sys"), "/sys",
             "--symlink", "/data/media/0", "/sdcard",
             "--proc", "/proc", "--dev", "/dev"]
    for name in ("passwd", "group"):
        f = state_dir / "etc" / name
        if f.exists():
            argv += ["--ro-bind", str(f), f"/etc/{name}"]
    for name in ("cpuinfo", "meminfo"):
        f = state_dir / "proc" / name
        if f.exists():
            argv += ["--ro-bind", str(f), f"/proc/{name}"]
    base_env = {"PATH": ANDROID_PATH, "HOME": "/", "TMPDIR": "/data/local/tmp",
                "ANDROID_DATA": "/data", "ANDROID_ROOT": "/system", "USER": "shell",
                "LOGNAME": "shell", "SHELL": "/system/bin/sh", "HOSTNAME": "localhost"}
    base_env.update(env or {})
    argv += ["--clearenv"]
    for k, v in base_env.items():
        argv += ["--setenv", k, v]
    argv += ["--chdir", "/", "--",
             "setpriv", f"--reuid={SHELL_UID}", f"--regid={SHELL_UID}", "--clear-groups",
             "--inh-caps=-all", "--bounding-set=-all", "/system/bin/sh"]
    if command:
        argv += ["-c", command]
    elif interactive:
        argv += ["-i"]
    return argv
