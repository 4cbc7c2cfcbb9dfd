"""Transports: how edgebench reaches a device. `adb` (adbutils) and `local` (this host).

Each is registered by name below (imported on first use); a selected device of that kind gets
one from `TRANSPORTS.get(kind).from_address(serial, server)`.
"""

from suite.transport.adb import AdbServerAddress, AdbTransport, AttachedDevice, list_attached
from suite.transport.base import (
    TRANSPORTS,
    DeviceDisconnected,
    DeviceError,
    DeviceNotFound,
    DeviceTimeout,
    PushResult,
    ShellResult,
    Transport,
    join,
    quote,
)
from suite.transport.local import LocalTransport

TRANSPORTS.add("local", "suite.transport.local:LocalTransport", about="this host")
TRANSPORTS.add("adb", "suite.transport.adb:AdbTransport", about="a phone through an adb server")

__all__ = [
    "TRANSPORTS", "AdbServerAddress", "AdbTransport", "AttachedDevice", "DeviceDisconnected", "DeviceError",
    "DeviceNotFound", "DeviceTimeout", "LocalTransport", "PushResult", "ShellResult", "Transport", "join",
    "list_attached", "quote",
]
