"""Runtimes, registered by name. Importing this package registers the built-in ones."""

from suite.runtimes import llama_cpp, ort_genai  # noqa: F401  (each registers itself)
from suite.runtimes.base import RUNTIMES, BurstParams, BurstResult, Repetition, Runtime


def get_runtime(name: str) -> Runtime:
    """A registered runtime by name (an UnknownNameError lists the registered ones)."""
    return RUNTIMES.get(name)()


__all__ = ["RUNTIMES", "BurstParams", "BurstResult", "Repetition", "Runtime", "get_runtime"]
