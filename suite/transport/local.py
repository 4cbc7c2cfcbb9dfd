"""This host as a transport: the same surface as adb, through subprocess and the filesystem."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from suite.transport.base import (
    DeviceError,
    DeviceTimeout,
    Progress,
    PushResult,
    ShellResult,
    command_text,
)

_CHUNK = 1 << 20


class LocalStream:
    def __init__(self, command: str) -> None:
        self.command = command
        self._proc = subprocess.Popen(["/bin/sh", "-c", command], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.exit_code: int | None = None

    def lines(self) -> Iterator[str]:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            yield line.rstrip("\n")
        self.exit_code = self._proc.wait()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self.exit_code = self._proc.returncode


class LocalTransport:
    kind = "local"
    serial = "local"

    @classmethod
    def from_address(cls, serial: str = "local", server: Any = None) -> LocalTransport:
        """This host: there is one, so the address says nothing."""
        return cls()

    def shell(self, cmd: str | Sequence[object], *, timeout_s: float = 60.0, check: bool = False,
              stdin: bytes | None = None) -> ShellResult:
        command = command_text(cmd)
        start = time.monotonic()
        try:
            p = subprocess.run(["/bin/sh", "-c", command], input=stdin, capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise DeviceTimeout(f"command ran past its {timeout_s:g} s limit", serial="local", command=command,
                                stdout=(exc.stdout or b"").decode("utf-8", "replace")) from None
        result = ShellResult(command, p.returncode, p.stdout.decode("utf-8", "replace"),
                             p.stderr.decode("utf-8", "replace"), time.monotonic() - start)
        if check and p.returncode != 0:
            raise DeviceError(f"command failed with exit code {p.returncode}", serial="local", command=command,
                              exit_code=p.returncode, stdout=result.stdout, stderr=result.stderr)
        return result

    def stream(self, cmd: str | Sequence[object]) -> LocalStream:
        return LocalStream(command_text(cmd))

    def push(self, local: Path, remote: str, *, progress: Progress | None = None, mode: int = 0o644) -> PushResult:
        src, dst = Path(local), Path(remote)
        total = src.stat().st_size
        start = time.monotonic()
        dst.parent.mkdir(parents=True, exist_ok=True)
        done = 0
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            while chunk := fi.read(_CHUNK):
                fo.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        dst.chmod(mode)
        return PushResult(remote, total, time.monotonic() - start)

    def pull(self, remote: str, local: Path) -> None:
        if not Path(remote).exists():
            raise DeviceError(f"no file {remote}", serial="local", command=f"pull {remote}")
        shutil.copyfile(remote, local)

    def exists(self, remote: str) -> bool:
        return Path(remote).exists()

    def free_bytes(self, remote_dir: str) -> int:
        return shutil.disk_usage(remote_dir).free
