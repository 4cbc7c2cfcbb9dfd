"""The loopback phone, end to end: real adb server, real adbutils, real bubblewrap.

Run: .venv/bin/pytest tests/test_loopback.py (-m "not slow" skips the 200 MB round trip).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import adbutils
import pytest

from suite.loopback import LoopbackPhone

pytestmark = pytest.mark.loopback

PY = sys.executable  # the venv's python, bound read-only into the sandbox


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cg_pids(phone: LoopbackPhone) -> set[int]:
    return phone.cgroup.pids() if phone.cgroup else set()


# ---- the daemon through adb --------------------------------------------------

def test_adb_devices_lists_phone(loopback_phone):
    out = loopback_phone.server.run("devices", "-l").stdout
    assert re.search(rf"^{re.escape(loopback_phone.serial)}\s+device\b", out, re.M), out
    serials = [d.serial for d in loopback_phone.adb_client().device_list()]
    assert loopback_phone.serial in serials


@pytest.mark.parametrize("loopback_phone,soc", [("galaxy-a15", "MT6789"), ("qcom-flagship", "SM8550"),
                                                ("pixel-tensor", "Tensor G3")],
                         indirect=["loopback_phone"])
def test_getprop_identity(loopback_phone, soc):
    d = loopback_phone.device()
    assert d.getprop("ro.soc.model") == soc
    assert d.getprop("ro.product.cpu.abi") == "x86_64"
    assert d.getprop("ro.edgebench.loopback") == "1"
    assert "Loopback" in d.getprop("ro.product.model")
    assert "Loopback" in d.prop.model


def test_shell_v2_exit_codes_and_streams(loopback_phone):
    d = loopback_phone.device()
    r = d.shell2("exit 3", v2=True)
    assert r.returncode == 3
    r = d.shell2("echo out; echo err >&2; exit 0", v2=True)
    assert (r.returncode, r.stdout, r.stderr) == (0, "out\n", "err\n")
    assert d.shell2("kill -9 $$", v2=True).returncode == 137
    assert loopback_phone.adb("shell", "exit 5").returncode == 5
    assert loopback_phone.adb("shell", "echo hi").stdout == "hi\n"
    # plain shell: (no v2) mixes stdout and stderr
    assert d.shell("echo a; echo b >&2") == "a\nb"


def test_adb_shell_stdin(loopback_phone):
    r = loopback_phone.server.run("-s", loopback_phone.serial, "shell", "cat; echo done")
    assert r.stdout == "done\n"  # stdin closed at once (no tty): cat ends
    p = subprocess.run([loopback_phone.server.adb, "-P", str(loopback_phone.adb_port), "-s",
                        loopback_phone.serial, "shell", "tr a-z A-Z"], input="hello\n",
                       capture_output=True, text=True, env=loopback_phone.server.env, timeout=30)
    assert p.stdout == "HELLO\n"


def test_long_command_streams_lines_as_produced(loopback_phone):
    d = loopback_phone.device()
    t0 = time.monotonic()
    seen = []
    conn = d.shell("for i in 1 2 3 4; do echo line$i; sleep 0.4; done", stream=True)
    buf = b""
    with conn:
        while True:
            chunk = conn.conn.recv(100)  # AdbConnection.read(n) waits for all n bytes
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                seen.append((line.decode(), time.monotonic() - t0))
    assert [s[0] for s in seen] == ["line1", "line2", "line3", "line4"]
    assert seen[0][1] < 1.0 and seen[-1][1] > 1.1, seen


def test_sandbox_is_android_shaped(loopback_phone):
    d = loopback_phone.device()
    assert d.shell("id -u") == "2000"
    assert "uid=2000(shell)" in d.shell("id")
    assert "MIRBSD KSH" in d.shell("echo $KSH_VERSION")
    assert d.shell("readlink /system/bin/sh") == "/usr/bin/mksh"
    assert d.shell2("touch /system/x", v2=True).returncode != 0
    assert d.shell2("touch /usr/x", v2=True).returncode != 0
    assert d.shell2("echo ok > /data/local/tmp/f && cat /data/local/tmp/f", v2=True).stdout == "ok\n"
    assert "MemTotal:        3754184 kB" in d.shell("cat /proc/meminfo")
    assert d.shell("grep -c ^processor /proc/cpuinfo") == "8"
    # the A15's thermal zones are listed but not readable by the shell uid (as captured)
    assert "thermal_zone21" in d.shell("ls /sys/class/thermal/")
    r = d.shell2("grep . /sys/class/thermal/thermal_zone*/temp", v2=True)
    assert r.returncode == 2 and "No such file or directory" in r.stderr
    # a device-side Python runner works
    assert d.shell(f"{PY} -c 'print(6*7)'") == "42"


def test_dumpsys_from_captures(loopback_phone):
    d = loopback_phone.device()
    th = d.shell("dumpsys thermalservice")
    assert th.startswith("IsStatusOverride: false")
    assert "ThermalHAL AIDL 3  connected: yes" in th
    assert re.search(r"Thermal Status: 0", th)
    b = d.battery()  # adbutils parses `dumpsys battery`
    assert b.level == 99 and 15 < b.temperature < 40
    assert "current now:" in d.shell("dumpsys battery")
    assert d.shell("dumpsys battery get level") == "99"
    assert "Can't find service: nosuch" in d.shell("dumpsys nosuch")


# ---- sync --------------------------------------------------------------------

def test_sync_stat_list_exists(loopback_phone):
    d = loopback_phone.device()
    assert d.sync.exists("/data/local/tmp")
    assert not d.sync.exists("/data/local/tmp/nope")
    d.sync.push(b"hello", "/data/local/tmp/sub/dir/h.txt")  # SEND creates parent dirs
    st = d.sync.stat("/data/local/tmp/sub/dir/h.txt")
    assert st.size == 5
    assert [e.path for e in d.sync.list("/data/local/tmp/sub/dir")] == ["h.txt"] or \
        "h.txt" in [e.path for e in d.sync.list("/data/local/tmp/sub/dir")]
    assert d.sync.read_text("/data/local/tmp/sub/dir/h.txt") == "hello"
    assert d.shell("ls -ln /data/local/tmp/sub/dir/h.txt").split()[2] == "2000"
    assert d.shell("stat -c %a /data/local/tmp/sub/dir/h.txt") == "777"  # 0755: user bits copied (adbd)
    with pytest.raises(adbutils.AdbError):
        d.sync.push(b"x", "/system/bin/evil")


def test_adb_cli_tree_push_pull_and_ls(loopback_phone, tmp_path):
    """The CLI paths: directory push (SEND + STA2), directory pull and `adb ls` (LIS2)."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("A")
    (tree / "sub" / "b.txt").write_text("BB")
    r = loopback_phone.adb("push", str(tree), "/data/local/tmp/")
    assert r.returncode == 0 and "2 files pushed" in r.stdout + r.stderr, r
    r = loopback_phone.adb("pull", "/data/local/tmp/tree", str(tmp_path / "back"))
    assert r.returncode == 0 and "2 files pulled" in r.stdout + r.stderr, r
    assert (tmp_path / "back" / "sub" / "b.txt").read_text() == "BB"
    ls = loopback_phone.adb("ls", "/data/local/tmp/tree").stdout
    assert re.search(r"^000041[0-9a-f]{2} [0-9a-f]{8} [0-9a-f]{8} sub$", ls, re.M), ls
    assert re.search(r"^000081[0-9a-f]{2} 00000001 [0-9a-f]{8} a.txt$", ls, re.M), ls
    r = loopback_phone.adb("pull", "/data/local/tmp/nothere", str(tmp_path / "x"))
    assert r.returncode != 0 and "No such file or directory" in r.stderr


