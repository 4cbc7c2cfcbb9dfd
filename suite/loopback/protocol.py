"""ADB wire format: transport messages, shell protocol v2 frames, sync records.

Checked against AOSP adb (protocol.md, shell_protocol.h, file_sync_protocol.h);
see ../shared/notes/adb-facts.md.
"""

from __future__ import annotations

import struct

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541
A_STLS = 0x534C5453

A_VERSION = 0x01000001
MAX_PAYLOAD = 1024 * 1024

HEADER = struct.Struct("<6I")

COMMAND_NAMES = {
    A_SYNC: "SYNC", A_CNXN: "CNXN", A_OPEN: "OPEN", A_OKAY: "OKAY",
    A_CLSE: "CLSE", A_WRTE: "WRTE", A_AUTH: "AUTH", A_STLS: "STLS",
}


def pack_message(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    """One transport message; data_check is 0 (not checked since version 0x01000001)."""
    return HEADER.pack(command, arg0, arg1, len(data), 0, command ^ 0xFFFFFFFF) + data


# shell protocol v2 (shell_protocol.h): 1-byte id, 4-byte little-endian length, payload
SHELL_STDIN = 0
SHELL_STDOUT = 1
SHELL_STDERR = 2
SHELL_EXIT = 3
SHELL_CLOSE_STDIN = 4
SHELL_WINDOW_SIZE = 5
SHELL_HEADER = struct.Struct("<BI")


def shell_frame(kind: int, payload: bytes) -> bytes:
    return SHELL_HEADER.pack(kind, len(payload)) + payload


# sync protocol (file_sync_protocol.h)
def mkid(s: str) -> int:
    return struct.unpack("<I", s.encode())[0]


ID_STAT = mkid("STAT")
ID_STA2 = mkid("STA2")
ID_LST2 = mkid("LST2")
ID_LIST = mkid("LIST")
ID_DENT = mkid("DENT")
ID_LIS2 = mkid("LIS2")
ID_DNT2 = mkid("DNT2")
ID_SEND = mkid("SEND")
ID_RECV = mkid("RECV")
ID_DONE = mkid("DONE")
ID_DATA = mkid("DATA")
ID_OKAY = mkid("OKAY")
ID_FAIL = mkid("FAIL")
ID_QUIT = mkid("QUIT")
SYNC_DATA_MAX = 64 * 1024

SYNC_REQUEST = struct.Struct("<II")
STAT_V1 = struct.Struct("<IIII")  # id, mode, size, mtime
STAT_V2 = struct.Struct("<IIQQIIIIQqqq")  # id, error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime
DENT_V1 = struct.Struct("<IIIII")  # id, mode, size, mtime, namelen
DENT_V2 = struct.Struct("<IIQQIIIIQqqqI")  # STAT_V2 fields, then namelen


def sync_fail(message: str) -> bytes:
    raw = message.encode()
    return SYNC_REQUEST.pack(ID_FAIL, len(raw)) + raw
