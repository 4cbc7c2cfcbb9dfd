"""Runtimes, registered by name. Importing this package registers the built-in ones."""

from suite.runtimes import ort_genai  # noqa: F401  (registers "ort-genai")
from suite.runtimes import llama_cpp  # noqa: F401  (registers "llama.cpp")
from suite.runtimes.base import RUNTIMES, BurstParams, BurstResult, Repetition, get_runtime

__all__ = ["RUNTIMES", "BurstParams", "BurstResult", "Repetition", "get_runtime"]
