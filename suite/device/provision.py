"""Files on a device: a per-device work dir with a manifest, so a model is pushed once.

Layout: everything edgebench puts on a phone lives under `WORK_DIR`
(`/data/local/tmp/edgebench/`); `MANIFEST` there maps each file's name (relative to the work
dir) to the size and sha256 it was pushed with and the size and mtime the device reported
right after the push was verified.

`ensure_files` costs one shell round trip when everything is cached: it reads the manifest
and `stat`s every file in the same call and compares (size, mtime) with the manifest, so a
multi-GB model is not re-hashed on the device each run. A file truncated, rewritten or
touched on the device has another size or mtime and is pushed again. Local hashes are cached
on the host by (path, size, mtime_ns, inode). Before pushing: free space is checked (refused
with the numbers), stale copies are removed, and their manifest entries dropped first, so a
push cut short (unplugged phone) never leaves a claimed partial file. After each push the
device's `sha256sum` must equal the local hash before the file is recorded.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from suite.core.errors import ArtifactCorruptError, EdgebenchError, InsufficientDiskError
from suite.core.filehash import local_sha256
from suite.transport.base import DeviceError, Transport, quote

WORK_DIR = "/data/local/tmp/edgebench"
MANIFEST = ".edgebench-manifest.json"
MANIFEST_VERSION = 1
#: What `devices prepare` changed (kept here so a restore from another host knows), and its undo.
PREPARED_FILE = "prepared.json"
RESTORED_FILE = "restored.json"
#: room kept free on the device beyond what the files need (logs, the runtime's scratch)
FREE_MARGIN_BYTES = 16 * 1024 * 1024
_SHELL_TIMEOUT_S = 120.0

#: (bytes pushed so far, bytes to push in all) over the whole call
Progress = Callable[[int, int], None]


class ProvisionError(EdgebenchError):
    pass


@dataclass(frozen=True)
class FileReport:
    name: str
    remote: str
    bytes: int
    sha256: str
    pushed: bool
    seconds: float = 0.0
    why: str = ""  # why it was pushed (or "cached")


@dataclass(frozen=True)
class ProvisionReport:
    serial: str
    work_dir: str
    files: tuple[FileReport, ...]
    seconds: float  # the whole call
    push_seconds: float  # time in pushes only
    free_bytes_before: int | None = None

    @property
    def pushed(self) -> tuple[FileReport, ...]:
        return tuple(f for f in self.files if f.pushed)

    @property
    def cached(self) -> tuple[FileReport, ...]:
        return tuple(f for f in self.files if not f.pushed)

    @property
    def bytes_pushed(self) -> int:
        return sum(f.bytes for f in self.pushed)

    @property
    def bytes_cached(self) -> int:
        return sum(f.bytes for f in self.cached)

    @property
    def throughput_bytes_per_s(self) -> float | None:
        return self.bytes_pushed / self.push_seconds if self.pushed and self.push_seconds > 0 else None

    def remote(self, name: str) -> str:
        return next(f.remote for f in self.files if f.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial, "work_dir": self.work_dir, "seconds": self.seconds,
            "push_seconds": self.push_seconds, "bytes_pushed": self.bytes_pushed,
            "bytes_cached": self.bytes_cached, "throughput_bytes_per_s": self.throughput_bytes_per_s,
            "free_bytes_before": self.free_bytes_before, "files": [asdict(f) for f in self.files],
        }


# --- names ---------------------------------------------------------------------------------


def check_name(name: str) -> str:
    """A remote name relative to the work dir: any characters (quoted on the way to the shell)
    except what would leave the work dir or break the line-based stat output."""
    parts = name.split("/")
    if (not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts)
            or any(c in name for c in "\n\r\0") or name == MANIFEST):
        raise ProvisionError(f"bad remote file name {name!r}",
                             hint="a relative path inside the work dir: no leading /, no '..', no newline")
    return name


def remote_path(name: str, work_dir: str = WORK_DIR) -> str:
    return f"{work_dir.rstrip('/')}/{check_name(name)}"


# --- device side -----------------------------------------------------------------------------


@dataclass
class _DeviceView:
    manifest: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)  # remote path -> (size, mtime)
    manifest_problem: str | None = None


_MANIFEST_MARK = "@@edgebench-manifest-end@@"


def _read_device(transport: Transport, work_dir: str, remotes: list[str]) -> _DeviceView:
    """Manifest + stat of every remote in one round trip (creates the work dir)."""
    wd = quote(work_dir)
    script = (f"mkdir -p {wd} && cat {quote(work_dir + '/' + MANIFEST)} 2>/dev/null; "
              f"echo; echo {_MANIFEST_MARK}; ")
    if remotes:
        script += "stat -c '%s %Y %n' -- " + " ".join(quote(r) for r in remotes) + " 2>/dev/null"
    r = transport.shell(script + "\nexit 0", timeout_s=_SHELL_TIMEOUT_S)
    head, sep, tail = r.stdout.partition(f"\n{_MANIFEST_MARK}\n")
    if not sep:
        raise DeviceError("cannot read the provisioning manifest", serial=transport.serial,
                          command=r.command, exit_code=r.exit_code, stdout=r.stdout, stderr=r.stderr)
    view = _DeviceView()
    text = head.strip()
    if text:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
                raise ValueError("no 'files' object")
            view.manifest = {k: v for k, v in data["files"].items() if isinstance(v, dict)}
        except ValueError as exc:
            view.manifest_problem = f"manifest unreadable ({exc}); treated as empty"
    for line in tail.splitlines():
        size, _, rest = line.partition(" ")
        mtime, _, name = rest.partition(" ")
        if size.isdigit() and mtime.lstrip("-").isdigit() and name:
            view.stats[name] = (int(size), int(mtime))
    return view


def _write_manifest(transport: Transport, work_dir: str, files: Mapping[str, dict[str, Any]]) -> None:
    data = json.dumps({"manifest_version": MANIFEST_VERSION, "work_dir": work_dir, "files": dict(sorted(files.items()))},
                      indent=1).encode()
    path = f"{work_dir}/{MANIFEST}"
    transport.shell(f"cat > {quote(path + '.tmp')} && mv -f {quote(path + '.tmp')} {quote(path)}",
                    stdin=data, timeout_s=_SHELL_TIMEOUT_S, check=True)


def _device_sha256_and_stat(transport: Transport, remote: str) -> tuple[str | None, tuple[int, int] | None, str]:
    r = transport.shell(f"sha256sum -- {quote(remote)} && stat -c '%s %Y' -- {quote(remote)}",
                        timeout_s=max(_SHELL_TIMEOUT_S, 600.0))
    lines = r.stdout.splitlines()
    digest = lines[0].split()[0].lower() if lines and lines[0].split() else None
    st = None
    if len(lines) > 1:
        parts = lines[1].split()
        if len(parts) == 2 and all(p.lstrip("-").isdigit() for p in parts):
            st = (int(parts[0]), int(parts[1]))
    return digest, st, (r.stderr or r.stdout).strip()


# --- the API ---------------------------------------------------------------------------------


#: A context manager held around the pushes of one ensure_files call (None: no limit). A lab
#: worker sets a semaphore shared with the other workers: phones on one USB hub push N at a time.
PUSH_GATE: contextlib.AbstractContextManager | None = None


def ensure_files(transport: Transport, files: Mapping[str, Path], progress: Progress | None = None, *,
                 work_dir: str = WORK_DIR, verify: bool = False) -> ProvisionReport:
    """Make every `files` entry (remote name relative to `work_dir` -> local file) present on
    the device with the right content; push only what is missing or changed.

    `verify=True` re-hashes cached files on the device too (slow; the manifest check is
    normally enough). Raises InsufficientDiskError before pushing anything when the device
    lacks room, DeviceDisconnected when the phone goes away (the manifest then claims only
    verified files), ArtifactCorruptError when a pushed file's device hash differs."""
    t_start = time.monotonic()
    names = [check_name(n) for n in files]
    if len(set(names)) != len(names):
        raise ProvisionError("a remote name is given twice")
    local = {n: Path(files[n]) for n in names}
    for n, p in local.items():
        if not p.is_file():
            raise ProvisionError(f"no local file {p} (for {n!r})")
    remotes = {n: remote_path(n, work_dir) for n in names}
    sizes = {n: local[n].stat().st_size for n in names}
    hashes = {n: local_sha256(local[n]) for n in names}

    view = _read_device(transport, work_dir, list(remotes.values()))
    manifest = dict(view.manifest)
    to_push: dict[str, str] = {}
    for n in names:
        entry = manifest.get(n)
        st = view.stats.get(remotes[n])
        if st is None:
            to_push[n] = "not on the device"
        elif not entry:
            to_push[n] = "not in the manifest"
        elif entry.get("sha256") != hashes[n] or entry.get("size") != sizes[n]:
            to_push[n] = "local file changed"
        elif (entry.get("device_size"), entry.get("device_mtime")) != st:
            to_push[n] = f"changed on the device (size/mtime {st[0]}/{st[1]}, manifest {entry.get('device_size')}/{entry.get('device_mtime')})"
    if verify:
        for n in names:
            if n not in to_push:
                digest, _, _ = _device_sha256_and_stat(transport, remotes[n])
                if digest != hashes[n]:
                    to_push[n] = "device hash differs (verify)"

    free_before = None
    if to_push:
        need = sum(sizes[n] for n in to_push)
        reclaim = sum(view.stats[remotes[n]][0] for n in to_push if remotes[n] in view.stats)
        free_before = transport.free_bytes(work_dir)
        if need + FREE_MARGIN_BYTES > free_before + reclaim:
            raise InsufficientDiskError(
                f"{transport.serial}: not enough space in {work_dir}: {len(to_push)} file(s) need "
                f"{need:,} bytes (+{FREE_MARGIN_BYTES:,} margin), the device has {free_before:,} bytes free"
                + (f" (+{reclaim:,} from stale copies)" if reclaim else ""),
                hint=f"free space on the phone, or remove old files with `edgebench devices clean {transport.serial}`",
                needed_bytes=need, free_bytes=free_before, serial=transport.serial,
            )
        # drop the claims first, then the stale copies: a push cut short leaves no claimed file
        if any(n in manifest for n in to_push):
            for n in to_push:
                manifest.pop(n, None)
            _write_manifest(transport, work_dir, manifest)
        stale = [remotes[n] for n in to_push if remotes[n] in view.stats]
        if stale:
            transport.shell("rm -f -- " + " ".join(quote(r) for r in stale), timeout_s=_SHELL_TIMEOUT_S, check=True)
    elif view.manifest_problem:
        pass  # nothing to push; an unreadable manifest would have sent every file to to_push

    total = sum(sizes[n] for n in to_push)
    done_before = 0
    push_seconds = 0.0
    reports: list[FileReport] = []
    # a lab worker limits how many phones push at once; a cached file takes no slot
    with PUSH_GATE if to_push and PUSH_GATE is not None else contextlib.nullcontext():
        for n in names:
            if n not in to_push:
                reports.append(FileReport(n, remotes[n], sizes[n], hashes[n], False, 0.0, "cached"))
                continue

            def file_progress(done: int, _total: int, base: int = done_before) -> None:
                if progress:
                    progress(base + done, total)

            t0 = time.monotonic()
            transport.push(local[n], remotes[n], progress=file_progress if progress else None)
            seconds = time.monotonic() - t0
            push_seconds += seconds
            digest, st, output = _device_sha256_and_stat(transport, remotes[n])
            if digest != hashes[n] or st is None or st[0] != sizes[n]:
                transport.shell(["rm", "-f", "--", remotes[n]], timeout_s=_SHELL_TIMEOUT_S)
                raise ArtifactCorruptError(
                    f"{transport.serial}: {remotes[n]} failed its integrity check after the push: device sha256 "
                    f"{digest or '?'} size {st[0] if st else '?'}, expected {hashes[n]} size {sizes[n]}"
                    + (f" ({output})" if output and not digest else ""),
                    hint="the file was removed; retry (a flaky cable or a full disk can cut a push short)",
                )
            manifest[n] = {"size": sizes[n], "sha256": hashes[n], "device_size": st[0], "device_mtime": st[1],
                           "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "source": local[n].name}
            _write_manifest(transport, work_dir, manifest)
            done_before += sizes[n]
            reports.append(FileReport(n, remotes[n], sizes[n], hashes[n], True, seconds, to_push[n]))
    return ProvisionReport(transport.serial, work_dir, tuple(reports), time.monotonic() - t_start,
                           push_seconds, free_before)


def read_manifest(transport: Transport, work_dir: str = WORK_DIR) -> dict[str, dict[str, Any]]:
    """The files the device-side manifest claims (empty when none)."""
    return _read_device(transport, work_dir, []).manifest


@dataclass(frozen=True)
class CleanReport:
    serial: str
    work_dir: str
    existed: bool
    bytes_removed: int | None


def clean(transport: Transport, work_dir: str = WORK_DIR, *, force: bool = False) -> CleanReport:
    """Remove the work dir and everything in it (all edgebench ever puts on a phone).

    Refused while the phone is prepared (its restore record lives there) unless `force`."""

    wd = quote(work_dir)
    r = transport.shell(f"if [ -d {wd} ]; then echo yes; du -sk {wd} 2>/dev/null; "
                        f"[ -e {quote(work_dir + '/' + PREPARED_FILE)} ] && echo prepared; fi; exit 0",
                        timeout_s=_SHELL_TIMEOUT_S)
    lines = r.stdout.splitlines()
    if not lines or lines[0] != "yes":
        return CleanReport(transport.serial, work_dir, False, 0)
    if "prepared" in lines and not force:
        raise ProvisionError(
            f"{transport.serial} is prepared for measurements; its restore record is in {work_dir}",
            hint=f"run `edgebench devices restore {transport.serial}` first (or clean with --force)")
    kib = next((int(ln.split()[0]) for ln in lines[1:] if ln.split() and ln.split()[0].isdigit()), None)
    transport.shell(["rm", "-rf", "--", work_dir], timeout_s=_SHELL_TIMEOUT_S, check=True)
    return CleanReport(transport.serial, work_dir, True, kib * 1024 if kib is not None else None)
