"""Which devices a command means: `local`, a serial, `all`, or filters (`tier=entry`,
`soc=SM8650`, both: `tier=flagship,soc=SM8650`), across one or more adb servers.

`resolve()` returns `DeviceRef`s; a ref gives a transport at once and reads the phone
(identity, battery, thermal) lazily, once. Selection errors say what is attached.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from suite.catalog.socs import TIERS, load_socs, match_soc, normalize_id
from suite.core.errors import EdgebenchError
from suite.device.identity import lab_salt, local_device_info
from suite.device.live import read_live
from suite.transport import TRANSPORTS, AdbServerAddress, AttachedDevice, DeviceNotFound, list_attached
from suite.transport.base import Transport

LOCAL = "local"
ALL = "all"
READY = "device"
FILTER_KEYS = ("tier", "soc")

STATE_HINTS = {
    "unauthorized": "accept the RSA key prompt on the phone ('Allow USB debugging?'); if none shows, "
                    "revoke USB debugging authorisations in Developer options and replug",
    "offline": "the phone is attached but not answering: replug it (USB) or `adb connect HOST:PORT` again "
               "(Wi-Fi ADB), then check `adb devices`",
    "no permissions": "the host user may not open the USB device: add a udev rule for the phone's vendor id",
    "authorizing": "the phone is still authorising this host; retry in a few seconds",
    "connecting": "the connection is being set up; retry in a few seconds",
}


class DeviceUnavailable(EdgebenchError):
    """The device is attached but not usable (unauthorized, offline, ...)."""

    exit_code = 2


def default_servers() -> list[AdbServerAddress]:
    return [AdbServerAddress()]


def parse_servers(texts: Sequence[str] | None) -> list[AdbServerAddress]:
    """`--adb HOST:PORT` values (repeatable); the default server when none."""
    servers = [AdbServerAddress.parse(t) for t in texts or ()]
    return list(dict.fromkeys(servers)) or default_servers()


@dataclass
class DeviceRef:
    """One selected device. `transport` is cheap; `live()`/`info()` read the phone once."""

    serial: str
    kind: str  # a name in TRANSPORTS: "local" | "adb"
    server: AdbServerAddress | None = None
    state: str = READY
    _transport: Transport | None = field(default=None, repr=False)
    _live: Any = field(default=None, repr=False)
    _info: Any = field(default=None, repr=False)

    @property
    def ready(self) -> bool:
        return self.state == READY

    def transport(self) -> Transport:
        """The registered transport of this kind (an unknown kind names the registered ones)."""
        if self._transport is None:
            cls = TRANSPORTS.get(self.kind)
            self.check_ready()
            self._transport = cls.from_address(self.serial, self.server)
        return self._transport

    def check_ready(self) -> None:
        if not self.ready:
            raise DeviceUnavailable(f"device {self.serial} on {self.server} is {self.state}",
                                    hint=STATE_HINTS.get(self.state, "check `adb devices`"),
                                    serial=self.serial, state=self.state)

    def live(self):
        """The phone's snapshot texts and parse (`suite.device.live.LiveState`), read once."""
        if self.kind == LOCAL:
            raise EdgebenchError("the local device has no Android snapshot")
        if self._live is None:
            self._live = read_live(self.transport())
        return self._live

    def snapshot(self) -> dict[str, Any]:
        return dict(self.live().snapshot)

    def info(self, salt: str | None = None):
        """The DeviceInfo (run.json `device` block), read once."""
        if self._info is None:
            if self.kind == LOCAL:
                self._info = local_device_info()
            else:
                self._info = self.live().device_info(salt or lab_salt())
        return self._info


def local_ref() -> DeviceRef:
    return DeviceRef(LOCAL, LOCAL, None, READY)


def attached(servers: Sequence[AdbServerAddress] | None = None) -> list[DeviceRef]:
    """Every device on every server, whatever its state."""
    return [DeviceRef(d.serial, "adb", d.server, d.state) for d in list_attached(list(servers or default_servers()))]


def _describe(devs: Sequence[DeviceRef]) -> str:
    """`SERIAL (state)`, with the server when the devices come from several."""
    several = len({d.server for d in devs}) > 1
    return ", ".join(f"{d.serial} ({d.state}{f', on {d.server}' if several else ''})" for d in devs) or "none"


def _no_device(servers: Sequence[AdbServerAddress]) -> DeviceNotFound:
    return DeviceNotFound(
        f"no phone attached to the adb server(s) at {', '.join(map(str, servers))}",
        hint="enable USB debugging and plug the phone in (check `adb devices`); for Wi-Fi ADB run "
             "`adb connect HOST:PORT`; for a lab host pass --adb HOST:PORT; `local` benchmarks this host",
    )


