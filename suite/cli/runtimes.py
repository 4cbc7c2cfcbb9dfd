"""`edgebench runtimes ...`: list, build and clean edgebench's own native runtime builds.

Thin commands over the engines' build modules, `suite.runtimes.build.llama_cpp` and
`suite.runtimes.build.whisper_cpp` (each build and its cache), and `suite.runtimes.build.variants`
(ABIs and CPU variants).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from suite.cli import exits
from suite.cli.options import JsonOut
from suite.core.errors import EdgebenchError

runtimes_app = typer.Typer(help="edgebench's own native runtimes (llama.cpp's llama-bench; whisper.cpp's "
                           "whisper-bench and edgebench's driver edgebench-whisper), static, per ABI and CPU variant: "
                           "list the cached builds, build ahead of time, clean.", no_args_is_help=True)

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

#: the engines `runtimes build` builds, and their build modules (the llama.cpp runtime drives llama.cpp's
#: benchmark binary, llama-bench, which is its alias)
ENGINES = {"llama.cpp": "llama_cpp", "llama-bench": "llama_cpp", "whisper.cpp": "whisper_cpp"}


def _module(engine: str) -> ModuleType:
    """The build module of an engine (imported here: only these commands need them)."""
    import importlib

    return importlib.import_module(f"suite.runtimes.build.{ENGINES[engine]}")


def _engines() -> list[ModuleType]:
    """Each engine's build module once (aliases folded)."""
    return [_module(engine) for engine in ("llama.cpp", "whisper.cpp")]


@runtimes_app.command("list")
def runtimes_list(as_json: JsonOut = False) -> None:
    """The cached builds: engine, source, ABI, CPU variant, toolchain, sha256, size, path."""
    from suite.runtimes.build.cmake_build import runtimes_dir

    rows = []
    for module in _engines():
        for built, problem in module.list_built():
            m = built.manifest
            rows.append({"engine": m.get("engine"), "commit": m.get("commit"),
                         "source": m.get("source"), "abi": m.get("abi"), "variant": m.get("variant"),
                         "toolchain": m.get("toolchain"), "sha256": m.get("sha256"), "size_bytes": m.get("size_bytes"),
                         "binaries": built.listing(),
                         "built_at": m.get("built_at"), "path": str(built.path), "intact": problem is None,
                         "problem": problem})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"no native runtime built yet (cache: {escape(str(runtimes_dir()))}); "
                      "`edgebench runtimes build llama.cpp --abi arm64-v8a` (or whisper.cpp) builds one, and a run "
                      "builds what it needs")
        return
    t = Table(title="Native runtimes", caption=f"cached under {escape(str(runtimes_dir()))}")
    for col in ("build", "toolchain", "size", "sha256", "state"):
        t.add_column(col, no_wrap=col != "state", min_width=5 if col == "state" else None)
    for r in rows:
        tc = r["toolchain"] or {}
        sizes = " + ".join(f"{(b['size_bytes'] or 0) / 1e6:.1f}" for b in r["binaries"].values())
        t.add_row(escape(f"{r['engine']} {str(r['commit'] or '')[:7]} {r['abi']}/{r['variant']}"),
                  escape(str(tc.get("compiler", ""))), f"{sizes} MB", escape(str(r["sha256"] or "")[:8]),
                  "ok" if r["intact"] else f"[red]corrupt[/]: {escape(str(r['problem']))}")
    console.print(t)
    console.print("folders: " + ", ".join(escape(Path(r["path"]).name) for r in rows) + " (--json: full paths)")


@runtimes_app.command("build")
def runtimes_build(
    engine: Annotated[str, typer.Argument(
        help="The engine to build: llama.cpp (its llama-bench binary; alias llama-bench) or whisper.cpp "
             "(whisper-bench and edgebench's driver edgebench-whisper).")],
    abi: Annotated[str, typer.Option(help="arm64-v8a (phones) or x86_64 (this host, loopback phones, x86 boards).")],
    variant: Annotated[str, typer.Option(
        help="CPU variant: arm64-v8a armv8.0|dotprod|i8mm, x86_64 x86-64-v2|v3|v4; `auto`: this host's best "
             "(x86_64), or all three (arm64-v8a, for phones not seen yet); `all`: every variant.")] = "auto",
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Parallel compile jobs [default: the CPU count].")]
    = None,
) -> None:
    """Build a native runtime ahead of time (a lab host before a run; a host that will be offline)."""
    from suite.runtimes.build import variants  # lazy: only this command needs the build modules

    if engine not in ENGINES:
        raise EdgebenchError(f"unknown engine {engine!r}; edgebench builds {', '.join(ENGINES)}",
                             exit_code=exits.USAGE)
    abi = variants.normalize_abi(abi)
    if variant == "all" or (variant == "auto" and abi != variants.X86_64):
        names = list(variants.VARIANTS[abi])
    elif variant == "auto":
        with open("/proc/cpuinfo") as fh:
            names = [variants.choose_variant(abi, variants.cpu_features(fh.read())).variant.name]
    else:
        names = [variants.get_variant(abi, variant).name]
    module = _module(engine)
    for name in names:
        built = _build(module, abi, name, jobs)
        m = built.manifest
        sizes = ", ".join(f"{n} {b['size_bytes'] / 1e6:.1f} MB" for n, b in built.listing().items())
        console.print(f"[green]built[/] {module.ENGINE} {m['commit'][:9]} {abi}/{name}: {escape(str(built.path))} "
                      f"({sizes}; sha256 {m['sha256'][:16]})")


def _build(module: ModuleType, abi: str, name: str, jobs: int | None):
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task(f"{module.ENGINE} {abi}/{name}", total=None)

        def step(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total)

        def say(msg: str) -> None:
            progress.console.print(escape(msg))

        return module.ensure_built(abi, name, progress=step, say=say, jobs=jobs)


@runtimes_app.command("clean")
def runtimes_clean(
    everything: Annotated[bool, typer.Option("--all", help="Also the fetched sources and zig's compiler cache.")]
    = False,
) -> None:
    """Remove the cached native builds of every engine (the next run that needs one builds it again)."""
    from suite.runtimes.build.cmake_build import clean

    removed = clean(tuple(module.ENGINE for module in _engines()), everything=everything)
    for path in removed:
        console.print(f"removed {escape(str(path))}")
    if not removed:
        console.print("nothing to remove")
