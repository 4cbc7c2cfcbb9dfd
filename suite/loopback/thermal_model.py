"""The loopback phone's thermal and power model, and the governor acting on it.

Model (documented in docs/loopback.md), advanced every 0.1 s of real time by
dt = 0.1 s x time_scale of phone time:

- load: u = (CPU seconds the phone's cgroup used in the tick) / (real seconds
  x cpu_cores), 0..1, averaged over 0.5 s of real time (so a 20 ms shell
  command is not read as a burst time_scale times longer). cpu_cores is how
  many host cores the phone gets.
- power: P = idle_w + cpu_w_at_fmax * u * (f/fmax)^2 (dynamic power scales as
  f*V^2 with V roughly following f; u already shrinks with the quota).
- two first-order RC nodes, SoC (fast) and skin (slow):
  T <- T + (ambient + R*P - T) * (1 - exp(-dt/tau)); battery = skin - 0.5
  (+1.5 C while charging). Both start at their idle steady state, so an idle
  phone does not warm.
- governor: severity = highest index i with T_sensor >= hot_thresholds[i]
  (the profile's captured SKIN thresholds; 1 C hysteresis on the way down);
  frequency cap = CAP[severity] x max freq; the cap becomes the cgroup CPU
  quota cpu_cores x cap, so a throttled phone really runs slower.
- battery: I = (charging ? charge_current : 0) - P/V; V from the level;
  level integrates I; sysfs/dumpsys report I in the profile's vendor unit
  and sign convention.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

CAP = [1.0, 0.85, 0.65, 0.5, 0.35, 0.25, 0.2]  # frequency fraction per ThrottlingSeverity
TICK_S = 0.1
LOAD_WINDOW_S = 0.5  # real seconds


def _write(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o444 if not path.name.endswith(".txt") else 0o444)
    os.replace(tmp, path)


class ThermalModel:
    def __init__(self, state_dir: Path, cfg: dict, cgroup=None):
        self.sd = Path(state_dir)
        self.cfg = cfg
        self.cg = cgroup
        th, pw, bt = cfg["thermal"], cfg["power"], cfg["battery"]
        self.th, self.pw, self.bt = th, pw, bt
        self.ambient = float(cfg["ambient_c"])
        self.t_soc = self.ambient + th["soc"]["r_c_per_w"] * pw["idle_w"]
        self.t_skin = self.ambient + th["skin"]["r_c_per_w"] * pw["idle_w"]
        self.severity = 0
        self.cap = 1.0
        self.power_w = pw["idle_w"]
        self.util = 0.0
        self.model_s = 0.0
        self.charge_mah = bt["capacity_mah"] * bt.get("level", 80) / 100.0
        self.current_a = 0.0
        self.charging = bool(bt.get("charging"))
        self.last_ns = self._cpu_ns()
        self.last_t = time.monotonic()
        self.odpm = self._parse_odpm(cfg.get("odpm_template"))
        self.boot_ms = (self.odpm[0][0] if self.odpm else 10_000_000)
        self._applied_quota = None
        self._layout_sys()
        self._apply()
        self._render()

    @classmethod
    def from_state_dir(cls, state_dir: Path, cgroup=None) -> "ThermalModel":
        info = json.loads((Path(state_dir) / "phone.json").read_text())
        return cls(state_dir, info["model"], cgroup)

    # ---- sysfs layout ------------------------------------------------------
    def _layout_sys(self) -> None:
        sys_ = self.sd / "sys"
        tz = sys_ / "class/thermal"
        tz.mkdir(parents=True, exist_ok=True)
        self.zones = []
        readable = self.th.get("zones_readable", True)
        for i, typ in enumerate(self.th["zone_types"]):
            d = tz / f"thermal_zone{i}"
            d.mkdir(exist_ok=True)
            (d / "type").write_text(typ + "\n")
            os.chmod(d / "type", 0o444)
            os.chmod(d, 0o755 if readable else 0o700)
            self.zones.append((d, typ))
        for i in range(3):
            d = tz / f"cooling_device{i}"
            d.mkdir(exist_ok=True)
            (d / "type").write_text(["thermal-cpufreq-0", "thermal-cpufreq-1", "thermal-devfreq-0"][i] + "\n")
            os.chmod(d, 0o755 if readable else 0o700)
        bat = sys_ / "class/power_supply/battery"
        bat.mkdir(parents=True, exist_ok=True)
        # battery `sysfs_readable: false`: not traversable by the shell uid, as SELinux denies it
        # on many phones (reads fail with Permission denied; dumpsys battery still answers)
        os.chmod(bat, 0o755 if self.bt.get("sysfs_readable", True) else 0o700)
        self.bat_dir = bat
        cpuf = sys_ / "devices/system/cpu/cpufreq"
        cpuf.mkdir(parents=True, exist_ok=True)
        self.policies = []
        for pol in self.cfg["cpus"]["policies"]:
            d = cpuf / pol["name"]
            d.mkdir(exist_ok=True)
            for name, val in (("related_cpus", " ".join(map(str, pol["cpus"]))),
                              ("affected_cpus", " ".join(map(str, pol["cpus"]))),
                              ("cpuinfo_max_freq", pol["max_khz"]), ("cpuinfo_min_freq", pol["min_khz"]),
                              ("scaling_min_freq", pol["min_khz"]), ("scaling_governor", "schedutil"),
                              ("scaling_available_governors", "schedutil performance powersave")):
                _write(d / name, f"{val}\n")
            self.policies.append((d, pol))
        ncpu = sum(len(p["cpus"]) for p in self.cfg["cpus"]["policies"])
        cpu = sys_ / "devices/system/cpu"
        _write(cpu / "possible", f"0-{ncpu - 1}\n")
        _write(cpu / "present", f"0-{ncpu - 1}\n")
        _write(cpu / "online", f"0-{ncpu - 1}\n")
        for pol in self.cfg["cpus"]["policies"]:
            for c in pol["cpus"]:
                d = cpu / f"cpu{c}"
                d.mkdir(exist_ok=True)
                link = d / "cpufreq"
                if not link.exists():
                    os.symlink(f"../cpufreq/{pol['name']}", link)
        if self.odpm:
            for i in range(len(self.odpm)):
                (sys_ / f"bus/iio/devices/iio:device{i}").mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _parse_odpm(text: str | None):
        if not text:
            return None
        devs = []
        for line in text.splitlines():
            if line.startswith("t="):
                devs.append([int(line[2:]), []])
            else:
                m = re.match(r"CH(\d+)\(T=\d+\)\[(.+?)\], (\d+)", line)
                if m and devs:
                    devs[-1][1].append([m.group(1), m.group(2), int(m.group(3))])
        return devs

    # ---- the model ---------------------------------------------------------
    def _cpu_ns(self) -> int:
        try:
            return self.cg.cpu_usage_ns() if self.cg else 0
        except OSError:
            return 0

    def tick(self, control: dict) -> None:
        now = time.monotonic()
        dt_real = max(1e-3, now - self.last_t)
        self.last_t = now
        ns = self._cpu_ns()
        busy_s = max(0, ns - self.last_ns) / 1e9
        self.last_ns = ns
        scale = float(control.get("time_scale", self.cfg["time_scale"]))
        ambient = float(control.get("ambient_c", self.ambient))
        self.charging = bool(control.get("charging", self.charging))
        dt = dt_real * scale
        self._last_dt = dt
        self.model_s += dt
        cores = float(self.cfg["cpu_cores"])
        inst = min(1.0, busy_s / (dt_real * cores))
        # averaged over LOAD_WINDOW_S of real time: with time_scale x, a 20 ms shell
        # command would otherwise read as a burst lasting time_scale times longer
        self.util += (inst - self.util) * (1 - math.exp(-dt_real / LOAD_WINDOW_S))
        self.power_w = self.pw["idle_w"] + self.pw["cpu_w_at_fmax"] * self.util * self.cap ** 2
        for node in ("soc", "skin"):
            p = self.th[node]
            target = ambient + p["r_c_per_w"] * self.power_w
            cur = getattr(self, f"t_{node}")
            setattr(self, f"t_{node}", cur + (target - cur) * (1 - math.exp(-dt / p["tau_s"])))
        self._battery(dt)
        self._governor()
        self._apply()
        self._render()

    @property
    def t_battery(self) -> float:
        return self.t_skin - 0.5 + (1.5 if self.charging and self.level < 100 else 0.0)

    @property
    def level(self) -> int:
        return max(0, min(100, round(100 * self.charge_mah / self.bt["capacity_mah"])))

    @property
    def voltage_v(self) -> float:
        bt = self.bt
        v = bt["voltage_empty_v"] + (bt["voltage_full_v"] - bt["voltage_empty_v"]) * self.level / 100
        return v + (0.03 if self.charging else 0.0)

    def _battery(self, dt: float) -> None:
        draw = self.power_w / self.voltage_v
        if self.charging:
            full = self.charge_mah >= self.bt["capacity_mah"]
            self.current_a = 0.0 if full else self.bt["charge_current_a"] - draw
        else:
            self.current_a = -draw
        self.charge_mah = min(self.bt["capacity_mah"],
                              max(0.0, self.charge_mah + self.current_a * dt / 3.6))

    def _sensor_temp(self) -> float:
        return self.t_skin

    def _governor(self) -> None:
        t = self._sensor_temp()
        hot = self.th["hot_thresholds_c"]
        sev = 0
        for i, thr in enumerate(hot):
            if thr is not None and not (isinstance(thr, float) and math.isnan(thr)) and t >= thr:
                sev = i
        if sev < self.severity:  # hysteresis on the way down
            thr = hot[self.severity]
            if t > thr - 1.0:
                sev = self.severity
        self.severity = sev
        self.cap = CAP[sev]

    def _apply(self) -> None:
        cores = float(self.cfg["cpu_cores"]) * self.cap
        if self.cg is not None and cores != self._applied_quota:
            try:
                self.cg.set_cpu_quota(cores)
                self._applied_quota = cores
            except OSError:
                pass

    # ---- what the phone shows ---------------------------------------------
    def _put(self, path: Path, text: str) -> None:
        """Write only what changed: an idle phone then costs the host almost nothing."""
        cache = self.__dict__.setdefault("_shown", {})
        if cache.get(path) != text:
            _write(path, text)
            cache[path] = text

    def current_for(self, unit: str | None, discharge_sign: int) -> int:
        """Battery current in a vendor convention (Linux: uA, + into the battery)."""
        i = self.current_a if discharge_sign == -1 else -self.current_a
        return int(round(i * (1e6 if unit == "uA" else 1e3)))

    def _zone_temp(self, typ: str) -> float:
        t = typ.lower()
        if "batt" in t:
            return self.t_battery
        if "skin" in t or "xo" in t or "therm" in t:
            return self.t_skin
        return self.t_soc

    def state(self) -> dict:
        return {"model_s": round(self.model_s, 3), "util": round(self.util, 4),
                "power_w": round(self.power_w, 4), "t_soc_c": round(self.t_soc, 3),
                "t_skin_c": round(self.t_skin, 3), "t_battery_c": round(self.t_battery, 3),
                "severity": self.severity, "cap": self.cap,
                "cpu_quota_cores": self._applied_quota, "level": self.level,
                "charging": self.charging, "current_a": round(self.current_a, 4),
                "voltage_v": round(self.voltage_v, 4), "time": time.time()}

    def _render(self) -> None:
        for d, typ in self.zones:
            self._put(d / "temp", f"{int(self._zone_temp(typ) * 1000)}\n")
        for d, pol in self.policies:
            mx = int(pol["max_khz"] * self.cap)
            self._put(d / "scaling_max_freq", f"{mx}\n")
            self._put(d / "scaling_cur_freq", f"{mx if self.util > 0.05 else pol['min_khz']}\n")
        self._render_battery()
        self._render_dumpsys_thermal()
        self._render_odpm()
        self._put(self.sd / "state.json", json.dumps(self.state()))

    def _status_text(self) -> tuple[str, int]:
        if self.charging and self.level >= 100:
            return "Full", 5
        return ("Charging", 2) if self.charging else ("Discharging", 3)

    def _render_battery(self) -> None:
        bt = self.bt
        status, status_code = self._status_text()
        cur = self.current_for(bt.get("sysfs_current_unit", "uA"), bt.get("sysfs_discharge_sign", -1))
        vals = {"status": status, "capacity": str(self.level), "current_now": str(cur),
                "voltage_now": str(int(self.voltage_v * 1e6)), "temp": str(int(self.t_battery * 10)),
                "charge_counter": str(int(self.charge_mah * 1000)), "present": "1",
                "health": "Good", "technology": "Li-ion"}
        for k, v in vals.items():
            self._put(self.bat_dir / k, v + "\n")
        lines = [f"POWER_SUPPLY_{k.upper()}={v}" for k, v in
                 [("name", "battery")] + list(vals.items())]
        self._put(self.bat_dir / "uevent", "\n".join(lines) + "\n")
        # dumpsys battery: the capture, with live values in its own lines
        text = self.cfg["dumpsys_battery"]
        ac = self.charging
        subs = {"AC powered": "true" if ac else "false", "USB powered": "false",
                "status": str(status_code), "level": str(self.level),
                "voltage": str(int(self.voltage_v * 1000)),
                "temperature": str(int(self.t_battery * 10)),
                "Charge counter": str(int(self.charge_mah * 1000)),
                "charge counter": str(int(self.charge_mah * 1000))}
        if bt.get("dumpsys_current_unit"):
            subs["current now"] = str(self.current_for(bt["dumpsys_current_unit"],
                                                      bt.get("dumpsys_discharge_sign", -1)))
        out = []
        seen = set()
        for line in text.splitlines():
            m = re.match(r"^(\s+)([A-Za-z ]+): (.*)$", line)
            if m and m.group(2) in subs and m.group(2) not in seen:
                seen.add(m.group(2))
                line = f"{m.group(1)}{m.group(2)}: {subs[m.group(2)]}"
            out.append(line)
        for k in ("temperature",):
            if k not in seen:
                out.append(f"  {k}: {subs[k]}")
        if "technology" not in text:
            out.append("  technology: Li-ion")
        self._put(self.sd / "system/etc/loopback/dumpsys/battery.txt", "\n".join(out) + "\n")

    def _sensor_offsets(self, text: str) -> dict[str, float]:
        """Per-sensor offsets kept from the capture: each live value is its node's
        temperature plus (captured value - mean of the captured values of that node)."""
        if hasattr(self, "_offsets"):
            return self._offsets
        groups: dict[str, list[tuple[str, float]]] = {}
        block = None
        for line in text.splitlines():
            if line.strip().endswith(":") and not line.startswith(("\t", " ")):
                block = line.strip()
            elif block == "Current temperatures from HAL:":
                m = re.search(r"mValue=([-\d.]+), mType=(-?\d+), mName=(.+?), mStatus=", line)
                if m and float(m.group(1)) != 0.0:
                    typ, name = int(m.group(2)), m.group(3)
                    node = ("battery" if typ == 2 or "batt" in name.lower() else
                            "skin" if typ in (3, 4) or "therm" in name else "soc")
                    groups.setdefault(node, []).append((name, float(m.group(1))))
        self._offsets = {}
        for vals in groups.values():
            mean = sum(v for _, v in vals) / len(vals)
            for name, v in vals:
                self._offsets[name] = v - mean
        # the throttle sensor shows exactly what the governor acts on
        self._offsets[self.th["throttle_sensor"]] = 0.0
        return self._offsets

    def _render_dumpsys_thermal(self) -> None:
        text = self.cfg["dumpsys_thermal"]
        sensor = self.th["throttle_sensor"]
        out, block = [], None
        base = self._sensor_offsets(text)
        for line in text.splitlines():
            if line.startswith("Thermal Status:"):
                line = f"Thermal Status: {self.severity}"
            elif line.strip().endswith(":") and not line.startswith(("\t", " ")):
                block = line.strip()
            elif block == "Current temperatures from HAL:" and "Temperature{" in line:
                m = re.search(r"mValue=([-\d.]+), mType=(-?\d+), mName=(.+?), mStatus=(\d+)", line)
                if m:
                    v0, typ, name = float(m.group(1)), int(m.group(2)), m.group(3)
                    if v0 != 0.0:
                        if typ == 2 or "batt" in name.lower():
                            node, ref = self.t_battery, "battery"
                        elif typ == 3 or typ == 4 or "therm" in name:
                            node, ref = self.t_skin, "skin"
                        else:
                            node, ref = self.t_soc, "soc"
                        v = node + base.get(name, 0.0)
                        st = self.severity if name == sensor else 0
                        line = line.replace(m.group(0), f"mValue={v:.1f}, mType={typ}, mName={name}, mStatus={st}")
            elif block == "Current cooling devices from HAL:" and "CoolingDevice{" in line and "cpufreq" in line:
                line = re.sub(r"mValue=\d+", f"mValue={self.severity * 2}", line)
            out.append(line)
        self._put(self.sd / "system/etc/loopback/dumpsys/thermalservice.txt", "\n".join(out) + "\n")

    def _render_odpm(self) -> None:
        if not self.odpm:
            return
        cpu_rails = set((self.cfg.get("odpm") or {}).get("cpu_rails", []))
        now_ms = self.boot_ms + int(self.model_s * 1000)
        dt_s = getattr(self, "_last_dt", 0.0)
        cpu_w = self.power_w - self.pw["idle_w"]
        for i, (_t0, chans) in enumerate(self.odpm):
            lines = [f"t={now_ms}"]
            for ch in chans:
                if ch[1] in cpu_rails:
                    ch[2] += int(cpu_w / len(cpu_rails) * dt_s * 1e6) + int(0.01 * dt_s * 1e6)
                else:
                    ch[2] += int(self.pw["idle_w"] / 16 * dt_s * 1e6)
                lines.append(f"CH{ch[0]}(T={now_ms})[{ch[1]}], {ch[2]}")
            self._put(self.sd / f"sys/bus/iio/devices/iio:device{i}/energy_value", "\n".join(lines) + "\n")
