"""Build-by-name registries with did-you-mean errors.

Registration is explicit (a decorator at import of the module that defines the thing);
nothing scans the filesystem.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bench.errors import BenchError

T = TypeVar("T")


class UnknownNameError(BenchError, KeyError):
    """An unknown name was asked of a registry; the message suggests the close matches."""

    def __str__(self) -> str:  # KeyError would quote its message; we want it plain
        return str(self.args[0])


class Registry(Generic[T]):
    """A name -> object table. ``kind`` names what it holds in error messages ("backbone")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        self.register(name)(obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(unknown_name_message(self.kind, name, self._items)) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def unknown_name_message(kind: str, name: str, known: object) -> str:
    """'unknown backbone 'ffdnte'; did you mean 'ffdnet'? known: ...'."""
    names = sorted(known)  # type: ignore[call-overload]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}{hint} (known: {', '.join(names)})"


@dataclass(frozen=True)
class FactorySpec:
    """A registered way to build something: ``factory(**kwargs)``, with a one-line description for listings."""

    name: str
    factory: Callable[..., Any]
    kwargs: dict = field(default_factory=dict)
    description: str = ""

    def params(self, **overrides) -> dict:
        """The effective keyword arguments of ``build(**overrides)`` (signature defaults < registered < overrides)."""
        defaults = {k: p.default for k, p in inspect.signature(self.factory).parameters.items()
                    if p.default is not inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD}
        return {**defaults, **self.kwargs, **overrides}

    def build(self, **overrides) -> Any:
        return self.factory(**{**self.kwargs, **overrides})
