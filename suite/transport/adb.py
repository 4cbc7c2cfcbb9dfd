"""The one module that talks to adbutils; its traps are handled here and nowhere else.

- Exit codes: shell protocol v2 (adbutils' `shell2` defaults to a marker hack).
- Wall-clock timeouts: adbutils' `timeout` is per socket read; we keep a deadline.
- Disconnects: adbutils returns partial output, raises EOFError or a bare AdbError; all
  become `DeviceDisconnected` carrying serial, command and what output arrived.
- Pushes: adbutils writes 4 KiB chunks with no progress; we speak sync SEND ourselves with
  64 KiB chunks (the protocol's maximum), report progress, and keep the FAIL reason.
- Pulls of a missing path: adbutils creates an empty local folder; we stat first.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import adbutils
from adbutils.errors import AdbError, AdbTimeout

from suite.transport.base import (
    DeviceDisconnected,
    DeviceError,
    DeviceNotFound,
    DeviceTimeout,
    Progress,
    PushResult,
    ShellResult,
    command_text,
    quote,
)

SYNC_DATA_MAX = 64 * 1024
_CONNECT_TIMEOUT_S = 10.0

# shell protocol v2 packet ids (AOSP shell_protocol.h)
_STDIN, _STDOUT, _STDERR, _EXIT, _CLOSE_STDIN = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class AdbServerAddress:
    host: str = "127.0.0.1"
    port: int = 5037

    @classmethod
    def parse(cls, text: str) -> AdbServerAddress:
        """`HOST:PORT`, `HOST` (port 5037) or `:PORT`."""
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
        try:
            return cls(host or "127.0.0.1", int(port) if port else 5037)
        except ValueError:
            raise DeviceNotFound(f"bad adb server address {text!r}", hint="use HOST:PORT, e.g. 10.0.0.5:5037") from None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class AttachedDevice:
    serial: str
    state: str  # device | unauthorized | offline | ...
    server: AdbServerAddress


def _client(server: AdbServerAddress) -> adbutils.AdbClient:
    return adbutils.AdbClient(host=server.host, port=server.port, socket_timeout=_CONNECT_TIMEOUT_S)


def server_reachable(server: AdbServerAddress) -> bool:
    """A plain socket probe: an AdbClient would start a local server on 5037 instead."""
    try:
        socket.create_connection((server.host, server.port), timeout=2).close()
        return True
    except OSError:
        return False


def list_attached(servers: Sequence[AdbServerAddress]) -> list[AttachedDevice]:
    """Every device every server sees, in every state (unauthorized and offline included)."""
    out = []
    for server in servers:
        if not server_reachable(server):
            raise DeviceNotFound(
                f"no adb server at {server}",
                hint="start one with `adb start-server` (or `adb -a -P PORT server nodaemon` on a lab host)",
            )
        try:
            for info in _client(server).list():
                out.append(AttachedDevice(info.serial, info.state, server))
        except AdbError as exc:
            raise DeviceNotFound(f"adb server at {server} answered: {exc}") from None
    return out


class AdbStream:
    """A command's stdout as lines, read from the raw socket as packets arrive."""

    def __init__(self, transport: AdbTransport, command: str) -> None:
        self._t = transport
        self.command = command
        self._conn = transport._open(f"shell,v2,raw:{command}", timeout_s=_CONNECT_TIMEOUT_S)
        self._sock = self._conn.conn
        self._sock.settimeout(None)
        self.exit_code: int | None = None
        self.stderr = b""

    def lines(self) -> Iterator[str]:
        buf = b""
        try:
            for kind, data in _packets(self._sock):
                if kind == _STDOUT:
                    buf += data
                    *done, buf = buf.split(b"\n")
                    for line in done:
                        yield line.decode("utf-8", errors="replace")
                elif kind == _STDERR:
                    self.stderr += data
                elif kind == _EXIT:
                    self.exit_code = data[0] if data else 255
                    break
        except OSError as exc:
            if self._sock.fileno() == -1:  # closed by us
                return
            raise self._t._disconnected(self.command, str(exc)) from exc
        if buf:
            yield buf.decode("utf-8", errors="replace")
        if self.exit_code is None and self._sock.fileno() != -1:
            raise self._t._disconnected(self.command, "the stream ended without an exit status")

    def close(self) -> None:
        """Closing the stream makes adbd hang up the command (SIGHUP to its process group)."""
        try:
            self._conn.close()
        except OSError:
            pass


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def _packets(sock: socket.socket) -> Iterator[tuple[int, bytes]]:
    while True:
        try:
            header = _recv_exact(sock, 5)
        except EOFError:
            return
        kind = header[0]
        (length,) = struct.unpack("<I", header[1:])
        yield kind, _recv_exact(sock, length) if length else b""


