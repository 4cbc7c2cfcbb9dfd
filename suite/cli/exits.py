"""Every exit code `edgebench` returns, with its meaning: the one table.

Errors carry a code (`exit_code`, a class attribute or an argument; suite/core/errors.py);
`main()` exits with it only when it is in this table, and with 1 otherwise, so a code outside
the table (a device command's own status, say) never becomes the CLI's. README.md lists the
table under "Exit codes"; tests/test_cli_exits.py keeps the code, the table and the README in step.
"""

from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2
NO_DEVICE = 3
DOES_NOT_FIT = 4
GATE_SKIPPED = 5
DEVICE_BUSY = 6
INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    OK: "ok",
    FAILED: "failed: a run, a device or an import failed, or `compare` found a change for the worse",
    USAGE: "usage or bad input: an unknown name, a bad option or plan, a file that is not there",
    NO_DEVICE: "no device: none of a lab plan's devices is attached; or no room: not enough disk for a model "
    "(this host or the phone)",
    DOES_NOT_FIT: "does not fit: the model ran out of the device's memory (outcome oom)",
    GATE_SKIPPED: "gate skipped: a cooldown or battery gate skipped the run or timed out",
    DEVICE_BUSY: "device busy: another lab controller holds the phone's lock",
    INTERRUPTED: "interrupted (Ctrl-C) during a run or a lab run; what was measured is recorded",
}


def code(value: object) -> int:
    """`value` when the table has it, else FAILED."""
    return value if type(value) is int and value in EXIT_CODES else FAILED


def error_code(exc: BaseException) -> int:
    """The code for an error: its `exit_code` through the table; never OK (an error is not a success)."""
    found = code(getattr(exc, "exit_code", FAILED))
    return FAILED if found == OK else found
