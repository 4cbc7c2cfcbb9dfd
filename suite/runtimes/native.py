"""What every native runtime's invocation on a device shell shares: the device-clock markers around it,
its pid written for the sampler, the environment, the CPU mask; and reading the markers back.

One invocation is one shell command that prints `EDGEBENCH <nonce> T0 <device time>`, runs the program
(its pid written to `pid_file` first: `sh -c` that execs it, so it stays in the foreground and dies with
the shell), then prints `T1` and `RC <exit status>`. `$EPOCHREALTIME` is mksh's (Android's sh);
`date +%s.%N` the fallback of other shells. Every value is quoted for the shell.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from suite.core.filehash import local_sha256
from suite.device.elf import ElfError, bundle_elf_files, check_bundle_abi
from suite.transport import quote

MARK = "EDGEBENCH"
#: `sh -c` script that writes its own pid to the file `$0`, then becomes the program (exec keeps the pid)
PID_EXEC = 'echo $$ > "$0" && exec "$@"'


def marked_command(argv: Sequence[str], env: Sequence[tuple[str, str]] = (), *, mask: str | None = None,
                   pid_file: str | None = None, nonce: str | None = None, cwd: str | None = None) -> tuple[str, str]:
    """(the shell command, its nonce): `argv` under `env`, pinned to `mask` (taskset) when given, in the
    folder `cwd` when given, between device-clock markers."""
    nonce = nonce or secrets.token_hex(4)
    prog = ("taskset " + quote(mask) + " " if mask else "") + " ".join(quote(a) for a in argv)
    if pid_file:
        prog = f"sh -c {quote(PID_EXEC)} {quote(pid_file)} {prog}"
    envs = " ".join(f"{k}={quote(v)}" for k, v in env)
    mark = f"{MARK} {nonce}"
    now = '${EPOCHREALTIME:-$(date +%s.%N)}'
    cd = f"cd {quote(cwd)} && " if cwd else ""
    command = (f'echo "{mark} T0 {now}"; {cd}{envs + " " if envs else ""}{prog}; rc=$?; echo "{mark} T1 {now}"; '
               f'echo "{mark} RC $rc"')
    return command, nonce


@dataclass
class Marked:
    """An invocation's output: device-clock start and end, exit status, and its own stdout lines."""

    t_start: float | None
    t_end: float | None
    exit_code: int | None
    text: str


def read_markers(stdout: str, nonce: str) -> Marked:
    mark = f"{MARK} {nonce} "
    t0 = t1 = rc = None
    body: list[str] = []
    for line in stdout.splitlines():
        if line.startswith(mark):
            key, _, value = line[len(mark):].partition(" ")
            try:
                if key == "T0":
                    t0 = float(value)
                elif key == "T1":
                    t1 = float(value)
                elif key == "RC":
                    rc = int(value)
            except ValueError:
                pass
            continue
        body.append(line)
    return Marked(t0, t1, rc, "\n".join(body))


class VendorBundle:
    """What the runtimes of a user's vendor build share (LiteRT-LM, ExecuTorch, Genie): the bundle is one
    folder holding the first of `binaries` found and the `*.so` files beside it or in `lib/`; every ELF is
    checked against the device's ABI before anything is pushed (Hexagon DSP libraries excepted), and the
    binary's sha256 pins it."""

    binaries: tuple[str, ...] = ()
    bundle_hint: str = ""

    def bundle_binary(self, bundle: Path) -> str:
        """The binary the bundle holds (its name); an ElfError naming the expected ones when none is there."""
        for name in self.binaries:
            if (Path(bundle) / name).is_file():
                return name
        raise ElfError(f"no {' or '.join(self.binaries)} in the bundle {bundle}", hint=self.bundle_hint)

    def bundle_files(self, bundle: Path) -> dict[str, Path]:
        root = Path(bundle)
        return {f.relative_to(root).as_posix(): f
                for f in bundle_elf_files(root, self.bundle_binary(root), flat=True)}

    def check_bundle(self, bundle: Path, device_abi: str) -> dict[str, str]:
        return check_bundle_abi(Path(bundle), device_abi, self.bundle_binary(Path(bundle)), flat=True,
                                build_hint=f"use the build for the phone's ABI ({{abi}}): {self.bundle_hint}")

    def binary_sha256(self, bundle: Path) -> str | None:
        try:
            return local_sha256(Path(bundle) / self.bundle_binary(Path(bundle)))
        except ElfError:
            return None

    def bundle_version(self, bundle: Path) -> str:
        digest = self.binary_sha256(bundle)
        return "sha256:" + digest[:16] if digest else "unknown"

    @staticmethod
    def lib_env(bundle_remote: str) -> tuple[tuple[str, str], ...]:
        """The libraries' search paths on the device: the bundle's folder and its lib/ for the CPU's loader,
        and first for the DSP's (`ADSP_LIBRARY_PATH`, `;`-separated, then the system's DSP folders)."""
        libs = f"{bundle_remote}:{bundle_remote}/lib"
        dsp = ";".join((bundle_remote, f"{bundle_remote}/lib", *DSP_SYSTEM_DIRS))
        return (("LD_LIBRARY_PATH", libs), ("ADSP_LIBRARY_PATH", dsp))


#: where Android keeps the DSP's libraries (after the bundle's own in ADSP_LIBRARY_PATH)
DSP_SYSTEM_DIRS = ("/vendor/dsp/cdsp", "/vendor/lib/rfsa/adsp", "/system/lib/rfsa/adsp", "/dsp")


__all__ = ["DSP_SYSTEM_DIRS", "MARK", "PID_EXEC", "Marked", "VendorBundle", "marked_command", "read_markers"]
