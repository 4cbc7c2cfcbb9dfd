"""The loopback phone's device daemon: an ADB device on 127.0.0.1 that the real
adb server attaches with `adb connect 127.0.0.1:PORT`.

Implements, as adbd does: the CNXN handshake (no AUTH), OPEN/OKAY/WRTE/CLSE
with one WRTE in flight per stream, `shell:`/`exec:` (raw), `shell,v2,...:`
(shell protocol v2) and `sync:` (STAT, STA2, LST2, LIST, SEND, RECV, QUIT).
Commands run in the bubblewrap sandbox of `sandbox.py`, inside the phone's
cgroup; a thermal/power model (`thermal.py`) ticks beside the transport.

Run: python -m suite.loopback.daemon --state-dir DIR --port PORT
(the state dir is prepared by `profile.materialize`).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from . import protocol as P
from .cgroups import PhoneCgroup
from .profile import remove_state
from .sandbox import SHELL_UID, PidNamespace, bwrap_argv
from .thermal_model import ThermalModel

log = logging.getLogger("loopback.daemon")

FEATURES = ["shell_v2", "stat_v2", "ls_v2"]  # only what is implemented below


class StreamClosed(Exception):
    pass


class Stream:
    """One ADB stream: outgoing writes wait for the host's OKAY (flow control);
    incoming WRTEs are queued and acknowledged only when the service consumes them."""

    def __init__(self, conn: "Connection", local_id: int, remote_id: int):
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False
        self.task: asyncio.Task | None = None
        self._buf = b""
        self._pos = 0

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        step = self.conn.max_payload
        for i in range(0, len(view), step):
            await self.can_write.wait()
            if self.closed:
                raise StreamClosed()
            self.can_write.clear()
            await self.conn.send(P.A_WRTE, self.local_id, self.remote_id, bytes(view[i:i + step]))

    async def read_chunk(self) -> bytes | None:
        """Next host WRTE payload (None at close); acknowledges it now that it is consumed."""
        data = await self.inbox.get()
        if data is not None and not self.closed:
            await self.conn.send(P.A_OKAY, self.local_id, self.remote_id)
        return data

    async def read_exactly(self, n: int) -> bytes:
        # host WRTEs (up to 1 MiB) do not line up with sync records (4 KiB DATA from
        # adbutils): keep the current WRTE as immutable bytes plus a read offset, and
        # copy only when a record straddles two WRTEs
        while len(self._buf) - self._pos < n:
            chunk = await self.read_chunk()
            if chunk is None:
                raise StreamClosed()
            rest = len(self._buf) - self._pos
            self._buf = chunk if rest == 0 else self._buf[self._pos:] + chunk
            self._pos = 0
        out = self._buf[self._pos:self._pos + n] if (self._pos or n != len(self._buf)) else self._buf
        self._pos += n
        return out

    def take_buffered_data(self, limit: int = 1 << 20) -> list:
        """Complete sync DATA records already buffered, as memoryviews (no copy): the
        fast path for adbutils' 4 KiB records. Stops at the first non-DATA record."""
        out = []
        buf, pos, end = self._buf, self._pos, len(self._buf)
        view = memoryview(buf)
        got = 0
        while end - pos >= 8 and got < limit:
            rid, n = P.SYNC_REQUEST.unpack_from(buf, pos)
            if rid != P.ID_DATA or end - pos - 8 < n:
                break
            out.append(view[pos + 8:pos + 8 + n])
            pos += 8 + n
            got += n
        self._pos = pos
        return out

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.can_write.set()
            try:
                await self.conn.send(P.A_CLSE, self.local_id, self.remote_id)
            except (ConnectionError, OSError):
                pass
        self.conn.streams.pop(self.local_id, None)

    def host_closed(self) -> None:
        self.closed = True
        self.can_write.set()
        self.inbox.put_nowait(None)
        self.conn.streams.pop(self.local_id, None)
        if self.task and not self.task.done():
            self.task.cancel()


