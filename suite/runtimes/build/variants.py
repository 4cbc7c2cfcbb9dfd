"""CPU variants of a native build, and the one a device runs (chosen from its /proc/cpuinfo).

A static binary cannot pick kernels at run time the way ggml's `GGML_CPU_ALL_VARIANTS` does (that
needs dlopen), so edgebench builds one binary per variant and chooses by the features every core
the runtime may run on reports: arm64 `Features` (`asimddp`: dot product, `asimdhp`: fp16
arithmetic, `i8mm`: int8 matrix multiply), x86_64 `flags` (the x86-64 micro-architecture levels).
A binary killed by SIGILL is retried once with the variant below it (`Variant.lower`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from suite.core.errors import EdgebenchError
from suite.device.android.cpu import parse_android_cpuinfo
from suite.device.android.snapshot import PROC_CPUINFO

ARM64 = "arm64-v8a"
X86_64 = "x86_64"


@dataclass(frozen=True)
class Variant:
    """One build of a native runtime for one ABI: its CMake switches and what the CPU must have."""

    abi: str
    name: str
    #: CMake definitions that select the instruction sets ggml compiles for
    cmake: tuple[str, ...]
    #: cpuinfo features every core must report to run it
    needs: tuple[str, ...]
    #: the variant to try once after a SIGILL (None: the baseline)
    lower: str | None
    #: what the variant runs, for people
    about: str
    #: zig's -march for the same instructions (the probes built beside the runtime)
    march: str = "generic"

    @property
    def key(self) -> str:
        return f"{self.abi}/{self.name}"


_X86_OFF = ("-DGGML_AVX=OFF", "-DGGML_AVX2=OFF", "-DGGML_FMA=OFF", "-DGGML_F16C=OFF", "-DGGML_BMI2=OFF",
            "-DGGML_AVX512=OFF", "-DGGML_AVX_VNNI=OFF", "-DGGML_AVX512_VBMI=OFF", "-DGGML_AVX512_VNNI=OFF",
            "-DGGML_AVX512_BF16=OFF")
_V2 = ("sse4_2", "ssse3", "popcnt")
_V3 = (*_V2, "avx", "avx2", "fma", "f16c", "bmi2")
_V4 = (*_V3, "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")

VARIANTS: dict[str, dict[str, Variant]] = {
    ARM64: {
        "armv8.0": Variant(ARM64, "armv8.0", ("-DGGML_CPU_ARM_ARCH=generic",), (), None,
                           "Armv8.0 NEON (every arm64 phone)", "generic"),
        "dotprod": Variant(ARM64, "dotprod", ("-DGGML_CPU_ARM_ARCH=generic+v8_2a+dotprod+fullfp16",),
                           ("asimddp", "asimdhp"), "armv8.0", "Armv8.2 int8 dot product (sdot) and fp16",
                           "generic+v8_2a+dotprod+fullfp16"),
        "i8mm": Variant(ARM64, "i8mm", ("-DGGML_CPU_ARM_ARCH=generic+v8_2a+dotprod+fullfp16+i8mm",),
                        ("asimddp", "asimdhp", "i8mm"), "dotprod", "sdot, fp16 and int8 matrix multiply (smmla)",
                        "generic+v8_2a+dotprod+fullfp16+i8mm"),
    },
    X86_64: {
        "x86-64-v2": Variant(X86_64, "x86-64-v2", ("-DGGML_SSE42=ON", *_X86_OFF), _V2, None, "SSE4.2", "x86_64_v2"),
        "x86-64-v3": Variant(X86_64, "x86-64-v3", ("-DGGML_SSE42=ON", "-DGGML_AVX=ON", "-DGGML_AVX2=ON",
                                                   "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON",
                                                   *_X86_OFF[5:]), _V3, "x86-64-v2", "AVX2, FMA, F16C", "x86_64_v3"),
        "x86-64-v4": Variant(X86_64, "x86-64-v4", ("-DGGML_SSE42=ON", "-DGGML_AVX=ON", "-DGGML_AVX2=ON",
                                                   "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON",
                                                   "-DGGML_AVX512=ON", *_X86_OFF[6:]), _V4, "x86-64-v3",
                             "AVX-512 (F, BW, CD, DQ, VL)", "x86_64_v4"),
    },
}

#: features every CPU of the ABI lists: without any, cpuinfo does not describe a CPU of that ABI
MARKERS = {ARM64: frozenset({"fp", "asimd"}), X86_64: frozenset({"fpu", "sse2"})}
#: zig's target triple and CMake's processor name per ABI
TARGETS = {ARM64: ("aarch64-linux-musl", "aarch64"), X86_64: ("x86_64-linux-musl", "x86_64")}
#: ABI names as devices and hosts spell them
ABI_ALIASES = {"arm64-v8a": ARM64, "arm64": ARM64, "aarch64": ARM64, "x86_64": X86_64, "x86-64": X86_64,
               "amd64": X86_64}


def normalize_abi(abi: str) -> str:
    try:
        return ABI_ALIASES[abi.strip().lower()]
    except KeyError:
        raise EdgebenchError(f"edgebench builds no native runtime for ABI {abi!r}",
                             hint=f"builds exist for {', '.join(VARIANTS)}; a 32-bit userland (armeabi-v7a) "
                                  "needs a bundle of your own (--runtime-bundle)", exit_code=2) from None


def get_variant(abi: str, name: str) -> Variant:
    abi = normalize_abi(abi)
    try:
        return VARIANTS[abi][name]
    except KeyError:
        raise EdgebenchError(f"unknown {abi} variant {name!r}; known: {', '.join(VARIANTS[abi])}",
                             exit_code=2) from None


def cpu_features(cpuinfo: str) -> list[frozenset[str]]:
    """The features of each processor of /proc/cpuinfo (`Features` on arm64, `flags` on x86), by
    suite.device.android.cpu's parser (glued lines split, a global Features line applied to all)."""
    return [p.features for p in parse_android_cpuinfo(cpuinfo).processors]


