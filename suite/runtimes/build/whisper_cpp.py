"""edgebench's own build of whisper.cpp: `whisper-bench` and edgebench's driver `edgebench-whisper`,
static, per ABI and CPU variant (the same variants as llama.cpp's), cached.

The source is the whisper.cpp tree that the pywhispercpp 1.5.1 sdist vendors (`SOURCE`): whisper.cpp
v1.8.5, commit f24588a27 (2026-05-29, ggml 0.13.1). The sdist has no .git; the commit is proven by
the tree itself: git's tree hash of the sdist's `whisper.cpp/` folder (a276adc5ab09...) is that of
ggml-org/whisper.cpp at the tag v1.8.5, file modes included.

The CMake project is edgebench's own (`whisper/CMakeLists.txt` beside this module): it
add_subdirectory()s the tree and links the driver (`whisper/edgebench_whisper.cpp`) against the same
static `whisper` library as whisper-bench, so both binaries run the same kernels. The project's files
are part of the cache key. The bundle: `$EDGEBENCH_CACHE_DIR/runtimes/whisper.cpp/<abi>-<variant>-<key>/`
with `bin/edgebench-whisper`, `bin/whisper-bench`, an empty `lib/` and `manifest.json` (each binary's
sha256 under `binaries`; the top-level `sha256` is the driver's). Everything else (fetch, extract,
lock, cache, manifest) is suite.runtimes.build.cmake_build's, shared with llama.cpp's build.
"""

from __future__ import annotations

from pathlib import Path

from suite.runtimes.build import cmake_build
from suite.runtimes.build.cmake_build import Built, Source  # noqa: F401 (part of this module's API)

ENGINE = "whisper.cpp"
#: edgebench's driver: one timed pass (mel, encode, N greedy decode steps) as JSON lines
DRIVER = "edgebench-whisper"
#: whisper.cpp's own benchmark (examples/bench): the encoder alone, or memcpy / ggml_mul_mat (`-w 1|2`)
BENCH = "whisper-bench"
#: bump when the build recipe changes in a way that changes the binaries (the driver's sources are in the key)
RECIPE = 1
PROJECT = Path(__file__).parent / "whisper"

#: whisper.cpp v1.8.5 (f24588a27, 2026-05-29, ggml 0.13.1), as vendored by pywhispercpp 1.5.1
SOURCE = Source("pywhispercpp", "1.5.1", "5df897e5dd9d9f16804fc937bd85b9f5880a0b29a55f8843585e0e03d76195e5",
                "whisper.cpp", "f24588a272ae8e23280d9c220536437164e6ed28")

#: CMake switches of every build: CPU only, static, no OpenMP, Release; the examples on (whisper-bench is
#: one) but not their tests, server, SDL2, ffmpeg or curl
BASE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=OFF", "-DGGML_OPENMP=OFF",
              "-DWHISPER_BUILD_EXAMPLES=ON", "-DWHISPER_BUILD_TESTS=OFF", "-DWHISPER_BUILD_SERVER=OFF",
              "-DWHISPER_SDL2=OFF", "-DWHISPER_FFMPEG=OFF", "-DWHISPER_CURL=OFF")

BUILD = cmake_build.Recipe(ENGINE, SOURCE, BASE_FLAGS, targets=(BENCH, DRIVER), binaries=(DRIVER, BENCH),
                           version=RECIPE, project=PROJECT, work_prefix="whisper.cpp-",
                           upstream={"version": "v1.8.5", "ggml": "0.13.1"})

# The engine's API (suite.runtimes.build.cmake_build.Engine, over BUILD): fetch_sdist(source=SOURCE, say=),
# source_tree(source=SOURCE, say=), build_key(variant, toolchain, source=SOURCE), build_id(abi, variant),
# cached(abi, variant) -> Built | None, list_built() -> [(Built, problem | None)], clean(everything=False),
# ensure_built(abi, variant, progress=, say=, jobs=) -> Built
_engine = cmake_build.Engine(BUILD)
fetch_sdist, source_tree, build_key = _engine.fetch_sdist, _engine.source_tree, _engine.build_key
build_id, cached, list_built = _engine.build_id, _engine.cached, _engine.list_built
clean, ensure_built = _engine.clean, _engine.ensure_built