class Connection:
    def __init__(self, phone: "Phone", reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.phone = phone
        self.reader = reader
        self.writer = writer
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.max_payload = P.MAX_PAYLOAD
        self.wlock = asyncio.Lock()

    async def send(self, cmd: int, a0: int, a1: int, data: bytes = b"") -> None:
        async with self.wlock:
            self.writer.write(P.pack_message(cmd, a0, a1, data))
            await self.writer.drain()

    async def run(self) -> None:
        try:
            while True:
                hdr = await self.reader.readexactly(P.HEADER.size)
                cmd, a0, a1, n, _check, magic = P.HEADER.unpack(hdr)
                if magic != cmd ^ 0xFFFFFFFF:
                    log.warning("bad magic, dropping connection")
                    return
                data = await self.reader.readexactly(n) if n else b""
                await self.phone.faults.maybe_stall()
                await self.dispatch(cmd, a0, a1, data)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for s in list(self.streams.values()):
                s.host_closed()
            self.writer.close()

    async def dispatch(self, cmd: int, a0: int, a1: int, data: bytes) -> None:
        if cmd == P.A_CNXN:
            self.max_payload = min(P.MAX_PAYLOAD, a1 or P.MAX_PAYLOAD)
            await self.send(P.A_CNXN, P.A_VERSION, P.MAX_PAYLOAD, self.phone.banner())
        elif cmd == P.A_OPEN:
            service = data.rstrip(b"\0").decode(errors="replace")
            handler = self.phone.service_for(service)
            if handler is None:
                log.info("refusing service %r", service)
                await self.send(P.A_CLSE, 0, a0)
                return
            local = self.next_id
            self.next_id += 1
            s = Stream(self, local, a0)
            self.streams[local] = s
            await self.send(P.A_OKAY, local, a0)
            s.task = asyncio.create_task(self._serve(s, handler))
        elif cmd == P.A_OKAY:
            s = self.streams.get(a1)
            if s:
                s.can_write.set()
        elif cmd == P.A_WRTE:
            s = self.streams.get(a1)
            if s is None:
                await self.send(P.A_CLSE, 0, a0)
            else:
                s.inbox.put_nowait(data)
        elif cmd == P.A_CLSE:
            s = self.streams.get(a1)
            if s:
                s.host_closed()
        else:
            log.info("ignoring %s", P.COMMAND_NAMES.get(cmd, hex(cmd)))

    async def _serve(self, s: Stream, handler) -> None:
        try:
            await handler(s)
        except (StreamClosed, asyncio.CancelledError, ConnectionError):
            pass
        except Exception:  # a service bug must not take the phone down
            log.exception("service failed")
        finally:
            await s.close()


class Faults:
    """Fault switches read from control.json (see phone.py `LoopbackPhone.set_fault`)."""

    def __init__(self, phone: "Phone"):
        self.phone = phone

    def get(self, name: str, default=None):
        return self.phone.control.get("faults", {}).get(name, default)

    async def maybe_stall(self) -> None:
        while self.get("stall"):
            await asyncio.sleep(0.05)


def _drop_cached(f) -> None:
    """A pushed file's pages leave the page cache once written: on a phone adbd's cache counts in the phone's
    RAM, here the daemon runs outside the phone's memory cgroup, so they would sit outside its limit and a
    model "pushed" would never be read from storage. (A no-op on tmpfs, whose pages are the file.)"""
    try:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


class Phone:
    def __init__(self, state_dir: Path, port: int, parent_pid: int | None = None):
        self.parent_pid = parent_pid
        self.state_dir = Path(state_dir)
        self.port = port
        self.info = json.loads((self.state_dir / "phone.json").read_text())
        self.cgroup = PhoneCgroup.from_json(self.info["cgroup"]) if self.info.get("cgroup") else None
        self.control: dict = {}
        self.control_mtime = 0.0
        self.faults = Faults(self)
        self.model = None
        self.pidns: PidNamespace | None = None

    # ---- identity -----------------------------------------------------------
    def banner(self) -> bytes:
        b = self.info["banner"]
        parts = [f"{k}={v}" for k, v in b.items()] + ["features=" + ",".join(FEATURES)]
        return ("device::" + ";".join(parts)).encode()

    def reload_control(self) -> None:
        f = self.state_dir / "control.json"
        try:
            m = f.stat().st_mtime_ns
            if m != self.control_mtime:
                self.control = json.loads(f.read_text())
                self.control_mtime = m
        except (OSError, ValueError):
            pass

    # ---- services -----------------------------------------------------------
    def service_for(self, service: str):
        if service.startswith("shell,") or service.startswith("shell:"):
            head, _, cmd = service.partition(":")
            args = head.split(",")[1:]
            if "v2" in args:
                return lambda s: self.shell_v2(s, cmd)
            return lambda s: self.shell_raw(s, cmd)
        if service.startswith("exec:"):
            return lambda s: self.shell_raw(s, service[5:])
        if service == "sync:":
            return self.sync
        return None

    async def _spawn(self, cmd: str, merge_stderr: bool):
        if self.pidns is None:  # every shell of the phone in one pid namespace, as on a phone
            self.pidns = PidNamespace()
        fd = self.pidns.fd
        argv = bwrap_argv(self.state_dir, cmd, env=self.info.get("env"), interactive=not cmd, pidns_fd=fd)
        cg = self.cgroup
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
            preexec_fn=(cg.add_self if cg else None), start_new_session=True, pass_fds=(fd,))

    @staticmethod
    def _exit_code(rc: int) -> int:
        return 128 - rc if rc < 0 else rc

    @staticmethod
    def _kill(proc) -> None:
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def shell_raw(self, s: Stream, cmd: str) -> None:
        proc = await self._spawn(cmd, merge_stderr=True)

        async def pump_in():
            while True:
                chunk = await s.read_chunk()
                if chunk is None:
                    break
                try:
                    proc.stdin.write(chunk)
                    await proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    break

        feeder = asyncio.create_task(pump_in())
        try:
            while True:
                out = await proc.stdout.read(P.SYNC_DATA_MAX)
                if not out:
                    break
                await s.write(out)
            await proc.wait()
        finally:
            feeder.cancel()
            self._kill(proc)

    async def shell_v2(self, s: Stream, cmd: str) -> None:
        proc = await self._spawn(cmd, merge_stderr=False)
        wlock = asyncio.Lock()

        async def frame(kind: int, payload: bytes) -> None:
            async with wlock:
                await s.write(P.shell_frame(kind, payload))

        async def pump_out(pipe, kind):
            while True:
                out = await pipe.read(P.SYNC_DATA_MAX)
                if not out:
                    return
                await frame(kind, out)

        async def pump_in():
            try:
                while True:
                    kind, n = P.SHELL_HEADER.unpack(await s.read_exactly(P.SHELL_HEADER.size))
                    payload = await s.read_exactly(n) if n else b""
                    if kind == P.SHELL_STDIN and proc.stdin and not proc.stdin.is_closing():
                        proc.stdin.write(payload)
                        await proc.stdin.drain()
                    elif kind == P.SHELL_CLOSE_STDIN and proc.stdin:
                        proc.stdin.close()
            except (StreamClosed, BrokenPipeError, ConnectionResetError):
                return

        feeder = asyncio.create_task(pump_in())
        try:
            await asyncio.gather(pump_out(proc.stdout, P.SHELL_STDOUT),
                                 pump_out(proc.stderr, P.SHELL_STDERR))
            rc = self._exit_code(await proc.wait())
            await frame(P.SHELL_EXIT, bytes([rc & 0xFF]))
        finally:
            feeder.cancel()
            self._kill(proc)

    # ---- sync ---------------------------------------------------------------
    def host_path(self, device_path: str) -> Path | None:
        """Device path -> file in the phone's state dir (None outside its trees)."""
        p = os.path.normpath("/" + device_path.strip().lstrip("/"))
        if p.startswith("/sdcard"):
            p = "/data/media/0" + p[len("/sdcard"):]
        for top in ("/data", "/system", "/sys"):
            if p == top or p.startswith(top + "/"):
                return self.state_dir / p.lstrip("/")
        if p == "/":
            return self.state_dir / "root"
        return None

    @staticmethod
    def _may(st: os.stat_result, bit: int) -> bool:
        """Would the shell uid (2000, no groups) pass this permission check?"""
        if st.st_uid == SHELL_UID:
            return bool(st.st_mode & (bit << 6))
        if st.st_gid == SHELL_UID:
            return bool(st.st_mode & (bit << 3))
        return bool(st.st_mode & bit)

    def _check_path(self, hp: Path) -> int:
        """0 or an errno for reaching `hp` as the shell uid (search permission on parents)."""
        root = self.state_dir
        cur = hp.parent
        chain = []
        while cur != root and root in cur.parents:
            chain.append(cur)
            cur = cur.parent
        for d in reversed(chain):
            try:
                st = d.stat()
            except OSError as e:
                return e.errno or errno.ENOENT
            if not self._may(st, 1):
                return errno.EACCES
        return 0

    def _writable(self, hp: Path) -> bool:
        try:
            rel = "/" + str(hp.relative_to(self.state_dir))
        except ValueError:
            return False
        return rel.startswith("/data/local/tmp/") or rel.startswith("/data/media/0/")

    async def sync(self, s: Stream) -> None:
        while True:
            rid, n = P.SYNC_REQUEST.unpack(await s.read_exactly(8))
            if rid == P.ID_QUIT:
                return
            path = (await s.read_exactly(n)).decode(errors="replace") if n else ""
            if rid in (P.ID_STAT, P.ID_STA2, P.ID_LST2):
                await s.write(self._stat(rid, path))
            elif rid in (P.ID_LIST, P.ID_LIS2):
                await self._list(s, path, v2=rid == P.ID_LIS2)
            elif rid == P.ID_SEND:
                if not await self._send(s, path):
                    return  # as adbd: a failed transfer ends the sync session
            elif rid == P.ID_RECV:
                if not await self._recv(s, path):
                    return
            else:
                await s.write(P.sync_fail(f"unknown sync request {rid:#x}"))
                return

    def _stat(self, rid: int, path: str) -> bytes:
        hp = self.host_path(path)
        st, err = None, errno.ENOENT
        if hp is not None:
            err = self._check_path(hp)
            if not err:
                try:
                    st = os.stat(hp) if rid == P.ID_STA2 else os.lstat(hp)
                except OSError as e:
                    err = e.errno or errno.ENOENT
        if rid == P.ID_STAT:
            if st is None:
                return P.STAT_V1.pack(P.ID_STAT, 0, 0, 0)
            return P.STAT_V1.pack(P.ID_STAT, st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF,
                                  int(st.st_mtime) & 0xFFFFFFFF)
        if st is None:
            return P.STAT_V2.pack(rid, err, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return P.STAT_V2.pack(rid, 0, st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid,
                              st.st_gid, st.st_size, int(st.st_atime), int(st.st_mtime),
                              int(st.st_ctime))

    async def _list(self, s: Stream, path: str, v2: bool = False) -> None:
        """LIST/LIS2 as adbd's do_list: readdir order incl. . and .., lstat of each
        (v1 skips entries it cannot stat, v2 sends them with errno), then a DONE
        record of full entry size."""
        hp = self.host_path(path)
        out = bytearray()
        names: list[str] = []
        if hp is not None and not self._check_path(hp) and hp.is_dir():
            try:
                if self._may(hp.stat(), 4):
                    names = [".", ".."] + os.listdir(hp)
            except OSError:
                names = []
        for name in names:
            raw = name.encode()
            try:
                st = os.lstat(hp / name)
            except OSError as e:
                if v2:
                    out += P.DENT_V2.pack(P.ID_DNT2, e.errno or errno.EIO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          len(raw)) + raw
                continue
            if v2:
                out += P.DENT_V2.pack(P.ID_DNT2, 0, st.st_dev, st.st_ino, st.st_mode, st.st_nlink,
                                      st.st_uid, st.st_gid, st.st_size, int(st.st_atime),
                                      int(st.st_mtime), int(st.st_ctime), len(raw)) + raw
            else:
                out += P.DENT_V1.pack(P.ID_DENT, st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF,
                                      int(st.st_mtime) & 0xFFFFFFFF, len(raw)) + raw
        if v2:
            out += P.DENT_V2.pack(P.ID_DONE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        else:
            out += P.DENT_V1.pack(P.ID_DONE, 0, 0, 0, 0)
        await s.write(bytes(out))

    async def _send(self, s: Stream, spec: str) -> bool:
        """SEND as adbd's send_impl: write to the path itself, FAIL at the first error,
        drain until DONE, remove the file, end the session. False = session over."""
        path, comma, mode_s = spec.rpartition(",")
        if not comma:
            await s.write(P.sync_fail("missing , in ID_SEND_V1"))
            return False
        try:
            mode = int(mode_s, 0)
        except ValueError:
            await s.write(P.sync_fail("bad mode"))
            return False
        mode &= 0o777  # adbd copies the user bits to group and other
        mode |= (mode >> 3) & 0o070
        mode |= (mode >> 3) & 0o007
        hp = self.host_path(path)
        fail = None
        f = None
        created = False
        if self.faults.get("refuse_push"):
            fail = str(self.faults.get("refuse_push_message", "couldn't create file: Permission denied"))
        elif hp is None or not self._writable(hp) or self._check_path(hp.parent) not in (0, errno.ENOENT):
            fail = "couldn't create file: Permission denied"
        else:
            try:
                if hp.is_file() or hp.is_symlink():
                    hp.unlink()
                self._mkdirs(hp.parent)
                f = open(hp, "wb")
                created = True
                os.chown(hp, SHELL_UID, SHELL_UID)
                os.chmod(hp, mode)
            except OSError as e:
                fail = f"couldn't create file: {os.strerror(e.errno or errno.EIO)}"
        if fail:
            await s.write(P.sync_fail(fail))
        kill_after = self.faults.get("kill_after_push_bytes")
        written = 0
        mtime = None
        try:
            while True:
                for data in s.take_buffered_data():
                    written += len(data)
                    if kill_after is not None and written >= int(kill_after):
                        os.kill(os.getpid(), signal.SIGKILL)
                    if f is not None and not fail:
                        try:
                            f.write(data)
                        except OSError as e:
                            fail = f"write failed: {os.strerror(e.errno or errno.EIO)}"
                            await s.write(P.sync_fail(fail))
                rid, n = P.SYNC_REQUEST.unpack(await s.read_exactly(8))
                if rid == P.ID_DONE:
                    mtime = n
                    break
                if rid != P.ID_DATA:
                    if not fail:
                        fail = "invalid data message"
                        await s.write(P.sync_fail(fail))
                    break
                data = await s.read_exactly(n)
                written += n
                if kill_after is not None and written >= int(kill_after):
                    os.kill(os.getpid(), signal.SIGKILL)  # power loss: the partial file stays
                if f is not None and not fail:
                    try:
                        f.write(data)
                    except OSError as e:
                        fail = f"write failed: {os.strerror(e.errno or errno.EIO)}"
                        await s.write(P.sync_fail(fail))
            if f is not None:
                f.flush()
                _drop_cached(f)
                f.close()
                f = None
        except OSError as e:  # flushing the last buffer can hit ENOSPC too
            if not fail:
                fail = f"write failed: {os.strerror(e.errno or errno.EIO)}"
                await s.write(P.sync_fail(fail))
        finally:
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
            if created and (fail or mtime is None):
                try:
                    hp.unlink()  # adbd unlinks what it could not finish
                except OSError:
                    pass
        if fail:
            return False
        os.utime(hp, (mtime, mtime))
        await s.write(P.SYNC_REQUEST.pack(P.ID_OKAY, 0))
        return True

    def _mkdirs(self, d: Path) -> None:
        missing = []
        while not d.exists():
            missing.append(d)
            d = d.parent
        for m in reversed(missing):
            m.mkdir(mode=0o775)
            os.chown(m, SHELL_UID, SHELL_UID)

    async def _recv(self, s: Stream, path: str) -> bool:
        hp = self.host_path(path)
        err = errno.ENOENT if hp is None else self._check_path(hp)
        f = None
        if not err:
            try:
                if not self._may(hp.stat(), 4):
                    err = errno.EACCES
                else:
                    f = open(hp, "rb")
            except OSError as e:
                err = e.errno or errno.EIO
        if f is None:
            await s.write(P.sync_fail(f"open failed: {os.strerror(err)}"))
            return False
        with f:
            batch = max(P.SYNC_DATA_MAX, s.conn.max_payload - 64)
            while True:
                out = bytearray()
                while len(out) + 8 + P.SYNC_DATA_MAX <= batch + 8:
                    try:
                        chunk = f.read(P.SYNC_DATA_MAX)
                    except OSError as e:
                        await s.write(bytes(out) + P.sync_fail(f"read failed: {os.strerror(e.errno or errno.EIO)}"))
                        return False
                    if not chunk:
                        break
                    out += P.SYNC_REQUEST.pack(P.ID_DATA, len(chunk)) + chunk
                if not out:
                    break
                await s.write(bytes(out))
        await s.write(P.SYNC_REQUEST.pack(P.ID_DONE, 0))
        return True

    # ---- main loop ----------------------------------------------------------
    async def tick_loop(self) -> None:
        while True:
            if self.parent_pid and os.getppid() != self.parent_pid:
                # whoever started us is gone (e.g. a killed test run): clean up and leave
                log.warning("parent %s gone; removing the phone", self.parent_pid)
                remove_state(self.state_dir)
                os._exit(0)
            self.reload_control()
            if self.model is not None:
                try:
                    self.model.tick(self.control)
                except Exception:
                    log.exception("thermal model tick failed")
            await asyncio.sleep(0.1)

    async def serve(self) -> None:
        self.reload_control()
        if self.info.get("model"):
            self.model = ThermalModel.from_state_dir(self.state_dir, self.cgroup)
        server = await asyncio.start_server(self._on_client, "127.0.0.1", self.port)
        self.port = server.sockets[0].getsockname()[1]
        (self.state_dir / "daemon.port").write_text(str(self.port))
        ticker = asyncio.create_task(self.tick_loop())
        async with server:
            try:
                await server.serve_forever()
            finally:
                ticker.cancel()
                if self.pidns is not None:
                    self.pidns.close()

    async def _on_client(self, reader, writer) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await Connection(self, reader, writer).run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state-dir", required=True, type=Path)
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free)")
    ap.add_argument("--parent-pid", type=int, default=None,
                    help="remove the phone and exit when this process is gone")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING,
                        format="%(asctime)s loopback[%(process)d] %(message)s")
    phone = Phone(a.state_dir, a.port, a.parent_pid)
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: [t.cancel() for t in asyncio.all_tasks(loop)])
    try:
        loop.run_until_complete(phone.serve())
    except asyncio.CancelledError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
