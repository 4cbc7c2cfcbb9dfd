"""A small typed registry: runtimes, transports, scenarios and importers are registered by name.

An entry is an object, or `"module:attribute"`, imported the first time it is asked for: the
names are known (for `--help` and error hints) without importing every plug-in, and a
plug-in's module imports nothing to register itself (no import cycle through a package's
`__init__`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from suite.core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T | str] = {}
        self._aliases: dict[str, str] = {}
        self._about: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self._add(name, obj)
            return obj

        return deco

    def add(self, name: str, target: str, *, about: str = "", aliases: tuple[str, ...] = ()) -> None:
        """Register `name` as `"module:attribute"` (imported on first use), with a few words for
        `--help` and other names for it."""
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: {target!r} is not 'module:attribute'")
        self._add(name, target)
        if about:
            self._about[name] = about
        for alias in aliases:
            if alias in self._items or alias in self._aliases:
                raise ValueError(f"{self.kind} {alias!r} registered twice")
            self._aliases[alias] = name

    def _add(self, name: str, obj: T | str) -> None:
        if name in self._items or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._items[name] = obj

    def canonical(self, name: str) -> str:
        """The registered name that `name` means (itself, or what it is an alias of)."""
        name = self._aliases.get(name, name)
        if name not in self._items:
            raise UnknownNameError(self.kind, name, [*self._items, *self._aliases])
        return name

    def get(self, name: str) -> T:
        name = self.canonical(name)
        obj = self._items[name]
        if isinstance(obj, str):
            module, _, attr = obj.partition(":")
            obj = self._items[name] = getattr(importlib.import_module(module), attr)
        return obj

    def names(self) -> list[str]:
        return sorted(self._items)

    def about(self, name: str) -> str:
        """The few words registered with `name` ("" when none)."""
        return self._about.get(self.canonical(name), "")

    def describe(self) -> str:
        """`name (about), ...` of every entry, for `--help` texts and hints."""
        return ", ".join(f"{n} ({self._about[n]})" if n in self._about else n for n in self.names())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases
