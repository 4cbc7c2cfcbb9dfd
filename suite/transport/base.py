"""What a transport is: run a command on a device, stream its output, move files.

Every command that reaches a device shell is built with `quote`/`join` (shlex: POSIX
single quotes, which mksh, toybox sh and dash all read the same way); no caller pastes a
value into a command string unquoted.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from suite.core.errors import EdgebenchError
from suite.core.registry import Registry


def quote(value: object) -> str:
    """One shell word, whatever the value holds (spaces, quotes, `;`, `$(...)`)."""
    return shlex.quote(str(value))


def join(argv: Sequence[object]) -> str:
    """A command line from arguments, each quoted."""
    return " ".join(quote(a) for a in argv)


def command_text(cmd: str | Sequence[object]) -> str:
    """A list is an argv (quoted here); a string is a script the caller built with quote()."""
    return cmd if isinstance(cmd, str) else join(cmd)


@dataclass(frozen=True)
class ShellResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class DeviceError(EdgebenchError):
    """A device command failed. Carries serial, command, exit code and output (Mobly-style)."""

    def __init__(self, message: str, *, serial: str, command: str | None = None,
                 exit_code: int | None = None, stdout: str = "", stderr: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint, serial=serial, command=command, exit_code=exit_code)
        self.serial = serial
        self.command = command
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    def __str__(self) -> str:
        parts = [f"{self.serial}: {self.message}"]
        if self.command:
            parts.append(f"  command: {self.command}")
        if self.exit_code is not None:
            parts.append(f"  exit code: {self.exit_code}")
        tail = (self.stderr or self.stdout).strip()[-400:]
        if tail:
            parts.append(f"  output: {tail}")
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        return "\n".join(parts)


class DeviceDisconnected(DeviceError):
    """The device went away (unplugged, daemon killed, offline) mid-call."""


class DeviceTimeout(DeviceError):
    """A command ran past its wall-clock limit."""


class DeviceNotFound(EdgebenchError):
    exit_code = 2


@dataclass(frozen=True)
class PushResult:
    remote: str
    bytes: int
    seconds: float

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else float("inf")


#: (bytes done, bytes total)
Progress = Callable[[int, int], None]


class Stream(Protocol):
    """A running command whose stdout arrives line by line."""

    def lines(self) -> Iterator[str]: ...

    def close(self) -> None: ...

    @property
    def exit_code(self) -> int | None: ...


class Transport(Protocol):
    serial: str
    kind: str  # its name in TRANSPORTS: "adb" | "local"

    def shell(self, cmd: str | Sequence[object], *, timeout_s: float = 60.0, check: bool = False,
              stdin: bytes | None = None) -> ShellResult: ...

    def stream(self, cmd: str | Sequence[object]) -> Stream: ...

    def push(self, local: Path, remote: str, *, progress: Progress | None = None,
             mode: int = 0o644) -> PushResult: ...

    def pull(self, remote: str, local: Path) -> None: ...

    def exists(self, remote: str) -> bool: ...

    def free_bytes(self, remote_dir: str) -> int: ...


class TransportClass(Protocol):
    """What TRANSPORTS holds: a transport class, built the one way every kind is built."""

    def from_address(self, serial: str, server: Any = None) -> Transport:
        """The transport to device `serial` through `server` (an adb server's address for adb;
        None where the kind needs none). A classmethod; `DeviceRef.transport()` calls it."""
        ...


#: kind -> transport class; the entries are `"module:attribute"` lines in `suite/transport/__init__.py`
TRANSPORTS: Registry[TransportClass] = Registry("transport")
