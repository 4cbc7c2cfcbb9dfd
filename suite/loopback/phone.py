"""Start and stop loopback phones from Python: a private adb server, the device
daemon (a child process, killable like an unplugged phone) and `adb connect`.

    with LoopbackPhone("galaxy-a15") as phone:
        d = phone.device()              # adbutils.AdbDevice
        d.shell("getprop ro.soc.model")

Everything is torn down by PID: the daemon, the sandboxed commands (through
the phone's cgroup), the adb server, the /data/local/tmp mount.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from .cgroups import PhoneCgroup, detect_layout
from .profile import EMULATED_ABIS, load_profile, materialize, remove_state
from .sandbox import missing_tools


class LoopbackUnavailable(RuntimeError):
    """This host cannot run a loopback phone (the message says why)."""


def adb_path() -> str:
    """The adb binary that adbutils ships (or $ADBUTILS_ADB_PATH)."""
    if os.environ.get("ADBUTILS_ADB_PATH"):
        return os.environ["ADBUTILS_ADB_PATH"]
    import adbutils  # lazy: the loopback daemon imports this package and needs no adbutils (~0.15 s a start)
    p = Path(adbutils.__file__).parent / "binaries" / "adb"
    if p.exists():
        return str(p)
    found = shutil.which("adb")
    if not found:
        raise LoopbackUnavailable("no adb binary (adbutils wheel without binaries/adb, none on PATH)")
    return found


#: qemu-user's registration for arm64 ELF binaries (Debian's qemu-user-static, see .ci/run)
BINFMT_AARCH64 = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
BINFMT_HINT = ("apt-get install qemu-user-static; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; "
               "register /usr/lib/binfmt.d/qemu-aarch64.conf with the F flag (.ci/run does this)")


def emulation_problem(abi: str | None) -> str | None:
    """Why a loopback phone of this ABI cannot run its native binaries here; None when it can.
    An arm64 phone needs qemu-aarch64 registered with binfmt_misc and the F flag (the interpreter
    is opened at registration, so it works inside the phone's sandbox too)."""
    if abi is None:
        return None
    if abi not in EMULATED_ABIS:
        return f"unknown loopback ABI {abi!r}; known: x86_64 (the host's, default), {', '.join(EMULATED_ABIS)}"
    try:
        lines = BINFMT_AARCH64.read_text().splitlines()
    except OSError:
        return f"an {abi} loopback phone needs qemu-aarch64 registered with binfmt_misc ({BINFMT_HINT})"
    flags = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("flags:")), "")
    if not lines or lines[0].strip() != "enabled":
        return f"qemu-aarch64 is registered with binfmt_misc but disabled ({BINFMT_HINT})"
    if "F" not in flags:
        return f"qemu-aarch64's binfmt_misc registration lacks the F flag (flags: {flags or 'none'}): {BINFMT_HINT}"
    return None


def requirements_problems(abi: str | None = None) -> list[str]:
    """Why a loopback phone (of `abi`, default the host's) cannot run here; empty when it can."""
    problems = []
    emulation = emulation_problem(abi)
    if emulation:
        problems.append(emulation)
    if os.geteuid() != 0:
        problems.append("not root (cgroups, tmpfs mount and setpriv to uid 2000 need root)")
    miss = missing_tools()
    if miss:
        problems.append("missing Debian packages: " + " ".join(miss))
    layout, reason = detect_layout()
    if layout is None:
        problems.append(reason)
    try:
        adb_path()
    except LoopbackUnavailable as e:
        problems.append(str(e))
    return problems


