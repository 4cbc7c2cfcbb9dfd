"""edgebench's own native runtimes, built from pinned sources with a toolchain from the Python
package index (zig, cmake, ninja): static binaries per ABI and CPU variant, cached by what decides
their bytes (suite.runtimes.build.llama_cpp). Imports nothing: `edgebench runtimes` and the
llama-bench runtime import the module they need."""
