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

from suite.transport import quote

MARK = "EDGEBENCH"
#: `sh -c` script that writes its own pid to the file `$0`, then becomes the program (exec keeps the pid)
PID_EXEC = 'echo $$ > "$0" && exec "$@"'


def marked_command(argv: Sequence[str], env: Sequence[tuple[str, str]] = (), *, mask: str | None = None,
                   pid_file: str | None = None, nonce: str | None = None) -> tuple[str, str]:
    """(the shell command, its nonce): `argv` under `env`, pinned to `mask` (taskset) when given,
    between device-clock markers."""
    nonce = nonce or secrets.token_hex(4)
    prog = ("taskset " + quote(mask) + " " if mask else "") + " ".join(quote(a) for a in argv)
    if pid_file:
        prog = f"sh -c {quote(PID_EXEC)} {quote(pid_file)} {prog}"
    envs = " ".join(f"{k}={quote(v)}" for k, v in env)
    mark = f"{MARK} {nonce}"
    now = '${EPOCHREALTIME:-$(date +%s.%N)}'
    command = (f'echo "{mark} T0 {now}"; {envs + " " if envs else ""}{prog}; rc=$?; echo "{mark} T1 {now}"; '
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


__all__ = ["MARK", "PID_EXEC", "Marked", "marked_command", "read_markers"]
