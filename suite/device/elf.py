"""Which CPU an ELF file is built for, with the stdlib only (no new dependency).

Layout read (ELF spec, "ELF Header"; the same for ELF32 and ELF64 up to e_machine):

    offset 0   e_ident[EI_MAG0..3]  b"\\x7fELF"
    offset 4   e_ident[EI_CLASS]    1 = ELFCLASS32, 2 = ELFCLASS64
    offset 5   e_ident[EI_DATA]     1 = little endian, 2 = big endian
    offset 6   e_ident[EI_VERSION]  1
    offset 16  e_type               u16 (2 = EXEC, 3 = DYN)
    offset 18  e_machine            u16, in the byte order of EI_DATA

`elf_machine(path)` names the machine the way Android names ABIs where one exists
(`arm64-v8a`, `armeabi-v7a`, `x86_64`, `x86`); `elf_interpreter(path)` says whether a binary is static
(None) or which dynamic linker it needs; `check_bundle_abi(dir, device_abi, binary)` refuses a
native runtime's bundle whose binary or libraries are for another ABI than the device's, before
anything is pushed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from suite.core.errors import EdgebenchError

ELF_MAGIC = b"\x7fELF"

#: e_machine -> Android ABI name (or the ELF name where Android has no ABI for it)
MACHINES: dict[int, str] = {
    3: "x86",          # EM_386
    8: "mips",         # EM_MIPS
    40: "armeabi-v7a",  # EM_ARM
    62: "x86_64",      # EM_X86_64
    183: "arm64-v8a",  # EM_AARCH64
    243: "riscv64",    # EM_RISCV (64-bit class)
    164: "hexagon",    # EM_QDSP6: Qualcomm Hexagon, the DSP/NPU (not a CPU ABI)
}
#: code a phone's DSP loads, not its CPU (Hexagon skeleton libraries such as libQnnHtpV79Skel.so ship in
#: NPU bundles beside the arm64 binaries): accepted in any bundle, recorded with their machine
DSP_ABIS = frozenset({"hexagon"})

#: names a device or a user may give for the same ABI
ABI_ALIASES: dict[str, str] = {
    "aarch64": "arm64-v8a", "arm64": "arm64-v8a", "arm64-v8a": "arm64-v8a",
    "armeabi-v7a": "armeabi-v7a", "armeabi": "armeabi-v7a", "arm": "armeabi-v7a", "armv7l": "armeabi-v7a",
    "armv7": "armeabi-v7a",
    "x86_64": "x86_64", "amd64": "x86_64", "x86-64": "x86_64",
    "x86": "x86", "i386": "x86", "i686": "x86",
    "riscv64": "riscv64", "mips": "mips",
}


class ElfError(EdgebenchError):
    """A file that should be an ELF binary is not, or is for another ABI than the device's."""

    exit_code = 2


@dataclass(frozen=True)
class ElfInfo:
    path: Path
    bits: int  # 32 | 64
    little_endian: bool
    e_type: int
    e_machine: int
    abi: str  # Android ABI name, or "machine-<n>" when unknown


def normalize_abi(name: str) -> str:
    """`aarch64` -> `arm64-v8a`, `amd64` -> `x86_64`...; an unknown name is returned lower-cased."""
    key = name.strip().lower()
    return ABI_ALIASES.get(key, key)


