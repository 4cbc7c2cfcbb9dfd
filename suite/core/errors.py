"""One root error type with context; the CLI maps these to messages and exit codes."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgebenchError(Exception):
    """A failure the user can act on. `hint` says what to do; `context` carries the facts."""

    exit_code = 1

    def __init__(
        self, message: str, *, hint: str | None = None, exit_code: int | None = None, **context: object
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.context = context
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UnknownNameError(EdgebenchError, KeyError):
    """An id that is not registered (model, runtime, device...): says what is close."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else None
        msg = f"unknown {kind} {name!r}; known: {', '.join(known) if known else '(none)'}"
        super().__init__(msg, hint=hint, kind=kind, name=name, close=close)

    def __str__(self) -> str:  # KeyError would repr() the message
        return EdgebenchError.__str__(self)


class ModelBuildError(EdgebenchError):
    pass


class InsufficientDiskError(EdgebenchError):
    exit_code = 3


class ArtifactCorruptError(EdgebenchError):
    pass


class RuntimeFailure(EdgebenchError):
    """The runtime failed to load or run a model."""


class SchemaVersionError(EdgebenchError):
    exit_code = 2


class RooflineError(EdgebenchError):
    """A roofline fraction above 1.0: the probe or the byte count is wrong."""
