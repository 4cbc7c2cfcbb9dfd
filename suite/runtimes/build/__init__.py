"""edgebench's own native runtimes, built from pinned sources with a toolchain from the Python
package index (zig, cmake, ninja): static binaries per ABI and CPU variant, cached by what decides
their bytes (suite.runtimes.build.cmake_build, the part every engine shares; one module per engine:
llama_cpp, whisper_cpp). Imports nothing: `edgebench runtimes` and the runtimes import the module
they need."""