def _roundtrip(phone, tmp_path, size_mb):
    src = tmp_path / "src.bin"
    with open(src, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(size_mb):
            f.write(block[i:] + block[:i])
    d = phone.device()
    t0 = time.monotonic()
    assert d.sync.push(str(src), "/data/local/tmp/a.bin") == size_mb << 20
    t1 = time.monotonic()
    d.sync.pull("/data/local/tmp/a.bin", str(tmp_path / "a.back"))
    t2 = time.monotonic()
    r = phone.adb("push", str(src), "/data/local/tmp/b.bin")
    assert r.returncode == 0, r.stderr
    t3 = time.monotonic()
    r = phone.adb("pull", "/data/local/tmp/b.bin", str(tmp_path / "b.back"))
    assert r.returncode == 0, r.stderr
    t4 = time.monotonic()
    want = _sha(src)
    assert _sha(tmp_path / "a.back") == want
    assert _sha(tmp_path / "b.back") == want
    assert d.shell("sha256sum /data/local/tmp/b.bin").split()[0] == want
    mb = size_mb * 1.048576
    print(f"\n{size_mb} MiB: adbutils push {mb / (t1 - t0):.0f} MB/s, pull {mb / (t2 - t1):.0f} MB/s; "
          f"adb push {mb / (t3 - t2):.0f} MB/s, pull {mb / (t4 - t3):.0f} MB/s")


def test_push_pull_roundtrip_50mb(loopback_phone, tmp_path):
    _roundtrip(loopback_phone, tmp_path, 50)


@pytest.mark.slow
def test_push_pull_roundtrip_200mb(loopback_phone_factory, tmp_path):
    phone = loopback_phone_factory("galaxy-a15", data_size_bytes=600 << 20)
    _roundtrip(phone, tmp_path, 200)


# ---- several phones ------------------------------------------------------------

def test_several_phones_on_one_server(loopback_phone_factory):
    a = loopback_phone_factory("galaxy-a15")
    b = loopback_phone_factory("pixel-tensor")
    assert a.port != b.port
    serials = {d.serial for d in a.adb_client().device_list()}
    assert {a.serial, b.serial} <= serials
    assert a.device().getprop("ro.soc.model") == "MT6789"
    assert b.device().getprop("ro.soc.model") == "Tensor G3"
    assert b.device().shell("grep -c ^processor /proc/cpuinfo") == "9"


# ---- heat, power and memory act for real ---------------------------------------

BUSY = "while :; do :; done"


def _zone0_c(d) -> float:
    return int(d.shell("cat /sys/class/thermal/thermal_zone0/temp")) / 1000


def test_idle_phone_does_not_warm(loopback_phone_factory):
    phone = loopback_phone_factory("qcom-flagship", time_scale=60)
    d = phone.device()
    t0 = _zone0_c(d)
    time.sleep(2.0)  # two phone-minutes
    assert abs(_zone0_c(d) - t0) < 0.5
    assert phone.state()["severity"] == 0


def test_thermal_zone_rises_under_load_and_falls_at_idle(loopback_phone_factory):
    phone = loopback_phone_factory("qcom-flagship", time_scale=30)
    d = phone.device()
    idle = _zone0_c(d)
    d.shell2(f"timeout 2 sh -c '{BUSY}'", v2=True)
    hot = _zone0_c(d)
    assert hot > idle + 5, (idle, hot)
    time.sleep(2.0)
    cooled = _zone0_c(d)
    assert cooled < hot - 3, (hot, cooled)
    st = phone.state()
    assert st["util"] < 0.2


def _loop_rate(d, seconds=0.8) -> tuple[float, float]:
    """(loop iterations per wall second, CPU seconds per wall second) of a busy loop in the phone."""
    code = ("import time\nn=0\nt=time.perf_counter()\nc=time.process_time()\n"
            "while time.perf_counter()-t<%s:\n    n+=1\nw=time.perf_counter()-t\n"
            "print(n/w, (time.process_time()-c)/w)" % seconds)
    out = d.shell2(f"{PY} -c '{code}'", v2=True)
    assert out.returncode == 0, out
    rate, share = out.stdout.split()
    return float(rate), float(share)


def _assert_throttled(cold: tuple[float, float], hot: tuple[float, float], cap: float) -> None:
    """cold/hot = (work per wall second, CPU seconds per wall second).

    The quota bounds the CPU share whatever the host does; the wall-clock rate
    drop shows only when the unthrottled run got clearly more CPU than the cap
    (on a busy shared host it may not have)."""
    assert hot[1] <= cap + 0.08, (cold, hot, cap)
    if cold[1] > cap + 0.25:
        assert hot[0] < cold[0] * 0.85, (cold, hot, cap)


def test_throttling_really_slows_the_phone(loopback_phone_factory):
    phone = loopback_phone_factory("galaxy-a15", time_scale=1)
    d = phone.device()
    cold = _loop_rate(d)
    assert phone.state()["severity"] == 0
    phone.set_ambient(34)  # a hot day: the load pushes SKIN past SEVERE (42 C, as captured)
    phone.set_time_scale(100)
    load = threading.Thread(target=d.shell2, args=(f"timeout 4 sh -c '{BUSY}'",), kwargs={"v2": True})
    load.start()
    st = phone.wait_state(lambda st: st["severity"] >= 3, timeout_s=4)
    phone.set_time_scale(0.001)  # freeze the story (and the cap) while we measure
    load.join()
    assert st["severity"] >= 3, st
    st = phone.state()
    assert st["severity"] >= 3 and st["cap"] <= 0.5, st
    hot = _loop_rate(d)
    print(f"\nloop rate cold {cold[0]:.0f}/s (cpu share {cold[1]:.2f}), at severity "
          f"{st['severity']} (cap {st['cap']}) {hot[0]:.0f}/s (cpu share {hot[1]:.2f})")
    _assert_throttled(cold, hot, st["cap"])
    dumpsys = d.shell("dumpsys thermalservice")
    assert f"Thermal Status: {st['severity']}" in dumpsys
    assert re.search(rf"mName=SKIN, mStatus={st['severity']}", dumpsys)
    pol = int(d.shell("cat /sys/devices/system/cpu/cpufreq/policy6/scaling_max_freq"))
    assert pol == int(2200000 * st["cap"])
    quota = int(Path(phone.cgroup.dirs["cpu"], "cpu.cfs_quota_us").read_text()) \
        if phone.cgroup.layout == "v1" else None
    assert quota is None or quota == int(100000 * st["cap"])


def _tiny_onnx(path: Path) -> None:
    """A two-layer MLP: one run stands in for one decode step."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((512, 2048), dtype=np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((2048, 512), dtype=np.float32), "w2")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 512])], [w1, w2])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))


DECODE = (
    "import time, numpy as np, onnxruntime as ort\n"
    "o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1\n"
    "s = ort.InferenceSession('/data/local/tmp/tiny.onnx', o, providers=['CPUExecutionProvider'])\n"
    "x = {'x': np.ones((1, 512), np.float32)}\n"
    "s.run(None, x)\n"
    "n = 0; t = time.perf_counter(); c = time.process_time()\n"
    "while time.perf_counter() - t < 1.0:\n"
    "    s.run(None, x); n += 1\n"
    "w = time.perf_counter() - t\n"
    "print(n / w, (time.process_time() - c) / w)\n")


def test_onnxruntime_steps_per_s_drop_after_trip(loopback_phone_factory, tmp_path):
    """A real inference engine inside the phone slows down once the governor trips."""
    pytest.importorskip("onnxruntime")
    phone = loopback_phone_factory("galaxy-a15", time_scale=1)
    d = phone.device()
    _tiny_onnx(tmp_path / "tiny.onnx")
    d.sync.push(str(tmp_path / "tiny.onnx"), "/data/local/tmp/tiny.onnx")
    d.sync.push(DECODE.encode(), "/data/local/tmp/decode.py")

    def steps_per_s() -> tuple[float, float]:
        r = d.shell2(f"{PY} /data/local/tmp/decode.py", v2=True)
        assert r.returncode == 0, r
        rate, share = r.stdout.split()
        return float(rate), float(share)
    cold = steps_per_s()
    phone.set_ambient(34)
    phone.set_time_scale(100)
    load = threading.Thread(target=d.shell2, args=(f"timeout 4 sh -c '{BUSY}'",), kwargs={"v2": True})
    load.start()
    st = phone.wait_state(lambda st: st["severity"] >= 3, timeout_s=4)
    phone.set_time_scale(0.001)
    load.join()
    assert st["severity"] >= 3, st
    hot = steps_per_s()
    print(f"\nonnxruntime steps/s: cold {cold[0]:.0f} (cpu share {cold[1]:.2f}), throttled "
          f"(cap {phone.state()['cap']}) {hot[0]:.0f} (cpu share {hot[1]:.2f})")
    _assert_throttled(cold, hot, phone.state()["cap"])


def test_process_over_ram_is_killed_137(loopback_phone_factory):
    phone = loopback_phone_factory("galaxy-a15", ram_bytes=192 << 20)
    d = phone.device()
    assert "MemTotal:         196608 kB" in d.shell("cat /proc/meminfo")  # scaled to the limit
    ok = d.shell2(f"{PY} -c 'b = b\"x\" * (48 << 20); print(len(b))'", v2=True)
    assert ok.returncode == 0
    big = d.shell2(f"{PY} -c 'b = b\"x\" * (400 << 20); print(len(b))'", v2=True)
    assert big.returncode == 137, big


@pytest.mark.parametrize("profile,charging_sign,dumpsys_has_current",
                         [("galaxy-a15", +1, True), ("qcom-flagship", -1, False)])
def test_battery_units_sign_and_charging_switch(loopback_phone_factory, profile, charging_sign,
                                                dumpsys_has_current):
    phone = loopback_phone_factory(profile, time_scale=10, charging=False)
    d = phone.device()
    cur = int(d.shell("cat /sys/class/power_supply/battery/current_now"))
    assert cur * charging_sign < 0 and abs(cur) > 16000  # discharging; uA
    assert d.shell("cat /sys/class/power_supply/battery/status") == "Discharging"
    assert "AC powered: false" in d.shell("dumpsys battery")
    phone.set_charging(True)
    time.sleep(0.4)
    cur = int(d.shell("cat /sys/class/power_supply/battery/current_now"))
    assert cur * charging_sign > 0
    assert "POWER_SUPPLY_STATUS=Charging" in d.shell("cat /sys/class/power_supply/battery/uevent")
    ds = d.shell("dumpsys battery")
    assert "AC powered: true" in ds and "status: 2" in ds
    if dumpsys_has_current:  # Samsung: mA, + while charging
        assert 0 < int(re.search(r"current now: (-?\d+)", ds).group(1)) < 16000


def test_pixel_odpm_energy_advances(loopback_phone_factory):
    phone = loopback_phone_factory("pixel-tensor", time_scale=10)
    d = phone.device()

    def cpu_uws():
        out = d.shell("cat /sys/bus/iio/devices/iio:device*/energy_value")
        return sum(int(v) for v in re.findall(r"\[S\dM_VDD_CPUCL\d\], (\d+)", out))
    e0 = cpu_uws()
    d.shell2(f"timeout 1 sh -c '{BUSY}'", v2=True)
    assert cpu_uws() > e0


# ---- faults --------------------------------------------------------------------

def _no_process_left(phone) -> bool:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if phone.daemon.poll() is not None and not _cg_pids(phone):
            return True
        time.sleep(0.05)
    return False


def test_kill_mid_push_raises_and_leaves_nothing(loopback_phone):
    phone = loopback_phone
    d = phone.device()
    phone.set_fault(kill_after_push_bytes=8 << 20)
    time.sleep(0.3)
    with pytest.raises(adbutils.AdbError):
        d.sync.push(os.urandom(1 << 20) * 24, "/data/local/tmp/big.bin")
    assert _no_process_left(phone)


def test_kill_mid_shell(loopback_phone):
    phone = loopback_phone
    d = phone.device()
    result = {}

    def run():
        try:
            result["v2"] = d.shell2("echo started; sleep 30; echo never", v2=True)
        except BaseException as e:  # noqa: BLE001 - recording what adbutils raises
            result["v2"] = e
    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 10
    while not _cg_pids(phone) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    phone.kill()
    t.join(10)
    assert isinstance(result["v2"], EOFError), result  # adbutils raises the built-in EOFError
    assert _no_process_left(phone)


def test_stall_then_recover(loopback_phone):
    phone = loopback_phone
    d = phone.device()
    phone.set_fault(stall=True)
    time.sleep(0.3)
    # adbutils trap (recorded here): shell(timeout=) is applied only after the service's
    # OKAY, and open_shell() opens with the 600 s default (AdbClient(socket_timeout=) does
    # not override it), so a stalled phone blocks d.shell() for 10 minutes. Opening the
    # transport with an explicit timeout is what bounds it:
    c = d.open_transport(timeout=1.5)
    with pytest.raises(adbutils.AdbTimeout):
        c.send_command("shell:echo hi")
        c.check_okay()
    c.close()
    phone.set_fault(stall=False)
    time.sleep(0.3)
    assert d.shell("echo back") == "back"


def test_disk_full_and_refused_push(loopback_phone_factory):
    phone = loopback_phone_factory("galaxy-a15", data_size_bytes=4 << 20)
    d = phone.device()
    # adbutils trap (recorded here): a sync FAIL surfaces as AdbError('FAIL'), the reason is dropped
    with pytest.raises(adbutils.AdbError, match="FAIL"):
        d.sync.push(b"x" * (6 << 20), "/data/local/tmp/fill.bin")
    assert not d.sync.exists("/data/local/tmp/fill.bin")
    big = Path(phone.state_dir, "host-6mb.bin")
    big.write_bytes(b"y" * (6 << 20))
    r = phone.adb("push", str(big), "/data/local/tmp/fill2.bin")
    assert r.returncode != 0 and "No space left on device" in r.stderr, r
    r = phone.device().shell2("dd if=/dev/zero of=/data/local/tmp/dd.bin bs=1M count=8", v2=True)
    assert r.returncode != 0 and "No space left" in r.stderr
    d.shell("rm -f /data/local/tmp/dd.bin")
    d.sync.push(b"small", "/data/local/tmp/ok.txt")
    phone.set_fault(refuse_push=True)
    time.sleep(0.3)
    with pytest.raises(adbutils.AdbError, match="FAIL"):
        d.sync.push(b"small", "/data/local/tmp/no.txt")
    r = phone.adb("push", __file__, "/data/local/tmp/no.py")
    assert r.returncode != 0 and "Permission denied" in r.stderr


# ---- skip here, fail under CI ------------------------------------------------

@pytest.mark.parametrize("ci,outcome", [("true", "1 error"), ("", "1 skipped")])
def test_missing_requirements_skip_or_fail_under_ci(ci, outcome):
    """With bubblewrap & co. off PATH a loopback test skips, but fails when CI=true."""
    env = dict(os.environ, PATH="/nonexistent", CI=ci)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rsf",
                        f"{__file__}::test_adb_devices_lists_phone"], env=env,
                       capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    assert outcome in r.stdout, r.stdout[-2000:]  # an error at setup: pytest exits 1
    assert (r.returncode != 0) == (ci == "true")
    assert "missing Debian packages: bubblewrap mksh toybox" in r.stdout


# ---- lifecycle ------------------------------------------------------------------

def test_unplug_and_plug_back_in(loopback_phone):
    phone = loopback_phone
    d = phone.device()
    d.sync.push(b"kept", "/data/local/tmp/kept.txt")
    phone.kill()
    time.sleep(0.5)
    phone.start_daemon()  # same port: adb reconnects by itself (retries every few seconds)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(i.serial == phone.serial and i.state == "device" for i in phone.adb_client().list()):
            break
        time.sleep(0.2)
    assert phone.device().shell("cat /data/local/tmp/kept.txt") == "kept"


def test_killed_owner_leaves_nothing_behind(tmp_path):
    """SIGKILL the process that started a phone: daemon, sandbox, cgroups, mount and
    adb server all go away by themselves."""
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from suite.loopback import LoopbackPhone\n"
        "p = LoopbackPhone('galaxy-a15').start()\n"
        "import threading\n"
        "threading.Thread(target=p.device().shell, args=('sleep 60',), daemon=True).start()\n"
        "time.sleep(1)\n"
        "print(p.daemon.pid, p.server.proc.pid, p.state_dir, p.cgroup.dirs['cpu'], flush=True)\n"
        "time.sleep(60)\n")
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    daemon_pid, server_pid, state_dir, cg = owner.stdout.readline().split()
    assert Path(cg, "cgroup.procs").read_text().split()  # the `sleep 60` is running
    owner.kill()
    owner.wait()

    def gone(pid):
        try:
            os.kill(int(pid), 0)
            return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0
        except ProcessLookupError:
            return True
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (gone(daemon_pid) and gone(server_pid)
                                               and not Path(state_dir).exists()):
        time.sleep(0.1)
    assert gone(daemon_pid) and gone(server_pid)
    assert not Path(state_dir).exists() and not Path(cg).exists()
    assert state_dir not in Path("/proc/mounts").read_text()


def test_cli_start_list_stop(tmp_path):
    from suite.loopback.phone import free_port
    env = dict(os.environ, EDGEBENCH_LOOPBACK_HOME=str(tmp_path / "reg"))
    port = str(free_port())
    cli = [sys.executable, "-m", "suite.loopback"]
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run(cli + ["start", "--profile", "qcom-flagship", "--adb-port", port],
                       env=env, capture_output=True, text=True, timeout=60, cwd=root)
    assert r.returncode == 0, r.stderr
    serial = r.stdout.strip()
    assert re.fullmatch(r"127\.0\.0\.1:\d+", serial)
    try:
        d = adbutils.AdbClient("127.0.0.1", int(port)).device(serial)
        assert d.getprop("ro.soc.model") == "SM8550"
        assert serial in subprocess.run(cli + ["list"], env=env, capture_output=True, text=True,
                                        cwd=root).stdout
    finally:
        r = subprocess.run(cli + ["stop"], env=env, capture_output=True, text=True, timeout=60, cwd=root)
    assert f"stopped {serial}" in r.stdout
    with socket_closed(int(port)):
        pass


class socket_closed:
    """Asserts nothing listens on the port any more (the CLI's adb server was stopped)."""

    def __init__(self, port: int):
        self.port = port

    def __enter__(self):
        import socket
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                return self
            time.sleep(0.1)
        raise AssertionError(f"something still listens on {self.port}")

    def __exit__(self, *exc):
        return False


def test_profiles_keep_provenance():
    from suite.loopback import list_profiles, load_profile
    assert {"galaxy-a15", "qcom-flagship", "pixel-tensor"} <= set(list_profiles())
    for name in list_profiles():
        prof = load_profile(name)
        assert prof["synthesized"] is (name != "galaxy-a15")
        assert prof["provenance"], name
        for cap in Path(prof["_dir"], "captures").iterdir():
            assert cap.read_text().startswith("# source:"), cap  # verbatim, header kept
