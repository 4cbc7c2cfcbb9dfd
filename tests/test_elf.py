"""suite.device.elf: the machine of an ELF file and the bundle ABI check.

Headers are built by hand with this layout (ELF spec, "ELF Header"):
  0..3   b"\\x7fELF"
  4      EI_CLASS   1 = 32-bit, 2 = 64-bit
  5      EI_DATA    1 = little endian, 2 = big endian
  6      EI_VERSION 1
  7..15  OS ABI, ABI version, padding (zeros)
  16..17 e_type     u16 (3 = ET_DYN)
  18..19 e_machine  u16 (3 x86, 40 ARM, 62 x86-64, 183 AArch64, 243 RISC-V)
  20..23 e_version  u32 1
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from suite.device.elf import ElfError, elf_interpreter, elf_machine, normalize_abi, read_elf
from suite.runtimes.llama_bench import LlamaBenchRuntime

#: the llama-bench runtime's bundle check (suite.device.elf.check_bundle_abi with its binary and hint)
check_bundle_abi = LlamaBenchRuntime().check_bundle


def elf_header(machine: int, bits: int = 64, little: bool = True, e_type: int = 3) -> bytes:
    e = "<" if little else ">"
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if little else 2, 1]) + bytes(9)
    return ident + struct.pack(e + "HHI", e_type, machine, 1) + bytes(40)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("machine,bits,abi", [
    (62, 64, "x86_64"), (183, 64, "arm64-v8a"), (40, 32, "armeabi-v7a"), (3, 32, "x86"), (243, 64, "riscv64"),
    (999, 64, "machine-999"),
])
def test_hand_built_headers(tmp_path, machine, bits, abi):
    f = write(tmp_path / "f", elf_header(machine, bits))
    assert elf_machine(f) == abi
    info = read_elf(f)
    assert (info.bits, info.little_endian, info.e_machine, info.e_type) == (bits, True, machine, 3)


def test_big_endian_header_reads_e_machine_in_its_byte_order(tmp_path):
    f = write(tmp_path / "be", elf_header(183, little=False))
    assert elf_machine(f) == "arm64-v8a"
    assert read_elf(f).little_endian is False


def test_host_binaries_are_x86_64():
    for name in ("true", "sh", "ls"):
        p = shutil.which(name)
        assert p is not None
        assert elf_machine(Path(p).resolve()) == "x86_64"


def with_program_headers(bits: int, little: bool, interp: bytes | None) -> bytes:
    """An ELF file with two program headers (PT_LOAD, then PT_INTERP when `interp`), the table right after
    the ELF header: e_phoff at 32 (64-bit) or 28 (32-bit), e_phentsize/e_phnum at 54/56 or 42/44."""
    e = "<" if little else ">"
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if little else 2, 1]) + bytes(9)
    head = bytearray(ident + struct.pack(e + "HHI", 2, 183 if bits == 64 else 40, 1) + bytes(ehsize - 24))
    struct.pack_into(e + ("Q" if bits == 64 else "I"), head, 32 if bits == 64 else 28, ehsize)
    struct.pack_into(e + "HH", head, 54 if bits == 64 else 42, phentsize, 2)
    strings = ehsize + 2 * phentsize
    def entry(p_type: int, offset: int, size: int) -> bytes:
        if bits == 64:  # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
            return struct.pack(e + "IIQQQQQQ", p_type, 4, offset, 0, 0, size, size, 8)
        return struct.pack(e + "IIIIIIII", p_type, offset, 0, 0, size, size, 4, 4)
    table = entry(1, 0, strings) + (entry(3, strings, len(interp) + 1) if interp else entry(4, 0, 0))
    return bytes(head) + table + (interp + b"\0" if interp else b"")


@pytest.mark.parametrize("bits,little", [(64, True), (32, True), (64, False), (32, False)])
def test_the_program_interpreter_says_static_or_which_linker(tmp_path, bits, little):
    dyn = write(tmp_path / "dyn", with_program_headers(bits, little, b"/system/bin/linker64"))
    assert elf_interpreter(dyn) == "/system/bin/linker64"
    assert elf_interpreter(write(tmp_path / "static", with_program_headers(bits, little, None))) is None


def test_host_programs_name_their_dynamic_linker():
    assert elf_interpreter(Path(shutil.which("ls")).resolve()).startswith("/lib")  # Debian: /lib64/ld-linux-x86-64.so.2


@pytest.mark.parametrize("data", [b"", b"#!/bin/sh\necho hi\n", b"\x7fELF\x09\x01" + bytes(20), b"\x7fEL"])
def test_not_elf_is_refused(tmp_path, data):
    f = write(tmp_path / "x", data)
    with pytest.raises(ElfError):
        elf_machine(f)


def test_aliases():
    assert normalize_abi("aarch64") == "arm64-v8a"
    assert normalize_abi(" AMD64 ") == "x86_64"
    assert normalize_abi("armeabi-v7a") == "armeabi-v7a"


def bundle(root: Path, machine: int, libs=("libllama.so", "libggml.so", "libggml-base.so")) -> Path:
    write(root / "bin" / "llama-bench", elf_header(machine))
    for lib in libs:
        write(root / "lib" / lib, elf_header(machine))
    return root


def test_matching_bundle_passes(tmp_path):
    b = bundle(tmp_path / "b", 183)
    found = check_bundle_abi(b, "arm64-v8a")
    assert found == {"bin/llama-bench": "arm64-v8a", "lib/libggml-base.so": "arm64-v8a",
                     "lib/libggml.so": "arm64-v8a", "lib/libllama.so": "arm64-v8a"}
    assert check_bundle_abi(b, "aarch64")  # an alias of the same ABI


def test_x86_64_bundle_for_an_arm64_device_is_refused(tmp_path):
    b = bundle(tmp_path / "b", 62)
    with pytest.raises(ElfError) as e:
        check_bundle_abi(b, "arm64-v8a")
    msg = str(e.value)
    assert "bin/llama-bench" in msg and "x86_64" in msg and "arm64-v8a" in msg
    assert e.value.context["file_abi"] == "x86_64" and e.value.context["device_abi"] == "arm64-v8a"
    assert "build llama.cpp for arm64-v8a" in e.value.hint and "--runtime-bundle" in e.value.hint


def test_arm64_bundle_for_an_x86_64_device_is_refused(tmp_path):
    b = bundle(tmp_path / "b", 183)
    with pytest.raises(ElfError, match="built for arm64-v8a, but the device's ABI is x86_64"):
        check_bundle_abi(b, "x86_64")


def test_one_library_of_another_abi_is_named(tmp_path):
    b = bundle(tmp_path / "b", 183)
    write(b / "lib" / "libggml-cpu.so", elf_header(62))
    with pytest.raises(ElfError, match=r"lib/libggml-cpu\.so .*x86_64.*arm64-v8a"):
        check_bundle_abi(b, "arm64-v8a")


def test_bundle_without_binary_is_refused(tmp_path):
    (tmp_path / "b" / "lib").mkdir(parents=True)
    with pytest.raises(ElfError, match="no bin/llama-bench"):
        check_bundle_abi(tmp_path / "b", "arm64-v8a")


def test_script_instead_of_binary_is_refused(tmp_path):
    write(tmp_path / "b" / "bin" / "llama-bench", b"#!/system/bin/sh\necho fake\n")
    with pytest.raises(ElfError, match="not an ELF file"):
        check_bundle_abi(tmp_path / "b", "x86_64")
