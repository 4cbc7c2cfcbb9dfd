"""One naming scheme (issue 13): `llama.cpp` is the engine through its benchmark binary everywhere,
`llama-bench` its alias, `llama-cpp-python` the in-process binding."""

from __future__ import annotations

import pytest

from suite.core.errors import UnknownNameError
from suite.core.registry import Registry
from suite.runtimes import NATIVE, PYTHON, RUNTIMES, get_runtime


def test_llama_cpp_is_the_benchmark_binary_and_llama_bench_its_alias():
    assert RUNTIMES.check("llama-bench") == "llama.cpp" == RUNTIMES.check("llama.cpp")
    assert get_runtime("llama-bench").name == get_runtime("llama.cpp").name == "llama.cpp"
    assert get_runtime("llama.cpp").kind == NATIVE
    binding = get_runtime("llama-cpp-python")
    assert binding.kind == PYTHON and binding.name == "llama-cpp-python" and binding.python_module == "llama_cpp"
    assert "llama-bench" in RUNTIMES and "llama-bench" not in RUNTIMES.names()  # asked for, never stored
    assert "alias llama-bench" in RUNTIMES.describe()


def test_an_alias_needs_a_registered_target_and_a_free_name():
    reg: Registry[object] = Registry("thing")
    reg.add("a", "m:a")
    reg.alias("b", "a")
    with pytest.raises(ValueError, match="registered twice"):
        reg.alias("b", "a")
    with pytest.raises(ValueError, match="registered twice"):
        reg.alias("a", "a")
    with pytest.raises(ValueError, match="not registered"):
        reg.alias("c", "zzz")
    with pytest.raises(UnknownNameError):
        reg.check("c")
    assert reg.aliases("a") == ["b"] and reg.names() == ["a"]