def free_port() -> int:
    """A free TCP port on 127.0.0.1 outside adb's emulator scan range 5555-5585."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not 5554 <= port <= 5585:
            return port


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def _kill_pid(proc: subprocess.Popen, timeout_s: float = 3.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout_s)


class AdbServer:
    """A private adb server: own port, own HOME, no USB/mDNS/emulator scanning."""

    def __init__(self, port: int | None = None, detached: bool = False,
                 home_parent: Path | None = None):
        self.detached = detached
        self.home_parent = home_parent  # a phone-owned server lives in the phone's folder
        self.port = port or free_port()
        self.adb = adb_path()
        self.proc: subprocess.Popen | None = None
        self._set_home(Path(tempfile.gettempdir()))

    def _set_home(self, home: Path) -> None:
        self.home = home
        self.env = dict(os.environ, HOME=str(home), ADB_USB="0", ADB_MDNS="0",
                        ADB_EMU="0", ANDROID_ADB_SERVER_PORT=str(self.port))
        self.env.pop("ANDROID_SERIAL", None)
        self.log = home / "adb-server.log"

    def start(self) -> "AdbServer":
        self._set_home(Path(tempfile.mkdtemp(prefix="edgebench-adbhome-", dir=self.home_parent)))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([self.adb, "-P", str(self.port), "server", "nodaemon"],
                                         env=self.env, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=None if self.detached else _die_with_parent)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LoopbackUnavailable(f"adb server exited: {self.log.read_text()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise LoopbackUnavailable("adb server did not start listening")

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run the adb CLI against this server."""
        return subprocess.run([self.adb, "-P", str(self.port), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def client(self):
        import adbutils  # lazy: see adb_path
        return adbutils.AdbClient(host="127.0.0.1", port=self.port)

    def stop(self) -> None:
        if self.proc is not None:
            _kill_pid(self.proc)
            self.proc = None
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "AdbServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class LoopbackPhone:
    """One loopback phone attached to an adb server (its own, or a shared one)."""

    def __init__(self, profile: str = "galaxy-a15", *, adb_server: AdbServer | None = None,
                 port: int | None = None, time_scale: float = 1.0, cpu_cores: float = 1.0,
                 ram_bytes: int | None = None, data_size_bytes: int = 1 << 30,
                 charging: bool | None = None, ambient_c: float | None = None,
                 workdir: Path | None = None, detached: bool = False,
                 battery_overrides: dict | None = None, abi: str | None = None, qemu_cpu: str | None = None,
                 storage: str = "tmpfs"):
        self.detached = detached  # True: the daemon outlives this process (CLI use)
        #: None: the host's ABI (x86_64); "arm64-v8a": arm64 under qemu-user, no Python (profile.EMULATED_ABIS)
        self.abi = abi
        #: the CPU qemu emulates for its binaries (e.g. "cortex-a53": no dot product, whatever cpuinfo says)
        self.qemu_cpu = qemu_cpu
        if qemu_cpu and not abi:
            raise ValueError("qemu_cpu is for an emulated ABI (abi='arm64-v8a')")
        self.profile_name = profile
        self.profile = load_profile(profile)
        self._own_server = adb_server is None
        self.server = adb_server
        self.port = port
        self.time_scale = time_scale
        self.cpu_cores = cpu_cores
        self.ram_bytes = ram_bytes or int(self.profile["ram_bytes"])
        self.data_size_bytes = data_size_bytes
        #: /data/local/tmp: "tmpfs" (size-limited, in memory) or "disk" (a folder on the host's block filesystem:
        #: a mapped model larger than the memory limit is read from storage, suite.loopback.profile.materialize)
        self.storage = storage
        self.charging = charging
        self.ambient_c = ambient_c
        #: merged over the profile's `battery` block, e.g. {"sysfs_readable": False} (SELinux-denied
        #: battery sysfs) or {"dumpsys_current_unit": None} (a dumpsys battery without a current)
        self.battery_overrides = dict(battery_overrides or {})
        self.workdir = workdir
        self.state_dir: Path | None = None
        self.daemon: subprocess.Popen | None = None
        self.cgroup: PhoneCgroup | None = None
        self.info: dict = {}

    # ---- properties --------------------------------------------------------
    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def adb_port(self) -> int:
        return self.server.port

    def adb_client(self):
        """An adbutils.AdbClient talking to this phone's adb server."""
        return self.server.client()

    def device(self):
        return self.adb_client().device(serial=self.serial)

    def adb(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """The adb CLI, aimed at this phone."""
        return self.server.run("-s", self.serial, *args, timeout=timeout)

    # ---- lifecycle ---------------------------------------------------------
    def start(self) -> "LoopbackPhone":
        problems = requirements_problems(self.abi)
        if problems:
            raise LoopbackUnavailable("; ".join(problems))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        base = Path(self.workdir) if self.workdir else Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"edgebench-loopback-{self.profile_name}-", dir=base))
        os.chmod(self.state_dir, 0o755)
        self.port = self.port or free_port()
        tag = f"edgebench-loopback-{self.port}-{uuid.uuid4().hex[:6]}"
        self.cgroup = PhoneCgroup.create(tag)
        self.cgroup.set_memory_limit(self.ram_bytes)
        self.info = materialize(self.profile, self.state_dir, ram_bytes=self.ram_bytes,
                                data_size_bytes=self.data_size_bytes, cpu_cores=self.cpu_cores,
                                time_scale=self.time_scale, serial=self.serial,
                                cgroup=self.cgroup.to_json(), charging=self.charging,
                                ambient_c=self.ambient_c, battery_overrides=self.battery_overrides,
                                abi=self.abi, qemu_cpu=self.qemu_cpu, storage=self.storage)
        self.start_daemon()
        if self.server is None:
            self.server = AdbServer(home_parent=self.state_dir).start()
        self.connect()

    def start_daemon(self) -> None:
        """(Re)start the device daemon on the phone's port: plugging the phone back in."""
        portfile = self.state_dir / "daemon.port"
        portfile.unlink(missing_ok=True)
        pkg_root = str(Path(__file__).resolve().parents[3])
        env = dict(os.environ, PYTHONPATH=pkg_root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.daemon_log = self.state_dir / "daemon.log"
        with open(self.daemon_log, "ab") as log:
            self.daemon = subprocess.Popen(
                [sys.executable, "-m", "suite.loopback.daemon", "--state-dir",
                 str(self.state_dir), "--port", str(self.port)]
                + ([] if self.detached else ["--parent-pid", str(os.getpid())]),
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + 15
        while not portfile.exists():
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise LoopbackUnavailable(f"daemon did not start: {self.daemon_log.read_text()[-800:]}")
            time.sleep(0.02)

    def connect(self, timeout_s: float = 20) -> None:
        client = self.adb_client()
        deadline = time.monotonic() + timeout_s
        while True:
            client.connect(self.serial, timeout=5)
            for info in client.list():
                if info.serial == self.serial and info.state == "device":
                    return
            if time.monotonic() > deadline:
                raise LoopbackUnavailable(f"adb never saw {self.serial} as a device")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the daemon, as if the cable were pulled (its sandboxes die with it)."""
        if self.daemon is not None and self.daemon.poll() is None:
            os.kill(self.daemon.pid, signal.SIGKILL)
            self.daemon.wait(5)

    def stop(self) -> None:
        if self.server is not None and self.port:
            try:
                self.adb_client().disconnect(self.serial)
            except Exception:
                pass
        if self.daemon is not None:
            _kill_pid(self.daemon)
            self.daemon = None
        if self.cgroup is not None:
            self.cgroup.destroy()
            self.cgroup = None
        if self.server is not None and self._own_server:
            self.server.stop()
            self.server = None
        if self.state_dir is not None:
            remove_state(self.state_dir)
            self.state_dir = None

    def __enter__(self) -> "LoopbackPhone":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- control -----------------------------------------------------------
    def _control(self, **changes) -> None:
        f = self.state_dir / "control.json"
        ctl = json.loads(f.read_text())
        for k, v in changes.items():
            if k == "faults":
                ctl.setdefault("faults", {}).update(v)
            else:
                ctl[k] = v
        tmp = f.with_suffix(".tmp")
        tmp.write_text(json.dumps(ctl))
        os.replace(tmp, f)

    def set_charging(self, on: bool) -> None:
        self._control(charging=bool(on))

    def set_time_scale(self, scale: float) -> None:
        self._control(time_scale=float(scale))

    def set_ambient(self, temp_c: float) -> None:
        self._control(ambient_c=float(temp_c))

    def set_fault(self, **faults) -> None:
        """stall=True (stop answering), refuse_push=True, kill_after_push_bytes=N (None clears)."""
        self._control(faults=faults)

    def state(self) -> dict:
        """The thermal/power model's latest state (temperatures, power, cap, battery)."""
        return json.loads((self.state_dir / "state.json").read_text())

    def wait_state(self, pred, timeout_s: float = 30, poll_s: float = 0.1) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.state()
            if pred(st) or time.monotonic() > deadline:
                return st
            time.sleep(poll_s)
