"""edgebench's own build of llama.cpp's `llama-bench`: static, per ABI and CPU variant, cached.

The source is the llama.cpp tree that a pinned sdist on the Python package index vendors
(`SOURCE`), fetched once with pip and checked by sha256; the toolchain is zig, cmake and ninja
from the same index (suite.runtimes.build.toolchain). A build is keyed by the source's sha256,
the ABI, the variant's CMake switches, the toolchain's versions and this recipe's version, never by
a path, and lands in `$EDGEBENCH_CACHE_DIR/runtimes/llama.cpp/<abi>-<variant>-<key>/` as a bundle
(`bin/llama-bench`, an empty `lib/`, `manifest.json`) that the llama-bench runtime pushes like a
user's. The build itself, the cache, its lock and the manifest are suite.runtimes.build.cmake_build's,
shared with whisper.cpp's build (suite.runtimes.build.whisper_cpp).
"""

from __future__ import annotations

from suite.runtimes.build import cmake_build
from suite.runtimes.build.cmake_build import (  # noqa: F401 (this module's API since before the split)
    MANIFEST,
    Built,
    Progress,
    Source,
    build_lock,
    cache_root,
    runtimes_dir,
)

ENGINE = "llama.cpp"
BINARY = "bin/llama-bench"
#: bump when the build recipe changes in a way that changes the binary
RECIPE = 1

#: llama.cpp 0c1e57098 (2026-10-01, ggml 0.25.3), as vendored by llama-cpp-python 0.3.36
SOURCE = Source("llama-cpp-python", "0.3.36", "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
                "vendor/llama.cpp", "0c1e57098bba43ac29e6e3b677cdceebdd22334f")

#: CMake switches of every build: llama-bench alone, CPU only, static, no OpenMP, no network
BASE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=OFF", "-DGGML_OPENMP=OFF",
              "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
              "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_TOOLS=ON")

#: llama-bench prints `build_commit`: the pinned commit (the sdist's .git is shallow: no build number)
BUILD = cmake_build.Recipe(ENGINE, SOURCE, BASE_FLAGS, targets=("llama-bench",), binaries=("llama-bench",),
                           version=RECIPE,
                           source_flags=(f"-DLLAMA_BUILD_COMMIT={SOURCE.short_commit}", "-DLLAMA_BUILD_NUMBER=0"))

# The engine's API (suite.runtimes.build.cmake_build.Engine, over BUILD): fetch_sdist(source=SOURCE, say=),
# source_tree(source=SOURCE, say=), build_key(variant, toolchain, source=SOURCE), build_id(abi, variant),
# cached(abi, variant) -> Built | None, list_built() -> [(Built, problem | None)], clean(everything=False),
# ensure_built(abi, variant, progress=, say=, jobs=) -> Built
_engine = cmake_build.Engine(BUILD)
fetch_sdist, source_tree, build_key = _engine.fetch_sdist, _engine.source_tree, _engine.build_key
build_id, cached, list_built = _engine.build_id, _engine.cached, _engine.list_built
clean, ensure_built = _engine.clean, _engine.ensure_built
