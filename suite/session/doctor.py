"""`edgebench doctor [SERIAL]`: whether a phone is ready to measure, and what to fix, on one screen.

Each check is run for real where it can be: the phone's ABI and CPU variant from its own reading,
edgebench's llama-bench build pushed and started on the phone (`--help`), free space against the
largest reference model its RAM holds, the battery (charging: a warning, the run works but its power
is `unavailable`), and two seconds of the on-device sampler (which nodes are readable, the achieved
rate). The verdict: `ok` when a run would work (warnings allowed), `fail` with each fix otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from suite.catalog.cards import reference_cards
from suite.core.errors import EdgebenchError
from suite.device import provision
from suite.device.identity import lab_salt
from suite.device.select import STATE_HINTS
from suite.runtimes import get_runtime
from suite.runtimes.base import SIGILL_EXIT
from suite.runtimes.build import llama_cpp
from suite.runtimes.llama_bench import BINARY
from suite.sensors.android import AndroidSampler
from suite.sensors.power import WIFI_ADB_HOWTO
from suite.session.run import default_runtime
from suite.transport import DeviceError, quote

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"
#: bits per weight of a Q4_0 GGUF (4-bit codes + an fp16 scale per 32 weights)
Q4_0_BITS = 4.5
#: the share of RAM a model's weights may take and still run (the OS, the KV cache, the runtime)
RAM_SHARE = 0.5

Status = Callable[[str], None]
#: sampler channels that need a runtime process (a pid): nothing to read before a run
_PER_RUN = ("rss_bytes", "vm_hwm")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass
class Diagnosis:
    serial: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    def to_dict(self) -> dict:
        return {"serial": self.serial, "ready": self.ready, "checks": [c.to_dict() for c in self.checks]}


def diagnose(ref, *, build: bool = True, sample_s: float = 2.0, say: Status = lambda _m: None) -> Diagnosis:
    """Every check on one attached phone (`ref`, a DeviceRef); stops early only when the phone
    cannot be reached at all."""
    d = Diagnosis(ref.serial)
    add = d.checks.append
    if not ref.ready:
        add(Check("adb", FAIL, f"state {ref.state}", STATE_HINTS.get(ref.state, "check `adb devices`")))
        return d
    try:
        live = ref.live()
    except DeviceError as exc:
        add(Check("adb", FAIL, f"the phone does not answer: {exc.message}", "reconnect it; `adb devices` lists it"))
        return d
    info = live.device_info(lab_salt())
    add(Check("adb", OK, "authorized, answering"))
    add(Check("identity", INFO, f"{info.soc_model or 'SoC unknown'} ({info.tier}), "
              f"{(info.ram_bytes or 0) / 2**30:.1f} GiB RAM" + (", simulated (loopback)" if live.simulated else "")))
    transport = ref.transport()

    runtime, why = default_runtime(ref)
    add(Check("runtime", INFO, f"a run uses {runtime}" + (f": {why}" if why else " (the device's Python imports it)")))
    try:
        abi, note, choice = get_runtime("llama.cpp").variant_choice(live)
    except EdgebenchError as exc:
        add(Check("abi", FAIL, exc.message, exc.hint))
    else:
        variant = choice.variant
        add(Check("abi", OK, f"{abi}" + (f"; {note}" if note else "")))
        add(Check("cpu", OK, f"variant {variant.name} ({variant.about}): {choice.evidence}"))
        add(_binary_check(transport, abi, variant.name, build=build, say=say))
    add(_space_check(transport, info.ram_bytes))
    add(_battery_check(live.snapshot))
    add(_sampler_check(transport, sample_s, say))
    return d


def _binary_check(transport, abi: str, variant: str, *, build: bool, say: Status) -> Check:
    """edgebench's llama-bench for the phone, pushed and started (`--help`)."""
    built = llama_cpp.cached(abi, variant)
    if built is None and not build:
        return Check("binary", WARN, f"llama-bench {abi}/{variant} is not built yet: the first run builds it "
                     "(minutes, once)", f"edgebench runtimes build llama.cpp --abi {abi} --variant {variant}")
    try:
        if built is None or built.verify() is not None:
            say(f"building llama-bench for {abi}/{variant} (once; minutes)")
            built = llama_cpp.ensure_built(abi, variant, say=say)
        folder = get_runtime("llama.cpp").name
        report = provision.ensure_files(transport, {f"{folder}/{BINARY}": built.binary})
        remote = report.remote(f"{folder}/{BINARY}")
        r = transport.shell(f"chmod 755 {quote(remote)} && {quote(remote)} --help >/dev/null 2>&1; echo rc=$?",
                            timeout_s=120)
    except (EdgebenchError, DeviceError) as exc:
        return Check("binary", FAIL, f"llama-bench {abi}/{variant}: {exc.message}", exc.hint)
    rc = r.stdout.strip().rpartition("rc=")[2]
    if rc == "0":
        return Check("binary", OK, f"llama-bench {abi}/{variant} ({built.manifest['sha256'][:12]}) starts on the phone")
    if rc == str(SIGILL_EXIT):
        return Check("binary", WARN, f"llama-bench {abi}/{variant} was killed by SIGILL: the CPU lacks an instruction "
                     "its cpuinfo claims", "a run falls back to the next lower variant once, by itself")
    return Check("binary", FAIL, f"llama-bench {abi}/{variant} did not start (exit {rc or '?'})",
                 "see `edgebench runtimes list`; a corrupt build is rebuilt on the next run")


