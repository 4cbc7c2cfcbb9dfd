"""edgebench's native roofline probes: small static C programs (`probes/membw.c`: memory read
bandwidth, `probes/peak.c`: int8 multiply-accumulate and fp32/fp16 FMA peaks, `probes/storage.c`:
storage read bandwidth with the page cache evicted, suite.session.storage), built with the same
toolchain and CPU variant as the runtime they bound, so the compute peak is that of the instructions
the runtime's build runs (smmla, sdot, smlal; pmaddubsw at the build's width). Seconds to build once
zig's C library for the target is cached (the runtime's build caches it); cached like the runtimes,
by what decides their bytes, in `$EDGEBENCH_CACHE_DIR/runtimes/probes/<abi>-<variant>-<key>/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from suite.core.errors import EdgebenchError
from suite.core.filehash import local_sha256
from suite.runtimes.build.cmake_build import build_lock, runtimes_dir
from suite.runtimes.build.toolchain import Toolchain, find_toolchain, zig_env
from suite.runtimes.build.variants import TARGETS, Variant, get_variant

SOURCES = Path(__file__).parent / "probes"
#: probe name -> its source; the binary is bin/edgebench-<name>
PROBES = {"membw": "membw.c", "peak": "peak.c", "storage": "storage.c"}
CFLAGS = ("-O3", "-static", "-s", "-pthread")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BuiltProbes:
    path: Path
    manifest: dict

    def binary(self, name: str) -> Path:
        return self.path / "bin" / f"edgebench-{name}"

    def files(self) -> dict[str, Path]:
        """Remote name (relative to the probes' folder on the device) -> local file."""
        return {f"bin/edgebench-{name}": self.binary(name) for name in PROBES}

    def intact(self) -> bool:
        return all(self.binary(n).is_file() and local_sha256(self.binary(n)) == self.manifest["sha256"].get(n)
                   for n in PROBES)


def _key(variant: Variant, tc: Toolchain) -> str:
    material = {"sources": {n: hashlib.sha256((SOURCES / f).read_bytes()).hexdigest() for n, f in PROBES.items()},
                "abi": variant.abi, "march": variant.march, "cflags": CFLAGS, "zig": tc.zig_version}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def ensure_probes(abi: str, variant_name: str) -> BuiltProbes:
    """The probes for (abi, variant), built first when absent or changed."""
    variant = get_variant(abi, variant_name)
    tc = find_toolchain()
    key = _key(variant, tc)
    folder = runtimes_dir() / "probes" / f"{variant.abi}-{variant.name}-{key}"
    with build_lock(f"probes-{key}"):
        try:
            built = BuiltProbes(folder, json.loads((folder / MANIFEST).read_text()))
            if built.intact():
                return built
        except (OSError, ValueError, KeyError):
            pass
        return _build(variant, tc, key, folder)


def _build(variant: Variant, tc: Toolchain, key: str, folder: Path) -> BuiltProbes:
    target, _ = TARGETS[variant.abi]
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "bin").mkdir(parents=True)
    env = zig_env(runtimes_dir() / "zig", runtimes_dir() / "zig-local")
    started = time.monotonic()
    digests = {}
    try:
        for name, src in PROBES.items():
            out = tmp / "bin" / f"edgebench-{name}"
            argv = [str(tc.zig), "cc", "-target", target, f"-march={variant.march}", *CFLAGS, str(SOURCES / src),
                    "-o", str(out)]
            r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
            if r.returncode != 0 or not out.is_file():
                raise EdgebenchError(f"building the {name} probe for {variant.key} failed: "
                                     f"{(r.stderr or r.stdout).strip()[-600:]}")
            digests[name] = local_sha256(out)
        manifest = {"probes": list(PROBES), "abi": variant.abi, "variant": variant.name, "march": variant.march,
                    "cflags": list(CFLAGS), "toolchain": tc.to_dict(), "key": key, "sha256": digests,
                    "build_s": round(time.monotonic() - started, 2)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # last: the folder is complete
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuiltProbes(folder, manifest)
