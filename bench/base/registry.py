"""Open build-by-name registries: decorator registration, plugins, entry points, dotted paths.

A thing registers where it is defined (``@register_backbone("ffdnet", ...)`` on its class). A registry
loads its built-ins on first use (``builtins``, e.g. importing every module of ``models/``: one new
file is one new entry, no central list), then the Python entry points of its group (``entry_point_group``: each
entry point's name is the registered name, its object the thing). Anywhere a registered name is
accepted, a dotted path ``my_pkg.nets:DnCNN`` names an object that was never registered.
"""
from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bench.base.errors import BenchError

T = TypeVar("T")

PLUGIN_GROUP = "d2sm_bench.plugins"  # entry points naming modules to import (they register what they define)


class UnknownNameError(BenchError, KeyError):
    """An unknown name was asked of a registry; the message suggests the close matches."""

    def __str__(self) -> str:  # KeyError would quote its message; we want it plain
        return str(self.args[0])


class Registry(Generic[T]):
    """A name -> object table. ``kind`` names what it holds in error messages ("backbone").

    ``wrap(name, obj)`` turns an object found by a dotted path or an entry point into what the registry
    holds (a class into a ``FactorySpec``); ``order`` of an entry sorts listings and tables (then the name).
    """

    def __init__(self, kind: str, builtins: Callable[[], None] | None = None, entry_point_group: str | None = None,
                 wrap: Callable[[str, Any], T] | None = None) -> None:
        self.kind, self.builtins, self.entry_point_group = kind, builtins, entry_point_group
        self._wrap = wrap or (lambda name, obj: obj)
        self._items: dict[str, T] = {}
        self._order: dict[str, float] = {}
        self._loaded = False

    def register(self, name: str, obj: T | None = None, order: float = 1000.0):
        """``register(name, obj)`` or, as a decorator, ``@register(name)``."""
        def deco(o: T) -> T:
            if name in self._items and self._items[name] is not o:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name], self._order[name] = o, order
            return o

        return deco if obj is None else deco(obj)

    def add(self, name: str, obj: T, order: float = 1000.0) -> None:
        self.register(name, obj, order)

    def load(self) -> None:
        """Import the built-in modules and the entry points, once (called by every lookup)."""
        if self._loaded:
            return
        self._loaded = True
        if self.builtins:
            self.builtins()
        load_plugin_entry_points()
        if self.entry_point_group:
            for ep in _entry_points(self.entry_point_group):
                if ep.name not in self._items:
                    self._items[ep.name] = self._wrap(ep.name, _load_entry_point(ep))
                    self._order[ep.name] = 1000.0

    def get(self, name: str) -> T:
        self.load()
        if name in self._items:
            return self._items[name]
        if ":" in name:
            return self._wrap(name, import_object(name, self.kind))
        raise UnknownNameError(unknown_name_message(self.kind, name, self._items) + DOTTED_HINT)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def names(self) -> list[str]:
        """Registered names, in their ``order`` (then alphabetical)."""
        self.load()
        return sorted(self._items, key=lambda n: (self._order[n], n))

    def order(self, name: str) -> tuple[float, str]:
        """Sort key of ``name`` in listings and tables (unknown names last)."""
        self.load()
        return (self._order.get(name, float("inf")), name)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._items or (isinstance(name, str) and ":" in name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def snapshot(self) -> tuple:
        """What is registered now, for ``restore`` (tests that register something)."""
        return dict(self._items), dict(self._order), self._loaded

    def restore(self, snapshot: tuple) -> None:
        items, order, loaded = snapshot
        self._items, self._order, self._loaded = dict(items), dict(order), loaded


def unknown_name_message(kind: str, name: str, known: object) -> str:
    """'unknown backbone 'ffdnte'; did you mean 'ffdnet'? known: ...'."""
    names = sorted(known)  # type: ignore[call-overload]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}{hint} (known: {', '.join(names)})"


DOTTED_HINT = "; a dotted path module:Name names an unregistered one, and --plugin imports a module or file first"


def import_object(path: str, kind: str = "object") -> Any:
    """``"pkg.mod:Name"`` (or ``pkg.mod:Outer.Inner``) -> the object; a one-line error otherwise."""
    module, _, attr = path.partition(":")
    if not module:
        raise BenchError(f"{kind} {path!r}: no module before ':' (expected pkg.module:Name)")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise BenchError(f"{kind} {path!r}: cannot import module {module!r} ({e}); pass --plugin or fix PYTHONPATH") from None
    for part in filter(None, attr.split(".")):
        if not hasattr(obj, part):
            raise BenchError(f"{kind} {path!r}: module {module!r} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


def import_submodules(package: str) -> None:
    """Import every module of ``package`` whose name does not start with an underscore."""
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


_plugin_entry_points_loaded = False


def load_plugin_entry_points() -> None:
    """Import the modules named by the ``d2sm_bench.plugins`` entry points (once per process)."""
    global _plugin_entry_points_loaded
    if _plugin_entry_points_loaded:
        return
    _plugin_entry_points_loaded = True
    for ep in _entry_points(PLUGIN_GROUP):
        _load_entry_point(ep)


def _entry_points(group: str):
    from importlib.metadata import entry_points

    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def _load_entry_point(ep):
    try:
        return ep.load()
    except Exception as e:  # noqa: BLE001 - one broken plugin: name it, with the way out
        raise BenchError(f"entry point {ep.name} = {ep.value} (group {ep.group}) failed to load: "
                         f"{type(e).__name__}: {e}; fix or uninstall the package that declares it") from e


def reset_plugin_entry_points() -> None:
    """Forget that the plugin entry points were loaded (tests that install one)."""
    global _plugin_entry_points_loaded
    _plugin_entry_points_loaded = False


@dataclass(frozen=True)
class FactorySpec:
    """A registered way to build something: ``factory(**kwargs)``, with a one-line description for listings."""

    name: str
    factory: Callable[..., Any]
    kwargs: dict = field(default_factory=dict)
    description: str = ""

    def params(self, **overrides) -> dict:
        """The effective keyword arguments of ``build(**overrides)`` (signature defaults < registered < overrides)."""
        defaults = {k: p.default for k, p in _signature_params(self.factory).items()
                    if p.default is not inspect.Parameter.empty}
        return {**defaults, **self.kwargs, **overrides}

    def accepted(self) -> set[str]:
        """Keyword names ``build`` accepts (through ``**kwargs`` of a class, its bases' too)."""
        return set(_signature_params(self.factory))

    def check_params(self, params: dict, where: str) -> None:
        """A one-line error naming ``where`` for a keyword the factory does not take, or a value its default rules
        out (``check_value``)."""
        known = self.accepted()
        for key in params:
            if key not in known:
                raise UnknownNameError(unknown_name_message(f"parameter of {self.name} ({where})", key, known))
        defaults = self.params()
        for key, value in params.items():
            check_value(key, value, defaults.get(key, inspect.Parameter.empty), f"{where}, parameter {key}")

    def build(self, **overrides) -> Any:
        return self.factory(**{**self.kwargs, **overrides})


class FactoryRegistry(Registry[FactorySpec]):
    """Things built by calling a registered factory (backbones, objectives). Built-ins: every module of ``package``;
    outside ones: the ``entry_point_group`` entry points and dotted paths (a class or function)."""

    def __init__(self, kind: str, package: str, entry_point_group: str) -> None:
        super().__init__(kind, builtins=lambda: import_submodules(package), entry_point_group=entry_point_group,
                         wrap=factory_spec)

    def decorator(self, name: str, description: str = "", order: float = 1000.0, **kwargs) -> Callable:
        """Class decorator: register ``cls(**kwargs, **overrides)`` as ``name`` (stack it for variants); ``order``
        places it in listings and tables."""
        def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
            self.add(name, FactorySpec(name, factory, kwargs, description), order=order)
            return factory

        return deco

    def params(self, name: str, **overrides) -> dict:
        """The effective keyword arguments of ``name`` (signature defaults < registered < overrides); a keyword it
        does not take is a one-line error."""
        spec = self.get(name)
        spec.check_params(overrides, f"{self.kind} {name}")
        return spec.params(**overrides)

    def build(self, name: str, **overrides) -> Any:
        spec = self.get(name)
        spec.check_params(overrides, f"{self.kind} {name}")
        return spec.build(**overrides)


def check_value(key: str, value: Any, default: Any, where: str) -> None:
    """A parameter's value against what its default says it is: the default's type (an int where the default is an
    int, a number where it is a float, a bool, a string), finite numbers, >= 1 where the default is a positive
    integer (sizes, counts, depths), >= 0 where it is a non-negative number (weights, margins). Parameters without
    a default, or with None or another kind of default, are the factory's to check."""
    import math

    def fail(what: str) -> None:
        raise BenchError(f"{where}: {value!r} is not {what}")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            fail("true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
        if default >= 1 and value < 1:
            fail("an integer >= 1")
        if default >= 0 and value < 0:
            fail("a non-negative integer")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            fail("a finite number")
        if default >= 0 and value < 0:
            fail("a number >= 0")
    elif isinstance(default, str) and not isinstance(value, str):
        fail("a string")


def factory_spec(name: str, obj: Any) -> FactorySpec:
    """A class or function found by a dotted path or an entry point, as a ``FactorySpec``."""
    if isinstance(obj, FactorySpec):
        return obj
    if not callable(obj):
        raise BenchError(f"{name!r} is not a class or function (got {type(obj).__name__})")
    doc = (inspect.getdoc(obj) or "").strip().splitlines()
    return FactorySpec(name, obj, {}, doc[0] if doc else "")


def _signature_params(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """Named keyword parameters of ``factory``; a class taking ``**kwargs`` adds those of its bases' __init__."""
    out: dict[str, inspect.Parameter] = {}
    chain = inspect.getmro(factory) if inspect.isclass(factory) else (factory,)
    for f in chain:
        if f is object:
            break
        try:
            sig = inspect.signature(f.__init__ if inspect.isclass(f) else f)
        except (TypeError, ValueError):
            break
        params = list(sig.parameters.values())
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                out.setdefault(p.name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return out
