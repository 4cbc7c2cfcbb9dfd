"""`edgebench devices ...`: list, snapshot, show, prepare, restore, clean (issue 4).

Thin commands over `suite.device.select` (selection), `suite.device.live` (identity),
`suite.device.settings` and `suite.device.provision`. Every string that comes from a
device goes through `_plain` (rich markup escaped) before a table shows it; JSON is printed
with `json.dumps` as is.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suite.catalog.socs import soc_text
from suite.cli import exits
from suite.cli.options import AdbServers, JsonOut
from suite.core.errors import EdgebenchError

devices_app = typer.Typer(
    help="Devices: list this host and every attached phone (no sub-command), snapshot, show, "
    "prepare/restore lab settings, clean.",
    invoke_without_command=True,
)

Serial = Annotated[str, typer.Argument(help="The phone's serial (see `edgebench devices`).")]


def _console() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _plain(value: Any) -> str:
    """Device strings are data, never rich markup."""
    return escape("" if value is None else str(value))


def _gib(n: Any) -> str:
    return f"{n / 2**30:.2f} GiB" if isinstance(n, (int, float)) and n else "?"


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _servers(ctx: typer.Context, adb: list[str] | None):
    from suite.device.select import parse_servers  # lazy: device selection loads adbutils and psutil (~0.16 s)

    if not adb and ctx.parent is not None and ctx.parent.params.get("adb"):
        adb = ctx.parent.params["adb"]
    return parse_servers(adb)


def _one(ctx: typer.Context, serial: str, adb: list[str] | None):
    from suite.device.select import resolve_one  # lazy: device selection loads adbutils and psutil (~0.16 s)

    ref = resolve_one(serial, _servers(ctx, adb))
    if ref.kind == "local":
        raise EdgebenchError("this command is for phones; `local` is this host", exit_code=exits.USAGE)
    return ref


# --- listing -----------------------------------------------------------------------------


def phone_row(ref, salt: str | None = None) -> dict[str, Any]:
    """One phone's listing record: DeviceInfo plus battery, thermal status and connection."""
    # lazy: device selection and the transport load adbutils and psutil (~0.16 s)
    from suite.device.select import STATE_HINTS
    from suite.transport import DeviceError

    base = {"serial": ref.serial, "state": ref.state, "adb_server": str(ref.server) if ref.server else None}
    if not ref.ready:
        return base | {"hint": STATE_HINTS.get(ref.state, "check `adb devices`")}
    try:
        live = ref.live()
        info = ref.info(salt).to_dict()
    except DeviceError as exc:
        return base | {"state": "error", "error": exc.message}
    snap = live.snapshot
    batt = snap.get("battery") or {}
    thermal = snap.get("thermal") or {}
    return base | info | {
        "battery": {k: batt.get(k) for k in ("level", "temp_c", "status", "plugged", "current_a", "voltage_v", "power_w")},
        "charging": (batt.get("status") or "").lower() == "charging" if batt.get("status") else None,
        "thermal_status": thermal.get("status"),
    }


def list_devices(servers) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows, notes): local first, then every phone of every reachable server."""
    # lazy: the device layer and the sensors load adbutils and psutil (~0.16 s)
    from suite.device.identity import lab_salt, local_device_info
    from suite.device.select import attached
    from suite.sensors.local import LocalSampler
    from suite.transport import DeviceNotFound

    local = local_device_info().to_dict()
    sensors = LocalSampler().availability()
    local["sensors"] = {k: ("available" if v is None else f"unavailable: {v}") for k, v in sensors.items()}
    local["state"] = "device"
    notes: list[str] = []
    refs = []
    for server in servers:
        try:
            refs += attached([server])
        except DeviceNotFound as exc:
            notes.append(f"{exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
    salt = lab_salt()
    rows: list[dict[str, Any]] = [local]
    if refs:
        with ThreadPoolExecutor(max_workers=min(8, len(refs))) as pool:
            rows += list(pool.map(lambda r: phone_row(r, salt), refs))
    return rows, notes


@devices_app.callback(invoke_without_command=True)
def devices(ctx: typer.Context, adb: AdbServers = None, as_json: JsonOut = False) -> None:
    """List the devices edgebench can benchmark: this host (`local`) and every attached phone."""
    if ctx.invoked_subcommand is not None:
        return
    from suite.device.select import parse_servers  # lazy: device selection loads adbutils and psutil (~0.16 s)

    rows, notes = list_devices(parse_servers(adb))
    err = _err()
    for note in notes:
        err.print(f"[yellow]note:[/] {_plain(note)}")
    if as_json:
        _echo_json(rows)
        return
    out = _console()
    t = Table(title="Devices")
    for col in ("device", "state", "manufacturer / model", "SoC", "tier", "RAM", "OS", "ABI", "battery", "transport"):
        t.add_column(col, overflow="fold")
    for r in rows:
        os_ = r.get("os") or {}
        if r is rows[0]:  # local
            cpu = r.get("cpu") or {}
            t.add_row("local", "device", _plain(cpu.get("model") or "?"), "", _plain(r.get("tier")),
                      _gib(r.get("ram_bytes")), _plain(f"{os_.get('name') or ''} {os_.get('release') or ''}".strip()),
                      _plain(r.get("abi")), "", _plain(r.get("transport")))
            continue
        if "device_id" not in r:
            why = r.get("error") or r.get("hint") or ""
            t.add_row(_plain(r["serial"]), f"[red]{_plain(r['state'])}[/]", f"[dim]{_plain(why)}[/]",
                      "", "", "", "", "", "", "adb")
            continue
        soc = _plain(soc_text(r.get("soc_vendor"), r.get("soc_model")))
        if r.get("soc_name"):
            soc += f" ({_plain(r['soc_name'])})"
        b = r.get("battery") or {}
        batt = ", ".join(x for x in (
            f"{b['level']:g}%" if b.get("level") is not None else "",
            f"{b['temp_c']:g} °C" if b.get("temp_c") is not None else "",
            _plain(b.get("status") or ""),
        ) if x)
        android = f"Android {_plain(os_.get('android_release') or '?')} (SDK {_plain(os_.get('sdk') or '?')})"
        sim = " [dim](simulated)[/]" if r.get("simulated") else ""
        t.add_row(_plain(r["serial"]), "device", f"{_plain(r.get('manufacturer'))} {_plain(r.get('model'))}{sim}",
                  soc or "?", _plain(r.get("tier")), _gib(r.get("ram_bytes")), android, _plain(r.get("abi")), batt,
                  f"adb {_plain(r.get('adb_server'))}")
    out.print(t)
    sensors = rows[0].get("sensors") or {}
    s_table = Table(title="Sensors of local")
    s_table.add_column("sensor")
    s_table.add_column("status", overflow="fold")
    for name, status in sensors.items():
        s_table.add_row(_plain(name), "[green]available[/]" if status == "available" else f"[dim]{_plain(status)}[/]")
    out.print(s_table)


# --- snapshot / show ---------------------------------------------------------------------


def _print_snapshot(data: dict[str, Any], title: str) -> None:
    t = Table(title=_plain(title))
    t.add_column("field")
    t.add_column("value", overflow="fold")
    for key in ("manufacturer", "model", "soc_vendor", "soc_model", "soc_name", "tier", "ram_bytes",
                "android_release", "sdk", "abi", "fingerprint", "kernel"):
        t.add_row(key, _plain(data.get(key)))
    for c in data.get("cpu_clusters") or []:
        t.add_row(f"cluster {_plain(c.get('policy') or '')}",
                  _plain(f"cpus {c.get('cpus')} {c.get('core') or ''} max {c.get('max_khz')} kHz {c.get('governor') or ''}"))
    batt = data.get("battery") or {}
    t.add_row("battery", _plain(", ".join(f"{k}={v}" for k, v in batt.items()
                                          if v is not None and k not in ("current_convention", "sign_convention"))))
    thermal = data.get("thermal") or {}
    t.add_row("thermal status", _plain(f"{thermal.get('status')} {thermal.get('status_name') or ''}".strip()))
    for s in thermal.get("sensors") or []:
        t.add_row(f"  {_plain(s.get('source'))} {_plain(s.get('name'))}", _plain(f"{s.get('temp_c')} °C"))
    for key, reason in (data.get("unavailable") or {}).items():
        t.add_row(f"[dim]{_plain(key)}[/]", f"[dim]unavailable: {_plain(reason)}[/]")
    _console().print(t)


@devices_app.command("snapshot")
def devices_snapshot(
    ctx: typer.Context,
    serial: Serial,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the snapshot files into.")],
    adb: AdbServers = None,
    as_json: JsonOut = False,
) -> None:
    """Save the raw texts edgebench reads from a phone (getprop.txt, proc_cpuinfo.txt, ...)."""
    from suite.device.live import save_snapshot  # lazy: the live phone loads adbutils (~0.18 s)

    ref = _one(ctx, serial, adb)
    data = save_snapshot(ref.transport(), out)
    if as_json:
        _echo_json(data)
        return
    files = sorted(p.name for p in Path(out).iterdir() if p.is_file())
    _console().print(f"snapshot of {_plain(serial)} written to [bold]{_plain(out)}[/]: {_plain(', '.join(files))}")


@devices_app.command("show")
def devices_show(
    ctx: typer.Context,
    serial: Annotated[str | None, typer.Argument(help="A phone's serial (live).")] = None,
    snapshot: Annotated[Path | None, typer.Option("--snapshot", help="A folder saved by `devices snapshot` (offline).")] = None,
    adb: AdbServers = None,
    as_json: JsonOut = False,
) -> None:
    """Show a phone's identity and state, live (SERIAL) or from a saved snapshot folder."""
    if (serial is None) == (snapshot is None):
        raise EdgebenchError("give a SERIAL (live phone) or --snapshot DIR (saved folder), not both",
                             hint="e.g. `edgebench devices show R5CT...` or `edgebench devices show --snapshot snap/`",
                             exit_code=exits.USAGE)
    if snapshot is not None:
        from suite.device.android.snapshot import parse_snapshot  # lazy: loads psutil and the SoC catalog

        if not snapshot.is_dir():
            raise EdgebenchError(f"no snapshot folder at {snapshot}")
        data, title = parse_snapshot(snapshot), f"Snapshot {snapshot}"
    else:
        ref = _one(ctx, serial, adb)
        data, title = dict(ref.live().snapshot), f"{serial} (live)"
    if as_json:
        _echo_json(data)
        return
    _print_snapshot(data, title)


# --- prepare / restore / clean -----------------------------------------------------------


def _print_steps(state, title: str, restoring: bool = False) -> None:
    t = Table(title=_plain(title))
    for col in ("step", "setting", "previous", "target", "applied", "restored" if restoring else "note"):
        t.add_column(col, overflow="fold")
    for s in state.steps:
        last = (("yes" if s.restored else "no" if s.restored is False else "-") + (f" ({_plain(s.restore_reason)})" if s.restore_reason else "")
                if restoring else _plain(s.reason or ""))
        t.add_row(s.step, _plain(f"{s.namespace}/{s.key}"), _plain(s.previous), _plain(s.target),
                  "[green]yes[/]" if s.applied else "[yellow]no[/]", last)
    _console().print(t)


@devices_app.command("prepare")
def devices_prepare(
    ctx: typer.Context,
    serial: Serial,
    airplane: Annotated[bool | None, typer.Option("--airplane/--no-airplane", help="Airplane mode [default: on, except over Wi-Fi ADB].")] = None,
    adb: AdbServers = None,
    as_json: JsonOut = False,
) -> None:
    """Apply the lab settings for measurements (stay awake, fixed brightness, airplane mode,
    adaptive battery off), recording the previous values on the phone for `restore`."""
    from suite.device.settings import prepare  # lazy: the live phone loads adbutils (~0.17 s)

    state = prepare(_one(ctx, serial, adb).transport(), airplane=airplane)
    if as_json:
        _echo_json(state.to_dict())
        return
    _print_steps(state, f"{serial} prepared")


@devices_app.command("restore")
def devices_restore(ctx: typer.Context, serial: Serial, adb: AdbServers = None, as_json: JsonOut = False) -> None:
    """Put back the settings `devices prepare` changed."""
    from suite.device.settings import restore  # lazy: the live phone loads adbutils (~0.17 s)

    state = restore(_one(ctx, serial, adb).transport())
    if as_json:
        _echo_json(state.to_dict())
        return
    _print_steps(state, f"{serial} restored", restoring=True)


@devices_app.command("clean")
def devices_clean(
    ctx: typer.Context,
    serial: Serial,
    force: Annotated[bool, typer.Option("--force", help="Clean even while the phone is prepared (loses the restore record).")] = False,
    adb: AdbServers = None,
) -> None:
    """Remove everything edgebench put on the phone (/data/local/tmp/edgebench/)."""
    # lazy: provisioning loads adbutils (~0.1 s); the lab package is not for start-up
    from suite.device.provision import clean
    from suite.lab.lock import describe, read_lock

    transport = _one(ctx, serial, adb).transport()
    holder = read_lock(transport)
    if holder is not None and not force:
        raise EdgebenchError(f"{serial} is in use by a lab controller: {describe(holder)}",
                             hint=f"wait for it, or `edgebench lab unlock {serial}` if it is dead; --force cleans "
                             "anyway",
                             exit_code=exits.DEVICE_BUSY)
    rep = clean(transport, force=force)
    if not rep.existed:
        _console().print(f"nothing to clean on {_plain(serial)} ({_plain(rep.work_dir)} does not exist)")
        return
    size = f" ({rep.bytes_removed / 2**20:.1f} MiB)" if rep.bytes_removed is not None else ""
    _console().print(f"removed {_plain(rep.work_dir)} from {_plain(serial)}{size}")