def parse_filters(selector: str) -> dict[str, str] | None:
    """`tier=entry,soc=SM8650` -> {"tier": "entry", "soc": "SM8650"}; None when not a filter."""
    if "=" not in selector:
        return None
    out: dict[str, str] = {}
    for part in selector.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or key not in FILTER_KEYS or not value:
            raise EdgebenchError(f"bad device filter {part!r} in {selector!r}",
                                 hint=f"filters are KEY=VALUE with KEY in {', '.join(FILTER_KEYS)}, joined by commas",
                                 exit_code=2)
        out[key] = value
    return out


def _soc_matcher(value: str):
    """A predicate on a snapshot for `soc=VALUE`: the catalog row VALUE names (part number,
    codename, marketing name, alias, suffixed part), every row an id several parts share names,
    or, for an uncatalogued id, the part the phone reports."""
    m = match_soc({"ro.soc.model": value}, None, load_socs())
    want = normalize_id(value)
    if m.soc is not None:
        key = (normalize_id(m.soc.vendor), normalize_id(m.soc.part or ""))
        return lambda s: (normalize_id(s.get("soc_vendor") or ""), normalize_id(s.get("soc_model") or "")) == key
    if m.ambiguous:  # an id several SoCs share: phones that may be any of them
        keys = {(normalize_id(c.vendor), normalize_id(c.part or "")) for c in m.candidates}
        return lambda s: (normalize_id(s.get("soc_vendor") or ""), normalize_id(s.get("soc_model") or "")) in keys
    return lambda s: want in (normalize_id(s.get("soc_model") or ""), normalize_id(s.get("soc_name") or ""))


def resolve(selector: str, servers: Sequence[AdbServerAddress] | None = None, *,
            attached_devices: Sequence[DeviceRef] | None = None) -> list[DeviceRef]:
    """The devices `selector` names (see module doc). Raises DeviceNotFound / DeviceUnavailable
    with what is attached; a filter matching nothing is an error too. `attached_devices`
    replaces asking the servers (a listing already made, or states no loopback phone shows)."""
    selector = selector.strip()
    if selector == LOCAL:
        return [local_ref()]
    servers = list(servers or default_servers())
    devs = list(attached_devices) if attached_devices is not None else attached(servers)
    ready = [d for d in devs if d.ready]
    filters = parse_filters(selector)
    if selector == ALL or filters is not None:
        if not devs:
            raise _no_device(servers)
        if not ready:
            raise DeviceUnavailable(f"no usable phone: {_describe(devs)}",
                                    hint="; ".join(sorted({STATE_HINTS.get(d.state, d.state) for d in devs})))
        if filters is None:
            return ready
        tests = []
        if "tier" in filters:
            tier = filters["tier"].lower()
            if tier not in TIERS:
                raise EdgebenchError(f"unknown tier {filters['tier']!r}; known: {', '.join(TIERS)}", exit_code=2)
            tests.append(lambda s, t=tier: s.get("tier") == t)
        if "soc" in filters:
            tests.append(_soc_matcher(filters["soc"]))
        with ThreadPoolExecutor(max_workers=min(8, len(ready))) as pool:
            snaps = list(pool.map(lambda d: d.snapshot(), ready))
        chosen = [d for d, s in zip(ready, snaps) if all(t(s) for t in tests)]
        if not chosen:
            seen = ", ".join(f"{d.serial}: tier {s.get('tier')}, soc {s.get('soc_model') or '?'}" for d, s in zip(ready, snaps))
            raise DeviceNotFound(f"no attached phone matches {selector!r}", hint=f"attached: {seen}")
        return chosen
    # a serial
    hits = [d for d in devs if d.serial == selector]
    if not hits:
        if not devs:
            raise _no_device(servers)
        raise DeviceNotFound(f"no device {selector!r} on the adb server(s) at {', '.join(map(str, servers))}",
                             hint=f"attached: {_describe(devs)}; `local` is this host")
    if len(hits) > 1:
        raise DeviceNotFound(f"serial {selector!r} is attached to several adb servers: {_describe(hits)}",
                             hint="pass only the --adb server that holds the phone you mean")
    hits[0].check_ready()
    return hits


def resolve_one(selector: str, servers: Sequence[AdbServerAddress] | None = None) -> DeviceRef:
    """Exactly one device (a serial, `local`, or a filter that matches one phone)."""
    refs = resolve(selector, servers)
    if len(refs) != 1:
        raise EdgebenchError(f"{selector!r} names {len(refs)} devices; this command takes one",
                             hint=f"pick a serial: {_describe(refs)}", exit_code=2)
    return refs[0]


__all__ = ["ALL", "LOCAL", "AttachedDevice", "DeviceRef", "DeviceUnavailable", "attached", "default_servers",
           "local_ref", "parse_filters", "parse_servers", "resolve", "resolve_one"]