def read_elf(path: str | Path) -> ElfInfo:
    """Read the ELF header of `path`; ElfError when it is not an ELF file."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(20)
    except OSError as exc:
        raise ElfError(f"cannot read {p}: {exc}") from exc
    if len(head) < 20 or head[:4] != ELF_MAGIC:
        raise ElfError(f"{p} is not an ELF file (first bytes {head[:4]!r})",
                       hint="a bundle holds compiled binaries and their .so libraries, not scripts")
    ei_class, ei_data = head[4], head[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise ElfError(f"{p}: bad ELF ident (class {ei_class}, data {ei_data})")
    endian = "<" if ei_data == 1 else ">"
    e_type, e_machine = struct.unpack_from(endian + "HH", head, 16)
    abi = MACHINES.get(e_machine, f"machine-{e_machine}")
    if e_machine == 3 and ei_class == 2:
        abi = "machine-3-64bit"  # not a real combination
    return ElfInfo(p, 32 if ei_class == 1 else 64, ei_data == 1, e_type, e_machine, abi)


def elf_machine(path: str | Path) -> str:
    """The ABI a binary is built for: `x86_64`, `arm64-v8a`, `armeabi-v7a`, `x86`, ..."""
    return read_elf(path).abi


def elf_interpreter(path: str | Path) -> str | None:
    """The program interpreter a binary asks the kernel for (its PT_INTERP: `/system/bin/linker64`,
    `/lib64/ld-linux-x86-64.so.2`...), or None: a static binary, which needs no C library of the
    device's. Read from the program headers (e_phoff, e_phentsize, e_phnum; p_type 3 = PT_INTERP)."""
    info = read_elf(path)
    e = "<" if info.little_endian else ">"
    with open(info.path, "rb") as fh:
        head = fh.read(64)
        if info.bits == 64:
            (phoff,), (phentsize, phnum) = struct.unpack_from(e + "Q", head, 32), struct.unpack_from(e + "HH", head, 54)
            entry = e + "I4xQ8x8xQ"  # p_type, (p_flags), p_offset, (p_vaddr, p_paddr), p_filesz
        else:
            (phoff,), (phentsize, phnum) = struct.unpack_from(e + "I", head, 28), struct.unpack_from(e + "HH", head, 42)
            entry = e + "II8xI"  # p_type, p_offset, (p_vaddr, p_paddr), p_filesz
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
        for i in range(phnum):
            p_type, offset, size = struct.unpack_from(entry, table, i * phentsize)
            if p_type == 3:
                fh.seek(offset)
                return fh.read(size).rstrip(b"\0").decode("utf-8", "replace")
    return None


def bundle_elf_files(bundle_dir: str | Path, binary: str, *, flat: bool = False) -> list[Path]:
    """The bundle's `binary` (e.g. `bin/llama-bench`) and every `lib/*.so*` (files only, sorted); `flat`:
    the `*.so*` beside the binary in the bundle's top folder too (vendor bundles ship that way)."""
    root = Path(bundle_dir)
    files = [root / binary]
    for folder in ((root, root / "lib") if flat else (root / "lib",)):
        if folder.is_dir():
            files += sorted(f for f in folder.iterdir() if f.is_file() and not f.is_symlink() and ".so" in f.name)
    return files


def check_bundle_abi(bundle_dir: str | Path, device_abi: str, binary: str, *, build_hint: str = "",
                     flat: bool = False) -> dict[str, str]:
    """Refuse (ElfError) a bundle without `binary` or with any binary for another ABI than
    `device_abi` (DSP code, `DSP_ABIS`, excepted); returns {relative path: abi} of the files checked.
    `build_hint` (with `{abi}`) says how to build the bundle for the right ABI; `flat` as in
    `bundle_elf_files`."""
    root = Path(bundle_dir)
    want = normalize_abi(device_abi)
    if not (root / binary).is_file():
        raise ElfError(f"no {binary} in the bundle {root}",
                       hint=f"a bundle is DIR/{binary} plus DIR/lib/*.so")
    found: dict[str, str] = {}
    for f in bundle_elf_files(root, binary, flat=flat):
        abi = elf_machine(f)
        rel = str(f.relative_to(root))
        found[rel] = abi
        if abi != want and abi not in DSP_ABIS:
            raise ElfError(
                f"{rel} in the bundle {root} is built for {abi}, but the device's ABI is {want}"
                + (f" ({device_abi})" if device_abi.strip().lower() != want else ""),
                hint=build_hint.format(abi=want) or f"build it for {want}",
                file=str(f), file_abi=abi, device_abi=want)
    return found
