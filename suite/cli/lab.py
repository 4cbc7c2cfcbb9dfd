"""`edgebench lab ...`: validate, run, status, unlock (issue 7). See docs/lab.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from suite.cli import exits
from suite.cli.options import AdbServers, ModelsDir
from suite.core.errors import EdgebenchError

lab_app = typer.Typer(help="Lab runs: a plan of devices x models x scenarios, run unattended, resumable.",
                      no_args_is_help=True)

PlanArg = Annotated[Path, typer.Argument(help="The plan file (TOML, version = 1; see docs/lab.md).")]


def _load(path: Path):
    from suite.lab.plan import load_plan  # lazy: the lab plan loads the session's gating, adbutils (~0.2 s)

    if not path.is_file():
        raise EdgebenchError(f"no plan file at {path}", exit_code=exits.USAGE)
    return load_plan(path)


def _models_dir(models_dir: Path | None) -> Path:
    from suite.models import default_models_dir  # lazy: suite.models loads onnx and numpy (~0.9 s)

    return models_dir or default_models_dir()


@lab_app.command("validate")
def lab_validate(plan: PlanArg) -> None:
    """Check a plan strictly (unknown keys, bad values: one error naming the line) and summarise it."""
    p = _load(plan)
    Console(highlight=False).print(escape(p.describe()))
    Console(highlight=False).print("[green]plan is valid[/]")


@lab_app.command("run")
def lab_run(
    plan: PlanArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List which jobs would run where (and which are done); run nothing.")] = False,
    shuffle: Annotated[bool, typer.Option("--shuffle", help="Shuffle each device's job order (seeded by the plan's shuffle_seed).")] = False,
    models_dir: ModelsDir = None,
) -> None:
    """Run every job of the plan that is not done yet, one worker per device, in parallel.

    Idempotent: done jobs are skipped (resume after a kill or a reboot by running it again).
    Exit status 0 only when every job of every device is done."""
    from suite.lab import controller  # lazy: the lab controller loads adbutils, ulid (~0.26 s)

    p = _load(plan)
    con = Console(stderr=True)
    if dry_run:
        rows = controller.dry_run(p, models_dir=_models_dir(models_dir), say=lambda m: con.print(escape(m)))
        controller.print_rows(rows, Console(highlight=False), f"plan {p.name}: dry run")
        return
    result = controller.run_plan(p, models_dir=_models_dir(models_dir), shuffle=shuffle, console=con)
    controller.print_summary(result, Console(highlight=False))
    if result.interrupted:
        raise typer.Exit(exits.INTERRUPTED)
    if not result.ok:
        raise typer.Exit(exits.FAILED)


@lab_app.command("status")
def lab_status(plan: PlanArg) -> None:
    """What is done, pending and failed, per device (offline: from the plan's journal and results)."""
    from suite.lab import controller  # lazy: the lab controller loads adbutils, ulid (~0.26 s)

    p = _load(plan)
    rows = controller.plan_status(p)
    if not rows:
        Console(highlight=False).print(f"plan {escape(p.name)}: no device has run it yet ({len(p.expand())} job(s) per device)")
        return
    controller.print_rows(rows, Console(highlight=False), f"plan {p.name}")


@lab_app.command("unlock")
def lab_unlock(
    serial: Annotated[str, typer.Argument(help="The phone whose lab lock to remove.")],
    adb: AdbServers = None,
) -> None:
    """Remove a phone's lab lock (after a controller died; a stale lock is also broken by itself)."""
    # lazy: device selection and the lab lock load adbutils and psutil (~0.16 s)
    from suite.device.select import parse_servers, resolve_one
    from suite.lab.lock import describe, force_unlock

    ref = resolve_one(serial, parse_servers(adb))
    holder = force_unlock(ref.transport())
    con = Console(highlight=False)
    con.print(f"removed the lock held by {escape(describe(holder))}" if holder else f"{escape(serial)} was not locked")
