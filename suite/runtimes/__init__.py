"""Runtimes, registered by name: each is one module; the line below names it (imported on first use).

A new runtime is one file (a class with the attributes and methods of `base.PythonRuntime` or
`base.NativeRuntime`) plus its line here; see docs/architecture.md. A runtime has one name, the one
stored in its runs; an alias (`RUNTIMES.alias`) is another way to ask for it.
"""

from suite.runtimes.base import (
    NATIVE,
    PYTHON,
    RUNTIMES,
    BurstParams,
    BurstResult,
    NativeRuntime,
    PythonRuntime,
    Repetition,
    Runtime,
    backends,
    builds_own,
    is_native,
    measures_depth,
)

RUNTIMES.add("ort-genai", "suite.runtimes.ort_genai:OrtGenaiRuntime", about="ONNX")
RUNTIMES.add("llama.cpp", "suite.runtimes.llama_bench:LlamaBenchRuntime",
             about="GGUF, llama.cpp's benchmark binary llama-bench, on a phone or this host: edgebench's own "
                   "build, or yours with --runtime-bundle")
RUNTIMES.alias("llama-bench", "llama.cpp")
RUNTIMES.add("llama-cpp-python", "suite.runtimes.llama_cpp_python:LlamaCppRuntime",
             about="GGUF, llama.cpp in process through the Python binding")
RUNTIMES.add("litert-lm", "suite.runtimes.litert_lm_bench:LiteRtLmBenchRuntime",
             about=".litertlm, LiteRT-LM's benchmark binary on a phone: your official build with --runtime-bundle")
RUNTIMES.add("executorch", "suite.runtimes.executorch_bench:ExecuTorchRuntime",
             about=".pte, ExecuTorch's llama_main on a phone: your build with --runtime-bundle, --tokenizer")
RUNTIMES.add("genie", "suite.runtimes.genie_bench:GenieRuntime",
             about="Qualcomm Genie's genie-t2t-run on a Snapdragon phone: your QAIRT bundle with --runtime-bundle, "
                   "--genie-config")
RUNTIMES.add("litert-lm-python", "suite.runtimes.litert_lm:LiteRtLmRuntime",
             about="LiteRT-LM (.litertlm), Google's engine in process on this host's CPU (XNNPACK) through its "
                   "Python API")


def get_runtime(name: str) -> Runtime:
    """A registered runtime by name (an UnknownNameError lists the registered ones)."""
    return RUNTIMES.get(name)()


__all__ = ["NATIVE", "PYTHON", "RUNTIMES", "BurstParams", "BurstResult", "NativeRuntime", "PythonRuntime",
           "Repetition", "Runtime", "backends", "builds_own", "get_runtime", "is_native", "measures_depth"]