class AdbTransport:
    """One device on one adb server (local USB, Wi-Fi ADB, or a remote lab host)."""

    kind = "adb"

    def __init__(self, serial: str, server: AdbServerAddress | None = None) -> None:
        self.serial = serial
        self.server = server or AdbServerAddress()
        self._device = _client(self.server).device(serial)

    @classmethod
    def from_address(cls, serial: str, server: AdbServerAddress | None = None) -> AdbTransport:
        return cls(serial, server)

    def __repr__(self) -> str:
        return f"AdbTransport({self.serial!r}, {self.server})"

    # --- errors -----------------------------------------------------------------------

    def _disconnected(self, command: str | None, why: str, stdout: bytes = b"", stderr: bytes = b"") -> DeviceDisconnected:
        return DeviceDisconnected(
            f"device disconnected: {why}", serial=self.serial, command=command,
            stdout=stdout.decode("utf-8", "replace"), stderr=stderr.decode("utf-8", "replace"),
            hint="check the cable / Wi-Fi ADB connection (`adb devices`); partial results are kept",
        )

    def _open(self, service: str, timeout_s: float):
        try:
            conn = self._device.open_transport(timeout=timeout_s)
            conn.send_command(service)
            conn.check_okay()
            return conn
        except AdbTimeout as exc:
            raise DeviceTimeout(f"no answer within {timeout_s:.0f} s", serial=self.serial, command=service) from exc
        except (AdbError, EOFError, OSError) as exc:
            text = str(exc)
            if "not found" in text:
                raise DeviceNotFound(f"device {self.serial} not found on the adb server at {self.server}",
                                     hint="see `edgebench devices`") from exc
            raise self._disconnected(service, text or type(exc).__name__) from exc

    # --- shell ------------------------------------------------------------------------

    def shell(self, cmd: str | Sequence[object], *, timeout_s: float = 60.0, check: bool = False,
              stdin: bytes | None = None) -> ShellResult:
        """Run a command; real exit code (shell v2), wall-clock timeout, typed errors."""
        command = command_text(cmd)
        start = time.monotonic()
        deadline = start + timeout_s
        conn = self._open(f"shell,v2,raw:{command}", timeout_s=min(timeout_s, _CONNECT_TIMEOUT_S))
        sock = conn.conn
        out, err = bytearray(), bytearray()
        code: int | None = None
        try:
            if stdin is not None:
                for i in range(0, len(stdin), SYNC_DATA_MAX):
                    chunk = stdin[i:i + SYNC_DATA_MAX]
                    sock.sendall(struct.pack("<BI", _STDIN, len(chunk)) + chunk)
                sock.sendall(struct.pack("<BI", _CLOSE_STDIN, 0))
            while code is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise socket.timeout()
                sock.settimeout(remaining)
                header = sock.recv(5, socket.MSG_WAITALL)
                if len(header) < 5:
                    raise EOFError("the shell stream closed without an exit status")
                kind = header[0]
                (length,) = struct.unpack("<I", header[1:])
                data = _recv_exact(sock, length) if length else b""
                if kind == _STDOUT:
                    out += data
                elif kind == _STDERR:
                    err += data
                elif kind == _EXIT:
                    code = data[0] if data else 255
        except socket.timeout:
            raise DeviceTimeout(
                f"command ran past its {timeout_s:g} s limit", serial=self.serial, command=command,
                stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"),
            ) from None
        except (EOFError, OSError) as exc:
            raise self._disconnected(command, str(exc) or type(exc).__name__, bytes(out), bytes(err)) from exc
        finally:
            conn.close()
        result = ShellResult(command, code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                             time.monotonic() - start)
        if check and code != 0:
            raise DeviceError(f"command failed with exit code {code}", serial=self.serial, command=command,
                              exit_code=code, stdout=result.stdout, stderr=result.stderr)
        return result

    def stream(self, cmd: str | Sequence[object]) -> AdbStream:
        return AdbStream(self, command_text(cmd))

    # --- files ------------------------------------------------------------------------

    def push(self, local: Path, remote: str, *, progress: Progress | None = None, mode: int = 0o644) -> PushResult:
        """sync SEND with 64 KiB DATA records; the device's FAIL reason is kept."""
        local = Path(local)
        total = local.stat().st_size
        start = time.monotonic()
        conn = self._open("sync:", timeout_s=_CONNECT_TIMEOUT_S)
        sock = conn.conn
        sock.settimeout(60.0)
        done = 0
        try:
            spec = f"{remote},{mode}".encode()
            sock.sendall(b"SEND" + struct.pack("<I", len(spec)) + spec)
            with open(local, "rb", buffering=0) as fh:
                while True:
                    chunk = fh.read(SYNC_DATA_MAX)
                    if not chunk:
                        break
                    sock.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            sock.sendall(b"DONE" + struct.pack("<I", int(local.stat().st_mtime)))
            status = _recv_exact(sock, 8)
            if status[:4] == b"FAIL":
                (n,) = struct.unpack("<I", status[4:])
                reason = _recv_exact(sock, n).decode("utf-8", "replace")
                raise DeviceError(f"push of {local.name} to {remote} refused: {reason}", serial=self.serial,
                                  command=f"push {local} {remote}")
            if status[:4] != b"OKAY":
                raise DeviceError(f"push to {remote}: unexpected sync reply {status!r}", serial=self.serial)
        except (EOFError, OSError) as exc:
            raise self._disconnected(f"push {local} {remote}", f"{exc} after {done} of {total} bytes") from exc
        finally:
            conn.close()
        return PushResult(remote, total, time.monotonic() - start)

    def pull(self, remote: str, local: Path) -> None:
        if not self.exists(remote):
            raise DeviceError(f"no file {remote} on the device", serial=self.serial, command=f"pull {remote}")
        local = Path(local)
        tmp = local.with_name(local.name + ".part")
        try:
            self._device.sync.pull(remote, str(tmp))
            os.replace(tmp, local)
        except (AdbError, EOFError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            raise self._disconnected(f"pull {remote}", str(exc) or type(exc).__name__) from exc

    def exists(self, remote: str) -> bool:
        return self.shell(["test", "-e", remote], timeout_s=30).exit_code == 0

    def free_bytes(self, remote_dir: str) -> int:
        """Free bytes for the shell user on the filesystem holding `remote_dir` (df -k)."""
        r = self.shell(f"df -k {quote(remote_dir)}", timeout_s=30)
        return parse_df_available_kib(r.stdout, self.serial, r.command) * 1024


def parse_df_available_kib(text: str, serial: str = "?", command: str = "df") -> int:
    """The `Available` column of `df -k` (toybox, busybox and coreutils agree on it)."""
    lines = [ln.split() for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) < 2:
        raise DeviceError("df printed no filesystem line", serial=serial, command=command, stdout=text)
    header = [h.lower() for h in lines[0]]
    row = lines[-1]
    col = next((i for i, h in enumerate(header) if h.startswith("avail")), 3)
    # a long filesystem name wraps onto its own line in some df versions: align from the right
    offset = len(header) - len(row) - (1 if "mounted" in header else 0)
    try:
        return int(row[col - max(offset, 0)])
    except (IndexError, ValueError):
        raise DeviceError("cannot read df's Available column", serial=serial, command=command, stdout=text) from None
