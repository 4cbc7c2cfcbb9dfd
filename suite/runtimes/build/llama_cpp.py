"""edgebench's own build of llama.cpp's `llama-bench`: static, per ABI and CPU variant, cached.

The source is the llama.cpp tree that a pinned sdist on the Python package index vendors
(`SOURCE`), fetched once with pip and checked by sha256; the toolchain is zig, cmake and ninja
from the same index (suite.runtimes.build.toolchain). A build is keyed by the source's sha256,
the ABI, the variant's CMake switches, the toolchain's versions and this recipe's version, never by
a path, and lands in `$EDGEBENCH_CACHE_DIR/runtimes/llama.cpp/<abi>-<variant>-<key>/` as a bundle
(`bin/llama-bench`, an empty `lib/`, `manifest.json`) that the llama-bench runtime pushes like a
user's. The manifest is written last, after the binary's sha256: a folder without it (a build
interrupted half-way) is never taken for a build. Two processes that need the same build wait on
one (a file lock), and a cached binary whose sha256 no longer matches its manifest is rebuilt.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from suite.core.errors import EdgebenchError
from suite.core.filehash import local_sha256
from suite.runtimes.build.toolchain import TOOLCHAIN_FILE, Toolchain, find_toolchain, write_wrappers, zig_env
from suite.runtimes.build.variants import TARGETS, Variant, get_variant

ENGINE = "llama.cpp"
BINARY = "bin/llama-bench"
MANIFEST = "manifest.json"
#: bump when the build recipe changes in a way that changes the binary
RECIPE = 1


@dataclass(frozen=True)
class Source:
    """A pinned source tree inside a package of the Python package index."""

    package: str
    version: str
    sdist_sha256: str
    subdir: str
    commit: str

    @property
    def sdist_name(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}.tar.gz"

    @property
    def short_commit(self) -> str:
        return self.commit[:9]


#: llama.cpp 0c1e57098 (2026-10-01, ggml 0.25.3), as vendored by llama-cpp-python 0.3.36
SOURCE = Source("llama-cpp-python", "0.3.36", "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
                "vendor/llama.cpp", "0c1e57098bba43ac29e6e3b677cdceebdd22334f")

#: CMake switches of every build: llama-bench alone, CPU only, static, no OpenMP, no network
BASE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=OFF", "-DGGML_OPENMP=OFF",
              "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
              "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_TOOLS=ON")

#: (done steps, total steps, what is being built)
Progress = Callable[[int, int, str], None]


def cache_root() -> Path:
    """`$EDGEBENCH_CACHE_DIR`, else `~/.cache/edgebench` (the models' cache too)."""
    root = os.environ.get("EDGEBENCH_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "edgebench"


def runtimes_dir() -> Path:
    return cache_root() / "runtimes"


# --- the source ---------------------------------------------------------------------------------


def fetch_sdist(source: Source = SOURCE, say: Callable[[str], None] = lambda _m: None) -> Path:
    """The pinned sdist, from the cache or fetched with pip (sha256-checked either way)."""
    folder = runtimes_dir() / "sources"
    path = folder / source.sdist_name
    if path.is_file():
        if local_sha256(path) == source.sdist_sha256:
            return path
        say(f"{path.name}: sha256 differs from the pinned one; fetching it again")
        path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    say(f"fetching {source.package} {source.version} (the llama.cpp source, {source.short_commit}) with pip")
    # --no-binary PACKAGE, not :all: (that would compile the build tools themselves from source)
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", source.package,
            f"{source.package}=={source.version}", "-d", str(tmp), "--quiet", "--disable-pip-version-check"]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        got = tmp / source.sdist_name
        if r.returncode != 0 or not got.is_file():
            raise EdgebenchError(
                f"could not fetch the llama.cpp source ({source.package}=={source.version} from the Python "
                f"package index): {(r.stderr or r.stdout).strip()[-400:]}",
                hint=f"on an offline host, put {source.sdist_name} (sha256 {source.sdist_sha256}) in {folder}, "
                     "or build there with network once (`edgebench runtimes build`)", exit_code=1)
        digest = local_sha256(got)
        if digest != source.sdist_sha256:
            raise EdgebenchError(f"{source.sdist_name} has sha256 {digest}, not the pinned {source.sdist_sha256}",
                                 hint="the index served another file: refusing to build from it", exit_code=1)
        os.replace(got, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def source_tree(source: Source = SOURCE, say: Callable[[str], None] = lambda _m: None) -> Path:
    """The llama.cpp tree, extracted once from the sdist (complete, or absent)."""
    folder = runtimes_dir() / "sources" / f"llama.cpp-{source.short_commit}"
    if (folder / "CMakeLists.txt").is_file():
        return folder
    sdist = fetch_sdist(source, say)
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    prefix = f"{source.package.replace('-', '_')}-{source.version}/{source.subdir}/"
    say(f"extracting llama.cpp {source.short_commit}")
    with tarfile.open(sdist) as tar:
        members = []
        for m in tar.getmembers():
            if m.name.startswith(prefix) and m.name != prefix + ".git":
                m.name = m.name[len(prefix):]
                members.append(m)
        tar.extractall(tmp, members=members, filter="data")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


# --- builds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """A cached build: a bundle folder (bin/llama-bench, lib/) and its manifest."""

    path: Path
    manifest: dict

    @property
    def binary(self) -> Path:
        return self.path / BINARY

    def verify(self) -> str | None:
        """None when the binary is the one the manifest names; else what is wrong."""
        if not self.binary.is_file():
            return f"{self.binary} is missing"
        digest = local_sha256(self.binary)
        if digest != self.manifest.get("sha256"):
            said = str(self.manifest.get("sha256"))[:16]
            return f"{self.binary} has sha256 {digest[:16]}..., its manifest says {said}..."
        return None

    def record(self) -> dict:
        """What a run records of the binary it ran."""
        keep = ("engine", "source", "commit", "abi", "variant", "toolchain", "sha256", "size_bytes", "key")
        return {k: self.manifest.get(k) for k in keep}


def build_key(variant: Variant, tc: Toolchain, source: Source = SOURCE) -> str:
    """The cache key: what decides the binary's bytes, and nothing else (no path)."""
    material = {"engine": ENGINE, "source_sha256": source.sdist_sha256, "subdir": source.subdir,
                "abi": variant.abi, "variant": variant.name, "flags": [*BASE_FLAGS, *variant.cmake],
                "zig": tc.zig_version, "cmake": tc.cmake_version, "recipe": RECIPE}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def build_id(abi: str, variant_name: str) -> str:
    """`llama.cpp <commit> <abi>/<variant> key <key>`: which build this toolchain makes (not built here)."""
    variant = get_variant(abi, variant_name)
    return f"{ENGINE} {SOURCE.short_commit} {variant.key} key {build_key(variant, find_toolchain())}"


def _folder(variant: Variant, key: str) -> Path:
    return runtimes_dir() / ENGINE / f"{variant.abi}-{variant.name}-{key}"


def cached(abi: str, variant_name: str) -> Built | None:
    """The complete cached build of this toolchain for (abi, variant), or None."""
    variant = get_variant(abi, variant_name)
    folder = _folder(variant, build_key(variant, find_toolchain()))
    return _load(folder)


def _load(folder: Path) -> Built | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return Built(folder, manifest)


def list_built() -> list[tuple[Built, str | None]]:
    """Every cached build (of any toolchain), with what is wrong with it (None: intact)."""
    root = runtimes_dir() / ENGINE
    out = []
    for folder in sorted(root.glob("*")) if root.is_dir() else []:
        if folder.name.startswith(".tmp-"):
            continue
        built = _load(folder)
        if built is not None:
            out.append((built, built.verify()))
    return out


def clean(*, everything: bool = False) -> list[Path]:
    """Remove the builds (and with `everything`, the sources, build folders and zig's cache)."""
    root = runtimes_dir()
    targets = [root / ENGINE, root / "build", root / "probes"] + (
        [root / "sources", root / "zig", root / "zig-local"] if everything else [])
    removed = [t for t in targets if t.exists()]
    for t in removed:
        shutil.rmtree(t)
    return removed


@contextmanager
def build_lock(key: str) -> Iterator[None]:
    """One build of a key at a time, across processes (lab workers wait on one build)."""
    path = runtimes_dir() / "locks" / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_built(abi: str, variant_name: str, *, progress: Progress | None = None,
                 say: Callable[[str], None] = lambda _m: None, jobs: int | None = None) -> Built:
    """The cached build of (abi, variant), built first when absent or corrupt."""
    variant = get_variant(abi, variant_name)
    tc = find_toolchain()
    key = build_key(variant, tc)
    folder = _folder(variant, key)
    with build_lock(key):
        built = _load(folder)
        if built is not None:
            problem = built.verify()
            if problem is None:
                return built
            say(f"cached llama.cpp {variant.key} is corrupt ({problem}); rebuilding")
        return _build(variant, tc, key, folder, progress=progress, say=say, jobs=jobs)


_NINJA_STEP = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)$")


def _run(argv: list[str], *, env: dict, log: Path, progress: Progress | None, what: str) -> None:
    """Run a build step, its output to `log`; ninja's `[k/N]` lines drive `progress`."""
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                out.write(line)
                out.flush()  # the log follows the build (tail -f)
                m = _NINJA_STEP.match(line.strip())
                if m and progress is not None:
                    progress(int(m.group(1)), int(m.group(2)), m.group(3)[:80])
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if rc != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise EdgebenchError(f"{what} failed (exit {rc}); the log is {log}:\n  " + "\n  ".join(tail),
                             exit_code=1)


def _build(variant: Variant, tc: Toolchain, key: str, folder: Path, *, progress: Progress | None,
           say: Callable[[str], None], jobs: int | None) -> Built:
    src = source_tree(SOURCE, say)
    work = runtimes_dir() / "build" / f"{variant.abi}-{variant.name}-{key}"
    work.mkdir(parents=True, exist_ok=True)
    target, processor = TARGETS[variant.abi]
    wrappers = write_wrappers(work / "toolchain", tc, target)
    log = work / "build.log"
    log.write_text("")
    env = zig_env(runtimes_dir() / "zig", work / "zig-local")
    # paths out of the binary (assert messages carry __FILE__): the same bytes from any folder
    prefix = f"-ffile-prefix-map={src}=llama.cpp -ffile-prefix-map={work}=build"
    configure = [str(tc.cmake), "-S", str(src), "-B", str(work / "cmake"), "-G", "Ninja",
                 f"-DCMAKE_MAKE_PROGRAM={tc.ninja}", f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN_FILE}",
                 f"-DEDGEBENCH_WRAPPERS={wrappers}", f"-DEDGEBENCH_TARGET_PROCESSOR={processor}",
                 f"-DCMAKE_C_FLAGS={prefix}", f"-DCMAKE_CXX_FLAGS={prefix}",
                 f"-DLLAMA_BUILD_COMMIT={SOURCE.short_commit}", "-DLLAMA_BUILD_NUMBER=0",
                 *BASE_FLAGS, *variant.cmake]
    started = time.monotonic()
    say(f"building llama.cpp {SOURCE.short_commit} llama-bench for {variant.key} ({variant.about}) with "
        f"zig {tc.zig_version}: once per variant, a few minutes")
    _run(configure, env=env, log=log, progress=None, what=f"configuring llama.cpp for {variant.key}")
    build = [str(tc.cmake), "--build", str(work / "cmake"), "--target", "llama-bench",
             "-j", str(jobs or os.cpu_count() or 2)]
    _run(build, env=env, log=log, progress=progress, what=f"building llama-bench for {variant.key}")
    exe = work / "cmake" / "bin" / "llama-bench"
    if not exe.is_file():
        raise EdgebenchError(f"the build finished without {exe}; the log is {log}")
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "bin").mkdir(parents=True)
    (tmp / "lib").mkdir()
    shutil.copy2(exe, tmp / BINARY)
    digest = local_sha256(tmp / BINARY)
    manifest = {
        "engine": ENGINE, "binary": BINARY, "key": key,
        "source": {"package": SOURCE.package, "version": SOURCE.version, "sdist_sha256": SOURCE.sdist_sha256},
        "commit": SOURCE.commit, "abi": variant.abi, "variant": variant.name, "about": variant.about,
        "flags": [*BASE_FLAGS, *variant.cmake], "toolchain": tc.to_dict(), "recipe": RECIPE,
        "sha256": digest, "size_bytes": (tmp / BINARY).stat().st_size,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_s": round(time.monotonic() - started, 1),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # last: the folder is complete
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    say(f"built llama-bench for {variant.key} in {manifest['build_s']:.0f} s: "
        f"{manifest['size_bytes'] / 1e6:.1f} MB, sha256 {digest[:16]}")
    return Built(folder, manifest)