def _space_check(transport, ram_bytes: int | None) -> Check:
    """Free space on the phone against the largest reference model its RAM holds (Q4_0 GGUF): a
    warning when only smaller ones fit, a failure when not even the smallest does."""
    def need(card) -> float:  # the model, and the runtime beside it
        return card.params() * Q4_0_BITS / 8 + 16e6

    cards = reference_cards()  # by size, the ladder's cards (not the test cards)
    fitting = [c for c in cards if ram_bytes and c.params() * Q4_0_BITS / 8 <= RAM_SHARE * ram_bytes] or cards[:1]
    try:
        free = transport.free_bytes(provision.WORK_DIR.rsplit("/", 1)[0])
    except DeviceError as exc:
        return Check("space", WARN, f"free space unknown: {exc.message}")
    largest = fitting[-1]
    detail = (f"{free / 2**30:.1f} GiB free in /data/local/tmp; the largest reference model its RAM holds, "
              f"{largest.id}, needs about {need(largest) / 2**30:.1f} GiB")
    fix = f"free space on the phone, or remove edgebench's old files: `edgebench devices clean {transport.serial}`"
    if free >= need(largest):
        return Check("space", OK, detail)
    room = [c for c in fitting if need(c) <= free]
    if room:
        return Check("space", WARN, detail + f"; up to {room[-1].id} fits", fix)
    return Check("space", FAIL, detail + "; not even the smallest model fits", fix)


def _battery_check(snapshot: dict) -> Check:
    batt = snapshot.get("battery") or {}
    level, status = batt.get("level"), (batt.get("status") or "").lower()
    detail = f"{level if level is not None else '?'}%, {status or 'status unknown'}"
    if status in ("charging", "full"):
        return Check("battery", WARN, detail + ": a run works, but its power is `unavailable` while charging",
                     f"unplug and use adb over Wi-Fi ({WIFI_ADB_HOWTO}), or log an external meter (--power-meter)")
    return Check("battery", OK, detail)


def _sampler_check(transport, seconds: float, say: Status) -> Check:
    """Two seconds of the on-device sampler: which nodes are readable, and its achieved rate."""
    say(f"{transport.serial}: sampling for {seconds:g} s")
    sampler = AndroidSampler(transport, rate_hz=10.0)
    try:
        sampler.start()
        time.sleep(seconds)
        stats = sampler.stop()
    except (EdgebenchError, DeviceError) as exc:
        return Check("sensors", FAIL, f"the on-device sampler did not run: {exc}", "see docs/sensors.md")
    avail = {k: v for k, v in sampler.availability().items() if k not in _PER_RUN}
    readable = sorted(k for k, v in avail.items() if v is None)
    missing: dict[str, list] = {}  # one line per kind of node (22 thermal zones: one line)
    for k, v in sorted(avail.items()):
        if v is not None:
            missing.setdefault(k.rsplit("/", 1)[0] if k.startswith("temp_c/tz/") else k, []).append(v)
    rate = f"{stats.achieved_hz:.1f} Hz achieved of 10" if stats and stats.achieved_hz else "rate unknown"
    detail = f"{rate}; readable: {', '.join(readable) or 'none'}"
    if missing:
        detail += "; not readable: " + "; ".join(
            f"{k} ({v[0]})" if len(v) == 1 else f"{len(v)} of {k}/* (e.g. {v[0]})" for k, v in missing.items())
    if not any(k.startswith("temp") for k in readable):
        return Check("sensors", WARN, detail, "no temperature is readable: runs record none (docs/sensors.md)")
    return Check("sensors", OK, detail)
