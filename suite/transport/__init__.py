"""Transports: how edgebench reaches a device. `adb` (adbutils) and `local` (this host)."""

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

__all__ = [
    "TRANSPORTS", "AdbServerAddress", "AdbTransport", "AttachedDevice", "DeviceDisconnected", "DeviceError",
    "DeviceNotFound", "DeviceTimeout", "LocalTransport", "PushResult", "ShellResult", "Transport", "join",
    "list_attached", "quote",
]
