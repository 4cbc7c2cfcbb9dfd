"""Lab settings for a measurement (`devices prepare`) and putting them back (`devices restore`).

Each setting's previous value is read first and recorded, on the device
(`<work dir>/prepared.json`, so a restore from another host or after a crash still knows
it) and in the returned `PreparedState` (runs record it). A command the phone refuses
(permission, a setting that does not exist there) is recorded as not applied with the
reason; it is never fatal. Preparing an already prepared phone keeps the first record's
previous values, so a restore always returns to the state before the first prepare.

| step | how | why |
|---|---|---|
| stay_awake | `settings put global stay_on_while_plugged_in 7` | screen and CPU stay awake while on USB/AC/wireless |
| brightness_mode | `settings put system screen_brightness_mode 0` | no auto-brightness: the display draws a fixed power |
| brightness | `settings put system screen_brightness 64` | a fixed, low level (0-255) |
| airplane | `cmd connectivity airplane-mode enable` (SDK >= 30; else `settings put global airplane_mode_on 1`) | no radio bursts in the power trace; skipped on Wi-Fi ADB (it would cut the connection) |
| adaptive_battery | `settings put global adaptive_battery_management_enabled 0` | no app-standby interference |
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from suite.core.errors import EdgebenchError
from suite.device.android.props import parse_getprop
from suite.device.live import is_simulated
from suite.device.provision import PREPARED_FILE, RESTORED_FILE, WORK_DIR
from suite.transport.base import DeviceError, ShellResult, Transport, quote

STAY_ON_ALL = "7"  # BatteryManager.BATTERY_PLUGGED_AC | USB | WIRELESS
FIXED_BRIGHTNESS = "64"
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Setting:
    step: str
    namespace: str
    key: str
    value: str
    why: str


SETTINGS = (
    Setting("stay_awake", "global", "stay_on_while_plugged_in", STAY_ON_ALL, "stay awake while plugged in (USB/AC/wireless)"),
    Setting("brightness_mode", "system", "screen_brightness_mode", "0", "auto-brightness off"),
    Setting("brightness", "system", "screen_brightness", FIXED_BRIGHTNESS, "fixed screen brightness"),
    Setting("airplane", "global", "airplane_mode_on", "1", "airplane mode: radios off"),
    Setting("adaptive_battery", "global", "adaptive_battery_management_enabled", "0", "adaptive battery off"),
)


@dataclass
class StepRecord:
    step: str
    namespace: str
    key: str
    previous: str | None  # None: could not be read; "null": not set on the phone
    target: str
    applied: bool
    reason: str | None = None  # why not applied
    restored: bool | None = None
    restore_reason: str | None = None


@dataclass
class PreparedState:
    serial: str
    prepared_at: str
    steps: list[StepRecord] = field(default_factory=list)
    restored_at: str | None = None

    @property
    def applied(self) -> list[str]:
        return [s.step for s in self.steps if s.applied]

    @property
    def not_applied(self) -> dict[str, str]:
        return {s.step: s.reason or "not applied" for s in self.steps if not s.applied}

    def to_dict(self) -> dict[str, Any]:
        return {"serial": self.serial, "prepared_at": self.prepared_at, "restored_at": self.restored_at,
                "steps": [asdict(s) for s in self.steps]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreparedState:
        return cls(d.get("serial", "?"), d.get("prepared_at", "?"),
                   [StepRecord(**s) for s in d.get("steps", [])], d.get("restored_at"))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _failure(r: ShellResult) -> str | None:
    """Why a settings/cmd call did not work (None when it did). `settings` prints exceptions
    and on some builds still exits 0, so the text counts as much as the exit code."""
    text = (r.stderr + "\n" + r.stdout).strip()
    if r.exit_code != 0 or re.search(r"exception|permission denial|not allowed|can't find service|unknown command",
                                     text, re.I):
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        return f"exit code {r.exit_code}" + (f": {first[:200]}" if first else "")
    return None


def _get(transport: Transport, ns: str, key: str) -> tuple[str | None, str | None]:
    r = transport.shell(["settings", "get", ns, key], timeout_s=_TIMEOUT_S)
    why = _failure(r)
    if why:
        return None, f"cannot read {ns}/{key}: {why}"
    return r.stdout.strip(), None


def _put(transport: Transport, ns: str, key: str, value: str | None) -> str | None:
    """Set (or delete when `value` is "null"); the reason on failure."""
    if value == "null":
        r = transport.shell(["settings", "delete", ns, key], timeout_s=_TIMEOUT_S)
    else:
        r = transport.shell(["settings", "put", ns, key, value], timeout_s=_TIMEOUT_S)
    return _failure(r)


def _airplane(transport: Transport, on: bool, sdk: int | None) -> str | None:
    if sdk is None or sdk >= 30:
        r = transport.shell(["cmd", "connectivity", "airplane-mode", "enable" if on else "disable"], timeout_s=_TIMEOUT_S)
        why = _failure(r)
        if why is None or sdk is not None:
            return why
    # before Android 11 the setting alone (apps see it at the next broadcast / reboot)
    return _put(transport, "global", "airplane_mode_on", "1" if on else "0")


def _record_path(work_dir: str) -> str:
    return f"{work_dir}/{PREPARED_FILE}"


def read_record(transport: Transport, work_dir: str = WORK_DIR) -> PreparedState | None:
    r = transport.shell(f"cat {quote(_record_path(work_dir))} 2>/dev/null; exit 0", timeout_s=_TIMEOUT_S)
    if not r.stdout.strip():
        return None
    try:
        return PreparedState.from_dict(json.loads(r.stdout))
    except (ValueError, TypeError) as exc:
        raise DeviceError(f"the prepare record {_record_path(work_dir)} is unreadable: {exc}",
                          serial=transport.serial, stdout=r.stdout[:400]) from None


def _write_record(transport: Transport, state: PreparedState, work_dir: str) -> None:
    path = _record_path(work_dir)
    transport.shell(f"mkdir -p {quote(work_dir)} && cat > {quote(path + '.tmp')} && mv -f {quote(path + '.tmp')} {quote(path)}",
                    stdin=json.dumps(state.to_dict(), indent=1).encode(), timeout_s=_TIMEOUT_S, check=True)


def _sdk(transport: Transport) -> int | None:
    r = transport.shell(["getprop", "ro.build.version.sdk"], timeout_s=_TIMEOUT_S)
    text = r.stdout.strip()
    return int(text) if text.isdigit() else None


def is_network_serial(serial: str) -> bool:
    """`HOST:PORT` serials are TCP (Wi-Fi ADB) connections."""
    return bool(re.fullmatch(r".+:\d+", serial))


def prepare(transport: Transport, *, airplane: bool | None = None, steps: Sequence[str] | None = None,
            work_dir: str = WORK_DIR) -> PreparedState:
    """Apply the lab settings, recording each previous value (see the module table).

    `airplane=None` (auto) skips airplane mode on a TCP connection unless the phone is a
    loopback phone (whose connection is no radio); True/False force it. `steps` limits the
    steps (names from SETTINGS)."""
    earlier = read_record(transport, work_dir)
    earlier_prev = {s.step: s.previous for s in earlier.steps} if earlier and not earlier.restored_at else {}
    sdk = _sdk(transport)
    if airplane is None:
        airplane = True
        if is_network_serial(transport.serial):
            props = parse_getprop(transport.shell("getprop", timeout_s=_TIMEOUT_S).stdout).props
            airplane = is_simulated(props)
    state = PreparedState(transport.serial, _now())
    for s in SETTINGS:
        if steps is not None and s.step not in steps:
            continue
        prev, why = _get(transport, s.namespace, s.key)
        if s.step in earlier_prev:
            prev = earlier_prev[s.step]  # the value before the FIRST prepare
        rec = StepRecord(s.step, s.namespace, s.key, prev, s.value, False)
        if why:
            rec.reason = why
        elif s.step == "airplane" and not airplane:
            rec.reason = ("skipped: the phone is reached over TCP (Wi-Fi ADB); airplane mode would cut the "
                          "connection (pass airplane=True / --airplane to force)")
        else:
            fail = (_airplane(transport, True, sdk) if s.step == "airplane"
                    else _put(transport, s.namespace, s.key, s.value))
            rec.applied = fail is None
            rec.reason = f"not applied: {fail}" if fail else None
        state.steps.append(rec)
    _write_record(transport, state, work_dir)
    return state


def restore(transport: Transport, *, work_dir: str = WORK_DIR) -> PreparedState:
    """Put back every value `prepare` changed (from the device-side record), then mark the
    record restored. Values that were unset are deleted again. Refused when not prepared."""
    state = read_record(transport, work_dir)
    if state is None or state.restored_at:
        raise EdgebenchError(f"{transport.serial} is not prepared (no {_record_path(work_dir)}); nothing to restore",
                             hint=f"`edgebench devices prepare {transport.serial}` records the values to restore")
    sdk = _sdk(transport)
    for rec in state.steps:
        if not rec.applied:
            rec.restored, rec.restore_reason = None, "was not applied"
            continue
        if rec.previous is None:
            rec.restored, rec.restore_reason = False, "previous value unknown; left as prepared"
            continue
        if rec.step == "airplane" and rec.previous in ("0", "null"):
            fail = _airplane(transport, False, sdk)
            if fail is None and rec.previous == "null":
                fail = _put(transport, rec.namespace, rec.key, "null")
        else:
            fail = _put(transport, rec.namespace, rec.key, rec.previous)
        rec.restored = fail is None
        rec.restore_reason = fail
    state.restored_at = _now()
    _write_record(transport, state, work_dir)
    # kept for the record as restored.json; prepared.json's absence means "not prepared"
    transport.shell(["mv", "-f", "--", _record_path(work_dir), f"{work_dir}/{RESTORED_FILE}"], timeout_s=_TIMEOUT_S)
    return state


def current_values(transport: Transport) -> dict[str, str | None]:
    """{step: value now} for every lab setting (what a run records as its screen/prepared state)."""
    script = "; ".join(f"settings get {quote(s.namespace)} {quote(s.key)} 2>/dev/null || echo" for s in SETTINGS)
    lines = transport.shell(script, timeout_s=_TIMEOUT_S).stdout.splitlines()
    return {s.step: (lines[i].strip() if i < len(lines) else None) for i, s in enumerate(SETTINGS)}


def recorded_state(transport: Transport, work_dir: str = WORK_DIR) -> dict[str, Any]:
    """What a run records as its prepared state: whether the phone is prepared (and when),
    the steps not applied with their reasons, and the five settings as they are now."""
    record = read_record(transport, work_dir)
    prepared = record is not None and record.restored_at is None
    return {
        "prepared": prepared,
        "prepared_at": record.prepared_at if prepared else None,
        "not_applied": record.not_applied if prepared else {},
        "settings": current_values(transport),
    }