@dataclass(frozen=True)
class Choice:
    """The variant chosen for a device, and why (recorded in the run)."""

    variant: Variant
    evidence: str
    common_features: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"variant": self.variant.name, "abi": self.variant.abi, "evidence": self.evidence,
                "features": list(self.common_features)}


def choose_variant(abi: str, per_cpu: Iterable[frozenset[str]], cpus: Iterable[int] | None = None) -> Choice:
    """The highest variant every core in `cpus` (default: all) can run, from their features.

    With no features of the ABI readable, the baseline variant (it runs on every CPU of the ABI)."""
    abi = normalize_abi(abi)
    per_cpu = list(per_cpu)
    chosen_cpus = sorted(set(cpus)) if cpus is not None else list(range(len(per_cpu)))
    sets = [per_cpu[i] for i in chosen_cpus if i < len(per_cpu)] or per_cpu
    if not sets:
        base = next(v for v in VARIANTS[abi].values() if v.lower is None)
        return Choice(base, "no CPU features readable in /proc/cpuinfo: the baseline build", ())
    common = frozenset.intersection(*sets)
    known = {f for v in VARIANTS[abi].values() for f in v.needs} | MARKERS[abi]
    if not known & frozenset.union(*sets):
        # e.g. the loopback phone: an x86_64 ABI over its profile's arm64 cpuinfo capture
        base = next(v for v in VARIANTS[abi].values() if v.lower is None)
        return Choice(base, f"/proc/cpuinfo names no {abi} CPU features: the baseline build", ())
    relevant = sorted({f for v in VARIANTS[abi].values() for f in v.needs} & common)
    for variant in reversed(list(VARIANTS[abi].values())):
        if all(f in common for f in variant.needs):
            which = f"cpus {','.join(map(str, chosen_cpus))}" if cpus is not None else f"all {len(sets)} cpus"
            has = ", ".join(variant.needs) or "no optional feature"
            return Choice(variant, f"{which} report {has} in /proc/cpuinfo", tuple(relevant))
    raise EdgebenchError(f"this {abi} CPU lacks what even the baseline build needs "
                         f"({', '.join(next(iter(VARIANTS[abi].values())).needs)})", exit_code=2)


def device_variant(live, cpus: Iterable[int] | None = None) -> tuple[str, str | None, Choice]:
    """(ABI, a note on it, the variant choice) for a device's live reading (suite.device.live):
    its ABI list and kernel, and the cpuinfo features of `cpus` (default: every core)."""
    abi, note = native_abi(dict(live.props), live.machine)
    return abi, note, choose_variant(abi, cpu_features(live.texts.get(PROC_CPUINFO, "")), cpus)


def native_abi(props: dict, machine: str | None) -> tuple[str, str | None]:
    """(the ABI of edgebench's build that runs on a device, a note when that needs saying), from its
    ABI list (`ro.product.cpu.abilist`, else `ro.product.cpu.abi`) and its kernel (`uname -m`).

    Entry phones with a 32-bit userland on a 64-bit kernel list only armeabi-v7a; a static arm64
    binary needs no userland and runs there all the same."""
    listed = [a.strip() for a in (props.get("ro.product.cpu.abilist") or props.get("ro.product.cpu.abi") or "")
              .split(",") if a.strip()]
    for abi in (ARM64, X86_64):
        if abi in listed:
            return abi, None
    kernel = (machine or "").strip()
    if kernel == "aarch64":
        return ARM64, (f"a 32-bit userland (ABIs: {', '.join(listed) or 'none listed'}) on a 64-bit kernel "
                       "(uname -m: aarch64): edgebench's static arm64 build runs there (it needs no userland)")
    raise EdgebenchError(
        f"edgebench builds no runtime for this device: ABIs {', '.join(listed) or 'unknown'}, kernel "
        f"{kernel or 'unknown'} (uname -m)",
        hint="a 32-bit kernel runs 32-bit code only: give a bundle of your own built for it (--runtime-bundle DIR)",
        exit_code=2)
