"""A small typed registry: runtimes, transports, scenarios and importers are registered by name.

An entry is `"module:attribute"`, imported the first time it is asked for: the
names are known (for `--help` and error hints) without importing every plug-in, and a
plug-in's module imports nothing to register itself (no import cycle through a package's
`__init__`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar

from suite.core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T | str] = {}
        self._about: dict[str, str] = {}
        #: another name -> the registered name it stands for (`alias`)
        self._aliases: dict[str, str] = {}

    def add(self, name: str, target: str, *, about: str = "") -> None:
        """Register `name` as `"module:attribute"` (imported on first use), with a few words for `--help`."""
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: {target!r} is not 'module:attribute'")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._items[name] = target
        if about:
            self._about[name] = about

    def alias(self, name: str, target: str) -> None:
        """`name` stands for the registered `target` (an older or shorter name): `check` and `get`
        answer with the target, and what is stored names only the target."""
        if name in self._items or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        if target not in self._items:
            raise ValueError(f"{self.kind} alias {name!r}: {target!r} is not registered")
        self._aliases[name] = target

    def check(self, name: str) -> str:
        """The registered name `name` is, or stands for (an alias); else an UnknownNameError naming
        the registered ones."""
        name = self._aliases.get(name, name)
        if name not in self._items:
            raise UnknownNameError(self.kind, name, self._items)
        return name

    def aliases(self, name: str) -> list[str]:
        """The other names that stand for the registered `name`."""
        return sorted(a for a, t in self._aliases.items() if t == name)

    def get(self, name: str) -> T:
        name = self.check(name)
        obj = self._items[name]
        if isinstance(obj, str):
            module, _, attr = obj.partition(":")
            obj = self._items[name] = getattr(importlib.import_module(module), attr)
        return obj

    def names(self) -> list[str]:
        return sorted(self._items)

    def about(self, name: str) -> str:
        """The few words registered with `name` ("" when none)."""
        return self._about.get(self.check(name), "")

    def describe(self) -> str:
        """`name (about), ...` of every entry, for `--help` texts and hints."""
        def one(n: str) -> str:
            notes = [self._about[n]] if n in self._about else []
            notes += [f"alias {a}" for a in self.aliases(n)]
            return f"{n} ({'; '.join(notes)})" if notes else n

        return ", ".join(one(n) for n in self.names())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases
